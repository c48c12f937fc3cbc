"""Load and crash benchmark for the review server on loopback.

Phase 1: N reviewers (threads, each its own session) submit answers as fast as the real server (uvicorn
subprocess, SQLite WAL, synchronous=FULL) takes them; throughput, latency percentiles and lost writes are measured.
With ``--login-flood T`` the same burst runs a second time with T anonymous threads posting wrong passwords to
/login beside it (half made-up names, half the reviewers' names; ``--flood-addresses many`` sends each attempt
from a new client address, so only the global hashing budget can stop it), and the report compares the reviewers'
p95 answer latency of the two runs. Phase 2: the same burst (with the flood, if any), but the server is SIGKILLed
once half of the answers are acknowledged; it is restarted and every acknowledged uid is looked up in the
database. A lost write is an acknowledged uid that is not stored. The load average (1, 5, 15 min) and the core
count are recorded before and after (``conditions``; a warning on stderr when the load exceeds the cores).

    nice -n 10 python benchmarks/review_load.py --reviewers 20 --per-reviewer 150 --login-flood 24 \
        --out /tmp/review_load.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from promedical.machine import Conditions
from promedical.review import launch, migrate
from promedical.review.loadtest import BurstResult, FloodResult, start_burst, start_login_flood, stored_uids
from promedical.review.sample import seed_demo
from promedical.review.store import Database

PASSWORD = "review-pass-1"


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(result: BurstResult, seconds: float, lost: int) -> dict[str, Any]:
    ms = [v * 1000 for v in result.latencies]
    return {
        "acknowledged": len(result.acknowledged), "refused": result.refused, "failed": result.failed,
        "lost_writes": lost, "seconds": round(seconds, 2),
        "throughput_per_s": round(len(result.acknowledged) / seconds, 1) if seconds else None,
        "latency_ms": {"p50": _percentile(ms, 0.5), "p95": _percentile(ms, 0.95), "p99": _percentile(ms, 0.99),
                       "mean": statistics.fmean(ms) if ms else None},
    }


def _wait(threads: list[Any]) -> None:
    for thread in threads:
        thread.join()


def _flood_summary(flood: FloodResult, seconds: float) -> dict[str, Any]:
    attempts = sum(flood.statuses.values())
    return {"attempts": attempts, "per_s": round(attempts / seconds, 1) if seconds else None,
            "by_status": {str(k): v for k, v in sorted(flood.statuses.items())}, "no_answer": flood.errors}


def _server_args(args: argparse.Namespace) -> tuple[str, ...]:
    return () if args.login_rate is None else ("--login-rate", str(args.login_rate))


def _logged_in_burst(base_url: str, users: tuple[str, ...], per_reviewer: int,
                     seed: int) -> tuple[list[Any], BurstResult, Any, threading.Event]:
    """Reviewers who are logged in and waiting for ``go`` (the flood meets reviewers at work, as an attack would)."""
    go = threading.Event()
    threads, result, stop = start_burst(base_url, users, PASSWORD, per_reviewer, seed=seed, go=go)
    deadline = time.monotonic() + 300
    while result.logged_in + result.failed < len(users) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # each has loaded its assignments
    return threads, result, stop, go


def _steady(url: str, database: Database, users: tuple[str, ...], args: argparse.Namespace, flood: int,
            seed: int) -> tuple[BurstResult, FloodResult, float]:
    """One burst on a fresh server process, with ``flood`` login-flood threads beside it (0: none)."""
    server = launch.start(url, extra=_server_args(args))
    threads, result, _stop, go = _logged_in_burst(server.base_url, users, args.per_reviewer, seed)
    flooding = start_login_flood(server.base_url, users, flood, addresses=args.flood_addresses, seed=seed * 1000)
    time.sleep(2.0 if flood else 0.0)  # let the flood reach full rate before the reviewers start
    started = time.perf_counter()
    go.set()
    _wait(threads)
    elapsed = time.perf_counter() - started
    flooded = flooding.stop()
    server.stop()
    return result, flooded, elapsed


def _pooled(runs: list[tuple[BurstResult, FloodResult, float]], database: Database) -> dict[str, Any]:
    """One summary over several bursts of the same condition (latencies pooled, times added)."""
    pooled, flood = BurstResult(), FloodResult()
    seconds = 0.0
    for result, flooded, elapsed in runs:
        pooled.acknowledged += result.acknowledged
        pooled.latencies += result.latencies
        pooled.refused += result.refused
        pooled.failed += result.failed
        flood.statuses.update(flooded.statuses)
        flood.errors += flooded.errors
        seconds += elapsed
    lost = len(set(pooled.acknowledged) - stored_uids(database, pooled.acknowledged))
    summary = _summary(pooled, seconds, lost)
    summary["p95_per_run_ms"] = [round(_percentile([v * 1000 for v in r.latencies], 0.95) or 0, 1) for r, _, _ in runs]
    if flood.statuses or flood.errors:
        summary["login_flood"] = _flood_summary(flood, seconds)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--per-reviewer", type=int, default=150)
    parser.add_argument("--login-flood", type=int, default=0, help="anonymous wrong-password threads (0: none)")
    parser.add_argument("--flood-addresses", choices=("many", "one"), default="many")
    parser.add_argument("--rounds", type=int, default=2, help="alternating no-flood/flood bursts (with a flood)")
    parser.add_argument("--login-rate", type=float, default=None, help="the server's --login-rate (default: its own)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    conditions = Conditions()
    conditions.start()
    users = tuple(f"rev{i:02d}" for i in range(args.reviewers))
    with tempfile.TemporaryDirectory(prefix="review-load-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'review.sqlite'}"
        database = Database(url)
        migrate.upgrade(database.engine)
        seed_demo(database, reviewers=users, n_rubrics=6, overlap=2, password=PASSWORD)

        # The two conditions alternate, so a change in the machine's background load hits both alike.
        plain: list[tuple[BurstResult, FloodResult, float]] = []
        under: list[tuple[BurstResult, FloodResult, float]] = []
        for round_ in range(args.rounds if args.login_flood else 1):
            plain.append(_steady(url, database, users, args, 0, seed=10 * round_ + 1))
            print(f"round {round_}: no flood p95 {_percentile(plain[-1][0].latencies, 0.95)}", file=sys.stderr)
            if args.login_flood:
                under.append(_steady(url, database, users, args, args.login_flood, seed=10 * round_ + 3))
                print(f"round {round_}: flood p95 {_percentile(under[-1][0].latencies, 0.95)}", file=sys.stderr)
        steady = _pooled(plain, database)
        flooded = _pooled(under, database) if under else None
        if flooded is not None:
            flooded["login_flood"] = {"threads": args.login_flood, "addresses": args.flood_addresses,
                                      **flooded.get("login_flood", {})}

        server = launch.start(url, extra=_server_args(args))
        threads, crash, stop, go = _logged_in_burst(server.base_url, users, args.per_reviewer, seed=2)
        flooding = start_login_flood(server.base_url, users, args.login_flood, addresses=args.flood_addresses,
                                     seed=4000)
        time.sleep(2.0 if args.login_flood else 0.0)
        target = args.reviewers * args.per_reviewer // 2
        started = time.perf_counter()
        go.set()
        while len(crash.acknowledged) < target and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        acked_at_kill = len(crash.acknowledged)
        server.kill()
        _wait(threads)
        stop.set()
        flood_kill = flooding.stop()
        elapsed = time.perf_counter() - started
        restarted = launch.start(url)
        lost = len(set(crash.acknowledged) - stored_uids(database, crash.acknowledged))
        restarted.stop()
        killed = {**_summary(crash, elapsed, lost), "acknowledged_when_killed": acked_at_kill}
        if args.login_flood:
            killed["login_flood"] = {"threads": args.login_flood, **_flood_summary(flood_kill, elapsed)}
        print(f"kill: {json.dumps(killed)}", file=sys.stderr)
        database.dispose()
    conditions.stop()
    report: dict[str, Any] = {
        "reviewers": args.reviewers, "per_reviewer": args.per_reviewer, "rounds": len(plain), "steady": steady,
        "kill": killed,
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
        "conditions": conditions.as_dict(),
    }
    if flooded is not None:
        base_p95, flood_p95 = steady["latency_ms"]["p95"], flooded["latency_ms"]["p95"]
        report["steady_login_flood"] = flooded
        report["p95_ratio_flood_vs_none"] = round(flood_p95 / base_p95, 2) if base_p95 and flood_p95 else None
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
