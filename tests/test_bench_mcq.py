"""External MCQ benchmarks: loaders on the real files, grading and the summary's two labelled accuracies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from promedical.bench.mcq import (
    PROMPTS,
    MCQItem,
    grade,
    load_medqa,
    load_mmlu,
    load_pubmedqa,
    render,
    subsample,
    summarise,
)
from promedical.io import UserError
from promedical.llm.protocol import Completion

SHARED = Path(os.environ.get("PROMEDICAL_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def _need(folder: str) -> Path:
    path = SHARED / folder
    if not path.exists():
        pytest.skip(f"shared data {path} is absent")
    return path


def test_medqa_loader_reads_the_4_option_test_split() -> None:
    items = load_medqa(_need("medqa_usmle_4opt"))
    assert len(items) == 1273
    assert all(sorted(i.options) == ["A", "B", "C", "D"] and i.answer in i.options for i in items)
    assert items[0].answer == "B" and items[0].subject == "step1"


def test_pubmedqa_loader_keeps_the_official_test_ids() -> None:
    items = load_pubmedqa(_need("pubmedqa"))
    assert len(items) == 500
    assert {i.answer for i in items} == {"yes", "no", "maybe"}
    assert sum(i.answer == "maybe" for i in items) == 55
    assert all(i.context for i in items)


def test_mmlu_loader_reads_the_medical_subjects() -> None:
    items = load_mmlu(_need("mmlu_medical"))
    assert len(items) == 1571
    assert sum(i.subject == "anatomy" for i in items) == 135


def test_loader_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "phrases_no_exclude_test.jsonl"
    bad.write_text('{"question": "q", "options": {"A": "x"}, "answer_idx": "B"}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"phrases_no_exclude_test.jsonl:1: -: answer_idx"):
        load_medqa(tmp_path)
    with pytest.raises(UserError, match="no such file"):
        load_pubmedqa(tmp_path)


ITEM = MCQItem("q1", "medqa", "Which drug?", {"A": "Aspirin", "B": "Heparin", "C": "Warfarin", "D": "None"}, "B")


def test_render_uses_the_pinned_prompt() -> None:
    messages = render(ITEM, "mcq-direct/1")
    assert messages[0]["role"] == "user" and "B. Heparin" in messages[0]["content"]
    assert messages[0]["content"].endswith("Answer:") and "mcq-cot/1" in PROMPTS


def test_summary_separates_failures_from_wrong_answers() -> None:
    rows = [grade(ITEM, Completion(text=t)) for t in ("Answer: B", "B. Heparin", "Answer: A", "I am not sure.")]
    rows.append(grade(ITEM, Completion(text=None, error="HTTP 500")))  # fault injected as a value
    assert [r["correct"] for r in rows] == [True, True, False, None, None]
    assert rows[4]["generation_error"] and "HTTP 500" in rows[4]["failure"]
    s = summarise(rows, n_resamples=500)
    assert s["n"] == 5 and s["extracted"] == 3
    assert s["accuracy_extracted"] == pytest.approx(2 / 3)
    assert s["accuracy_failures_as_wrong"] == pytest.approx(2 / 5)
    assert s["extraction_failure_rate"] == pytest.approx(2 / 5)
    assert s["generation_errors"] == 1
    assert s["pred_distribution"] == {"A": 1, "B": 2}
    assert s["methods"] == {"answer-marker": 2, "leading-key": 1, "failed": 1, "generation-error": 1}


def test_subsample_is_fixed_and_ordered() -> None:
    items = [MCQItem(f"q{i}", "medqa", "q", {"A": "a"}, "A") for i in range(50)]
    picked = subsample(items, 10, seed=1)
    assert picked == subsample(items, 10, seed=1) and len(picked) == 10
    assert [int(i.id[1:]) for i in picked] == sorted(int(i.id[1:]) for i in picked)
    assert subsample(items, None, 0) == items
