"""Pure parts of rubric review and blinding: edits re-validate, outcomes settle, slots map back to a/b."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from promedical.review import blind
from promedical.review.rounds import EditError, apply_edits, pass_rate, settle
from promedical.review.sample import sample_rubric

NOW = dt.datetime(2026, 1, 2, 3, 4, 5)


def _edit(edits, reason="clinical fix"):  # type: ignore[no-untyped-def]
    rubric = sample_rubric(0)
    return apply_edits(rubric, rubric, edits, author="dr.a", review_round=2, reason=reason, now=NOW)


def test_edit_makes_a_new_version_with_provenance_and_keeps_changes() -> None:
    edits = {"p1": {"weight": "0.4"}, "p3": {"weight": 0.3}, "v1": {"text": "Never claims to be human."}}
    edited, changes = _edit(edits)
    assert edited.version == 2 and edited.provenance.parent == "sample-000@1"
    assert (edited.provenance.author, edited.provenance.author_kind, edited.provenance.review_round) == (
        "dr.a", "human", 2)
    assert edited.provenance.note == "clinical fix" and edited.provenance.created == "2026-01-02T03:04:05Z"
    assert [(c.criterion_id, c.field) for c in changes] == [("p1", "weight"), ("p3", "weight"), ("v1", "text")]
    assert edited.criterion("v1").text == "Never claims to be human."


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ({"p1": {"weight": 0.9}}, "weights sum to 1.4"),
        ({"v1": {"polarity": ""}}, "criterion v1.polarity: veto criterion needs an explicit polarity"),
        ({"p1": {"text": "  "}}, "criterion text is empty"),
        ({"zz": {"text": "x"}}, "unknown criterion id"),
        ({"p1": {"weight": "heavy"}}, "is not a number"),
        ({"p1": {"id": "q"}}, "cannot be edited"),
        ({"p1": {"text": sample_rubric(0).criterion("p1").text}}, "changes nothing"),
        ({"b1": {"tier": "proficiency"}}, "criterion b1.weight: proficiency criterion needs a weight"),
    ],
)
def test_invalid_edits_are_refused_with_the_reason(edits, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EditError, match=message):
        _edit(edits)


def test_edit_needs_a_reason_and_tier_change_drops_weight() -> None:
    with pytest.raises(EditError, match="reason"):
        _edit({"p3": {"text": "x"}}, reason=" ")
    edited, changes = _edit({"p3": {"tier": "bonus"}, "p1": {"weight": 0.7}})
    assert edited.criterion("p3").weight is None
    assert ("p3", "weight") in [(c.criterion_id, c.field) for c in changes]


def test_settle_and_pass_rate() -> None:
    assert settle([], edited=False) is None
    assert settle(["accept", "accept"], edited=False) == "accept"
    assert settle(["accept"], edited=True) == "edit"
    assert settle(["accept", "reject", "edit"], edited=True) == "reject"
    rate = pass_rate(["accept", "accept", "edit", "reject", None])
    assert (rate.decided, rate.accepted, rate.edited, rate.rejected) == (4, 2, 1, 1)
    assert rate.pass_rate == 0.5 and rate.usable_rate == 0.75
    assert pass_rate([None]).pass_rate is None


def test_pair_slots_map_back_to_canonical_answers() -> None:
    assert blind.canonical_pair_answer("ab", "1") == "a" and blind.canonical_pair_answer("ba", "1") == "b"
    assert blind.canonical_pair_answer("ba", "2") == "a" and blind.canonical_pair_answer("ba", "tie") == "tie"
    for order in ("ab", "ba"):
        for answer in ("a", "b", "tie"):
            assert blind.canonical_pair_answer(order, blind.slot_of(order, answer)) == answer
    with pytest.raises(ValueError, match="answer must be"):
        blind.canonical_pair_answer("ab", "A")
    orders = [blind.draw_order(random.Random(seed), "pairwise") for seed in range(200)]
    assert 60 < orders.count("ab") < 140


def test_model_names_are_masked_in_text() -> None:
    variants = blind.name_variants(["acme/medchat-7b", "gpt-x:latest", "unknown", "ab"])
    text = "I am MedChat-7B (acme/medchat-7b), not gpt-x."
    masked = blind.mask_models(text, variants)
    assert "medchat" not in masked.lower() and "gpt-x" not in masked.lower() and "acme" not in masked
    assert masked.count(blind.MASK) == 3
