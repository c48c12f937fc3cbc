"""Entry point: ``promedical <group> <command>``. Each group lives in its own module beside this one."""

from __future__ import annotations

import sys

import typer

from promedical import __version__, interrupt
from promedical.cli import bench as bench_cli
from promedical.cli import data as data_cli
from promedical.cli import data_files as data_files_cli
from promedical.cli import grpo as grpo_cli
from promedical.cli import judge as judge_cli
from promedical.cli import labels as labels_cli
from promedical.cli import quickstart as quickstart_cli
from promedical.cli import review as review_cli
from promedical.cli import rm as rm_cli
from promedical.cli import rubrics as rubrics_cli
from promedical.cli import score as score_cli
from promedical.io import UserError

app = typer.Typer(
    name="promedical",
    help="Align medical LLMs with physician-derived hierarchical criteria: rubrics, judging, preferences, "
    "criterion-conditioned reward models, GRPO and evaluation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(rubrics_cli.app, name="rubrics")
app.add_typer(rm_cli.app, name="rm")  # ProMedical-RM, package promedical.reward (the name of the rm: judge spec)
app.add_typer(review_cli.app, name="review")
app.add_typer(bench_cli.app, name="bench")
app.add_typer(labels_cli.app, name="labels")
app.add_typer(grpo_cli.app, name="grpo")
app.add_typer(grpo_cli.dpo_app, name="dpo")
app.add_typer(judge_cli.app, name="judge")
app.add_typer(data_cli.app, name="data")
data_cli.app.command("prefs")(data_files_cli.prefs)
data_cli.app.command("split-rubrics")(data_files_cli.split_rubrics_cmd)
app.command("score")(score_cli.score)
app.command("quickstart")(quickstart_cli.quickstart)


@app.command("version")
def version() -> None:
    """Print the installed version."""
    typer.echo(__version__)


INTERRUPTED = "interrupted: completed work is kept; run the same command again to resume\n"


def _run_app() -> int | str | None:
    """Run the command; its exit code (``UserError``: 2, a Ctrl-C typer caught: 130)."""
    try:
        app()
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except SystemExit as exc:
        return exc.code
    return 0


def main() -> None:
    # A SIGINT is recorded whatever catches its KeyboardInterrupt (see promedical.interrupt): an interrupted
    # command exits 130, never 0, even when the signal lands in a finaliser or after the summary was printed.
    interrupt.install()
    try:
        code = _run_app()
        interrupt.fault_point("exit")
    except KeyboardInterrupt:  # raised outside a command (typer turns one inside a command into exit 130)
        code = 130
    if interrupt.settle(INTERRUPTED):  # the exit code is decided; a later SIGINT ends the process with 130
        code = 130
    if code == 130:
        sys.stderr.write(INTERRUPTED)
    sys.exit(code)


if __name__ == "__main__":
    main()
