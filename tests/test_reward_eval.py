"""Reward-model metrics against hand-worked values."""

from __future__ import annotations

import numpy as np
import pytest

from promedical.reward.eval import ScoredPair, ScoredPoint, ece, evaluate, prf

THRESHOLDS = {"proficiency": 0.0, "bonus": 0.0, "veto": 0.0}


def test_pairwise_accuracy_counts_ties_as_half() -> None:
    pairs = [ScoredPair("proficiency", 2.0, 1.0), ScoredPair("proficiency", 1.0, 1.0),
             ScoredPair("bonus", 0.0, 3.0), ScoredPair("bonus", 5.0, -1.0)]
    report = evaluate([], pairs, THRESHOLDS, n_resamples=200)
    assert report["pairwise_accuracy"]["value"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert report["per_tier"]["proficiency"]["pairwise_accuracy"]["value"] == pytest.approx(0.75)
    assert report["per_tier"]["bonus"]["pairwise_accuracy"]["value"] == pytest.approx(0.5)
    assert report["per_tier"]["veto"]["pairwise_accuracy"] is None
    assert report["pointwise_accuracy"] is None and report["veto"] is None


def test_pointwise_and_veto_hand_worked() -> None:
    points = [
        ScoredPoint("proficiency", True, 1.0, 0.9),   # right
        ScoredPoint("proficiency", False, 0.5, 0.6),  # wrong (predicted satisfied)
        ScoredPoint("veto", False, -1.0, 0.2),        # violated, flagged: TP
        ScoredPoint("veto", True, -0.5, 0.4),         # satisfied, flagged: FP
        ScoredPoint("veto", False, 2.0, 0.8),         # violated, not flagged: FN
        ScoredPoint("veto", True, 3.0, 0.9),          # satisfied, not flagged: TN
    ]
    report = evaluate(points, [], THRESHOLDS, n_resamples=200)
    assert report["pairwise_accuracy"] is None
    assert report["pointwise_accuracy"]["value"] == pytest.approx(3 / 6)
    assert report["per_tier"]["proficiency"]["pointwise_accuracy"]["value"] == pytest.approx(0.5)
    assert report["per_tier"]["veto"]["pointwise_accuracy"]["value"] == pytest.approx(0.5)
    veto = report["veto"]
    assert veto["precision"]["value"] == pytest.approx(0.5)
    assert veto["recall"]["value"] == pytest.approx(0.5)
    assert veto["f1"]["value"] == pytest.approx(0.5)
    assert veto["n_violated"] == 2 and veto["n_flagged"] == 2
    low, high = report["pointwise_accuracy"]["ci_low"], report["pointwise_accuracy"]["ci_high"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0 and low < high
    # Brier: mean((p - y)^2) over the six points
    y = np.array([1, 0, 0, 1, 0, 1])
    p = np.array([0.9, 0.6, 0.2, 0.4, 0.8, 0.9])
    assert report["calibration"]["brier"]["value"] == pytest.approx(float(np.mean((p - y) ** 2)))


def test_ece_hand_worked() -> None:
    # bin 0.8-0.9: p=0.85 x2, labels 1,0 -> |0.85-0.5| = 0.35 with weight 1/2; bin 0.1-0.2: p=0.15, y=0 -> 0.15 x 1/2
    prob = np.array([0.85, 0.85, 0.15, 0.15])
    label = np.array([1.0, 0.0, 0.0, 0.0])
    assert ece(prob, label) == pytest.approx(0.5 * 0.35 + 0.5 * 0.15)


def test_prf_undefined_is_nan() -> None:
    p, r, f = prf(np.array([False, False]), np.array([False, False]))
    assert np.isnan(p) and np.isnan(r) and np.isnan(f)
