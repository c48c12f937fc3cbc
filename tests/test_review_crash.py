"""Durability and concurrency against the real server (uvicorn subprocess): SIGKILL it during a burst, restart,
check that every acknowledged answer is in the database and that a retried uid is recognised, not stored twice;
race several editors on one rubric and check that exactly one edit wins while the others get 409."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from promedical.review import launch, migrate
from promedical.review.blind import slot_of
from promedical.review.loadtest import start_burst, stored_uids
from promedical.review.sample import seed_demo
from promedical.review.store import Assignment, Database, Label, Submission

pytestmark = pytest.mark.slow
REVIEWERS = tuple(f"rev{i:02d}" for i in range(6))


def test_no_acknowledged_answer_is_lost_when_the_server_is_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    seeding = Database(url)
    migrate.upgrade(seeding.engine)
    seed_demo(seeding, reviewers=REVIEWERS, overlap=2)
    seeding.dispose()

    server = launch.start(url)
    try:
        threads, result, stop = start_burst(server.base_url, REVIEWERS, "review-pass-1", per_reviewer=60)
        deadline = time.monotonic() + 300
        while len(result.acknowledged) < 120 and time.monotonic() < deadline and any(t.is_alive() for t in threads):
            time.sleep(0.02)
        acked_before_kill = len(result.acknowledged)
        server.kill()
        for thread in threads:
            thread.join(timeout=120)
        stop.set()
    finally:
        server.kill()
    assert acked_before_kill >= 120, "the burst did not get going before the kill"
    assert result.failed > 0, "the kill did not interrupt the burst"  # otherwise this tested nothing

    restarted = launch.start(url)
    try:
        database = Database(url)
        acked = list(result.acknowledged)
        stored = stored_uids(database, acked)
        lost = sorted(set(acked) - stored)
        assert lost == [], f"{len(lost)} acknowledged answers lost"
        with database.read() as session:
            total = session.scalar(select(func.count()).select_from(Submission))
        assert total is not None and total >= len(acked)
        # Retrying an acknowledged uid after the restart is recognised as a duplicate.
        client = launch.login(restarted.base_url, REVIEWERS[0], "review-pass-1")
        mine = [u for u in acked if u.startswith(f"{REVIEWERS[0]}-")]
        items = [i for i in client.get("/api/assignments").json()["assignments"] if i["kind"] == "pairwise"]
        if mine and items:
            with database.read() as session:
                assignment, submission = session.execute(
                    select(Assignment, Submission).join(Submission).where(Submission.uid == mine[0])).one()
                stored = {x.criterion_id: x.value
                          for x in session.scalars(select(Label).where(Label.submission_id == submission.id))}
            # the retry carries the same answer (a different one under the same uid is refused)
            answers = {"answer": slot_of(assignment.display_order, stored[""])} if "" in stored else stored
            again = client.post(f"/api/assignments/{assignment.token}/labels",
                                json={"uid": mine[0], "answers": answers})
            assert again.status_code == 200 and again.json()["duplicate"] is True
        fresh = client.post(f"/api/assignments/{items[0]['token']}/labels",
                            json={"uid": "after-restart-1", "answers": {"answer": "tie"}})
        assert fresh.status_code == 200 and fresh.json()["duplicate"] is False
        client.close()
        database.dispose()
    except httpx.HTTPError as exc:
        pytest.fail(f"restarted server did not answer: {exc}")
    finally:
        restarted.stop()


def test_concurrent_edits_of_one_rubric_one_wins_the_rest_get_409(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    names = tuple(f"ed{i}" for i in range(6))
    seeding = Database(url)
    migrate.upgrade(seeding.engine)
    seed_demo(seeding, reviewers=names, n_rubrics=1, overlap=len(names))
    seeding.dispose()
    with launch.running(url) as server:
        clients = [launch.login(server.base_url, n, "review-pass-1") for n in names]
        tokens = [next(i["token"] for i in c.get("/api/assignments").json()["assignments"] if i["kind"] == "rubric")
                  for c in clients]
        statuses: list[int] = []
        barrier = threading.Barrier(len(clients))

        def edit(k: int) -> None:
            body = {"uid": f"race-edit-{k:04d}", "decision": "edit", "base_revision": 0, "reason": f"editor {k}",
                    "edits": {"p2": {"text": f"Red flags, as worded by editor {k}."}}}
            barrier.wait()
            statuses.append(clients[k].post(f"/api/assignments/{tokens[k]}/decision", json=body).status_code)

        threads = [threading.Thread(target=edit, args=(k,)) for k in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        final = clients[0].get(f"/api/assignments/{tokens[0]}").json()
        for c in clients:
            c.close()
    assert sorted(statuses) == [200] + [409] * (len(names) - 1)
    assert final["revision"] == 1 and len(final["history"]) == 2
    winner = final["history"][1]
    assert final["rubric"]["criteria"][1]["text"] == f"Red flags, as worded by editor {winner['author'][2:]}."
