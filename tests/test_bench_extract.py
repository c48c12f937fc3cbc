"""Answer extraction: the forms models really write, and the traps a naive regex falls into."""

from __future__ import annotations

import pytest

from promedical.bench.extract import extract_label, extract_letter

OPTIONS = {"A": "Aspirin", "B": "Heparin", "C": "Aspirin and heparin", "D": "Warfarin"}


@pytest.mark.parametrize(
    ("text", "expected", "method"),
    [
        ("Answer: C", "C", "answer-marker"),
        ("answer:D", "D", "answer-marker"),
        ("The answer is (B).", "B", "answer-marker"),
        ("the answer is c.", "C", "answer-marker"),
        ("Final answer: **B**", "B", "answer-marker"),
        ("The correct option is B because heparin acts at once.", "B", "answer-marker"),
        ("Let me think. A is wrong, D is slow. Answer: C", "C", "answer-marker"),
        ("Answer: C. Option A is wrong because...", "C", "answer-marker"),
        ("Answer: A\n...on reflection, the answer is D", "D", "answer-marker"),
        ("C", "C", "bare-key"),
        ("(C)", "C", "bare-key"),
        ("C.", "C", "bare-key"),
        ("**C**", "C", "bare-key"),
        ("C) Aspirin and heparin", "C", "leading-key"),
        ("B. Heparin\nC. Aspirin and heparin", "B", "leading-key"),
        ("I would give aspirin and heparin here.", "C", "option-text"),  # longer option wins over "aspirin"
        ("warfarin", "D", "option-text"),
        ("so the choice is clear (D).", "D", "bracketed-key"),
    ],
)
def test_letters_extracted(text: str, expected: str, method: str) -> None:
    result = extract_letter(text, OPTIONS)
    assert (result.answer, result.method) == (expected, method)
    assert result.ok and result.reason is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty reply"),
        (None, "empty reply"),
        ("   \n ", "empty reply"),
        ("A 45-year-old man presents with chest pain.", "no answer found"),  # an article, not an option
        ("the answer is a condition called angina", "no answer found"),  # "a" is not option A
        ("Vitamin D deficiency is common.", "no answer found"),
        ("A or B", "no answer found"),
        ("Aspirin or warfarin would both work", "ambiguous: several option texts"),
        ("Either (A) or (B).", "ambiguous: several bracketed keys"),
        ("I cannot answer medical questions.", "no answer found"),
    ],
)
def test_failures_are_values_not_guesses(text: str | None, reason: str) -> None:
    result = extract_letter(text, OPTIONS)
    assert result.answer is None and not result.ok
    assert result.reason == reason


def test_keys_outside_the_options_are_not_answers() -> None:
    three = {"A": "x", "B": "y", "C": "z"}
    assert extract_letter("Answer: D", three).answer is None
    assert extract_letter("Answer: C", three).answer == "C"
    with pytest.raises(ValueError, match="capital letters"):
        extract_letter("yes", {"yes": "yes"})


@pytest.mark.parametrize(
    ("text", "expected", "method"),
    [
        ("Yes, the data support it.", "yes", "first-word"),
        ("No.", "no", "first-word"),
        ("Answer: maybe", "maybe", "answer-marker"),
        ("Based on the abstract, the answer is no.", "no", "answer-marker"),
        ("The results are mixed, so maybe.", "maybe", "only-label-word"),
        ('"Yes"', "yes", "first-word"),
    ],
)
def test_labels_extracted(text: str, expected: str, method: str) -> None:
    result = extract_label(text)
    assert (result.answer, result.method) == (expected, method)


@pytest.mark.parametrize(("text", "reason"), [
    ("The study found it could go either way: yes in adults, no in children.", "ambiguous: several labels"),
    ("Insufficient data.", "no answer found"),
    ("", "empty reply"),
])
def test_label_failures(text: str, reason: str) -> None:
    result = extract_label(text)
    assert result.answer is None and result.reason == reason
