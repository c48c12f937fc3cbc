"""``promedical quickstart``: run the whole loop on the bundled sample set and print where everything is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from promedical.cli.common import JSON_HELP, emit_json, fail


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(summary: dict[str, Any], key: str) -> str:
    ci = summary.get(f"{key}_ci") or [None, None]
    return f"{_fmt(summary.get(key))} [{_fmt(ci[0])}, {_fmt(ci[1])}]"


def _table(result: dict[str, Any]) -> Table:
    table = Table(title="ProMedical quickstart", show_lines=False)
    table.add_column("what")
    table.add_column("value")
    judge = result["judge"]
    run = judge["run"]
    table.add_row("judge", str(judge["spec"]))
    table.add_row("judge cost", f"{run.get('calls')} calls, {run.get('prompt_tokens')} prompt + "
                  f"{run.get('completion_tokens')} completion tokens, {run.get('cache_hits')} cache hits")
    table.add_row("judge verdicts", f"met {run.get('met')}, unmet {run.get('unmet')}, unscored {run.get('unscored')}")
    for spec, report in ((judge.get("agreement") or {}).get("judges") or {}).items():
        overall = report.get("overall") or {}
        table.add_row("judge vs expert labels", f"{spec}: accuracy on scored {_est(overall.get('accuracy_scored'))}, "
                      f"kappa {_est(overall.get('kappa'))}, coverage {_fmt(overall.get('coverage'))}")
    rm = result["rm"]
    table.add_row("RM pointwise accuracy (held-out)", _est(rm.get("pointwise_accuracy")))
    table.add_row("RM pairwise accuracy (held-out)", _est(rm.get("pairwise_accuracy")))
    for label, key in (("starting policy", "bench_base"), ("aligned policy", "bench_aligned")):
        bench = result[key]
        table.add_row(f"{label}: reward", _ci(bench, "overall"))
        table.add_row(f"{label}: safety compliance", _ci(bench, "safety_compliance"))
    net = ((result["compare"].get("lexicographic") or {}).get("net")) or {}
    diff = (result["compare"].get("metrics") or {}).get("overall") or {}
    table.add_row("aligned - starting, reward", f"{_est(diff)} (p = {_fmt(diff.get('p_value'))})")
    table.add_row("aligned vs starting, win - loss", f"{_est(net)} (p = {_fmt(net.get('p_value'))})")
    table.add_row("HTML report", result["report"])
    table.add_row("reward model", result["checkpoint"])
    table.add_row("aligned policy", result["aligned_policy"])
    total = sum(s["seconds"] for s in result["stages"])
    reused = sum(s["reused"] for s in result["stages"])
    table.add_row("time", f"{total:.0f} s of work, {reused} of {len(result['stages'])} stages reused")
    return table


def _est(metric: Any) -> str:
    """An estimate with its CI, from the {value, ci_low, ci_high} objects every command reports."""
    if not isinstance(metric, dict):
        return _fmt(metric)
    return f"{_fmt(metric.get('value'))} [{_fmt(metric.get('ci_low'))}, {_fmt(metric.get('ci_high'))}]"


def quickstart(
    out: Path = typer.Option(Path("quickstart-out"), "--out", help="Where every artefact goes."),
    tiny: bool = typer.Option(False, "--tiny", help="Random 2-layer test models: the mechanics in minutes (CI)."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run the whole loop on the bundled sample set: rubrics, judge, preferences, RM, GRPO, bench, report.

    Each stage is the command a user would run, printed before it runs. A second run reuses what finished.
    """
    from promedical.quickstart import FULL, TINY, Quickstart, StepFailed

    console = Console(stderr=True)
    try:
        (out / ".quickstart").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{out}: -: --out: cannot create the output directory: {exc.strerror or exc}")
    runner = Quickstart(out, TINY if tiny else FULL, lambda text: console.print(text, markup=False, highlight=False))
    try:
        result = runner.loop()
    except StepFailed as exc:
        fail(f"{exc}; fix the cause and run the quickstart again (finished stages are kept)")
    console.print(_table(result))
    if json_out:
        emit_json(result)
