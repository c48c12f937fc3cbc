"""The quickstart refuses a reward model no better than the majority class (unless told, loudly), and says what the
before/after comparison shows in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from promedical.cli.quickstart import _ranking, effect_in_words
from promedical.quickstart import FULL, TINY, Quickstart, WeakRewardModel

WEAK = {"pointwise_accuracy": {"value": 0.55}, "majority_class": 0.6}
GOOD = {"pointwise_accuracy": {"value": 0.8}, "majority_class": 0.6}


def test_a_weak_rm_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WeakRewardModel, match="--allow-weak-rm"):
        Quickstart(tmp_path, FULL, lambda _: None).rm_gate(None, WEAK)


def test_the_held_out_physician_figure_decides_when_there_is_one(tmp_path: Path) -> None:
    held_out = {"out_of_fold": {"accuracy": 0.6, "majority_class": 0.65}}
    with pytest.raises(WeakRewardModel, match="physician labels"):
        Quickstart(tmp_path, FULL, lambda _: None).rm_gate(held_out, GOOD)
    held_out = {"out_of_fold": {"accuracy": 0.75, "majority_class": 0.65}}
    assert Quickstart(tmp_path, FULL, lambda _: None).rm_gate(held_out, WEAK)["passed"] is True


def test_overriding_is_loud_and_recorded(tmp_path: Path) -> None:
    said: list[str] = []
    gate = Quickstart(tmp_path, FULL, said.append, allow_weak_rm=True).rm_gate(None, WEAK)
    assert gate == {"basis": "held-out expert labels of the samples", "accuracy": 0.55, "majority_class": 0.6,
                    "passed": False, "overridden": True}
    assert any("WARNING" in s for s in said)
    assert Quickstart(tmp_path, TINY, lambda _: None).rm_gate(None, WEAK)["overridden"] is True  # mechanics run


def test_effect_in_words() -> None:
    null = {"value": 0.01, "ci_low": -0.05, "ci_high": 0.07}
    gain = {"value": 0.2, "ci_low": 0.1, "ci_high": 0.3}
    text = effect_in_words(gain, null, "lexical:0.5")
    assert text.startswith("No measurable effect") and "signature of optimising the judge" in text
    assert "better than the starting one" in effect_in_words(null, gain, "lexical:0.5")
    assert "no independent judge" in effect_in_words(gain, None, None)


def test_the_summary_shows_the_rms_ranking_next_to_lexical() -> None:
    """The held-out row names the AUC comparison with lexical:0.5 when the run reports one, and nothing when not."""
    auc = {"value": 0.092, "auc_a": 0.789, "auc_b": 0.697, "ci_low": 0.029, "ci_high": 0.156}
    line = _ranking({"versus_lexical": {"auc_difference": auc}})
    assert line == "; ranking AUC 0.789 vs 0.697, difference 0.092 [0.029, 0.156]"
    none = {"value": None, "auc_a": None, "auc_b": None, "ci_low": None, "ci_high": None}
    assert _ranking({"versus_lexical": {"auc_difference": none}}) == ""
    assert _ranking({"versus_lexical": {}}) == ""  # a run from before the comparison existed
