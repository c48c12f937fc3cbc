"""Training through TRL's RewardTrainer on the tiny Llama: loss direction, loss decrease, resume, CLI, judge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from promedical.reward.config import load_config  # noqa: E402
from promedical.reward.data import read_labelled  # noqa: E402
from promedical.reward.train import build_trainer, run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = str(ROOT / "promedical" / "samples")
TINY = str(ROOT / "configs" / "rm_tiny.yaml")


def _bt_loss(model, trainer, rows) -> float:  # type: ignore[no-untyped-def]
    batch = trainer.data_collator(rows)
    with torch.no_grad():
        return float(trainer.compute_loss(model.eval(), batch))


def test_bt_loss_direction(tmp_path: Path) -> None:
    cfg = load_config(TINY, [f"output_dir={tmp_path}", "max_rows=8"])
    trainer, model, _ = build_trainer(cfg, read_labelled(SAMPLES))
    rows = [trainer.train_dataset[i] for i in range(4)]
    swapped = [{"chosen_ids": r["rejected_ids"], "rejected_ids": r["chosen_ids"]} for r in rows]
    batch = trainer.data_collator(rows)
    with torch.no_grad():
        scores = model.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
    chosen, rejected = scores[:4], scores[4:]
    expected = float(-torch.nn.functional.logsigmoid(chosen - rejected).mean())
    assert _bt_loss(model, trainer, rows) == pytest.approx(expected, abs=1e-6)
    # the loss prefers chosen > rejected: swapping the sides changes it the way the margins say
    delta = float((chosen - rejected).mean())
    assert (_bt_loss(model, trainer, swapped) > _bt_loss(model, trainer, rows)) == (delta > 0)


@pytest.mark.slow
def test_training_decreases_loss_and_resumes(tmp_path: Path) -> None:
    overrides = [f"output_dir={tmp_path}", "max_rows=16", "batch_size=4", "max_steps=12", "save_steps=6"]
    cfg = load_config(TINY, overrides)
    data = read_labelled(SAMPLES)
    trainer, model, _ = build_trainer(cfg, data)
    rows = [trainer.train_dataset[i] for i in range(16)]
    before = _bt_loss(model, trainer, rows)
    summary = run(cfg)
    rm = summary["_rm"]
    after = _bt_loss(rm.model, trainer, rows)
    assert after < before - 0.05, (before, after)
    assert summary["checkpoint"] == str(tmp_path / "model") and (tmp_path / "model" / "rm.json").is_file()
    # resume: a longer run picks up the last checkpoint instead of starting over
    longer = run(load_config(TINY, [*overrides[:-2], "max_steps=14", "save_steps=6"]))
    assert longer["resumed_from"] is not None and longer["resumed_from"].endswith("checkpoint-12")
    assert longer["global_step"] == 14


@pytest.mark.slow
def test_pointwise_term_trains(tmp_path: Path) -> None:
    cfg = load_config(TINY, [f"output_dir={tmp_path}", "pointwise_weight=1.0", "max_rows=8", "max_steps=3"])
    summary = run(cfg)
    assert summary["counts"]["points"] == 8 and summary["counts"]["pairs"] == 8
    assert torch.isfinite(torch.tensor(summary["train_loss"]))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promedical", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=600)


@pytest.mark.slow
def test_cli_train_calibrate_eval_score(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    out = _cli("rm", "train", "--config", TINY, f"output_dir={run_dir}", f"val_data=[{SAMPLES}]", "max_steps=4",
               "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    checkpoint = summary["checkpoint"]
    assert set(summary["thresholds"]) == {"proficiency", "bonus", "veto"}
    assert (run_dir / "train.manifest.json").is_file() and (run_dir / "train.config.json").is_file()
    out = _cli("rm", "eval", "--model", checkpoint, "--data", SAMPLES, "--resamples", "100", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"pointwise_accuracy", "pairwise_accuracy", "per_tier"} <= set(report)
    assert report["pairwise_accuracy"]["n"] > 0 and report["pointwise_accuracy"]["n"] > 0
    verdicts = tmp_path / "verdicts.jsonl"
    out = _cli("rm", "score", "--model", checkpoint, "--rubrics", f"{SAMPLES}/rubrics.jsonl", "--responses",
               f"{SAMPLES}/responses.jsonl", "-o", str(verdicts), "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in verdicts.read_text().splitlines()]
    assert lines and all(v["judge"] == f"rm:{checkpoint}" for v in lines)


def test_cli_bad_override_is_one_line(tmp_path: Path) -> None:
    out = _cli("rm", "train", "--config", TINY, "epochs=-1")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "epochs" in out.stderr


def test_cli_eval_not_a_checkpoint(tmp_path: Path) -> None:
    out = _cli("rm", "eval", "--model", str(tmp_path), "--data", SAMPLES)
    assert out.returncode == 2 and "rm.json" in out.stderr and "Traceback" not in out.stderr
