"""Judge and reward-model evaluation in the paper's format, for any judge: verdicts vs expert labels.

Pointwise and pairwise accuracy per tier (proficiency, excellence = bonus, safety = veto), overall accuracy, and
veto precision / recall / F1 (positive class: *violated*), each with a bootstrap CI. The metrics themselves are the
reward model's (``promedical.reward.eval.evaluate``); this module turns any judge's verdicts into the scored items
those metrics take, so an LLM judge and the RM are measured by the same code:

* a criterion's *satisfaction margin* is ``score - threshold`` when the verdict carries a reward-model score
  (``meta.score`` and ``meta.threshold``), else ``+1`` when the verdict satisfies the criterion (met, or for a
  ``prohibited`` veto not met) and ``-1`` when it does not; the decision threshold is 0;
* pointwise items: every expert-labelled (response, criterion) the judge scored;
* pairwise items: per rubric and criterion, every pair of responses the experts split (one satisfies it, the other
  does not), ``chosen`` being the satisfying one; a judge tie counts one half;
* expert labels that are ``unscored`` grade nothing and are dropped (counted); judge verdicts that are missing or
  ``unscored`` are counted as such (``coverage``) and left out of the accuracies, never read as wrong or right.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import combinations
from typing import Any

from promedical.reward.eval import ScoredPair, ScoredPoint, evaluate
from promedical.rubrics.records import Status, Verdict
from promedical.rubrics.schema import Polarity, Rubric

TIER_NAMES = {"proficiency": "proficiency", "bonus": "excellence", "veto": "safety"}


def satisfied(polarity: Polarity | None, status: Status) -> bool:
    met = status is Status.MET
    return not met if polarity is Polarity.PROHIBITED else met


def margin(verdict: Verdict, polarity: Polarity | None) -> float:
    meta = verdict.meta or {}
    score, threshold = meta.get("score"), meta.get("threshold")
    if isinstance(score, int | float) and isinstance(threshold, int | float) and math.isfinite(score):
        return float(score) - float(threshold)
    return 1.0 if satisfied(polarity, verdict.status) else -1.0


def _prob(verdict: Verdict, m: float) -> float:
    if verdict.confidence is not None:
        return verdict.confidence if m >= 0 else 1.0 - verdict.confidence
    return 1.0 / (1.0 + math.exp(-max(min(m, 60.0), -60.0)))


def judge_items(rubrics: Sequence[Rubric], judged: Sequence[Verdict], labels: Sequence[Verdict],
                ) -> tuple[list[ScoredPoint], list[ScoredPair], dict[str, int]]:
    """Scored points and pairs (see the module docstring) and the counts of what was left out."""
    criteria = {(r.id, c.id): c for r in rubrics for c in r.criteria}
    by_key = {(v.response_id, v.criterion_id): v for v in judged}
    counts: Counter[str] = Counter()
    points: list[ScoredPoint] = []
    labelled: dict[tuple[str, str], list[tuple[str, bool, float | None]]] = {}
    for label in labels:
        criterion = criteria.get((label.rubric_id, label.criterion_id))
        if criterion is None:
            counts["label_unknown_criterion"] += 1
            continue
        if label.status is Status.UNSCORED:
            counts["label_unscored"] += 1
            continue
        truth = satisfied(criterion.polarity, label.status)
        verdict = by_key.get((label.response_id, label.criterion_id))
        m: float | None = None
        if verdict is None:
            counts["judge_missing"] += 1
        elif verdict.status is Status.UNSCORED:
            counts["judge_unscored"] += 1
        else:
            m = margin(verdict, criterion.polarity)
            points.append(ScoredPoint(tier=criterion.tier.value, satisfied=truth, score=m, prob=_prob(verdict, m)))
        labelled.setdefault((label.rubric_id, label.criterion_id), []).append((label.response_id, truth, m))
    pairs: list[ScoredPair] = []
    for (rubric_id, criterion_id), items in labelled.items():
        tier = criteria[(rubric_id, criterion_id)].tier.value
        for (_, ta, ma), (_, tb, mb) in combinations(items, 2):
            if ta == tb:
                continue
            if ma is None or mb is None:
                counts["pairs_unscored"] += 1
                continue
            chosen, rejected = (ma, mb) if ta else (mb, ma)
            pairs.append(ScoredPair(tier=tier, chosen=chosen, rejected=rejected))
    counts["labels_used"] = len(points)
    return points, pairs, dict(counts)


def judge_eval(rubrics: Sequence[Rubric], judged: Sequence[Verdict], labels: Sequence[Verdict],
               n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The paper-format report for one judge (JSON-ready)."""
    points, pairs, counts = judge_items(rubrics, judged, labels)
    report = evaluate(points, pairs, {"proficiency": 0.0, "bonus": 0.0, "veto": 0.0}, n_resamples=n_resamples,
                      seed=seed)
    report.pop("thresholds", None)
    labelled = counts["labels_used"] + counts.get("judge_missing", 0) + counts.get("judge_unscored", 0)
    report["per_tier"] = {TIER_NAMES[t]: v for t, v in report["per_tier"].items()}
    report.update({
        "judges": sorted({v.judge for v in judged}),
        "reference": sorted({v.judge for v in labels}),
        "counts": counts,
        "coverage": counts["labels_used"] / labelled if labelled else None,
        "overall_accuracy": report["pointwise_accuracy"],
    })
    return report
