"""Group commit (``promedical/review/commits.py``) on real SQLite: concurrent answers share transactions, each is
acknowledged once and stored once, a refused answer in a batch leaves the others alone, and a failed commit
acknowledges nothing of its batch. The HTTP test runs the real app under uvicorn on loopback in this process, so
it can count the database's commits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from promedical.review import answers, auth, migrate
from promedical.review.app import create_app
from promedical.review.commits import GroupCommit
from promedical.review.errors import ReviewError
from promedical.review.launch import free_port
from promedical.review.loadtest import start_burst
from promedical.review.sample import seed_demo
from promedical.review.store import Database, Label, Submission, User

REVIEWERS = tuple(f"rev{i:02d}" for i in range(6))
PASSWORD = "review-pass-1"


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    database = Database(url)
    migrate.upgrade(database.engine)
    seed_demo(database, reviewers=REVIEWERS, overlap=2, password=PASSWORD)
    database.dispose()
    yield url


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    return server, thread, f"http://127.0.0.1:{port}"


def test_concurrent_answers_share_commits_and_each_is_stored_once(seeded: str) -> None:
    app = create_app(seeded, secure_cookies=False)
    commits: list[int] = []
    event.listen(app.state.db.engine, "commit", lambda _conn: commits.append(1))
    server, thread, base_url = _serve(app)
    try:
        go = threading.Event()
        threads, result, _stop = start_burst(base_url, REVIEWERS, PASSWORD, per_reviewer=40, go=go)
        deadline = time.monotonic() + 120
        while result.logged_in + result.failed < len(REVIEWERS) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # each has loaded its assignments
        before = len(commits)
        go.set()
        for worker in threads:
            worker.join(timeout=120)
        during = len(commits) - before
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert result.failed == 0 and result.refused == 0
    acked = list(result.acknowledged)
    assert len(acked) == len(REVIEWERS) * 40 and len(set(acked)) == len(acked)
    # Several answers per transaction; one commit per answer is what this replaces.
    assert during < len(acked), f"{during} commits for {len(acked)} answers: no answers shared a commit"
    with app.state.db.read() as session:
        rows = session.execute(select(Submission.uid, func.count()).where(Submission.uid.in_(acked))
                               .group_by(Submission.uid)).all()
    app.state.db.dispose()
    assert len(rows) == len(acked) and all(count == 1 for _uid, count in rows)


def _reviewer(database: Database, name: str) -> tuple[auth.CurrentUser, list[dict[str, Any]]]:
    with database.write() as session:
        user_id = session.scalar(select(User.id).where(User.username == name))
        assert user_id is not None
        token = auth.open_session(session, user_id)
    with database.read() as session:
        user = auth.lookup(session, token)
        assert user is not None
        items = [answers.payload(session, user, i["token"])
                 for i in answers.my_assignments(session, user) if i["kind"] == "pairwise"]
    return user, items


def _held_batch(commits: GroupCommit) -> threading.Event:
    """Occupy the writer with a job that waits, so the jobs submitted next are queued and form one batch."""
    release, started = threading.Event(), threading.Event()

    def hold(_session: Session) -> None:
        started.set()
        release.wait(30)

    commits.submit(hold)
    assert started.wait(30)
    return release


def _held_writer(url: str, reviewer: str) -> tuple[Database, auth.CurrentUser, list[dict[str, Any]], GroupCommit,
                                                    threading.Event]:
    """A database, a reviewer with their assignments, and a group-commit writer held until ``release.set()``."""
    database = Database(url)
    user, items = _reviewer(database, reviewer)
    commits = GroupCommit(database)
    return database, user, items, commits, _held_batch(commits)


def test_a_refused_answer_in_a_batch_leaves_the_others_stored(seeded: str) -> None:
    database, user, items, commits, release = _held_writer(seeded, REVIEWERS[0])

    def label(uid: str, answer: str) -> Any:
        return lambda session: answers.submit_labels(session, user, items[0]["token"], uid, {"answer": answer})

    first = commits.submit(label("batch-answer-1", "1"))
    refused = commits.submit(label("batch-answer-1", "2"))  # same uid, other answer: 409, rolled back alone
    invalid = commits.submit(label("batch-answer-2", "maybe"))  # 422
    retried = commits.submit(label("batch-answer-1", "1"))  # a retry within the same batch: a duplicate
    second = commits.submit(label("batch-answer-3", "tie"))
    release.set()
    assert first.result(30).duplicate is False and second.result(30).duplicate is False
    assert retried.result(30).duplicate is True
    with pytest.raises(ReviewError) as conflict:
        refused.result(30)
    assert conflict.value.status == 409
    with pytest.raises(ReviewError) as bad:
        invalid.result(30)
    assert bad.value.status == 422
    assert commits.batches == 2, "the five answers did not share one transaction"
    with database.read() as session:
        stored = set(session.scalars(select(Submission.uid).where(Submission.reviewer_id == user.id)))
    assert stored == {"batch-answer-1", "batch-answer-3"}
    database.dispose()


def test_a_failed_commit_acknowledges_nothing_of_its_batch(seeded: str) -> None:
    """Fault injection: one job defers foreign-key checks and writes a dangling label, so the COMMIT fails."""
    database, user, items, commits, release = _held_writer(seeded, REVIEWERS[1])

    def dangling(session: Session) -> None:
        session.execute(text("PRAGMA defer_foreign_keys=ON"))
        session.add(Label(submission_id=10**9, criterion_id="", value="a"))
        session.flush()

    good = commits.submit(lambda session: answers.submit_labels(session, user, items[0]["token"],
                                                                "doomed-answer-1", {"answer": "1"}))
    broken = commits.submit(dangling)
    release.set()
    for future in (good, broken):
        with pytest.raises(Exception, match="FOREIGN KEY"):
            future.result(30)
    with database.read() as session:
        assert session.scalar(select(Submission).where(Submission.uid == "doomed-answer-1")) is None
    # The writer goes on: the next answer is stored and acknowledged.
    after = commits.submit(lambda session: answers.submit_labels(session, user, items[0]["token"],
                                                                 "after-failure-1", {"answer": "tie"}))
    assert after.result(30).duplicate is False
    database.dispose()


def test_an_answer_cancelled_while_queued_is_not_written_and_the_writer_goes_on(seeded: str) -> None:
    """A request that goes away while its answer waits (its future is cancelled) must not stop the writer."""
    database, user, items, commits, release = _held_writer(seeded, REVIEWERS[2])

    def label(uid: str) -> Any:
        return lambda session: answers.submit_labels(session, user, items[0]["token"], uid, {"answer": "1"})

    gone = commits.submit(label("cancelled-answer-1"))
    kept = commits.submit(label("kept-answer-1"))
    assert gone.cancel()
    release.set()
    assert kept.result(30).duplicate is False
    assert commits.submit(label("later-answer-1")).result(30).duplicate is False
    with database.read() as session:
        stored = set(session.scalars(select(Submission.uid).where(Submission.reviewer_id == user.id)))
    assert stored == {"kept-answer-1", "later-answer-1"}
    database.dispose()
