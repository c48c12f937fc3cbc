"""Files in and out, with one clear problem line per defect: JSONL reading, validation into pydantic models,
atomic writes, and ``UserError``.

This is the foundation under every layer, so it knows no record type of the project; reading rubrics, responses
and verdicts (which need those types) is ``promedical.io``'s, one layer up beside the records.
A problem is reported as ``PATH:LINE: <record id>: <field>: <problem>``; ``-`` stands for an unknown id or field.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class UserError(Exception):
    """A mistake in what the user gave us: printed as one line, exit code 2, never a traceback."""


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    line: int
    record_id: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.record_id}: {self.field}: {self.message}"


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def safe_token(text: str, limit: int = 80) -> str:
    """An id or field name as one unambiguous token: no ':' or white space (percent-escaped), never empty."""
    token = quote(text[:limit], safe="._-@/+[]()<>'\"*,=~!$&")
    return token or "''"


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(safe_token(str(part)) for part in loc) or "-"


def pydantic_problems(path: str, line: int, record_id: str, error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append(Problem(path, line, record_id, _loc(tuple(item["loc"])), _one_line(message)))
    return problems


def error_text(error: ValidationError) -> str:
    """The first validation message of ``error`` on one line, without pydantic's prefixes and links."""
    item = error.errors(include_url=False)[0]
    message = str(item["msg"]).removeprefix("Value error, ")
    where = _loc(tuple(item["loc"]))
    return _one_line(message if where == "-" else f"{where}: {message}")


def _record_id(raw: Any, id_field: str) -> str:
    if isinstance(raw, dict):
        value = raw.get(id_field)
        if isinstance(value, str) and value.strip():
            return safe_token(value)
    return "-"


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any | None, Problem | None]]:
    """Yield ``(line_number, parsed_value, problem)`` per non-blank line; never raises on content."""
    shown = str(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        yield 0, None, Problem(shown, 0, "-", "-", f"cannot open: {exc.strerror or exc}")
        return
    with handle:
        for number, raw_line in enumerate(handle, start=1):
            if not raw_line.strip():
                continue
            try:
                text = raw_line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, None, Problem(shown, number, "-", "-", f"not valid UTF-8 (byte {exc.start})")
                continue
            try:
                value = json.loads(text)
            except (json.JSONDecodeError, RecursionError) as exc:
                message = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                yield number, None, Problem(shown, number, "-", "-", f"bad JSON: {message}")
                continue
            yield number, value, None


def load_models(
    path: str | Path,
    model: type[M],
    id_field: str = "id",
    check: Callable[[M], Iterable[tuple[str, str]]] | None = None,
) -> tuple[list[tuple[int, M]], list[Problem]]:
    """Parse a JSONL file of ``model`` records, collecting every problem instead of stopping at the first."""
    shown = str(path)
    good: list[tuple[int, M]] = []
    problems: list[Problem] = []
    for number, value, problem in iter_jsonl(path):
        if problem is not None:
            problems.append(problem)
            continue
        record_id = _record_id(value, id_field)
        if not isinstance(value, dict):
            problems.append(Problem(shown, number, "-", "-", f"expected a JSON object, got {type(value).__name__}"))
            continue
        try:
            record = model.model_validate(value)
        except ValidationError as exc:
            problems.extend(pydantic_problems(shown, number, record_id, exc))
            continue
        except (RecursionError, ValueError, TypeError) as exc:  # pathological input pydantic did not wrap
            problems.append(Problem(shown, number, record_id, "-", _one_line(str(exc) or type(exc).__name__)))
            continue
        if check is not None:
            problems.extend(Problem(shown, number, record_id, f, m) for f, m in check(record))
        good.append((number, record))
    return good, problems


def to_json_line(record: BaseModel | dict[str, Any]) -> str:
    if isinstance(record, BaseModel):
        return record.model_dump_json(exclude_none=False)
    return json.dumps(record, ensure_ascii=False)


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: str = "w") -> Iterator[Any]:
    """Write to a temporary file beside ``path`` and rename it into place only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | Path, records: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Atomically write records as JSONL; returns the count."""
    count = 0
    with atomic_writer(path) as handle:
        for record in records:
            handle.write(to_json_line(record) + "\n")
            count += 1
    return count


def write_json(path: str | Path, value: Any) -> None:
    with atomic_writer(path) as handle:
        json.dump(value, handle, indent=2, ensure_ascii=False, sort_keys=True, default=str)
        handle.write("\n")
