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
    held_out = result.get("rm_held_out")
    if held_out:
        fitted, lexical = held_out["out_of_fold"], held_out["lexical"]
        diff = held_out["versus_lexical"]["accuracy_difference"]
        table.add_row("RM vs physicians (held out: out of fold, questions never trained on)",
                      f"accuracy {_fmt(fitted['accuracy'])}, kappa {_fmt(fitted['kappa'])} on {fitted['n']} K-QA "
                      f"labels (majority class {_fmt(fitted['majority_class'])}); lexical:0.5 "
                      f"{_fmt(lexical['accuracy'])}, difference {_est(diff)}{_ranking(held_out)}")
        budget = result["rm_budget"]
        table.add_row("RM budget", f"{budget['max_rows']} training rows of the recommended recipe's "
                      f"{budget['recommended_max_rows']}: see docs/benchmarks.md for what the full budget reaches")
    gate = result.get("rm_gate") or {}
    if gate.get("overridden"):
        table.add_row("RM gate", f"OVERRIDDEN: held-out accuracy {_fmt(gate.get('accuracy'))} is not above the "
                      f"majority class {_fmt(gate.get('majority_class'))}; GRPO and bench figures are not meaningful")
    table.add_row("RM pointwise accuracy (held-out)", _est(rm.get("pointwise_accuracy")))
    table.add_row("RM pairwise accuracy (held-out)", _est(rm.get("pairwise_accuracy")))
    for label, key in (("starting policy", "bench_base"), ("aligned policy", "bench_aligned")):
        bench = result[key]
        table.add_row(f"{label}: reward", _ci(bench, "overall"))
        table.add_row(f"{label}: safety compliance", _ci(bench, "safety_compliance"))
    net = ((result["compare"].get("lexicographic") or {}).get("net")) or {}
    diff = (result["compare"].get("metrics") or {}).get("overall") or {}
    signal = ((result.get("grpo") or {}).get("signal") or {}).get("aggregate") or {}
    if signal.get("zero_std_share") is not None:
        table.add_row("GRPO groups with no reward signal", f"{signal['zero_std_share']:.0%} (all completions of a "
                      "prompt rewarded alike: no gradient)")
    table.add_row("aligned - starting, reward (training RM)", f"{_est(diff)} (p = {_fmt(diff.get('p_value'))})")
    table.add_row("aligned vs starting, win - loss", f"{_est(net)} (p = {_fmt(net.get('p_value'))})")
    spec = result.get("independent_judge")
    block = (result["compare"].get("independent") or {}).get(spec) or {}
    independent = (block.get("metrics") or {}).get("overall")
    if independent:
        table.add_row(f"aligned - starting, reward ({spec}, never trained against)",
                      f"{_est(independent)} (p = {_fmt(independent.get('p_value'))})")
    table.add_row("effect", effect_in_words(diff, independent, spec))
    table.add_row("HTML report", result["report"])
    table.add_row("reward model", result["checkpoint"])
    table.add_row("aligned policy", result["aligned_policy"])
    total = sum(s["seconds"] for s in result["stages"])
    reused = sum(s["reused"] for s in result["stages"])
    table.add_row("time", f"{total:.0f} s of work, {reused} of {len(result['stages'])} stages reused")
    return table


def effect_in_words(training: dict[str, Any], independent: dict[str, Any] | None, spec: Any) -> str:
    """What the before/after comparison shows, in a sentence: a CI that holds zero is no measured effect."""
    def verdict(metric: dict[str, Any] | None) -> str | None:
        if not metric or metric.get("ci_low") is None or metric.get("ci_high") is None:
            return None
        if metric["ci_low"] > 0:
            return "better"
        if metric["ci_high"] < 0:
            return "worse"
        return "no different"

    under_independent = verdict(independent)
    under_training = verdict(training)
    if under_independent is None:
        return f"no independent judge: under the training RM the aligned policy is {under_training or 'unmeasured'}"
    if under_independent == "no different":
        text = (f"No measurable effect: under {spec}, which the policy never trained against, the aligned policy is "
                "not distinguishable from the starting one (the 95% CI holds zero)")
        if under_training == "better":
            text += "; the training RM alone sees a gain, which is the signature of optimising the judge"
        return text + ". A few GRPO steps on 2 CPU cores are not expected to move it; docs/grpo.md has longer runs."
    return (f"Under {spec}, which the policy never trained against, the aligned policy is {under_independent} than "
            f"the starting one (95% CI excludes zero); under the training RM it is {under_training or 'unmeasured'}.")


def _ranking(held_out: dict[str, Any]) -> str:
    """The AUC comparison with lexical:0.5 (how well each score orders the labels), when the run reports one."""
    auc = held_out["versus_lexical"].get("auc_difference") or {}
    if auc.get("value") is None:
        return ""
    return f"; ranking AUC {_fmt(auc['auc_a'])} vs {_fmt(auc['auc_b'])}, difference {_est(auc)}"


def _est(metric: Any) -> str:
    """An estimate with its CI, from the {value, ci_low, ci_high} objects every command reports."""
    if not isinstance(metric, dict):
        return _fmt(metric)
    return f"{_fmt(metric.get('value'))} [{_fmt(metric.get('ci_low'))}, {_fmt(metric.get('ci_high'))}]"


def quickstart(
    out: Path = typer.Option(Path("quickstart-out"), "--out", help="Where every artefact goes."),
    tiny: bool = typer.Option(False, "--tiny", help="Random 2-layer test models: the mechanics in minutes (CI)."),
    allow_weak_rm: bool = typer.Option(False, "--allow-weak-rm", help="Go on to GRPO and the bench even when the "
                                       "reward model's held-out accuracy is not above the majority class."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run the whole loop on the bundled sample set: rubrics, judge, preferences, RM, GRPO, bench, report.

    Each stage is the command a user would run, printed before it runs. A second run reuses what finished.
    """
    from promedical.quickstart import FULL, TINY, Quickstart, StepFailed, WeakRewardModel

    console = Console(stderr=True)
    try:
        (out / ".quickstart").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{out}: -: --out: cannot create the output directory: {exc.strerror or exc}")
    runner = Quickstart(out, TINY if tiny else FULL, lambda text: console.print(text, markup=False, highlight=False),
                        allow_weak_rm=allow_weak_rm)
    try:
        result = runner.loop()
    except StepFailed as exc:
        fail(f"{exc}; fix the cause and run the quickstart again (finished stages are kept)")
    except WeakRewardModel as exc:
        fail(f"{out}: -: rm: {exc}")
    console.print(_table(result))
    if json_out:
        emit_json(result)
