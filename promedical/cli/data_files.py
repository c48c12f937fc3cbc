"""File-based data commands: the pair and split stages on plain files, outside a pipeline run directory.

``promedical data prefs`` builds lexicographic pairs and criterion-expanded rows from any rubric, response and
verdict files (a judge's verdicts or expert labels), and writes the TRL exports; ``promedical data split-rubrics``
splits a rubric file deterministically by content hash. Both reuse the pipeline's own pure functions.
"""

from __future__ import annotations

from pathlib import Path

import typer

from promedical.cli.common import JSON_HELP, emit_json, fail
from promedical.data.exports import export_all
from promedical.data.preferences import PairRule, build_pair_set
from promedical.data.splits import split_rubrics
from promedical.io import read_responses, read_rubrics, read_verdicts, write_jsonl
from promedical.rubrics.records import Response, Verdict
from promedical.runs import write_manifest


def prefs(
    rubrics: list[Path] = typer.Option(..., "--rubrics", "-r", help="Rubric JSONL file(s)."),
    responses: Path = typer.Option(..., "--responses", "-x", help="Candidate responses (JSONL)."),
    verdicts: Path = typer.Option(..., "--verdicts", "-v", help="Verdicts on them: judge output or expert labels."),
    out: Path = typer.Option(..., "-o", "--out", help="Output directory."),
    s1_epsilon: float = typer.Option(1e-6, help="S1 differences up to this are ties."),
    max_pairs_per_rubric: int | None = typer.Option(None, help="Keep at most this many pairs per rubric."),
    seed: int = typer.Option(0, help="Seed of the pair sampling rule."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Lexicographic pairs (fewer vetoes, then S1, then S2) and one row per criterion that separates them."""
    if s1_epsilon < 0:
        fail(f"--s1-epsilon: must be >= 0, got {s1_epsilon}")
    if max_pairs_per_rubric is not None and max_pairs_per_rubric < 1:
        fail(f"--max-pairs-per-rubric: must be >= 1, got {max_pairs_per_rubric}")
    all_rubrics, all_responses = read_rubrics(rubrics), read_responses(responses)
    all_verdicts = read_verdicts(verdicts)
    judges = sorted({v.judge for v in all_verdicts})
    rule = PairRule(s1_epsilon=s1_epsilon, max_pairs_per_rubric=max_pairs_per_rubric, seed=seed)
    built = build_pair_set(all_rubrics, all_responses, all_verdicts, rule,
                           judge=",".join(judges), responses_path=str(responses), verdicts_path=str(verdicts))
    pairs, rows, report, expansion = built.pairs, built.rows, built.report, built.expansion
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "pairs.records.jsonl", pairs)
    exported = export_all(out, pairs, built.rubrics, rows)
    summary = {**report.as_dict(), "criterion_rows": len(rows), "expansion": dict(sorted(expansion.items())),
               "rule": rule.describe(), "labelled_by": judges, "out": str(out), "files": exported["files"]}
    write_manifest(out, "prefs", {"rule": rule.describe(), "rubrics": [str(p) for p in rubrics],
                                  "responses": str(responses), "verdicts": str(verdicts)},
                   inputs=[*rubrics, responses, verdicts], counts=summary | {"files": None}, seed=seed)
    if json_out:
        emit_json(summary)
    else:
        typer.echo(f"{len(pairs)} pairs ({report.ties} ties, {report.unscorable} unscorable) and {len(rows)} "
                   f"criterion rows -> {out}")


def split_rubrics_cmd(
    rubrics: list[Path] = typer.Option(..., "--rubrics", "-r", help="Rubric JSONL file(s)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output directory: one <split>/ folder per split."),
    fraction: list[str] = typer.Option(["train=0.8", "test=0.2"], "--fraction", "-f",
                                       help="name=share, repeatable; shares sum to 1."),
    responses: Path | None = typer.Option(None, "--responses", "-x", help="Also split these responses."),
    verdicts: Path | None = typer.Option(None, "--verdicts", "-v", help="Also split these verdicts (needs -x)."),
    salt: str = typer.Option("promedical-split/v1", help="Change to draw a different (still deterministic) split."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Split rubrics (and their responses and verdicts) by a hash of the instruction.

    The same question always lands in the same split. Each split is written as a labelled-set folder
    ``<out>/<split>/`` with ``rubrics.jsonl`` (and ``responses.jsonl``, ``verdicts.jsonl`` when given).
    """
    fractions: dict[str, float] = {}
    for item in fraction:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            fail(f"--fraction: {item!r} is not name=share")
        try:
            fractions[name.strip()] = float(value)
        except ValueError:
            fail(f"--fraction: {item!r} is not name=share")
    if verdicts is not None and responses is None:
        fail("--verdicts: needs --responses (verdicts are split through their responses)")
    all_rubrics = read_rubrics(rubrics)
    try:
        splits = split_rubrics(all_rubrics, fractions, salt)
    except ValueError as exc:
        fail(f"--fraction: {exc}")
    split_of_rubric = {r.id: name for name, items in splits.items() for r in items}
    split_of_response: dict[str, str] = {}
    by_split_responses: dict[str, list[Response]] = {name: [] for name in splits}
    if responses is not None:
        for response in read_responses(responses):
            if response.rubric_id not in split_of_rubric:
                fail(f"{responses}: {response.id}: rubric_id: no rubric {response.rubric_id!r}")
            split_of_response[response.id] = split_of_rubric[response.rubric_id]
            by_split_responses[split_of_response[response.id]].append(response)
    by_split_verdicts: dict[str, list[Verdict]] = {name: [] for name in splits}
    if verdicts is not None:
        for verdict in read_verdicts(verdicts):
            if verdict.response_id not in split_of_response:
                fail(f"{verdicts}: {verdict.response_id}: response_id: no such response")
            by_split_verdicts[split_of_response[verdict.response_id]].append(verdict)
    counts: dict[str, dict[str, int]] = {}
    for name, items in splits.items():
        folder = out / name
        write_jsonl(folder / "rubrics.jsonl", items)
        counts[name] = {"rubrics": len(items)}
        if responses is not None:
            counts[name]["responses"] = write_jsonl(folder / "responses.jsonl", by_split_responses[name])
        if verdicts is not None:
            counts[name]["verdicts"] = write_jsonl(folder / "verdicts.jsonl", by_split_verdicts[name])
    inputs = [*rubrics, *(p for p in (responses, verdicts) if p is not None)]
    write_manifest(out, "split", {"fractions": fractions, "salt": salt, "inputs": [str(p) for p in inputs]},
                   inputs=inputs, counts=counts)
    folders = {name: str(out / name) for name in splits}
    if json_out:
        emit_json({"counts": counts, "folders": folders, "fractions": fractions, "salt": salt})
    else:
        typer.echo(", ".join(f"{k}: {v['rubrics']} rubrics" for k, v in counts.items()) + f" -> {out}")
