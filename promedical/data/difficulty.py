"""Difficulty scoring: an LLM rates each instruction 0-10; the pipeline keeps a band (the paper keeps 5-9).

The prompt is a versioned constant. A rating that cannot be read (failed call, no rating 0-10 in the output, or
two different ones such as "a 7 or 8") is ``None`` with a reason and is dropped as ``unscored`` unless the config
keeps unscored items; nothing is silently rated. Each drop is reported with its reason: ``below_band``,
``above_band`` or ``unscored``. ``apply_band`` is the keep/drop rule on ratings however they were obtained;
``score_difficulty`` asks a generator for them first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from promedical.data.instruction import Instruction
from promedical.data.llm_calls import run_requests
from promedical.judge.parse import extract_json
from promedical.llm.protocol import GenerationParams, Generator, Request

DIFFICULTY_PROMPT_VERSION = "difficulty/v2"  # v2: v1's system text, the question cut to MAX_QUESTION_CHARS
MAX_QUESTION_CHARS = 600
DIFFICULTY_SYSTEM_V1 = (
    "You are a senior physician grading how hard a medical question is to answer well. "
    "Rate from 0 (trivial fact anyone knows) to 10 (needs specialist reasoning over several conditions, "
    "drugs, risks or missing information). Consider clinical reasoning depth, safety stakes and ambiguity. "
    'Reply with JSON only: {"difficulty": <integer 0-10>}'
)
DIFFICULTY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"difficulty": {"type": "integer", "minimum": 0, "maximum": 10}},
    "required": ["difficulty"],
}
DIFFICULTY_PARSER_VERSION = "difficulty-parse/2"  # 2: a labelled rating ("Score: 7", "rated as a 9") wins
_INT = re.compile(r"\b(10|[0-9])\b")
# "Score: 7", "rated as a 9", "I would rate this question a 7", "difficulty: 8/10"; not "a 7 or 8", "9 to 10".
_LABELLED = re.compile(r"\b(?:score|rating|difficulty|rated?)\b[^0-9.\n]{0,30}?\b(10|[0-9])\b"
                       r"(?!\s*(?:or|to|-|–)\s*\d)(?!\.\d)", re.IGNORECASE)
BANDS = ("below_band", "in_band", "above_band", "unscored")


def difficulty_request(instruction: Instruction, max_tokens: int = 16) -> Request:
    text = instruction.text
    if len(text) > MAX_QUESTION_CHARS:
        text = text[:MAX_QUESTION_CHARS] + " [...]"
    messages = [{"role": "system", "content": DIFFICULTY_SYSTEM_V1},
                {"role": "user", "content": f"Question:\n{text}\n\nDifficulty JSON:"}]
    return Request(messages, GenerationParams(max_tokens=max_tokens, json_schema=DIFFICULTY_SCHEMA))


def parse_difficulty(text: str | None) -> tuple[int | None, str | None]:
    """``(rating, None)`` or ``(None, reason)``. JSON first; a lone integer 0-10 in plain text is accepted too."""
    if text is None:
        return None, "no output"
    value, _ = extract_json(text)
    if isinstance(value, dict) and "difficulty" in value:
        raw = value["difficulty"]
        if isinstance(raw, int | float) and not isinstance(raw, bool) and float(raw).is_integer() and 0 <= raw <= 10:
            return int(raw), None
        return None, f"difficulty out of range or not an integer: {raw!r}"
    labelled = set(_LABELLED.findall(text))
    if len(labelled) == 1:
        return int(labelled.pop()), None
    if len(labelled) > 1:
        return None, f"several ratings in the output: {', '.join(sorted(labelled, key=int))}"
    found = _INT.findall(text)
    if len(set(found)) == 1:
        return int(found[0]), None
    return None, "no single integer 0-10 in the output"


def band_of(rating: int | None, band: tuple[int, int]) -> str:
    if rating is None:
        return "unscored"
    return "below_band" if rating < band[0] else "above_band" if rating > band[1] else "in_band"


@dataclass
class DifficultyResult:
    kept: list[Instruction]
    band: tuple[int, int] = (5, 9)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    histogram: Counter[str] = field(default_factory=Counter)  # every rating ("0".."10", "unscored")
    kept_histogram: Counter[str] = field(default_factory=Counter)  # the ratings of the kept items

    def counts(self) -> dict[str, Any]:
        """What the difficulty manifest records: per-rating histogram (all and kept), kept/dropped per band."""
        reasons = Counter(d["reason"] for d in self.dropped)

        def ordered(counter: Counter[str]) -> dict[str, int]:
            return dict(sorted(counter.items(), key=lambda kv: (len(kv[0]), kv[0])))

        by_band: dict[str, dict[str, int]] = {name: {"rated": 0, "kept": 0, "dropped": 0} for name in BANDS}
        for rating, n in self.histogram.items():
            name = band_of(None if rating == "unscored" else int(rating), self.band)
            kept = self.kept_histogram.get(rating, 0)
            by_band[name]["rated"] += n
            by_band[name]["kept"] += kept
            by_band[name]["dropped"] += n - kept
        return {"kept": len(self.kept), "dropped": len(self.dropped),
                "dropped_by_reason": dict(sorted(reasons.items())),
                "histogram": ordered(self.histogram), "kept_histogram": ordered(self.kept_histogram),
                "by_band": by_band}


def apply_band(
    instructions: Sequence[Instruction],
    ratings: Sequence[tuple[int | None, str | None]],
    band: tuple[int, int] = (5, 9),
    keep_unscored: bool = False,
    rater: str | None = None,
) -> DifficultyResult:
    """Keep the instructions whose rating is in ``band`` (inclusive); each gets ``meta.difficulty`` (+ reason, rater
    and prompt version). ``ratings`` are ``(rating, reason)`` pairs as ``parse_difficulty`` returns them."""
    low, high = band
    if not 0 <= low <= high <= 10:
        raise ValueError(f"difficulty band must satisfy 0 <= low <= high <= 10, got {list(band)}")
    result = DifficultyResult([], band=(low, high))
    for item, (rating, reason) in zip(instructions, ratings, strict=True):
        key = "unscored" if rating is None else str(rating)
        result.histogram[key] += 1
        labelled = item.with_meta(difficulty=rating, difficulty_reason=reason, difficulty_rater=rater,
                                  difficulty_prompt=DIFFICULTY_PROMPT_VERSION)
        where = band_of(rating, band)
        if where == "in_band" or (where == "unscored" and keep_unscored):
            result.kept.append(labelled)
            result.kept_histogram[key] += 1
        elif where == "unscored":
            result.dropped.append({"id": item.id, "reason": "unscored", "detail": reason})
        else:
            result.dropped.append({"id": item.id, "reason": where, "difficulty": rating})
    return result


def score_difficulty(
    instructions: Sequence[Instruction],
    generator: Generator,
    band: tuple[int, int] = (5, 9),
    keep_unscored: bool = False,
    max_tokens: int = 16,
    on_done: Callable[[int], None] | None = None,
) -> DifficultyResult:
    """Rate every instruction with ``generator``, then ``apply_band``."""
    # Similar lengths batched together waste less padding on local backends; results go back in input order.
    order = sorted(range(len(instructions)), key=lambda i: len(instructions[i].text))
    done = run_requests(generator, [difficulty_request(instructions[i], max_tokens) for i in order], on_done)
    position = {index: k for k, index in enumerate(order)}
    completions = [done[position[i]] for i in range(len(instructions))]
    ratings = [parse_difficulty(c.text) if c.ok else (None, c.error) for c in completions]
    return apply_band(instructions, ratings, band, keep_unscored, generator.spec)
