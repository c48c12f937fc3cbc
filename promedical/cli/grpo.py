"""``promedical grpo ...``: GRPO with the hierarchical, safety-vetoed reward, and the DPO baseline."""

from __future__ import annotations

from pathlib import Path

import typer

from promedical.cli.common import JSON_HELP, emit_json, progress, stderr, training_progress

app = typer.Typer(help="Policy optimisation with GRPO: the rubric reward (or the implicit-RM baseline); training "
                  "curves of GRPO and DPO runs.", no_args_is_help=True)
# DPO is a baseline beside GRPO, not a mode of it: its own group (``promedical dpo train``); ``grpo dpo`` stays as a
# hidden alias for one release.
dpo_app = typer.Typer(help="The DPO baseline (TRL DPOTrainer) on the lexicographic preference pairs.",
                      no_args_is_help=True)


GRPO_LOG_KEYS = ("loss", "reward", "kl", "rubric/s1", "rubric/s3", "rubric/veto_rate", "rubric/unscored_rate",
                 "scalar/reward", "signal/zero_std_share")


def warn(message: str) -> None:
    """The no-signal warning: one line on stderr (soft-wrapped, never split by the console)."""
    stderr.print(f"warning: {message}", style="bold yellow", markup=False, highlight=False, soft_wrap=True)


@app.command("train")
def train(
    config: Path = typer.Option(..., "--config", "-c", help="YAML GRPO config (configs/grpo_*.yaml)."),
    overrides: list[str] = typer.Argument(None, help="Overrides key=value (dotted keys for nested fields)."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """GRPO on a rubric-bearing prompt set; resumes from the last checkpoint in output_dir."""
    from promedical.config import load_settings
    from promedical.rl.config import GRPOSettings
    from promedical.rl.grpo import run

    settings = load_settings(GRPOSettings, config, overrides or [])
    with progress(disable=json_out) as bar:
        summary = run(settings, extra_callbacks=[training_progress(bar, GRPO_LOG_KEYS)], warn=warn)
    share = summary["signal"]["aggregate"]["zero_std_share"]
    signal = f"; groups with zero reward std {share:.0%}" if share is not None else ""
    stderr.print(f"GRPO: {summary['global_step']} steps{signal}; final policy {summary['final_policy']}")
    if json_out:
        emit_json(summary)


@dpo_app.command("train")
def dpo(
    config: Path = typer.Option(..., "--config", "-c", help="YAML DPO config (configs/dpo_*.yaml)."),
    overrides: list[str] = typer.Argument(None, help="Overrides key=value (dotted keys for nested fields)."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """DPO baseline (TRL DPOTrainer) on lexicographic preference pairs; resumes from the last checkpoint."""
    from promedical.config import load_settings
    from promedical.rl.config import DPOSettings
    from promedical.rl.dpo import run_dpo

    settings = load_settings(DPOSettings, config, overrides or [])
    with progress(disable=json_out) as bar:
        summary = run_dpo(settings, extra_callbacks=[training_progress(bar, GRPO_LOG_KEYS)])
    stderr.print(f"DPO: {summary['global_step']} steps; final policy {summary['final_policy']}")
    if json_out:
        emit_json(summary)


@app.command("dpo", hidden=True)
def dpo_alias(
    config: Path = typer.Option(..., "--config", "-c", help="YAML DPO config (configs/dpo_*.yaml)."),
    overrides: list[str] = typer.Argument(None, help="Overrides key=value (dotted keys for nested fields)."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Old name of `dpo train` (hidden alias, kept for one release; silent, so a bad input still prints one line)."""
    dpo(config, overrides, json_out)


@app.command("curves")
def curves(
    run_dir: Path = typer.Argument(..., help="A GRPO or DPO run directory (its output_dir)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file: .html (PNG embedded) or .png."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Plot a run's training curves (reward components, zero-std share, rates, KL, length, loss) from its logs."""
    from promedical.rl.curves import render

    summary = render(run_dir, out)
    stderr.print(f"curves: {', '.join(summary['series'])} -> {summary['output']}")
    if json_out:
        emit_json(summary)
