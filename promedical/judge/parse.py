"""Pure parsing of judge answers: whatever a model returns becomes answers plus reasons, never an exception.

* ``extract_json``: the first JSON value in a text (plain, inside a Markdown code fence, or followed by chatter);
  truncated or malformed JSON gives a reason instead.
* ``parse_grouped``: a grouped answer (a list of ``{"id", "met", ...}`` items, under ``verdicts`` or bare, or an
  object keyed by label) -> ``{label: Answer}`` for usable items and ``{label: reason}`` for every
  requested label without one (missing, invalid type, contradictory duplicates). Invented ids are reported in
  ``ignored`` and never map to a criterion.
* ``parse_single``: a HealthBench-style ``{"explanation", "criteria_met"}`` answer.
* ``parse_pairwise``: ``{"winner": "A"|"B"|"tie"}`` or a ``[[A]]`` / ``[[B]]`` / ``[[C]]`` (tie) verdict tag.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_TAG = re.compile(r"\[\[\s*(A|B|C|tie|TIE|Tie)\s*\]\]")


@dataclass(frozen=True, slots=True)
class Answer:
    met: bool
    explanation: str | None


@dataclass(frozen=True, slots=True)
class GroupedParse:
    answers: dict[str, Answer] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # label -> why it has no usable answer
    ignored: list[str] = field(default_factory=list)  # notes on items that were dropped (invented ids, ...)


def _short(text: str, limit: int = 120) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def extract_json(text: str | None) -> tuple[Any, str | None]:
    """``(value, None)`` for the first JSON object/array in ``text``, else ``(None, reason)``."""
    if text is None or not text.strip():
        return None, "empty answer"
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        try:
            return json.loads(candidate), None
        except (json.JSONDecodeError, RecursionError):
            pass
        # Only the first opening bracket: an inner object of a truncated answer is not the answer.
        start = min((i for i in (candidate.find("{"), candidate.find("[")) if i >= 0), default=-1)
        if start >= 0:
            try:
                return decoder.raw_decode(candidate, start)[0], None
            except (json.JSONDecodeError, RecursionError):
                pass
    if "{" in text or "[" in text:
        return None, f"truncated or malformed JSON: {_short(text, 80)!r}"
    return None, f"no JSON in answer: {_short(text, 80)!r}"


def as_bool(value: Any) -> bool | None:
    """A boolean, or the strings true/false (any case); anything else is not a verdict."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _explanation(item: dict[str, Any]) -> str | None:
    value = item.get("explanation")
    return _short(value, 1000) if isinstance(value, str) and value.strip() else None


def _items(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for key in ("verdicts", "results", "criteria", "items"):
            if isinstance(value.get(key), list):
                return list(value[key])
        # Keyed answers: {"C1": {"explanation": ..., "met": ...}, ...} (or {"C1": true, ...}).
        return [{**v, "id": k} if isinstance(v, dict) else {"id": k, "met": v} for k, v in value.items()]
    return None


def parse_grouped(text: str | None, labels: list[str], aliases: dict[str, str] | None = None) -> GroupedParse:
    """Answers for ``labels``; ``aliases`` maps other accepted ids (e.g. the rubric's criterion ids) to labels."""
    value, error = extract_json(text)
    if error is not None:
        return GroupedParse(problems={label: error for label in labels})
    items = _items(value)
    if items is None:
        return GroupedParse(problems={label: "answer is neither a list nor an object of verdicts" for label in labels})
    wanted = {label.lower(): label for label in labels}
    for alias, label in (aliases or {}).items():
        wanted.setdefault(alias.lower(), label)
    found: dict[str, list[Answer]] = {}
    bad: dict[str, str] = {}
    ignored: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            ignored.append(f"item {index} is not an object")
            continue
        raw_id = item.get("id", item.get("criterion_id"))
        hit = wanted.get(str(raw_id).strip().lower()) if isinstance(raw_id, str | int) else None
        if hit is None:
            ignored.append(f"item {index}: unknown id {_short(str(raw_id), 40)!r}")
            continue
        met = as_bool(item.get("met", item.get("criteria_met")))
        if met is None:
            bad[hit] = f"'met' is not a boolean ({_short(repr(item.get('met')), 40)})"
            continue
        found.setdefault(hit, []).append(Answer(met, _explanation(item)))
    answers: dict[str, Answer] = {}
    problems: dict[str, str] = {}
    for label in labels:
        given = found.get(label, [])
        if given and len({a.met for a in given}) == 1:
            answers[label] = given[0]
        elif given:
            problems[label] = "contradictory duplicate answers for this id"
        else:
            problems[label] = bad.get(label, "no verdict for this id in the answer")
    return GroupedParse(answers, problems, ignored)


def parse_single(text: str | None) -> tuple[Answer | None, str | None]:
    """``(Answer, None)`` or ``(None, reason)`` for a one-criterion answer."""
    value, error = extract_json(text)
    if error is not None:
        return None, error
    if not isinstance(value, dict):
        return None, "answer is not a JSON object"
    if "criteria_met" not in value and "met" not in value:
        return None, "answer has no 'criteria_met'"
    met = as_bool(value.get("criteria_met", value.get("met")))
    if met is None:
        return None, f"'criteria_met' is not a boolean ({_short(repr(value.get('criteria_met')), 40)})"
    return Answer(met, _explanation(value)), None


def parse_pairwise(text: str | None) -> tuple[str | None, str | None, str | None]:
    """``(winner, explanation, None)`` with winner ``A``/``B``/``tie``, or ``(None, None, reason)``."""
    value, error = extract_json(text)
    if error is None and isinstance(value, dict) and "winner" in value:
        winner = str(value["winner"]).strip()
        normal = {"a": "A", "b": "B", "tie": "tie", "c": "tie"}.get(winner.lower())
        if normal is None:
            return None, None, f"'winner' is not A, B or tie ({_short(winner, 30)!r})"
        return normal, _explanation(value), None
    tags = {m.group(1).upper() for m in _TAG.finditer(text or "")}
    if len(tags) == 1:
        tag = tags.pop()
        return {"A": "A", "B": "B"}.get(tag, "tie"), _short(text or "", 1000), None
    if len(tags) > 1:
        return None, None, f"ambiguous verdict tags {sorted(tags)}"
    return None, None, error or "answer has no 'winner' and no [[A]]/[[B]]/[[C]] tag"
