"""``promedical rubrics ...``: validate, import and export rubric files."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from promedical.cli.common import JSON_HELP, emit_json
from promedical.io import load_rubrics

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
