"""The rubric model: criteria in three tiers (proficiency S1, bonus S2, veto S3) and the rubric that holds them.

Every model is frozen. Invariants are enforced at construction, so a ``Rubric`` in memory is always valid:
proficiency weights are positive and sum to 1 (within ``WEIGHT_TOLERANCE``), bonus and veto criteria carry no
weight, a veto states its polarity explicitly, criterion ids are unique, and every rubric has at least one
proficiency criterion. Importers that meet other weights normalise them (``normalise_weights``) before building.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from promedical.hashing import content_hash

RUBRIC_SCHEMA: Literal["promedical.rubric/1"] = "promedical.rubric/1"
WEIGHT_TOLERANCE = 1e-6


class Tier(StrEnum):
    PROFICIENCY = "proficiency"  # S1: weighted, weights sum to 1
    BONUS = "bonus"  # S2: count met
    VETO = "veto"  # S3: count violated


# The tier names in the enum's order: the order of every per-tier tuple (``Scores.unscored_by_tier``, reports).
TIER_NAMES: tuple[str, ...] = tuple(t.value for t in Tier)


class Polarity(StrEnum):
    """How a criterion's verdict maps to being satisfied.

    ``required``: the criterion describes behaviour the response must show; it is satisfied when ``met``.
    ``prohibited``: the criterion describes behaviour the response must not show; it is violated when ``met``.
    Proficiency and bonus criteria are always ``required``. A veto must say which it is: sign errors are the
    most reported defect in rubric data, so the schema never guesses.
    """

    REQUIRED = "required"
    PROHIBITED = "prohibited"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


def _non_blank(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{what} is empty")
    return value


class Criterion(_Frozen):
    id: str = Field(min_length=1, max_length=128)
    tier: Tier
    text: str
    weight: float | None = Field(default=None, validate_default=True)
    polarity: Polarity | None = Field(default=None, validate_default=True)
    axis: str | None = None
    tags: tuple[str, ...] = ()
    points: float | None = None  # the source's own points (HealthBench), kept for its score

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return _non_blank(value, "criterion text")

    @model_validator(mode="before")
    @classmethod
    def _default_polarity(cls, data: Any) -> Any:
        # Only proficiency and bonus default (to required); a veto without polarity is refused below.
        defaults = isinstance(data, dict) and data.get("tier") in (Tier.PROFICIENCY, Tier.BONUS)
        if defaults and data.get("polarity") is None:
            return {**data, "polarity": Polarity.REQUIRED.value}
        return data

    @field_validator("weight")
    @classmethod
    def _weight(cls, weight: float | None, info: ValidationInfo) -> float | None:
        tier = info.data.get("tier")
        if tier is Tier.PROFICIENCY:
            if weight is None:
                raise ValueError("proficiency criterion needs a weight > 0")
            if not math.isfinite(weight) or weight <= 0:
                raise ValueError(f"proficiency weight must be a finite number > 0, got {weight}")
        elif tier is not None and weight is not None:
            raise ValueError(f"{tier.value} criterion carries no weight (got {weight})")
        return weight

    @field_validator("polarity")
    @classmethod
    def _polarity(cls, polarity: Polarity | None, info: ValidationInfo) -> Polarity | None:
        tier = info.data.get("tier")
        if tier is Tier.VETO and polarity is None:
            raise ValueError("veto criterion needs an explicit polarity: 'prohibited' or 'required'")
        if tier in (Tier.PROFICIENCY, Tier.BONUS) and polarity is Polarity.PROHIBITED:
            raise ValueError(f"{tier.value} criterion must have polarity 'required'")
        return polarity

    @field_validator("points")
    @classmethod
    def _points(cls, points: float | None) -> float | None:
        if points is not None and not math.isfinite(points):
            raise ValueError("points must be finite")
        return points

    def content_key(self) -> str:
        """Hash of what the criterion says (not its id): used by caches and audits."""
        return content_hash([self.tier.value, self.text, self.polarity.value if self.polarity else None])


class Message(_Frozen):
    role: Literal["system", "user", "assistant", "developer"]
    content: str


class RubricMeta(_Frozen):
    category: str | None = None
    specialty: str | None = None
    source: str | None = None  # e.g. "healthbench", "kqa", "promedical-sample", "drafted"
    license: str | None = None
    tags: tuple[str, ...] = ()
    extra: dict[str, Any] = Field(default_factory=dict)


class Provenance(_Frozen):
    author: str = "unknown"  # a person's handle or a model spec
    author_kind: Literal["human", "model", "import", "unknown"] = "unknown"
    review_round: int | None = Field(default=None, ge=0)
    parent: str | None = None  # "<rubric id>@<version>" this one was derived from
    created: str | None = None  # ISO 8601
    note: str | None = None


class Rubric(_Frozen):
    schema_version: Literal["promedical.rubric/1"] = RUBRIC_SCHEMA
    id: str = Field(min_length=1, max_length=256)
    version: int = Field(default=1, ge=1)
    prompt: tuple[Message, ...]
    criteria: tuple[Criterion, ...]
    meta: RubricMeta = Field(default_factory=RubricMeta)
    provenance: Provenance = Field(default_factory=Provenance)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, prompt: tuple[Message, ...]) -> tuple[Message, ...]:
        if not prompt:
            raise ValueError("prompt is empty")
        if not any(m.role == "user" and m.content.strip() for m in prompt):
            raise ValueError("prompt has no non-empty user message")
        return prompt

    @field_validator("criteria")
    @classmethod
    def _criteria(cls, criteria: tuple[Criterion, ...]) -> tuple[Criterion, ...]:
        if not criteria:
            raise ValueError("rubric has no criteria")
        seen: set[str] = set()
        for criterion in criteria:
            if criterion.id in seen:
                raise ValueError(f"duplicate criterion id {criterion.id!r}")
            seen.add(criterion.id)
        weights = [c.weight for c in criteria if c.tier is Tier.PROFICIENCY and c.weight is not None]
        if not weights:
            raise ValueError("rubric has no proficiency criterion")
        total = math.fsum(weights)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise ValueError(f"proficiency weights sum to {total:.6g}, not 1 (tolerance {WEIGHT_TOLERANCE})")
        return criteria

    @property
    def instruction(self) -> str:
        """The last user turn: what the response answers."""
        return next(m.content for m in reversed(self.prompt) if m.role == "user")

    def by_tier(self, tier: Tier) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if c.tier is tier)

    def criterion(self, criterion_id: str) -> Criterion:
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise KeyError(criterion_id)


def rubric_content_id(
    prompt: list[Message] | tuple[Message, ...], criteria: list[Criterion] | tuple[Criterion, ...]
) -> str:
    """Content-hash id for a rubric: the same prompt and criteria always give the same id."""
    payload = {
        "prompt": [m.model_dump(mode="json") for m in prompt],
        "criteria": [c.model_dump(mode="json", exclude={"id"}) for c in criteria],
    }
    return "rb-" + content_hash(payload)


def normalise_weights(raw: list[float]) -> list[float]:
    """Scale positive raw weights (e.g. HealthBench points) to sum to exactly 1 (up to float rounding).

    The rule every importer follows: ``w_i = p_i / sum(p)``; raw weights must be positive and finite.
    """
    if not raw:
        raise ValueError("no weights to normalise")
    if any(not math.isfinite(p) or p <= 0 for p in raw):
        raise ValueError(f"weights to normalise must be positive and finite, got {raw}")
    total = math.fsum(raw)
    return [p / total for p in raw]
