"""Threshold choice on hand-made numbers."""

from __future__ import annotations

import pytest

from promedical.reward.calibrate import (
    best_accuracy_threshold,
    best_veto_threshold,
    calibrate,
    candidates,
    violation_f1_at,
)


def test_candidates_are_midpoints_and_ends() -> None:
    assert candidates([1.0, 3.0, 3.0, 2.0]) == [0.0, 1.5, 2.5, 4.0]


def test_accuracy_threshold_separates_classes() -> None:
    t, acc = best_accuracy_threshold([0.1, 0.2, 0.8, 0.9], [False, False, True, True])
    assert t == pytest.approx(0.5) and acc == 1.0


def test_accuracy_threshold_with_an_error() -> None:
    # scores 1..5, labels F F T F T: best split at 2.5 (4/5 right: the 4.0 is wrong) or 4.5 (4/5): lowest wins
    t, acc = best_accuracy_threshold([1, 2, 3, 4, 5], [False, False, True, False, True])
    assert acc == pytest.approx(0.8) and t == pytest.approx(2.5)


def test_veto_prefers_the_highest_of_equal_thresholds() -> None:
    # violations (not satisfied) at scores 1 and 2; satisfied at 5 and 6: any t in (2, 5] gives F1 = 1
    t, f1 = best_veto_threshold([1, 2, 5, 6], [False, False, True, True])
    assert f1 == 1.0 and t == pytest.approx(3.5)  # midpoint candidates: 1.5, 3.5, 5.5; 3.5 is the only perfect one
    # scores 1..4 with violations at 1 and 4: t=1.5 gives F1 2/3, t=2.5 1/2, t=3.5 2/5, t=5 (flag all) 2/3
    scores, sat = [1, 2, 3, 4], [False, True, True, False]
    assert violation_f1_at(scores, sat, 1.5) == pytest.approx(2 / 3)
    assert violation_f1_at(scores, sat, 5.0) == pytest.approx(2 / 3)
    t, f1 = best_veto_threshold(scores, sat)
    assert f1 == pytest.approx(2 / 3) and t == pytest.approx(5.0)  # the higher of the tied thresholds: fail closed


def test_small_tier_falls_back_to_pooled() -> None:
    tiers = ["proficiency"] * 10 + ["bonus"] * 2
    scores = [float(i) for i in range(10)] + [0.0, 9.0]
    satisfied = [i >= 5 for i in range(10)] + [False, True]
    out = calibrate(tiers, scores, satisfied, min_items=5)
    assert out["proficiency"].threshold == pytest.approx(4.5) and out["proficiency"].rule == "max accuracy"
    assert out["bonus"].rule.startswith("pooled") and out["bonus"].threshold == pytest.approx(4.5)
    assert out["veto"].n == 0 and out["veto"].validation_accuracy is None


def test_calibrate_rejects_empty_and_mismatched() -> None:
    with pytest.raises(ValueError):
        calibrate([], [], [])
    with pytest.raises(ValueError):
        calibrate(["veto"], [1.0, 2.0], [True])
