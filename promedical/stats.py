"""Confidence intervals and paired tests shared by every evaluation (judge meta-eval, RM eval, bench, review).

Pure numpy; randomness only from a seeded ``numpy.random.Generator``. Percentile bootstrap by default.

* ``bootstrap_mean``: mean with a percentile-bootstrap CI. Resamples are drawn as index matrices in chunks; when the
  data hold few distinct values (0/1 flags, counts) the resampled means are drawn exactly and much faster as
  multinomial counts over the distinct values (the same distribution as resampling items).
* ``bootstrap_statistic``: CI for any statistic of item indices (F1, kappa, ...), one Python call per resample.
* ``bootstrap_ratio``: ``sum(num) / sum(den)`` over clusters (e.g. criteria pooled per response) with a cluster
  bootstrap CI: clusters are resampled, not the items inside them.
* ``paired_bootstrap``: CI for the mean paired difference ``a - b`` (items resampled jointly).
* ``paired_permutation_test``: sign-flip permutation test of the mean paired difference; exact enumeration when
  ``2**n <= n_resamples``, else Monte Carlo with the ``(hits + 1) / (resamples + 1)`` correction. It agrees with
  ``scipy.stats.permutation_test(..., permutation_type="samples")`` on the statistic ``mean(a - b)``.
* ``paired_comparison``: both of the above in one value, as the bench's ``compare`` reports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

DEFAULT_RESAMPLES = 10_000
_CHUNK_CELLS = 4_000_000  # resample indices drawn per chunk: bounds memory at ~32 MB


@dataclass(frozen=True, slots=True)
class Estimate:
    value: float | None
    low: float | None
    high: float | None
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high, "n": self.n}

    @property
    def ci(self) -> list[float | None]:
        return [self.low, self.high]


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """Mean paired difference ``a - b`` with its bootstrap CI and a permutation-test p-value."""

    diff: Estimate
    p_value: float | None
    exact: bool  # the permutation p-value enumerated every sign pattern
    n_resamples: int

    def as_dict(self) -> dict[str, object]:
        return {**self.diff.as_dict(), "p_value": self.p_value, "exact": self.exact, "n_resamples": self.n_resamples}


def _percentiles(samples: NDArray[np.float64], alpha: float) -> tuple[float, float]:
    low, high = np.nanpercentile(samples, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def bootstrap_mean(
    values: ArrayLike,
    n_resamples: int = DEFAULT_RESAMPLES,
    alpha: float = 0.05,
    seed: int = 0,
) -> Estimate:
    """Mean with a percentile-bootstrap CI, vectorised (resamples drawn in chunks as index matrices)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Estimate(None, None, None, 0)
    means = resampled_means(x, n_resamples, np.random.default_rng(seed))
    low, high = _percentiles(means, alpha)
    return Estimate(float(x.mean()), low, high, n)


def resampled_means(x: NDArray[np.float64], n_resamples: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Means of ``n_resamples`` bootstrap resamples of ``x`` (no NaN), vectorised.

    With ``k`` distinct values and ``k`` small against ``n``, the count of each value in a resample is
    ``Multinomial(n, frequencies)``, so the means are drawn from that (``O(B k)`` instead of ``O(B n)``); this is
    the same distribution as resampling indices, not an approximation.
    """
    n = int(x.size)
    values, counts = np.unique(x, return_counts=True)
    # The multinomial path costs O(B k) against O(B n) for indices; at k <= n/8 it is the clear winner (0/1 flags,
    # small counts), and above that drawing a k-way multinomial per resample stops paying for itself.
    if values.size * 8 <= n:
        draws = rng.multinomial(n, counts / n, size=n_resamples)  # (B, k): how often each distinct value is drawn
        return np.asarray(draws @ values / n, dtype=np.float64)  # (B,)
    means = np.empty(n_resamples, dtype=np.float64)
    # One chunk is a (rows, n) index matrix of at most _CHUNK_CELLS cells, so memory stays flat whatever B and n.
    per_chunk = max(1, _CHUNK_CELLS // n)
    index_dtype = np.int32 if n < 2**31 else np.int64  # int32 halves the matrix when the indices fit
    for start in range(0, n_resamples, per_chunk):
        stop = min(n_resamples, start + per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=index_dtype)  # row r = resample start + r
        means[start:stop] = x[idx].mean(axis=1)
    return means


def bootstrap_statistic(
    statistic: Callable[[NDArray[np.int64]], float],
    n: int,
    n_resamples: int = 2_000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Estimate:
    """CI for any statistic of item indices (kappa, F1, accuracy of a subset...).

    ``statistic(idx)`` receives an index array into the caller's data; resamples where it returns NaN (e.g. a
    kappa with one class only) are dropped from the percentiles.
    """
    if n == 0:
        return Estimate(None, None, None, 0)
    rng = np.random.default_rng(seed)
    point = statistic(np.arange(n))
    # One Python call per resample: the statistic (kappa, F1) is not vectorised over resamples, hence the smaller
    # default B. Each call sees a length-n index array drawn with replacement.
    samples = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(n_resamples)], dtype=np.float64)
    if np.all(np.isnan(samples)):
        return Estimate(None if np.isnan(point) else float(point), None, None, n)
    low, high = _percentiles(samples, alpha)
    return Estimate(None if np.isnan(point) else float(point), low, high, n)


def bootstrap_ratio(
    numerators: ArrayLike,
    denominators: ArrayLike,
    n_resamples: int = DEFAULT_RESAMPLES,
    alpha: float = 0.05,
    seed: int = 0,
) -> Estimate:
    """Pooled ratio ``sum(num) / sum(den)`` with a percentile CI from resampling clusters (rows) jointly.

    Rows with a zero denominator add nothing to the ratio and are dropped; ``n`` counts the remaining rows.
    Resamples whose denominators sum to zero cannot occur after that drop.
    """
    num = np.asarray(numerators, dtype=np.float64).ravel()
    den = np.asarray(denominators, dtype=np.float64).ravel()
    if num.shape != den.shape:
        raise ValueError(f"numerators and denominators differ in length: {num.size} vs {den.size}")
    keep = den > 0
    num, den = num[keep], den[keep]
    n = int(num.size)
    if n == 0:
        return Estimate(None, None, None, 0)
    rng = np.random.default_rng(seed)
    ratios = np.empty(n_resamples, dtype=np.float64)
    per_chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_resamples, per_chunk):
        stop = min(n_resamples, start + per_chunk)
        # (rows, n) cluster indices: a whole cluster (its numerator and denominator together) is drawn or not,
        # so the items inside one response stay correlated as they are in the data.
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.int64)
        ratios[start:stop] = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    low, high = _percentiles(ratios, alpha)
    return Estimate(float(num.sum() / den.sum()), low, high, n)


def _paired(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    d = x - y
    return d[~np.isnan(d)]  # a pair counts only when both sides have a value


def paired_bootstrap(
    a: ArrayLike,
    b: ArrayLike,
    n_resamples: int = DEFAULT_RESAMPLES,
    alpha: float = 0.05,
    seed: int = 0,
) -> Estimate:
    """Mean paired difference ``a - b`` with a percentile-bootstrap CI; items resampled jointly.

    Pairs where either side is NaN (unscored) are dropped; ``n`` is the number of complete pairs.
    """
    return bootstrap_mean(_paired(a, b), n_resamples=n_resamples, alpha=alpha, seed=seed)


def _sign_patterns(n: int) -> NDArray[np.float64]:
    """All ``2**n`` sign vectors as rows of +1/-1."""
    bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    return np.asarray(1.0 - 2.0 * bits, dtype=np.float64)


def paired_permutation_test(
    a: ArrayLike,
    b: ArrayLike,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alternative: str = "two-sided",
) -> tuple[float | None, bool]:
    """p-value of the mean paired difference under the sign-flip null (each pair's labels exchangeable).

    Returns ``(p_value, exact)``. ``alternative``: ``two-sided``, ``greater`` (a > b) or ``less``. Exact enumeration
    when ``2**n <= n_resamples``; otherwise Monte Carlo with ``(hits + 1) / (n_resamples + 1)``. Two-sided is
    ``min(1, 2 * min(p_less, p_greater))``, as scipy computes it (equal to ``P(|T| >= |t|)`` here because the
    sign-flip null is symmetric). ``None`` when there is no complete pair.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be two-sided, greater or less, got {alternative!r}")
    d = _paired(a, b)
    n = int(d.size)
    if n == 0:
        return None, False
    observed = float(d.mean())
    tol = max(abs(observed), float(np.abs(d).max())) * 1e-12 * n  # float noise in equal sums is not a difference
    exact = 2**n <= n_resamples
    greater = less = 0
    total = 0
    if exact:
        null = _sign_patterns(n) @ d / n  # (2**n, n) @ (n,): the mean difference under every sign pattern
        greater, less, total = int((null >= observed - tol).sum()), int((null <= observed + tol).sum()), null.size
    else:
        rng = np.random.default_rng(seed)
        per_chunk = max(1, _CHUNK_CELLS // n)
        for start in range(0, n_resamples, per_chunk):
            rows = min(n_resamples, start + per_chunk) - start
            signs = 1.0 - 2.0 * rng.integers(0, 2, size=(rows, n), dtype=np.int8)  # (rows, n) of +-1
            null = signs @ d / n  # (rows,) mean differences under random sign flips
            greater += int((null >= observed - tol).sum())
            less += int((null <= observed + tol).sum())
        total = n_resamples
    adjust = 0 if exact else 1
    p_greater = (greater + adjust) / (total + adjust)
    p_less = (less + adjust) / (total + adjust)
    if alternative == "greater":
        return p_greater, exact
    if alternative == "less":
        return p_less, exact
    return min(1.0, 2.0 * min(p_greater, p_less)), exact


def paired_comparison(
    a: ArrayLike,
    b: ArrayLike,
    n_resamples: int = DEFAULT_RESAMPLES,
    alpha: float = 0.05,
    seed: int = 0,
) -> PairedComparison:
    """Bootstrap CI of the mean paired difference plus the two-sided sign-flip permutation p-value."""
    diff = paired_bootstrap(a, b, n_resamples=n_resamples, alpha=alpha, seed=seed)
    p_value, exact = paired_permutation_test(a, b, n_resamples=n_resamples, seed=seed + 1)
    return PairedComparison(diff=diff, p_value=p_value, exact=exact, n_resamples=n_resamples)
