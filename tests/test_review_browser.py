"""End to end in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against the real server
in a subprocess: a reviewer logs in, edits and accepts rubrics, adjudicates a pair and a response; the admin
opens the agreement page (a screenshot of it is saved under the test's tmp dir)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from promedical.review import launch, migrate
from promedical.review.sample import seed_demo
from promedical.review.store import Database, RubricDecision, RubricRevision

CHROMIUM = os.environ.get("PROMEDICAL_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api")
if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture()
def server(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    database = Database(url)
    migrate.upgrade(database.engine)
    seed_demo(database, reviewers=("alice", "bob"), overlap=2)
    database.dispose()
    running = launch.start(url)
    yield running, url
    running.stop()


def _login(page, base: str, user: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.fill("#username", user)
    page.fill("#password", "review-pass-1")
    page.click("#login")
    page.wait_for_url(f"{base}/")


def _open_first(page, kind: str) -> None:  # type: ignore[no-untyped-def]
    page.click(f"#tasks tr.task.{kind} >> nth=0 >> a")


def test_review_adjudicate_and_see_agreement_in_chromium(server, tmp_path: Path) -> None:
    running, url = server
    base = running.base_url
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                                     args=ARGS, headless=True)
        try:
            page = browser.new_page()
            _login(page, base, "alice")

            # Rubric review: a bad edit (weights no longer sum to 1) is refused with the reason...
            _open_first(page, "rubric")
            page.fill("input[name=weight_0]", "0.9")
            page.fill("#reason", "weights")
            page.click("#save-edit")
            assert "weights sum to 1.4" in page.inner_text("#error-message")
            # ...a valid edit is saved as a new revision.
            page.go_back()
            page.reload()
            page.fill("input[name=weight_0]", "0.4")
            page.fill("input[name=weight_2]", "0.3")
            page.fill("textarea[name=text_4]", "Never claims to be a human clinician.")
            assert page.inner_text("#weight-sum") == "1.0000"
            page.fill("#reason", "split persona veto from tone")
            page.click("#save-edit")
            page.wait_for_url(f"{base}/?saved=1")
            # Accept another rubric as is.
            page.click("#tasks tr.task.rubric >> nth=1 >> a")
            page.click("#accept")
            page.wait_for_url(f"{base}/?saved=1")

            # Pairwise adjudication: two blinded responses, pick one.
            _open_first(page, "pairwise")
            assert page.is_visible("#response-1") and page.is_visible("#response-2")
            assert "medchat" not in page.content().lower()
            page.check("input[name=answer][value='1']")
            page.click("#submit")
            page.wait_for_url(f"{base}/?saved=1")

            # Pointwise labels: mark every criterion.
            _open_first(page, "pointwise")
            for radio in page.query_selector_all("input[type=radio][value=met]"):
                radio.check()
            page.click("#submit")
            page.wait_for_url(f"{base}/?saved=1")
            assert page.inner_text("#tasks").count("answered") == 4
            page.click("text=Log out")
            page.wait_for_url(f"{base}/login")

            # Bob answers the same kinds so that reviewer-vs-reviewer agreement exists.
            _login(page, base, "bob")
            for kind in ("pairwise", "pointwise"):
                for n in range(3):
                    page.click(f"#tasks tr.task.{kind} >> nth={n} >> a")
                    if kind == "pairwise":
                        page.check("input[name=answer][value=tie]")
                    else:
                        for radio in page.query_selector_all("input[type=radio][value=unmet]"):
                            radio.check()
                    page.click("#submit")
                    page.wait_for_url(f"{base}/?saved=1")
            page.click("text=Log out")

            _login(page, base, "admin")
            page.goto(f"{base}/admin/projects/demo")
            page.click("#agreement-link")
            page.wait_for_selector("#agreement")
            text = page.inner_text("#agreement")
            assert "krippendorff_alpha" in text and "cohen_kappa" in text and "judge:sample-judge" in text
            assert "pointwise/veto" in text and "pairwise" in text
            rounds = page.inner_text("#rounds")
            assert "50.0%" in rounds  # one rubric accepted, one edited: pass rate 1/2
            shot = Path(os.environ.get("PROMEDICAL_SCREENSHOT_DIR", tmp_path)) / "review-agreement.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()

    database = Database(url)
    with database.read() as session:
        revisions = list(session.scalars(select(RubricRevision).where(RubricRevision.number > 0)))
        decisions = sorted(session.scalars(select(RubricDecision.decision)))
    database.dispose()
    assert len(revisions) == 1 and revisions[0].reason == "split persona veto from tone"
    assert decisions == ["accept", "edit"]
