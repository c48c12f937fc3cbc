"""``promedical rm ...``: train, calibrate, evaluate and run the criterion-conditioned reward model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from promedical.cli.common import JSON_HELP, emit_json, progress, stderr, training_progress
from promedical.io import UserError, read_responses, read_rubrics, write_json, write_jsonl
from promedical.unscored import DEFAULT_MAX_UNSCORED_RATE, MAX_UNSCORED_HELP, check_verdicts, validate_max_rate

app = typer.Typer(help="ProMedical-RM, the criterion-conditioned reward model (package promedical.reward; judge "
                  "spec rm:<checkpoint>): train, calibrate, eval, score, build-supervision.", no_args_is_help=True)


def _scorer(model: str, batch_size: int) -> Any:
    from promedical.reward.model import load_rm
    from promedical.reward.predict import LEXICAL, LexicalScorer, RMScorer

    if model == LEXICAL:
        return LexicalScorer()
    return RMScorer(load_rm(model), batch_size=batch_size)


@app.command("train")
def train(
    config: Path = typer.Option(..., "--config", "-c", help="YAML training config (configs/rm_*.yaml)."),
    overrides: list[str] = typer.Argument(None, help="Overrides key=value (dotted keys for nested fields)."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train with TRL's RewardTrainer (resumes from the last checkpoint); calibrates on val_data when given."""
    from transformers import PrinterCallback

    from promedical.reward.config import load_config
    from promedical.reward.model import TierThreshold, quiet_transformers, write_card
    from promedical.reward.predict import RMScorer, calibrate_scorer
    from promedical.reward.prepare import prepare
    from promedical.reward.train import build_trainer, last_checkpoint, save_final
    from promedical.runs import write_manifest

    cfg = load_config(config, overrides or [])
    quiet_transformers()
    data, val, hygiene = prepare(cfg)  # supervision built, blind items and other splits dropped, audited
    trainer, _, tokenizer = build_trainer(cfg, data)
    trainer.remove_callback(PrinterCallback)
    resume = last_checkpoint(cfg)
    with progress() as bar:
        trainer.add_callback(training_progress(bar))
        result = trainer.train(resume_from_checkpoint=resume)
    summary: dict[str, Any] = {
        "output_dir": cfg.output_dir, "resumed_from": resume, "train_loss": float(result.training_loss),
        "global_step": int(result.global_step), "world_size": int(trainer.args.world_size),
        "counts": {**trainer.row_counts, "notes": dict(data.notes)},
        "loss_curve": [[h["step"], h["loss"]] for h in trainer.state.log_history if "loss" in h],
        "data": hygiene,
    }
    if not trainer.is_world_process_zero():
        return
    rm = save_final(trainer, tokenizer, cfg)
    summary["checkpoint"] = rm.path
    if cfg.evidence is not None:
        from promedical.reward.fit_head import fit_evidence, head_labels, head_thresholds, held_out_line

        labels, label_report = head_labels(cfg)  # built by prepare above: reused here
        summary["evidence"] = fit_evidence(rm, cfg, data, labels, label_report)
    thresholds: dict[str, TierThreshold] = {}
    if cfg.calibrate and val is not None and val.points:
        thresholds = calibrate_scorer(RMScorer(rm), val)
        rm.card.calibration = {"data": cfg.val_data, "supervision": cfg.supervision, "split": cfg.val_split,
                               "n_points": len(val.points)}
    if cfg.evidence is not None:  # the head's own threshold, with or without validation rows
        thresholds.update(head_thresholds(summary["evidence"], thresholds))
    if thresholds:
        rm.card.thresholds = thresholds
        write_card(rm.path, rm.card)
        summary["thresholds"] = {k: v.threshold for k, v in thresholds.items()}
    write_manifest(cfg.output_dir, "train", cfg.model_dump(mode="json"), inputs=[*cfg.train_data, *cfg.val_data],
                   counts=summary["counts"], seed=cfg.seed,
                   extra={"checkpoint": rm.path, "data": hygiene, "evidence": summary.get("evidence")})
    if json_out:
        emit_json(summary)
    else:
        typer.echo(f"trained {summary['global_step']} steps, loss {summary['train_loss']:.4f}; checkpoint {rm.path}")
        if "evidence" in summary:
            typer.echo(held_out_line(summary["evidence"]))


@app.command("calibrate")
def calibrate(
    model: Path = typer.Option(..., "--model", "-m", help="Reward-model checkpoint (a train run's model/ dir)."),
    data: list[Path] = typer.Option(..., "--data", "-d", help="Labelled validation set(s) with verdicts."),
    batch_size: int = typer.Option(16, help="Criteria per forward pass."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Choose per-tier thresholds on labelled validation data and store them in the checkpoint's rm.json."""
    from promedical.reward.data import read_many
    from promedical.reward.model import load_rm, write_card
    from promedical.reward.predict import RMScorer, calibrate_scorer

    rm = load_rm(model)
    val = read_many(data, derive=False)
    try:
        thresholds = calibrate_scorer(RMScorer(rm, batch_size), val)
    except ValueError as exc:
        raise UserError(f"{data[0]}: -: -: {exc}") from None
    rm.card.thresholds = thresholds
    rm.card.calibration = {"data": [str(d) for d in data], "n_points": len(val.points)}
    write_card(model, rm.card)
    summary = {"model": str(model), "thresholds": {k: v.model_dump() for k, v in thresholds.items()}}
    if json_out:
        emit_json(summary)
    else:
        for tier, t in thresholds.items():
            typer.echo(f"{tier}: threshold {t.threshold:.4f} ({t.rule}; n={t.n})")


@app.command("eval")
def evaluate(
    model: str = typer.Option(..., "--model", "-m", help="Reward-model checkpoint, or 'lexical' for the baseline."),
    data: list[Path] = typer.Option(..., "--data", "-d", help="Labelled set(s) or CriterionPair JSONL."),
    calibrate_on: list[Path] = typer.Option(None, "--calibrate-on", help="Choose thresholds on this labelled "
                                            "set instead of the checkpoint's stored ones."),
    resamples: int = typer.Option(2000, help="Bootstrap resamples for the CIs."),
    batch_size: int = typer.Option(16, help="Criteria per forward pass."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Also write the report as JSON here."),
    predictions_out: Path | None = typer.Option(None, "--predictions-out", help="Also write one prediction per "
                                                "labelled item (JSONL), for `promedical judge compare`."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Pairwise and pointwise accuracy per tier, veto precision/recall/F1 and calibration, with bootstrap CIs."""
    from promedical.reward.data import read_many
    from promedical.reward.eval import evaluate as run_eval
    from promedical.reward.predict import RMScorer, calibrate_scorer, score_data

    scorer = _scorer(model, batch_size)
    labelled = read_many(data)
    thresholds: dict[str, float] = {}
    if calibrate_on:
        chosen = calibrate_scorer(scorer, read_many(calibrate_on, derive=False))
        thresholds = {k: v.threshold for k, v in chosen.items()}
    elif isinstance(scorer, RMScorer):
        thresholds = {k: v.threshold for k, v in scorer.rm.card.thresholds.items()}
    if isinstance(scorer, RMScorer):
        scorer.truncation.reset()  # count the evaluated responses only, not those calibrated on
    points, pairs = score_data(scorer, labelled)
    predicted = None
    if predictions_out is not None:
        from promedical.judge.predictions import write_predictions
        from promedical.reward.eval import predictions

        name = model if model.startswith("lexical") else f"rm:{model}"
        predicted = {"out": str(predictions_out), "rows": write_predictions(
            predictions_out, predictions(labelled, points, pairs, thresholds, name))}
    if points and len(thresholds) < 3:
        stderr.print("no calibrated thresholds (run `promedical rm calibrate` or pass --calibrate-on): "
                      "pointwise metrics are left out")
        points = []
    report = run_eval(points, pairs, thresholds, n_resamples=resamples)
    report.update({"model": model, "data": [str(d) for d in data], "notes": dict(labelled.notes),
                   "predictions": predicted})
    if isinstance(scorer, RMScorer):  # how many distinct responses were read only in part
        report["truncation"] = scorer.truncation.as_dict(scorer.rm.card.input)
    if out is not None:
        write_json(out, report)
    if json_out:
        emit_json(report)
        return
    for name in ("pairwise_accuracy", "pointwise_accuracy"):
        typer.echo(f"{name}: {_fmt(report[name])}")
    for tier, row in report["per_tier"].items():
        typer.echo(f"  {tier}: pairwise {_fmt(row['pairwise_accuracy'])}; pointwise {_fmt(row['pointwise_accuracy'])}")
    if report["veto"]:
        typer.echo(f"veto F1 {_fmt(report['veto']['f1'])}")


def _fmt(est: dict[str, Any] | None) -> str:
    if not est or est.get("value") is None:
        return "n/a"
    low, high = est.get("ci_low"), est.get("ci_high")
    ci = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    return f"{est['value']:.3f}{ci} (n={est['n']})"


@app.command("score")
def score(
    model: Path = typer.Option(..., "--model", "-m", help="Calibrated reward-model checkpoint."),
    rubrics: list[Path] = typer.Option(..., "--rubrics", "-r", help="Rubric JSONL file(s)."),
    responses: Path = typer.Option(..., "--responses", "-x", help="Response JSONL file."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the verdicts (JSONL)."),
    batch_size: int = typer.Option(16, help="Criteria per forward pass."),
    max_unscored_rate: float = typer.Option(DEFAULT_MAX_UNSCORED_RATE, "--max-unscored-rate",
                                            help=MAX_UNSCORED_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Judge responses with the reward model: one verdict per criterion (judge = rm:<checkpoint>)."""
    validate_max_rate(max_unscored_rate)
    from promedical.reward.judge import load_rm_judge

    judge = load_rm_judge(model, batch_size=batch_size)
    by_id = {r.id: r for r in read_rubrics(rubrics)}
    items = read_responses(responses)
    verdicts = []
    with progress() as bar:
        task = bar.add_task("scoring", total=len(items))
        for response in items:
            rubric = by_id.get(response.rubric_id)
            if rubric is None:
                raise UserError(f"{responses}: -: {response.id}: rubric_id: no rubric {response.rubric_id!r}")
            verdicts.extend(judge.grade(rubric, response))
            bar.advance(task)
    write_jsonl(out, verdicts)
    check_verdicts(verdicts, max_unscored_rate, str(out))  # after writing: the reasons stay readable
    summary = {"responses": len(items), "verdicts": len(verdicts), "out": str(out), "judge": judge.name,
               "truncation": judge.truncation.as_dict(judge.rm.card.input)}
    if json_out:
        emit_json(summary)
    else:
        typer.echo(f"{len(verdicts)} verdicts on {len(items)} responses -> {out}")


@app.command("build-supervision")
def build_supervision_cmd(
    out: Path = typer.Option(..., "-o", "--out", help="Output folder: one labelled set per split, and a manifest."),
    shared: Path | None = typer.Option(None, "--data", help="Shared data folder (default: $PROMEDICAL_SHARED_DATA "
                                       "or ../shared/data); must hold blind_test.json."),
    constructions: str = typer.Option("kqa-answers,pubmedqa-conclusions", "--constructions",
                                      help="Comma-separated: kqa-answers, pubmedqa-conclusions."),
    seed: int = typer.Option(0, help="Seed of every sampled choice."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Build extra reward-model supervision from public data (labels by construction), split by instruction."""
    import os

    from promedical.reward.supervision import SupervisionConfig, build_supervision

    default = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    folder = shared or Path(os.environ.get("PROMEDICAL_SHARED_DATA", str(default)))
    names = [c.strip() for c in constructions.split(",") if c.strip()]
    with progress() as bar:
        tasks: dict[str, Any] = {}

        def advance(stage: str, n: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.advance(tasks[stage], n)

        summary = build_supervision(folder, out, names, SupervisionConfig(seed=seed), on_progress=advance)
    if json_out:
        emit_json(summary)
    else:
        for split, row in summary["splits"].items():
            typer.echo(f"{split}: {row['verdicts']} rows ({row['satisfied']} satisfied) -> {out / split}")
        typer.echo(f"blind questions dropped: {summary['blind_dropped']}; audit ok; manifest {summary['manifest']}")
