"""Group commit: answers submitted at the same time are written in one transaction and acknowledged after it.

A durable commit costs an fsync (SQLite ``synchronous=FULL``: several milliseconds on this kind of disk), and
concurrent writers that each open their own ``BEGIN IMMEDIATE`` queue on SQLite's lock, whose busy handler sleeps
in growing steps (up to 100 ms) before it retries: with 20 reviewers answering at once that gave a p99 above a
second. Here one writer thread takes every answer queued so far, runs each in its own SAVEPOINT inside one
transaction (an answer that is refused, e.g. 409 or 422, is rolled back alone and does not touch the others),
commits once, and only then completes each request's future. So every acknowledgement still follows a durable
commit that contains its answer; if the commit fails, every answer of the batch gets the error and none is
acknowledged (nothing of the batch was stored). While one batch commits, the next one queues up, so batches grow
with the load and need no timer.

The writer thread starts on the first job and ends after ``idle`` seconds without one.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from promedical.review.store import Database

T = TypeVar("T")
Job = tuple[Callable[[Session], Any], "Future[Any]"]


class GroupCommit:
    """Run write jobs (``job(session) -> result``) in shared transactions; see the module docstring."""

    def __init__(self, database: Database, *, max_batch: int = 64, idle: float = 5.0) -> None:
        self.database, self.max_batch, self.idle = database, max_batch, idle
        self._queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False
        self.batches = 0  # transactions committed or tried (for tests and benchmarks)
        self.jobs = 0

    def submit(self, job: Callable[[Session], T]) -> Future[T]:
        """Queue ``job``; the future completes after the commit that holds its writes (or with its error)."""
        future: Future[T] = Future()
        with self._lock:
            self._queue.put((job, future))
            if not self._running:
                self._running = True
                threading.Thread(target=self._loop, name="review-group-commit", daemon=True).start()
        return future

    async def run(self, job: Callable[[Session], T]) -> T:
        """``submit`` and wait without holding a worker thread."""
        return await asyncio.wrap_future(self.submit(job))

    def _loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.idle)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._running = False
                        return
                continue
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[Job]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            with self.database.write() as session:
                for job, future in batch:
                    if not future.set_running_or_notify_cancel():
                        continue  # cancelled while queued (its request is gone): not run, so nothing to answer
                    try:
                        with session.begin_nested():
                            result = job(session)
                    except Exception as exc:  # refused or failed: its savepoint is rolled back, the rest goes on
                        outcomes.append((future, None, exc))
                    else:
                        outcomes.append((future, result, None))
        except BaseException as exc:  # the transaction (or its commit) failed: nothing of this batch is stored
            for _job, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self.batches += 1
            self.jobs += len(batch)
        for future, result, error in outcomes:
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
