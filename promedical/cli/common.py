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


def training_progress(bar: Progress, keys: tuple[str, ...] = ("loss",)) -> Any:
    """A transformers ``TrainerCallback`` that drives ``bar`` and prints the logged ``keys`` at each logging step."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        task: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.task = bar.add_task("training", total=state.max_steps, completed=state.global_step)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            bar.update(self.task, completed=state.global_step)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if not logs or not state.is_world_process_zero:
                return
            shown = {k: v for k, v in logs.items() if k in keys and isinstance(v, int | float)}
            if shown:
                stderr.print(f"step {state.global_step}: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))

    return ProgressCallback()
