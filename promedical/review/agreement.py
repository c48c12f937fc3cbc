"""Agreement between reviewers, and between reviewers and the judge: Cohen's kappa (plain and weighted) and
Krippendorff's alpha, each with a percentile bootstrap confidence interval over units. The statistics themselves
are ``promedical.labels.agreement``'s (the judge meta-evaluation uses the same ones); this module builds the rows.

Pure: takes ratings, returns rows. A unit is what was rated (a response-criterion pair for pointwise labels, a
pair of responses for pairwise ones); a rater is a reviewer's handle or ``judge:<spec>``. Pointwise labels are
nominal (met = 1, unmet = 0); pairwise answers are ordinal (b = 0, tie = 1, a = 2), so their weighted kappa uses
linear weights and alpha the ordinal metric. A statistic that is undefined (a single category, too few units) is
``None`` with a note, never a made-up number.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from promedical.labels.agreement import Level, cohen_kappa, kappa_from_tables, krippendorff_alpha
from promedical.stats import bootstrap_statistic

AGREEMENT_SCHEMA = "promedical.review-agreement/1"
POINT_VALUES = {"unmet": 0, "met": 1}
PAIR_VALUES = {"b": 0, "tie": 1, "a": 2}
MIN_UNITS = 2


@dataclass(frozen=True, slots=True)
class Rating:
    scope: str  # e.g. "pointwise/proficiency" or "pairwise"
    unit: str
    rater: str
    value: int


class AgreementRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: str = AGREEMENT_SCHEMA
    scope: str
    metric: str  # cohen_kappa | weighted_kappa | krippendorff_alpha
    comparison: str  # reviewer-reviewer | reviewer-judge | reviewers | reviewers+judge
    raters: tuple[str, ...]
    units: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    n_boot: int
    note: str | None = None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def kappa(a: Sequence[int], b: Sequence[int], labels: Sequence[int], weights: str | None = None) -> float | None:
    """Cohen's kappa (``weights=None``) or weighted kappa (``"linear"``/``"quadratic"``); ``None`` if undefined."""
    if len(a) < MIN_UNITS:
        return None
    index = {v: i for i, v in enumerate(labels)}
    codes = [np.array([index[v] for v in side], dtype=np.int64) for side in (a, b)]
    return _finite(cohen_kappa(codes[0], codes[1], len(labels), weights))


def alpha(matrix: np.ndarray, level: Level, domain: Sequence[int]) -> float | None:
    """Krippendorff's alpha of a raters x units matrix (NaN = not rated); ``None`` if undefined."""
    if np.sum(np.sum(~np.isnan(matrix), axis=0) >= 2) < MIN_UNITS:
        return None
    return _finite(krippendorff_alpha(matrix, level, domain))


def _domain(scope: str) -> tuple[list[int], Level, str | None]:
    """Value domain, alpha level and weighted-kappa weights for a scope."""
    if scope.startswith("pairwise"):
        return sorted(PAIR_VALUES.values()), "ordinal", "linear"
    return sorted(POINT_VALUES.values()), "nominal", None


def _kappa_ci(
    pairs: list[tuple[int, int]], domain: list[int], weights: str | None, n_boot: int, confidence: float,
    rng: np.random.Generator,
) -> tuple[float | None, float | None]:
    if len(pairs) < MIN_UNITS or n_boot <= 0:
        return None, None
    index = {v: i for i, v in enumerate(domain)}
    table = np.zeros((len(domain), len(domain)))
    for x, y in pairs:
        table[index[x], index[y]] += 1
    draws = rng.multinomial(len(pairs), table.ravel() / len(pairs), size=n_boot).reshape(n_boot, *table.shape)
    values = kappa_from_tables(draws.astype(float), weights)
    values = values[np.isfinite(values)]
    if len(values) < max(10, n_boot // 10):
        return None, None
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def _kappa_rows(
    scope: str, comparison: str, raters: tuple[str, ...], pairs: list[tuple[int, int]], n_boot: int,
    confidence: float, rng: np.random.Generator,
) -> list[AgreementRow]:
    domain, _, weights = _domain(scope)
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    rows = []
    for metric, w in (("cohen_kappa", None), ("weighted_kappa", weights)):
        if metric == "weighted_kappa" and w is None:
            continue
        value = kappa(a, b, domain, w)
        low, high = _kappa_ci(pairs, domain, w, n_boot, confidence, rng)
        note = None if value is not None else f"undefined on {len(pairs)} units (too few or one category)"
        rows.append(AgreementRow(scope=scope, metric=metric, comparison=comparison, raters=raters, units=len(pairs),
                                 value=value, ci_low=low, ci_high=high, confidence=confidence, n_boot=n_boot,
                                 note=note))
    return rows


def _alpha_row(
    scope: str, comparison: str, table: dict[str, dict[str, int]], raters: list[str], n_boot: int,
    confidence: float, seed: int,
) -> AgreementRow:
    domain, level, _ = _domain(scope)
    units = sorted(u for u, by in table.items() if sum(r in by for r in raters) >= 2)
    matrix = np.full((len(raters), len(units)), np.nan)
    for j, unit in enumerate(units):
        for i, rater in enumerate(raters):
            if rater in table[unit]:
                matrix[i, j] = table[unit][rater]
    value = alpha(matrix, level, domain)
    low, high = None, None
    if len(units) >= MIN_UNITS and n_boot > 0:
        def statistic(idx: np.ndarray) -> float:
            draw = alpha(matrix[:, idx], level, domain)
            return float("nan") if draw is None else draw

        ci = bootstrap_statistic(statistic, len(units), n_resamples=n_boot, alpha=1.0 - confidence, seed=seed)
        low, high = ci.low, ci.high
    note = None if value is not None else f"undefined on {len(units)} units (too few or one category)"
    return AgreementRow(scope=scope, metric="krippendorff_alpha", comparison=comparison, raters=tuple(raters),
                        units=len(units), value=value, ci_low=low, ci_high=high, confidence=confidence,
                        n_boot=n_boot, note=note)


def agreement(
    ratings: Iterable[Rating], *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
    judge_prefix: str = "judge:",
) -> list[AgreementRow]:
    """All agreement rows per scope: each reviewer pair, each reviewer against each judge, and alpha over all."""
    rng = np.random.default_rng(seed)
    tables: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for r in ratings:
        tables[r.scope][r.unit][r.rater] = r.value
    rows: list[AgreementRow] = []
    for scope in sorted(tables):
        table = tables[scope]
        raters = sorted({rater for by in table.values() for rater in by})
        reviewers = [r for r in raters if not r.startswith(judge_prefix)]
        judges = [r for r in raters if r.startswith(judge_prefix)]
        for x, y in itertools.combinations(reviewers, 2):
            pairs = [(by[x], by[y]) for by in table.values() if x in by and y in by]
            if pairs:
                rows += _kappa_rows(scope, "reviewer-reviewer", (x, y), pairs, n_boot, confidence, rng)
        for judge in judges:
            for x in reviewers:
                pairs = [(by[x], by[judge]) for by in table.values() if x in by and judge in by]
                if pairs:
                    rows += _kappa_rows(scope, "reviewer-judge", (x, judge), pairs, n_boot, confidence, rng)
            pooled = [(by[x], by[judge]) for by in table.values() if judge in by for x in reviewers if x in by]
            if pooled:
                rows += _kappa_rows(scope, "reviewers-judge", ("reviewers", judge), pooled, n_boot, confidence, rng)
        if len(reviewers) >= 2:
            rows.append(_alpha_row(scope, "reviewers", table, reviewers, n_boot, confidence, seed))
        if reviewers and judges:
            rows.append(_alpha_row(scope, "reviewers+judge", table, reviewers + judges, n_boot, confidence,
                                   seed))
    return rows
