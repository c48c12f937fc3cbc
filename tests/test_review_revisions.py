"""Answers stay tied to the rubric revision they were given on; submission ids are per reviewer and never rebound.

Real app, real SQLite file, real HTTP handling in process. The scenario of the polarity flip: one reviewer marks a
prohibited veto ``met`` (a violation), another reviewer flips the veto to ``required``; the first answer must still
read as a violation in the export, and answers given on the two revisions are never pooled in agreement.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from promedical.io import read_verdicts
from promedical.review import auth, migrate, projects
from promedical.review.app import create_app
from promedical.review.export import export_project, ratings
from promedical.review.launch import login_with
from promedical.review.sample import sample_responses, sample_rubrics, sample_verdicts
from promedical.review.store import Assignment, Base, Database, Project, Submission, User

PASSWORD = "kestrel-orbit-73-lantern"


@pytest.fixture()
def site(tmp_path: Path):
    """One rubric with three responses: bob reviews the rubric, alice and carol label the first response."""
    app = create_app(f"sqlite:///{tmp_path / 'review.sqlite'}")
    rubrics = sample_rubrics(1)
    responses = sample_responses(rubrics)
    rng = random.Random(0)
    with app.state.db.write() as session:
        auth.create_user(session, "admin", PASSWORD, "admin")
        users = {name: auth.create_user(session, name, PASSWORD, "reviewer") for name in ("alice", "bob", "carol")}
        project = projects.create_project(session, "flip")
        projects.import_rubrics(session, project, rubrics)
        projects.import_responses(session, project, responses)
        projects.import_verdicts(session, project, sample_verdicts(rubrics, responses))
        projects.open_round(session, project)
        projects.assign(session, project, "rubric", [users["bob"]], 1, rng)
        projects.create_adjudication_tasks(session, project, "pointwise")
        projects.create_adjudication_tasks(session, project, "pairwise")
        projects.assign(session, project, "pointwise", [users["alice"], users["carol"]], 2, rng)
        projects.assign(session, project, "pairwise", [users["alice"], users["carol"]], 2, rng)
    clients: list[TestClient] = []

    def client_for(user: str) -> TestClient:
        client = TestClient(app, base_url="https://testserver")
        clients.append(client)
        return login_with(client, user, PASSWORD)  # type: ignore[return-value]

    yield app, client_for
    for client in clients:
        client.close()
    app.state.db.dispose()


def _first(client: TestClient, kind: str) -> tuple[str, dict]:
    """The reviewer's task of ``kind`` on the first response (sorted by response text), and its payload."""
    found = []
    for item in client.get("/api/assignments").json()["assignments"]:
        if item["kind"] == kind:
            payload = client.get(f"/api/assignments/{item['token']}").json()
            found.append((payload.get("response") or json.dumps(payload.get("responses")), item["token"], payload))
    _, token, payload = sorted(found)[0]
    return token, payload


def _flip_v1(bob: TestClient) -> None:
    token, shown = _first(bob, "rubric")
    assert next(c for c in shown["rubric"]["criteria"] if c["id"] == "v1")["polarity"] == "prohibited"
    r = bob.post(f"/api/assignments/{token}/decision", json={
        "uid": "bob-flip-0001", "decision": "edit", "base_revision": 0, "reason": "polarity was wrong",
        "edits": {"v1": {"polarity": "required"}}})
    assert r.status_code == 200, r.text


def test_an_answer_keeps_the_meaning_it_had_when_given(site, tmp_path: Path) -> None:
    app, client_for = site
    alice, bob, carol = client_for("alice"), client_for("bob"), client_for("carol")
    token_a, shown = _first(alice, "pointwise")
    answers = {c["id"]: "unmet" for c in shown["criteria"]}
    answers["v1"] = "met"  # prohibited: the response does the forbidden thing, a violation
    assert alice.post(f"/api/assignments/{token_a}/labels", json={"uid": "alice-p-0001", "answers": answers}
                      ).status_code == 200
    pair_a, _ = _first(alice, "pairwise")
    assert alice.post(f"/api/assignments/{pair_a}/labels", json={"uid": "alice-pair-01", "answers": {"answer": "1"}}
                      ).status_code == 200
    _flip_v1(bob)
    with app.state.db.read() as session:  # carol's assignment of the very pair alice answered
        task_id = session.scalar(select(Assignment.task_id).where(Assignment.token == pair_a))
        pair_c = session.scalar(select(Assignment.token).join(User, User.id == Assignment.reviewer_id)
                                .where(Assignment.task_id == task_id, User.username == "carol"))
    assert carol.post(f"/api/assignments/{pair_c}/labels", json={"uid": "carol-pair-01", "answers": {"answer": "1"}}
                      ).status_code == 200
    token_c, shown_c = _first(carol, "pointwise")
    assert token_c != token_a
    assert next(c for c in shown_c["criteria"] if c["id"] == "v1")["polarity"] == "required"
    assert carol.post(f"/api/assignments/{token_c}/labels", json={"uid": "carol-p-0001", "answers": answers}
                      ).status_code == 200

    with app.state.db.read() as session:
        project = session.scalar(select(Project).where(Project.name == "flip"))
        assert project is not None
        counts = export_project(session, project, tmp_path / "out", n_boot=50)
        rated = ratings(session, project)
        units = {(r.rater, r.unit) for r in rated if ":v1" in r.unit}
        pair_units = {r.rater: r.unit for r in rated if r.scope == "pairwise" and not r.rater.startswith("judge:")}
    # verdicts.jsonl pairs with rubrics.jsonl (the latest revision, where v1 is required): alice's "met" was given
    # on the prohibited v1, so it must not be exported as a verdict on the required one (it would read satisfied)
    verdicts = read_verdicts(tmp_path / "out" / "verdicts.jsonl")
    alice_v1 = [v for v in verdicts if v.judge == "human:alice" and v.criterion_id == "v1"]
    assert alice_v1 == []
    assert all(v.meta["rubric_revision"] in (0, 1) for v in verdicts)
    # labels.jsonl keeps every answer with the revision it was given on and what it meant there
    labels = [json.loads(line) for line in (tmp_path / "out" / "labels.jsonl").read_text().splitlines()]
    assert counts["labels.jsonl"] == len(labels) == counts["verdicts.jsonl"] + 1
    v1 = {(r["reviewer"], r["rubric_revision"]): r for r in labels if r["criterion_id"] == "v1"}
    assert set(v1) == {("alice", 0), ("carol", 1)}
    assert v1[("alice", 0)]["criterion"]["polarity"] == "prohibited" and v1[("alice", 0)]["outcome"] == "violated"
    assert v1[("carol", 1)]["criterion"]["polarity"] == "required" and v1[("carol", 1)]["outcome"] == "satisfied"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["labels_not_on_latest_revision"] == 1
    # agreement: alice's and carol's v1 answers are different questions, so different units
    alice_units = {u for rater, u in units if rater == "alice"}
    carol_units = {u for rater, u in units if rater == "carol"}
    assert alice_units and carol_units and not alice_units & carol_units
    # the judge's imported verdicts were given on revision 0: they pool with alice's, not carol's
    judge_units = {u for rater, u in units if rater.startswith("judge:")}
    assert alice_units <= judge_units and not carol_units & judge_units
    # pairwise answers on the same pair but different revisions are not pooled either
    assert set(pair_units) == {"alice", "carol"} and pair_units["alice"] != pair_units["carol"]
    pairs = [json.loads(line) for line in (tmp_path / "out" / "pairwise.jsonl").read_text().splitlines()]
    assert sorted((p["reviewer"], p["rubric_revision"]) for p in pairs) == [("alice", 0), ("carol", 1)]


def test_an_answer_on_a_revision_that_is_no_longer_current_is_refused(site) -> None:
    _app, client_for = site
    alice, bob = client_for("alice"), client_for("bob")
    token, shown = _first(alice, "pointwise")
    assert shown["revision"] == 0
    answers = {c["id"]: "met" for c in shown["criteria"]}
    _flip_v1(bob)
    stale = alice.post(f"/api/assignments/{token}/labels",
                       json={"uid": "alice-stale-01", "answers": answers, "revision": 0})
    assert stale.status_code == 409 and "changed since you opened it" in stale.json()["error"]
    fresh = alice.get(f"/api/assignments/{token}").json()
    assert fresh["revision"] == 1
    ok = alice.post(f"/api/assignments/{token}/labels", json={"uid": "alice-fresh-01", "answers": answers,
                                                               "revision": 1})
    assert ok.status_code == 200
    # the form carries the revision too: a page rendered before the edit is refused the same way
    pair_token, _ = _first(alice, "pairwise")
    page = alice.get(f"/a/{pair_token}")
    assert 'name="revision" value="1"' in page.text
    form = {"uid": "alice-form-pair-1", "answer": "1", "revision": "0",
            "csrf_token": alice.headers["x-csrf-token"]}
    assert alice.post(f"/a/{pair_token}", data=form, follow_redirects=False).status_code == 409


def test_the_reviewer_sees_their_earlier_answer_only_on_the_same_revision(site) -> None:
    _app, client_for = site
    alice, bob = client_for("alice"), client_for("bob")
    token, shown = _first(alice, "pointwise")
    answers = {c["id"]: "met" for c in shown["criteria"]}
    assert alice.post(f"/api/assignments/{token}/labels", json={"uid": "alice-seen-01", "answers": answers}
                      ).status_code == 200
    assert alice.get(f"/api/assignments/{token}").json()["answers"] == answers
    _flip_v1(bob)
    assert alice.get(f"/api/assignments/{token}").json()["answers"] == {}


def test_submission_ids_are_per_reviewer_and_never_rebound(site) -> None:
    app, client_for = site
    alice, carol = client_for("alice"), client_for("carol")
    token_a, shown = _first(alice, "pointwise")
    answers = {c["id"]: "met" for c in shown["criteria"]}
    first = alice.post(f"/api/assignments/{token_a}/labels", json={"uid": "shared-uid-01", "answers": answers})
    assert first.json() == {"ok": True, "uid": "shared-uid-01", "duplicate": False}
    # the same id with the same answer is a retry: acknowledged again, stored once
    again = alice.post(f"/api/assignments/{token_a}/labels", json={"uid": "shared-uid-01", "answers": answers})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    # the same id with a different answer is refused, not silently dropped
    changed = dict(answers, v1="unmet")
    clash = alice.post(f"/api/assignments/{token_a}/labels", json={"uid": "shared-uid-01", "answers": changed})
    assert clash.status_code == 409 and "already used with a different answer" in clash.json()["error"]
    # another reviewer may use the same id: ids are per reviewer, so nothing leaks about alice
    token_c, _ = _first(carol, "pointwise")
    theirs = carol.post(f"/api/assignments/{token_c}/labels", json={"uid": "shared-uid-01", "answers": changed})
    assert theirs.status_code == 200 and theirs.json()["duplicate"] is False
    # alice's own id on another of her assignments is hers to be told about
    pair_token, _ = _first(alice, "pairwise")
    other = alice.post(f"/api/assignments/{pair_token}/labels", json={"uid": "shared-uid-01",
                                                                      "answers": {"answer": "1"}})
    assert other.status_code == 409 and "another of your assignments" in other.json()["error"]
    with app.state.db.read() as session:
        stored = list(session.scalars(select(Submission).where(Submission.uid == "shared-uid-01")))
    assert len(stored) == 2 and len({s.reviewer_id for s in stored}) == 2


def test_a_reused_decision_id_with_another_decision_is_refused(site) -> None:
    _app, client_for = site
    bob = client_for("bob")
    token, _ = _first(bob, "rubric")
    body = {"uid": "bob-decide-01", "decision": "accept", "base_revision": 0}
    assert bob.post(f"/api/assignments/{token}/decision", json=body).json()["duplicate"] is False
    assert bob.post(f"/api/assignments/{token}/decision", json=body).json()["duplicate"] is True
    clash = bob.post(f"/api/assignments/{token}/decision", json={**body, "decision": "reject", "critique": "no"})
    assert clash.status_code == 409 and "different answer" in clash.json()["error"]


# --- the migration: answers stored before it get their reviewer and revision -----------------------------------


def _seed_0001(conn) -> None:
    """A database at schema 0001 with one rubric edited once, labels before and after the edit, and a decision."""
    t0 = dt.datetime(2026, 1, 1, 9, 0)
    rows = [
        "INSERT INTO users (id, username, password_hash, role, active, created_at) VALUES "
        "(1, 'alice', 'x', 'reviewer', TRUE, :t), (2, 'bob', 'x', 'reviewer', TRUE, :t)",
        "INSERT INTO projects (id, name, created_at) VALUES (1, 'p', :t)",
        "INSERT INTO rubric_items (id, project_id, rubric_id, rubric_version, revision) VALUES (1, 1, 'r', 1, 1)",
        "INSERT INTO rubric_revisions (id, item_id, number, rubric_json, changes_json, created_at) VALUES "
        "(1, 1, 0, '{}', '[]', :t), (2, 1, 1, '{}', '[]', :t2)",
        "INSERT INTO responses (id, project_id, response_id, item_id, model, text) VALUES (1, 1, 'x', 1, 'm', 't')",
        "INSERT INTO tasks (id, project_id, kind, item_id, response_a, created_at) VALUES "
        "(1, 1, 'pointwise', 1, 1, :t), (2, 1, 'rubric', 1, NULL, :t)",
        "INSERT INTO assignments (id, task_id, reviewer_id, token, display_order, created_at) VALUES "
        "(1, 1, 1, 'ta', 'a', :t), (2, 1, 2, 'tb', 'a', :t), (3, 2, 2, 'tc', 'a', :t)",
        "INSERT INTO submissions (id, uid, assignment_id, created_at) VALUES "
        "(1, 'before-edit', 1, :t1), (2, 'after-edit', 2, :t3), (3, 'the-edit', 3, :t2)",
        "INSERT INTO labels (id, submission_id, criterion_id, value) VALUES (1, 1, 'v1', 'met'), (2, 2, 'v1', 'met')",
        "INSERT INTO rubric_decisions (id, submission_id, decision, critique, revision) VALUES (1, 3, 'edit', NULL, 1)",
    ]
    times = {"t": t0, "t1": t0 + dt.timedelta(minutes=1), "t2": t0 + dt.timedelta(minutes=2),
             "t3": t0 + dt.timedelta(minutes=3)}
    for sql in rows:
        conn.execute(text(sql), {k: v for k, v in times.items() if f":{k}" in sql})


def _check_backfill(database: Database) -> None:
    assert migrate.upgrade(database.engine, "0001") == "0001"
    with database.engine.begin() as conn:
        _seed_0001(conn)
    assert migrate.upgrade(database.engine, "0002_answer_revision") == "0002_answer_revision"
    with database.read() as session:
        got = {s.uid: (s.reviewer_id, s.rubric_revision, s.answer_sha256) for s in session.scalars(select(Submission))}
    assert got == {"before-edit": (1, 0, None), "after-edit": (2, 1, None), "the-edit": (2, 0, None)}
    # ids are now per reviewer: bob may reuse alice's id (explicit ids: the raw inserts left the sequences behind)
    with database.write() as session:
        session.add(Submission(id=10, uid="before-edit", assignment_id=2, reviewer_id=2, rubric_revision=1))
    with pytest.raises(Exception, match=r"(?i)unique"), database.write() as session:
        session.add(Submission(id=11, uid="before-edit", assignment_id=1, reviewer_id=1, rubric_revision=1))


def test_migration_backfills_reviewer_and_revision_on_sqlite(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    database = Database(f"sqlite:///{tmp_path / 'old.sqlite'}")
    _check_backfill(database)
    assert migrate.upgrade(database.engine) == migrate.head()
    with database.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # back on after the table rebuild
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    database.dispose()


@pytest.mark.skipif(not os.environ.get("PROMEDICAL_TEST_POSTGRES_URL"), reason="PROMEDICAL_TEST_POSTGRES_URL unset")
def test_migration_backfills_reviewer_and_revision_on_postgres() -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    database = Database(os.environ["PROMEDICAL_TEST_POSTGRES_URL"])
    Base.metadata.drop_all(database.engine)
    with database.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    _check_backfill(database)
    assert migrate.upgrade(database.engine) == migrate.head()
    with database.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    Base.metadata.drop_all(database.engine)
    with database.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    database.dispose()
