"""Entry point: ``promedical <group> <command>``. Each group lives in its own module beside this one."""

from __future__ import annotations

import sys

import typer

from promedical import __version__
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
app.add_typer(rm_cli.app, name="rm")
app.add_typer(review_cli.app, name="review")
app.add_typer(bench_cli.app, name="bench")
app.add_typer(labels_cli.app, name="labels")
app.add_typer(grpo_cli.app, name="grpo")
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


def main() -> None:
    try:
        app()
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except KeyboardInterrupt:  # raised outside a command (click handles those: exit 130, below)
        sys.stderr.write(INTERRUPTED)
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 130:  # click turned Ctrl-C inside a command into a silent exit 130
            sys.stderr.write(INTERRUPTED)
        raise


if __name__ == "__main__":
    main()
