"""The machine a measurement ran on: usable cores, and the load average before and after the measurement.

A wall-clock figure taken while the load average exceeds the number of cores measures the neighbours as much as
the code, so every benchmark script records both (``Conditions``), warns on stderr when the machine is busy, and
writes the record beside its numbers.

    with Conditions() as conditions:
        ...measure...
    result["conditions"] = conditions.as_dict()
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, TextIO

LoadReader = Callable[[], tuple[float, float, float]]


def usable_cpus() -> int:
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` where affinity is not available)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def idle_cpus(read_load: LoadReader = os.getloadavg, cpus: int | None = None) -> int:
    """Usable cores minus the 1-minute load average, rounded up, at least 1: a thread count that does not
    oversubscribe.

    Libraries that split each step across threads and spin at a barrier until all have finished (ggml, OpenMP)
    slow down sharply when one thread is descheduled by other work on its core: on 2 shared cores at a load of
    about 5, a llama.cpp server evaluating one token per micro-batch ran 3.6-10x slower with 2 threads than with 1
    (docs/benchmarks.md, llama.cpp prefill). Below one core's worth of other work the extra thread pays: at a load of
    0.7-1.2 on 2 cores, batched prefill ran 1.9x faster with 2 threads than with 1, so a fractional idle core counts.
    """
    usable = usable_cpus() if cpus is None else cpus
    return max(1, min(usable, math.ceil(usable - read_load()[0] - 1e-9)))


@dataclass(frozen=True)
class Snapshot:
    """Load average (1, 5, 15 min) and core counts at one moment."""

    utc: str
    load_1: float
    load_5: float
    load_15: float
    cpu_count: int  # cores in the machine (``os.cpu_count()``)
    usable_cpus: int  # cores this process may use (affinity)

    @property
    def busy(self) -> bool:
        """More runnable work than usable cores over the last minute: wall-clock figures are inflated."""
        return self.load_1 > self.usable_cpus

    def describe(self) -> str:
        return (f"load average {self.load_1:.2f} / {self.load_5:.2f} / {self.load_15:.2f} (1/5/15 min) on "
                f"{self.usable_cpus} usable of {self.cpu_count} cores")


def snapshot(read_load: LoadReader = os.getloadavg, cpus: int | None = None) -> Snapshot:
    """The load now. ``read_load`` and ``cpus`` exist so a test can inject a busy machine."""
    one, five, fifteen = read_load()
    usable = usable_cpus() if cpus is None else cpus
    return Snapshot(utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), load_1=round(one, 2),
                    load_5=round(five, 2), load_15=round(fifteen, 2), cpu_count=os.cpu_count() or usable,
                    usable_cpus=usable)


class Conditions:
    """Records a ``Snapshot`` before and after a measurement; warns on ``stream`` (stderr) when either is busy."""

    def __init__(self, stream: TextIO | None = None, read_load: LoadReader = os.getloadavg,
                 cpus: int | None = None) -> None:
        self.stream, self.read_load, self.cpus = stream, read_load, cpus
        self.before: Snapshot | None = None
        self.after: Snapshot | None = None

    def _take(self, when: str) -> Snapshot:
        snap = snapshot(self.read_load, self.cpus)
        if snap.busy:
            print(f"warning: {when} the measurement the 1-minute load average {snap.load_1:.2f} exceeds the "
                  f"{snap.usable_cpus} usable cores: timings are inflated by other work on this machine",
                  file=self.stream or sys.stderr, flush=True)
        return snap

    def start(self) -> Snapshot:
        self.before = self._take("before")
        return self.before

    def stop(self) -> Snapshot:
        self.after = self._take("after")
        return self.after

    @property
    def busy(self) -> bool:
        return any(s is not None and s.busy for s in (self.before, self.after))

    def as_dict(self) -> dict[str, Any]:
        return {"before": asdict(self.before) if self.before else None,
                "after": asdict(self.after) if self.after else None, "busy": self.busy}

    def markdown(self) -> str:
        """One line for a results table's caption."""
        parts = [f"{label}: {snap.describe()}" for label, snap in (("before", self.before), ("after", self.after))
                 if snap is not None]
        line = "; ".join(parts) or "load not recorded"
        return line + (" (machine not quiet: load above the core count)" if self.busy else "")

    def __enter__(self) -> Conditions:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
