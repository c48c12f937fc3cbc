"""The review app against a hostile client: login floods and throttling, password policy, size caps, admin input,
security headers, account controls, secure defaults. In process (TestClient over https://testserver) on real SQLite.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from promedical.cli.main import app as cli
from promedical.io import UserError
from promedical.review import auth
from promedical.review.app import create_app
from promedical.review.launch import CSRF_FIELD, login_with
from promedical.review.sample import seed_demo
from promedical.review.store import SessionRow, User, utcnow
from promedical.review.throttle import Busy, HashGate, LoginThrottle

PASSWORD = "review-pass-1"
TARPIT = 0.3  # seconds before a failed login is answered (1 s by default; shorter here to keep the tests quick)
DOCS = Path(__file__).resolve().parents[1] / "docs"


class Clock:
    """A settable clock for the throttle, so backoff expiry is tested without sleeping minutes."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def site(tmp_path: Path):
    clock = Clock()
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    app = create_app(url, throttle=LoginThrottle(clock=clock), failed_login_delay=TARPIT)
    seed_demo(app.state.db, reviewers=("alice", "bob"), overlap=2)
    clients: list[TestClient] = []

    def client_for(user: str | None, address: str = "198.51.100.7", **kwargs) -> TestClient:  # type: ignore[no-untyped-def]
        client = TestClient(app, base_url="https://testserver", follow_redirects=False, client=(address, 40000),
                            **kwargs)
        clients.append(client)
        return client if user is None else login_with(client, user, PASSWORD)  # type: ignore[return-value]

    yield app, client_for, clock, url
    for client in clients:
        client.close()
    app.state.db.dispose()


def _admin(client_for: Any) -> tuple[TestClient, dict[str, str]]:
    """The admin's logged-in client and the CSRF field its forms must carry."""
    admin = client_for("admin")
    return admin, {"csrf_token": admin.headers["X-CSRF-Token"]}


def _try_login(client: TestClient, username: str, password: str) -> int:
    page = client.get("/login")
    token = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token}).status_code


def _tokens(client: TestClient, kind: str) -> list[str]:
    return [i["token"] for i in client.get("/api/assignments").json()["assignments"] if i["kind"] == kind]


# --- logins: no write lock, throttled per account and per address, a global budget for hashing -----------------


def test_a_failed_login_takes_no_write_lock(site, tmp_path: Path) -> None:
    """Another writer holds SQLite's write lock; a wrong login must still be answered at once (it only reads)."""
    _app, client_for, _clock, _url = site
    anon = client_for(None)
    holder = sqlite3.connect(tmp_path / "review.sqlite", timeout=1, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    outcome: list[int] = []
    worker = threading.Thread(target=lambda: outcome.append(_try_login(anon, "alice", "not-her-password")),
                              daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=10)
    waited = time.monotonic() - started
    holder.execute("ROLLBACK")
    holder.close()
    worker.join(timeout=120)
    assert outcome == [401] and waited < 10, f"the wrong login waited {waited:.1f} s for the write lock"


def test_failures_back_off_per_account_then_lock_it(site) -> None:
    _app, client_for, clock, _url = site
    # Each attempt from a different address: only the account's own record can stop them.
    codes = [_try_login(client_for(None, f"203.0.113.{i}"), "alice", "wrong-password-x") for i in range(8)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3, codes
    fresh = client_for(None, "203.0.113.200")
    assert _try_login(fresh, "alice", PASSWORD) == 429  # locked: even the right password waits
    page = fresh.get("/login")
    refused = fresh.post("/login", data={"username": "alice", "password": PASSWORD,
                                         "csrf_token": CSRF_FIELD.search(page.text).group(1)})  # type: ignore[union-attr]
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert _try_login(fresh, "bob", PASSWORD) == 303  # other accounts are untouched
    clock.now += 3600
    assert _try_login(fresh, "alice", PASSWORD) == 303  # the lock ends; success clears the record
    assert _try_login(client_for(None, "203.0.113.201"), "alice", "wrong-password-x") == 401


def test_an_attacker_cannot_lock_the_owner_out_of_a_known_browser(site) -> None:
    _app, client_for, _clock, _url = site
    own = client_for("alice", "198.51.100.20")  # her browser: it got a device cookie at this login
    assert own.cookies.get("pm_device")
    for i in range(6):
        _try_login(client_for(None, f"203.0.113.{i}"), "alice", "wrong-password-x")
    assert _try_login(client_for(None, "203.0.113.99"), "alice", PASSWORD) == 429  # the account is locked ...
    assert _try_login(own, "alice", PASSWORD) == 303  # ... but not for the browser she logged in with
    forged = client_for(None, "203.0.113.98")
    forged.cookies.set("pm_device", own.cookies["pm_device"].split(".")[0] + ".0000", domain="testserver",
                       path="/login")
    assert _try_login(forged, "alice", PASSWORD) == 429  # a made-up device cookie is no key
    bob_with_alices = client_for(None, "203.0.113.97")
    bob_with_alices.cookies.set("pm_device", own.cookies["pm_device"], domain="testserver", path="/login")
    assert _try_login(bob_with_alices, "bob", PASSWORD) == 303  # valid for alice only; bob is not locked anyway
    codes = [_try_login(own, "alice", "wrong-password-y") for _ in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429], codes  # her browser's own failures still count


def test_failures_back_off_per_address_for_any_name(site) -> None:
    _app, client_for, clock, _url = site
    flood = client_for(None, "192.0.2.66")
    codes = [_try_login(flood, f"nobody{i}", "guess-guess-1") for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429], codes
    assert _try_login(flood, "alice", PASSWORD) == 429  # this address waits, whatever the name
    assert _try_login(client_for(None, "192.0.2.67"), "alice", PASSWORD) == 303  # others do not
    clock.now += 2
    assert _try_login(flood, "bob", PASSWORD) == 303  # the first backoff step is short


def test_failed_logins_are_answered_after_a_fixed_delay_whether_or_not_the_name_exists(site) -> None:
    _app, client_for, _clock, _url = site
    anon = client_for(None)
    timings = {}
    for name in ("alice", "no-such-reviewer"):
        page = anon.get("/login")
        token = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
        started = time.monotonic()
        r = anon.post("/login", data={"username": name, "password": "wrong-password-x", "csrf_token": token})
        timings[name] = time.monotonic() - started
        assert r.status_code == 401
    assert min(timings.values()) >= TARPIT, timings
    started = time.monotonic()
    assert _try_login(anon, "alice", PASSWORD) == 303
    assert time.monotonic() - started < 5


def test_the_hash_gate_refuses_what_it_cannot_start_soon() -> None:
    # The gate's clock stands still, so no token comes back while the flood is admitted (a busy machine cannot
    # change the count); the admitted attempts still wait their real delays.
    gate = HashGate(concurrency=1, rate=2.0, burst=2, max_wait=1.0, clock=Clock())
    running, most = 0, 0

    async def attempt() -> str:
        nonlocal running, most
        try:
            async with gate.slot():
                running += 1
                most = max(most, running)
                await asyncio.sleep(0.05)
                running -= 1
            return "ran"
        except Busy:
            return "busy"

    async def flood() -> list[str]:
        return list(await asyncio.gather(*(attempt() for _ in range(12))))

    outcomes = asyncio.run(flood())
    # 2 from the burst, then 2 per second within max_wait = 1 s: 4 run, the rest are refused at once.
    assert outcomes.count("ran") == 4 and outcomes.count("busy") == 8, outcomes
    assert most == 1  # one check at a time


# --- passwords -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["password", "12345678", "        ", "alice-alice", "Alice2026!!",
                                      "qwertyuiop12", "password123", "aaaaaaaaaaaaa", "short-1"])
def test_weak_passwords_are_refused(tmp_path: Path, password: str) -> None:
    from promedical.review import migrate
    from promedical.review.store import Database

    database = Database(f"sqlite:///{tmp_path / 'p.sqlite'}")
    migrate.upgrade(database.engine)
    with pytest.raises(UserError, match="password for 'alice'"), database.write() as session:
        auth.create_user(session, "alice", password, "reviewer")
    with database.write() as session:
        auth.create_user(session, "alice", "violet-otter-tram-42", "reviewer")  # a passphrase is fine
    database.dispose()


def test_weak_password_refused_on_the_web_and_the_cli(site) -> None:
    _app, client_for, _clock, url = site
    admin, csrf = _admin(client_for)
    weak = admin.post("/admin/users", data={**csrf, "username": "dr.cy", "password": "qwertyuiop12",
                                            "role": "reviewer"})
    assert weak.status_code == 422 and "too easy to guess" in weak.text
    result = CliRunner().invoke(cli, ["review", "create-user", "dr.cy", "--db", url],
                                env={"PROMEDICAL_REVIEW_PASSWORD": "password1234"})
    assert result.exit_code != 0 and "too easy to guess" in str(result.exception)


# --- size caps -----------------------------------------------------------------------------------------------------


def test_big_bodies_are_refused_before_parsing(site) -> None:
    _app, client_for, _clock, _url = site
    anon = client_for(None)
    big = json.dumps({"uid": "anon-00001", "answers": {"answer": "1"}, "pad": "x" * (3 * 1024 * 1024)})
    r = anon.post("/api/assignments/whatever/labels", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"]

    def chunks():  # no Content-Length: counted while it streams
        for _ in range(64):
            yield b"x" * 65536

    r = anon.post("/login", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    alice = client_for("alice")
    token = _tokens(alice, "pairwise")[0]
    r = alice.post(f"/api/assignments/{token}/labels", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_free_text_fields_are_capped(site) -> None:
    _app, client_for, _clock, _url = site
    alice = client_for("alice")
    rubric_token = _tokens(alice, "rubric")[0]
    payload = alice.get(f"/api/assignments/{rubric_token}").json()
    base = {"decision": "edit", "base_revision": payload["revision"], "reason": "clearer"}
    r = alice.post(f"/api/assignments/{rubric_token}/decision",
                   json={**base, "uid": "cap-edit-01", "edits": {"p1": {"text": "y" * 200_000}}})
    assert r.status_code == 422 and "at most 2000" in r.json()["error"]
    r = alice.post(f"/api/assignments/{rubric_token}/decision",
                   json={"uid": "cap-crit-01", "decision": "reject", "base_revision": payload["revision"],
                         "critique": "z" * 20_000})
    assert r.status_code == 422 and "critique" in r.json()["error"]
    form = alice.post(f"/a/{rubric_token}", data={"csrf_token": alice.headers["X-CSRF-Token"], "uid": "cap-form-01",
                                                  "decision": "reject", "base_revision": str(payload["revision"]),
                                                  "critique": "z" * 20_000})
    assert form.status_code == 422
    pair = _tokens(alice, "pairwise")[0]
    r = alice.post(f"/api/assignments/{pair}/labels", json={"uid": "cap-label-1", "answers": {"answer": "1" * 500}})
    assert r.status_code == 422
    assert alice.get(f"/api/assignments/{rubric_token}").json()["revision"] == payload["revision"]  # nothing saved


# --- minor items ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [10**400, "1e400", "nan", "inf", True])
def test_absurd_weights_are_a_clear_422(site, weight) -> None:  # type: ignore[no-untyped-def]
    _app, client_for, _clock, _url = site
    alice = client_for("alice")
    token = _tokens(alice, "rubric")[0]
    revision = alice.get(f"/api/assignments/{token}").json()["revision"]
    body = json.dumps({"uid": f"weight-{abs(hash(str(weight))) % 10**8:08d}", "decision": "edit",
                       "base_revision": revision, "reason": "weights", "edits": {"p1": {"weight": weight}}})
    r = alice.post(f"/api/assignments/{token}/decision", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "weight is not" in r.json()["error"], r.text


def test_admin_inputs_get_4xx_not_500(site) -> None:
    _app, client_for, _clock, _url = site
    admin, csrf = _admin(client_for)
    for batch in ("99999999999999999999999", "²", "-1", "1e3"):
        r = admin.post("/admin/projects/demo/rounds", data={**csrf, "batch": batch})
        assert r.status_code == 422 and "batch must be a whole number" in r.text, batch
    r = admin.post("/admin/projects/demo/assign", data={**csrf, "kind": "pairwise", "reviewers": "alice,bob",
                                                       "overlap": "²"})
    assert r.status_code == 422
    for name in ("a/b", "evil\r\nSet-Cookie: x=1", "tab\there", "  ", "x" * 200):
        r = admin.post("/admin/projects", data={**csrf, "name": name})
        assert r.status_code == 422 and "project name" in r.text, name
    made = admin.post("/admin/projects", data={**csrf, "name": "Kardiologie Überblick 心臓"})
    assert made.status_code == 303
    assert made.headers["location"] == "/admin/projects/Kardiologie%20%C3%9Cberblick%20%E5%BF%83%E8%87%93"
    assert admin.get(made.headers["location"]).status_code == 200
    export = admin.get(made.headers["location"] + "/export/decisions.jsonl")
    assert export.status_code == 200 and "filename*=UTF-8''" in export.headers["content-disposition"]
    huge = admin.post("/admin/projects/Kardiologie%20%C3%9Cberblick%20%E5%BF%83%E8%87%93/rounds",
                      data={**csrf, "batch": "999999999"})
    assert huge.status_code == 422  # within the digits but past the largest batch


def test_reviewers_do_not_receive_rubric_meta(site) -> None:
    _app, client_for, _clock, _url = site
    alice = client_for("alice")
    token = _tokens(alice, "rubric")[0]
    shown = alice.get(f"/api/assignments/{token}").json()["rubric"]
    assert shown["meta"] == {"category": "consumer health"}  # the sample's "source" stays on the server
    assert "promedical-sample" not in alice.get(f"/a/{token}").text


def test_unknown_keys_are_not_echoed(site) -> None:
    _app, client_for, _clock, _url = site
    alice = client_for("alice")
    pair = _tokens(alice, "pairwise")[0]
    r = alice.post(f"/api/assignments/{pair}/labels",
                   json={"uid": "echo-test-1", "answers": {"answer": "1"}, "<img src=x onerror=alert(1)>": 1})
    assert r.status_code == 422 and "onerror" not in r.text and "img" not in r.text
    rubric = _tokens(alice, "rubric")[0]
    revision = alice.get(f"/api/assignments/{rubric}").json()["revision"]
    r = alice.post(f"/api/assignments/{rubric}/decision",
                   json={"uid": "echo-test-2", "decision": "edit", "base_revision": revision, "reason": "r",
                         "edits": {"made-up-criterion-xyz": {"text": "t"}}})
    assert r.status_code == 422 and "made-up-criterion-xyz" not in r.text
    # invented criterion ids, answer values and decisions are refused without being repeated
    point = _tokens(alice, "pointwise")[0]
    r = alice.post(f"/api/assignments/{point}/labels",
                   json={"uid": "echo-test-3", "answers": {"<b>made-up-id</b>": "met"}})
    assert r.status_code == 422 and "made-up-id" not in r.text
    r = alice.post(f"/api/assignments/{pair}/labels", json={"uid": "echo-test-4", "answers": {"answer": "<i>perhaps"}})
    assert r.status_code == 422 and "perhaps" not in r.text
    r = alice.post(f"/api/assignments/{rubric}/decision",
                   json={"uid": "echo-test-5", "decision": "<u>maybe-later</u>", "base_revision": revision})
    assert r.status_code == 422 and "maybe-later" not in r.text


def test_security_headers_on_pages_api_and_500s(site) -> None:
    app, client_for, _clock, _url = site

    @app.get("/fault-injection-crash")  # deliberate fault injection: a route that raises
    def _crash() -> None:
        raise RuntimeError("injected fault")

    anon = client_for(None, raise_server_exceptions=False)
    page = anon.get("/login")
    csp = page.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)  # type: ignore[union-attr]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert f'<style nonce="{nonce}">' in page.text and "style=" not in page.text
    assert page.headers["strict-transport-security"].startswith("max-age=")
    alice = client_for("alice")
    rubric_page = alice.get(f"/a/{_tokens(alice, 'rubric')[0]}")
    nonce = re.search(r"'nonce-([^']+)'", rubric_page.headers["content-security-policy"]).group(1)  # type: ignore[union-attr]
    assert f'<script nonce="{nonce}">' in rubric_page.text
    for response in (alice.get("/api/me"), anon.get("/fault-injection-crash"), anon.get("/api/nothing-here")):
        assert response.headers["x-frame-options"] == "DENY", response.status_code
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "strict-transport-security" in response.headers
    crash = anon.get("/fault-injection-crash")
    assert crash.status_code == 500 and "injected fault" not in crash.text


def test_cookies_are_secure_by_default(site, tmp_path: Path) -> None:
    _app, client_for, _clock, _url = site
    anon = client_for(None)
    page = anon.get("/login")
    assert "secure" in page.headers["set-cookie"].lower()
    token = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    r = anon.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    session_cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("pm_session="))
    assert "secure" in session_cookie.lower() and "httponly" in session_cookie.lower()
    help_text = CliRunner().invoke(cli, ["review", "serve", "--help"], env={"COLUMNS": "200"}).output
    assert "--secure-cookies" in help_text and "--insecure-cookies" in help_text


def test_deactivate_and_revoke_sessions(site) -> None:
    app, client_for, _clock, url = site
    admin, bob = client_for("admin"), client_for("bob")
    assert bob.get("/api/me").status_code == 200
    csrf = {"csrf_token": admin.headers["X-CSRF-Token"]}
    assert admin.post("/admin/users/bob/deactivate", data=csrf).status_code == 303
    assert bob.get("/api/me").status_code == 401  # the live session ended
    assert _try_login(client_for(None, "192.0.2.10"), "bob", PASSWORD) == 401
    assert "deactivated" in admin.get("/admin").text
    assert admin.post("/admin/users/bob/activate", data=csrf).status_code == 303
    bob = client_for("bob", "192.0.2.11")
    assert admin.post("/admin/users/bob/revoke-sessions", data=csrf).status_code == 303
    assert bob.get("/api/me").status_code == 401
    last = admin.post("/admin/users/admin/deactivate", data=csrf)
    assert last.status_code == 422 and "last active admin" in last.text
    runner = CliRunner()
    alice = client_for("alice", "192.0.2.12")
    out = runner.invoke(cli, ["review", "deactivate-user", "alice", "--db", url, "--json"])
    assert out.exit_code == 0 and json.loads(out.output.strip().splitlines()[-1])["sessions_revoked"] == 1
    assert alice.get("/api/me").status_code == 401
    assert runner.invoke(cli, ["review", "activate-user", "alice", "--db", url]).exit_code == 0
    alice = client_for("alice", "192.0.2.13")
    out = runner.invoke(cli, ["review", "revoke-sessions", "alice", "--db", url, "--json"])
    assert out.exit_code == 0 and alice.get("/api/me").status_code == 401
    missing = runner.invoke(cli, ["review", "revoke-sessions", "ghost", "--db", url])
    assert missing.exit_code != 0 and "no account named 'ghost'" in str(missing.exception)
    with app.state.db.read() as session:
        assert session.scalar(select(User.active).where(User.username == "bob")) is True


def test_expired_sessions_are_purged(site) -> None:
    app, client_for, _clock, _url = site
    with app.state.db.write() as session:
        bob = session.scalar(select(User).where(User.username == "bob"))
        assert bob is not None
        for i in range(5):
            session.add(SessionRow(token_hash=f"{i:064d}", user_id=bob.id, csrf_token="x",
                                   expires_at=utcnow() - dt.timedelta(hours=1)))
    client_for("alice")  # a login purges
    with app.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(SessionRow)
                              .where(SessionRow.expires_at < utcnow())) == 0
        assert session.scalar(select(func.count()).select_from(SessionRow)) == 1


def test_demo_gives_each_account_its_own_password(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    runner = CliRunner()
    refused = runner.invoke(cli, ["review", "demo", "--db", url, "--password", "same-for-all-1"])
    assert refused.exit_code == 2  # there is no such option any more
    out = runner.invoke(cli, ["review", "demo", "--db", url, "--json"])
    assert out.exit_code == 0, out.output
    passwords = json.loads(out.output.strip().splitlines()[-1])["passwords"]
    assert set(passwords) == {"admin", "reviewer1", "reviewer2"} and len(set(passwords.values())) == 3
    app = create_app(url)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        for name, password in passwords.items():
            login_with(client, name, password)
    app.state.db.dispose()


def test_passwords_never_on_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["review", "create-user", "dr.x", "--password", "violet-otter-tram-42",
                               "--db", url]).exit_code == 2
    secret = tmp_path / "pw.txt"
    secret.write_text("violet-otter-tram-42\n")
    made = runner.invoke(cli, ["review", "create-user", "dr.x", "--password-file", str(secret), "--db", url])
    assert made.exit_code == 0, made.output
    prompted = runner.invoke(cli, ["review", "create-user", "dr.y", "--db", url],
                             input="amber-falcon-quilt-7\namber-falcon-quilt-7\n")
    assert prompted.exit_code == 0, prompted.output
    docs = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    assert not re.search(r"review (create-user|demo)[^\n|`]*--password\b(?!-file)", docs)
    assert "--password PASSWORD" not in docs


def test_admins_cannot_take_review_work(site) -> None:
    _app, client_for, _clock, url = site
    admin, csrf = _admin(client_for)
    r = admin.post("/admin/projects/demo/assign", data={**csrf, "kind": "pairwise", "reviewers": "alice,admin",
                                                       "overlap": "2"})
    assert r.status_code == 422 and "admin account(s) cannot take review work: admin" in r.text
    out = CliRunner().invoke(cli, ["review", "assign", "--project", "demo", "--kind", "pointwise",
                                   "--reviewers", "admin,bob", "--overlap", "1", "--db", url])
    assert out.exit_code != 0 and "cannot take review work" in str(out.exception)
    assert admin.get("/api/assignments").json()["assignments"] == []
