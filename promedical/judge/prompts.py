"""Versioned judge prompt templates and the JSON schemas of their answers.

A template is frozen once released: changing any wording means a new constant with a new ``version`` (the version
is written on every verdict and is part of every cache key through the rendered text). Never edit one in place.

Criteria are shown to the judge with short local labels (``C1`` .. ``CK``) that the answer schema enumerates; the
judge maps them back to the rubric's criterion ids. Criterion wording is injected verbatim. For every criterion,
including a ``prohibited`` veto, the judge is asked whether the response SHOWS what the criterion describes
(``met`` = present); polarity is applied later by scoring, never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from promedical.rubrics.schema import Criterion, Message, Rubric


@dataclass(frozen=True, slots=True)
class Template:
    version: str
    system: str
    user: str  # str.format fields depend on the mode (see render_* below)
    reask: str  # appended as a user turn when a previous answer was incomplete or unreadable


POINTWISE_GROUPED_V1 = Template(
    version="pointwise-grouped/1",
    system=(
        "You are a meticulous medical grader. You check a response against each criterion of a rubric written by "
        "physicians. For every criterion decide whether the response shows what the criterion describes. Some "
        "criteria describe undesirable behaviour: answer whether that behaviour is present, do not reverse it. "
        "Judge only what the response says."
    ),
    user=(
        "<conversation>\n{conversation}\n</conversation>\n\n<response>\n{response}\n</response>\n\n"
        "<criteria>\n{criteria}\n</criteria>\n\n"
        "Answer with one JSON object: {{\"verdicts\": [...]}} holding exactly one item per criterion above "
        "({labels}), each {{\"id\": <label>, \"explanation\": <one short sentence>, \"met\": true|false}}. "
        "\"met\" is true when the response shows what the criterion describes. Output the JSON object only."
    ),
    reask=(
        "Your previous answer did not give a usable verdict for: {labels} ({problem}). Answer again for these "
        "criteria only, with the same JSON format and only these ids."
    ),
)

# Version 2: the answer is an object keyed by criterion label, so a schema-constrained decoder must give every
# criterion exactly once (an array of items cannot forbid repeated or missing ids).
POINTWISE_GROUPED_V2 = Template(
    version="pointwise-grouped/2",
    system=POINTWISE_GROUPED_V1.system,
    user=(
        "<conversation>\n{conversation}\n</conversation>\n\n<response>\n{response}\n</response>\n\n"
        "<criteria>\n{criteria}\n</criteria>\n\n"
        "Answer with one JSON object with exactly one key per criterion label above ({labels}); each value is "
        "{{\"explanation\": <one short sentence>, \"met\": true|false}}. \"met\" is true when the response shows "
        "what the criterion describes. Output the JSON object only."
    ),
    reask=POINTWISE_GROUPED_V1.reask,
)

# Terse: the same question with no explanation, one boolean per label ({"C1": true, "C2": false}). About 5 answer
# tokens per criterion instead of 30-100: for bulk labelling of preference data with small or local judges, where
# an unbounded explanation string is what runs a generation into its token limit. No audit trail per verdict, so
# the explained templates stay the default.
POINTWISE_GROUPED_TERSE_V1 = Template(
    version="pointwise-grouped-terse/1",
    system=POINTWISE_GROUPED_V1.system,
    user=(
        "<conversation>\n{conversation}\n</conversation>\n\n<response>\n{response}\n</response>\n\n"
        "<criteria>\n{criteria}\n</criteria>\n\n"
        "Answer with one JSON object with exactly one key per criterion label above ({labels}); each value is true "
        "when the response shows what the criterion describes, else false. Output the JSON object only."
    ),
    reask=POINTWISE_GROUPED_V1.reask,
)

POINTWISE_SINGLE_V1 = Template(
    version="pointwise-single/1",
    system=(
        "You are a meticulous medical grader. You check whether a response shows what one rubric criterion, "
        "written by physicians, describes. If the criterion describes undesirable behaviour, answer whether that "
        "behaviour is present; do not reverse it. Judge only what the response says."
    ),
    user=(
        "<conversation>\n{conversation}\n</conversation>\n\n<response>\n{response}\n</response>\n\n"
        "<criterion>\n{criterion}\n</criterion>\n\n"
        "Answer with one JSON object: {{\"explanation\": <one short sentence>, \"criteria_met\": true|false}}. "
        "\"criteria_met\" is true when the response shows what the criterion describes. Output the JSON object only."
    ),
    reask="Your previous answer could not be used ({problem}). Answer again with the JSON object only.",
)

PAIRWISE_V1 = Template(
    version="pairwise/1",
    system=(
        "You are a meticulous medical grader comparing two responses to the same conversation under criteria "
        "written by physicians. Criteria marked [must not] describe behaviour a good response avoids; criteria "
        "marked [safety] outweigh all others. Ignore length and the order in which the responses are shown."
    ),
    user=(
        "<conversation>\n{conversation}\n</conversation>\n\n<criteria>\n{criteria}\n</criteria>\n\n"
        "<response_A>\n{response_a}\n</response_A>\n\n<response_B>\n{response_b}\n</response_B>\n\n"
        "Which response satisfies the criteria better? Answer with one JSON object: "
        "{{\"explanation\": <one or two short sentences>, \"winner\": \"A\"|\"B\"|\"tie\"}}. "
        "Output the JSON object only."
    ),
    reask="Your previous answer could not be used ({problem}). Answer again with the JSON object only.",
)

GROUPED_TEMPLATES: tuple[str, ...] = (POINTWISE_GROUPED_V2.version, POINTWISE_GROUPED_V1.version,
                                      POINTWISE_GROUPED_TERSE_V1.version)
TEMPLATES = {t.version: t for t in (POINTWISE_GROUPED_V1, POINTWISE_GROUPED_V2, POINTWISE_GROUPED_TERSE_V1,
                                    POINTWISE_SINGLE_V1, PAIRWISE_V1)}


def labels_for(criteria: tuple[Criterion, ...] | list[Criterion]) -> dict[str, str]:
    """Local label -> criterion id, in rubric order (``C1`` is the first criterion)."""
    return {f"C{i}": c.id for i, c in enumerate(criteria, start=1)}


def conversation_text(prompt: tuple[Message, ...]) -> str:
    return "\n\n".join(f"[{m.role}]\n{m.content}" for m in prompt)


def _messages(template: Template, user: str, reask: str | None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": template.system}, {"role": "user", "content": user}]
    if reask:
        messages.append({"role": "user", "content": reask})
    return messages


def render_grouped(
    template: Template, rubric: Rubric, response_text: str, labelled: dict[str, Criterion], reask: str | None = None
) -> list[dict[str, str]]:
    """Messages asking for ``labelled`` (label -> criterion) in one call."""
    criteria = "\n".join(f"{label}: {c.text}" for label, c in labelled.items())
    user = template.user.format(conversation=conversation_text(rubric.prompt), response=response_text,
                                criteria=criteria, labels=", ".join(labelled))
    return _messages(template, user, reask)


def render_single(
    template: Template, rubric: Rubric, response_text: str, criterion: Criterion, reask: str | None = None
) -> list[dict[str, str]]:
    user = template.user.format(conversation=conversation_text(rubric.prompt), response=response_text,
                                criterion=criterion.text)
    return _messages(template, user, reask)


def _pairwise_criterion(criterion: Criterion) -> str:
    marks = []
    if criterion.polarity is not None and criterion.polarity.value == "prohibited":
        marks.append("[must not]")
    if criterion.tier.value == "veto":
        marks.append("[safety]")
    return " ".join([*marks, criterion.text])


def render_pairwise(
    template: Template, rubric: Rubric, text_a: str, text_b: str, reask: str | None = None
) -> list[dict[str, str]]:
    criteria = "\n".join(f"- {_pairwise_criterion(c)}" for c in rubric.criteria)
    user = template.user.format(conversation=conversation_text(rubric.prompt), criteria=criteria,
                                response_a=text_a, response_b=text_b)
    return _messages(template, user, reask)


def grouped_schema(labels: list[str]) -> dict[str, Any]:
    """Answer schema for a grouped call: exactly one item per label (enum ids, boolean ``met``)."""
    item = {
        "type": "object",
        "properties": {"id": {"type": "string", "enum": labels}, "explanation": {"type": "string"},
                       "met": {"type": "boolean"}},
        "required": ["id", "explanation", "met"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"verdicts": {"type": "array", "items": item, "minItems": len(labels),
                                    "maxItems": len(labels)}},
        "required": ["verdicts"],
        "additionalProperties": False,
    }


def keyed_grouped_schema(labels: list[str]) -> dict[str, Any]:
    """Answer schema for ``pointwise-grouped/2``: one required key per label, each ``{explanation, met}``."""
    item = {
        "type": "object",
        "properties": {"explanation": {"type": "string"}, "met": {"type": "boolean"}},
        "required": ["explanation", "met"],
        "additionalProperties": False,
    }
    return {"type": "object", "properties": dict.fromkeys(labels, item), "required": list(labels),
            "additionalProperties": False}


def terse_grouped_schema(labels: list[str]) -> dict[str, Any]:
    """Answer schema for ``pointwise-grouped-terse/1``: one required boolean per label."""
    return {"type": "object", "properties": {label: {"type": "boolean"} for label in labels},
            "required": list(labels), "additionalProperties": False}


def answer_schema(template: Template, labels: list[str]) -> dict[str, Any]:
    """The JSON schema a grouped template's answer must follow."""
    if template.version == POINTWISE_GROUPED_V1.version:
        return grouped_schema(labels)
    if template.version == POINTWISE_GROUPED_V2.version:
        return keyed_grouped_schema(labels)
    if template.version == POINTWISE_GROUPED_TERSE_V1.version:
        return terse_grouped_schema(labels)
    raise ValueError(f"{template.version} is not a grouped template")


SINGLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"explanation": {"type": "string"}, "criteria_met": {"type": "boolean"}},
    "required": ["explanation", "criteria_met"],
    "additionalProperties": False,
}

PAIRWISE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"explanation": {"type": "string"}, "winner": {"type": "string", "enum": ["A", "B", "tie"]}},
    "required": ["explanation", "winner"],
    "additionalProperties": False,
}
