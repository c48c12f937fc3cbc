"""Ctrl-C for long commands: an interruption is recorded, so a command that was interrupted never reports success.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread happens to be. When that is inside a
finaliser (``__del__``, a weakref callback: garbage collection runs them at arbitrary points) or inside a library
that catches the exception, it is printed as "Exception ignored" or dropped, and the command runs on and exits 0.
So the handler installed by the entry point records the signal before it raises; the pipeline checks the record
between stages (``check``), and the entry point turns any recorded interruption into exit code 130 (``settle``).

Fault injection (tests only): ``PROMEDICAL_FAULT_SIGINT_AT=<point>`` makes the process send itself SIGINT when it
reaches the named point (``fault_point``); ``<point>@finaliser`` sends it from inside a finaliser, where Python
cannot propagate the ``KeyboardInterrupt``. Points: ``before:<stage>``, ``after:<stage>`` (the stage's manifest
written) in the pipeline, ``reported`` (the command's summary printed) and ``exit`` (the exit code about to be
decided) in the entry point.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

FAULT_ENV = "PROMEDICAL_FAULT_SIGINT_AT"

_received = 0


def _handler(signum: int, frame: FrameType | None) -> None:
    global _received
    _received += 1
    raise KeyboardInterrupt


def install() -> None:
    """Record every SIGINT from now on (and raise ``KeyboardInterrupt``, as Python's default handler does)."""
    global _received
    _received = 0
    signal.signal(signal.SIGINT, _handler)


def interrupted() -> bool:
    return _received > 0


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a SIGINT arrived earlier, even one whose exception was swallowed."""
    if _received:
        raise KeyboardInterrupt


def settle(message: str = "") -> bool:
    """Say whether a SIGINT ever arrived; one that arrives after this (while the process exits) ends it at once
    with exit code 130 and ``message`` on stderr, so neither a hang at exit nor a late Ctrl-C reads as success."""

    def _exit_now(signum: int, frame: FrameType | None) -> None:
        os.write(2, message.encode())
        os._exit(130)

    signal.signal(signal.SIGINT, _exit_now)
    return _received > 0


class _SignalInFinaliser:
    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)
        # The handler runs at the next bytecode, still inside this finaliser: its KeyboardInterrupt is lost.
        _ = [n for n in range(8)]


def fault_point(name: str) -> None:
    """Fault injection: send this process SIGINT here when ``PROMEDICAL_FAULT_SIGINT_AT`` names this point."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    point, _, how = spec.partition("@")
    if point != name:
        return
    if how == "finaliser":
        _SignalInFinaliser()  # dropped at once: its __del__ runs here
    else:
        signal.raise_signal(signal.SIGINT)
