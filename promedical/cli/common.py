"""What every command shares: the ``--json`` convention, clean failure, progress bars on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from promedical.io import UserError

stderr = Console(stderr=True)

JSON_HELP = "Print one JSON object with the summary as the last line of stdout."


def emit_json(summary: dict[str, Any]) -> None:
    """The project-wide convention: with --json, the summary is the last stdout line, one JSON object."""
    sys.stdout.write(json.dumps(summary, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str) -> NoReturn:
    raise UserError(message)


def progress(disable: bool = False) -> Progress:
    """A progress bar on stderr (stdout stays clean for --json)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        disable=disable or not stderr.is_terminal,
        transient=False,
    )
