"""Judge and reward-model evaluation in the paper's format, for any judge: verdicts vs expert labels.

Pointwise and pairwise accuracy per tier (proficiency, excellence = bonus, safety = veto), overall accuracy, and
veto precision / recall / F1 (positive class: *violated*), each with a bootstrap CI. The metrics themselves are the
reward model's (``promedical.reward.eval.evaluate``); this module turns any judge's verdicts into the scored items
those metrics take, so an LLM judge and the RM are measured by the same code:

* a criterion's *satisfaction margin* is ``score - threshold`` when the verdict carries a reward-model score
  (``meta.score`` and ``meta.threshold``), else ``+1`` when the verdict satisfies the criterion (met, or for a
  ``prohibited`` veto not met) and ``-1`` when it does not; the decision threshold is 0;
* the reference is one label judge, chosen as ``judge meta-eval`` chooses it (``choose_reference``): the one
  requested, else the only one, else the one named ``*majority`` (K-QA's label file holds three physicians and
  their majority; reading all four would count every item four times). Labels and verdicts are paired by the
  meta-evaluation's one alignment (``promedical.judge.meta_eval.align``): each (response, criterion) counts once,
  agreeing duplicate labels collapse, disagreeing ones drop the item (counted, ``label_conflicts``), and the same
  holds for the judge's verdicts, which must come from one judge;
* pointwise items: every expert-labelled (response, criterion) the judge scored;
* pairwise items: per rubric and criterion, every pair of *different* responses the experts split (one satisfies
  it, the other does not), ``chosen`` being the satisfying one; a judge tie counts one half;
* expert labels that are ``unscored`` grade nothing and are dropped (counted); judge verdicts that are missing or
  ``unscored`` are counted as such (``coverage``) and left out of the accuracies, never read as wrong or right.

The report also carries ``agreement``: the same alignment read as ``judge meta-eval`` reads it (met/unmet
accuracy, strict accuracy, kappa, per-class F1, overall and per tier, tiers from the rubrics), identical to that
command's block for this judge given the same rubrics, reference, resamples and seed. One computation, two views.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import combinations
from typing import Any

from promedical.judge.meta_eval import Alignment, align, choose_reference, tier_map
from promedical.judge.meta_eval import evaluate as agreement
from promedical.reward.eval import ScoredPair, ScoredPoint, evaluate
from promedical.rubrics.records import Status, Verdict
from promedical.rubrics.schema import TIER_NAMES, Polarity, Rubric
from promedical.rubrics.scoring import is_satisfied

# The paper's names of the tiers (the report's per-tier keys).
PAPER_NAMES = dict(zip(TIER_NAMES, ("proficiency", "excellence", "safety"), strict=True))


def satisfied(polarity: Polarity | None, status: Status) -> bool:
    """Whether a scored (met or unmet) verdict satisfies its criterion: the polarity rule of ``scoring``."""
    return is_satisfied(status is Status.MET, polarity)


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


def reference_labels(labels: Sequence[Verdict], reference: str | None = None) -> tuple[str, list[Verdict]]:
    """The chosen reference judge and its labels (``ValueError`` when it cannot be chosen)."""
    name = choose_reference((v.judge for v in labels), reference)
    return name, [v for v in labels if v.judge == name]


def judge_items(rubrics: Sequence[Rubric], judged: Sequence[Verdict], labels: Sequence[Verdict],
                ) -> tuple[list[ScoredPoint], list[ScoredPair], dict[str, int]]:
    """Scored points and pairs (see the module docstring) and the counts of what was left out.

    ``labels`` are one reference judge's and ``judged`` one judge's verdicts (``ValueError`` otherwise).
    """
    return scored_items(rubrics, aligned(rubrics, judged, labels))


def aligned(rubrics: Sequence[Rubric], judged: Sequence[Verdict], labels: Sequence[Verdict]) -> Alignment:
    """The meta-evaluation's alignment of one reference judge's labels with one judge's verdicts."""
    for what, verdicts in (("labels", labels), ("judge verdicts", judged)):
        names = sorted({v.judge for v in verdicts})
        if len(names) > 1:
            raise ValueError(f"{what} come from several judges ({', '.join(names)}): give one")
    return align(labels, judged, tier_map(rubrics))


def scored_items(rubrics: Sequence[Rubric], alignment: Alignment,
                 ) -> tuple[list[ScoredPoint], list[ScoredPair], dict[str, int]]:
    """An alignment read as the paper's scored points and pairs, with the counts of what was left out."""
    criteria = {(r.id, c.id): c for r in rubrics for c in r.criteria}
    counts: Counter[str] = Counter({k: alignment.counts[k] for k in (
        "label_duplicates", "label_conflicts", "judge_duplicates", "judge_conflicts")})
    reference, by_key = alignment.reference, alignment.judged
    points: list[ScoredPoint] = []
    # per (rubric, criterion): response id -> (expert says satisfied, judge margin or None); one entry per response
    labelled: dict[tuple[str, str], dict[str, tuple[bool, float | None]]] = {}
    for key, label in sorted(reference.items()):
        criterion = criteria.get((label.rubric_id, label.criterion_id))
        if criterion is None:
            counts["label_unknown_criterion"] += 1
            continue
        if label.status is Status.UNSCORED:
            counts["label_unscored"] += 1
            continue
        truth = satisfied(criterion.polarity, label.status)
        verdict = by_key.get(key)
        m: float | None = None
        if verdict is None:
            counts["judge_missing"] += 1
        elif verdict.status is Status.UNSCORED:
            counts["judge_unscored"] += 1
        else:
            m = margin(verdict, criterion.polarity)
            points.append(ScoredPoint(tier=criterion.tier.value, satisfied=truth, score=m, prob=_prob(verdict, m)))
        labelled.setdefault((label.rubric_id, label.criterion_id), {})[label.response_id] = (truth, m)
    pairs: list[ScoredPair] = []
    for (rubric_id, criterion_id), items in labelled.items():
        tier = criteria[(rubric_id, criterion_id)].tier.value
        # keys are response ids, so every pair compares two different responses
        for (_, (ta, ma)), (_, (tb, mb)) in combinations(sorted(items.items()), 2):
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
               n_resamples: int = 2000, seed: int = 0, reference: str | None = None) -> dict[str, Any]:
    """The paper-format report for one judge (JSON-ready) against one reference label judge (see
    ``reference_labels``); ``ValueError`` when the reference cannot be chosen or the verdicts mix judges."""
    ref, chosen = reference_labels(labels, reference)
    alignment = aligned(rubrics, judged, chosen)
    points, pairs, counts = scored_items(rubrics, alignment)
    report = evaluate(points, pairs, dict.fromkeys(TIER_NAMES, 0.0), n_resamples=n_resamples,
                      seed=seed)
    report.pop("thresholds", None)
    labelled = counts["labels_used"] + counts.get("judge_missing", 0) + counts.get("judge_unscored", 0)
    report["per_tier"] = {PAPER_NAMES[t]: v for t, v in report["per_tier"].items()}
    report.update({
        "judges": sorted({v.judge for v in judged}),
        "reference": ref,
        "label_judges": sorted({v.judge for v in labels}),
        "n_items": labelled,
        "counts": counts,
        "coverage": counts["labels_used"] / labelled if labelled else None,
        "overall_accuracy": report["pointwise_accuracy"],
        "agreement": agreement(alignment, n_resamples, seed),
    })
    return report
