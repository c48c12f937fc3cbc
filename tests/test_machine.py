"""Benchmark conditions: the load average and core counts are recorded before and after, with a warning when busy.

The real reader (``os.getloadavg``) is used where the test does not need a particular load; the busy machine is
injected (a fixed load reader: fault injection, since a test cannot make the real load exceed the cores quickly
or politely).
"""

from __future__ import annotations

import io
import json
import os

from promedical.machine import Conditions, idle_cpus, snapshot, usable_cpus


def test_usable_cpus_follows_the_affinity_mask() -> None:
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cpus() == expected
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)


def test_real_snapshot_records_load_and_cores() -> None:
    low = os.getloadavg()
    snap = snapshot()
    high = os.getloadavg()
    for i, value in enumerate((snap.load_1, snap.load_5, snap.load_15)):
        assert min(low[i], high[i]) - 0.01 <= value <= max(low[i], high[i]) + 0.01
    assert snap.usable_cpus == usable_cpus() and snap.cpu_count == os.cpu_count()
    assert snap.utc.endswith("Z")


def test_busy_machine_warns_and_records_both_sides() -> None:
    # Fault injection: the 1-minute load is 5.0 before and 1.5 after, on 2 cores.
    loads = iter([(5.0, 3.0, 2.0), (1.5, 2.5, 2.0)])
    stream = io.StringIO()
    with Conditions(stream=stream, read_load=lambda: next(loads), cpus=2) as conditions:
        pass
    warnings = stream.getvalue().splitlines()
    assert len(warnings) == 1, warnings  # before only: 1.5 does not exceed 2 cores
    assert "5.00" in warnings[0] and "2 usable cores" in warnings[0]
    record = json.loads(json.dumps(conditions.as_dict()))  # JSON-serialisable as written by the scripts
    assert record["before"]["load_1"] == 5.0 and record["before"]["usable_cpus"] == 2
    assert record["after"]["load_1"] == 1.5 and record["after"]["load_15"] == 2.0
    assert record["busy"] is True
    assert "5.00 / 3.00 / 2.00" in conditions.markdown() and "not quiet" in conditions.markdown()


def test_quiet_machine_does_not_warn() -> None:
    stream = io.StringIO()
    with Conditions(stream=stream, read_load=lambda: (2.0, 2.0, 2.0), cpus=2) as conditions:
        pass
    assert stream.getvalue() == ""  # equal to the core count is not above it
    assert conditions.as_dict()["busy"] is False and "not quiet" not in conditions.markdown()


def test_idle_cpus_leaves_busy_cores_alone() -> None:
    # Injected loads (fault injection): the thread count a launcher should use on 2 and on 16 cores.
    assert idle_cpus(lambda: (0.3, 0.0, 0.0), cpus=2) == 2
    assert idle_cpus(lambda: (1.2, 0.0, 0.0), cpus=2) == 1
    assert idle_cpus(lambda: (0.67, 0.0, 0.0), cpus=2) == 2  # most of a core idle: 2 threads measured 1.9x faster
    assert idle_cpus(lambda: (1.0, 0.0, 0.0), cpus=2) == 1
    assert idle_cpus(lambda: (5.0, 0.0, 0.0), cpus=2) == 1  # never below one
    assert idle_cpus(lambda: (0.0, 0.0, 0.0), cpus=16) == 16
    assert idle_cpus(lambda: (3.4, 0.0, 0.0), cpus=16) == 13
    assert 1 <= idle_cpus() <= usable_cpus()
