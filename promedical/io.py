"""The edge where files become records: rubrics, responses and verdicts read with one clear problem line per defect.

Raw dicts live here, in ``promedical.files`` and in the importers only. Everything past this module holds validated,
frozen records. The generic machinery (JSONL reading, ``load_models``, atomic writes, ``UserError``) is
``promedical.files``, below the records; it is re-exported here so that a command reads and writes through one
module.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from promedical.files import (
    Problem,
    UserError,
    atomic_writer,
    error_text,
    iter_jsonl,
    load_models,
    pydantic_problems,
    safe_token,
    to_json_line,
    write_json,
    write_jsonl,
)
from promedical.rubrics.records import Response, Verdict
from promedical.rubrics.schema import Rubric

__all__ = ["Problem", "UserError", "atomic_writer", "error_text", "iter_jsonl", "load_models", "load_rubrics",
           "pydantic_problems", "read_responses", "read_rubrics", "read_verdicts", "safe_token", "to_json_line",
           "write_json", "write_jsonl"]


def load_rubrics(paths: Iterable[str | Path]) -> tuple[list[Rubric], list[Problem]]:
    """Load rubric files; duplicate ``(id, version)`` across all files is a problem on the later line."""
    rubrics: list[Rubric] = []
    problems: list[Problem] = []
    first_seen: dict[tuple[str, int], str] = {}
    for path in paths:
        records, file_problems = load_models(path, Rubric)
        for number, rubric in records:
            key = (rubric.id, rubric.version)
            if key in first_seen:
                file_problems.append(
                    Problem(str(path), number, safe_token(rubric.id), "id",
                            f"duplicate rubric id (version {rubric.version}), first at {first_seen[key]}")
                )
                continue
            first_seen[key] = f"{path}:{number}"
            rubrics.append(rubric)
        problems.extend(sorted(file_problems, key=lambda p: p.line))
    return rubrics, problems


def _require(path: str | Path, problems: list[Problem]) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise UserError(f"{problems[0]}{more}")


def read_rubrics(paths: Iterable[str | Path]) -> list[Rubric]:
    """Load rubrics or raise ``UserError`` naming the first problem."""
    paths = list(paths)
    rubrics, problems = load_rubrics(paths)
    _require(paths[0] if paths else "-", problems)
    return rubrics


def read_responses(path: str | Path) -> list[Response]:
    records, problems = load_models(path, Response)
    _require(path, problems)
    return [r for _, r in records]


def read_verdicts(path: str | Path) -> list[Verdict]:
    records, problems = load_models(path, Verdict, id_field="response_id")
    _require(path, problems)
    return [r for _, r in records]
