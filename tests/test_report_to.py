"""report_to in the reward-model training config: TensorBoard curves from a real tiny run, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "configs" / "rm_tiny.yaml")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promedical", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=600)


@pytest.mark.slow
def test_rm_train_writes_tensorboard_events(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    pytest.importorskip("tensorboard")
    run_dir = tmp_path / "rm"
    out = _cli("rm", "train", "--config", TINY, f"output_dir={run_dir}", "max_steps=2", "logging_steps=1",
               "report_to=tensorboard", "calibrate=false", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    assert list(run_dir.glob("**/events.out.tfevents.*"))


def test_rm_train_report_to_errors_are_one_line(tmp_path: Path) -> None:
    out = _cli("rm", "train", "--config", TINY, f"output_dir={tmp_path}", "report_to=tensorbored")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "report_to" in out.stderr and "unknown integration 'tensorbored'" in out.stderr
    out = _cli("rm", "train", "--config", TINY, f"output_dir={tmp_path}", "report_to=[swanlab]")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "report_to" in out.stderr and "pip install swanlab" in out.stderr
