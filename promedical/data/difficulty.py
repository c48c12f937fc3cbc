"""Difficulty scoring: an LLM rates each instruction 0-10; the pipeline keeps a band (the paper keeps 5-9).

The prompt is a versioned constant. A rating that cannot be read (failed call, no integer 0-10 in the output)
is ``None`` with a reason and is dropped as ``unscored`` unless the config keeps unscored items; nothing is
silently rated. Each drop is reported with its reason: ``below_band``, ``above_band`` or ``unscored``.
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
_INT = re.compile(r"\b(10|[0-9])\b")


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
    found = _INT.findall(text)
    if len(set(found)) == 1:
        return int(found[0]), None
    return None, "no single integer 0-10 in the output"


@dataclass
class DifficultyResult:
    kept: list[Instruction]
    dropped: list[dict[str, Any]] = field(default_factory=list)
    histogram: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, Any]:
        reasons = Counter(d["reason"] for d in self.dropped)
        return {"kept": len(self.kept), "dropped": len(self.dropped),
                "dropped_by_reason": dict(sorted(reasons.items())),
                "histogram": dict(sorted(self.histogram.items(), key=lambda kv: (len(kv[0]), kv[0])))}


def score_difficulty(
    instructions: Sequence[Instruction],
    generator: Generator,
    band: tuple[int, int] = (5, 9),
    keep_unscored: bool = False,
    max_tokens: int = 16,
    on_done: Callable[[int], None] | None = None,
) -> DifficultyResult:
    """Rate every instruction, record ``meta.difficulty`` (+ rater and prompt version), keep those in ``band``."""
    low, high = band
    # Similar lengths batched together waste less padding on local backends; results go back in input order.
    order = sorted(range(len(instructions)), key=lambda i: len(instructions[i].text))
    done = run_requests(generator, [difficulty_request(instructions[i], max_tokens) for i in order], on_done)
    position = {index: k for k, index in enumerate(order)}
    completions = [done[position[i]] for i in range(len(instructions))]
    result = DifficultyResult([])
    for item, completion in zip(instructions, completions, strict=True):
        rating, reason = parse_difficulty(completion.text) if completion.ok else (None, completion.error)
        result.histogram["unscored" if rating is None else str(rating)] += 1
        labelled = item.with_meta(difficulty=rating, difficulty_reason=reason, difficulty_rater=generator.spec,
                                  difficulty_prompt=DIFFICULTY_PROMPT_VERSION)
        if rating is None:
            if keep_unscored:
                result.kept.append(labelled)
            else:
                result.dropped.append({"id": item.id, "reason": "unscored", "detail": reason})
        elif rating < low:
            result.dropped.append({"id": item.id, "reason": "below_band", "difficulty": rating})
        elif rating > high:
            result.dropped.append({"id": item.id, "reason": "above_band", "difficulty": rating})
        else:
            result.kept.append(labelled)
    return result
