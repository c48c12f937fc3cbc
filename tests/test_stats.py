"""Statistics against hand-worked values and scipy's reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from promedical.stats import (
    Estimate,
    bootstrap_mean,
    bootstrap_statistic,
    paired_bootstrap,
    paired_comparison,
    paired_permutation_test,
    resampled_means,
)


def test_two_point_sample_hand_worked() -> None:
    # Resample means of [0, 1] are 0, 0.5, 1 with probability 1/4, 1/2, 1/4: the 2.5th and 97.5th percentiles
    # are 0 and 1.
    est = bootstrap_mean([0.0, 1.0], n_resamples=4000, seed=3)
    assert est == Estimate(0.5, 0.0, 1.0, 2)


def test_constant_sample_has_a_degenerate_interval() -> None:
    est = bootstrap_mean([0.7] * 50)
    assert est.value == pytest.approx(0.7)
    assert est.low == pytest.approx(0.7)
    assert est.high == pytest.approx(0.7)


def test_nan_is_dropped_and_empty_gives_none() -> None:
    assert bootstrap_mean([1.0, float("nan"), 3.0]).n == 2
    assert bootstrap_mean([float("nan")]) == Estimate(None, None, None, 0)
    assert bootstrap_mean([]).as_dict() == {"value": None, "ci_low": None, "ci_high": None, "n": 0}


def test_binary_bootstrap_matches_the_binomial_distribution() -> None:
    # For 0/1 data the bootstrap mean is Binomial(n, p)/n: its percentiles are known in closed form.
    n, k = 200, 130
    x = np.r_[np.ones(k), np.zeros(n - k)]
    est = bootstrap_mean(x, n_resamples=20_000, seed=1)
    low = sps.binom.ppf(0.025, n, k / n) / n
    high = sps.binom.ppf(0.975, n, k / n) / n
    assert est.value == pytest.approx(0.65)
    assert abs(est.low - low) <= 1.5 / n  # type: ignore[operator]
    assert abs(est.high - high) <= 1.5 / n  # type: ignore[operator]


def test_multinomial_and_index_resampling_agree() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=400).astype(float)  # few distinct values: multinomial path
    fast = resampled_means(x, 20_000, np.random.default_rng(0))
    idx = np.random.default_rng(1).integers(0, x.size, size=(20_000, x.size))
    slow = x[idx].mean(axis=1)
    for q in (2.5, 25, 50, 75, 97.5):
        assert np.percentile(fast, q) == pytest.approx(np.percentile(slow, q), abs=0.02)
    assert fast.std() == pytest.approx(x.std() / np.sqrt(x.size), rel=0.05)


@pytest.mark.parametrize("discrete", [False, True])
def test_bootstrap_mean_matches_scipy_percentile_bootstrap(discrete: bool) -> None:
    rng = np.random.default_rng(11)
    x = rng.integers(0, 3, size=300).astype(float) if discrete else rng.gamma(2.0, 1.5, size=300)
    ours = bootstrap_mean(x, n_resamples=20_000, seed=2)
    ref = sps.bootstrap((x,), np.mean, n_resamples=20_000, method="percentile", rng=np.random.default_rng(3))
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=0.05 * width)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=0.05 * width)


def test_paired_bootstrap_matches_scipy_paired() -> None:
    rng = np.random.default_rng(21)
    a = rng.normal(0.6, 0.2, size=150)
    b = a - 0.05 + rng.normal(0, 0.1, size=150)
    ours = paired_bootstrap(a, b, n_resamples=20_000, seed=4)
    ref = sps.bootstrap((a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), paired=True,
                        n_resamples=20_000, method="percentile", rng=np.random.default_rng(5))
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert ours.value == pytest.approx(float(np.mean(a - b)))
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=0.05 * width)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=0.05 * width)


def test_paired_bootstrap_drops_incomplete_pairs_and_checks_lengths() -> None:
    est = paired_bootstrap([1.0, float("nan"), 0.5], [0.0, 1.0, float("nan")])
    assert est.n == 1 and est.value == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1.0], [1.0, 2.0])


def test_permutation_hand_worked() -> None:
    # d = (1, 1, 1): of the 8 sign patterns only (+,+,+) reaches mean 1, so P(T >= 1) = 1/8; two-sided 2/8.
    assert paired_permutation_test([2, 2, 2], [1, 1, 1], alternative="greater") == (0.125, True)
    assert paired_permutation_test([2, 2, 2], [1, 1, 1]) == (0.25, True)
    assert paired_permutation_test([2, 2, 2], [1, 1, 1], alternative="less") == (1.0, True)
    # No difference at all: every pattern ties the observed 0, p = 1.
    assert paired_permutation_test([1, 0, 1], [1, 0, 1]) == (1.0, True)
    assert paired_permutation_test([], []) == (None, False)


def _scipy_paired(a: np.ndarray, b: np.ndarray, n_resamples: int, alternative: str, seed: int = 0) -> float:
    result = sps.permutation_test((a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis),
                                  permutation_type="samples", vectorized=True, n_resamples=n_resamples,
                                  alternative=alternative, rng=np.random.default_rng(seed))
    return float(result.pvalue)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_exact_permutation_equals_scipy_exact(alternative: str) -> None:
    rng = np.random.default_rng(8)
    a = rng.integers(0, 4, size=11).astype(float)
    b = rng.integers(0, 4, size=11).astype(float)  # ties and zero differences included
    ours, exact = paired_permutation_test(a, b, n_resamples=5000, alternative=alternative)
    assert exact
    assert ours == pytest.approx(_scipy_paired(a, b, 5000, alternative), abs=1e-12)


def test_monte_carlo_permutation_close_to_scipy() -> None:
    rng = np.random.default_rng(9)
    a = rng.normal(0.1, 1.0, size=60)
    b = rng.normal(0.0, 1.0, size=60)
    ours, exact = paired_permutation_test(a, b, n_resamples=20_000, seed=1)
    assert not exact
    assert ours == pytest.approx(_scipy_paired(a, b, 20_000, "two-sided"), abs=0.015)


def test_permutation_detects_a_real_shift_and_not_a_null_one() -> None:
    rng = np.random.default_rng(10)
    base = rng.normal(size=300)
    p_shift, _ = paired_permutation_test(base + 0.3, base + rng.normal(0, 0.5, size=300))
    p_null, _ = paired_permutation_test(base + rng.normal(0, 0.5, size=300), base + rng.normal(0, 0.5, size=300))
    assert p_shift is not None and p_shift < 0.001
    assert p_null is not None and p_null > 0.01


def test_paired_comparison_bundles_ci_and_p() -> None:
    cmp = paired_comparison([1, 1, 1, 0, 1, 1], [0, 1, 0, 0, 0, 1], n_resamples=2000)
    d = cmp.as_dict()
    assert d["value"] == pytest.approx(0.5)
    assert d["exact"] is True and d["n"] == 6
    # d = (1,0,1,0,1,0): three non-zero ones, all positive -> P(T >= 0.5) = 1/8; two-sided 1/4.
    assert d["p_value"] == pytest.approx(0.25)


def test_bootstrap_statistic_keeps_its_contract() -> None:
    y = np.array([1, 0, 1, 1, 0, 1, 0, 1])
    est = bootstrap_statistic(lambda idx: float(y[idx].mean()), n=y.size, n_resamples=500, seed=1)
    assert est.value == pytest.approx(0.625)
    assert est.low is not None and est.high is not None and est.low <= 0.625 <= est.high
    nan_only = bootstrap_statistic(lambda idx: float("nan"), n=3, n_resamples=10)
    assert nan_only == Estimate(None, None, None, 3)


def test_bootstrap_ratio_pools_and_resamples_clusters() -> None:
    from promedical.stats import bootstrap_ratio

    # 3 + 1 met out of 4 + 4 scored: pooled 0.5 (not the mean of per-row shares, which is also 0.5 here) ...
    est = bootstrap_ratio([3, 1, 0], [4, 4, 0], n_resamples=2000)
    assert est.value == pytest.approx(0.5) and est.n == 2
    # resampling two rows gives 3/4, 1/2 or 1/4 with probability 1/4, 1/2, 1/4: percentiles are the extremes
    assert (est.low, est.high) == (pytest.approx(0.25), pytest.approx(0.75))
    # ... and differs from the mean of shares when denominators differ: (9 + 0) / (10 + 1) = 9/11
    assert bootstrap_ratio([9, 0], [10, 1]).value == pytest.approx(9 / 11)
    assert bootstrap_ratio([], []).value is None
    ref = sps.bootstrap((np.array([3.0, 5, 2, 7, 1, 4]), np.array([5.0, 6, 4, 9, 3, 5])),
                        lambda a, b, axis=-1: a.sum(axis=axis) / b.sum(axis=axis), paired=True,
                        n_resamples=20_000, method="percentile", rng=np.random.default_rng(0))
    ours = bootstrap_ratio([3, 5, 2, 7, 1, 4], [5, 6, 4, 9, 3, 5], n_resamples=20_000, seed=3)
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=0.02)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=0.02)
