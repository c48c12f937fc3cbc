"""A bench run directory read back: its score rows and summary, the comparison of two runs (``bench compare``)
and the HTML report of one (``bench report``).

A run directory is what ``promedical.bench.run.run_bench`` writes; an extra judge's rows sit in
``<run>/judges/<slug>/scores.jsonl`` (``promedical.bench.independent``) and are read the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from promedical.bench.compare import compare_rows
from promedical.bench.independent import divergence, monitor_differences
from promedical.files import UserError, atomic_writer, iter_jsonl, write_json
from promedical.stats import DEFAULT_RESAMPLES


def load_rows(path: Path) -> list[dict[str, Any]]:
    """The score rows of a run directory (``UserError`` naming the line of a row that is not one)."""
    scores = path / "scores.jsonl"
    if not scores.is_file():
        raise UserError(f"{path}: -: -: not a bench run directory (needs scores.jsonl)")
    rows = []
    for number, value, problem in iter_jsonl(scores):
        if problem is not None:
            raise UserError(str(problem))
        if not isinstance(value, dict) or "rubric_id" not in value or "reward" not in value:
            raise UserError(f"{scores}:{number}: -: -: not a score row")
        rows.append(value)
    return rows


def load_run(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score rows and summary of a run directory."""
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise UserError(f"{path}: -: -: not a bench run directory (needs scores.jsonl and summary.json)")
    rows = load_rows(path)
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{summary_path}:{exc.lineno}: -: -: bad JSON: {exc.msg}") from None
    return rows, summary


def _compare_independent(summary_a: dict[str, Any], summary_b: dict[str, Any], result: dict[str, Any],
                         resamples: int, seed: int) -> dict[str, Any]:
    """Per judge both runs were also graded by: its paired comparison and its divergence from the main judge's;
    and the monitors' differences A - B."""
    found: dict[str, Any] = {}
    a, b = summary_a.get("independent") or {}, summary_b.get("independent") or {}
    for spec in sorted(set(a) & set(b)):
        rows_a, rows_b = load_rows(Path(a[spec]["dir"])), load_rows(Path(b[spec]["dir"]))
        compared = compare_rows(rows_a, rows_b, names=(spec, spec), n_resamples=resamples, seed=seed)
        found[spec] = {"metrics": compared["metrics"], "lexicographic": compared["lexicographic"],
                       "divergence": divergence(result["metrics"]["overall"], compared["metrics"]["overall"])}
    return {"independent": found, "monitors": {
        "a": summary_a.get("monitors"), "b": summary_b.get("monitors"),
        "difference": monitor_differences(summary_a.get("monitors"), summary_b.get("monitors"))}}


def compare_runs(run_a: Path, run_b: Path, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 out: Path | None = None) -> dict[str, Any]:
    """Paired differences A - B of two run directories, by the main judge and by every extra judge both runs
    were graded by, and the monitors' differences; with ``out``, ``compare.json`` and ``report.html`` there."""
    rows_a, summary_a = load_run(run_a)
    rows_b, summary_b = load_run(run_b)
    names = (str(summary_a.get("policy_label") or run_a), str(summary_b.get("policy_label") or run_b))
    result = compare_rows(rows_a, rows_b, names=names, n_resamples=n_resamples, seed=seed)
    result.update({"run_a": str(run_a), "run_b": str(run_b)})
    result.update(_compare_independent(summary_a, summary_b, result, n_resamples, seed))
    if out is not None:
        from promedical.bench.report import render_compare  # matplotlib: only when a report is written

        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "compare.json", result)
        with atomic_writer(out / "report.html") as handle:
            handle.write(render_compare(result, summary_a, summary_b))
    return result


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Render the HTML report of a run directory (default ``<run>/report.html``); returns its path."""
    from promedical.bench.report import render_run

    rows, summary = load_run(run_dir)
    target = out or run_dir / "report.html"
    with atomic_writer(target) as handle:
        handle.write(render_run(summary, rows))
    return target
