"""Source loaders: every supported format becomes ``Instruction`` records with source and license kept.

``load_source(SourceSpec)`` is the one entry and ``LOADERS`` the one table of loaders. Named loaders know the layout
of the public medical sets (``sources_medical.py``); ``jsonl``, ``csv`` and ``hf`` read any file or ``datasets``
folder given a text field. A row that cannot become an instruction (empty text, missing field) is counted in the
report, never fatal.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from promedical.data import sources_medical as medical
from promedical.data.instruction import Instruction
from promedical.data.sources_base import Loader, LoadReport, SourceSpec, json_objects, text_or_skip
from promedical.io import UserError

__all__ = ["LOADERS", "LoadReport", "SourceSpec", "known_sources", "load_source", "resolve_path", "shared_data_dir"]


def shared_data_dir() -> Path:
    """``$PROMEDICAL_SHARED_DATA`` or ``../shared/data`` beside the repository checkout."""
    default = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    return Path(os.environ.get("PROMEDICAL_SHARED_DATA", default)).resolve()


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


def load_jsonl(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    for number, row in json_objects(path, report):
        record = _generic_row(row, number, spec, report)
        if record is not None:
            yield record


def load_csv(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    with open(path, encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            report.rows += 1
            record = _generic_row(row, number, spec, report)
            if record is not None:
                yield record


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


# name -> (default path under the shared data folder or data_root, loader); generic loaders need a path
LOADERS: dict[str, tuple[str, Loader]] = {
    "jsonl": ("", load_jsonl),
    "csv": ("", load_csv),
    "hf": ("", load_hf),
    "kqa": ("k-qa/questions_w_answers.jsonl", medical.load_kqa),
    "kqa-questions": ("k-qa/questions.jsonl", medical.load_kqa_questions),
    "healthbench": ("healthbench_samples/m42_judge_responses.jsonl", medical.load_healthbench),
    "medquad": ("medquad/medquad_answered.jsonl", medical.load_medquad),
    "medinstruct": ("alpacare_medinstruct/MedInstruct-test.jsonl", medical.load_medinstruct),
    "medinstruct-seed": ("alpacare_medinstruct/med_seed.json", medical.load_medinstruct_seed),
    "icliniq": ("alpacare_medinstruct/reference_outputs/gpt-4/iCliniq_output.jsonl", medical.load_icliniq),
    "chatdoctor": ("chatdoctor5k/chatdoctor5k.json", medical.load_chatdoctor),
    "liveqa": ("liveqa_med_trec2017/TREC-2017-LiveQA-Medical-Test.xml", medical.load_liveqa),
    "medicationqa": ("medicationqa/MedInfo2019-QA-Medications.xlsx", medical.load_medicationqa),
    "medqa": ("medqa_usmle_4opt/phrases_no_exclude_test.jsonl", medical.load_medqa),
    "pubmedqa": ("pubmedqa/ori_pqal.json", medical.load_pubmedqa),
}


def resolve_path(spec: SourceSpec, data_root: Path | None = None) -> Path:
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
    return sorted(LOADERS)
