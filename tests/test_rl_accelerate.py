"""GRPO under ``accelerate launch`` with 2 CPU processes (gloo): the same builder, rewards gathered across ranks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers_rl import SAMPLE_RUBRICS, TINY_CONFIG

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("accelerate")


@pytest.mark.slow
def test_two_cpu_processes(tmp_path: Path) -> None:
    launcher = shutil.which("accelerate")
    if launcher is None:
        pytest.skip("accelerate launcher not on PATH")
    out = subprocess.run(
        [launcher, "launch", "--config_file", str(ROOT / "configs" / "accelerate_cpu2.yaml"), "--num_processes", "2",
         "-m", "promedical", "grpo", "train", "--config", str(TINY_CONFIG), f"rubrics=[{SAMPLE_RUBRICS}]",
         f"output_dir={tmp_path / 'run'}", "per_device_train_batch_size=2", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["world_size"] == 2 and summary["global_step"] == 2
    # group signal over the gathered batch (2 processes x 2 completions, G = 2): both groups of every step, once
    assert [(s["step"], s["groups"]) for s in summary["signal"]["steps"]] == [(1, 2), (2, 2)]
    state = json.loads((tmp_path / "run" / "checkpoint-2" / "trainer_state.json").read_text())
    logged = [e for e in state["log_history"] if "rubric/s1" in e]
    assert len(logged) == 2  # components averaged over both ranks, one entry per step
    assert all(0.0 <= e["rubric/veto_rate"] <= 1.0 for e in logged)
    assert (tmp_path / "run" / "final" / "config.json").is_file()
