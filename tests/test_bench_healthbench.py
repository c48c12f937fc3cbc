"""HealthBench-format data through the bench: the HealthBench score reported beside ours, from the one path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from promedical.bench.run import BenchConfig, evaluate
from promedical.rubrics.importers import import_file

SHARED = Path(os.environ.get("PROMEDICAL_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
SAMPLE = SHARED / "healthbench_samples" / "m42_judge_responses.jsonl"


def test_healthbench_rows_get_both_scores() -> None:
    if not SAMPLE.exists():
        pytest.skip(f"shared data {SAMPLE} is absent")
    imported = import_file("healthbench", SAMPLE)
    rows, summary = evaluate(imported.rubrics, imported.responses, imported.verdicts,
                             BenchConfig(bench=str(SAMPLE), policy="healthbench-sample", judge="grader",
                                         n_resamples=1000))
    assert summary["n"] == len(imported.responses) == 67
    # the per-example HealthBench scores are the reference grader's own (stored in each source row's "score")
    stored = {}
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        stored[row["prompt_id"]] = float(row["score"])
    for row in rows:
        assert row["healthbench"] == pytest.approx(stored[row["rubric_id"]], abs=1e-9)
    mean = sum(stored.values()) / len(stored)
    assert summary["healthbench"] == pytest.approx(min(max(mean, 0.0), 1.0))
    low, high = summary["healthbench_ci"]
    assert low <= summary["healthbench"] <= high
    assert summary["overall"] is not None and summary["s1"] is not None  # ours beside it
