"""The quickstart in its reduced mode (random tiny models): every stage runs through the real CLI, end to end,
and a second run reuses every finished stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

STAGES = ["validate", "split", "judge", "meta-eval", "prefs", "rm-train", "rm-eval", "grpo", "bench-base",
          "bench-aligned", "compare"]


def _quickstart(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promedical", "quickstart", "--tiny", "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=1800)


@pytest.mark.slow
def test_quickstart_tiny_end_to_end_and_rerun(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    first = _quickstart(out)
    assert first.returncode == 0, first.stderr[-3000:]
    result = json.loads(first.stdout.strip().splitlines()[-1])
    assert [s["name"] for s in result["stages"]] == STAGES
    assert not any(s["reused"] for s in result["stages"])
    # the commands were printed, so a user learns the real CLI
    for command in ("promedical judge run", "promedical rm train", "promedical grpo train", "promedical bench run"):
        assert f"$ {command}" in first.stderr
    run = result["judge"]["run"]
    assert run["met"] + run["unmet"] + run["unscored"] > 0 and run["calls"] > 0
    assert result["rm"]["pointwise_accuracy"] is not None
    for key in ("bench_base", "bench_aligned"):
        assert result[key]["n"] == 5 and "overall_ci" in result[key]
    report = Path(result["report"])
    assert report.exists() and "<html" in report.read_text()[:500].lower()
    assert (Path(result["aligned_policy"]) / "config.json").exists()
    assert (out / "configs" / "rm.yaml").exists() and (out / "configs" / "grpo.yaml").exists()
    # the GRPO reward credits the RM's probability per criterion (0/1 verdicts left most groups tied)
    assert yaml.safe_load((out / "configs" / "grpo.yaml").read_text())["reward"]["credit"] == "probability"

    second = _quickstart(out)
    assert second.returncode == 0, second.stderr[-3000:]
    again = json.loads(second.stdout.strip().splitlines()[-1])
    assert all(s["reused"] for s in again["stages"])
    assert again["bench_aligned"] == result["bench_aligned"]


def test_quickstart_failure_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = subprocess.run([sys.executable, "-m", "promedical", "quickstart", "--tiny", "--out", str(blocker / "x")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
