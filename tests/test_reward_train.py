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
    cfg = load_config(TINY, [f"output_dir={tmp_path}", "max_rows=8", "input=head/1"])  # TRL's own loss
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


def test_windowed_loss_pools_each_response_over_its_windows(tmp_path: Path) -> None:
    """windows/1: a long response gives several inputs; the BT loss is taken on the pooled scores (max for a
    required criterion, min for a prohibited one), exactly the pooling scoring uses."""
    from promedical.reward.data import PairRow
    from promedical.reward.windows import pool, pool_kind

    cfg = load_config(TINY, [f"output_dir={tmp_path}", "max_length=64", "windows.max_windows=4"])
    long = "Call emergency services now and chew an aspirin unless you are allergic to it. " * 6
    pairs = [PairRow("r", "c1", "Chest pain?", "Tells the user to call emergency services", "proficiency",
                     "required", long, "Rest at home."),
             PairRow("r", "c2", "Chest pain?", "Claims to be a physician", "veto", "prohibited", "Rest at home.",
                     long + " As a doctor I know.")]
    from promedical.reward.data import LabelledData

    trainer, model, _ = build_trainer(cfg, LabelledData(pairs=pairs))
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    assert sorted(len(r["chosen_lens"]) + len(r["rejected_lens"]) for r in rows) == [5, 5]  # 4 windows + 1
    assert trainer.row_counts["truncation"]["responses"] == 4
    assert all(len(r["chosen_ids"]) == sum(r["chosen_lens"]) for r in rows)  # ids reach the collator untouched
    batch = trainer.data_collator(rows)
    model.eval()
    with torch.no_grad():
        flat = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1).tolist()
        loss = float(trainer.compute_loss(model, batch))
    pooled: list[float] = []
    at = 0
    sides = [(r["chosen_lens"], r) for r in rows] + [(r["rejected_lens"], r) for r in rows]
    for lens, row in sides:
        polarity = "prohibited" if row["pool"] == 1 else "required"
        pooled.append(pool(flat[at : at + len(lens)], pool_kind(polarity, True)))
        at += len(lens)
    assert {r["pool"] for r in rows} == {0, 1}
    chosen, rejected = torch.tensor(pooled[:2]), torch.tensor(pooled[2:])
    assert loss == pytest.approx(float(-torch.nn.functional.logsigmoid(chosen - rejected).mean()), abs=1e-5)


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
    assert report["truncation"]["input"] == "windows/1" and report["truncation"]["responses"] > 0
    assert report["truncation"]["truncated"] == 0  # the sample answers fit in at most 8 windows
    verdicts = tmp_path / "verdicts.jsonl"
    out = _cli("rm", "score", "--model", checkpoint, "--rubrics", f"{SAMPLES}/rubrics.jsonl", "--responses",
               f"{SAMPLES}/responses.jsonl", "-o", str(verdicts), "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in verdicts.read_text().splitlines()]
    assert lines and all(v["judge"] == f"rm:{checkpoint}" for v in lines)
    assert all(v["meta"]["input"] == "windows/1" and v["meta"]["windows"] >= 1 for v in lines)
    scored = json.loads(out.stdout.strip().splitlines()[-1])["truncation"]
    assert scored["responses"] == len({v["response_id"] for v in lines}) and scored["truncated_rate"] == 0.0


def test_cli_bad_override_is_one_line(tmp_path: Path) -> None:
    out = _cli("rm", "train", "--config", TINY, "epochs=-1")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "epochs" in out.stderr


def test_cli_eval_not_a_checkpoint(tmp_path: Path) -> None:
    out = _cli("rm", "eval", "--model", str(tmp_path), "--data", SAMPLES)
    assert out.returncode == 2 and "rm.json" in out.stderr and "Traceback" not in out.stderr
