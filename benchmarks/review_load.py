"""Load and crash benchmark for the review server on loopback.

Phase 1: N reviewers (threads, each its own session) submit answers as fast as the real server (uvicorn
subprocess, SQLite WAL, synchronous=FULL) takes them; throughput, latency percentiles and lost writes are measured.
Phase 2: the same burst, but the server is SIGKILLed once half of the answers are acknowledged; it is restarted and
every acknowledged uid is looked up in the database. A lost write is an acknowledged uid that is not stored.

    nice -n 10 python benchmarks/review_load.py --reviewers 20 --per-reviewer 150 --out /tmp/review_load.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from promedical.review import launch, migrate
from promedical.review.loadtest import BurstResult, start_burst, stored_uids
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--per-reviewer", type=int, default=150)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    users = tuple(f"rev{i:02d}" for i in range(args.reviewers))
    with tempfile.TemporaryDirectory(prefix="review-load-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'review.sqlite'}"
        database = Database(url)
        migrate.upgrade(database.engine)
        seed_demo(database, reviewers=users, n_rubrics=6, overlap=2, password=PASSWORD)

        server = launch.start(url)
        started = time.perf_counter()
        threads, result, _stop = start_burst(server.base_url, users, PASSWORD, args.per_reviewer, seed=1)
        _wait(threads)
        elapsed = time.perf_counter() - started
        server.stop()
        lost = len(set(result.acknowledged) - stored_uids(database, result.acknowledged))
        steady = _summary(result, elapsed, lost)
        print(f"steady: {json.dumps(steady)}", file=sys.stderr)

        server = launch.start(url)
        target = args.reviewers * args.per_reviewer // 2
        started = time.perf_counter()
        threads, crash, stop = start_burst(server.base_url, users, PASSWORD, args.per_reviewer, seed=2)
        while len(crash.acknowledged) < target and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        acked_at_kill = len(crash.acknowledged)
        server.kill()
        _wait(threads)
        stop.set()
        elapsed = time.perf_counter() - started
        restarted = launch.start(url)
        lost = len(set(crash.acknowledged) - stored_uids(database, crash.acknowledged))
        restarted.stop()
        killed = {**_summary(crash, elapsed, lost), "acknowledged_when_killed": acked_at_kill}
        print(f"kill: {json.dumps(killed)}", file=sys.stderr)
        database.dispose()
    report = {"reviewers": args.reviewers, "per_reviewer": args.per_reviewer, "steady": steady, "kill": killed,
              "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()}}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
