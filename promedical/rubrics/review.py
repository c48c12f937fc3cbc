"""Expert review decisions on drafted rubrics: the file the review app exports and the data pipeline reads back.

One JSONL record per (rubric, reviewer, round). ``accept`` keeps the draft; ``edit`` carries the corrected rubric
(a full, valid ``Rubric`` with ``version`` one higher and ``provenance.parent = "<id>@<version>"``); ``reject``
carries a critique. A round's expert pass rate is the share of rubrics accepted without edits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promedical.rubrics.schema import Rubric

REVIEW_DECISION_SCHEMA: Literal["promedical.review_decision/1"] = "promedical.review_decision/1"


class ReviewDecision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["promedical.review_decision/1"] = REVIEW_DECISION_SCHEMA
    rubric_id: str = Field(min_length=1)
    rubric_version: int = Field(ge=1)
    round: int = Field(ge=0)
    reviewer: str = Field(min_length=1)
    decision: Literal["accept", "edit", "reject"]
    critique: str | None = None
    edited: Rubric | None = None
    decided_at: str | None = None  # ISO 8601

    @model_validator(mode="after")
    def _consistent(self) -> ReviewDecision:
        if self.decision == "edit":
            if self.edited is None:
                raise ValueError("an 'edit' decision must carry the edited rubric")
            expected_parent = f"{self.rubric_id}@{self.rubric_version}"
            if self.edited.provenance.parent != expected_parent:
                raise ValueError(f"edited rubric must name its parent {expected_parent!r}")
        elif self.edited is not None:
            raise ValueError(f"a '{self.decision}' decision carries no edited rubric")
        if self.decision == "reject" and not (self.critique and self.critique.strip()):
            raise ValueError("a 'reject' decision needs a critique")
        return self


def pass_rate(decisions: Iterable[ReviewDecision]) -> float | None:
    """Share of decisions that accepted the draft as written (edits and rejections do not pass)."""
    items = list(decisions)
    if not items:
        return None
    return sum(d.decision == "accept" for d in items) / len(items)
