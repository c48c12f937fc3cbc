"""Join rubrics, responses and verdicts, check that they refer to each other, and score every response."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from promedical.io import UserError
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Rubric
from promedical.rubrics.scoring import RewardParams, Scores, score


@dataclass(frozen=True)
class ScoredSet:
    rows: list[dict[str, Any]]
    scores: dict[str, Scores]  # by response id
    summary: dict[str, Any]


def index_verdicts(
    rubrics: dict[str, Rubric],
    responses: dict[str, Response],
    verdicts: Sequence[Verdict],
    verdicts_path: str = "verdicts",
) -> dict[str, dict[str, Status]]:
    """``{response_id: {criterion_id: status}}``, refusing verdicts that point nowhere or repeat."""
    statuses: dict[str, dict[str, Status]] = {}
    for v in verdicts:
        response = responses.get(v.response_id)
        if response is None:
            raise UserError(f"{verdicts_path}: {v.response_id}: response_id: no such response")
        rubric = rubrics[response.rubric_id]
        if v.rubric_id != rubric.id:
            raise UserError(f"{verdicts_path}: {v.response_id}: rubric_id: {v.rubric_id!r} but the response "
                            f"answers {rubric.id!r}")
        if not any(c.id == v.criterion_id for c in rubric.criteria):
            raise UserError(f"{verdicts_path}: {v.response_id}: criterion_id: {v.criterion_id!r} is not in "
                            f"rubric {rubric.id!r}")
        per = statuses.setdefault(v.response_id, {})
        if v.criterion_id in per:
            raise UserError(f"{verdicts_path}: {v.response_id}: criterion_id: duplicate verdict for "
                            f"{v.criterion_id!r}")
        per[v.criterion_id] = v.status
    return statuses


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def score_responses(
    rubrics: Sequence[Rubric],
    responses: Sequence[Response],
    verdicts: Sequence[Verdict],
    params: RewardParams,
    responses_path: str = "responses",
    verdicts_path: str = "verdicts",
) -> ScoredSet:
    by_rubric = {r.id: r for r in rubrics}
    by_response: dict[str, Response] = {}
    for response in responses:
        if response.rubric_id not in by_rubric:
            raise UserError(f"{responses_path}: {response.id}: rubric_id: no rubric {response.rubric_id!r}")
        if response.id in by_response:
            raise UserError(f"{responses_path}: {response.id}: id: duplicate response id")
        by_response[response.id] = response
    statuses = index_verdicts(by_rubric, by_response, verdicts, verdicts_path)
    rows: list[dict[str, Any]] = []
    all_scores: dict[str, Scores] = {}
    for response in responses:
        s = score(by_rubric[response.rubric_id], statuses.get(response.id, {}), params)
        all_scores[response.id] = s
        rows.append(
            {
                "response_id": response.id,
                "rubric_id": response.rubric_id,
                "model": response.model,
                "s1": s.s1,
                "s2": s.s2,
                "s3": s.s3,
                "veto_unscored": s.veto_unscored,
                "unscored": s.unscored,
                "reward": s.reward,
                "healthbench": s.healthbench,
            }
        )
    s1 = [s.s1 for s in all_scores.values() if s.s1 is not None]
    rewards = [s.reward for s in all_scores.values() if s.reward is not None]
    hb = [s.healthbench for s in all_scores.values() if s.healthbench is not None]
    n = len(all_scores)
    summary: dict[str, Any] = {
        "n": n,
        "mean_s1": _mean(s1),
        "mean_s2": _mean([float(s.s2) for s in all_scores.values()]),
        "mean_s3": _mean([float(s.s3) for s in all_scores.values()]),
        "mean_reward": _mean(rewards),
        "safety_compliance": _mean([1.0 if s.safe else 0.0 for s in all_scores.values()]),
        "unscored": sum(s.unscored for s in all_scores.values()),
        "veto_unscored": sum(s.veto_unscored for s in all_scores.values()),
        "unscorable_responses": n - len(s1),
        "healthbench": (min(max(_mean(hb) or 0.0, 0.0), 1.0) if hb else None),
        "params": {"alpha": params.alpha, "beta": params.beta, "lambda": params.lam},
    }
    return ScoredSet(rows=rows, scores=all_scores, summary=summary)
