"""Source loaders: every supported format becomes ``Instruction`` records with source and license kept.

``load_source(SourceSpec)`` is the one entry. Named loaders know the layout of the public medical sets (see
``sources_medical.py``); ``jsonl``, ``csv`` and ``hf`` read any file or ``datasets`` folder given a text field.
A row that cannot become an instruction (empty text, missing field) is counted in the report, never fatal.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from promedical.data.instruction import Instruction
from promedical.io import UserError, iter_jsonl


def shared_data_dir() -> Path:
    """``$PROMEDICAL_SHARED_DATA`` or ``../shared/data`` beside the repository checkout."""
    default = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    return Path(os.environ.get("PROMEDICAL_SHARED_DATA", default)).resolve()


class SourceSpec(BaseModel):
    """One source in a pipeline config. ``path`` is relative to ``data_root`` unless absolute."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str  # a loader name (see LOADERS) or "jsonl" / "csv" / "hf"
    path: str | None = None  # default: the loader's usual place under the shared data folder
    limit: int | None = Field(default=None, ge=1)  # keep the first N instructions in file order
    label: str | None = None  # source name written on records (default: the loader name)
    license: str | None = None  # override (required for generic loaders)
    text_field: str = "instruction"  # generic loaders only
    id_field: str | None = None
    reference_field: str | None = None


@dataclass
class LoadReport:
    source: str
    path: str
    rows: int = 0
    loaded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "path": self.path, "rows": self.rows, "loaded": self.loaded,
                "skipped": dict(sorted(self.skipped.items()))}


Loader = Callable[[Path, SourceSpec, LoadReport], Iterator[Instruction]]
LOADERS: dict[str, tuple[str, Loader]] = {}  # name -> (default relative path, loader)


def register(name: str, default_path: str) -> Callable[[Loader], Loader]:
    def wrap(loader: Loader) -> Loader:
        LOADERS[name] = (default_path, loader)
        return loader

    return wrap


def text_or_skip(value: Any, report: LoadReport, what: str = "empty_text") -> str | None:
    if isinstance(value, str) and value.strip() and value.strip().lower() not in ("<noinput>", "none", "nan"):
        return value.strip()
    report.skipped[what] += 1
    return None


def _generic_row(row: dict[str, Any], index: int, spec: SourceSpec, report: LoadReport) -> Instruction | None:
    """One counted row (``report.rows`` is the caller's) -> an instruction, or ``None`` with the skip counted."""
    if spec.text_field not in row:
        report.skipped[f"missing_field:{spec.text_field}"] += 1
        return None
    text = text_or_skip(row.get(spec.text_field), report)
    if text is None:
        return None
    source_id = str(row[spec.id_field]) if spec.id_field and row.get(spec.id_field) is not None else str(index)
    reference = row.get(spec.reference_field) if spec.reference_field else None
    return Instruction.build(text, spec.label or spec.name, spec.license or "unknown", source_id,
                             reference if isinstance(reference, str) else None)


def json_objects(path: Path, report: LoadReport) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` per JSONL line that holds a JSON object; every non-blank line counts as a row,
    and lines that are not valid UTF-8 JSON or not objects are counted as skipped (``bad_json``,
    ``not_an_object``) instead of stopping the load."""
    for number, value, problem in iter_jsonl(path):
        if problem is not None and number == 0:
            raise UserError(str(problem))  # the file itself cannot be opened
        report.rows += 1
        if problem is not None:
            report.skipped["bad_json"] += 1
        elif not isinstance(value, dict):
            report.skipped["not_an_object"] += 1
        else:
            yield number, value


@register("jsonl", "")
def load_jsonl(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    for number, row in json_objects(path, report):
        record = _generic_row(row, number, spec, report)
        if record is not None:
            yield record


@register("csv", "")
def load_csv(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    with open(path, encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            report.rows += 1
            record = _generic_row(row, number, spec, report)
            if record is not None:
                yield record


@register("hf", "")
def load_hf(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    """A ``datasets`` folder written by ``save_to_disk`` (a Dataset, or the ``train`` split of a DatasetDict)."""
    from datasets import DatasetDict, load_from_disk

    data = load_from_disk(str(path))
    if isinstance(data, DatasetDict):
        data = data["train"] if "train" in data else data[next(iter(data))]
    for index, row in enumerate(data):
        report.rows += 1
        record = _generic_row(dict(row), index, spec, report)
        if record is not None:
            yield record


def _ensure_loaders() -> None:
    import promedical.data.sources_medical  # noqa: F401  - registers the named loaders


def resolve_path(spec: SourceSpec, data_root: Path | None = None) -> Path:
    _ensure_loaders()
    if spec.name not in LOADERS:
        raise UserError(f"sources: {spec.name}: unknown source; known: {', '.join(sorted(LOADERS))}")
    default = LOADERS[spec.name][0]
    raw = spec.path or default
    if not raw:
        raise UserError(f"sources: {spec.name}: a generic loader needs 'path'")
    path = Path(raw)
    if not path.is_absolute():
        path = (data_root or shared_data_dir()) / path
    if not path.exists():
        raise UserError(f"sources: {spec.name}: path: {path} does not exist")
    return path


def load_source(spec: SourceSpec, data_root: Path | None = None) -> tuple[list[Instruction], LoadReport]:
    """Load one source (first ``limit`` instructions in file order); exact in-source repeats are dropped."""
    path = resolve_path(spec, data_root)
    report = LoadReport(spec.label or spec.name, str(path))
    out: list[Instruction] = []
    seen: set[str] = set()
    for record in LOADERS[spec.name][1](path, spec, report):
        if record.id in seen:
            report.skipped["exact_repeat_in_source"] += 1
            continue
        seen.add(record.id)
        out.append(record)
        if spec.limit is not None and len(out) >= spec.limit:
            break
    report.loaded = len(out)
    return out, report


def known_sources() -> list[str]:
    _ensure_loaders()
    return sorted(LOADERS)
