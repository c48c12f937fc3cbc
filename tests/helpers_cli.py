"""Running the real command line in a subprocess, as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m promedical ARGS`` with captured text output."""
    return subprocess.run([sys.executable, "-m", "promedical", *args], capture_output=True, text=True,
                          timeout=timeout)


def last_json(proc: subprocess.CompletedProcess[str]) -> Any:
    """The ``--json`` summary: the last stdout line of a successful run."""
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])
