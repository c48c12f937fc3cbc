"""Blinding: what a reviewer may see of an adjudication task, and how their answers map back.

A reviewer-facing payload carries only an opaque per-assignment token, the prompt, the criteria and response
texts under neutral slot names ("1", "2"). Response ids, model names, the import order and other reviewers' answers
never leave the server. The order in which the two responses of a pair are shown is drawn per reviewer and stored
on the assignment (``"ab"`` or ``"ba"``); answers are translated back to the canonical ``a``/``b``/``tie`` here.
Model names that occur inside a response text are masked, so the text itself cannot unblind the reviewer.
"""

from __future__ import annotations

import random
import re
import secrets
from collections.abc import Iterable
from typing import Any

from promedical.rubrics.schema import Rubric

MASK = "[model]"
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
        raise ValueError(f"answer must be one of {', '.join(PAIR_ANSWERS)}, got {answer!r}")
    if answer == "tie":
        return "tie"
    return display_order[int(answer) - 1]


def slot_of(display_order: str, canonical: str) -> str:
    """Inverse of ``canonical_pair_answer``: the slot the reviewer saw for a canonical answer."""
    return "tie" if canonical == "tie" else str(display_order.index(canonical) + 1)


def name_variants(models: Iterable[str]) -> list[str]:
    """Spellings of each model name to mask: the full spec and its last path segment (``org/name`` -> ``name``)."""
    variants: set[str] = set()
    for model in models:
        for candidate in (model, model.rsplit("/", 1)[-1], model.split(":", 1)[0]):
            candidate = candidate.strip()
            if len(candidate) >= 3 and candidate.lower() != "unknown":
                variants.add(candidate)
    return sorted(variants, key=len, reverse=True)


def mask_models(text: str, variants: list[str]) -> str:
    if not variants:
        return text
    pattern = re.compile("|".join(re.escape(v) for v in variants), re.IGNORECASE)
    return pattern.sub(MASK, text)


def _prompt(rubric: Rubric, variants: list[str]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": mask_models(m.content, variants)} for m in rubric.prompt]


def _criteria(rubric: Rubric) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "tier": c.tier.value, "text": c.text, "polarity": c.polarity.value if c.polarity else None}
        for c in rubric.criteria
    ]


def pointwise_payload(
    token: str, rubric: Rubric, text: str, variants: list[str], answers: dict[str, str]
) -> dict[str, Any]:
    """What a reviewer sees for a pointwise task; ``answers`` are their own latest labels by criterion id."""
    return {
        "token": token,
        "kind": "pointwise",
        "prompt": _prompt(rubric, variants),
        "response": mask_models(text, variants),
        "criteria": _criteria(rubric),
        "answers": answers,
        "choices": list(POINT_ANSWERS),
    }


def pairwise_payload(
    token: str, rubric: Rubric, texts: dict[str, str], display_order: str, variants: list[str], answer: str | None
) -> dict[str, Any]:
    """What a reviewer sees for a pair: two texts in their own order; ``texts`` maps ``a``/``b`` to text."""
    return {
        "token": token,
        "kind": "pairwise",
        "prompt": _prompt(rubric, variants),
        "responses": [
            {"slot": str(i + 1), "text": mask_models(texts[side], variants)} for i, side in enumerate(display_order)
        ],
        "criteria": _criteria(rubric),
        "answer": slot_of(display_order, answer) if answer else None,
        "choices": list(PAIR_ANSWERS),
    }
