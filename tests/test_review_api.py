"""The review app end to end in process: rubric decisions, edits, conflicts, adjudication, agreement, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from promedical.io import read_rubrics, read_verdicts
from promedical.review.app import create_app
from promedical.review.sample import seed_demo
from promedical.review.store import Database
from tests.helpers_review import Clients


@pytest.fixture()
def site(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    app = create_app(url)
    seed_demo(app.state.db)
    clients = Clients(app)
    yield app, clients
    clients.close()


def _tasks(client: TestClient, kind: str) -> list[str]:
    items = client.get("/api/assignments").json()["assignments"]
    return [i["token"] for i in items if i["kind"] == kind]


def test_rubric_accept_edit_reject_and_pass_rate(site, tmp_path: Path) -> None:
    app, client_for = site
    alice, bob = client_for("alice"), client_for("bob")
    tokens_a, tokens_b = _tasks(alice, "rubric"), _tasks(bob, "rubric")
    assert len(tokens_a) == 4 and len(tokens_b) == 4
    # Both reviewers see the same four rubrics; pair up their tokens by rubric id.
    by_rubric_b = {bob.get(f"/api/assignments/{t}").json()["rubric"]["id"]: t for t in tokens_b}
    payloads = {t: alice.get(f"/api/assignments/{t}").json() for t in tokens_a}
    ordered = sorted(payloads.items(), key=lambda kv: kv[1]["rubric"]["id"])
    (t0, p0), (t1, p1), (t2, p2), (_t3, p3) = ordered

    ok = alice.post(f"/api/assignments/{t0}/decision", json={"uid": "dec-accept-0001", "decision": "accept",
                                                           "base_revision": p0["revision"]})
    assert ok.status_code == 200 and ok.json()["duplicate"] is False
    again = alice.post(f"/api/assignments/{t0}/decision", json={"uid": "dec-accept-0001", "decision": "accept",
                                                              "base_revision": p0["revision"]})
    assert again.status_code == 200 and again.json()["duplicate"] is True

    bad_weights = alice.post(f"/api/assignments/{t1}/decision", json={
        "uid": "dec-edit-bad-01", "decision": "edit", "base_revision": 0, "reason": "tighten",
        "edits": {"p1": {"weight": 0.7}}})
    assert bad_weights.status_code == 422
    assert "weights sum to 1.2" in bad_weights.json()["error"]

    edit = {"uid": "dec-edit-good-1", "decision": "edit", "base_revision": 0, "reason": "split persona veto",
            "edits": {"p1": {"weight": 0.4, "text": "Gives accurate advice."}, "p3": {"weight": 0.3}}}
    assert alice.post(f"/api/assignments/{t1}/decision", json=edit).status_code == 200
    # Bob opened the same rubric at revision 0: his edit is stale and must not overwrite Alice's.
    stale = bob.post(f"/api/assignments/{by_rubric_b[p1['rubric']['id']]}/decision", json={
        **edit, "uid": "dec-edit-stale1", "edits": {"p2": {"text": "Other text"}}})
    assert stale.status_code == 409
    fresh = bob.get(f"/api/assignments/{by_rubric_b[p1['rubric']['id']]}").json()
    assert fresh["revision"] == 1 and fresh["rubric"]["criteria"][0]["text"] == "Gives accurate advice."
    assert [h["revision"] for h in fresh["history"]] == [0, 1] and fresh["history"][1]["author"] == "alice"

    no_critique = alice.post(f"/api/assignments/{t2}/decision", json={"uid": "dec-reject-001", "decision": "reject",
                                                                     "base_revision": 0})
    assert no_critique.status_code == 422
    assert alice.post(f"/api/assignments/{t2}/decision", json={
        "uid": "dec-reject-002", "decision": "reject", "base_revision": 0,
        "critique": "v1 penalises an AI disclaimer"}).status_code == 200

    with app.state.db.read() as session:
        from promedical.review import export, projects

        project = projects.project_by_name(session, "demo")
        records = {r.rubric_id: r for r in export.outcome_records(session, project)}
        rounds = export.round_summaries(session, project)
    assert set(records) == {p0["rubric"]["id"], p1["rubric"]["id"], p2["rubric"]["id"]}
    edited = records[p1["rubric"]["id"]]
    assert edited.decision == "edit" and edited.rubric is not None
    assert edited.rubric.version == 2 and edited.rubric.provenance.parent == f"{p1['rubric']['id']}@1"
    assert edited.rubric.provenance.review_round == 1 and edited.rubric.provenance.author == "alice"
    assert edited.edits[0].changes[0] == {"criterion_id": "p1", "field": "text", "old": p1["rubric"]["criteria"][0]
                                          ["text"], "new": "Gives accurate advice."}
    assert records[p2["rubric"]["id"]].rubric is None
    assert records[p2["rubric"]["id"]].critiques == ["v1 penalises an AI disclaimer"]
    assert rounds[0].decided == 3 and rounds[0].accepted == 1 and rounds[0].rubrics == 4
    assert rounds[0].pass_rate == pytest.approx(1 / 3)
    assert p3["kind"] == "rubric" and "provenance" not in p3["rubric"]

    # The pipeline's format: one ReviewDecision per (rubric, reviewer), per-round file for `data review-in`.
    from promedical.io import load_models
    from promedical.review.export import export_project
    from promedical.rubrics.review import ReviewDecision

    with app.state.db.read() as session:
        counts = export_project(session, projects.project_by_name(session, "demo"), tmp_path / "out", n_boot=20)
    assert counts["decisions.jsonl"] == counts["round-1.decisions.jsonl"] == 3
    loaded, problems = load_models(tmp_path / "out" / "round-1.decisions.jsonl", ReviewDecision, id_field="rubric_id")
    assert problems == []
    by_decision = {d.decision: d for _, d in loaded}
    assert set(by_decision) == {"accept", "edit", "reject"} and {d.reviewer for _, d in loaded} == {"alice"}
    assert by_decision["edit"].edited == edited.rubric and by_decision["edit"].round == 1
    assert by_decision["reject"].critique == "v1 penalises an AI disclaimer" and by_decision["accept"].edited is None
    kept = read_rubrics([tmp_path / "out" / "rubrics.jsonl"])
    assert sorted((r.id, r.version) for r in kept) == sorted([(p0["rubric"]["id"], 1), (p1["rubric"]["id"], 2)])
    assert rounds[0].decision_pass_rate == pytest.approx(1 / 3)


def test_adjudication_agreement_and_cli_export(site, tmp_path: Path) -> None:
    app, client_for = site
    reviewers = {name: client_for(name) for name in ("alice", "bob")}
    for name, client in reviewers.items():
        for k, token in enumerate(_tasks(client, "pointwise")):
            payload = client.get(f"/api/assignments/{token}").json()
            answers = {c["id"]: ("met" if (i + k) % 3 else "unmet") for i, c in enumerate(payload["criteria"])}
            r = client.post(f"/api/assignments/{token}/labels", json={"uid": f"pt-{name}-{k:04d}", "answers": answers})
            assert r.status_code == 200, r.text
        for k, token in enumerate(_tasks(client, "pairwise")):
            r = client.post(f"/api/assignments/{token}/labels",
                            json={"uid": f"pw-{name}-{k:04d}", "answers": {"answer": ["1", "2", "tie"][k % 3]}})
            assert r.status_code == 200, r.text
    admin = client_for("admin")
    page = admin.get("/admin/projects/demo/agreement")
    assert page.status_code == 200 and "krippendorff_alpha" in page.text and "judge:sample-judge" in page.text
    rows = [json.loads(line) for line in admin.get("/admin/projects/demo/export/agreement.jsonl").text.splitlines()]
    scopes = {(r["scope"], r["metric"], r["comparison"]) for r in rows}
    for tier in ("proficiency", "bonus", "veto", "all"):
        assert (f"pointwise/{tier}", "cohen_kappa", "reviewer-reviewer") in scopes
        assert (f"pointwise/{tier}", "cohen_kappa", "reviewer-judge") in scopes
    assert ("pairwise", "weighted_kappa", "reviewer-reviewer") in scopes
    assert ("pairwise", "krippendorff_alpha", "reviewers") in scopes
    assert any(r["comparison"] == "reviewer-judge" and r["scope"] == "pairwise" for r in rows)

    from typer.testing import CliRunner

    from promedical.cli.main import app as cli

    out = tmp_path / "export"
    result = CliRunner().invoke(cli, ["review", "export", "--project", "demo", "--out", str(out), "--n-boot", "50",
                                      "--db", app.state.db.url, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["verdicts.jsonl"] == 2 * 12 * 6 and summary["pairwise.jsonl"] == 2 * 12
    verdicts = read_verdicts(out / "verdicts.jsonl")
    assert {v.judge for v in verdicts} == {"human:alice", "human:bob"}
    assert read_rubrics([out / "rubrics.jsonl"]) == []  # no rubric decided in this test
    assert json.loads((out / "manifest.json").read_text())["files"]["agreement.jsonl"] == summary["agreement.jsonl"]


def test_bad_input_gets_clear_4xx(site) -> None:
    _app, client_for = site
    alice = client_for("alice")
    point = _tasks(alice, "pointwise")[0]
    pair = _tasks(alice, "pairwise")[0]
    cases = [
        (f"/api/assignments/{point}/labels", {"uid": "short", "answers": {}}, 422, "uid"),
        (f"/api/assignments/{point}/labels", {"uid": "ok-uid-0001", "answers": {"p1": "met"}}, 422, "missing answer"),
        (f"/api/assignments/{point}/labels", {"uid": "ok-uid-0002", "answers": {"zz": "met"}}, 422,
         "unknown criterion"),
        (f"/api/assignments/{pair}/labels", {"uid": "ok-uid-0003", "answers": {"answer": "A"}}, 422, "answer must be"),
        (f"/api/assignments/{pair}/decision", {"uid": "ok-uid-0004", "decision": "accept", "base_revision": 0}, 422,
         "takes labels"),
        ("/api/assignments/not-a-token/labels", {"uid": "ok-uid-0005", "answers": {}}, 404, "no such assignment"),
        (f"/api/assignments/{pair}/labels", {"uid": "ok-uid-0006"}, 422, "answers"),
    ]
    for path, body, status, words in cases:
        r = alice.post(path, json=body)
        assert r.status_code == status, (path, body, r.text)
        assert words in r.json()["error"], r.json()
    raw = alice.post(f"/api/assignments/{pair}/labels", content=b"{not json",
                     headers={"content-type": "application/json"})
    assert raw.status_code == 422


def test_schema_is_migrated_and_matches_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from promedical.review import migrate
    from promedical.review.store import Base

    database = Database(f"sqlite:///{tmp_path / 'm.sqlite'}")
    assert migrate.upgrade(database.engine) == migrate.head()
    with database.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    database.dispose()
