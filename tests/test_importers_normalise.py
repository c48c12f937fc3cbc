"""Statement clean-up: hand-made messy strings, the conservative splitter, idempotence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promedical.rubrics.importers.normalise import (
    normalise_statement,
    normalise_whitespace,
    split_statements,
    statement_key,
    strip_stray_quotes,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Take  ibuprofen\twith\nfood ", "Take ibuprofen with food"),
        ("Take\u00a0ibuprofen\u200b with food", "Take ibuprofen with food"),
        ("- Take ibuprofen with food", "Take ibuprofen with food"),
        ("• Take ibuprofen with food", "Take ibuprofen with food"),
        ("•Take ibuprofen with food", "Take ibuprofen with food"),
        ("* Take ibuprofen with food", "Take ibuprofen with food"),
        ("1. Take ibuprofen with food", "Take ibuprofen with food"),
        ("2) Take ibuprofen with food", "Take ibuprofen with food"),
        ('"Take ibuprofen with food"', "Take ibuprofen with food"),
        ("“Take ibuprofen with food.”", "Take ibuprofen with food."),
        ('"Take ibuprofen with food', "Take ibuprofen with food"),
        ('Take ibuprofen with food."', "Take ibuprofen with food."),
        ("'Take ibuprofen with food'", "Take ibuprofen with food"),
        ("Chlamydia treatment includes an antibiotic course,", "Chlamydia treatment includes an antibiotic course"),
        ("; Seek care if the fever lasts 3 days", "Seek care if the fever lasts 3 days"),
        ('- "Rest may help"', "Rest may help"),
    ],
)
def test_messy_statements_are_cleaned(raw: str, clean: str) -> None:
    assert normalise_statement(raw) == clean


@pytest.mark.parametrize(
    "kept",
    [
        "The 'BRAT' diet (bananas, rice, applesauce, and toast) can provide suboptimal nutrition",
        "In cases of diarrhea, it shouldn't be used for more than 24 hours.",
        "The patient's allergies are an important factor in determining the right antibiotic agent.",
        "The parents' consent is needed",
        'The so-called "silent" heart attack has few symptoms',
        "5 mg of drug X is the usual dose",
        "-5 degrees is too cold for the vaccine",
        "Low dose Ketoconazole (Regenepure, Pura D'or) is a sulfate-free antifungal shampoo",
    ],
)
def test_legitimate_quotes_numbers_and_apostrophes_are_kept(kept: str) -> None:
    assert normalise_statement(kept) == kept


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        # missing space after the full stop: the case seen in K-QA annotation claims
        (
            "Safety of Ivermectin in pregnant individuals has not been established yet.Ivermectin (Stromectol) is "
            "not safe for children under 15kg",
            [
                "Safety of Ivermectin in pregnant individuals has not been established yet.",
                "Ivermectin (Stromectol) is not safe for children under 15kg",
            ],
        ),
        ("Take the tablet once daily.Take it with food.", ["Take the tablet once daily.", "Take it with food."]),
        (
            "Common variable immunodeficiency is a primary immunodeficiency. Pregnancy can weaken immunity.",
            ["Common variable immunodeficiency is a primary immunodeficiency.", "Pregnancy can weaken immunity."],
        ),
        ("First sentence is here! Second sentence is here? Third one ends here.",
         ["First sentence is here!", "Second sentence is here?", "Third one ends here."]),
    ],
)
def test_glued_sentences_are_split(text: str, parts: list[str]) -> None:
    assert split_statements(text) == parts


@pytest.mark.parametrize(
    "text",
    [
        "Antacids such as calcium carbonate, e.g. Tums are quick to act",
        "Ask Dr. Smith about the dose of the drug",
        "St. John's wort interacts with many antidepressants",
        "Use drugs.com or www.Medline.gov to check the interactions",
        "Take it daily. It works best in the morning.",  # the second sentence leans on the first
        "Take it daily. This helps the absorption of the drug.",
        "Seek care now. Call 911.",  # too short to be two statements
        "Treatment with Vitamin D. Sunlight is another source of it",  # capitalised token before the full stop
        "The dose is 2.5 mg twice a day",
        "Compare ibuprofen vs. Tylenol for your pain",
        "Escitalopram is an SSRI",
        "Ivermectin is used for scabies.FDA approval is recent",  # acronym after the stop: not a clear sentence
    ],
)
def test_splitter_is_conservative(text: str) -> None:
    assert split_statements(text) == [text]


def test_empty_and_blank_statements_give_nothing() -> None:
    assert split_statements("") == []
    assert split_statements("  \n\t ") == []
    assert normalise_statement(" - ") == ""
    assert normalise_statement('""') == ""


def test_statement_key_ignores_case_spacing_and_end_punctuation() -> None:
    assert statement_key("Rest may  help.") == statement_key("rest may help")
    assert statement_key("Rest may help") != statement_key("Rest may not help")


def test_strip_stray_quotes_keeps_balanced_inner_quotes() -> None:
    assert strip_stray_quotes('"The "silent" attack is real"') == 'The "silent" attack is real'


text_strategy = st.text(
    alphabet=st.sampled_from(list("abcXYZ .,;:!?'\"-*•()12\n\t\u00a0")), min_size=0, max_size=60
)


@given(text_strategy)
def test_normalisation_is_idempotent_and_never_adds_text(text: str) -> None:
    once = normalise_statement(text)
    assert normalise_statement(once) == once
    assert len(once) <= len(normalise_whitespace(text))
    for part in split_statements(once):
        assert part and part == part.strip()
        assert part in once
        assert split_statements(part) == [part]  # a part never splits further
