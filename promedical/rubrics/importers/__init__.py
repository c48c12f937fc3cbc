"""Importers from public rubric data (HealthBench, K-QA) and the HealthBench exporter.

``import_file(format, path)`` returns an ``ImportResult`` (rubrics, responses, verdicts, skipped rows, problems
and counts); it never raises on bad content. The mappings are documented in docs/formats.md, "Importers".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from promedical.rubrics.importers.export import to_healthbench
from promedical.rubrics.importers.healthbench import import_healthbench
from promedical.rubrics.importers.kqa import import_kqa, kqa_rubric_id
from promedical.rubrics.importers.normalise import normalise_statement, split_statements
from promedical.rubrics.importers.result import FieldError, ImportResult, Skipped
from promedical.rubrics.importers.veto_rule import DEFAULT_VETO_RULE, VetoRule, parse_veto_rule

IMPORTERS: dict[str, Callable[..., ImportResult]] = {
    "healthbench": import_healthbench,
    "kqa": import_kqa,
}
EXPORTERS = ("healthbench",)


def import_file(fmt: str, path: str | Path, **options: Any) -> ImportResult:
    """``options``: the importer's own keywords (HealthBench: ``veto_rule``)."""
    return IMPORTERS[fmt](path, **options)


__all__ = [
    "DEFAULT_VETO_RULE",
    "EXPORTERS",
    "IMPORTERS",
    "FieldError",
    "ImportResult",
    "Skipped",
    "VetoRule",
    "import_file",
    "import_healthbench",
    "import_kqa",
    "kqa_rubric_id",
    "normalise_statement",
    "parse_veto_rule",
    "split_statements",
    "to_healthbench",
]
