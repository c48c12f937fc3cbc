"""Score labelled rows with a reward model or the lexical-overlap baseline, ready for ``eval`` and ``calibrate``.

The lexical baseline (``promedical.judge.lexical``) needs no training: its score is the share of the criterion's
content words that appear in the response. It is the floor any learned reward model has to clear. Its calibration
"probability" is the overlap itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from promedical.judge.lexical import STOPWORDS, content_words, lexical_score  # noqa: F401 - re-exported
from promedical.reward.data import LabelledData, PairRow, PointRow
from promedical.reward.eval import ScoredPair, ScoredPoint
from promedical.reward.inputs import CriterionInput, Group
from promedical.reward.model import RewardModel
from promedical.reward.score import score_groups
from promedical.reward.windows import TruncationStats

LEXICAL = "lexical"


class Scorer(Protocol):
    name: str

    def score(self, items: Sequence[tuple[str, str, CriterionInput]]) -> list[float]: ...

    def prob(self, score: float) -> float: ...


class LexicalScorer:
    name = LEXICAL

    def score(self, items: Sequence[tuple[str, str, CriterionInput]]) -> list[float]:
        return [lexical_score(response, c.text) for _, response, c in items]

    def prob(self, score: float) -> float:
        return score


class RMScorer:
    """Scores with prefix sharing: items are grouped by (instruction, response) before scoring.

    ``truncation`` counts, over the distinct responses scored so far, how many were read only in part (the
    checkpoint's input scheme decides how much of a response is read: ``promedical.reward.windows``).
    """

    def __init__(self, rm: RewardModel, batch_size: int = 16,
                 on_progress: Callable[[int], None] | None = None) -> None:
        self.rm = rm
        self.name = f"rm:{rm.path}"
        self.batch_size = batch_size
        self.on_progress = on_progress
        self.truncation = TruncationStats()

    def score(self, items: Sequence[tuple[str, str, CriterionInput]]) -> list[float]:
        groups: dict[tuple[str, str], list[int]] = {}
        for i, (instruction, response, _) in enumerate(items):
            groups.setdefault((instruction, response), []).append(i)
        out = [0.0] * len(items)
        for (instruction, response), idx in groups.items():
            group = Group(instruction, response, tuple(items[i][2] for i in idx))
            scored = score_groups(self.rm, [group], self.batch_size)[0]
            self.truncation.add(scored.windowed)
            for i, value in zip(idx, scored.scores, strict=True):
                out[i] = value
            if self.on_progress is not None:
                self.on_progress(len(idx))
        return out

    def prob(self, score: float) -> float:
        return 1.0 / (1.0 + math.exp(-max(min(score, 60.0), -60.0)))


def _point_item(p: PointRow) -> tuple[str, str, CriterionInput]:
    return (p.instruction, p.response, CriterionInput(p.criterion, p.tier, p.polarity))


def _pair_items(p: PairRow) -> list[tuple[str, str, CriterionInput]]:
    c = CriterionInput(p.criterion, p.tier, p.polarity)
    return [(p.instruction, p.chosen, c), (p.instruction, p.rejected, c)]


def score_data(scorer: Any, data: LabelledData) -> tuple[list[ScoredPoint], list[ScoredPair]]:
    """Score every point and both sides of every pair (one call, so shared prefixes are grouped)."""
    items = [_point_item(p) for p in data.points]
    for pair in data.pairs:
        items.extend(_pair_items(pair))
    scores = scorer.score(items) if items else []
    n = len(data.points)
    points = [ScoredPoint(p.tier, p.satisfied, s, scorer.prob(s)) for p, s in zip(data.points, scores[:n], strict=True)]
    pair_scores = scores[n:]
    pairs = [ScoredPair(p.tier, pair_scores[2 * i], pair_scores[2 * i + 1]) for i, p in enumerate(data.pairs)]
    return points, pairs


def calibrate_scorer(scorer: Any, data: LabelledData) -> dict[str, Any]:
    """Per-tier thresholds (``calibrate.calibrate``) from a scorer's scores on labelled validation points."""
    from promedical.reward.calibrate import calibrate

    if not data.points:
        raise ValueError("calibration needs pointwise labels (verdicts), and the validation data has none")
    points, _ = score_data(scorer, LabelledData(points=data.points))
    return calibrate([p.tier for p in points], [p.score for p in points], [p.satisfied for p in points])
