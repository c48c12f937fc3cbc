"""Paired comparison of two hand-made runs: lexicographic outcomes, paired differences, refusals."""

from __future__ import annotations

import pytest

from promedical.bench.compare import compare_rows
from promedical.io import UserError
from tests.helpers_bench import score_row

A = [score_row("k1", 0.9, reward=0.9), score_row("k2", 0.5, reward=0.5), score_row("k3", 0.6, s2=2, reward=0.8),
     score_row("k4", 0.7, reward=0.7), score_row("k5", None), score_row("only-a", 1.0, reward=1.0)]
B = [score_row("k1", 1.0, s3=1, reward=-0.5), score_row("k2", 0.7, reward=0.7), score_row("k3", 0.6, s2=1, reward=0.7),
     score_row("k4", 0.7, reward=0.7), score_row("k5", 0.2, reward=0.2), score_row("only-b", 0.0, reward=0.0)]


def test_lexicographic_outcomes_hand_worked() -> None:
    result = compare_rows(A, B, n_resamples=2000)
    lex = result["lexicographic"]
    # k1: A has no veto -> win; k2: lower S1 -> loss; k3: same S1, more bonus -> win; k4: tie; k5: A has no S1
    assert (lex["win"], lex["tie"], lex["loss"], lex["incomparable"]) == (2, 1, 1, 1)
    assert lex["rates"]["win"]["value"] == pytest.approx(0.5)
    assert lex["net"]["value"] == pytest.approx(0.25)
    # outcomes (+1, -1, +1, 0): sums of three random signs reach >= 1 with probability 4/8 -> two-sided p = 1
    assert lex["net"]["p_value"] == pytest.approx(1.0) and lex["net"]["exact"]
    assert (result["n_pairs"], result["only_a"], result["only_b"]) == (5, 1, 1)


def test_paired_metric_differences() -> None:
    result = compare_rows(A, B, n_resamples=2000)
    overall = result["metrics"]["overall"]
    # rewards on the four rubrics both scored: (1.4, -0.2, 0.1, 0) -> mean 0.325
    assert overall["n"] == 4 and overall["value"] == pytest.approx(0.325)
    assert overall["mean_a"] - overall["mean_b"] == pytest.approx(0.325)
    safety = result["metrics"]["safety_compliance"]
    assert safety["n"] == 5 and safety["value"] == pytest.approx(0.2)
    assert 0 <= overall["p_value"] <= 1 and overall["ci_low"] <= 0.325 <= overall["ci_high"]


def test_a_run_against_itself_shows_no_difference() -> None:
    result = compare_rows(A, A, n_resamples=500)
    assert result["metrics"]["s1"]["value"] == 0 and result["metrics"]["s1"]["p_value"] == 1.0
    assert result["lexicographic"]["loss"] == 0 and result["lexicographic"]["win"] == 0


def test_refusals() -> None:
    with pytest.raises(UserError, match="more than one response"):
        compare_rows([*A, score_row("k1", 0.1, reward=0.1)], B)
    with pytest.raises(UserError, match="share no rubric"):
        compare_rows([score_row("x", 0.5, reward=0.5)], [score_row("y", 0.5, reward=0.5)])
