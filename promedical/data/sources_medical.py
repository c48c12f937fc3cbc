"""Named loaders for the public medical sets (folder layouts as in the shared data folder's README).

K-QA and HealthBench go through the rubric importers, so their instructions carry the id of the physician rubric
(``meta.rubric_id``) that can stand in for a drafted one. The others are instruction sources only; a reference
answer, where the source has one, is kept in ``reference`` (never used as a rubric). Each loader's name and default
path are in the table ``promedical.data.sources.LOADERS``.
"""

from __future__ import annotations

import ast
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from promedical.data.instruction import Instruction
from promedical.data.sources_base import LoadReport, SourceSpec, json_objects, text_or_skip
from promedical.rubrics.schema import Rubric


def _lic(spec: SourceSpec, default: str) -> str:
    return spec.license or default


def _imported_rubrics(kind: str, path: Path, report: LoadReport) -> list[Rubric]:
    """Physician rubrics through the rubric importer, its skipped and bad rows counted in ``report``."""
    from promedical.rubrics.importers import import_file

    result = import_file(kind, path)
    report.rows = result.rows
    for problem in result.problems:
        report.skipped[f"bad_row:{problem.field}"] += 1
    for skipped in result.skipped:
        report.skipped[skipped.kind] += 1
    return list(result.rubrics)


def load_kqa(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    for rubric in _imported_rubrics("kqa", path, report):
        yield Instruction.build(rubric.instruction, spec.label or "kqa", _lic(spec, "MIT"), rubric.id,
                                rubric_id=rubric.id, icd10=rubric.meta.extra.get("icd10"))


def load_kqa_questions(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    for number, row in json_objects(path, report):
        text = text_or_skip(row.get("Question"), report)
        if text:
            yield Instruction.build(text, spec.label or "kqa-questions", _lic(spec, "MIT"), str(number),
                                    icd10=row.get("ICD_10_diag"))


def load_healthbench(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    for rubric in _imported_rubrics("healthbench", path, report):
        turns = [m.model_dump() for m in rubric.prompt]
        yield Instruction.build(rubric.instruction, spec.label or "healthbench", _lic(spec, "MIT"), rubric.id,
                                rubric_id=rubric.id, conversation=turns if len(turns) > 1 else None)


def load_medquad(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    for number, row in json_objects(path, report):
        text = text_or_skip(row.get("question"), report)
        if text:
            yield Instruction.build(text, spec.label or "medquad", _lic(spec, "CC BY 4.0"),
                                    str(row.get("id", number)), _str(row.get("answer")),
                                    focus=row.get("focus"), qtype=row.get("qtype"))


def load_medinstruct(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    for number, row in json_objects(path, report):
        text = text_or_skip(row.get("instruction"), report)
        extra = row.get("input")
        if text and isinstance(extra, str) and extra.strip() and extra.strip() != "<noinput>":
            text = f"{text}\n\n{extra.strip()}"
        if text:
            yield Instruction.build(text, spec.label or "medinstruct", _lic(spec, "CC BY-NC 4.0"),
                                    str(row.get("id", number)), source_difficulty=row.get("difficulty"))


def load_medinstruct_seed(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    for index, row in enumerate(_json_list(path)):
        report.rows += 1
        text = text_or_skip(row.get("instruction"), report)
        extra = row.get("input")
        if text and isinstance(extra, str) and extra.strip() and extra.strip() != "<noinput>":
            text = f"{text}\n\n{extra.strip()}"
        if text:
            yield Instruction.build(text, spec.label or "medinstruct-seed", _lic(spec, "CC BY-NC 4.0"), str(index),
                                    topic=row.get("topic"), task_type=row.get("type"))


def load_icliniq(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    for number, row in json_objects(path, report):
        text = text_or_skip(row.get("input") or row.get("instruction"), report)
        if text:
            yield Instruction.build(text, spec.label or "icliniq", _lic(spec, "CC BY-NC 4.0"), str(number))


def load_chatdoctor(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    for index, row in enumerate(_json_list(path)):
        report.rows += 1
        text = text_or_skip(row.get("input"), report)
        if text:
            yield Instruction.build(text, spec.label or "chatdoctor", _lic(spec, "Apache-2.0 (research only)"),
                                    str(index), _str(row.get("output")))


def load_liveqa(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    root = ET.parse(path).getroot()
    for question in root.iter("NLM-QUESTION"):
        report.rows += 1
        subject = (question.findtext("Original-Question/SUBJECT") or "").strip()
        message = (question.findtext("Original-Question/MESSAGE") or "").strip()
        text = text_or_skip(f"{subject}: {message}" if subject and message else (message or subject), report)
        if text:
            answer = question.findtext("ReferenceAnswers/RefAnswer/ANSWER")
            yield Instruction.build(text, spec.label or "liveqa", _lic(spec, "research use"), question.get("qid"),
                                    " ".join(answer.split()) if answer else None,
                                    paraphrase=(question.findtext("NIST-PARAPHRASE") or "").strip() or None)


def load_medicationqa(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    import openpyxl

    sheet = openpyxl.load_workbook(path, read_only=True).active
    assert sheet is not None
    rows = sheet.iter_rows(values_only=True)
    header = [str(c) for c in next(rows)]
    for number, values in enumerate(rows, start=2):
        row = dict(zip(header, values, strict=False))
        report.rows += 1
        text = text_or_skip(row.get("Question"), report)
        if text:
            yield Instruction.build(text, spec.label or "medicationqa", _lic(spec, "research use"), str(number),
                                    _str(row.get("Answer")), focus=row.get("Focus (Drug)"),
                                    qtype=row.get("Question Type"))


def load_medqa(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    for number, row in json_objects(path, report):
        question = text_or_skip(row.get("question"), report)
        if not question:
            continue
        options = _options(row.get("options"))
        text = question + ("\n\n" + "\n".join(f"{k}. {v}" for k, v in options.items()) if options else "")
        yield Instruction.build(text, spec.label or "medqa", _lic(spec, "MIT"), str(number),
                                _str(row.get("answer")), answer_idx=row.get("answer_idx"), step=row.get("meta_info"))


def load_pubmedqa(path: Path, spec: SourceSpec, report: LoadReport) -> Iterator[Instruction]:
    data = json.loads(path.read_text(encoding="utf-8"))
    for pmid, row in data.items():
        report.rows += 1
        text = text_or_skip(row.get("QUESTION"), report)
        if text:
            yield Instruction.build(text, spec.label or "pubmedqa", _lic(spec, "MIT"), str(pmid),
                                    _str(row.get("LONG_ANSWER")), final_decision=row.get("final_decision"))


def _json_list(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [row for row in data if isinstance(row, dict)] if isinstance(data, list) else []


def _str(value: Any) -> str | None:
    return " ".join(value.split()) if isinstance(value, str) and value.strip() else None


def _options(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
