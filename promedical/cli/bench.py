"""``promedical bench ...``: held-out rubric runs, paired comparisons, external MCQ benchmarks, reports, judge eval."""

from __future__ import annotations

from pathlib import Path

import typer

from promedical.cli.common import emit_json, stderr
from promedical.cli.options import JsonOpt, TimeoutOpt, judge_option, progress_bar
from promedical.io import UserError
from promedical.unscored import DEFAULT_MAX_UNSCORED_RATE, MAX_UNSCORED_HELP

app = typer.Typer(help="Evaluate policies on held-out rubrics and external benchmarks, with CIs and paired tests.",
                  no_args_is_help=True)


@app.command("mcq")
def mcq(
    dataset: str = typer.Option(..., "--dataset", "-d", help="medqa, pubmedqa or mmlu (the 8 medical subjects)."),
    policy: str = typer.Option(..., "--policy", "-p", help="Generator spec, e.g. hf:smollm2."),
    out: Path = typer.Option(..., "-o", "--out", help="Run directory (predictions, summary, manifest, cache)."),
    data: Path | None = typer.Option(None, "--data", help="Dataset folder (default: the shared data folder)."),
    mode: str = typer.Option("direct", "--mode", help="direct (answer only, the default) or cot (reason first)."),
    limit: int | None = typer.Option(150, "--limit", help="Fixed-seed subsample size (0 = all items)."),
    seed: int = typer.Option(0, "--seed", help="Subsample and generation seed."),
    max_tokens: int = typer.Option(16, "--max-tokens", help="Generation budget (raise it for --mode cot)."),
    temperature: float = typer.Option(0.0, "--temperature"),
    timeout: TimeoutOpt = 120.0,
    json_out: JsonOpt = False,
) -> None:
    """Answer an external multiple-choice benchmark; report accuracy with CIs and the extraction failure rate."""
    from promedical.bench.evals import mcq_folder, run_mcq_bench
    from promedical.bench.mcq import DATASETS, MCQConfig

    if dataset not in DATASETS:
        raise UserError(f"-: -: -: --dataset: {dataset!r} is not one of {', '.join(DATASETS)}")
    config = MCQConfig(dataset=dataset, data=str(data or mcq_folder(dataset)), mode=mode,  # type: ignore[arg-type]
                       limit=limit or None, seed=seed, max_tokens=max_tokens, temperature=temperature)
    summary = run_mcq_bench(config, policy, out, timeout=timeout, bar=progress_bar())
    if json_out:
        emit_json(summary)
        return
    stderr.print(f"wrote {out / 'predictions.jsonl'}")
    typer.echo(
        f"{dataset} ({mode}, n={summary['n']}): accuracy on extracted {_pct(summary['accuracy_extracted'])} "
        f"{_ci(summary['accuracy_extracted_ci'])}, failures counted wrong {_pct(summary['accuracy_failures_as_wrong'])}"
        f" {_ci(summary['accuracy_failures_as_wrong_ci'])}, extraction failures "
        f"{_pct(summary['extraction_failure_rate'])} {_ci(summary['extraction_failure_rate_ci'])}"
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _ci(ci: list[float | None]) -> str:
    if ci[0] is None or ci[1] is None:
        return "[n/a]"
    return f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


@app.command("run")
def run(
    bench: Path = typer.Option(..., "--bench", "-b", help="Held-out rubric JSONL (the bench)."),
    policy: str = typer.Option(..., "--policy", "-p", help="Generator spec of the policy, e.g. hf:smollm2."),
    judge: str = judge_option(),
    out: Path = typer.Option(..., "-o", "--out", help="Run directory (created; re-running resumes from caches)."),
    also_judge: list[str] = typer.Option(None, "--also-judge", help="Also grade the same responses with this judge "
                                         "(repeatable): one the policy never trained against, e.g. lexical:0.5 or "
                                         "an RM trained on other data. Reported beside the main judge."),
    limit: int | None = typer.Option(None, "--limit", help="Fixed-seed slice of this many rubrics."),
    seed: int = typer.Option(0, "--seed", help="Slice, generation and bootstrap seed."),
    temperature: float = typer.Option(0.0, "--temperature", help="Policy sampling temperature (0 = greedy)."),
    top_p: float = typer.Option(1.0, "--top-p"),
    max_tokens: int = typer.Option(192, "--max-tokens", help="Policy generation budget."),
    system: str | None = typer.Option(None, "--system", help="System prompt prepended where a rubric has none."),
    train: str | None = typer.Option(None, "--train", help="Training pool for the independence audit (rubric or "
                                     "instruction JSONL, or source:<loader>)."),
    alpha: float = typer.Option(0.1, help="Bonus coefficient (0 <= alpha < 1)."),
    beta: float = typer.Option(0.2, help="Cap headroom above S1 = 1 (beta > 0)."),
    lam: float = typer.Option(1.5, "--lambda", help="Veto penalty (lambda >= 1 + beta)."),
    resamples: int = typer.Option(10_000, "--resamples", help="Bootstrap resamples per CI."),
    timeout: TimeoutOpt = 120.0,
    report: bool = typer.Option(True, "--report/--no-report", help="Also write report.html into the run."),
    max_unscored_rate: float = typer.Option(DEFAULT_MAX_UNSCORED_RATE, "--max-unscored-rate", help=(
        MAX_UNSCORED_HELP + " Failed generations count: their criteria are unscored.")),
    json_out: JsonOpt = False,
) -> None:
    """Generate with a policy on held-out rubrics, judge, score, and summarise with bootstrap CIs."""
    from promedical.bench.run import BenchConfig, run_bench
    from promedical.judge.run import Transport

    config = BenchConfig(bench=str(bench), policy=policy, judge=judge, limit=limit, seed=seed,
                         temperature=temperature, top_p=top_p, max_tokens=max_tokens, system=system, alpha=alpha,
                         beta=beta, lam=lam, n_resamples=resamples, train=train, max_unscored_rate=max_unscored_rate)
    summary = run_bench(config, out, also_judge=also_judge or [], transport=Transport(timeout=timeout),
                        report=report, bar=progress_bar(), say=stderr.print)
    if json_out:
        emit_json({k: v for k, v in summary.items() if not k.startswith("by_")})
        return
    typer.echo(f"bench {bench} (n={summary['n']}): overall {summary['overall']} {summary['overall_ci']}, "
               f"S1 {summary['s1']} {summary['s1_ci']}, safety compliance {summary['safety_compliance']} "
               f"{summary['safety_compliance_ci']}, unscored rate {summary['unscored_rate']}")
    for spec, block in summary["independent"].items():
        typer.echo(f"  also judged by {spec}: overall {block['overall']} {block.get('overall_ci')}, "
                   f"safety compliance {block['safety_compliance']}")


@app.command("compare")
def compare(
    run_a: Path = typer.Argument(..., help="Bench run directory A."),
    run_b: Path = typer.Argument(..., help="Bench run directory B (differences are A - B)."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Write compare.json (and report.html) here."),
    resamples: int = typer.Option(10_000, "--resamples"),
    seed: int = typer.Option(0, "--seed"),
    json_out: JsonOpt = False,
) -> None:
    """Paired differences (bootstrap CI, permutation p-value) per metric and the lexicographic win/tie/loss rate."""
    from promedical.bench.run_dir import compare_runs

    result = compare_runs(run_a, run_b, n_resamples=resamples, seed=seed, out=out)
    if json_out:
        emit_json(result)
        return
    for name, m in result["metrics"].items():
        typer.echo(f"{name:>20}: A-B {m['value']} [{m['ci_low']}, {m['ci_high']}] p={m['p_value']} (n={m['n']})")
    lex = result["lexicographic"]
    typer.echo(f"lexicographic: win {lex['win']} / tie {lex['tie']} / loss {lex['loss']} "
               f"(incomparable {lex['incomparable']}), net {lex['net']['value']} p={lex['net']['p_value']}")
    for spec, block in result["independent"].items():
        m, d = block["metrics"]["overall"], block["divergence"]
        typer.echo(f"independent judge {spec}: overall A-B {m['value']} [{m['ci_low']}, {m['ci_high']}] "
                   f"p={m['p_value']}; divergence (training judge's difference minus this one's) {d['divergence']}")
    if result["monitors"]["difference"]:
        typer.echo("monitors A-B: " + ", ".join(f"{k} {v:+.3f}" for k, v in result["monitors"]["difference"].items()))


@app.command("report")
def report_cmd(
    run_dir: Path = typer.Argument(..., help="Bench run directory."),
    out: Path | None = typer.Option(None, "-o", "--out", help="HTML path (default: RUN/report.html)."),
) -> None:
    """Render the self-contained HTML report of a bench run (plots embedded)."""
    from promedical.bench.run_dir import write_report

    typer.echo(str(write_report(run_dir, out)))


@app.command("judge-eval")
def judge_eval_cmd(
    rubrics: list[Path] = typer.Option(..., "--rubrics", "-r", help="Rubric JSONL file(s)."),
    labels: Path = typer.Option(..., "--labels", "-l", help="Expert verdict JSONL (the reference)."),
    reference: str | None = typer.Option(None, "--reference", help="Label judge to use as the reference (default: "
                                         "the only one, else the one named '*majority')."),
    verdicts: Path | None = typer.Option(None, "--verdicts", "-v", help="The judge's verdict JSONL (one judge)."),
    judge: str | None = typer.Option(None, "--judge", "-j", help="Or a judge spec: grade the labelled responses now."),
    responses: Path | None = typer.Option(None, "--responses", "-x", help="Responses (needed with --judge)."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Directory for judge_eval.json (and the verdicts)."),
    resamples: int = typer.Option(2000, "--resamples"),
    seed: int = typer.Option(0, "--seed"),
    timeout: TimeoutOpt = 120.0,
    json_out: JsonOpt = False,
) -> None:
    """Pointwise/pairwise accuracy per tier, overall accuracy, veto precision/recall/F1 of a judge or RM."""
    from promedical.bench.evals import run_judge_eval

    report = run_judge_eval(rubrics, labels, verdicts=verdicts, judge=judge, responses=responses, out=out,
                            n_resamples=resamples, seed=seed, timeout=timeout, reference=reference)
    if json_out:
        emit_json(report)
        return
    def show(e: dict[str, object] | None) -> str:
        return "n/a" if not e or e.get("value") is None else f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"

    typer.echo(f"reference {report['reference']}: {report['n_items']} labelled (response, criterion) items, "
               f"{report['n_points']} scored, {report['n_pairs']} pairs")
    typer.echo(f"overall accuracy {show(report['overall_accuracy'])}, pairwise {show(report['pairwise_accuracy'])}, "
               f"coverage {report['coverage']}")
    for tier, m in report["per_tier"].items():
        typer.echo(f"  {tier:>12}: pointwise {show(m['pointwise_accuracy'])} (n={m['n_points']}), pairwise "
                   f"{show(m['pairwise_accuracy'])} (n={m['n_pairs']})")
    veto = report["veto"] or {}
    typer.echo(f"  veto P/R/F1: {show(veto.get('precision'))} / {show(veto.get('recall'))} / {show(veto.get('f1'))}")
