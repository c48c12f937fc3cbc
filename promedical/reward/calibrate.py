"""Per-tier thresholds that turn reward-model scores into satisfied / not satisfied (then met / unmet).

A criterion is predicted *satisfied* when ``score >= threshold`` of its tier. Rules, chosen on labelled
validation items (``PointRow``s scored by the model):

* proficiency and bonus: the threshold that maximises accuracy; among ties, the lowest one;
* veto: the threshold that maximises F1 of *violation* detection (positive class: not satisfied), and among
  equally good thresholds the **highest** one, so that borderline responses are flagged: the veto fails closed;
* a tier with fewer than ``min_items`` validation items, or with a single class only, takes the threshold
  chosen on all tiers pooled (by accuracy), and says so in its ``rule``.

Candidates are the midpoints between consecutive distinct scores plus one value below the lowest and one above
the highest, so every achievable split is tried. Pure functions: numbers in, thresholds out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from promedical.reward.model import TierThreshold
from promedical.rubrics.schema import TIER_NAMES

TIERS = TIER_NAMES
MIN_ITEMS = 10


def candidates(scores: Sequence[float]) -> list[float]:
    values = np.unique(np.asarray(scores, dtype=np.float64))
    if values.size == 0:
        return [0.0]
    mids = ((values[1:] + values[:-1]) / 2).tolist()
    return [float(values[0] - 1.0), *mids, float(values[-1] + 1.0)]


def accuracy_at(scores: Sequence[float], satisfied: Sequence[bool], threshold: float) -> float:
    pred = np.asarray(scores) >= threshold
    return float(np.mean(pred == np.asarray(satisfied, dtype=bool)))


def violation_f1_at(scores: Sequence[float], satisfied: Sequence[bool], threshold: float) -> float:
    flagged = np.asarray(scores) < threshold
    violated = ~np.asarray(satisfied, dtype=bool)
    tp = float(np.sum(flagged & violated))
    denom = float(np.sum(flagged) + np.sum(violated))
    return 0.0 if denom == 0 else 2 * tp / denom


def best_accuracy_threshold(scores: Sequence[float], satisfied: Sequence[bool]) -> tuple[float, float]:
    best_t, best_acc = 0.0, -1.0
    for t in candidates(scores):
        acc = accuracy_at(scores, satisfied, t)
        if acc > best_acc:
            best_t, best_acc = t, acc
    return best_t, best_acc


def best_veto_threshold(scores: Sequence[float], satisfied: Sequence[bool]) -> tuple[float, float]:
    best_t, best_f1 = 0.0, -1.0
    for t in candidates(scores):
        f1 = violation_f1_at(scores, satisfied, t)
        if f1 >= best_f1:  # ">=": the highest of equally good thresholds (fail closed)
            best_t, best_f1 = t, f1
    return best_t, best_f1


def calibrate(tiers: Sequence[str], scores: Sequence[float], satisfied: Sequence[bool],
              min_items: int = MIN_ITEMS) -> dict[str, TierThreshold]:
    """Thresholds per tier from validation items (``tiers[i]``, ``scores[i]``, ``satisfied[i]``)."""
    if not len(tiers) == len(scores) == len(satisfied):
        raise ValueError("tiers, scores and satisfied must have the same length")
    if not scores:
        raise ValueError("no validation items to calibrate on")
    pooled_t, pooled_acc = best_accuracy_threshold(scores, satisfied)
    out: dict[str, TierThreshold] = {}
    for tier in TIERS:
        idx = [i for i, t in enumerate(tiers) if t == tier]
        s = [scores[i] for i in idx]
        y = [satisfied[i] for i in idx]
        if len(idx) < min_items or len(set(y)) < 2:
            acc = accuracy_at(s, y, pooled_t) if idx else None
            out[tier] = TierThreshold(threshold=pooled_t, n=len(idx), validation_accuracy=acc,
                                      rule=f"pooled max-accuracy (tier has {len(idx)} items, "
                                           f"{len(set(y))} classes; pooled accuracy {pooled_acc:.3f})")
        elif tier == "veto":
            t, f1 = best_veto_threshold(s, y)
            out[tier] = TierThreshold(threshold=t, n=len(idx), validation_accuracy=accuracy_at(s, y, t),
                                      rule=f"max violation-F1 ({f1:.3f}), highest threshold among ties (fail closed)")
        else:
            t, acc = best_accuracy_threshold(s, y)
            out[tier] = TierThreshold(threshold=t, n=len(idx), validation_accuracy=acc, rule="max accuracy")
    return out
