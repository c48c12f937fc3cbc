"""Rubric review rounds, the pure part: applying a reviewer's edits, settling a rubric's decision, pass rates.

An edit changes criteria in place (text, tier, weight, polarity; criterion ids stay) and must yield a valid
``Rubric``: the edited rubric is re-validated by the schema, so proficiency weights must still sum to 1 and a veto
must keep an explicit polarity; otherwise the edit is refused with the schema's own message. The edited rubric is a
new version (original version + 1) whose provenance names the original as parent, the review round and the author.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from promedical.rubrics.schema import Rubric

DECISIONS = ("accept", "edit", "reject")
EDITABLE = ("text", "tier", "weight", "polarity")
MAX_TEXT = 2000  # characters of one criterion's text (every reviewer of the rubric receives it on every page)


class EditError(ValueError):
    """An edit the schema refuses; the message names the criterion or field."""


@dataclass(frozen=True, slots=True)
class Change:
    criterion_id: str
    field: str
    old: Any
    new: Any

    def as_dict(self) -> dict[str, Any]:
        return {"criterion_id": self.criterion_id, "field": self.field, "old": self.old, "new": self.new}


def _clean(field: str, value: Any) -> Any:
    if field == "weight":
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            raise EditError("weight is not a number")
        try:
            weight = float(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past the float range
            raise EditError("weight is not a number") from None
        if not math.isfinite(weight):
            raise EditError("weight is not a finite number")
        return weight
    if field == "polarity" and value in ("", None):
        return None
    if field == "text":
        if not isinstance(value, str):
            raise EditError("text must be a string")
        if len(value) > MAX_TEXT:
            raise EditError(f"text has {len(value)} characters; at most {MAX_TEXT}")
    if field in ("tier", "polarity") and (not isinstance(value, str) or len(value) > 32):
        raise EditError(f"{field} must be one of the listed choices")
    return value if not isinstance(value, str) else value.strip()


def apply_edits(
    original: Rubric,
    current: Rubric,
    edits: Mapping[str, Mapping[str, Any]],
    *,
    author: str,
    review_round: int | None,
    reason: str,
    now: dt.datetime,
) -> tuple[Rubric, list[Change]]:
    """Return the edited rubric and the list of changes against ``current``; raise ``EditError`` if invalid.

    ``edits`` maps criterion id to new values of any of ``text``, ``tier``, ``weight``, ``polarity``.
    """
    if not reason.strip():
        raise EditError("an edit needs a reason")
    known = {c.id for c in current.criteria}
    unknown = set(edits) - known
    if unknown:  # not echoed: the ids are whatever the client sent
        raise EditError(f"unknown criterion id(s): {len(unknown)} edited id(s) are not in this rubric")
    changes: list[Change] = []
    criteria: list[dict[str, Any]] = []
    for criterion in current.criteria:
        before = criterion.model_dump(mode="json")
        data = dict(before)
        for field, value in edits.get(criterion.id, {}).items():
            if field not in EDITABLE:
                raise EditError(f"criterion {criterion.id}: that field cannot be edited (only {', '.join(EDITABLE)})")
            try:
                data[field] = _clean(field, value)
            except EditError as exc:
                raise EditError(f"criterion {criterion.id}: {exc}") from None
        if data["tier"] != "proficiency":
            data["weight"] = None  # only proficiency criteria carry weight
        changes.extend(Change(criterion.id, f, before[f], data[f]) for f in EDITABLE if data[f] != before[f])
        criteria.append(data)
    if not changes:
        raise EditError("the edit changes nothing; use accept instead")
    record = current.model_dump(mode="json")
    record["criteria"] = criteria
    record["version"] = original.version + 1
    record["provenance"] = {
        "author": author,
        "author_kind": "human",
        "review_round": review_round,
        "parent": f"{original.id}@{original.version}",
        "created": now.replace(microsecond=0).isoformat() + "Z",
        "note": reason.strip(),
    }
    try:
        edited = Rubric.model_validate(record)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if where.startswith("criteria.") and where.split(".")[1].isdigit():
            where = f"criterion {criteria[int(where.split('.')[1])]['id']}" + where[len("criteria.N") :]
        raise EditError(f"{where}: {message}" if where else message) from None
    return edited, changes


def settle(decisions: Iterable[str], edited: bool) -> str | None:
    """One rubric's outcome from its reviewers' latest decisions: any reject rejects; any edit makes it edited."""
    seen = set(decisions)
    if not seen:
        return None
    if "reject" in seen:
        return "reject"
    if "edit" in seen or edited:
        return "edit"
    return "accept"


@dataclass(frozen=True, slots=True)
class PassRate:
    decided: int
    accepted: int
    edited: int
    rejected: int

    @property
    def pass_rate(self) -> float | None:
        """Share of decided rubrics the experts accepted unchanged (the paper's expert pass rate)."""
        return self.accepted / self.decided if self.decided else None

    @property
    def usable_rate(self) -> float | None:
        """Share of decided rubrics kept, as they were or after edits."""
        return (self.accepted + self.edited) / self.decided if self.decided else None


def pass_rate(outcomes: Iterable[str | None]) -> PassRate:
    counts = {"accept": 0, "edit": 0, "reject": 0}
    for outcome in outcomes:
        if outcome is not None:
            counts[outcome] += 1
    return PassRate(sum(counts.values()), counts["accept"], counts["edit"], counts["reject"])
