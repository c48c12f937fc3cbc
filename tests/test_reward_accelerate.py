"""Data-parallel training: ``accelerate launch`` with 2 CPU processes trains like one process (same global batch)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("accelerate")
torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "configs" / "rm_tiny.yaml")
SAMPLES = ROOT / "promedical" / "samples"


def _last_json(out: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_two_processes_match_one(tmp_path: Path) -> None:
    launcher = shutil.which("accelerate")
    if launcher is None:
        pytest.skip("accelerate launcher not on PATH")
    common = ["rm", "train", "--config", TINY, "max_steps=6", "--json"]
    two = _last_json(subprocess.run(
        [launcher, "launch", "--config_file", str(ROOT / "configs" / "accelerate_cpu2.yaml"), "--num_processes", "2",
         "-m", "promedical", *common, f"output_dir={tmp_path / 'two'}", "batch_size=2"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False))
    one = _last_json(subprocess.run(
        [sys.executable, "-m", "promedical", *common, f"output_dir={tmp_path / 'one'}", "batch_size=4"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False))
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert two["global_step"] == one["global_step"] == 6
    for (s2, l2), (s1, l1) in zip(two["loss_curve"], one["loss_curve"], strict=True):
        assert s1 == s2 and l1 == pytest.approx(l2, abs=5e-3)
    # the trained models score held data the same way
    from promedical.reward.data import read_labelled
    from promedical.reward.model import load_rm
    from promedical.reward.predict import RMScorer, score_data

    data = read_labelled(SAMPLES)
    data.points = data.points[:24]
    data.pairs = []
    a, _ = score_data(RMScorer(load_rm(two["checkpoint"])), data)
    b, _ = score_data(RMScorer(load_rm(one["checkpoint"])), data)
    # Adam amplifies float-order differences of the gradient all-reduce a little: a tolerance, not equality
    sa, sb = [x.score for x in a], [y.score for y in b]
    assert max(abs(x - y) for x, y in zip(sa, sb, strict=True)) < 5e-2
    assert float(torch.corrcoef(torch.tensor([sa, sb]))[0, 1]) > 0.99
    assert max(sa) - min(sa) > 1e-3
