"""Judge answer parsing: adversarial model outputs become answers or reasons, never exceptions or fake verdicts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promedical.judge.parse import Answer, extract_json, parse_grouped, parse_pairwise, parse_single
from promedical.judge.prompts import (
    POINTWISE_GROUPED_TERSE_V1,
    POINTWISE_GROUPED_V1,
    POINTWISE_GROUPED_V2,
    answer_schema,
)

LABELS = ["C1", "C2", "C3"]


def _grouped(*items: object) -> str:
    return json.dumps({"verdicts": list(items)})


def test_complete_answer() -> None:
    text = _grouped({"id": "C1", "met": True, "explanation": "yes"}, {"id": "C2", "met": False},
                    {"id": "C3", "met": True})
    parsed = parse_grouped(text, LABELS)
    assert {k: a.met for k, a in parsed.answers.items()} == {"C1": True, "C2": False, "C3": True}
    assert parsed.answers["C1"].explanation == "yes" and not parsed.problems


def test_code_fence_and_trailing_text() -> None:
    text = "Sure!\n```json\n" + _grouped({"id": "C1", "met": True}) + "\n```\nHope this helps {not json"
    parsed = parse_grouped(text, LABELS)
    assert set(parsed.answers) == {"C1"}
    assert parsed.problems == dict.fromkeys(["C2", "C3"], "no verdict for this id in the answer")
    trailing = _grouped({"id": "C2", "met": False}) + " and that is my verdict."
    assert parse_grouped(trailing, LABELS).answers["C2"].met is False


def test_invented_ids_are_ignored_and_reported() -> None:
    parsed = parse_grouped(_grouped({"id": "C9", "met": True}, {"id": "criterion_1", "met": True},
                                    {"id": "C1", "met": False}), LABELS)
    assert set(parsed.answers) == {"C1"} and len(parsed.ignored) == 2
    assert set(parsed.problems) == {"C2", "C3"}


def test_duplicates_agreeing_are_kept_contradicting_are_unscored() -> None:
    parsed = parse_grouped(_grouped({"id": "C1", "met": True}, {"id": "c1", "met": True},
                                    {"id": "C2", "met": True}, {"id": "C2", "met": False}), LABELS)
    assert parsed.answers["C1"].met is True
    assert "contradictory" in parsed.problems["C2"]


@pytest.mark.parametrize("value", ["yes", 1, None, [True], {"v": True}, "maybe"])
def test_wrong_types_are_unscored_never_unmet(value: object) -> None:
    parsed = parse_grouped(_grouped({"id": "C1", "met": value}), LABELS)
    assert "C1" not in parsed.answers and "not a boolean" in parsed.problems["C1"]


def test_boolean_strings_are_accepted() -> None:
    parsed = parse_grouped(_grouped({"id": "C1", "met": "TRUE"}, {"id": "C2", "met": "false"}), LABELS)
    assert parsed.answers["C1"].met is True and parsed.answers["C2"].met is False


def test_truncated_json_leaves_every_label_unscored_with_reason() -> None:
    text = _grouped({"id": "C1", "met": True}, {"id": "C2", "met": False})[:-12]
    parsed = parse_grouped(text, LABELS)
    assert not parsed.answers and set(parsed.problems) == set(LABELS)
    assert all("truncated or malformed JSON" in p for p in parsed.problems.values())


@pytest.mark.parametrize("text", ["", "   ", "I think all criteria are met.", "[1, 2, 3]", '{"answer": "yes"}',
                                  '"just a string"', "null"])
def test_unusable_answers(text: str) -> None:
    parsed = parse_grouped(text, LABELS)
    assert not parsed.answers and set(parsed.problems) == set(LABELS)


def test_other_shapes_and_aliases() -> None:
    as_list = json.dumps([{"id": "C1", "met": True}])
    as_map = json.dumps({"C2": {"met": False}, "C3": {"criteria_met": True}})
    assert parse_grouped(as_list, LABELS).answers["C1"].met is True
    mapped = parse_grouped(as_map, LABELS)
    assert mapped.answers["C2"].met is False and mapped.answers["C3"].met is True
    aliased = parse_grouped(_grouped({"id": "hb-7", "met": True}), LABELS, aliases={"hb-7": "C3"})
    assert aliased.answers["C3"].met is True


def test_single() -> None:
    answer, problem = parse_single('```json\n{"explanation": "ok", "criteria_met": false}\n```')
    assert answer is not None and answer.met is False and problem is None
    assert parse_single('{"explanation": "ok"}') == (None, "answer has no 'criteria_met'")
    assert parse_single('{"criteria_met": "perhaps"}')[0] is None
    assert parse_single('{"criteria_met": tr')[0] is None


def test_pairwise() -> None:
    assert parse_pairwise('{"explanation": "x", "winner": "B"}')[0] == "B"
    assert parse_pairwise('{"winner": "tie"}')[0] == "tie"
    assert parse_pairwise("A is safer. [[A]]")[0] == "A"
    assert parse_pairwise("Both equal [[C]]")[0] == "tie"
    winner, _, problem = parse_pairwise("[[A]] no wait [[B]]")
    assert winner is None and problem and "ambiguous" in problem
    assert parse_pairwise('{"winner": "both"}')[0] is None
    assert parse_pairwise("I prefer the first one.")[0] is None


def test_extract_json_prefers_whole_text() -> None:
    assert extract_json('{"a": 1}') == ({"a": 1}, None)
    assert extract_json("x {") [0] is None


@given(st.text(max_size=300))
def test_arbitrary_text_never_raises_and_accounts_for_every_label(text: str) -> None:
    parsed = parse_grouped(text, LABELS)
    assert set(parsed.answers) | set(parsed.problems) == set(LABELS)
    assert not set(parsed.answers) & set(parsed.problems)
    parse_single(text)
    parse_pairwise(text)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
                        ["id", "met", "verdicts", "C1", "explanation", "criteria_met"]), inner, max_size=4),
                    max_leaves=20))
def test_arbitrary_json_never_raises(value: object) -> None:
    parsed = parse_grouped(json.dumps(value), LABELS)
    assert set(parsed.answers) | set(parsed.problems) == set(LABELS)


def test_keyed_answers_of_template_2() -> None:
    text = json.dumps({"C1": {"explanation": "a", "met": True}, "C2": False, "C3": {"met": "no"}, "C7": {"met": True}})
    parsed = parse_grouped(text, LABELS)
    assert parsed.answers["C1"] == Answer(True, "a") and parsed.answers["C2"].met is False
    assert "not a boolean" in parsed.problems["C3"] and any("C7" in note for note in parsed.ignored)


def test_grouped_schemas_require_every_label() -> None:
    keyed = answer_schema(POINTWISE_GROUPED_V2, LABELS)
    assert keyed["required"] == LABELS and keyed["additionalProperties"] is False
    listed = answer_schema(POINTWISE_GROUPED_V1, LABELS)
    items = listed["properties"]["verdicts"]
    assert items["minItems"] == items["maxItems"] == 3 and items["items"]["properties"]["id"]["enum"] == LABELS


def test_terse_template_asks_for_one_boolean_per_label_and_parses_without_explanations() -> None:
    schema = answer_schema(POINTWISE_GROUPED_TERSE_V1, LABELS)
    assert schema["required"] == LABELS and schema["additionalProperties"] is False
    assert all(schema["properties"][label] == {"type": "boolean"} for label in LABELS)
    parsed = parse_grouped('{"C1": true, "C2": false, "C3": "maybe"}', LABELS)
    assert parsed.answers == {"C1": Answer(True, None), "C2": Answer(False, None)}
    assert "not a boolean" in parsed.problems["C3"]
