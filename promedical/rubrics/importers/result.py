"""What an import produces and reports: records, skipped rows with their reasons, bad rows, and the counts.

Also the small vocabulary every importer uses to read raw rows: ``FieldError`` for a defect in one field (it
becomes one ``PATH:LINE: <id>: <field>: <problem>`` line), ``Skip`` for a well-formed row that cannot become a
rubric, and typed getters that refuse wrong types instead of guessing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from promedical.io import Problem, iter_jsonl
from promedical.rubrics.records import Response, Verdict
from promedical.rubrics.schema import TIER_NAMES, Rubric, Tier


class FieldError(Exception):
    """A raw row has a missing or malformed field; ``field`` is a dotted path into the source row."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Skip:
    """A well-formed row that cannot become a valid rubric (``kind`` is a stable code, ``detail`` says why)."""

    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class Skipped:
    path: str
    line: int
    record_id: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.record_id}: skipped ({self.kind}): {self.detail}"


@dataclass
class ImportResult:
    source: str
    rows: int = 0
    rubrics: list[Rubric] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)  # importer-specific counts (split, dropped, ...)

    def summary(self) -> dict[str, Any]:
        tiers: Counter[str] = Counter(c.tier.value for r in self.rubrics for c in r.criteria)
        polarity: Counter[str] = Counter(
            c.polarity.value for r in self.rubrics for c in r.criteria if c.tier is Tier.VETO and c.polarity
        )
        statuses: Counter[str] = Counter(v.status.value for v in self.verdicts)
        return {
            "format": self.source,
            "rows": self.rows,
            "rubrics": len(self.rubrics),
            "criteria": sum(tiers.values()),
            "criteria_by_tier": {t: tiers.get(t, 0) for t in TIER_NAMES},
            "veto_by_polarity": dict(sorted(polarity.items())),
            "responses": len(self.responses),
            "verdicts": len(self.verdicts),
            "verdicts_by_status": {s: statuses.get(s, 0) for s in ("met", "unmet", "unscored")},
            "skipped": len(self.skipped),
            "skipped_by_reason": dict(sorted(Counter(s.kind for s in self.skipped).items())),
            "bad_rows": len({(p.path, p.line) for p in self.problems}),
            "notes": dict(sorted(self.notes.items())),
        }


def iter_rows(path: str | Path, result: ImportResult) -> Iterator[tuple[int, dict[str, Any]]]:
    """JSON-object rows of a JSONL file; unreadable lines become problems in ``result``."""
    shown = str(path)
    for number, value, problem in iter_jsonl(path):
        if problem is not None:
            result.problems.append(problem)
            result.rows += number > 0  # line 0: the file itself could not be opened
            continue
        result.rows += 1
        if not isinstance(value, dict):
            message = f"expected a JSON object, got {type(value).__name__}"
            result.problems.append(Problem(shown, number, "-", "-", message))
            continue
        yield number, value


def validation_field(error: ValidationError, renames: dict[str, str] | None = None) -> FieldError:
    """The first pydantic error as a ``FieldError``, with our field names mapped back to the source's."""
    first = error.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"]]
    if loc and renames and loc[0] in renames:
        loc[0] = renames[loc[0]]
    message = str(first["msg"]).removeprefix("Value error, ")
    return FieldError(".".join(loc) or "-", " ".join(message.split()))


def get_str(row: dict[str, Any], key: str, *, required: bool = True, blank_ok: bool = False) -> str | None:
    value = row.get(key)
    if value is None:
        if required:
            raise FieldError(key, "missing")
        return None
    if not isinstance(value, str):
        raise FieldError(key, f"expected a string, got {type(value).__name__}")
    if not blank_ok and not value.strip():
        raise FieldError(key, "is empty")
    return value


def get_list(row: dict[str, Any], key: str, *, required: bool = True) -> list[Any] | None:
    value = row.get(key)
    if value is None:
        if required:
            raise FieldError(key, "missing")
        return None
    if not isinstance(value, list):
        raise FieldError(key, f"expected a list, got {type(value).__name__}")
    return value


def get_str_list(row: dict[str, Any], key: str, *, required: bool = True) -> list[str] | None:
    values = get_list(row, key, required=required)
    if values is None:
        return None
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise FieldError(f"{key}.{index}", f"expected a string, got {type(value).__name__}")
    return values


def as_number(value: Any, where: str) -> float:
    """A finite JSON number (``true``/``false`` are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(where, f"expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise FieldError(where, "must be a finite number")
    return number
