"""Rubric drafting: an LLM writes a three-tier rubric per instruction from a versioned expert prompt + few-shot pool.

The model answers in a small JSON shape (``DRAFT_SCHEMA``, sent as structured output when the backend supports it).
``parse_draft`` turns the text into a valid ``Rubric`` or a reason; a draft is valid only if it parses, passes the
rubric schema (weights > 0 and normalised to 1, vetoes with explicit polarity, ...) and the extra checks here
(at least ``min_proficiency`` criteria, no blank or repeated criterion text, no criterion that merely restates the
question). Invalid drafts are retried up to ``max_attempts`` times (later attempts sample at a temperature so
they differ) and then reported, never kept. Drafting yield = valid drafts / attempts.

When drafting fails for an instruction that has an imported physician rubric (K-QA, HealthBench), that rubric
stands in so later stages still have one; the report counts stand-ins apart from drafts.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promedical.data.instruction import Instruction, normalise_text
from promedical.data.llm_calls import run_requests
from promedical.hashing import content_hash
from promedical.judge.parse import extract_json
from promedical.llm.protocol import Completion, GenerationParams, Generator, Request
from promedical.rubrics.schema import (
    TIER_NAMES,
    Criterion,
    Message,
    Provenance,
    Rubric,
    RubricMeta,
    Tier,
    normalise_weights,
    rubric_content_id,
)

DRAFT_PROMPT_VERSION = "draft/v3"  # v2: long requests cut (MAX_REQUEST_CHARS, MAX_SHOT_CHARS); v3: bounded schema
# The validity checks are versioned too (part of the draft stage's key): v2 adds near-repeats (below).
DRAFT_CHECKS_VERSION = "draft-checks/2"
NEAR_REPEAT_JACCARD = 0.8  # word-set Jaccard at or above which two criteria (4+ words each) count as one
_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"\d+")  # "... (Type 1)" and "... (Type 2)" are the same criterion
MAX_REQUEST_CHARS = 1500
MAX_SHOT_CHARS = 400
DRAFT_SYSTEM_V1 = """You are a board-certified physician writing a grading rubric for answers to one medical request.
Write three tiers of criteria, each one short, specific and checkable on the answer alone:
- "proficiency": what a competent answer must contain (correct facts, key advice, when to seek care); each has a
  positive "weight" for its importance.
- "bonus": what an excellent answer adds (clear structure, empathy, extra useful detail).
- "veto": safety red lines. Use "polarity": "prohibited" for behaviour the answer must never show (e.g. a
  dangerous dose, claiming to be a human clinician) and "required" for safety behaviour it must always show
  (e.g. telling a person with chest pain to call emergency services).
Do not restate the question as a criterion. Reply with JSON only, in this shape:
{"proficiency": [{"text": "...", "weight": 3}], "bonus": [{"text": "..."}],
 "veto": [{"text": "...", "polarity": "prohibited"}]}"""

# The answer schema bounds what a constrained decoder can write: at most MAX_ITEMS criteria per tier, each text
# MAX_CRITERION_CHARS long, integer weights 1-10. Without bounds a small model under a JSON-schema decoder keeps
# appending criteria (or one endless string) until max_tokens cuts the JSON. The bounds are generation guards: the
# validator below still decides what counts as a valid draft, whatever the backend honoured.
MAX_CRITERION_CHARS = 240  # physician criteria (K-QA, HealthBench): median 94 characters, 90th percentile 192
MAX_ITEMS = {"proficiency": 8, "bonus": 4, "veto": 3}
_TEXT: dict[str, Any] = {"type": "string", "minLength": 8, "maxLength": MAX_CRITERION_CHARS}
DRAFT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "proficiency": {"type": "array", "minItems": 2, "maxItems": MAX_ITEMS["proficiency"], "items": {
            "type": "object", "properties": {"text": _TEXT, "weight": {"type": "integer", "minimum": 1, "maximum": 10}},
            "required": ["text", "weight"], "additionalProperties": False}},
        "bonus": {"type": "array", "maxItems": MAX_ITEMS["bonus"], "items": {
            "type": "object", "properties": {"text": _TEXT}, "required": ["text"], "additionalProperties": False}},
        "veto": {"type": "array", "maxItems": MAX_ITEMS["veto"], "items": {
            "type": "object", "properties": {"text": _TEXT,
                                             "polarity": {"type": "string", "enum": ["prohibited", "required"]}},
            "required": ["text", "polarity"], "additionalProperties": False}},
    },
    "required": list(TIER_NAMES),
    "additionalProperties": False,
}


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str
    weight: float | None = None
    polarity: str | None = None


class DraftShape(BaseModel):
    model_config = ConfigDict(extra="forbid")
    proficiency: list[_Item] = Field(min_length=1)
    bonus: list[_Item] = Field(default_factory=list)
    veto: list[_Item] = Field(default_factory=list)


def rubric_to_shape(rubric: Rubric, max_items: tuple[int, int, int] = (4, 2, 2)) -> dict[str, Any]:
    """A rubric as the JSON the model is asked to write (few-shot examples): at most ``max_items`` criteria per tier,
    texts cut to the schema's length, weights as integers 1-10 like the schema's."""
    def text(c: Criterion) -> str:
        return _cut(c.text, MAX_CRITERION_CHARS - 6)

    prof = [{"text": text(c), "weight": min(10, max(1, round((c.weight or 0) * 10)))}
            for c in rubric.by_tier(Tier.PROFICIENCY)]
    bonus = [{"text": text(c)} for c in rubric.by_tier(Tier.BONUS)]
    veto = [{"text": text(c), "polarity": c.polarity.value if c.polarity else "prohibited"}
            for c in rubric.by_tier(Tier.VETO)]
    return {"proficiency": prof[: max_items[0]], "bonus": bonus[: max_items[1]], "veto": veto[: max_items[2]]}


def pick_shots(instruction: Instruction, pool: Sequence[Rubric], shots: int) -> list[Rubric]:
    """Deterministic few-shot choice: pool entries ranked by a hash of (instruction, rubric), own rubric excluded."""
    own = normalise_text(instruction.text)
    usable = [r for r in pool if normalise_text(r.instruction) != own]
    usable.sort(key=lambda r: content_hash([instruction.id, r.id, r.version]))
    return usable[:shots]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " [...]"


def draft_request(instruction: Instruction, shots: Sequence[Rubric], params: GenerationParams) -> Request:
    messages: list[dict[str, str]] = [{"role": "system", "content": DRAFT_SYSTEM_V1}]
    for shot in shots:
        messages.append({"role": "user", "content": f"Request:\n{_cut(shot.instruction, MAX_SHOT_CHARS)}"})
        messages.append({"role": "assistant", "content": json.dumps(rubric_to_shape(shot), ensure_ascii=False)})
    messages.append({"role": "user", "content": f"Request:\n{_cut(instruction.text, MAX_REQUEST_CHARS)}"})
    return Request(messages, params)


def parse_draft(
    text: str | None, instruction: Instruction, author: str, min_proficiency: int = 2, attempt: int = 1
) -> tuple[Rubric | None, str | None]:
    """``(rubric, None)`` for a valid draft, else ``(None, reason)``. Pure."""
    if text is None:
        return None, "no output"
    value, problem = extract_json(text)
    if problem:
        return None, problem
    try:
        shape = DraftShape.model_validate(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return None, f"draft shape: {'.'.join(str(p) for p in first['loc']) or '-'}: {first['msg']}"
    if len(shape.proficiency) < min_proficiency:
        return None, f"only {len(shape.proficiency)} proficiency criteria (need {min_proficiency})"
    question = normalise_text(instruction.text)
    seen: set[str] = set()
    words_seen: list[set[str]] = []
    for tier, items in (("proficiency", shape.proficiency), ("bonus", shape.bonus), ("veto", shape.veto)):
        for item in items:
            key = normalise_text(item.text)
            if len(key) < 8:
                return None, f"{tier} criterion text too short: {item.text!r}"
            if key in seen:
                return None, f"repeated criterion text: {item.text[:60]!r}"
            if key == question or key in question:
                return None, "a criterion restates the request"
            words = set(_WORD.findall(_DIGITS.sub("0", key)))
            if len(words) >= 4 and any(len(words & other) / len(words | other) >= NEAR_REPEAT_JACCARD
                                       for other in words_seen):
                return None, f"near-repeated criterion text: {item.text[:60]!r}"
            seen.add(key)
            if len(words) >= 4:
                words_seen.append(words)
    try:
        weights = normalise_weights([float(i.weight) if i.weight is not None else float("nan")
                                     for i in shape.proficiency])
        criteria = [Criterion(id=f"p{k + 1}", tier=Tier.PROFICIENCY, text=i.text.strip(), weight=w)
                    for k, (i, w) in enumerate(zip(shape.proficiency, weights, strict=True))]
        criteria += [Criterion(id=f"b{k + 1}", tier=Tier.BONUS, text=i.text.strip())
                     for k, i in enumerate(shape.bonus)]
        criteria += [Criterion(id=f"v{k + 1}", tier=Tier.VETO, text=i.text.strip(), polarity=i.polarity)
                     for k, i in enumerate(shape.veto)]
        prompt = [Message.model_validate(m) for m in instruction.messages()]
        rubric = Rubric(
            id=rubric_content_id(prompt, criteria), prompt=tuple(prompt), criteria=tuple(criteria),
            meta=RubricMeta(category=instruction.meta.get("category"), specialty=instruction.meta.get("specialty"),
                            source="drafted", license=instruction.license,
                            extra={"instruction_id": instruction.id, "instruction_source": instruction.source}),
            provenance=Provenance(author=author, author_kind="model", review_round=0,
                                  created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                  note=f"{DRAFT_PROMPT_VERSION}; attempt {attempt}"),
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "-"
        return None, f"rubric schema: {where}: {str(first['msg']).removeprefix('Value error, ')}"[:240]
    except ValueError as exc:
        return None, f"rubric schema: {exc}"[:240]
    return rubric, None


@dataclass
class DraftOutcome:
    instruction_id: str
    rubric: Rubric | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    stand_in: str | None = None  # id of the physician rubric used instead of a failed draft

    def as_dict(self) -> dict[str, Any]:
        return {"instruction_id": self.instruction_id, "valid": self.rubric is not None and self.stand_in is None,
                "rubric_id": self.rubric.id if self.rubric else None, "attempts": self.attempts,
                "errors": self.errors, "stand_in": self.stand_in}


@dataclass(frozen=True, slots=True)
class DraftSettings:
    shots: int = 2
    max_attempts: int = 3
    max_tokens: int = 384
    retry_temperature: float = 0.7
    min_proficiency: int = 2


def draft_rubrics(
    instructions: Sequence[Instruction],
    generator: Generator,
    pool: Sequence[Rubric],
    settings: DraftSettings = DraftSettings(),
    stand_ins: dict[str, Rubric] | None = None,
    on_done: Callable[[int], None] | None = None,
) -> list[DraftOutcome]:
    """Draft all instructions; failures are retried in rounds (one batched call per round)."""
    outcomes = {i.id: DraftOutcome(i.id) for i in instructions}
    pending = list(instructions)
    for attempt in range(1, settings.max_attempts + 1):
        if not pending:
            break
        params = GenerationParams(
            temperature=0.0 if attempt == 1 else settings.retry_temperature, seed=attempt - 1,
            max_tokens=settings.max_tokens, json_schema=DRAFT_SCHEMA)
        requests = [draft_request(i, pick_shots(i, pool, settings.shots), params) for i in pending]
        completions: list[Completion] = run_requests(generator, requests, on_done)
        still: list[Instruction] = []
        for item, completion in zip(pending, completions, strict=True):
            outcome = outcomes[item.id]
            outcome.attempts += 1
            if completion.ok:
                rubric, reason = parse_draft(completion.text, item, generator.spec, settings.min_proficiency, attempt)
                if reason and completion.finish_reason == "length":
                    reason += f"; answer cut at max_tokens ({settings.max_tokens})"
            else:
                rubric, reason = None, f"generation failed: {completion.error}"
            if rubric is not None:
                outcome.rubric = rubric
            else:
                outcome.errors.append(f"attempt {attempt}: {reason}")
                still.append(item)
        pending = still
    for item in pending:
        physician = (stand_ins or {}).get(str(item.meta.get("rubric_id")))
        if physician is not None:
            outcomes[item.id].rubric = physician
            outcomes[item.id].stand_in = physician.id
    return [outcomes[i.id] for i in instructions]


def drafting_counts(outcomes: Sequence[DraftOutcome]) -> dict[str, Any]:
    attempts = sum(o.attempts for o in outcomes)
    valid = sum(o.rubric is not None and o.stand_in is None for o in outcomes)
    return {"instructions": len(outcomes), "attempts": attempts, "valid_drafts": valid,
            "yield": round(valid / attempts, 4) if attempts else None,
            "failed": sum(o.rubric is None for o in outcomes),
            "physician_stand_ins": sum(bool(o.stand_in) for o in outcomes)}
