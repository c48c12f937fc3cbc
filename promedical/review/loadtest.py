"""Load generator for a running review server: reviewers log in and submit answers from threads.

Used by the crash test (kill the server mid-burst, restart, count) and by ``benchmarks/review_load.py``. Every
submission carries a fresh uid; a uid is recorded as acknowledged only when the server answered 2xx, so after a
crash "acknowledged but missing from the database" is exactly the count of lost writes.

``start_login_flood`` plays an anonymous attacker beside the reviewers: threads that post wrong passwords to
``/login`` as fast as the server answers, for made-up and for real usernames, from one address or from a new
address on every request (sent as ``X-Forwarded-For``, which the server trusts from loopback as it would from a
reverse proxy), i.e. the case that per-address throttling alone cannot stop.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from promedical.review.launch import CSRF_FIELD, login
from promedical.review.store import Database, Submission


@dataclass
class BurstResult:
    acknowledged: list[str] = field(default_factory=list)
    refused: int = 0  # 4xx/5xx answers
    failed: int = 0  # no answer (connection refused or reset: the server is gone)
    logged_in: int = 0
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
              seed: int, go: threading.Event | None) -> None:
    rng = random.Random(seed)
    try:
        client = login(base_url, name, password, timeout=120.0)
    except (httpx.HTTPError, RuntimeError):
        with result.lock:
            result.failed += 1
        return
    with result.lock:
        result.logged_in += 1
    try:
        items = [i for i in client.get("/api/assignments").json()["assignments"] if i["kind"] != "rubric"]
        payloads = [client.get(f"/api/assignments/{i['token']}").json() for i in items]
        if go is not None:
            go.wait()
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
    go: threading.Event | None = None,
) -> tuple[list[threading.Thread], BurstResult, threading.Event]:
    """Start one thread per reviewer; each submits ``per_reviewer`` answers as fast as the server takes them.

    With ``go``, each reviewer logs in and loads its assignments, then waits for ``go`` before answering.
    """
    result, stop = BurstResult(), threading.Event()
    threads = [
        threading.Thread(target=_reviewer, args=(base_url, name, password, per_reviewer, result, stop, seed + i, go),
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


@dataclass
class FloodResult:
    statuses: Counter[int] = field(default_factory=Counter)  # answers by HTTP status (401 tried, 429 refused)
    errors: int = 0  # no answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, status: int | None) -> None:
        with self.lock:
            if status is None:
                self.errors += 1
            else:
                self.statuses[status] += 1


def _flooder(base_url: str, real: Sequence[str], addresses: str, result: FloodResult, stop: threading.Event,
             seed: int) -> None:
    rng = random.Random(seed)
    fixed = f"10.{seed % 250}.0.1"
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        while not stop.is_set():
            try:
                match = CSRF_FIELD.search(client.get("/login").text)
                token = match.group(1) if match else ""
                for _ in range(50):  # reuse the login form's token, as a script would
                    if stop.is_set():
                        return
                    name = rng.choice(real) if real and rng.random() < 0.5 else f"user{rng.getrandbits(40):x}"
                    address = fixed if addresses == "one" else (
                        f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
                    answer = client.post("/login", headers={"X-Forwarded-For": address}, follow_redirects=False,
                                         data={"username": name, "password": f"guess-{rng.getrandbits(48):x}",
                                               "csrf_token": token})
                    result.count(answer.status_code)
            except httpx.HTTPError:
                result.count(None)
                if stop.wait(0.2):
                    return


def _flood_process(base_url: str, real: tuple[str, ...], threads: int, addresses: str, seed: int, stop: Any,
                   results: Any) -> None:
    result, local_stop = FloodResult(), threading.Event()
    workers = [threading.Thread(target=_flooder, args=(base_url, real, addresses, result, local_stop, seed + i),
                                daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    stop.wait()
    local_stop.set()
    for worker in workers:
        worker.join(timeout=60)
    results.put((dict(result.statuses), result.errors))


class LoginFlood:
    """A login flood in its own process (an attacker is not in the reviewers' process, and Python threads there
    would compete with the reviewers' client threads for the interpreter lock and distort their latencies)."""

    def __init__(self, base_url: str, real_users: Sequence[str], threads: int, *, addresses: str = "many",
                 seed: int = 0) -> None:
        if addresses not in ("many", "one"):
            raise ValueError(f"addresses must be 'many' or 'one', got {addresses!r}")
        context = multiprocessing.get_context("spawn")
        self.result = FloodResult()
        self._stop, self._results = context.Event(), context.Queue()
        self._process = context.Process(
            target=_flood_process, daemon=True,
            args=(base_url, tuple(real_users), threads, addresses, seed, self._stop, self._results),
        ) if threads > 0 else None
        if self._process is not None:
            self._process.start()

    def stop(self) -> FloodResult:
        """Stop the flood and return its counts."""
        if self._process is not None:
            self._stop.set()
            statuses, errors = self._results.get(timeout=120)
            self._process.join(timeout=30)
            self.result.statuses.update(statuses)
            self.result.errors += errors
            self._process = None
        return self.result


def start_login_flood(base_url: str, real_users: Sequence[str], threads: int, *, addresses: str = "many",
                      seed: int = 0) -> LoginFlood:
    """Start ``threads`` anonymous threads (in another process) posting wrong passwords to ``/login``.

    ``addresses``: ``"many"`` (a random client address per request) or ``"one"`` (one address per thread).
    ``threads=0`` starts nothing. Call ``.stop()`` for the counts.
    """
    return LoginFlood(base_url, real_users, threads, addresses=addresses, seed=seed)
