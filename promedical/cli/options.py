"""Command-line options several commands share, declared once (same flags, defaults and help everywhere), and the
progress bar the library's runs drive."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from promedical.cli.common import JSON_HELP, progress
from promedical.judge.run import Bar
from promedical.judge.usage import ProgressHook

SPEC_HELP = ("Judge spec: openai:<model>@<base_url>[#structured=json_schema|json_object|guided_json|none], "
             "hf:<name-or-path>[#batch=N], or rm:<checkpoint>.")

RubricsOpt = Annotated[list[Path], typer.Option(..., "--rubrics", "-r", help="Rubric JSONL file(s).")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", help="Requests in flight at once (HTTP backends).")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per request before it counts as failed.")]
RetriesOpt = Annotated[int, typer.Option("--retries", help="Retries per request on 5xx, timeouts and connection "
                                         "errors.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Decoding seed (temperature is 0).")]
NoSchemaOpt = Annotated[bool, typer.Option("--no-schema", help="Do not ask the backend for structured output.")]
CacheOpt = Annotated[Path | None, typer.Option("--cache", help="Cache file (default <out dir>/judge-cache.sqlite).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the cache.")]
JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


def judge_option(help: str = SPEC_HELP) -> Any:
    """The required ``--judge/-j`` spec (a default, not an ``Annotated`` type: it may follow options with defaults)."""
    return typer.Option(..., "--judge", "-j", help=help)


def progress_bar(quiet: bool = False) -> Bar:
    """A rich progress bar on stderr for a library run, hidden with --json (stdout stays one JSON line)."""

    @contextmanager
    def bar(description: str) -> Iterator[ProgressHook | None]:
        with progress(disable=quiet) as shown:
            task = shown.add_task(description, total=0)
            yield ProgressHook(add_total=lambda n: shown.update(task, total=(shown.tasks[task].total or 0) + n),
                               advance=lambda n: shown.advance(task, n))
    return bar
