"""``promedical rubrics ...``: validate, import and export rubric files."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from promedical.cli.common import JSON_HELP, emit_json, fail
from promedical.io import Problem, load_models, load_rubrics, write_jsonl
from promedical.rubrics.importers import DEFAULT_VETO_RULE, FieldError, import_file, parse_veto_rule, to_healthbench
from promedical.rubrics.importers.export import DERIVED_TAG
from promedical.rubrics.schema import Rubric

app = typer.Typer(help="Validate, import and export rubric files.", no_args_is_help=True)


@app.command("validate")
def validate(
    paths: list[Path] = typer.Argument(..., help="Rubric JSONL files (one rubric per line)."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Check rubric files; print one line per problem as PATH:LINE: <rubric id>: <field>: <problem>."""
    rubrics, problems = load_rubrics(paths)
    for problem in problems:
        sys.stderr.write(f"{problem}\n") if json_out else typer.echo(str(problem))
    if json_out:
        emit_json({"files": len(paths), "rubrics": len(rubrics), "problems": len(problems), "ok": not problems})
    elif not problems:
        typer.echo(f"ok: {len(rubrics)} rubrics in {len(paths)} file(s)")
    if problems:
        raise typer.Exit(2)


class ImportFormat(StrEnum):
    HEALTHBENCH = "healthbench"
    KQA = "kqa"


class ExportFormat(StrEnum):
    HEALTHBENCH = "healthbench"


SHOWN_SKIPS = 20


def _first_problem(problems: list[Problem], hint: str = "") -> str:
    more = f" (and {len(problems) - 1} more problems{hint})" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"


@app.command("import")
def import_(
    source: Path = typer.Argument(..., help="Source JSONL file (HealthBench rows or K-QA questions)."),
    fmt: ImportFormat = typer.Option(..., "--format", "-f", help="Source format."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the rubrics (JSONL)."),
    responses_out: Path | None = typer.Option(
        None, "--responses-out", help="Also write the source's responses (graded HealthBench answers, K-QA physician "
        "answers)."
    ),
    verdicts_out: Path | None = typer.Option(
        None, "--verdicts-out", help="Also write per-criterion verdicts from the source's grader (HealthBench)."
    ),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Report malformed rows on stderr and import the rest (default: stop, exit 2)."
    ),
    veto_rule: str = typer.Option(
        DEFAULT_VETO_RULE, "--veto-rule", help="HealthBench: which negative-points items are safety vetoes; the "
        "others become proficiency criteria stating the opposite. Conditions axis:<name>, tag:<tag>, "
        "points<=<n> joined by & (and) and , (or); or all / none. See docs/formats.md."
    ),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import public rubric data as ProMedical rubrics; counts and skipped rows are reported on stderr."""
    if verdicts_out is not None and responses_out is None:
        fail("--verdicts-out: needs --responses-out too (verdicts refer to response ids)")
    targets = [p.resolve() for p in (out, responses_out, verdicts_out) if p is not None]
    if len(set(targets)) != len(targets):
        fail("-o/--responses-out/--verdicts-out: must be three different files")
    rule = None
    if fmt is ImportFormat.HEALTHBENCH:
        try:
            rule = parse_veto_rule(veto_rule)
        except ValueError as exc:
            fail(f"--veto-rule: {exc}")
    elif veto_rule != DEFAULT_VETO_RULE:
        fail(f"--veto-rule: applies to --format healthbench only, not {fmt.value}")
    result = import_file(fmt.value, source, **({"veto_rule": rule} if rule else {}))
    if result.problems and not skip_bad:
        fail(_first_problem(result.problems, "; --skip-bad imports the good rows"))
    for problem in result.problems:
        sys.stderr.write(f"bad row: {problem}\n")
    for skipped in result.skipped[:SHOWN_SKIPS]:
        sys.stderr.write(f"{skipped}\n")
    if len(result.skipped) > SHOWN_SKIPS:
        sys.stderr.write(f"... and {len(result.skipped) - SHOWN_SKIPS} more skipped rows\n")
    write_jsonl(out, result.rubrics)
    if responses_out is not None:
        write_jsonl(responses_out, result.responses)
    if verdicts_out is not None:
        write_jsonl(verdicts_out, result.verdicts)
    summary = result.summary()
    tiers = summary["criteria_by_tier"]
    reasons = ", ".join(f"{k}: {v}" for k, v in summary["skipped_by_reason"].items())
    notes = ", ".join(f"{k}: {v}" for k, v in summary["notes"].items())
    sys.stderr.write(
        f"{fmt.value}: {summary['rows']} rows -> {summary['rubrics']} rubrics, {summary['criteria']} criteria "
        f"({tiers['proficiency']} proficiency, {tiers['bonus']} bonus, {tiers['veto']} veto), "
        f"{summary['responses']} responses, {summary['verdicts']} verdicts; skipped {summary['skipped']}"
        f"{f' ({reasons})' if reasons else ''}; bad rows {summary['bad_rows']}{f'; {notes}' if notes else ''}\n"
    )
    if json_out:
        emit_json({**summary, "source": str(source), "out": str(out),
                   "veto_rule": rule.text if rule else None,
                   "responses_out": str(responses_out) if responses_out else None,
                   "verdicts_out": str(verdicts_out) if verdicts_out else None})
    else:
        typer.echo(f"wrote {len(result.rubrics)} rubrics -> {out}")


@app.command("export")
def export(
    source: Path = typer.Argument(..., help="Rubric JSONL file."),
    fmt: ExportFormat = typer.Option(..., "--format", "-f", help="Target format."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the exported rows (JSONL)."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Export rubrics as HealthBench rows (points kept from an import, else derived; see docs/formats.md)."""
    records, problems = load_models(source, Rubric)
    first_line: dict[str, int] = {}
    rows = []
    for number, rubric in records:
        if rubric.id in first_line:
            problems.append(Problem(str(source), number, rubric.id, "id", "HealthBench prompt_id must be unique, "
                                    f"but this id is also at line {first_line[rubric.id]} (export one version)"))
            continue
        first_line[rubric.id] = number
        try:
            rows.append(to_healthbench(rubric))
        except FieldError as exc:
            problems.append(Problem(str(source), number, rubric.id, exc.field, exc.message))
    if problems:
        problems.sort(key=lambda p: p.line)
        fail(_first_problem(problems))
    write_jsonl(out, rows)
    derived = sum(DERIVED_TAG in row["example_tags"] for row in rows)
    summary = {"format": fmt.value, "rubrics": len(rows), "criteria": sum(len(r["rubrics"]) for r in rows),
               "points_kept": len(rows) - derived, "points_derived": derived, "out": str(out)}
    sys.stderr.write(f"{fmt.value}: exported {len(rows)} rubrics ({derived} with derived points) -> {out}\n")
    if json_out:
        emit_json(summary)
