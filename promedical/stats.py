"""Confidence intervals and paired tests shared by every evaluation (judge meta-eval, RM eval, bench, review).

Pure numpy; randomness only from a seeded ``numpy.random.Generator``. Percentile bootstrap by default.
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
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Estimate(None, None, None, 0)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)
    per_chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_resamples, per_chunk):
        stop = min(n_resamples, start + per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = x[idx].mean(axis=1)
    low, high = _percentiles(means, alpha)
    return Estimate(float(x.mean()), low, high, n)


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
    samples = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(n_resamples)], dtype=np.float64)
    if np.all(np.isnan(samples)):
        return Estimate(None if np.isnan(point) else float(point), None, None, n)
    low, high = _percentiles(samples, alpha)
    return Estimate(None if np.isnan(point) else float(point), low, high, n)
