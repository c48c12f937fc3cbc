"""Admin work through the web forms and the CLI: accounts, projects, uploads, rounds, assignment, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from promedical.cli.main import app as cli
from promedical.io import to_json_line
from promedical.review import export, projects
from promedical.review.app import create_app
from promedical.review.launch import login_with
from promedical.review.sample import sample_responses, sample_rubrics


def _jsonl(records) -> bytes:  # type: ignore[no-untyped-def]
    return "".join(to_json_line(r) + "\n" for r in records).encode()


def test_admin_builds_a_project_through_the_web(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    runner = CliRunner()
    made = runner.invoke(cli, ["review", "create-user", "boss", "--role", "admin", "--db", url, "--json"],
                         env={"PROMEDICAL_REVIEW_PASSWORD": "lantern-quay-4419"})
    assert made.exit_code == 0, made.output
    app = create_app(url)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as raw:
        admin = login_with(raw, "boss", "lantern-quay-4419")
        csrf = {"csrf_token": admin.headers["X-CSRF-Token"]}
        for name in ("dr.ada", "dr.bo"):
            r = admin.post("/admin/users", data={**csrf, "username": name, "password": "quiet-harbour-58",
                                                 "role": "reviewer"})
            assert r.status_code == 303
        short = admin.post("/admin/users", data={**csrf, "username": "x", "password": "short", "role": "reviewer"})
        assert short.status_code == 422 and "at least 10 characters" in short.text
        assert admin.post("/admin/projects", data={**csrf, "name": "trial"}).status_code == 303
        assert admin.post("/admin/projects", data={**csrf, "name": "trial"}).status_code == 409

        rubrics = sample_rubrics(3)
        files = {"file": ("rubrics.jsonl", _jsonl(rubrics), "application/x-ndjson")}
        assert admin.post("/admin/projects/trial/import/rubrics", data=csrf, files=files).status_code == 303
        bad = b'{"id": "r9", "prompt": [{"role": "user", "content": "q"}], "criteria": []}\n'
        refused = admin.post("/admin/projects/trial/import/rubrics", data=csrf,
                             files={"file": ("drafts.jsonl", bad, "application/x-ndjson")})
        assert refused.status_code == 422
        assert "drafts.jsonl:1: r9: criteria: rubric has no criteria" in refused.text
        responses = sample_responses(rubrics)
        files = {"file": ("responses.jsonl", _jsonl(responses), "application/x-ndjson")}
        assert admin.post("/admin/projects/trial/import/responses", data=csrf, files=files).status_code == 303
        assert admin.post("/admin/projects/trial/rounds", data={**csrf, "batch": "2"}).status_code == 303
        assert admin.post("/admin/projects/trial/rounds", data={**csrf, "batch": "0"}).status_code == 303
        assert admin.post("/admin/projects/trial/rounds", data={**csrf, "batch": "0"}).status_code == 409
        for kind in ("rubric", "pairwise"):
            r = admin.post("/admin/projects/trial/assign", data={**csrf, "kind": kind, "reviewers": "dr.ada,dr.bo",
                                                                "overlap": "2"})
            assert r.status_code == 303
        nobody = admin.post("/admin/projects/trial/assign", data={**csrf, "kind": "pointwise",
                                                                 "reviewers": "dr.ada,ghost", "overlap": "1"})
        assert nobody.status_code == 422 and "unknown reviewer(s): ghost" in nobody.text
        page = admin.get("/admin/projects/trial")
        assert "3 rubrics" in page.text and "9 responses" in page.text
        assert "3 rubric, 0 pointwise, 9 pairwise" in page.text
        with app.state.db.read() as session:
            sizes = [r.rubrics for r in export.round_summaries(session, projects.project_by_name(session, "trial"))]
        assert sizes == [2, 1]
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as raw:
        ada = login_with(raw, "dr.ada", "quiet-harbour-58")
        kinds = [i["kind"] for i in ada.get("/api/assignments").json()["assignments"]]
        assert kinds.count("rubric") == 3 and kinds.count("pairwise") == 9
    app.state.db.dispose()


def test_cli_refuses_bad_input_with_one_line_and_exit_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "r1", "prompt": [], "criteria": []}\n')
    runner = CliRunner()
    cases = [
        ["review", "import", "--project", "p", "--rubrics", str(bad), "--db", url],
        ["review", "assign", "--project", "nope", "--kind", "pairwise", "--reviewers", "a", "--db", url],
        ["review", "round", "--project", "nope", "--db", url],
    ]
    messages = []
    for args in cases:
        result = runner.invoke(cli, args)
        assert isinstance(result.exception, Exception)
        messages.append(str(result.exception))
    assert "bad.jsonl:1: r1: prompt: prompt is empty" in messages[0]
    assert messages[1] == messages[2] == "no project named 'nope'"
    good = tmp_path / "rubrics.jsonl"
    good.write_bytes(_jsonl(sample_rubrics(2)))
    out = runner.invoke(cli, ["review", "import", "--project", "p", "--rubrics", str(good), "--db", url, "--json"])
    assert out.exit_code == 0 and json.loads(out.output.strip().splitlines()[-1])["rubrics"] == 2
    again = runner.invoke(cli, ["review", "import", "--project", "p", "--rubrics", str(good), "--db", url, "--json"])
    assert json.loads(again.output.strip().splitlines()[-1])["rubrics"] == 0  # idempotent


@pytest.mark.slow
def test_cli_main_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "promedical.cli.main", "review", "export", "--project", "nope",
                           "--out", str(tmp_path / "o"), "--db", str(tmp_path / "x.sqlite")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: no project named 'nope'"
