"""Agreement statistics against hand-worked and published numbers, and their undefined cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from promedical.labels.agreement import kappa_from_tables
from promedical.review.agreement import Rating, agreement, alpha, kappa


def test_cohen_kappa_hand_worked() -> None:
    # Table [[20, 5], [10, 15]]: p_o = 35/50 = 0.7, p_e = (25*30 + 25*20)/50^2 = 0.5, kappa = 0.2/0.5 = 0.4.
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert kappa(a, b, [0, 1]) == pytest.approx(0.4)
    assert kappa_from_tables(np.array([[15.0, 10.0], [5.0, 20.0]])) == pytest.approx(0.4)


def test_table_kappa_matches_scikit_learn_including_weights() -> None:
    rng = np.random.default_rng(3)
    for weights in (None, "linear", "quadratic"):
        a = rng.integers(0, 3, 80)
        b = np.where(rng.random(80) < 0.6, a, rng.integers(0, 3, 80))
        table = np.zeros((3, 3))
        np.add.at(table, (a, b), 1)
        assert kappa_from_tables(table, weights) == pytest.approx(cohen_kappa_score(a, b, weights=weights))


def test_weighted_kappa_credits_near_misses() -> None:
    # Pairwise answers b=0 < tie=1 < a=2; every disagreement is between neighbours.
    a = [2, 2, 1, 0, 0, 1, 2, 0]
    b = [2, 1, 1, 0, 1, 1, 2, 0]
    assert kappa(a, b, [0, 1, 2], "linear") > kappa(a, b, [0, 1, 2])  # type: ignore[operator]


def test_krippendorff_alpha_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example with missing data: 0.743.
    nan = np.nan
    data = np.array([
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ])
    assert alpha(data, "nominal", [1, 2, 3, 4, 5]) == pytest.approx(0.743, abs=5e-4)


def test_undefined_statistics_are_none_with_a_note() -> None:
    assert kappa([1, 1, 1], [1, 1, 1], [0, 1]) is None  # one category: p_e = 1
    assert kappa([1], [0], [0, 1]) is None
    rows = agreement([Rating("pointwise/veto", f"u{i}", r, 1) for i in range(5) for r in ("x", "y")], n_boot=50)
    assert rows and all(row.value is None and row.note for row in rows)


def test_agreement_rows_perfect_and_noisy() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 120)
    ratings = []
    for i, t in enumerate(truth):
        ratings.append(Rating("pointwise/proficiency", f"u{i}", "x", int(t)))
        ratings.append(Rating("pointwise/proficiency", f"u{i}", "y", int(t)))
        noisy = int(t) if rng.random() < 0.8 else 1 - int(t)
        ratings.append(Rating("pointwise/proficiency", f"u{i}", "judge:j", noisy))
    rows = {(r.metric, r.comparison, r.raters): r for r in agreement(ratings, n_boot=300, seed=1)}
    same = rows[("cohen_kappa", "reviewer-reviewer", ("x", "y"))]
    assert same.value == pytest.approx(1.0) and same.ci_low == pytest.approx(1.0) and same.units == 120
    vs_judge = rows[("cohen_kappa", "reviewer-judge", ("x", "judge:j"))]
    assert vs_judge.value is not None and 0.3 < vs_judge.value < 0.9
    assert vs_judge.ci_low is not None and vs_judge.ci_high is not None
    assert vs_judge.ci_low <= vs_judge.value <= vs_judge.ci_high
    both = rows[("krippendorff_alpha", "reviewers+judge", ("x", "y", "judge:j"))]
    assert both.value is not None and both.ci_low is not None and both.ci_low < both.value < 1.0
    assert rows[("krippendorff_alpha", "reviewers", ("x", "y"))].value == pytest.approx(1.0)
