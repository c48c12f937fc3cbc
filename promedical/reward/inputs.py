"""What the reward model scores: a response with the criteria to score it against (one tier and polarity each)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CriterionInput:
    text: str
    tier: str  # proficiency | bonus | veto
    polarity: str  # required | prohibited


@dataclass(frozen=True, slots=True)
class Group:
    """One response and the criteria to score it against."""

    instruction: str
    response: str
    criteria: tuple[CriterionInput, ...]
