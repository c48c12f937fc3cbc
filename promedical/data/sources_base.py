"""What every source loader shares: the config entry (``SourceSpec``), the per-source report, the loader type and the
row helpers. The loaders themselves are in ``sources.py`` (generic formats) and ``sources_medical.py`` (the public
medical sets); ``sources.LOADERS`` is the one table of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from promedical.data.instruction import Instruction
from promedical.io import UserError, iter_jsonl


class SourceSpec(BaseModel):
    """One source in a pipeline config. ``path`` is relative to ``data_root`` unless absolute."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str  # a loader name (see sources.LOADERS) or "jsonl" / "csv" / "hf"
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


def text_or_skip(value: Any, report: LoadReport, what: str = "empty_text") -> str | None:
    if isinstance(value, str) and value.strip() and value.strip().lower() not in ("<noinput>", "none", "nan"):
        return value.strip()
    report.skipped[what] += 1
    return None


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
