"""K-QA JSONL -> rubrics (Must_have -> proficiency with equal weights, Nice_to_have -> bonus).

K-QA rows are real patient questions with physician-written statements. The statements are cleaned with
``normalise`` (whitespace, bullets, stray quotes), statements that clearly hold several sentences are split,
and empty or duplicate statements are dropped; every change is counted in the import report.

Ids are stable across runs and independent of the clean-up rules, because the K-QA physician NLI labels are
matched against these rubrics later:

* rubric id ``kqa-<16 hex>``: SHA-256 of the question with whitespace collapsed;
* criterion id ``must-<i>`` / ``nice-<i>`` with ``i`` the statement's position in the source list, and
  ``must-<i>.<k>`` (k = 1, 2, ...) for the parts of a split statement;
* ``meta.extra["statements"]`` maps each criterion id to the source statement it came from, verbatim.

A question without Must_have statements (all of ``questions.jsonl``) is skipped with a reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from promedical.hashing import content_hash
from promedical.io import Problem
from promedical.rubrics.importers.normalise import (
    normalise_statement,
    normalise_whitespace,
    split_statements,
    statement_key,
)
from promedical.rubrics.importers.result import (
    FieldError,
    ImportResult,
    Skip,
    Skipped,
    get_str,
    get_str_list,
    iter_rows,
    validation_field,
)
from promedical.rubrics.records import Response
from promedical.rubrics.schema import Criterion, Message, Provenance, Rubric, RubricMeta, Tier, normalise_weights

SOURCE = "kqa"
LICENSE = "MIT"
PHYSICIAN_MODEL = "kqa-physician"
LISTS = (("Must_have", "must", Tier.PROFICIENCY), ("Nice_to_have", "nice", Tier.BONUS))


def kqa_rubric_id(question: str) -> str:
    """The rubric id for a K-QA question: stable under whitespace differences only."""
    return "kqa-" + content_hash(normalise_whitespace(question))


def clean_statements(raw: list[str], prefix: str, seen: set[str], notes: dict[str, int]) -> list[tuple[str, str, str]]:
    """``(criterion id, clean text, source text)`` per usable statement; ``seen`` holds keys across both lists."""
    out = []
    for index, source in enumerate(raw):
        clean = normalise_statement(source)
        if clean != normalise_whitespace(source):
            notes["statements_cleaned"] = notes.get("statements_cleaned", 0) + 1
        parts = [normalise_statement(p) for p in split_statements(clean)]
        parts = [p for p in parts if p]
        if not parts:
            notes["statements_dropped_empty"] = notes.get("statements_dropped_empty", 0) + 1
            continue
        if len(parts) > 1:
            notes["statements_split"] = notes.get("statements_split", 0) + 1
            notes["statements_from_splits"] = notes.get("statements_from_splits", 0) + len(parts)
        for part_no, part in enumerate(parts, start=1):
            key = statement_key(part)
            if key in seen:
                notes["statements_dropped_duplicate"] = notes.get("statements_dropped_duplicate", 0) + 1
                continue
            seen.add(key)
            criterion_id = f"{prefix}-{index}" if len(parts) == 1 else f"{prefix}-{index}.{part_no}"
            out.append((criterion_id, part, source))
    return out


def parse_row(row: dict[str, Any], notes: dict[str, int]) -> tuple[Rubric, Response | None] | Skip:
    """One K-QA row -> rubric and the physician's answer; raises ``FieldError`` on bad input."""
    question = get_str(row, "Question")
    assert question is not None
    rubric_id = kqa_rubric_id(question)
    must_raw = get_str_list(row, "Must_have", required=False)
    nice_raw = get_str_list(row, "Nice_to_have", required=False) or []
    if not must_raw:
        return Skip("no_must_have", "no Must_have statements (a question without a physician answer)")
    seen: set[str] = set()
    cleaned = {key: clean_statements(values, prefix, seen, notes)
               for (key, prefix, _), values in zip(LISTS, (must_raw, nice_raw), strict=True)}
    if not cleaned["Must_have"]:
        return Skip("no_usable_must_have", f"all {len(must_raw)} Must_have statements are empty or duplicates")
    weights = normalise_weights([1.0] * len(cleaned["Must_have"]))
    statements = {criterion_id: source for key, _, _ in LISTS for criterion_id, _, source in cleaned[key]}
    extra: dict[str, Any] = {"statements": statements}
    for field, name in (("ICD_10_diag", "icd10_diagnosis"), ("Sources", "sources")):
        value = row.get(field)
        if value is not None:
            extra[name] = value
    try:
        criteria = [
            Criterion(id=criterion_id, tier=tier, text=text, weight=weights[n] if tier is Tier.PROFICIENCY else None,
                      tags=(f"kqa:{key.lower()}",))
            for key, _, tier in LISTS
            for n, (criterion_id, text, _) in enumerate(cleaned[key])
        ]
        rubric = Rubric(
            id=rubric_id,
            prompt=(Message(role="user", content=normalise_whitespace(question)),),
            criteria=tuple(criteria),
            meta=RubricMeta(source=SOURCE, license=LICENSE, extra=extra),
            provenance=Provenance(author=SOURCE, author_kind="import"),
        )
    except ValidationError as exc:
        raise validation_field(exc) from None
    answer = get_str(row, "Free_form_answer", required=False, blank_ok=True)
    response = None
    if answer is not None and answer.strip():
        response = Response.build(rubric_id, PHYSICIAN_MODEL, answer.strip(), source=SOURCE)
    return rubric, response


def import_kqa(path: str | Path) -> ImportResult:
    """Read a K-QA JSONL file (``questions_w_answers.jsonl`` or ``questions.jsonl``)."""
    result = ImportResult(source=SOURCE)
    shown = str(path)
    first_line: dict[str, int] = {}
    notes: dict[str, int] = {}
    for number, row in iter_rows(path, result):
        question = row.get("Question")
        record_id = kqa_rubric_id(question) if isinstance(question, str) and question.strip() else "-"
        row_notes: dict[str, int] = {}
        try:
            outcome = parse_row(row, row_notes)
        except FieldError as exc:
            result.problems.append(Problem(shown, number, record_id, exc.field, exc.message))
            continue
        if isinstance(outcome, Skip):
            result.skipped.append(Skipped(shown, number, record_id, outcome.kind, outcome.detail))
            continue
        rubric, response = outcome
        if rubric.id in first_line:
            result.skipped.append(Skipped(shown, number, record_id, "duplicate_question",
                                          f"same question already imported from line {first_line[rubric.id]}"))
            continue
        first_line[rubric.id] = number
        for key, value in row_notes.items():
            notes[key] = notes.get(key, 0) + value
        result.rubrics.append(rubric)
        if response is not None:
            result.responses.append(response)
    result.notes.update(notes)
    return result
