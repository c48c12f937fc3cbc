"""Shared pieces of the policy-optimisation tests: a fault-injecting judge and tiny-run settings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promedical.config import load_settings
from promedical.judge.lexical import LexicalJudge
from promedical.rl.config import GRPOSettings
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Rubric, Tier

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "configs" / "grpo_tiny.yaml"
SAMPLE_RUBRICS = ROOT / "promedical" / "samples" / "rubrics.jsonl"


class FaultInjectingJudge:
    """Test double for fault injection only: the real lexical judge, except that criteria of the chosen tiers
    (optionally only for responses whose text contains ``when``, or with ``alternate`` only for the first, third, ...
    response of each ``grade_many`` call) come back ``unscored``, as a failing judge's would."""

    def __init__(self, tiers: set[Tier], when: str | None = None, threshold: float = 0.3,
                 alternate: bool = False) -> None:
        self.inner = LexicalJudge(threshold)
        self.tiers = tiers
        self.when = when
        self.alternate = alternate
        self.spec = f"fault-injection({self.inner.spec})"
        self.calls = 0
        self.graded: list[str] = []  # the text of every response graded, one entry per time it was graded

    def grade(self, rubric: Rubric, response: Response) -> list[Verdict]:
        verdicts = self.inner.grade(rubric, response)
        if self.when is not None and self.when not in response.text:
            return verdicts
        return [v.model_copy(update={"status": Status.UNSCORED, "reason": "injected fault: judge timed out"})
                if rubric.criterion(v.criterion_id).tier in self.tiers else v for v in verdicts]

    def grade_many(self, items: Sequence[tuple[Rubric, Response]]) -> list[Verdict]:
        self.calls += 1
        self.graded.extend(response.text for _, response in items)
        if self.alternate:  # faults on every other response, clean verdicts from the real judge on the rest
            return [v for k, (rubric, response) in enumerate(items)
                    for v in (self.grade(rubric, response) if k % 2 == 0 else self.inner.grade(rubric, response))]
        return [v for rubric, response in items for v in self.grade(rubric, response)]

    def close(self) -> None:
        return None


def tiny_settings(tmp_path: Path, *overrides: str) -> GRPOSettings:
    return load_settings(GRPOSettings, TINY_CONFIG,
                         [f"rubrics=[{SAMPLE_RUBRICS}]", f"output_dir={tmp_path / 'run'}", *overrides])


def logged_keys(log_history: list[dict[str, Any]]) -> set[str]:
    return {key for entry in log_history for key in entry}
