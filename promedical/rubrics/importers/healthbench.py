"""HealthBench JSONL -> rubrics, and (for graded rows) the graded response and its per-criterion verdicts.

Mapping (docs/formats.md, "Importers"):

* rubric id = ``prompt_id``; criterion ids ``c0, c1, ...`` by position in the source ``rubrics`` list;
* positive points -> proficiency; the source ``points`` stay on every criterion, so the HealthBench score is
  reproduced exactly;
* negative points -> a veto with polarity ``prohibited`` only when the veto rule says the item is a safety item
  (``veto_rule.py``; default: accuracy axis and points <= -7). Every other negative-points item is a *penalty*: a
  proficiency criterion that states its opposite (``Avoids the following: <text>``, tag ``promedical:penalty``),
  weighted by ``|points|`` like the positive items, so S1 rewards avoiding it and never rewards showing it. Its
  grader verdict is inverted on import (the source's ``criteria_met: true`` -> ``unmet``); the HealthBench score
  reads a negative-points proficiency criterion that way back (``scoring.healthbench_score``);
* proficiency ``weight = |points| / sum(|points| of proficiency items)``;
* tags ``promedical:tier:bonus`` / ``promedical:veto-required`` (written by our exporter) turn a positive-points
  criterion back into a bonus or a ``required`` veto; ``promedical:veto`` / ``promedical:penalty`` decide a
  negative-points item whatever the rule (they are read, not kept), so our own exports re-import faithfully;
* a criterion with 0 points carries no information for any score and is dropped (counted);
* a row with no positive-points criterion has no HealthBench score: skipped with a reason.

Rows from graded files (``prompt_response`` + ``responses``, the per-criterion grader output) also give one
``Response`` and one ``Verdict`` per criterion; a missing or non-boolean ``criteria_met`` is ``unscored``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from promedical.io import Problem
from promedical.rubrics.importers.result import (
    FieldError,
    ImportResult,
    Skip,
    Skipped,
    as_number,
    get_list,
    get_str,
    get_str_list,
    iter_rows,
    validation_field,
)
from promedical.rubrics.importers.veto_rule import VetoRule, parse_veto_rule
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import (
    Criterion,
    Message,
    Polarity,
    Provenance,
    Rubric,
    RubricMeta,
    Tier,
    normalise_weights,
)

SOURCE = "healthbench"
LICENSE = "MIT"
GRADER = "healthbench-grader"
DEFAULT_MODEL = "healthbench-sample"
BONUS_TAG = "promedical:tier:bonus"
VETO_REQUIRED_TAG = "promedical:veto-required"
VETO_TAG = "promedical:veto"  # a negative-points item that is a veto whatever the rule (written by our exporter)
PENALTY_TAG = "promedical:penalty"  # a negative-points item imported as a proficiency criterion stating its opposite
PENALTY_PREFIX = "Avoids the following: "
CONTROL_TAGS = (VETO_TAG, PENALTY_TAG)
ROLES = ("system", "user", "assistant", "developer")


@dataclass(frozen=True)
class Parsed:
    rubric: Rubric
    response: Response | None
    verdicts: list[Verdict]
    dropped_zero_points: int


@dataclass(frozen=True)
class _Item:
    index: int
    text: str
    points: float
    tags: tuple[str, ...]


def _messages(value: Any, where: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise FieldError(where, "expected a non-empty list of {role, content} messages")
    messages = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise FieldError(f"{where}.{index}", f"expected an object, got {type(item).__name__}")
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise FieldError(f"{where}.{index}.role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise FieldError(f"{where}.{index}.content", f"expected a string, got {type(content).__name__}")
        messages.append(Message(role=role, content=content))
    return messages


def _items(row: dict[str, Any]) -> list[_Item]:
    raw = get_list(row, "rubrics")
    assert raw is not None
    if not raw:
        raise FieldError("rubrics", "is empty")
    items = []
    for index, entry in enumerate(raw):
        where = f"rubrics.{index}"
        if not isinstance(entry, dict):
            raise FieldError(where, f"expected an object, got {type(entry).__name__}")
        try:
            text = get_str(entry, "criterion")
            tags = get_str_list(entry, "tags", required=False) or []
        except FieldError as exc:
            raise FieldError(f"{where}.{exc.field}", exc.message) from None
        assert text is not None
        if "points" not in entry:
            raise FieldError(f"{where}.points", "missing")
        points = as_number(entry["points"], f"{where}.points")
        items.append(_Item(index, text, points, tuple(tags)))
    return items


def _is_penalty(item: _Item, rule: VetoRule) -> bool:
    """A negative-points item that is not a veto: imported as a proficiency criterion stating its opposite."""
    if item.points >= 0 or VETO_TAG in item.tags:
        return False
    return PENALTY_TAG in item.tags or not rule.is_veto(item.points, item.tags)


def _tier(item: _Item, rule: VetoRule) -> Tier:
    if item.points < 0:
        return Tier.PROFICIENCY if _is_penalty(item, rule) else Tier.VETO
    if BONUS_TAG in item.tags:
        return Tier.BONUS
    return Tier.VETO if VETO_REQUIRED_TAG in item.tags else Tier.PROFICIENCY


def _criteria(items: list[_Item], rule: VetoRule) -> list[Criterion]:
    proficiency = [i for i in items if _tier(i, rule) is Tier.PROFICIENCY]
    weights = dict(zip((i.index for i in proficiency), normalise_weights([abs(i.points) for i in proficiency]),
                       strict=True))
    criteria = []
    for item in items:
        tier = _tier(item, rule)
        polarity = None if tier is not Tier.VETO else Polarity.PROHIBITED if item.points < 0 else Polarity.REQUIRED
        axis = next((t.removeprefix("axis:") for t in item.tags if t.startswith("axis:")), None)
        text = PENALTY_PREFIX + item.text if _is_penalty(item, rule) else item.text
        tags = tuple(t for t in item.tags if t not in CONTROL_TAGS)
        try:
            criteria.append(
                Criterion(id=f"c{item.index}", tier=tier, text=text, weight=weights.get(item.index),
                          polarity=polarity, axis=axis or None, tags=tags, points=item.points)
            )
        except ValidationError as exc:
            error = validation_field(exc)
            raise FieldError(f"rubrics.{item.index}.{error.field}", error.message) from None
    return criteria


def _meta(row: dict[str, Any]) -> RubricMeta:
    example_tags = get_str_list(row, "example_tags", required=False) or []
    extra: dict[str, Any] = {}
    canary = get_str(row, "canary", required=False, blank_ok=True)
    if canary is not None:
        extra["canary"] = canary
    theme = next((t.removeprefix("theme:") for t in example_tags if t.startswith("theme:")), None)
    if theme:
        extra["theme"] = theme
    ideal = row.get("ideal_completions_data")
    if ideal is not None:
        if not isinstance(ideal, dict):
            raise FieldError("ideal_completions_data", f"expected an object or null, got {type(ideal).__name__}")
        extra["ideal_completions_data"] = ideal
    return RubricMeta(source=SOURCE, license=LICENSE, tags=tuple(example_tags), extra=extra)


def _grades(row: dict[str, Any], count: int) -> list[Any]:
    raw = row["responses"]
    if isinstance(raw, str):
        try:
            raw = ast.literal_eval(raw)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise FieldError("responses", "not a list literal (expected JSON or a Python-repr list)") from None
    if not isinstance(raw, list):
        raise FieldError("responses", f"expected a list, got {type(raw).__name__}")
    if len(raw) != count:
        raise FieldError("responses", f"{len(raw)} grades for {count} rubric items (must align 1:1)")
    return raw


def _verdict(grade: Any, item: _Item, response: Response, rubric_id: str, inverted: bool) -> Verdict:
    where = f"responses.{item.index}"
    if not isinstance(grade, dict):
        raise FieldError(where, f"expected an object, got {type(grade).__name__}")
    if "points" in grade and as_number(grade["points"], f"{where}.points") != item.points:
        raise FieldError(f"{where}.points", f"{grade['points']!r} does not match rubrics.{item.index}.points "
                         f"{item.points:g} (grades out of order?)")
    output = grade.get("response_dict")
    output = output if isinstance(output, dict) else {}
    explanation = output.get("explanation")
    explanation = explanation if isinstance(explanation, str) else None
    met = output.get("criteria_met")
    reason = None
    if not output:
        status, reason = Status.UNSCORED, "grader output (response_dict) missing"
    elif isinstance(met, bool):
        status = Status.MET if met != inverted else Status.UNMET  # a penalty's criterion states the opposite
    else:
        status = Status.UNSCORED
        reason = "criteria_met missing" if met is None else f"criteria_met is not a boolean: {met!r}"[:200]
    return Verdict(response_id=response.id, rubric_id=rubric_id, criterion_id=f"c{item.index}", status=status,
                   reason=reason, explanation=explanation, judge=GRADER,
                   meta={"source": SOURCE, **({"inverted_from_source": True} if inverted else {})})


def _response_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    messages = _messages(value, "prompt_response")
    answers = [m for m in messages if m.role == "assistant"] or messages
    return answers[-1].content


def parse_row(row: dict[str, Any], rule: VetoRule | None = None) -> Parsed | Skip:
    """One HealthBench row -> rubric (+ response and verdicts when graded); raises ``FieldError`` on bad input."""
    rule = rule or parse_veto_rule()
    rubric_id = get_str(row, "prompt_id")
    assert rubric_id is not None
    prompt = _messages(row.get("prompt"), "prompt")
    items = _items(row)
    kept = [i for i in items if i.points != 0]
    if not any(i.points > 0 and BONUS_TAG not in i.tags and VETO_REQUIRED_TAG not in i.tags for i in kept):
        return Skip("no_positive_points", f"none of {len(items)} rubric items has positive points, so the "
                    "proficiency tier would be empty")
    meta = _meta(row)
    try:
        rubric = Rubric(id=rubric_id, prompt=tuple(prompt), criteria=tuple(_criteria(kept, rule)), meta=meta,
                        provenance=Provenance(author=SOURCE, author_kind="import"))
    except ValidationError as exc:
        raise validation_field(exc, {"criteria": "rubrics"}) from None
    response = None
    verdicts: list[Verdict] = []
    if row.get("responses") is not None and row.get("prompt_response") is None:
        raise FieldError("prompt_response", "missing, but grades (responses) are present")
    if row.get("prompt_response") is not None:
        model = next((row[k] for k in ("model", "model_name") if isinstance(row.get(k), str) and row[k].strip()),
                     DEFAULT_MODEL)
        stored = row.get("score")
        extra: dict[str, Any] = {"source": SOURCE, "prompt_id": rubric_id}
        if isinstance(stored, int | float) and not isinstance(stored, bool):
            extra["source_score"] = float(stored)
        response = Response.build(rubric_id, model, _response_text(row["prompt_response"]), **extra)
        if row.get("responses") is not None:
            grades = _grades(row, len(items))
            verdicts = [_verdict(grades[i.index], i, response, rubric_id, _is_penalty(i, rule)) for i in kept]
    return Parsed(rubric, response, verdicts, len(items) - len(kept))


def import_healthbench(path: str | Path, veto_rule: VetoRule | str | None = None) -> ImportResult:
    """Read a HealthBench JSONL file; bad rows become problems and unmappable rows skips, never exceptions.

    ``veto_rule`` (text or parsed; default ``DEFAULT_VETO_RULE``) picks the negative-points items that are vetoes.
    """
    rule = veto_rule if isinstance(veto_rule, VetoRule) else parse_veto_rule(*([veto_rule] if veto_rule else []))
    result = ImportResult(source=SOURCE)
    shown = str(path)
    first_line: dict[str, int] = {}
    for number, row in iter_rows(path, result):
        prompt_id = row.get("prompt_id")
        record_id = prompt_id if isinstance(prompt_id, str) and prompt_id.strip() else "-"
        try:
            outcome = parse_row(row, rule)
        except FieldError as exc:
            result.problems.append(Problem(shown, number, record_id, exc.field, exc.message))
            continue
        if isinstance(outcome, Skip):
            result.skipped.append(Skipped(shown, number, record_id, outcome.kind, outcome.detail))
            continue
        if outcome.rubric.id in first_line:
            result.skipped.append(Skipped(shown, number, record_id, "duplicate_id",
                                          f"prompt_id already imported from line {first_line[outcome.rubric.id]}"))
            continue
        first_line[outcome.rubric.id] = number
        result.rubrics.append(outcome.rubric)
        if outcome.response is not None:
            result.responses.append(outcome.response)
        result.verdicts.extend(outcome.verdicts)
        if outcome.dropped_zero_points:
            result.notes["dropped_zero_points"] += outcome.dropped_zero_points
        for criterion in outcome.rubric.criteria:
            if criterion.points is not None and criterion.points < 0:
                result.notes["negative_points_veto" if criterion.tier is Tier.VETO else "negative_points_penalty"] += 1
    return result
