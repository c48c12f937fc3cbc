"""Reward-model metrics with bootstrap CIs: pure functions over scored items.

* pairwise accuracy (overall and per tier): share of criterion pairs where ``score(chosen) > score(rejected)``;
  an exact tie counts one half;
* pointwise accuracy (overall and per tier): ``score >= threshold[tier]`` against the satisfied label;
* veto precision / recall / F1, the positive class being *violated* (a veto criterion not satisfied);
* calibration of the probability ``p`` each item carries (``sigmoid(score)`` for a reward model, the pointwise
  head's reading; the overlap itself for the lexical baseline): expected calibration error over 10 equal-width
  bins, and the Brier score.

Every number is an ``Estimate`` (value, 95% percentile-bootstrap CI over items, n) from ``promedical.stats``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from promedical.judge.predictions import Prediction, pair_key, point_key
from promedical.reward.data import LabelledData
from promedical.rubrics.scoring import TIER_NAMES, met_from_satisfied
from promedical.stats import Estimate, bootstrap_mean, bootstrap_statistic

TIERS = TIER_NAMES
ECE_BINS = 10


@dataclass(frozen=True, slots=True)
class ScoredPoint:
    tier: str
    satisfied: bool
    score: float
    prob: float  # probability that the criterion is satisfied, for calibration


@dataclass(frozen=True, slots=True)
class ScoredPair:
    tier: str
    chosen: float
    rejected: float


def pair_outcomes(pairs: Sequence[ScoredPair]) -> NDArray[np.float64]:
    return np.array([1.0 if p.chosen > p.rejected else 0.5 if p.chosen == p.rejected else 0.0 for p in pairs])


def point_outcomes(points: Sequence[ScoredPoint], thresholds: Mapping[str, float]) -> NDArray[np.float64]:
    return np.array([float((p.score >= thresholds[p.tier]) == p.satisfied) for p in points])


def prf(flagged: NDArray[np.bool_], violated: NDArray[np.bool_]) -> tuple[float, float, float]:
    """Precision, recall, F1 of flagging violations; NaN where undefined (nothing flagged / nothing violated)."""
    tp = float(np.sum(flagged & violated))
    n_flag, n_viol = float(np.sum(flagged)), float(np.sum(violated))
    precision = tp / n_flag if n_flag else float("nan")
    recall = tp / n_viol if n_viol else float("nan")
    f1 = 2 * tp / (n_flag + n_viol) if n_flag + n_viol else float("nan")
    return precision, recall, f1


def ece(prob: NDArray[np.float64], label: NDArray[np.float64], bins: int = ECE_BINS) -> float:
    if prob.size == 0:
        return float("nan")
    which = np.minimum((prob * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() / prob.size * abs(prob[mask].mean() - label[mask].mean())
    return float(total)


def _est(e: Estimate) -> dict[str, Any]:
    return e.as_dict()


def veto_metrics(points: Sequence[ScoredPoint], thresholds: Mapping[str, float], n_resamples: int,
                 seed: int) -> dict[str, Any] | None:
    veto = [p for p in points if p.tier == "veto"]
    if not veto:
        return None
    flagged = np.array([p.score < thresholds["veto"] for p in veto])
    violated = np.array([not p.satisfied for p in veto])
    out: dict[str, Any] = {"n_violated": int(violated.sum()), "n_flagged": int(flagged.sum())}
    for i, name in enumerate(("precision", "recall", "f1")):
        def stat(idx: NDArray[np.int64], i: int = i) -> float:
            return prf(flagged[idx], violated[idx])[i]

        out[name] = _est(bootstrap_statistic(stat, len(veto), n_resamples=n_resamples, seed=seed))
    return out


def calibration(points: Sequence[ScoredPoint], n_resamples: int, seed: int) -> dict[str, Any] | None:
    if not points:
        return None
    prob = np.array([p.prob for p in points], dtype=np.float64)
    label = np.array([float(p.satisfied) for p in points])
    return {
        "ece": _est(bootstrap_statistic(lambda idx: ece(prob[idx], label[idx]), len(points),
                                        n_resamples=n_resamples, seed=seed)),
        "brier": _est(bootstrap_mean((prob - label) ** 2, n_resamples=n_resamples, seed=seed)),
    }


def majority_class(labels: Sequence[bool]) -> float | None:
    if not labels:
        return None
    share = sum(labels) / len(labels)
    return max(share, 1.0 - share)


def evaluate(points: Sequence[ScoredPoint], pairs: Sequence[ScoredPair], thresholds: Mapping[str, float],
             n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The evaluation report (JSON-ready); metrics with no data are ``None``."""
    pair_ok = pair_outcomes(pairs)
    point_ok = point_outcomes(points, thresholds) if points else np.array([])

    def mean(values: NDArray[np.float64]) -> dict[str, Any] | None:
        return _est(bootstrap_mean(values, n_resamples=n_resamples, seed=seed)) if values.size else None

    per_tier: dict[str, Any] = {}
    for tier in TIERS:
        pair_mask = np.array([p.tier == tier for p in pairs], dtype=bool)
        point_mask = np.array([p.tier == tier for p in points], dtype=bool)
        per_tier[tier] = {
            "pairwise_accuracy": mean(pair_ok[pair_mask]) if pairs else None,
            "pointwise_accuracy": mean(point_ok[point_mask]) if points else None,
            "n_pairs": int(pair_mask.sum()) if pairs else 0,
            "n_points": int(point_mask.sum()) if points else 0,
        }
    return {
        "pairwise_accuracy": mean(pair_ok),
        "pointwise_accuracy": mean(point_ok),
        "per_tier": per_tier,
        "veto": veto_metrics(points, thresholds, n_resamples, seed),
        "calibration": calibration(points, n_resamples, seed),
        "thresholds": dict(thresholds),
        # the accuracy of always answering the commoner label: a pointwise accuracy at or below it says nothing
        "majority_class": majority_class([p.satisfied for p in points]),
        "n_pairs": len(pairs),
        "n_points": len(points),
    }


def predictions(data: LabelledData, points: Sequence[ScoredPoint], pairs: Sequence[ScoredPair],
                thresholds: Mapping[str, float], judge: str) -> list[Prediction]:
    """Per-item predictions (``promedical.judge.predictions``) of a scorer on a labelled set, in the verdict's sense.

    ``points`` and ``pairs`` are ``score_data``'s output, aligned with ``data.points`` and ``data.pairs``. A point
    is predicted met when its score clears its tier's threshold (satisfied) for a required criterion, or does not
    (the behaviour is present) for a prohibited one; a non-finite score, or no threshold for the tier, is
    ``unscored``. A point's ``score`` is its margin from the threshold in the label's sense (higher = more likely
    met), so one file's scores rank items across tiers and ``judge compare`` can compare AUCs.
    """
    out: list[Prediction] = []
    for row, scored in zip(data.points, points, strict=True):
        key = point_key(row.response_id, row.criterion_id)
        threshold = thresholds.get(row.tier)
        if threshold is None or not math.isfinite(scored.score):
            out.append(Prediction(kind="point", key=key, tier=row.tier, label=row.met, predicted=None,
                                  correct=None, status="unscored", judge=judge))
            continue
        satisfied = scored.score >= threshold
        met = met_from_satisfied(satisfied, row.polarity)
        # the score as a margin in the label's sense (>= 0: met), comparable across tiers with their own thresholds;
        # a prohibited criterion's "satisfied" score means the behaviour is absent
        margin = scored.score - threshold
        score = -margin if row.polarity == "prohibited" else margin
        out.append(Prediction(kind="point", key=key, tier=row.tier, label=row.met, predicted=met,
                              correct=float(met == row.met), score=score, judge=judge))
    for pair_row, scored_pair in zip(data.pairs, pairs, strict=True):
        key = pair_key(pair_row.rubric_id, pair_row.criterion_id, pair_row.chosen, pair_row.rejected)
        if not (math.isfinite(scored_pair.chosen) and math.isfinite(scored_pair.rejected)):
            out.append(Prediction(kind="pair", key=key, tier=pair_row.tier, label=True, predicted=None,
                                  correct=None, status="unscored", judge=judge))
            continue
        margin = scored_pair.chosen - scored_pair.rejected
        out.append(Prediction(kind="pair", key=key, tier=pair_row.tier, label=True, predicted=margin > 0,
                              correct=1.0 if margin > 0 else 0.5 if margin == 0 else 0.0, score=margin,
                              judge=judge))
    return out
