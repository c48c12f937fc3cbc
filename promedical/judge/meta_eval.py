"""Meta-evaluation: how well a judge's verdicts agree with reference labels (experts, or another grader).

Pure functions over verdict records. Labels and judge verdicts are aligned on ``(response_id, criterion_id)``:

* a reference verdict that is itself ``unscored`` cannot grade anything: it is dropped and counted;
* duplicates (same judge, same key) that agree are kept once; ones that disagree are dropped and counted;
* a label with no judge verdict is ``missing``; a judge verdict ``unscored`` is ``unscored``; neither is silently
  right or wrong. Every report carries ``coverage`` (scored / labelled), ``accuracy_scored`` (on scored items)
  and ``accuracy_strict`` (missing and unscored counted as wrong), each named for what it is;
* judge verdicts on keys with no label are counted (``judge_unlabelled``) and otherwise ignored.

On the scored items: accuracy, Cohen's kappa, per-class precision/recall/F1 (scikit-learn; class ``met`` and
``unmet``; ``met`` means the criterion's statement holds for the response, whatever its polarity), the confusion
matrix, overall and per tier. CIs are percentile bootstraps over items (``promedical.stats``).
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

from promedical.judge.predictions import Prediction, point_key
from promedical.labels.agreement import annotator_agreement, cohen_kappa
from promedical.rubrics.records import Status, Verdict
from promedical.rubrics.schema import TIER_NAMES, Rubric
from promedical.stats import bootstrap_statistic

CLASSES = ("met", "unmet")
TIERS = TIER_NAMES
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Item:
    key: Key
    tier: str
    label: Status  # met | unmet
    judged: Status | None  # None = the judge gave no verdict for this key
    reason: str | None = None  # the judge's reason when unscored


@dataclass(frozen=True, slots=True)
class Alignment:
    """One reference judge's labels paired with one judge's verdicts: the one judge-vs-expert alignment, read as
    met/unmet agreement here and as the paper's satisfaction margins by ``promedical.bench.judge_eval``."""

    items: tuple[Item, ...]
    counts: dict[str, int]
    reference: Mapping[Key, Verdict] = field(default_factory=dict)  # labels after dedupe, unscored ones included
    judged: Mapping[Key, Verdict] = field(default_factory=dict)  # the judge's verdicts after dedupe


def dedupe(verdicts: Iterable[Verdict]) -> tuple[dict[Key, Verdict], int, int]:
    """One verdict per key: agreeing duplicates collapse, disagreeing ones drop the key. -> (map, dup, conflicts)."""
    kept: dict[Key, Verdict] = {}
    conflicted: set[Key] = set()
    duplicates = 0
    for verdict in verdicts:
        if verdict.key in conflicted:
            continue
        first = kept.get(verdict.key)
        if first is None:
            kept[verdict.key] = verdict
        elif first.status is verdict.status:
            duplicates += 1
        else:
            conflicted.add(verdict.key)
            del kept[verdict.key]
    return kept, duplicates, len(conflicted)


def tier_map(rubrics: Iterable[Rubric]) -> dict[tuple[str, str], str]:
    """``(rubric_id, criterion_id) -> tier`` from rubric records."""
    return {(r.id, c.id): c.tier.value for r in rubrics for c in r.criteria}


def tier_of(verdict: Verdict, tiers: Mapping[tuple[str, str], str] | None) -> str:
    if tiers is not None and (verdict.rubric_id, verdict.criterion_id) in tiers:
        return tiers[(verdict.rubric_id, verdict.criterion_id)]
    tier = verdict.meta.get("tier")
    return tier if isinstance(tier, str) and tier else "unknown"


def align(
    labels: Sequence[Verdict], verdicts: Sequence[Verdict], tiers: Mapping[tuple[str, str], str] | None = None
) -> Alignment:
    """Pair one reference judge's labels with one judge's verdicts (see the module docstring for the rules)."""
    reference, label_dup, label_conflict = dedupe(labels)
    judged, judge_dup, judge_conflict = dedupe(verdicts)
    items = []
    unscored_labels = 0
    for key, label in sorted(reference.items()):
        if label.status is Status.UNSCORED:
            unscored_labels += 1
            continue
        verdict = judged.get(key)
        items.append(Item(key, tier_of(label, tiers), label.status, verdict.status if verdict else None,
                          verdict.reason if verdict else None))
    counts = {
        "label_duplicates": label_dup, "label_conflicts": label_conflict, "labels_unscored": unscored_labels,
        "judge_duplicates": judge_dup, "judge_conflicts": judge_conflict,
        "judge_unlabelled": sum(1 for key in judged if key not in reference),
    }
    return Alignment(tuple(items), counts, reference, judged)


def _ci(statistic: Any, n: int, n_resamples: int, seed: int) -> dict[str, Any]:
    return bootstrap_statistic(statistic, n, n_resamples=n_resamples, seed=seed).as_dict()


def _none_if_nan(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def metrics(items: Sequence[Item], n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Coverage, both accuracies, kappa (bootstrap CIs) and per-class P/R/F1 for a set of aligned items."""
    scored = [i for i in items if i.judged in (Status.MET, Status.UNMET)]
    missing = sum(1 for i in items if i.judged is None)
    unscored = [i for i in items if i.judged is Status.UNSCORED]
    n, n_scored = len(items), len(scored)
    truth = np.array([i.label is Status.MET for i in scored], dtype=np.int64)
    pred = np.array([i.judged is Status.MET for i in scored], dtype=np.int64)
    correct_all = np.zeros(n, dtype=np.float64)
    correct_all[[k for k, i in enumerate(items) if i.judged is not None and i.judged is i.label]] = 1.0

    def acc(idx: NDArray[np.int64]) -> float:
        return float(np.mean(truth[idx] == pred[idx]))

    def kappa(idx: NDArray[np.int64]) -> float:
        return cohen_kappa(truth[idx], pred[idx], 2)

    def strict(idx: NDArray[np.int64]) -> float:
        return float(np.mean(correct_all[idx]))

    report: dict[str, Any] = {
        "n_labels": n,
        "n_scored": n_scored,
        "n_unscored": len(unscored),
        "n_missing": missing,
        "coverage": n_scored / n if n else None,
        "unscored_reasons": dict(Counter((i.reason or "-")[:80] for i in unscored).most_common(5)),
        "label_met_rate": float(np.mean([i.label is Status.MET for i in items])) if n else None,
        "judge_met_rate": float(np.mean(pred)) if n_scored else None,
        "accuracy_scored": _ci(acc, n_scored, n_resamples, seed),
        "accuracy_strict": _ci(strict, n, n_resamples, seed),
        "kappa": _ci(kappa, n_scored, n_resamples, seed),
    }
    if n_scored:
        # scikit-learn gives the reported point values; the numpy kappa above is only used inside the bootstrap
        y_true = ["met" if t else "unmet" for t in truth]
        y_pred = ["met" if p else "unmet" for p in pred]
        report["accuracy_scored"]["value"] = float(accuracy_score(y_true, y_pred))
        with warnings.catch_warnings():  # one class only: kappa is undefined, reported as None
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            kappa_value = cohen_kappa_score(y_true, y_pred, labels=list(CLASSES), replace_undefined_by=np.nan)
        report["kappa"]["value"] = _none_if_nan(float(kappa_value))
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=list(CLASSES), zero_division=np.nan
        )
        report["per_class"] = {
            name: {"precision": _none_if_nan(precision[k]), "recall": _none_if_nan(recall[k]),
                   "f1": _none_if_nan(f1[k]), "support": int(support[k])}
            for k, name in enumerate(CLASSES)
        }
        matrix = confusion_matrix(y_true, y_pred, labels=list(CLASSES))
        report["confusion"] = {"rows": "label", "cols": "judge", "labels": list(CLASSES), "matrix": matrix.tolist()}
    else:
        report["per_class"] = None
        report["confusion"] = None
    return report


def evaluate(alignment: Alignment, n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Metrics overall and per tier (tiers with no labelled item are left out)."""
    by_tier: dict[str, list[Item]] = defaultdict(list)
    for item in alignment.items:
        by_tier[item.tier].append(item)
    order = [t for t in TIERS if t in by_tier] + sorted(t for t in by_tier if t not in TIERS)
    return {
        "counts": alignment.counts,
        "overall": metrics(alignment.items, n_resamples, seed),
        "by_tier": {t: metrics(by_tier[t], n_resamples, seed) for t in order},
    }


def choose_reference(judges: Iterable[str], requested: str | None = None) -> str:
    """The reference judge among the label file's judges: the requested one, the only one, or the majority."""
    names = sorted(set(judges))
    if requested is not None:
        if requested not in names:
            raise ValueError(f"no labels from judge {requested!r} (have: {', '.join(names) or 'none'})")
        return requested
    if len(names) == 1:
        return names[0]
    majority = [n for n in names if n.endswith("majority")]
    if len(majority) == 1:
        return majority[0]
    raise ValueError(f"several label judges ({', '.join(names)}): choose one as the reference")


def meta_evaluate(
    labels: Sequence[Verdict],
    verdicts: Sequence[Verdict],
    reference: str | None = None,
    tiers: Mapping[tuple[str, str], str] | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every judge in ``verdicts`` against the reference labels, and the other label judges' mutual agreement.

    The other judges in the label file (e.g. K-QA's individual physicians beside their majority) are the
    annotators; with two or more, their agreement on the reference's items is reported (``annotators``).
    Raises ``ValueError`` when the reference cannot be chosen.
    """
    ref = choose_reference((v.judge for v in labels), reference)
    reference_labels = [v for v in labels if v.judge == ref]
    key_tiers = {v.key: tier_of(v, tiers) for v in reference_labels}
    judges: dict[str, list[Verdict]] = defaultdict(list)
    for verdict in verdicts:
        judges[verdict.judge].append(verdict)
    report: dict[str, Any] = {
        "reference": ref,
        "n_resamples": n_resamples,
        "seed": seed,
        "judges": {name: evaluate(align(reference_labels, judged, tiers), n_resamples, seed)
                   for name, judged in sorted(judges.items())},
    }
    annotators = sorted({v.judge for v in labels if v.judge != ref})
    if len(annotators) >= 2:
        among = [v for v in labels if v.judge in annotators and v.key in key_tiers]
        report["annotators"] = annotator_agreement(among, annotators, key_tiers, n_resamples, seed)
    return report


def predictions(
    labels: Sequence[Verdict],
    verdicts: Sequence[Verdict],
    reference: str | None = None,
    tiers: Mapping[tuple[str, str], str] | None = None,
) -> list[Prediction]:
    """Per-item predictions of every judge in ``verdicts`` on the reference's items (for ``judge compare``).

    The same alignment as ``meta_evaluate``: unscored reference labels are dropped, a missing verdict is
    ``missing`` and an unscored one ``unscored`` (both counted wrong by the strict comparison).
    """
    ref = choose_reference((v.judge for v in labels), reference)
    reference_labels = [v for v in labels if v.judge == ref]
    judges: dict[str, list[Verdict]] = defaultdict(list)
    for verdict in verdicts:
        judges[verdict.judge].append(verdict)
    out: list[Prediction] = []
    for name, judged in sorted(judges.items()):
        for item in align(reference_labels, judged, tiers).items:
            label = item.label is Status.MET
            if item.judged is None or item.judged is Status.UNSCORED:
                status = "missing" if item.judged is None else "unscored"
                out.append(Prediction(kind="point", key=point_key(*item.key), tier=item.tier, label=label,
                                      predicted=None, correct=None, status=status, judge=name))
                continue
            predicted = item.judged is Status.MET
            out.append(Prediction(kind="point", key=point_key(*item.key), tier=item.tier, label=label,
                                  predicted=predicted, correct=float(predicted == label), judge=name))
    return out
