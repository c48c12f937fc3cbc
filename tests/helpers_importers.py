"""Shared by the importer tests: where the shared data lives, and running the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROMEDICAL_SHARED_DATA", REPO / ".." / "shared" / "data"))
HEALTHBENCH = SHARED / "healthbench_samples" / "m42_judge_responses.jsonl"
KQA = SHARED / "k-qa" / "questions_w_answers.jsonl"
KQA_QUESTIONS = SHARED / "k-qa" / "questions.jsonl"
KQA_NLI = SHARED / "k-qa" / "NLI_medical_annotator.csv"
# PATH:LINE: <id>: <field>: <problem>
PROBLEM_LINE = re.compile(r"^error: (?P<path>[^:]+):(?P<line>\d+): (?P<id>[^:]+): (?P<field>[^:]+): (?P<msg>.+)$")


def shared(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"shared data not available: {path}")
    return path


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The installed entry point, exactly as a user runs it (exit codes and stderr included)."""
    return subprocess.run(
        [sys.executable, "-m", "promedical", *map(str, args)], capture_output=True, text=True, cwd=REPO, check=False
    )


def last_json(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "no stdout"
    value = json.loads(lines[-1])
    assert isinstance(value, dict)
    return value


def write_rows(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path
