"""Physician labels the evidence head is fitted on, built from the shared data folder.

``kqa-nli``: K-QA's physician NLI annotations (``k-qa/NLI_medical_annotator.csv``, MIT) matched to the rubrics of
``k-qa/questions_w_answers.jsonl`` (``promedical rubrics import --format kqa``); one pointwise label per
(answer, Must_have/Nice_to_have claim): the annotators' majority (``human:kqa-majority``). The files are written as
a labelled set (rubrics, responses, verdicts) under ``<output_dir>/physician/<source>`` and reused on a re-run.
Blind-test questions are dropped later with every other row (``reward.prepare``).

``healthbench-grader``: the shared HealthBench sample (``healthbench_samples/m42_judge_responses.jsonl``; data MIT,
m42's model answers and grader outputs CC BY-NC 4.0), read with the project's importer
(``promedical rubrics import --format healthbench``, default veto rule). One pointwise label per (answer, criterion):
the LLM grader's ``criteria_met`` (``healthbench-grader``; not physicians). Positive-points items are proficiency
labels; negative-points items are either S3 vetoes (prohibited: label = violated or not) or, where the veto rule
does not make them vetoes, penalties imported as "Avoids the following: ..." with the grader's verdict inverted.
Prompt ids (and prompts) on the blind-test list are dropped here, before anything is written, and counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from promedical.data.blind import find_blind_list
from promedical.io import UserError, write_json, write_jsonl
from promedical.labels.kqa_nli import MAJORITY_JUDGE, import_kqa_nli
from promedical.reward.data import RESPONSES_FILE, RUBRICS_FILE, VERDICTS_FILE
from promedical.rubrics.importers.healthbench import GRADER, import_healthbench
from promedical.rubrics.importers.kqa import import_kqa
from promedical.rubrics.importers.veto_rule import DEFAULT_VETO_RULE
from promedical.rubrics.records import Status
from promedical.rubrics.schema import Tier

KQA_NLI = "kqa-nli"
HEALTHBENCH_GRADER = "healthbench-grader"
SOURCES = (KQA_NLI, HEALTHBENCH_GRADER)
KQA_RUBRICS_FILE = "k-qa/questions_w_answers.jsonl"
KQA_NLI_FILE = "k-qa/NLI_medical_annotator.csv"
BUILD_FILE = "build.json"  # the builder's counts (blind prompts dropped, ...), reported again on reuse
HEALTHBENCH_FILE = "healthbench_samples/m42_judge_responses.jsonl"


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


def build_healthbench_grader(shared: Path, out: Path, blind_test: str | None = "auto") -> dict[str, Any]:
    """Write the HealthBench grader labels (blind prompts dropped) as a labelled set under ``out``; returns counts."""
    path = shared / HEALTHBENCH_FILE
    if not path.is_file():
        raise UserError(f"{path}: -: -: missing; the {HEALTHBENCH_GRADER} labels are built from the shared data")
    imported = import_healthbench(path, DEFAULT_VETO_RULE)
    if imported.problems:
        first = imported.problems[0]
        raise UserError(f"{first} ({len(imported.problems)} problem(s) importing {path})")
    blind = find_blind_list(blind_test)
    dropped = {r.id for r in imported.rubrics if blind is not None and blind.match(r.instruction, r.id) is not None}
    rubrics = [r for r in imported.rubrics if r.id not in dropped]
    kept = {r.id for r in rubrics}
    verdicts = [v for v in imported.verdicts
                if v.rubric_id in kept and v.judge == GRADER and v.status in (Status.MET, Status.UNMET)]
    answered = {v.response_id for v in verdicts}
    tiers = {(r.id, c.id): c for r in rubrics for c in r.criteria}
    vetoes = [v for v in verdicts if tiers[(v.rubric_id, v.criterion_id)].tier is Tier.VETO]
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / RUBRICS_FILE, rubrics)
    write_jsonl(out / RESPONSES_FILE, [x for x in imported.responses if x.id in answered])
    write_jsonl(out / VERDICTS_FILE, verdicts)  # written last: its presence marks a finished build
    return {"labels": len(verdicts), "prompts": len(rubrics), "responses": len(answered),
            "blind_prompts_dropped": len(dropped),
            "blind_labels_dropped": sum(v.rubric_id in dropped for v in imported.verdicts),
            "unscored_dropped": sum(v.rubric_id in kept and v.status not in (Status.MET, Status.UNMET)
                                    for v in imported.verdicts),
            "veto_rule": DEFAULT_VETO_RULE, "veto_labels": len(vetoes),
            "veto_violations": sum(v.status is Status.MET for v in vetoes),
            "skipped_rows": len(imported.skipped), "license": "MIT (HealthBench data); CC BY-NC 4.0 (m42 answers "
                                                                "and grader outputs)"}


def build_physician(shared: Path, root: Path, sources: list[str],
                    blind_test: str | None = "auto") -> tuple[list[str], dict[str, Any]]:
    """Build (or reuse) each named source under ``root``; returns (labelled-set dirs, counts per source)."""
    dirs, report = [], {}
    for name in sources:
        if name not in SOURCES:
            raise UserError(f"evidence.physician_labels: unknown source {name!r} (known: {', '.join(SOURCES)})")
        out = root / name
        if (out / VERDICTS_FILE).is_file():
            recorded = out / BUILD_FILE
            counts = json.loads(recorded.read_text(encoding="utf-8")) if recorded.is_file() else {}
            report[name] = {"reused": True, **counts}
        else:
            report[name] = (build_healthbench_grader(shared, out, blind_test) if name == HEALTHBENCH_GRADER
                            else build_kqa_nli(shared, out))
            write_json(out / BUILD_FILE, report[name])
        dirs.append(str(out))
    return dirs, report
