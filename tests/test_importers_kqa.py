"""K-QA import: tiers and equal weights, stable ids, statement clean-up counts, the physician answer, real data."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from promedical.io import read_responses, read_rubrics
from promedical.rubrics.importers import import_kqa, kqa_rubric_id, split_statements
from promedical.rubrics.schema import Tier
from tests.helpers_importers import KQA, KQA_NLI, KQA_QUESTIONS, last_json, run_cli, shared, write_rows


def kqa_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Question": "Is  it safe to take ibuprofen with lisinopril?",
        "Free_form_answer": "Usually for short courses, but ask your doctor.",
        "Must_have": [
            " NSAIDs such as ibuprofen can reduce the effect of lisinopril.",
            "",
            "- Take the lowest dose for the shortest time.Check your blood pressure while taking both",
            "NSAIDs such as ibuprofen can reduce the effect of lisinopril",  # duplicate of the first
        ],
        "Nice_to_have": ['"Acetaminophen is an alternative for pain"', "nsaids such as ibuprofen can reduce the effect "
                         "of lisinopril."],
        "Sources": "https://example.org/x",
        "ICD_10_diag": "Essential (primary) hypertension",
    }
    row.update(overrides)
    return row


def test_statements_become_tiers_with_equal_weights_and_source_indexed_ids(tmp_path: Path) -> None:
    result = import_kqa(write_rows(tmp_path / "k.jsonl", [kqa_row()]))
    assert not result.problems and not result.skipped
    (rubric,) = result.rubrics
    assert rubric.id == kqa_rubric_id("Is it safe to take ibuprofen with lisinopril?")
    assert rubric.prompt[0].content == "Is it safe to take ibuprofen with lisinopril?"
    assert [(c.id, c.tier, c.text) for c in rubric.criteria] == [
        ("must-0", Tier.PROFICIENCY, "NSAIDs such as ibuprofen can reduce the effect of lisinopril."),
        ("must-2.1", Tier.PROFICIENCY, "Take the lowest dose for the shortest time."),
        ("must-2.2", Tier.PROFICIENCY, "Check your blood pressure while taking both"),
        ("nice-0", Tier.BONUS, "Acetaminophen is an alternative for pain"),
    ]
    weights = [c.weight for c in rubric.by_tier(Tier.PROFICIENCY)]
    assert weights == pytest.approx([1 / 3] * 3) and math.isclose(math.fsum(w or 0 for w in weights), 1.0)
    assert rubric.meta.source == "kqa" and rubric.meta.license == "MIT"
    assert rubric.meta.extra["icd10_diagnosis"] == "Essential (primary) hypertension"
    assert rubric.meta.extra["statements"]["must-2.2"] == kqa_row()["Must_have"][2]
    assert result.summary()["notes"] == {
        "statements_cleaned": 2,
        "statements_dropped_duplicate": 2,
        "statements_dropped_empty": 1,
        "statements_from_splits": 2,
        "statements_split": 1,
    }
    (answer,) = result.responses
    assert answer.model == "kqa-physician" and answer.rubric_id == rubric.id
    assert not result.verdicts


def test_ids_are_stable_across_runs_and_whitespace(tmp_path: Path) -> None:
    first = import_kqa(write_rows(tmp_path / "a.jsonl", [kqa_row()]))
    again = import_kqa(write_rows(tmp_path / "b.jsonl", [kqa_row(Question=" Is it safe to take ibuprofen with "
                                                                          "lisinopril?\n")]))
    assert first.rubrics == again.rubrics
    assert first.responses == again.responses


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        ({"Must_have": []}, "no_must_have"),
        ({"Must_have": None}, "no_must_have"),
        ({"Must_have": ["  ", "- ", '""']}, "no_usable_must_have"),
    ],
)
def test_question_without_usable_must_have_is_skipped(tmp_path: Path, overrides: dict[str, Any], kind: str) -> None:
    result = import_kqa(write_rows(tmp_path / "k.jsonl", [kqa_row(**overrides)]))
    assert not result.rubrics and not result.problems
    assert [s.kind for s in result.skipped] == [kind]


def test_duplicate_question_is_skipped(tmp_path: Path) -> None:
    result = import_kqa(write_rows(tmp_path / "k.jsonl", [kqa_row(), kqa_row(Must_have=["Other statement here"])]))
    assert len(result.rubrics) == 1
    assert [(s.line, s.kind) for s in result.skipped] == [(2, "duplicate_question")]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"Question": None}, "Question"),
        ({"Question": ["q"]}, "Question"),
        ({"Must_have": "one statement"}, "Must_have"),
        ({"Must_have": ["ok statement", 3]}, "Must_have.1"),
        ({"Nice_to_have": {"a": 1}}, "Nice_to_have"),
        ({"Free_form_answer": 12}, "Free_form_answer"),
    ],
)
def test_bad_rows_are_problems(tmp_path: Path, overrides: dict[str, Any], field: str) -> None:
    result = import_kqa(write_rows(tmp_path / "k.jsonl", [kqa_row(**overrides)]))
    (problem,) = result.problems
    assert problem.line == 1 and problem.field == field


# ---- the shared data ----------------------------------------------------------------------------------------------


def test_shared_kqa_imports_all_201_questions() -> None:
    result = import_kqa(shared(KQA))
    summary = result.summary()
    assert (summary["rows"], summary["rubrics"], summary["skipped"], summary["bad_rows"]) == (201, 201, 0, 0)
    # 892 Must_have: 3 blank ones dropped, one holding two sentences split in two; 697 Nice_to_have unchanged.
    assert summary["criteria_by_tier"] == {"proficiency": 890, "bonus": 697, "veto": 0}
    assert summary["notes"] == {"statements_cleaned": 1, "statements_dropped_empty": 3,
                                "statements_from_splits": 2, "statements_split": 1}
    assert len(result.responses) == 201 and {r.model for r in result.responses} == {"kqa-physician"}
    for rubric in result.rubrics:
        weights = [c.weight or 0.0 for c in rubric.by_tier(Tier.PROFICIENCY)]
        assert math.isclose(math.fsum(weights), 1.0, abs_tol=1e-12) and len(set(weights)) == 1


def test_questions_without_answers_are_all_skipped() -> None:
    result = import_kqa(shared(KQA_QUESTIONS))
    assert not result.rubrics and result.summary()["skipped_by_reason"] == {"no_must_have": 1212}


def test_every_physician_nli_claim_maps_to_criteria_of_its_rubric() -> None:
    """The labels matched later: each annotated claim (split like criteria) is found among its rubric's sources."""
    rubrics = {r.id: r for r in import_kqa(shared(KQA)).rubrics}
    with shared(KQA_NLI).open(encoding="utf-8", newline="") as handle:
        claims = list(csv.DictReader(handle))
    assert len(claims) == 251
    for claim in claims:
        rubric = rubrics[kqa_rubric_id(claim["Question"])]
        sources = {" ".join(s.split()) for s in rubric.meta.extra["statements"].values()}
        texts = {c.text for c in rubric.criteria}
        parts = split_statements(claim["claim"])
        assert parts
        assert all(p in sources or p in texts for p in parts), claim["claim"]


def test_cli_import_then_validate(tmp_path: Path) -> None:
    out, answers = tmp_path / "kqa.jsonl", tmp_path / "answers.jsonl"
    done = run_cli("rubrics", "import", "-f", "kqa", shared(KQA), "-o", out, "--responses-out", answers, "--json")
    assert done.returncode == 0, done.stderr
    assert last_json(done.stdout)["rubrics"] == 201
    assert len(read_rubrics([out])) == 201 and len(read_responses(answers)) == 201
    checked = run_cli("rubrics", "validate", out, "--json")
    assert checked.returncode == 0 and last_json(checked.stdout)["ok"] is True
    again = tmp_path / "again.jsonl"
    assert run_cli("rubrics", "import", "-f", "kqa", KQA, "-o", again).returncode == 0
    assert again.read_bytes() == out.read_bytes()  # stable across runs, byte for byte
    assert all(json.loads(line)["id"].startswith("kqa-") for line in out.read_text(encoding="utf-8").splitlines())
