"""Load generator for a running review server: reviewers log in and submit answers from threads.

Used by the crash test (kill the server mid-burst, restart, count) and by ``benchmarks/review_load.py``. Every
submission carries a fresh uid; a uid is recorded as acknowledged only when the server answered 2xx, so after a
crash "acknowledged but missing from the database" is exactly the count of lost writes.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from promedical.review.launch import login
from promedical.review.store import Database, Submission


@dataclass
class BurstResult:
    acknowledged: list[str] = field(default_factory=list)
    refused: int = 0  # 4xx/5xx answers
    failed: int = 0  # no answer (connection refused or reset: the server is gone)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, uid: str, seconds: float) -> None:
        with self.lock:
            self.acknowledged.append(uid)
            self.latencies.append(seconds)


def _answers(payload: dict[str, Any], rng: random.Random) -> dict[str, str]:
    if payload["kind"] == "pointwise":
        return {c["id"]: rng.choice(("met", "unmet")) for c in payload["criteria"]}
    return {"answer": rng.choice(("1", "2", "tie"))}


def _reviewer(base_url: str, name: str, password: str, count: int, result: BurstResult, stop: threading.Event,
              seed: int) -> None:
    rng = random.Random(seed)
    try:
        client = login(base_url, name, password, timeout=120.0)
    except (httpx.HTTPError, RuntimeError):
        with result.lock:
            result.failed += 1
        return
    try:
        items = [i for i in client.get("/api/assignments").json()["assignments"] if i["kind"] != "rubric"]
        payloads = [client.get(f"/api/assignments/{i['token']}").json() for i in items]
        for k in range(count):
            if stop.is_set() or not payloads:
                return
            payload = payloads[k % len(payloads)]
            uid = f"{name}-{seed}-{k:06d}-{rng.getrandbits(32):08x}"
            started = time.perf_counter()
            try:
                answer = client.post(f"/api/assignments/{payload['token']}/labels",
                                     json={"uid": uid, "answers": _answers(payload, rng)})
            except httpx.HTTPError:
                with result.lock:
                    result.failed += 1
                return  # the server is gone; a real client would retry the same uid later
            if 200 <= answer.status_code < 300:
                result.ack(uid, time.perf_counter() - started)
            else:
                with result.lock:
                    result.refused += 1
    except httpx.HTTPError:
        with result.lock:
            result.failed += 1
    finally:
        client.close()


def start_burst(
    base_url: str, users: Sequence[str], password: str, per_reviewer: int, seed: int = 0,
) -> tuple[list[threading.Thread], BurstResult, threading.Event]:
    """Start one thread per reviewer; each submits ``per_reviewer`` answers as fast as the server takes them."""
    result, stop = BurstResult(), threading.Event()
    threads = [
        threading.Thread(target=_reviewer, args=(base_url, name, password, per_reviewer, result, stop, seed + i),
                         daemon=True)
        for i, name in enumerate(users)
    ]
    for thread in threads:
        thread.start()
    return threads, result, stop


def stored_uids(database: Database, uids: Sequence[str]) -> set[str]:
    """Which of ``uids`` are in the database (checked in chunks)."""
    found: set[str] = set()
    with database.read() as session:
        for i in range(0, len(uids), 500):
            found |= set(session.scalars(select(Submission.uid).where(Submission.uid.in_(uids[i : i + 500]))))
    return found
