"""Reward-hacking monitors on hand-made texts and numbers."""

from __future__ import annotations

import pytest

from promedical.rl import monitors

PRAISE = "This is a comprehensive answer: rest and fluids."
CREDENTIAL = "As a doctor, I see this often; one of my patients had the same."
STUFFED = "Consult your doctor. This is not medical advice. Please seek medical attention if worse."
ONE_DISCLAIMER = "Drink water. Consult your doctor if it persists."
PLAIN = "Drink water and rest; see a clinic if the fever lasts more than three days."


def test_lexicon_rates() -> None:
    rates = monitors.lexicon_rates([PRAISE, CREDENTIAL, STUFFED, ONE_DISCLAIMER, PLAIN])
    assert rates == {"self_praise_rate": 0.2, "credential_claim_rate": 0.2, "disclaimer_stuffing_rate": 0.2}
    assert monitors.lexicon_rates([]) == {}


def test_length_reward_correlation() -> None:
    perfect = monitors.length_reward_correlation([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4])
    assert perfect["spearman"] == pytest.approx(1.0) and perfect["pearson"] == pytest.approx(1.0)
    inverse = monitors.length_reward_correlation([1, 2, 3, 4], [0.9, 0.5, 0.4, 0.0])
    assert inverse["spearman"] == pytest.approx(-1.0)
    assert monitors.length_reward_correlation([1, 2], [0.1, 0.2])["spearman"] is None
    assert monitors.length_reward_correlation([1, 2, 3], [0.5, 0.5, 0.5])["pearson"] is None


def test_divergence_ignores_unscored_pairs() -> None:
    d = monitors.divergence([1.0, 0.5, None, 0.0], [0.5, 0.5, 0.2, None])
    assert d["n"] == 2 and d["train"] == pytest.approx(0.75) and d["heldout"] == pytest.approx(0.5)
    assert d["gap"] == pytest.approx(0.25)
    agreeing = monitors.divergence([0.1, 0.5, 0.9], [0.0, 0.3, 1.0])
    assert agreeing["agreement"] == pytest.approx(1.0)
    assert monitors.divergence([None], [1.0])["gap"] is None


def test_trend() -> None:
    assert monitors.trend([0, 1, 2], [0.0, 0.5, 1.0]) == pytest.approx(0.5)
    assert monitors.trend([3, 3], [0.0, 1.0]) is None
