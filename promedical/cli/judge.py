"""``promedical judge``: label every (response, criterion) with a judge, and adjudicate response pairs.

Both commands stream every model answer into a SQLite cache as it arrives (default ``<out dir>/judge-cache.sqlite``),
so a killed run resumes on re-run with calls only for what is missing; outputs are written atomically at the end
together with the resolved config and a run manifest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from promedical.cli import meta_eval as meta_eval_cli
from promedical.cli.common import JSON_HELP, emit_json, fail, progress
from promedical.hashing import content_hash
from promedical.io import load_models, read_rubrics, write_jsonl
from promedical.judge.pairwise import PairwiseConfig, PairwiseJudge, make_pairs, summarise_pairs
from promedical.judge.pointwise import MODES, PointwiseConfig
from promedical.judge.prompts import DEFAULT_GROUPED, GROUPED_TEMPLATES
from promedical.judge.protocol import load_judge
from promedical.judge.summary import summarise_verdicts
from promedical.judge.usage import ProgressHook, Usage
from promedical.llm.spec import load_generator, parse_spec
from promedical.rubrics.records import Response
from promedical.rubrics.schema import Rubric
from promedical.runs import write_manifest
from promedical.unscored import (
    DEFAULT_MAX_UNSCORED_RATE,
    MAX_UNSCORED_HELP,
    check_rate,
    check_verdicts,
    validate_max_rate,
)

app = typer.Typer(help="Judge responses against rubric criteria (LLM-as-judge or reward model).",
                  no_args_is_help=True)
app.command("meta-eval")(meta_eval_cli.meta_eval)

SPEC_HELP = ("Judge spec: openai:<model>@<base_url>[#structured=json_schema|json_object|guided_json|none], "
             "hf:<name-or-path>[#batch=N], or rm:<checkpoint>.")


def _rubric_map(paths: list[Path]) -> dict[str, Rubric]:
    latest: dict[str, Rubric] = {}
    for rubric in read_rubrics(paths):
        if rubric.id not in latest or rubric.version > latest[rubric.id].version:
            latest[rubric.id] = rubric
    return latest


def _responses(path: Path, rubrics: dict[str, Rubric]) -> list[Response]:
    records, problems = load_models(path, Response)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        fail(f"{problems[0]}{more}")
    seen: set[str] = set()
    for line, response in records:
        if response.rubric_id not in rubrics:
            fail(f"{path}:{line}: {response.id}: rubric_id: no rubric {response.rubric_id!r} in the rubric file(s)")
        if response.id in seen:
            fail(f"{path}:{line}: {response.id}: id: duplicate response id")
        seen.add(response.id)
    if not records:
        fail(f"{path}:0: -: -: no responses")
    return [r for _, r in records]


def _cache_path(out: Path, cache: Path | None, no_cache: bool) -> Path | None:
    if no_cache:
        return None
    return cache if cache is not None else out.parent / "judge-cache.sqlite"


@contextmanager
def _bar(description: str, quiet: bool) -> Iterator[ProgressHook]:
    with progress(disable=quiet) as bar:
        task = bar.add_task(description, total=0)
        yield ProgressHook(add_total=lambda n: bar.update(task, total=(bar.tasks[task].total or 0) + n),
                           advance=lambda n: bar.advance(task, n))


def _check_common(timeout: float, retries: int, concurrency: int, max_tokens: int, reasks: int) -> None:
    if timeout <= 0 or retries < 0 or concurrency < 1 or max_tokens < 1 or reasks < 0:
        fail("options: need --timeout > 0, --retries >= 0, --concurrency >= 1, --max-tokens >= 1, --reasks >= 0")


@app.command("run")
def run(
    rubrics: list[Path] = typer.Option(..., "--rubrics", "-r", help="Rubric JSONL file(s)."),
    responses: Path = typer.Option(..., "--responses", "-x", help="Response JSONL file."),
    judge_spec: str = typer.Option(..., "--judge", "-j", help=SPEC_HELP),
    out: Path = typer.Option(..., "-o", "--out", help="Verdict JSONL to write (one per response and criterion)."),
    mode: str = typer.Option("grouped", "--mode", help="grouped (one call per response) or single (per criterion)."),
    template: str = typer.Option(DEFAULT_GROUPED.version, "--template",
                                 help="Grouped prompt: pointwise-grouped/3 (explained) or pointwise-grouped-terse/2 "
                                      "(a boolean per criterion, no explanation), both with the untrusted text "
                                      "escaped in delimited blocks; earlier versions (pointwise-grouped/2, /1, "
                                      "pointwise-grouped-terse/1) paste it verbatim."),
    concurrency: int = typer.Option(4, "--concurrency", help="Requests in flight at once (HTTP backends)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds per request before it counts as failed."),
    retries: int = typer.Option(3, "--retries", help="Retries per request on 5xx, timeouts and connection errors."),
    reasks: int = typer.Option(2, "--reasks", help="Re-asks for criteria without a usable answer."),
    max_tokens: int = typer.Option(1024, "--max-tokens", help="Answer token limit per call."),
    seed: int = typer.Option(0, "--seed", help="Decoding seed (temperature is 0)."),
    no_schema: bool = typer.Option(False, "--no-schema", help="Do not ask the backend for structured output."),
    cache: Path | None = typer.Option(None, "--cache", help="Cache file (default <out dir>/judge-cache.sqlite)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the cache."),
    limit: int | None = typer.Option(None, "--limit", help="Judge only a fixed-seed slice of this many responses."),
    max_unscored_rate: float = typer.Option(DEFAULT_MAX_UNSCORED_RATE, "--max-unscored-rate",
                                            help=MAX_UNSCORED_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Grade every response against every criterion of its rubric; write one verdict per pair."""
    validate_max_rate(max_unscored_rate)
    if limit is not None and limit < 1:
        fail(f"--limit: must be >= 1, got {limit}")
    if mode not in MODES:
        fail(f"--mode: {mode!r} is not one of {', '.join(MODES)}")
    if template not in GROUPED_TEMPLATES:
        fail(f"--template: {template!r} is not one of {', '.join(GROUPED_TEMPLATES)}")
    _check_common(timeout, retries, concurrency, max_tokens, reasks)
    rubric_map = _rubric_map(rubrics)
    items = [(rubric_map[r.rubric_id], r) for r in _responses(responses, rubric_map)]
    if limit is not None and limit < len(items):
        keep = {r.id for _, r in sorted(items, key=lambda item: content_hash([seed, item[1].id]))[:limit]}
        items = [item for item in items if item[1].id in keep]
    config = PointwiseConfig(mode=mode, max_tokens=max_tokens, seed=seed, reasks=reasks,  # type: ignore[arg-type]
                             use_schema=not no_schema, grouped_template=template)
    cache_path = _cache_path(out, cache, no_cache)
    judge = load_judge(judge_spec, config=config, timeout=timeout, retries=retries, concurrency=concurrency,
                       cache_path=cache_path)
    try:
        if judge.usage is not None:
            with _bar("judging", json_out) as hook:
                verdicts = judge.grade_many(items, progress=hook)
        else:  # the lexical and reward-model judges: no model calls to count
            verdicts = judge.grade_many(items)
    finally:
        judge.close()
    usage = judge.usage
    write_jsonl(out, verdicts)
    # Judges without a language model behind them (lexical, reward model) have no prompt, mode or completion cache.
    template_version = judge.template_version
    summary: dict[str, Any] = {**summarise_verdicts(verdicts, usage or Usage()), "judge": judge.spec,
                               "template_version": template_version, "mode": mode if usage else None,
                               "out": str(out), "cache": str(cache_path) if cache_path and usage else None}
    options = config.as_dict() if usage else {"template_version": template_version}
    resolved = {"judge": judge.spec, "rubrics": [str(p) for p in rubrics], "responses": str(responses),
                "limit": limit, **options, "timeout": timeout, "retries": retries, "concurrency": concurrency,
                "cache": summary["cache"], "max_unscored_rate": max_unscored_rate}
    write_manifest(out.parent, "judge", resolved, inputs=[*rubrics, responses], counts=summary, seed=seed)
    check_verdicts(verdicts, max_unscored_rate, str(out))  # after writing: the reasons stay readable
    if json_out:
        emit_json(summary)
    else:
        typer.echo(f"{summary['verdicts']} verdicts ({summary['met']} met, {summary['unmet']} unmet, "
                   f"{summary['unscored']} unscored) -> {out}")
        typer.echo(f"{summary['calls']} model calls, {summary['cache_hits']} cache hits, "
                   f"{summary['prompt_tokens']} prompt + {summary['completion_tokens']} completion tokens")


@app.command("pairwise")
def pairwise(
    rubrics: list[Path] = typer.Option(..., "--rubrics", "-r", help="Rubric JSONL file(s)."),
    responses: Path = typer.Option(..., "--responses", "-x", help="Response JSONL file (2+ per rubric)."),
    judge_spec: str = typer.Option(..., "--judge", "-j", help=SPEC_HELP.replace(", or rm:<checkpoint>", "")),
    out: Path = typer.Option(..., "-o", "--out", help="Pair outcome JSONL to write."),
    concurrency: int = typer.Option(4, "--concurrency", help="Requests in flight at once (HTTP backends)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds per request before it counts as failed."),
    retries: int = typer.Option(3, "--retries", help="Retries per request on 5xx, timeouts and connection errors."),
    reasks: int = typer.Option(2, "--reasks", help="Re-asks for an order without a usable answer."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Answer token limit per call."),
    seed: int = typer.Option(0, "--seed", help="Decoding seed (temperature is 0)."),
    no_schema: bool = typer.Option(False, "--no-schema", help="Do not ask the backend for structured output."),
    cache: Path | None = typer.Option(None, "--cache", help="Cache file (default <out dir>/judge-cache.sqlite)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the cache."),
    max_unscored_rate: float = typer.Option(DEFAULT_MAX_UNSCORED_RATE, "--max-unscored-rate",
                                            help=MAX_UNSCORED_HELP.replace("verdicts", "pair outcomes")),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Compare every pair of responses to the same rubric under its criteria, in both orders."""
    validate_max_rate(max_unscored_rate)
    _check_common(timeout, retries, concurrency, max_tokens, reasks)
    if not parse_spec(judge_spec).generates_text:
        fail(f"--judge: {judge_spec!r}: pairwise adjudication needs an LLM judge (openai: or hf:)")
    rubric_map = _rubric_map(rubrics)
    pairs = make_pairs(rubric_map, _responses(responses, rubric_map))
    if not pairs:
        fail(f"{responses}:0: -: rubric_id: no rubric has two or more responses to compare")
    config = PairwiseConfig(max_tokens=max_tokens, seed=seed, reasks=reasks, use_schema=not no_schema)
    cache_path = _cache_path(out, cache, no_cache)
    generator = load_generator(judge_spec, timeout=timeout, retries=retries, concurrency=concurrency,
                               cache_path=cache_path)
    judge = PairwiseJudge(generator, config)
    try:
        with _bar("comparing", json_out) as hook:
            records = judge.compare(pairs, progress=hook)
    finally:
        judge.close()
    write_jsonl(out, records)
    summary = {**summarise_pairs(records), **judge.usage.as_dict(), "judge": judge.spec,
               "template_version": config.as_dict()["template_version"], "out": str(out),
               "cache": str(cache_path) if cache_path else None}
    resolved = {"judge": judge.spec, "rubrics": [str(p) for p in rubrics], "responses": str(responses),
                **config.as_dict(), "timeout": timeout, "retries": retries, "concurrency": concurrency,
                "cache": summary["cache"], "max_unscored_rate": max_unscored_rate}
    write_manifest(out.parent, "judge-pairwise", resolved, inputs=[*rubrics, responses], counts=summary, seed=seed)
    check_rate(summary["unscored"], summary["pairs"], max_unscored_rate, str(out), what="pair outcomes")
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
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Paired comparison of two judges or reward models on the same labelled items: accuracy and kappa
    differences with bootstrap CIs and permutation p-values, overall and per tier."""
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
            typer.echo(line)
