"""Importers from public rubric data (HealthBench, K-QA) and the HealthBench exporter.

``import_file(format, path)`` returns an ``ImportResult`` (rubrics, responses, verdicts, skipped rows, problems
and counts); it never raises on bad content. The mappings are documented in docs/formats.md, "Importers".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from promedical.rubrics.importers.export import to_healthbench
from promedical.rubrics.importers.healthbench import import_healthbench
from promedical.rubrics.importers.kqa import import_kqa, kqa_rubric_id
from promedical.rubrics.importers.normalise import normalise_statement, split_statements
from promedical.rubrics.importers.result import FieldError, ImportResult, Skipped

IMPORTERS: dict[str, Callable[[str | Path], ImportResult]] = {
    "healthbench": import_healthbench,
    "kqa": import_kqa,
}
EXPORTERS = ("healthbench",)


def import_file(fmt: str, path: str | Path) -> ImportResult:
    return IMPORTERS[fmt](path)


__all__ = [
    "EXPORTERS",
    "IMPORTERS",
    "FieldError",
    "ImportResult",
    "Skipped",
    "import_file",
    "import_healthbench",
    "import_kqa",
    "kqa_rubric_id",
    "normalise_statement",
    "split_statements",
    "to_healthbench",
]
