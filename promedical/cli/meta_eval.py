"""``promedical judge meta-eval``: agreement of judge verdicts with reference labels (experts or a grader)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from promedical.cli.common import JSON_HELP, emit_json, fail, stderr
from promedical.io import read_rubrics, read_verdicts, write_json


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ci(estimate: dict[str, Any]) -> str:
    if estimate["value"] is None:
        return "-"
    if estimate["ci_low"] is None:
        return _num(estimate["value"])
    return f"{estimate['value']:.3f} [{estimate['ci_low']:.3f}, {estimate['ci_high']:.3f}]"


def _judge_table(name: str, report: dict[str, Any]) -> Table:
    table = Table(title=f"judge {name}", title_justify="left")
    for column in ("tier", "labels", "coverage", "acc (scored)", "acc (strict)", "kappa (scored)", "F1 met",
                   "F1 unmet"):
        table.add_column(column)
    rows = [("all", report["overall"]), *report["by_tier"].items()]
    for tier, m in rows:
        per_class = m["per_class"] or {}
        table.add_row(tier, str(m["n_labels"]), _num(m["coverage"]), _ci(m["accuracy_scored"]),
                      _ci(m["accuracy_strict"]), _ci(m["kappa"]),
                      _num(per_class.get("met", {}).get("f1")), _num(per_class.get("unmet", {}).get("f1")))
    return table


def _agreement_table(report: dict[str, Any]) -> Table:
    table = Table(title="annotators' agreement (met/unmet)", title_justify="left")
    for column in ("tier", "items", "Krippendorff alpha", "mean pairwise kappa"):
        table.add_column(column)
    for tier, block in [("all", report["overall"]), *report["by_tier"].items()]:
        table.add_row(tier, str(block["n_items"]), _ci(block["krippendorff_alpha"]),
                      _num(block["mean_pairwise_kappa"]))
    return table


def meta_eval(
    labels: Path = typer.Option(..., "--labels", "-l", help="Reference verdicts (expert labels, JSONL)."),
    verdicts: Path = typer.Option(..., "--verdicts", "-v", help="Judge verdicts to evaluate (JSONL); each judge "
                                  "in the file is reported separately."),
    rubrics: list[Path] | None = typer.Option(None, "--rubrics", "-r", help="Rubrics, for the tier of each "
                                              "criterion (default: the tier recorded in the labels)."),
    reference: str | None = typer.Option(None, "--reference", help="Label judge to use as the reference "
                                         "(default: the only one, else the one named '*majority')."),
    judge: list[str] | None = typer.Option(None, "--judge", "-j", help="Only these judges from --verdicts."),
    resamples: int = typer.Option(2000, "--resamples", min=100, help="Bootstrap resamples per CI."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Also write the full report (JSON)."),
    predictions_out: Path | None = typer.Option(None, "--predictions-out", help="Also write one prediction per "
                                                "labelled item and judge (JSONL), for `promedical judge compare`."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Accuracy, per-class precision/recall/F1 and Cohen's kappa (bootstrap CIs) per tier, against the labels;
    unscored and missing judge verdicts are reported as coverage, never counted silently; plus the annotators'
    own agreement when the label file holds several annotators."""
    from promedical.judge.meta_eval import meta_evaluate, tier_map  # scikit-learn loads only when needed

    label_verdicts = read_verdicts(labels)
    if not label_verdicts:
        fail(f"{labels}: no label verdicts")
    judged = read_verdicts(verdicts)
    if judge:
        judged = [v for v in judged if v.judge in set(judge)]
    if not judged:
        fail(f"{verdicts}: no verdicts" + (f" from judge(s) {', '.join(judge)}" if judge else ""))
    tiers = tier_map(read_rubrics(rubrics)) if rubrics else None
    try:
        report = meta_evaluate(label_verdicts, judged, reference, tiers, n_resamples=resamples, seed=seed)
    except ValueError as exc:
        fail(f"{labels}: judge: {exc} (--reference)")
    report["inputs"] = {"labels": str(labels), "verdicts": str(verdicts),
                        "rubrics": [str(p) for p in rubrics or []]}
    for name, block in report["judges"].items():
        overall = block["overall"]
        if overall["n_labels"] and overall["n_missing"] == overall["n_labels"]:
            stderr.print(f"warning: judge {name} has no verdict on any labelled (response, criterion): check that "
                         "both files refer to the same responses", markup=False, highlight=False, soft_wrap=True)
    if out is not None:
        write_json(out, report)
    if predictions_out is not None:
        from promedical.judge.meta_eval import predictions
        from promedical.judge.predictions import write_predictions

        report["predictions"] = {"out": str(predictions_out), "rows": write_predictions(
            predictions_out, predictions(label_verdicts, judged, reference, tiers))}
    if json_out:
        emit_json(report)
        return
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(f"reference: {report['reference']} ({labels})", markup=False, highlight=False, soft_wrap=True)
    for name, block in report["judges"].items():
        console.print(_judge_table(name, block))
    if "annotators" in report:
        console.print(_agreement_table(report["annotators"]))
    console.print("coverage = scored / labelled; acc (strict) counts unscored and missing verdicts as wrong; "
                  "kappa on scored items; [95% percentile-bootstrap CI]", markup=False, highlight=False, soft_wrap=True)
