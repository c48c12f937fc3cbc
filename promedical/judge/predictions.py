"""Per-item predictions of a judge or reward model on labelled data, and the paired comparison of two of them.

``judge meta-eval --predictions-out`` and ``rm eval --predictions-out`` write one ``Prediction`` per labelled item;
``promedical judge compare A B`` joins two such files on the items they share and reports, per tier and overall:

* the accuracy difference A - B with a paired percentile-bootstrap CI over items and a two-sided sign-flip
  permutation p-value (``promedical.stats.paired_comparison``, the bench's paired statistics). Accuracy is
  *strict*: an unscored or missing prediction counts as wrong, so a judge cannot win by abstaining;
* for pointwise items scored by both, the difference in Cohen's kappa with a paired bootstrap CI (items resampled
  jointly) and a permutation p-value (each item's two predictions swapped at random under the null);
* for pointwise items where both files carry a ``score``, the difference in ROC AUC: how well each judge's score
  *ranks* the labels, whatever threshold turns it into a verdict. This is the measure that matters where the score
  itself is used (the GRPO reward's probability credit reads the score, not the verdict). Paired bootstrap CI and a
  swap-permutation p on the scores' within-judge ranks (AUC depends on ranks only, so a log-odds and a word share
  are exchanged on one scale). ``None`` when either file has no scores (an LLM judge's verdicts) or one class is
  missing.

Point keys are ``<response_id>|<criterion_id>``; pair keys name the rubric, criterion and both texts' hashes, so
the same labelled set evaluated by two judges joins item for item. Labels must agree on the joined items: two
files scored against different references are refused rather than compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from promedical.hashing import content_hash
from promedical.io import UserError, iter_jsonl, write_jsonl
from promedical.rubrics.schema import TIER_NAMES
from promedical.stats import DEFAULT_RESAMPLES, paired_comparison

PREDICTION_SCHEMA: Literal["promedical.prediction/1"] = "promedical.prediction/1"
TIERS = TIER_NAMES


class Prediction(BaseModel):
    """One judge's prediction on one labelled item.

    ``label``/``predicted`` are in the verdict's sense for points (``True`` = met: the criterion's statement holds
    for the response, whatever its polarity); for pairs the label is always the chosen side and ``predicted`` is
    ``True`` when the judge ranks chosen above rejected. ``correct`` is 1, 0 (0.5 for a pair scored as a tie), or
    ``None`` when the judge gave no usable prediction (``status`` says why).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["promedical.prediction/1"] = PREDICTION_SCHEMA
    kind: Literal["point", "pair"]
    key: str = Field(min_length=1)
    tier: str
    label: bool
    predicted: bool | None
    correct: float | None
    status: Literal["scored", "unscored", "missing"] = "scored"
    score: float | None = None  # points: margin, >= 0 predicted met (higher: more likely met); pairs: the margin
    judge: str


def point_key(response_id: str, criterion_id: str) -> str:
    return f"{response_id}|{criterion_id}"


def pair_key(rubric_id: str, criterion_id: str, chosen: str, rejected: str) -> str:
    # Keyed by the response texts' hashes, not by response ids: criterion pair rows derived from labels carry the
    # texts, and two judges' prediction files must join on the same item even when ids were minted differently.
    return f"{rubric_id}|{criterion_id}|{content_hash([chosen])}|{content_hash([rejected])}"


def write_predictions(path: Path, predictions: Iterable[Prediction]) -> int:
    rows = list(predictions)
    write_jsonl(path, rows)
    return len(rows)


def read_predictions(path: Path, judge: str | None = None) -> list[Prediction]:
    """Predictions of one judge from ``path`` (``judge`` picks one when the file holds several)."""
    rows: list[Prediction] = []
    for number, value, problem in iter_jsonl(path):
        if problem is not None:
            raise UserError(str(problem))
        try:
            rows.append(Prediction.model_validate(value))
        except ValueError as exc:
            raise UserError(f"{path}:{number}: -: -: not a prediction row ({' '.join(str(exc).split())[:200]})"
                            ) from None
    judges = sorted({r.judge for r in rows})
    if judge is not None:
        rows = [r for r in rows if r.judge == judge]
        if not rows:
            raise UserError(f"{path}: -: judge: no predictions of {judge!r} (found: {', '.join(judges) or 'none'})")
    elif len(judges) > 1:
        raise UserError(f"{path}: -: judge: several judges ({', '.join(judges)}); choose one")
    if not rows:
        raise UserError(f"{path}: -: -: no predictions")
    return rows


def _kappa(a: NDArray[np.float64], b: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cohen's kappa of binary predictions against binary labels, row-wise over 2-D arrays (resamples x items)."""
    def one(p: NDArray[np.float64]) -> NDArray[np.float64]:
        po = (p == y).mean(axis=-1)
        pe = p.mean(axis=-1) * y.mean(axis=-1) + (1 - p.mean(axis=-1)) * (1 - y.mean(axis=-1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pe < 1, (po - pe) / (1 - pe), np.nan)
    return one(a) - one(b)


def _kappa_difference(a: NDArray[np.float64], b: NDArray[np.float64], y: NDArray[np.float64], n_resamples: int,
                      seed: int) -> dict[str, Any]:
    n = y.size
    if n < 2:
        return {"value": None, "ci_low": None, "ci_high": None, "p_value": None, "n": int(n)}
    observed = float(_kappa(a[None, :], b[None, :], y[None, :])[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    boot = _kappa(a[idx], b[idx], y[idx])
    boot = boot[~np.isnan(boot)]
    swap = rng.integers(0, 2, size=(n_resamples, n)).astype(bool)  # sign-flip null: A and B exchangeable per item
    null = _kappa(np.where(swap, b, a), np.where(swap, a, b), np.broadcast_to(y, (n_resamples, n)))
    null = null[~np.isnan(null)]
    p = None
    if null.size and not np.isnan(observed):
        p = float((np.sum(np.abs(null) >= abs(observed) - 1e-12) + 1) / (null.size + 1))
    low, high = (np.percentile(boot, [2.5, 97.5]) if boot.size else (np.nan, np.nan))
    return {"value": None if np.isnan(observed) else observed,
            "ci_low": None if np.isnan(low) else float(low), "ci_high": None if np.isnan(high) else float(high),
            "p_value": p, "n": int(n)}


def _auc(scores: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """ROC AUC of ``scores`` against binary labels ``y``, row-wise over 2-D arrays (resamples x items); ties count
    one half (mid-ranks), as in ``sklearn.metrics.roc_auc_score``; NaN where a row has one class only."""
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=-1)
    positives = y.sum(axis=-1)
    negatives = y.shape[-1] - positives
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * y).sum(axis=-1) - positives * (positives + 1) / 2) / (positives * negatives)
    return np.where((positives > 0) & (negatives > 0), auc, np.nan)


def _auc_difference(a: NDArray[np.float64], b: NDArray[np.float64], y: NDArray[np.float64], n_resamples: int,
                    seed: int) -> dict[str, Any]:
    n = y.size
    empty = {"value": None, "auc_a": None, "auc_b": None, "ci_low": None, "ci_high": None, "p_value": None,
             "n": int(n)}
    if n < 2 or y.min() == y.max():
        return empty
    from scipy.stats import rankdata

    # within-judge ranks scaled to (0, 1]: the AUC is unchanged, and the two judges' values become exchangeable
    a, b = rankdata(a) / n, rankdata(b) / n
    auc_a, auc_b = float(_auc(a, y)), float(_auc(b, y))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    boot = _auc(a[idx], y[idx]) - _auc(b[idx], y[idx])
    boot = boot[~np.isnan(boot)]
    swap = rng.integers(0, 2, size=(n_resamples, n)).astype(bool)
    labels = np.broadcast_to(y, (n_resamples, n))
    null = _auc(np.where(swap, b, a), labels) - _auc(np.where(swap, a, b), labels)
    observed = auc_a - auc_b
    p = float((np.sum(np.abs(null) >= abs(observed) - 1e-12) + 1) / (null.size + 1))
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"value": observed, "auc_a": auc_a, "auc_b": auc_b, "ci_low": float(low), "ci_high": float(high),
            "p_value": p, "n": int(n)}


def _block(a: Sequence[Prediction], b: Sequence[Prediction], n_resamples: int, seed: int) -> dict[str, Any]:
    strict_a = np.array([x.correct or 0.0 for x in a])
    strict_b = np.array([x.correct or 0.0 for x in b])
    acc = paired_comparison(strict_a, strict_b, n_resamples=n_resamples, seed=seed).as_dict()
    both = [(x, y) for x, y in zip(a, b, strict=True)
            if x.kind == "point" and x.predicted is not None and y.predicted is not None]
    kappa = _kappa_difference(np.array([float(bool(x.predicted)) for x, _ in both]),
                              np.array([float(bool(y.predicted)) for _, y in both]),
                              np.array([float(x.label) for x, _ in both]), n_resamples, seed + 7)
    ranked = [(x, y) for x, y in zip(a, b, strict=True)
              if x.kind == "point" and x.score is not None and y.score is not None]
    auc = _auc_difference(np.array([float(x.score or 0.0) for x, _ in ranked]),
                          np.array([float(y.score or 0.0) for _, y in ranked]),
                          np.array([float(x.label) for x, _ in ranked]), n_resamples, seed + 11)
    return {"n": len(a), "accuracy_a": float(strict_a.mean()) if len(a) else None,
            "accuracy_b": float(strict_b.mean()) if len(b) else None,
            "coverage_a": sum(x.correct is not None for x in a) / len(a) if a else None,
            "coverage_b": sum(x.correct is not None for x in b) / len(b) if b else None,
            "accuracy_difference": acc, "kappa_difference": kappa, "auc_difference": auc}


def compare_predictions(a: Sequence[Prediction], b: Sequence[Prediction], names: tuple[str, str] = ("A", "B"),
                        n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The paired comparison of two judges on the items both were evaluated on (see the module docstring)."""
    index_b = {(x.kind, x.key): x for x in b}
    joined = [(x, index_b[(x.kind, x.key)]) for x in a if (x.kind, x.key) in index_b]
    if not joined:
        raise UserError(f"{names[0]} / {names[1]}: -: key: the two files share no labelled item")
    for x, y in joined:
        if x.label != y.label:
            raise UserError(f"{names[1]}: -: {x.key}: label: {y.label} here but {x.label} in {names[0]}; the files "
                            "were evaluated against different references")
    left, right = [x for x, _ in joined], [y for _, y in joined]
    report: dict[str, Any] = {
        "a": names[0], "b": names[1], "judge_a": left[0].judge, "judge_b": right[0].judge,
        "n_joined": len(joined), "only_a": len(a) - len(joined), "only_b": len(b) - len(joined),
        "n_resamples": n_resamples, "seed": seed,
        "test": "strict accuracy (unscored or missing = wrong): paired percentile bootstrap over items and two-sided "
                "sign-flip permutation p; kappa on items scored by both: paired bootstrap, swap-permutation p; AUC on "
                "items with a score in both files: paired bootstrap, swap-permutation p on within-judge ranks",
    }
    for kind in ("point", "pair"):
        pick = [i for i, x in enumerate(left) if x.kind == kind]
        if not pick:
            continue
        report[kind] = {"all": _block([left[i] for i in pick], [right[i] for i in pick], n_resamples, seed)}
        for j, tier in enumerate(TIERS):
            sub = [i for i in pick if left[i].tier == tier]
            if sub:
                report[kind][tier] = _block([left[i] for i in sub], [right[i] for i in sub], n_resamples,
                                            seed + 100 * (j + 1))
    return report
