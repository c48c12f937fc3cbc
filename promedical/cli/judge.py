"""``promedical judge``: label every (response, criterion) with a judge, and adjudicate response pairs.

The runs themselves live in ``promedical.judge.run``; this module parses the options and prints the summary.
"""

from __future__ import annotations

from pathlib import Path

import typer

from promedical.cli import meta_eval as meta_eval_cli
from promedical.cli.common import emit_json
from promedical.cli.options import (
    SPEC_HELP,
    CacheOpt,
    ConcurrencyOpt,
    JsonOpt,
    NoCacheOpt,
    NoSchemaOpt,
    RetriesOpt,
    RubricsOpt,
    SeedOpt,
    TimeoutOpt,
    judge_option,
    progress_bar,
)
from promedical.judge.prompts import DEFAULT_GROUPED
from promedical.judge.run import Transport, run_pairwise, run_pointwise
from promedical.unscored import DEFAULT_MAX_UNSCORED_RATE, MAX_UNSCORED_HELP

app = typer.Typer(help="Judge responses against rubric criteria (LLM-as-judge or reward model).",
                  no_args_is_help=True)
app.command("meta-eval")(meta_eval_cli.meta_eval)


@app.command("run")
def run(
    rubrics: RubricsOpt,
    responses: Path = typer.Option(..., "--responses", "-x", help="Response JSONL file."),
    judge_spec: str = judge_option(),
    out: Path = typer.Option(..., "-o", "--out", help="Verdict JSONL to write (one per response and criterion)."),
    mode: str = typer.Option("grouped", "--mode", help="grouped (one call per response) or single (per criterion)."),
    template: str = typer.Option(DEFAULT_GROUPED.version, "--template",
                                 help="Grouped prompt: pointwise-grouped/3 (explained) or pointwise-grouped-terse/2 "
                                      "(a boolean per criterion, no explanation), both with the untrusted text "
                                      "escaped in delimited blocks; earlier versions (pointwise-grouped/2, /1, "
                                      "pointwise-grouped-terse/1) paste it verbatim."),
    concurrency: ConcurrencyOpt = 4,
    timeout: TimeoutOpt = 120.0,
    retries: RetriesOpt = 3,
    reasks: int = typer.Option(2, "--reasks", help="Re-asks for criteria without a usable answer."),
    max_tokens: int = typer.Option(1024, "--max-tokens", help="Answer token limit per call."),
    seed: SeedOpt = 0,
    no_schema: NoSchemaOpt = False,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    limit: int | None = typer.Option(None, "--limit", help="Judge only a fixed-seed slice of this many responses."),
    max_unscored_rate: float = typer.Option(DEFAULT_MAX_UNSCORED_RATE, "--max-unscored-rate",
                                            help=MAX_UNSCORED_HELP),
    json_out: JsonOpt = False,
) -> None:
    """Grade every response against every criterion of its rubric; write one verdict per pair."""
    transport = Transport(concurrency=concurrency, timeout=timeout, retries=retries, reasks=reasks,
                          max_tokens=max_tokens, seed=seed, use_schema=not no_schema, cache=cache, no_cache=no_cache)
    summary = run_pointwise(rubrics, responses, judge_spec, out, transport, mode=mode, template=template,
                            limit=limit, max_unscored_rate=max_unscored_rate, bar=progress_bar(json_out))
    if json_out:
        emit_json(summary)
    else:
        typer.echo(f"{summary['verdicts']} verdicts ({summary['met']} met, {summary['unmet']} unmet, "
                   f"{summary['unscored']} unscored) -> {out}")
        typer.echo(f"{summary['calls']} model calls, {summary['cache_hits']} cache hits, "
                   f"{summary['prompt_tokens']} prompt + {summary['completion_tokens']} completion tokens")


@app.command("pairwise")
def pairwise(
    rubrics: RubricsOpt,
    responses: Path = typer.Option(..., "--responses", "-x", help="Response JSONL file (2+ per rubric)."),
    judge_spec: str = judge_option(SPEC_HELP.replace(", or rm:<checkpoint>", "")),
    out: Path = typer.Option(..., "-o", "--out", help="Pair outcome JSONL to write."),
    concurrency: ConcurrencyOpt = 4,
    timeout: TimeoutOpt = 120.0,
    retries: RetriesOpt = 3,
    reasks: int = typer.Option(2, "--reasks", help="Re-asks for an order without a usable answer."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Answer token limit per call."),
    seed: SeedOpt = 0,
    no_schema: NoSchemaOpt = False,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    max_unscored_rate: float = typer.Option(DEFAULT_MAX_UNSCORED_RATE, "--max-unscored-rate",
                                            help=MAX_UNSCORED_HELP.replace("verdicts", "pair outcomes")),
    json_out: JsonOpt = False,
) -> None:
    """Compare every pair of responses to the same rubric under its criteria, in both orders."""
    transport = Transport(concurrency=concurrency, timeout=timeout, retries=retries, reasks=reasks,
                          max_tokens=max_tokens, seed=seed, use_schema=not no_schema, cache=cache, no_cache=no_cache)
    summary = run_pairwise(rubrics, responses, judge_spec, out, transport, max_unscored_rate=max_unscored_rate,
                           bar=progress_bar(json_out))
    if json_out:
        emit_json(summary)
    else:
        rate = summary["position_bias_rate"]
        typer.echo(f"{summary['pairs']} pairs: {summary['first']} first, {summary['second']} second, "
                   f"{summary['tie']} tie, {summary['inconsistent']} inconsistent, {summary['unscored']} unscored "
                   f"-> {out}")
        typer.echo(f"position bias rate {rate if rate is None else round(rate, 3)}; {summary['calls']} model calls, "
                   f"{summary['cache_hits']} cache hits")


@app.command("compare")
def compare(
    predictions_a: Path = typer.Argument(..., help="Predictions of judge A (JSONL from --predictions-out)."),
    predictions_b: Path = typer.Argument(..., help="Predictions of judge B on the same labels (differences A - B)."),
    judge_a: str | None = typer.Option(None, "--judge-a", help="Judge to take from A when it holds several."),
    judge_b: str | None = typer.Option(None, "--judge-b", help="Judge to take from B when it holds several."),
    resamples: int = typer.Option(10_000, "--resamples", min=100, help="Bootstrap and permutation resamples."),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(None, "-o", "--out", help="Also write the report (JSON)."),
    json_out: JsonOpt = False,
) -> None:
    """Paired comparison of two judges or reward models on the same labelled items: accuracy, kappa and (where both
    files carry scores) ROC AUC differences with bootstrap CIs and permutation p-values, overall and per tier."""
    from promedical.io import write_json
    from promedical.judge.predictions import compare_predictions, read_predictions

    report = compare_predictions(read_predictions(predictions_a, judge_a), read_predictions(predictions_b, judge_b),
                                 names=(str(predictions_a), str(predictions_b)), n_resamples=resamples, seed=seed)
    if out is not None:
        write_json(out, report)
    if json_out:
        emit_json(report)
        return
    typer.echo(f"A = {report['judge_a']}, B = {report['judge_b']}: {report['n_joined']} shared items "
               f"({report['only_a']} only in A, {report['only_b']} only in B)")
    for kind in ("point", "pair"):
        for tier, block in report.get(kind, {}).items():
            acc, kappa = block["accuracy_difference"], block["kappa_difference"]
            line = (f"{kind:>5} {tier:>11} n={block['n']}: accuracy A {block['accuracy_a']:.3f} B "
                    f"{block['accuracy_b']:.3f}, A-B {acc['value']:+.3f} [{acc['ci_low']:+.3f}, {acc['ci_high']:+.3f}]"
                    f" p={acc['p_value']:.4g}")
            if kappa["value"] is not None and kappa["ci_low"] is not None:
                line += (f"; kappa A-B {kappa['value']:+.3f} [{kappa['ci_low']:+.3f}, {kappa['ci_high']:+.3f}] "
                         f"p={kappa['p_value']:.4g}")
            auc = block.get("auc_difference") or {}
            if auc.get("value") is not None:
                line += (f"; AUC A {auc['auc_a']:.3f} B {auc['auc_b']:.3f}, A-B {auc['value']:+.3f} "
                         f"[{auc['ci_low']:+.3f}, {auc['ci_high']:+.3f}] p={auc['p_value']:.4g}")
            typer.echo(line)
