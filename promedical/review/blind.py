"""Blinding: what a reviewer may see of an adjudication task, and how their answers map back.

A reviewer-facing payload carries only an opaque per-assignment token, the prompt, the criteria and response
texts under neutral slot names ("1", "2"). Response ids, model names, the import order and other reviewers' answers
never leave the server. The order in which the two responses of a pair are shown is drawn per reviewer and stored
on the assignment (``"ab"`` or ``"ba"``); answers are translated back to the canonical ``a``/``b``/``tie`` here.
Model and vendor names are masked in every text a reviewer sees (prompt, responses, criteria, edit history), so
neither a response nor a criterion someone edited can unblind the reviewer; see ``masking.py`` for the rules.
"""

from __future__ import annotations

import functools
import json
import random
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from promedical.review.masking import MASK as MASK
from promedical.review.masking import Masker
from promedical.rubrics.schema import Rubric

PAIR_ANSWERS = ("1", "2", "tie")
POINT_ANSWERS = ("met", "unmet")


def new_token() -> str:
    """An unguessable assignment token (256 bits); it encodes nothing about the task."""
    return secrets.token_urlsafe(32)


def draw_order(rng: random.Random, kind: str) -> str:
    """The display order for one reviewer: a pair is shown as ``ab`` or ``ba`` with equal chance."""
    if kind != "pairwise":
        return "a"
    return "ab" if rng.random() < 0.5 else "ba"


def canonical_pair_answer(display_order: str, answer: str) -> str:
    """Map the reviewer's slot answer (``1``, ``2``, ``tie``) to the canonical ``a``, ``b`` or ``tie``."""
    if answer not in PAIR_ANSWERS:
        raise ValueError(f"answer must be one of {', '.join(PAIR_ANSWERS)}")  # the value itself is not repeated
    if answer == "tie":
        return "tie"
    return display_order[int(answer) - 1]


def slot_of(display_order: str, canonical: str) -> str:
    """Inverse of ``canonical_pair_answer``: the slot the reviewer saw for a canonical answer."""
    return "tie" if canonical == "tie" else str(display_order.index(canonical) + 1)


# Trailing parts of a model id that are size, version or packaging, not its family: "medchat-7b" -> "medchat".
_NOT_FAMILY = re.compile(r"^(?:v?\d+(?:\.\d+)*[a-z]?|(?:\d+x)?\d+(?:\.\d+)?[bmk]|instruct|chat|it|hf|base|"
                         r"latest|preview|gguf|awq|gptq|fp16|bf16|q\d\w*)$", re.IGNORECASE)


def name_variants(models: Iterable[str]) -> list[str]:
    """Spellings of each model id to mask: the full spec, its organisation and name (``org/name``), the name
    without a ``:tag``, and the family without size or version (``medchat-7b`` -> ``medchat``)."""
    variants: set[str] = set()
    for model in models:
        base = model.split(":", 1)[0]
        org, _, name = base.rpartition("/")
        parts = re.split(r"[-_.]", name)
        while len(parts) > 1 and _NOT_FAMILY.match(parts[-1]):
            parts.pop()
        family = "-".join(parts)
        for candidate in (model, base, name, org, family):
            candidate = candidate.strip()
            if len(candidate) >= 3 and candidate.lower() != "unknown":
                variants.add(candidate)
    return sorted(variants, key=len, reverse=True)


def project_terms(stored: str | None) -> list[str]:
    """A project's extra names to mask, as stored on it (a JSON list of strings; nothing when unset)."""
    if not stored:
        return []
    terms = json.loads(stored)
    return [t for t in terms if isinstance(t, str) and t.strip()] if isinstance(terms, list) else []


MAX_TERMS = 200
MAX_TERM = 100


def set_project_terms(stored: str | None, add: Iterable[str] = (), remove: Iterable[str] = ()) -> str:
    """The project's stored extra names (JSON) after adding and removing some; each is masked like a model id.

    Raises ``ValueError`` naming the first unusable term (too short or long, control characters, too many).
    """
    terms = project_terms(stored)
    for term in add:
        term = " ".join(term.split())
        if not 2 <= len(term) <= MAX_TERM or not term.isprintable():
            raise ValueError(f"mask term {term[:MAX_TERM]!r}: use 2-{MAX_TERM} printable characters")
        if term.casefold() not in {t.casefold() for t in terms}:
            terms.append(term)
    gone = {" ".join(t.split()).casefold() for t in remove}
    terms = [t for t in terms if t.casefold() not in gone]
    if len(terms) > MAX_TERMS:
        raise ValueError(f"at most {MAX_TERMS} mask terms per project")
    return json.dumps(terms, ensure_ascii=False)


@functools.lru_cache(maxsize=64)
def _cached_masker(extra: tuple[str, ...]) -> Masker:
    return Masker(extra)


def masker(extra: Iterable[str] = ()) -> Masker:
    """A masker for the shipped names plus ``extra`` (compiled once per distinct set of names)."""
    return _cached_masker(tuple(sorted(set(extra))))


def mask_models(text: str, variants: Iterable[str]) -> str:
    """``text`` with the shipped names and ``variants`` masked."""
    return masker(variants).mask(text)


def mask_change(change: Mapping[str, Any], shown: Masker) -> dict[str, Any]:
    """One entry of an edit history with its old and new text values masked."""
    return {k: shown.mask(v) if k in ("old", "new") and isinstance(v, str) else v for k, v in change.items()}


def masked_rubric(rubric: Rubric, shown: Masker) -> dict[str, Any]:
    """The rubric as a reviewer may see it: prompt and criterion texts masked, provenance left out."""
    data = rubric.model_dump(mode="json", exclude={"provenance"})
    data["prompt"] = _prompt(rubric, shown)
    for criterion in data["criteria"]:
        criterion["text"] = shown.mask(criterion["text"])
    return data


def _prompt(rubric: Rubric, shown: Masker) -> list[dict[str, str]]:
    return [{"role": m.role, "content": shown.mask(m.content)} for m in rubric.prompt]


def _criteria(rubric: Rubric, shown: Masker) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "tier": c.tier.value, "text": shown.mask(c.text),
         "polarity": c.polarity.value if c.polarity else None}
        for c in rubric.criteria
    ]


def pointwise_payload(
    token: str, rubric: Rubric, text: str, shown: Masker, answers: dict[str, str]
) -> dict[str, Any]:
    """What a reviewer sees for a pointwise task; ``answers`` are their own latest labels by criterion id."""
    return {
        "token": token,
        "kind": "pointwise",
        "prompt": _prompt(rubric, shown),
        "response": shown.mask(text),
        "criteria": _criteria(rubric, shown),
        "answers": answers,
        "choices": list(POINT_ANSWERS),
    }


def pairwise_payload(
    token: str, rubric: Rubric, texts: dict[str, str], display_order: str, shown: Masker, answer: str | None
) -> dict[str, Any]:
    """What a reviewer sees for a pair: two texts in their own order; ``texts`` maps ``a``/``b`` to text."""
    return {
        "token": token,
        "kind": "pairwise",
        "prompt": _prompt(rubric, shown),
        "responses": [
            {"slot": str(i + 1), "text": shown.mask(texts[side])} for i, side in enumerate(display_order)
        ],
        "criteria": _criteria(rubric, shown),
        "answer": slot_of(display_order, answer) if answer else None,
        "choices": list(PAIR_ANSWERS),
    }
