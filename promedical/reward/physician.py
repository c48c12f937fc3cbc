"""Physician labels the evidence head is fitted on, built from the shared data folder.

``kqa-nli``: K-QA's physician NLI annotations (``k-qa/NLI_medical_annotator.csv``, MIT) matched to the rubrics of
``k-qa/questions_w_answers.jsonl`` (``promedical rubrics import --format kqa``); one pointwise label per
(answer, Must_have/Nice_to_have claim): the annotators' majority (``human:kqa-majority``). The files are written as
a labelled set (rubrics, responses, verdicts) under ``<output_dir>/physician/<source>`` and reused on a re-run.
Blind-test questions are dropped later with every other row (``reward.prepare``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promedical.io import UserError, write_jsonl
from promedical.labels.kqa_nli import MAJORITY_JUDGE, import_kqa_nli
from promedical.reward.data import RESPONSES_FILE, RUBRICS_FILE, VERDICTS_FILE
from promedical.rubrics.importers.kqa import import_kqa

KQA_NLI = "kqa-nli"
SOURCES = (KQA_NLI,)
KQA_RUBRICS_FILE = "k-qa/questions_w_answers.jsonl"
KQA_NLI_FILE = "k-qa/NLI_medical_annotator.csv"


def build_kqa_nli(shared: Path, out: Path) -> dict[str, Any]:
    """Write the K-QA majority labels as a labelled set under ``out``; returns counts."""
    rubrics_path, labels_path = shared / KQA_RUBRICS_FILE, shared / KQA_NLI_FILE
    for path in (rubrics_path, labels_path):
        if not path.is_file():
            raise UserError(f"{path}: -: -: missing; the {KQA_NLI} physician labels are built from the shared data")
    rubrics = import_kqa(rubrics_path).rubrics
    labels = import_kqa_nli(labels_path, rubrics)
    majority = [v for v in labels.verdicts if v.judge == MAJORITY_JUDGE]
    used = {v.rubric_id for v in majority}
    answered = {v.response_id for v in majority}
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / RUBRICS_FILE, [r for r in rubrics if r.id in used])
    write_jsonl(out / RESPONSES_FILE, [x for x in labels.responses if x.id in answered])
    write_jsonl(out / VERDICTS_FILE, majority)  # written last: its presence marks a finished build
    return {"labels": len(majority), "questions": len(used), "responses": len(answered),
            "unmatched_rows": len(labels.unmatched)}


def build_physician(shared: Path, root: Path, sources: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Build (or reuse) each named source under ``root``; returns (labelled-set dirs, counts per source)."""
    dirs, report = [], {}
    for name in sources:
        if name not in SOURCES:
            raise UserError(f"evidence.physician_labels: unknown source {name!r} (known: {', '.join(SOURCES)})")
        out = root / name
        if (out / VERDICTS_FILE).is_file():
            report[name] = {"reused": True}
        else:
            report[name] = build_kqa_nli(shared, out)
        dirs.append(str(out))
    return dirs, report
