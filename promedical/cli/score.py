"""``promedical score``: verdicts -> one score row per response, through the one scoring path."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from promedical.cli.common import JSON_HELP, emit_json, fail
from promedical.io import error_text, read_responses, read_rubrics, read_verdicts, write_jsonl
from promedical.rubrics.aggregate import score_responses
from promedical.rubrics.scoring import RewardParams


def score(
    rubrics: list[Path] = typer.Option(..., "--rubrics", "-r", help="Rubric JSONL file(s)."),
    responses: Path = typer.Option(..., "--responses", "-x", help="Response JSONL file."),
    verdicts: Path = typer.Option(..., "--verdicts", "-v", help="Verdict JSONL file."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write one score row per response (JSONL)."),
    alpha: float = typer.Option(RewardParams().alpha, help="Bonus coefficient (0 <= alpha < 1)."),
    beta: float = typer.Option(RewardParams().beta, help="Cap headroom above S1 = 1 (beta > 0)."),
    lam: float = typer.Option(RewardParams().lam, "--lambda", help="Veto penalty (lambda >= 1 + beta)."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Score responses from per-criterion verdicts: S1, S2, S3, unscored, reward and the HealthBench score."""
    try:
        params = RewardParams(alpha=alpha, beta=beta, lam=lam)
    except ValidationError as exc:
        fail(f"reward parameters: {error_text(exc)}")
    result = score_responses(read_rubrics(rubrics), read_responses(responses), read_verdicts(verdicts), params,
                             responses_path=str(responses), verdicts_path=str(verdicts))
    write_jsonl(out, result.rows)
    summary = {**result.summary, "out": str(out)}
    if json_out:
        emit_json(summary)
    else:
        typer.echo(f"scored {summary['n']} responses -> {out}")
        typer.echo(
            f"mean S1 {summary['mean_s1']}, mean S2 {summary['mean_s2']}, mean reward {summary['mean_reward']}, "
            f"safety compliance {summary['safety_compliance']}, unscored criteria {summary['unscored']}"
        )
