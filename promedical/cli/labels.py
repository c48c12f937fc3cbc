"""``promedical labels ...``: import expert labels (K-QA physician NLI annotations) as verdict records."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from promedical.cli.common import JSON_HELP, emit_json, fail, stderr
from promedical.io import read_rubrics, write_jsonl
from promedical.labels import import_kqa_nli

app = typer.Typer(help="Import expert labels as verdict records (for judge meta-evaluation).", no_args_is_help=True)

SHOWN_UNMATCHED = 20


class LabelFormat(StrEnum):
    KQA_NLI = "kqa-nli"


@app.command("import")
def import_(
    source: Path = typer.Argument(..., help="Label file (K-QA: NLI_medical_annotator.csv)."),
    fmt: LabelFormat = typer.Option(..., "--format", "-f", help="Label format."),
    rubrics: list[Path] = typer.Option(..., "--rubrics", "-r", help="Rubrics the labels refer to (from "
                                       "`promedical rubrics import --format kqa`); repeatable."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the label verdicts (JSONL)."),
    responses_out: Path | None = typer.Option(None, "--responses-out", help="Also write the labelled answers as "
                                              "response records (JSONL)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Report malformed rows on stderr and import the rest "
                                  "(default: stop, exit 2)."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Turn expert labels into verdicts: one per annotator and one for their majority, per matched criterion.

    Unmatched claims are reported on stderr with their reason and counted in the summary; they are not errors.
    """
    if responses_out is not None and responses_out.resolve() == out.resolve():
        fail("--responses-out: must differ from -o")
    loaded = read_rubrics(rubrics)
    if not loaded:
        fail(f"{rubrics[0]}: no rubrics to match labels against")
    result = import_kqa_nli(source, loaded)
    if result.problems and not skip_bad:
        more = f" (and {len(result.problems) - 1} more problems; --skip-bad imports the good rows)" \
            if len(result.problems) > 1 else ""
        fail(f"{result.problems[0]}{more}")
    if result.rows == 0 and not result.problems:
        fail(f"{source}: no label rows")
    for problem in result.problems:
        stderr.print(f"bad row: {problem}", markup=False, highlight=False, soft_wrap=True)
    for unmatched in result.unmatched[:SHOWN_UNMATCHED]:
        stderr.print(f"{source}:{unmatched}", markup=False, highlight=False, soft_wrap=True)
    if len(result.unmatched) > SHOWN_UNMATCHED:
        hidden = len(result.unmatched) - SHOWN_UNMATCHED
        stderr.print(f"... and {hidden} more unmatched rows", markup=False, soft_wrap=True)
    write_jsonl(out, result.verdicts)
    if responses_out is not None:
        write_jsonl(responses_out, result.responses)
    summary = result.summary()
    stderr.print(
        f"{fmt.value}: {summary['rows']} rows -> {summary['matched']} matched ({summary['match_methods']}), "
        f"{summary['unmatched']} unmatched {summary['unmatched_by_reason'] or ''}, bad rows {summary['bad_rows']}; "
        f"{summary['verdicts']} verdicts, {summary['responses']} responses; notes {summary['notes'] or '-'}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if json_out:
        emit_json({**summary, "rubrics": [str(p) for p in rubrics], "out": str(out),
                   "responses_out": str(responses_out) if responses_out else None})
    else:
        typer.echo(f"wrote {summary['verdicts']} label verdicts -> {out}")
