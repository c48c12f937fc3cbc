"""Rubrics -> HealthBench JSONL rows (``prompt``, ``rubrics[criterion, points, tags]``, ``prompt_id``,
``example_tags``), so tools that read HealthBench can grade against our rubrics.

Points rules (docs/formats.md, "Importers"):

* when every criterion of a rubric carries its source ``points`` (a HealthBench import), they are written as
  they are, so import -> export -> import gives the same rubrics; a penalty (a proficiency criterion with negative
  points, text ``Avoids the following: <item>``) is written back as the source's negative item ``<item>``;
* otherwise all points are derived: proficiency ``round(10 * w / max(w), 2)`` (the heaviest criterion gets 10,
  ratios kept, so the HealthBench score over proficiency alone equals S1), bonus ``+1``, a ``prohibited`` veto
  ``-10``, a ``required`` veto ``+10``; the row gets the example tag ``promedical:points-derived``;
* a bonus criterion is tagged ``promedical:tier:bonus``, a ``required`` veto ``promedical:veto-required``, a
  ``prohibited`` veto ``promedical:veto`` and a penalty ``promedical:penalty``. HealthBench cannot express the
  first two (it adds bonus points to the denominator, unlike S2, and treats a missed required veto as lost points,
  not a veto), and the last two override the importer's veto rule. The tags let our importer restore every tier.

Kept from ``meta``: tags (as ``example_tags``), ``extra["canary"]`` and ``extra["ideal_completions_data"]``.
Lost: rubric version, provenance, category, specialty, license and any other ``meta.extra`` key.
"""

from __future__ import annotations

from typing import Any

from promedical.rubrics.importers.healthbench import (
    BONUS_TAG,
    PENALTY_PREFIX,
    PENALTY_TAG,
    VETO_REQUIRED_TAG,
    VETO_TAG,
)
from promedical.rubrics.importers.result import FieldError
from promedical.rubrics.schema import Criterion, Polarity, Rubric, Tier

POINTS_SCALE = 10.0
BONUS_POINTS = 1.0
VETO_POINTS = 10.0
DERIVED_TAG = "promedical:points-derived"


def _expected_sign(criterion: Criterion) -> int:
    prohibited = criterion.tier is Tier.VETO and criterion.polarity is Polarity.PROHIBITED
    return -1 if prohibited else 1


def _derived_points(criterion: Criterion, max_weight: float) -> float:
    if criterion.tier is Tier.PROFICIENCY:
        assert criterion.weight is not None
        return max(round(POINTS_SCALE * criterion.weight / max_weight, 2), 0.01)
    if criterion.tier is Tier.BONUS:
        return BONUS_POINTS
    return VETO_POINTS * _expected_sign(criterion)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _is_penalty(criterion: Criterion) -> bool:
    return criterion.tier is Tier.PROFICIENCY and criterion.points is not None and criterion.points < 0


def _tags(criterion: Criterion, kept_points: bool) -> list[str]:
    tags = list(criterion.tags)
    if criterion.axis and not any(t.startswith("axis:") for t in tags):
        tags.append(f"axis:{criterion.axis}")
    wanted: str | None
    if criterion.tier is Tier.BONUS:
        wanted = BONUS_TAG
    elif criterion.tier is Tier.VETO:
        wanted = VETO_REQUIRED_TAG if criterion.polarity is Polarity.REQUIRED else VETO_TAG
    else:
        wanted = PENALTY_TAG if kept_points and _is_penalty(criterion) else None
    if wanted and wanted not in tags:
        tags.append(wanted)
    return tags


def to_healthbench(rubric: Rubric) -> dict[str, Any]:
    """One HealthBench row; raises ``FieldError`` if a kept ``points`` contradicts its criterion's tier."""
    keep = all(c.points is not None for c in rubric.criteria)
    max_weight = max(c.weight or 0.0 for c in rubric.criteria)
    items = []
    for index, c in enumerate(rubric.criteria):
        text = c.text
        if keep:
            assert c.points is not None
            penalty = _is_penalty(c)
            if c.points == 0 or (not penalty and (c.points > 0) != (_expected_sign(c) > 0)):
                role = f"{c.tier.value} ({c.polarity.value if c.polarity else '-'})"
                raise FieldError(f"criteria.{index}.points", f"{c.points:g} contradicts a {role} criterion "
                                 "(HealthBench reads the tier from the sign of the points)")
            if penalty:
                if not text.startswith(PENALTY_PREFIX) or not text[len(PENALTY_PREFIX):].strip():
                    raise FieldError(f"criteria.{index}.text", f"a proficiency criterion with negative points "
                                     f"({c.points:g}) is a penalty and must read {PENALTY_PREFIX!r}<behaviour>")
                text = text[len(PENALTY_PREFIX):]
            points = c.points
        else:
            points = _derived_points(c, max_weight)
        items.append({"criterion": text, "points": _number(points), "tags": _tags(c, keep)})
    example_tags = list(rubric.meta.tags)
    if not keep and DERIVED_TAG not in example_tags:
        example_tags.append(DERIVED_TAG)
    row: dict[str, Any] = {
        "prompt": [m.model_dump(mode="json") for m in rubric.prompt],
        "rubrics": items,
        "example_tags": example_tags,
        "prompt_id": rubric.id,
    }
    for key in ("canary", "ideal_completions_data"):
        if key in rubric.meta.extra:
            row[key] = rubric.meta.extra[key]
    return row
