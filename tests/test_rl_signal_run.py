"""Group-signal diagnostics, report_to and training curves on real tiny GRPO runs through the CLI.

The constant reward is real: the lexical judge at threshold 1.0 needs every content word of a criterion in the
response, which no 16-token answer of the random tiny Llama has, so every criterion is unmet and every completion
of every prompt gets the same reward. The varying reward is the untrained tiny implicit reward model's score (a
real model; its scores mean nothing but differ between completions).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from promedical.io import UserError
from tests.helpers_rl import SAMPLE_RUBRICS, TINY_CONFIG

pytest.importorskip("trl")
ROOT = Path(__file__).resolve().parents[1]
CONSTANT = "reward.judge=lexical:1.0"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promedical", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, check=False)


def _train(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return _cli("grpo", "train", "--config", str(TINY_CONFIG), f"rubrics=[{SAMPLE_RUBRICS}]",
                f"output_dir={run_dir}", *overrides, "--json")


@pytest.fixture(scope="module")
def constant_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    run_dir = tmp_path_factory.mktemp("constant") / "run"
    pytest.importorskip("tensorboard")
    out = _train(run_dir, CONSTANT, "max_steps=3", "signal.warn_after=2", "report_to=tensorboard")
    return run_dir, out


@pytest.mark.slow
def test_constant_reward_warns_once_and_reports_per_step(
        constant_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    run_dir, out = constant_run
    assert out.returncode == 0, out.stderr[-3000:]
    warnings = [line for line in out.stderr.splitlines() if "no reward signal" in line]
    assert len(warnings) == 1  # one per streak (steps 2 and 3 are one streak), on one line
    assert "for 2 consecutive steps (up to step 2)" in warnings[0] and "temperature" in warnings[0]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    signal = summary["signal"]
    assert [s["step"] for s in signal["steps"]] == [1, 2, 3]
    for step in signal["steps"]:  # 4 completions per step, G = 2: two groups, both with one reward
        assert step["groups"] == 2 and step["zero_std_share"] == 1.0 and step["group_std"] == 0.0
        assert step["unscored_rate"] == 0.0 and "veto_rate" in step  # the reward's own logged rates, joined
        assert step["trl_frac_reward_zero_std"] == 1.0  # TRL agrees
    assert signal["aggregate"]["zero_std_share"] == 1.0 and signal["aggregate"]["longest_dead_streak"] == 3
    assert len(signal["warnings"]) == 1 and signal["stopped"] is None
    manifest = json.loads((run_dir / "grpo.manifest.json").read_text())
    assert manifest["summary"]["signal"]["aggregate"] == signal["aggregate"]
    # report_to reached the trainer: TensorBoard event files under output_dir/runs
    assert list((run_dir / "runs").glob("**/events.out.tfevents.*"))


@pytest.mark.slow
def test_curves_from_a_real_run(constant_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    from promedical.rl.curves import extract, read_log_history

    run_dir, out = constant_run
    assert out.returncode == 0, out.stderr[-3000:]
    history, source = read_log_history(run_dir)
    assert source.name == "grpo.log_history.json"
    series = extract(history)
    for key in ("reward", "rubric/s1", "rubric/s2", "rubric/s3", "signal/zero_std_share", "frac_reward_zero_std",
                "kl", "completions/mean_length", "rubric/veto_rate"):
        assert [step for step, _ in series[key]] == [1, 2, 3], key
    assert [v for _, v in series["signal/zero_std_share"]] == [1.0, 1.0, 1.0]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert [v for _, v in series["rubric/s1"]] == pytest.approx([e["rubric/s1"] for e in history if "rubric/s1" in e])
    assert summary["metrics"]["kl"] == series["kl"][-1][1]
    html = tmp_path / "curves.html"
    done = _cli("grpo", "curves", str(run_dir), "-o", str(html), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["series"]["signal/zero_std_share"] == 3 and report["series"]["kl"] == 3
    assert "data:image/png;base64," in html.read_text()
    png = tmp_path / "curves.png"
    assert _cli("grpo", "curves", str(run_dir), "-o", str(png)).returncode == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = _cli("grpo", "curves", str(tmp_path), "-o", str(png))
    assert bad.returncode == 2 and "log_history" in bad.stderr


@pytest.mark.slow
def test_stop_after_dead_steps_exits_2_with_advice(tmp_path: Path) -> None:
    out = _train(tmp_path / "run", CONSTANT, "max_steps=4", "signal.stop_after_dead_steps=2")
    assert out.returncode == 2, out.stderr[-3000:]
    message = out.stderr.strip().splitlines()[-1]
    assert "signal.stop_after_dead_steps: stopped at step 2" in message
    assert "num_generations" in message and "judge whose verdicts depend on the response" in message
    manifest = json.loads((tmp_path / "run" / "grpo.manifest.json").read_text())
    assert manifest["counts"]["steps"] == 2  # stopped there, not at max_steps 4
    assert manifest["summary"]["signal"]["stopped"].startswith("signal.stop_after_dead_steps")
    assert not (tmp_path / "run" / "final").exists()  # no final policy from a run that learned nothing


def test_report_to_is_validated_with_one_line(tmp_path: Path) -> None:
    from promedical.config import load_settings
    from promedical.reward.config import RMTrainConfig
    from promedical.rl.config import DPOSettings, GRPOSettings
    from promedical.rl.dpo import dpo_args

    overrides = [f"rubrics=[{SAMPLE_RUBRICS}]", f"output_dir={tmp_path}"]
    with pytest.raises(UserError, match=r"report_to.*unknown integration 'tensorbored'"):
        load_settings(GRPOSettings, TINY_CONFIG, [*overrides, "report_to=tensorbored"])
    with pytest.raises(UserError, match=r"report_to.*'swanlab' package, which is not installed: pip install swanlab"):
        load_settings(GRPOSettings, TINY_CONFIG, [*overrides, "report_to=[swanlab]"])
    with pytest.raises(ValueError, match="report_to"):
        RMTrainConfig(train_data=["x.jsonl"], output_dir=str(tmp_path), report_to="nope")
    assert load_settings(GRPOSettings, TINY_CONFIG, overrides).report_to == "none"
    pytest.importorskip("tensorboard")
    assert RMTrainConfig(train_data=["x"], output_dir=str(tmp_path), report_to="tensorboard").report_to == "tensorboard"
    dpo = DPOSettings(policy="tiny-llama", pairs=["x"], output_dir=str(tmp_path), report_to=["tensorboard"])
    assert dpo_args(dpo).report_to == ["tensorboard"]
