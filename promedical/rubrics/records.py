"""Responses to rubric prompts and per-criterion verdicts on them: the records every stage exchanges."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from promedical.hashing import content_hash
from promedical.rubrics.schema import Polarity, Tier

RESPONSE_SCHEMA: Literal["promedical.response/1"] = "promedical.response/1"
VERDICT_SCHEMA: Literal["promedical.verdict/1"] = "promedical.verdict/1"


class Status(StrEnum):
    MET = "met"
    UNMET = "unmet"
    UNSCORED = "unscored"  # the judge could not give an answer; never read as unmet


class OrderKey(StrEnum):
    """The keys of the lexicographic order, in the order they are tried (``scoring.compare_outcomes``)."""

    S3 = "s3"  # fewer vetoes violated or unknown (fail closed)
    S1 = "s1"  # higher weighted proficiency over the criteria scored for both
    S2 = "s2"  # more bonus criteria met over the criteria scored for both


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Response(_Frozen):
    schema_version: Literal["promedical.response/1"] = RESPONSE_SCHEMA
    id: str = Field(min_length=1, max_length=256)
    rubric_id: str = Field(min_length=1)
    model: str = "unknown"  # the generator's spec or name (provenance)
    text: str
    meta: dict[str, Any] = Field(default_factory=dict)  # generation parameters, seed, timing, source row

    @staticmethod
    def make_id(rubric_id: str, model: str, text: str) -> str:
        return "rs-" + content_hash([rubric_id, model, text])

    @classmethod
    def build(cls, rubric_id: str, model: str, text: str, **meta: Any) -> Response:
        return cls(id=cls.make_id(rubric_id, model, text), rubric_id=rubric_id, model=model, text=text, meta=meta)


class Verdict(_Frozen):
    schema_version: Literal["promedical.verdict/1"] = VERDICT_SCHEMA
    response_id: str = Field(min_length=1)
    rubric_id: str = Field(min_length=1)
    criterion_id: str = Field(min_length=1)
    status: Status
    reason: str | None = None  # why unscored; required then
    explanation: str | None = None
    judge: str = "unknown"  # judge spec, or "human:<annotator>" for expert labels
    template_version: str | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("reason")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @model_validator(mode="after")
    def _unscored_has_reason(self) -> Verdict:
        if self.status is Status.UNSCORED and not self.reason:
            raise ValueError("an unscored verdict must say why (reason)")
        return self

    @property
    def key(self) -> tuple[str, str]:
        return (self.response_id, self.criterion_id)


PAIR_SCHEMA: Literal["promedical.pair/1"] = "promedical.pair/1"
CRITERION_PAIR_SCHEMA: Literal["promedical.criterion_pair/1"] = "promedical.criterion_pair/1"


class PreferencePair(_Frozen):
    """Two responses to one rubric, ordered lexicographically (fewer vetoes, then S1, then S2)."""

    schema_version: Literal["promedical.pair/1"] = PAIR_SCHEMA
    id: str
    rubric_id: str
    prompt: list[dict[str, str]]  # chat messages
    chosen_id: str
    rejected_id: str
    chosen: str
    rejected: str
    decided_by: OrderKey  # the first key of the lexicographic order that separated them
    # {"s3": rejected-chosen, "s1": chosen-rejected, "s2": chosen-rejected}; S1 and S2 over the criteria scored for
    # both responses (``s1`` is null when no proficiency criterion was scored for both: the pair was decided on S3)
    margins: dict[str, float | None]
    # unscored criteria per side and tier: {"chosen": {"proficiency": n, "bonus": n, "veto": n}, "rejected": {...}}
    unscored: dict[str, dict[str, int]] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)  # judge, models, rule, epsilon


class CriterionPair(_Frozen):
    """One row of a criterion-expanded pair: the preference on a single injected criterion.

    ``chosen`` is the response that better satisfies this criterion alone (met over unmet for a ``required``
    criterion; not-violating over violating for a ``prohibited`` veto), which may differ from the pair's overall
    order. Criteria on which both responses agree, or that either leaves unscored, give no row.
    """

    schema_version: Literal["promedical.criterion_pair/1"] = CRITERION_PAIR_SCHEMA
    id: str
    pair_id: str
    rubric_id: str
    criterion_id: str
    tier: Tier
    criterion: str  # the criterion text injected into the reward model input
    polarity: Polarity
    prompt: list[dict[str, str]]
    chosen: str
    rejected: str
    chosen_id: str
    rejected_id: str
    meta: dict[str, Any] = Field(default_factory=dict)
