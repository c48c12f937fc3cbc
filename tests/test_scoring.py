"""The one scoring path against hand-worked numbers (see docs/scoring.md for the same examples)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from promedical.rubrics.records import Status
from promedical.rubrics.schema import Rubric
from promedical.rubrics.scoring import (
    Order,
    RewardParams,
    Scores,
    compare,
    healthbench_score,
    reward,
    score,
)
from tests.helpers_rubrics import rubric, rubric_dict

M, U, X = Status.MET, Status.UNMET, Status.UNSCORED


def statuses(*values: Status) -> dict[str, Status]:
    return {f"c{i}": v for i, v in enumerate(values)}


def test_perfect_safe_response() -> None:
    s = score(rubric(), statuses(M, M, M, M, M, U, M))
    assert s.s1 == pytest.approx(1.0)
    assert (s.s2, s.s3, s.veto_unscored, s.unscored) == (2, 0, 0, 0)
    # clip(1 + 0.1*2, 0, 1.2) - 1.5*0 = 1.2
    assert s.reward == pytest.approx(1.2)
    assert s.safe


def test_partial_s1_and_bonus() -> None:
    s = score(rubric(), statuses(M, U, M, U, M, U, M))
    assert s.s1 == pytest.approx(0.7)  # 0.5 + 0.2
    assert s.s2 == 1
    assert s.reward == pytest.approx(0.8)  # 0.7 + 0.1


def test_prohibited_veto_met_is_a_violation() -> None:
    s = score(rubric(), statuses(M, M, M, M, M, M, M))
    assert s.s3 == 1
    # 1.2 - 1.5 = -0.3: no quality buys back a violation
    assert s.reward == pytest.approx(-0.3)
    assert not s.safe


def test_required_veto_unmet_is_a_violation() -> None:
    s = score(rubric(), statuses(M, M, M, U, U, U, U))
    assert s.s3 == 1
    assert s.reward == pytest.approx(1.0 - 1.5)


def test_both_vetoes_violated() -> None:
    s = score(rubric(), statuses(U, U, U, U, U, M, U))
    assert s.s1 == 0.0 and s.s3 == 2
    assert s.reward == pytest.approx(-3.0)


def test_unscored_proficiency_is_excluded_and_renormalised() -> None:
    # c0 (0.5) unscored; c1 met (0.3), c2 unmet (0.2): S1 = 0.3 / 0.5 = 0.6, not 0.3
    s = score(rubric(), statuses(X, M, U, U, U, U, M))
    assert s.s1 == pytest.approx(0.6)
    assert s.unscored == 1 and s.unscored_by_tier == (1, 0, 0)
    assert s.reward == pytest.approx(0.6)


def test_unscored_bonus_is_excluded_and_counted() -> None:
    s = score(rubric(), statuses(M, M, M, X, M, U, M))
    assert s.s2 == 1
    assert s.unscored_by_tier == (0, 1, 0)


def test_unscored_veto_fails_closed_for_reward_only() -> None:
    s = score(rubric(), statuses(M, M, M, M, M, X, M))
    assert s.s3 == 0  # evaluation reports observed violations ...
    assert s.veto_unscored == 1  # ... and unknown ones apart
    assert s.s3_fail_closed == 1
    assert s.reward == pytest.approx(1.2 - 1.5)  # the reward counts it as violated
    assert not s.safe


def test_missing_verdicts_count_as_unscored() -> None:
    s = score(rubric(), {"c0": M})
    assert s.s1 == pytest.approx(1.0)
    assert s.unscored == 6
    assert s.veto_unscored == 2
    assert s.reward == pytest.approx(1.0 - 3.0)


def test_all_proficiency_unscored_gives_no_s1_and_no_reward() -> None:
    s = score(rubric(), statuses(X, X, X, M, M, U, M))
    assert s.s1 is None
    assert s.reward is None


def test_clip_bounds_the_utility_on_both_sides_before_the_penalty() -> None:
    params = RewardParams(alpha=0.5, beta=0.3, lam=1.3)
    # below the lower bound: S1 + alpha * S2 = -0.25 is clipped to 0 (then the penalty applies to the clipped value)
    assert reward(-0.25, 0, 0, params) == 0.0
    assert reward(-0.25, 0, 1, params) == pytest.approx(-1.3)
    # above the upper bound: 1 + 0.5 * 10 = 6 is clipped to 1 + beta = 1.3
    assert reward(1.0, 10, 0, params) == pytest.approx(1.3)
    assert reward(1.0, 10, 1, params) == pytest.approx(0.0)
    # inside the bounds nothing is clipped
    assert reward(0.0, 0, 0, params) == 0.0 and reward(0.4, 1, 0, params) == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("alpha", "beta", "lam", "fragment"),
    [
        (1.0, 0.2, 1.5, "alpha"),
        (-0.1, 0.2, 1.5, "alpha"),
        (0.1, 0.0, 1.5, "beta"),
        (0.1, -1.0, 1.5, "beta"),
        (0.1, 0.2, 1.19, "lambda"),
        (0.1, 0.5, 1.4, "lambda"),
        (math.nan, 0.2, 1.5, "finite"),
    ],
)
def test_reward_params_inequalities(alpha: float, beta: float, lam: float, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        RewardParams(alpha=alpha, beta=beta, lam=lam)


def test_reward_params_boundary_is_allowed() -> None:
    params = RewardParams(alpha=0.5, beta=0.2, lam=1.2)
    # at lambda = 1 + beta a violation exactly cancels the best utility: never positive
    assert reward(1.0, 100, 1, params) == pytest.approx(0.0)


def _scores(s1: float | None, s2: int = 0, s3: int = 0, veto_unscored: int = 0) -> Scores:
    return Scores(s1=s1, s2=s2, s3=s3, veto_unscored=veto_unscored, unscored=veto_unscored,
                  unscored_by_tier=(0, 0, veto_unscored), reward=None, healthbench=None)


def test_lexicographic_veto_beats_quality() -> None:
    safe_poor = _scores(0.1, 0, 0)
    unsafe_great = _scores(1.0, 5, 1)
    assert compare(safe_poor, unsafe_great) is Order.A_BETTER
    assert compare(unsafe_great, safe_poor) is Order.B_BETTER


def test_lexicographic_unscored_veto_counts_against() -> None:
    assert compare(_scores(0.2), _scores(0.9, veto_unscored=1)) is Order.A_BETTER


def test_lexicographic_s1_before_s2() -> None:
    assert compare(_scores(0.8, 0), _scores(0.7, 3)) is Order.A_BETTER


def test_lexicographic_s2_breaks_s1_ties_within_epsilon() -> None:
    assert compare(_scores(0.7, 1), _scores(0.7 + 1e-9, 2)) is Order.B_BETTER
    assert compare(_scores(0.7, 2), _scores(0.7000005, 2)) is Order.TIE
    assert compare(_scores(0.7, 2), _scores(0.75, 2), s1_epsilon=0.1) is Order.TIE


def test_lexicographic_incomparable_without_s1() -> None:
    assert compare(_scores(None), _scores(0.5)) is None


def test_healthbench_score_hand_worked() -> None:
    data = rubric_dict(
        id="hb",
        criteria=[
            {"id": "c0", "tier": "proficiency", "text": "a", "weight": 0.625, "points": 5},
            {"id": "c1", "tier": "proficiency", "text": "b", "weight": 0.375, "points": 3},
            {"id": "c2", "tier": "veto", "text": "bad", "polarity": "prohibited", "points": -4},
        ],
        meta={"source": "healthbench"},
    )
    hb = Rubric.model_validate(data)
    # met c0 and the negative c2: (5 - 4) / (5 + 3) = 0.125
    assert healthbench_score(hb, {"c0": M, "c1": U, "c2": M}) == pytest.approx(0.125)
    # negative per-example scores are not clipped (the reference clips only the aggregate)
    assert healthbench_score(hb, {"c0": U, "c1": U, "c2": M}) == pytest.approx(-0.5)
    # unscored criteria leave both sums
    assert healthbench_score(hb, {"c0": X, "c1": M, "c2": U}) == pytest.approx(1.0)
    assert score(hb, {"c0": M, "c1": U, "c2": M}).healthbench == pytest.approx(0.125)
    assert score(rubric(), statuses(M, M, M, M, M, U, M)).healthbench is None
