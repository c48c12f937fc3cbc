"""Agreement between raters on categorical labels: Cohen's kappa, Krippendorff's alpha, with bootstrap CIs.

Used twice: judge-vs-expert agreement (``promedical.judge.meta_eval``) and the experts' agreement among themselves
(K-QA has three physicians per item), which is the ceiling a judge can be expected to reach.

Labels are integer codes (``-1`` = no label). Kappa has one formula here, ``kappa_from_tables`` (plain or weighted,
vectorised over stacks of confusion tables; the tests check it against scikit-learn); Krippendorff's alpha comes
from the ``krippendorff`` package and, unlike Fleiss' kappa, tolerates raters who skipped an item. The review
app's agreement rows (``promedical.review.agreement``) use the same two functions. CIs are percentile bootstraps
over items (``promedical.stats.bootstrap_statistic``); resamples where a statistic is undefined are dropped.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import krippendorff
import numpy as np
from numpy.typing import NDArray

from promedical.rubrics.records import Status, Verdict
from promedical.stats import bootstrap_statistic

MISSING = -1
Level = Literal["nominal", "ordinal", "interval", "ratio"]
STATUS_CODES = {Status.MET: 1, Status.UNMET: 0}


def kappa_from_tables(tables: NDArray[np.float64], weights: str | None = None) -> NDArray[np.float64]:
    """Kappa of one ``k x k`` confusion table or a stack of them (scikit-learn's ``cohen_kappa_score`` formula);
    ``weights`` ``None`` (Cohen), ``"linear"`` or ``"quadratic"``. NaN where undefined (e.g. one category only).

    Stacks make bootstraps cheap: resampling rated pairs with replacement is drawing a multinomial table with the
    observed cell frequencies, so thousands of resamples cost one vectorised expression.
    """
    k = tables.shape[-1]
    i, j = np.indices((k, k))
    w = (i != j).astype(float) if weights is None else np.abs(i - j) if weights == "linear" else (i - j) ** 2.0
    n = tables.sum(axis=(-1, -2), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = tables.sum(axis=-1, keepdims=True) * tables.sum(axis=-2, keepdims=True) / n
        result: NDArray[np.float64] = 1.0 - (w * tables).sum(axis=(-1, -2)) / (w * expected).sum(axis=(-1, -2))
    return result


def confusion(a: NDArray[np.int64], b: NDArray[np.int64], n_classes: int) -> NDArray[np.float64]:
    """The ``n_classes x n_classes`` table of code pairs (rows: ``a``)."""
    table = np.zeros((n_classes, n_classes))
    np.add.at(table, (a, b), 1.0)
    return table


def cohen_kappa(a: NDArray[np.int64], b: NDArray[np.int64], n_classes: int, weights: str | None = None) -> float:
    """Cohen's (or weighted) kappa of two equal-length code arrays; NaN when undefined (no items, one category)."""
    if a.size == 0:
        return float("nan")
    return float(kappa_from_tables(confusion(a, b, n_classes), weights))


def krippendorff_alpha(
    matrix: NDArray[np.float64], level: Level = "nominal", domain: Sequence[int] | None = None
) -> float:
    """Krippendorff's alpha of a raters x items matrix (NaN = missing) at ``level`` (nominal, ordinal, ...);
    NaN when undefined (no item rated twice, a single category)."""
    values = matrix[~np.isnan(matrix)]
    usable = np.sum(np.sum(~np.isnan(matrix), axis=0) >= 2)
    if usable == 0 or np.unique(values).size < 2:
        return float("nan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level,
                                            value_domain=list(domain) if domain is not None else None))
    except (ValueError, ZeroDivisionError):
        return float("nan")


def _estimate(statistic: Any, n: int, n_resamples: int, seed: int) -> dict[str, Any]:
    return bootstrap_statistic(statistic, n, n_resamples=n_resamples, seed=seed).as_dict()


def pairwise(
    codes: Mapping[str, NDArray[np.int64]], n_classes: int, n_resamples: int = 2000, seed: int = 0
) -> list[dict[str, Any]]:
    """Cohen's kappa and raw agreement for each pair of raters, on the items both labelled."""
    out = []
    for first, second in itertools.combinations(sorted(codes), 2):
        both = (codes[first] != MISSING) & (codes[second] != MISSING)
        a, b = codes[first][both], codes[second][both]

        def kappa(idx: NDArray[np.int64], a: NDArray[np.int64] = a, b: NDArray[np.int64] = b) -> float:
            return cohen_kappa(a[idx], b[idx], n_classes)

        def agree(idx: NDArray[np.int64], a: NDArray[np.int64] = a, b: NDArray[np.int64] = b) -> float:
            return float(np.mean(a[idx] == b[idx]))

        out.append({"raters": [first, second], "n": int(a.size),
                    "kappa": _estimate(kappa, int(a.size), n_resamples, seed),
                    "agreement": _estimate(agree, int(a.size), n_resamples, seed)})
    return out


def group_agreement(
    codes: Mapping[str, NDArray[np.int64]], n_classes: int, n_resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Pairwise kappas, their mean, and Krippendorff's alpha (bootstrap over items) for two or more raters."""
    raters = sorted(codes)
    matrix = np.array([codes[r] for r in raters], dtype=np.float64)
    matrix[matrix == MISSING] = np.nan
    n_items = matrix.shape[1]

    def alpha(idx: NDArray[np.int64]) -> float:
        return krippendorff_alpha(matrix[:, idx])

    pairs = pairwise(codes, n_classes, n_resamples, seed)
    kappas = [p["kappa"]["value"] for p in pairs if p["kappa"]["value"] is not None]
    return {
        "raters": raters,
        "n_items": int(n_items),
        "n_complete": int(np.sum(np.all(~np.isnan(matrix), axis=0))),
        "krippendorff_alpha": _estimate(alpha, n_items, n_resamples, seed),
        "mean_pairwise_kappa": float(np.mean(kappas)) if kappas else None,
        "pairwise": pairs,
    }


def verdict_codes(
    verdicts: Sequence[Verdict], raters: Sequence[str], keys: Sequence[tuple[str, str]], label_of: Any = None
) -> tuple[dict[str, NDArray[np.int64]], list[str]]:
    """Per rater, one code per key (``MISSING`` where the rater gave none or it was unscored).

    ``label_of(verdict)`` gives the category (default: met/unmet); the returned list names the categories in code
    order.
    """
    position = {key: i for i, key in enumerate(keys)}
    categories: dict[str, int] = {}
    if label_of is None:
        categories = {"unmet": 0, "met": 1}
    codes = {r: np.full(len(keys), MISSING, dtype=np.int64) for r in raters}
    for verdict in verdicts:
        if verdict.judge not in codes or verdict.key not in position or verdict.status is Status.UNSCORED:
            continue
        category = verdict.status.value if label_of is None else label_of(verdict)
        if category is None:
            continue
        code = categories.setdefault(str(category), len(categories))
        codes[verdict.judge][position[verdict.key]] = code
    return codes, list(categories)


def annotator_agreement(
    verdicts: Sequence[Verdict],
    raters: Sequence[str],
    tiers: Mapping[tuple[str, str], str],
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The annotators' agreement on met/unmet, overall and per tier, plus on the source's own categories
    (``meta.label``, e.g. K-QA's Entailment/Neutral/Contradiction) when every annotator verdict carries one."""
    keys = sorted({v.key for v in verdicts if v.judge in raters})
    report: dict[str, Any] = {}
    codes, _ = verdict_codes(verdicts, raters, keys)
    report["overall"] = group_agreement(codes, 2, n_resamples, seed)
    by_tier: dict[str, Any] = {}
    order = {"proficiency": 0, "bonus": 1, "veto": 2}
    for tier in sorted({tiers.get(k, "unknown") for k in keys}, key=lambda t: (order.get(t, 3), t)):
        subset = [k for k in keys if tiers.get(k, "unknown") == tier]
        tier_codes, _ = verdict_codes(verdicts, raters, subset)
        by_tier[tier] = group_agreement(tier_codes, 2, n_resamples, seed)
    report["by_tier"] = by_tier
    rated = [v for v in verdicts if v.judge in raters and v.status is not Status.UNSCORED]
    if rated and all(isinstance(v.meta.get("label"), str) for v in rated):
        label_codes, categories = verdict_codes(verdicts, raters, keys, label_of=lambda v: v.meta.get("label"))
        report["source_labels"] = {"categories": categories,
                                   **group_agreement(label_codes, len(categories), n_resamples, seed)}
    return report
