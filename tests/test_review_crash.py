"""Durability: SIGKILL the real server (uvicorn subprocess) during a burst of submissions, restart it, and check
that every acknowledged answer is in the database; a retried uid is then recognised, not stored twice."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from promedical.review import launch
from promedical.review.loadtest import start_burst, stored_uids
from promedical.review.sample import seed_demo
from promedical.review.store import Database, Submission

pytestmark = pytest.mark.slow
REVIEWERS = tuple(f"rev{i:02d}" for i in range(6))


def test_no_acknowledged_answer_is_lost_when_the_server_is_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    seeding = Database(url)
    from promedical.review import migrate

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
                from promedical.review.store import Assignment

                token = session.scalar(select(Assignment.token).join(Submission).where(Submission.uid == mine[0]))
            payload = client.get(f"/api/assignments/{token}").json()
            answers = ({"answer": "1"} if payload["kind"] == "pairwise"
                       else {c["id"]: "met" for c in payload["criteria"]})
            again = client.post(f"/api/assignments/{token}/labels", json={"uid": mine[0], "answers": answers})
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
