"""Security of the review app: login required, reviewers fenced in, CSRF enforced, adjudication blinded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from promedical.review import blind
from promedical.review.app import create_app
from promedical.review.sample import SAMPLE_MODELS, seed_demo
from promedical.review.store import Assignment, Label, ResponseRow, Submission, Task, User
from tests.helpers_review import Clients


@pytest.fixture()
def site(tmp_path: Path):
    app = create_app(f"sqlite:///{tmp_path / 'review.sqlite'}")
    seed_demo(app.state.db, reviewers=("alice", "bob", "carol"), overlap=2)
    clients = Clients(app, follow_redirects=False)
    yield app, clients
    clients.close()


def _tokens(client: TestClient) -> list[dict]:
    return client.get("/api/assignments").json()["assignments"]


def test_anonymous_requests_are_refused(site) -> None:
    _app, client_for = site
    alice = client_for("alice")
    token = _tokens(alice)[0]["token"]
    anon = client_for(None)
    for path in ("/", f"/a/{token}", "/admin", "/admin/projects/demo", "/admin/projects/demo/agreement",
                 "/admin/projects/demo/export/decisions.jsonl"):
        r = anon.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    for path in ("/api/me", "/api/assignments", f"/api/assignments/{token}"):
        r = anon.get(path)
        assert r.status_code == 401 and "log in" in r.json()["error"], path
    r = anon.post(f"/api/assignments/{token}/labels", json={"uid": "anon-0001", "answers": {"answer": "1"}})
    assert r.status_code == 401
    assert anon.post(f"/a/{token}", data={"answer": "1"}).status_code == 401
    anon.cookies.set("pm_session", "forged-session-token")
    assert anon.get("/api/assignments").status_code == 401


def test_reviewers_cannot_reach_each_others_work_or_admin(site) -> None:
    app, client_for = site
    alice, bob = client_for("alice"), client_for("bob")
    mine = {t["token"] for t in _tokens(alice)}
    theirs = [t for t in _tokens(bob) if t["token"] not in mine]
    assert theirs
    for item in theirs:
        token = item["token"]
        assert alice.get(f"/a/{token}").status_code == 404
        assert alice.get(f"/api/assignments/{token}").status_code == 404
        body = {"uid": f"x-{token[:10]}", "answers": {"answer": "1"}}
        assert alice.post(f"/api/assignments/{token}/labels", json=body).status_code == 404
    for path in ("/admin", "/admin/projects/demo", "/admin/projects/demo/agreement",
                 "/admin/projects/demo/export/pairwise.jsonl"):
        assert alice.get(path).status_code == 403, path
    assert alice.post("/admin/projects", data={"name": "mine", "csrf_token": alice.headers["X-CSRF-Token"]}
                      ).status_code == 403
    # A shared task: Bob answers; the other reviewer of that task must not see his answer on their copy.
    shared = next(t for t in _tokens(bob) if t["kind"] == "pairwise")
    with app.state.db.read() as session:
        task_id = session.scalar(select(Assignment.task_id).where(Assignment.token == shared["token"]))
        other = session.execute(
            select(Assignment.token, User.username).join(User, User.id == Assignment.reviewer_id)
            .where(Assignment.task_id == task_id, Assignment.token != shared["token"])
        ).first()
    assert other is not None
    assert bob.post(f"/api/assignments/{shared['token']}/labels",
                    json={"uid": "bob-answer-01", "answers": {"answer": "tie"}}).status_code == 200
    assert bob.get(f"/api/assignments/{shared['token']}").json()["answer"] == "tie"
    assert client_for(other.username).get(f"/api/assignments/{other.token}").json()["answer"] is None


def test_csrf_is_enforced_on_every_state_change(site) -> None:
    _app, client_for = site
    alice, bob = client_for("alice"), client_for("bob")
    item = next(t for t in _tokens(alice) if t["kind"] == "pairwise")
    url = f"/api/assignments/{item['token']}/labels"
    body = {"uid": "csrf-test-001", "answers": {"answer": "1"}}
    good = alice.headers.pop("X-CSRF-Token")
    assert alice.post(url, json=body).status_code == 403
    assert alice.post(url, json=body, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert alice.post(url, json=body, headers={"X-CSRF-Token": bob.headers["X-CSRF-Token"]}).status_code == 403
    assert alice.post(f"/a/{item['token']}", data={"answer": "1", "uid": "csrf-form-01"}).status_code == 403
    assert alice.post("/logout").status_code == 403
    assert alice.post(url, json=body, headers={"X-CSRF-Token": good}).status_code == 200
    form = alice.post(f"/a/{item['token']}", data={"answer": "2", "uid": "csrf-form-02", "csrf_token": good})
    assert form.status_code == 303
    # The login form uses a double-submit cookie: a cross-site post without it is refused.
    anon = client_for(None)
    r = anon.post("/login", data={"username": "alice", "password": "review-pass-1", "csrf_token": "made-up"})
    assert r.status_code == 403
    page = anon.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    wrong = anon.post("/login", data={"username": "alice", "password": "not-the-password", "csrf_token": token})
    assert wrong.status_code == 401 and "wrong username or password" in wrong.text


def _every_reviewer_payload(client: TestClient) -> list[str]:
    """Every body and header the reviewer can receive: pages, API list, each assignment page and payload."""
    seen = []
    for path in ("/", "/api/me", "/api/assignments"):
        r = client.get(path)
        seen += [r.text, str(dict(r.headers))]
    for item in client.get("/api/assignments").json()["assignments"]:
        for path in (f"/a/{item['token']}", f"/api/assignments/{item['token']}"):
            r = client.get(path)
            assert r.status_code == 200
            seen += [r.text, str(dict(r.headers))]
    return seen


def test_blinding_no_model_names_ids_or_order_reach_reviewers(site) -> None:
    app, client_for = site
    with app.state.db.read() as session:
        rows = list(session.scalars(select(ResponseRow)))
    forbidden = {m.lower() for m in SAMPLE_MODELS} | {m.rsplit("/", 1)[-1].lower() for m in SAMPLE_MODELS}
    forbidden |= {r.response_id.lower() for r in rows} | {"acme", "contoso", "northwind"}
    keys = ('"display_order"', '"response_a"', '"response_b"', '"response_id"', '"model"', "display_order=")
    for name in ("alice", "bob", "carol"):
        client = client_for(name)
        for text in _every_reviewer_payload(client):
            low = text.lower()
            leaks = sorted(f for f in forbidden if re.search(rf"\b{re.escape(f)}\b", low))
            assert not leaks, (name, leaks)
            assert not [k for k in keys if k in low], name
    assert any("[model]" in t for t in _every_reviewer_payload(client_for("alice")))  # sample texts name models


def test_pair_order_is_randomised_per_reviewer_and_recorded(site) -> None:
    app, client_for = site
    with app.state.db.read() as session:
        pairs = session.execute(
            select(Assignment, Task).join(Task, Task.id == Assignment.task_id).where(Task.kind == "pairwise")
        ).all()
        texts = {r.id: r.text for r in session.scalars(select(ResponseRow))}
    orders = [a.display_order for a, _ in pairs]
    assert set(orders) == {"ab", "ba"}
    by_user = {name: client_for(name) for name in ("alice", "bob", "carol")}
    with app.state.db.read() as session:
        names = {u.id: u.username for u in session.scalars(select(User))}
    variants = blind.name_variants(SAMPLE_MODELS)
    for assignment, task in pairs[:8]:
        client = by_user[names[assignment.reviewer_id]]
        shown = client.get(f"/api/assignments/{assignment.token}").json()["responses"]
        first, second = (task.response_a, task.response_b)[:: 1 if assignment.display_order == "ab" else -1]
        assert [s["text"] for s in shown] == [blind.mask_models(texts[first], variants),
                                              blind.mask_models(texts[second], variants)]
        uid = f"order-{assignment.id:06d}"
        assert client.post(f"/api/assignments/{assignment.token}/labels",
                           json={"uid": uid, "answers": {"answer": "1"}}).status_code == 200
        with app.state.db.read() as session:
            stored = session.scalar(select(Label.value).join(Submission, Submission.id == Label.submission_id)
                                    .where(Submission.uid == uid))
        assert stored == assignment.display_order[0]  # slot 1 is whatever this reviewer saw first
