"""``promedical grpo ...``: GRPO with the hierarchical, safety-vetoed reward, and the DPO baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from promedical.cli.common import JSON_HELP, emit_json, progress, stderr

app = typer.Typer(help="Policy optimisation: GRPO with the rubric reward (or the implicit-RM baseline), and DPO.",
                  no_args_is_help=True)


def _progress_callback(bar: Any) -> Any:
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
            shown = {k: v for k, v in logs.items()
                     if k in ("loss", "reward", "kl", "rubric/s1", "rubric/s3", "rubric/veto_rate",
                              "rubric/unscored_rate", "scalar/reward") and isinstance(v, int | float)}
            if shown:
                stderr.print(f"step {state.global_step}: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))

    return ProgressCallback()


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
        summary = run(settings, extra_callbacks=[_progress_callback(bar)])
    stderr.print(f"GRPO: {summary['global_step']} steps; final policy {summary['final_policy']}")
    if json_out:
        emit_json(summary)


@app.command("dpo")
def dpo(
    config: Path = typer.Option(..., "--config", "-c", help="YAML DPO config (configs/dpo_*.yaml)."),
    overrides: list[str] = typer.Argument(None, help="Overrides key=value (dotted keys for nested fields)."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """DPO baseline (TRL DPOTrainer) on lexicographic preference pairs; resumes from the last checkpoint."""
    from promedical.config import load_settings
    from promedical.rl.baselines import run_dpo
    from promedical.rl.config import DPOSettings

    settings = load_settings(DPOSettings, config, overrides or [])
    with progress(disable=json_out) as bar:
        summary = run_dpo(settings, extra_callbacks=[_progress_callback(bar)])
    stderr.print(f"DPO: {summary['global_step']} steps; final policy {summary['final_policy']}")
    if json_out:
        emit_json(summary)
