"""The review store on PostgreSQL: migrations, edits with conflict detection, labels and export, unchanged code.

Runs only when ``PROMEDICAL_TEST_POSTGRES_URL`` names a database it may wipe (e.g.
``postgresql+psycopg://postgres@127.0.0.1:55432/review_test``); skipped otherwise.
"""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from promedical.review.app import create_app
from promedical.review.launch import login_with
from promedical.review.sample import seed_demo
from promedical.review.store import Base, Database

URL = os.environ.get("PROMEDICAL_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not URL, reason="PROMEDICAL_TEST_POSTGRES_URL is not set")


def test_review_flow_on_postgres() -> None:
    assert URL is not None
    wipe = Database(URL)
    Base.metadata.drop_all(wipe.engine)
    with wipe.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    wipe.dispose()

    app = create_app(URL)
    seed_demo(app.state.db)
    https = "https://testserver"  # cookies are Secure by default
    with TestClient(app, base_url=https) as raw_alice, TestClient(app, base_url=https) as raw_bob:
        alice = login_with(raw_alice, "alice", "review-pass-1")
        bob = login_with(raw_bob, "bob", "review-pass-1")
        items = alice.get("/api/assignments").json()["assignments"]
        rubric = next(i["token"] for i in items if i["kind"] == "rubric")
        rubric_id = alice.get(f"/api/assignments/{rubric}").json()["rubric"]["id"]
        bob_token = next(t["token"] for t in bob.get("/api/assignments").json()["assignments"]
                         if t["kind"] == "rubric" and bob.get(f"/api/assignments/{t['token']}").json()["rubric"]["id"]
                         == rubric_id)
        edit = {"uid": "pg-edit-0001", "decision": "edit", "base_revision": 0, "reason": "reweight",
                "edits": {"p1": {"weight": 0.4}, "p3": {"weight": 0.3}}}
        assert alice.post(f"/api/assignments/{rubric}/decision", json=edit).status_code == 200
        stale = {**edit, "uid": "pg-edit-0002"}
        assert bob.post(f"/api/assignments/{bob_token}/decision", json=stale).status_code == 409
        pair = next(i["token"] for i in items if i["kind"] == "pairwise")
        ack = alice.post(f"/api/assignments/{pair}/labels", json={"uid": "pg-pair-0001", "answers": {"answer": "2"}})
        assert ack.status_code == 200
        again = alice.post(f"/api/assignments/{pair}/labels", json={"uid": "pg-pair-0001", "answers": {"answer": "2"}})
        assert again.json()["duplicate"] is True
        raw_admin = TestClient(app, base_url=https)
        admin = login_with(raw_admin, "admin", "review-pass-1")
        decisions = admin.get("/admin/projects/demo/export/decisions.jsonl").text.splitlines()
        assert len(decisions) == 1 and '"decision":"edit"' in decisions[0]
        raw_admin.close()
    app.state.db.dispose()
