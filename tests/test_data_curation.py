"""Sources, de-duplication, labels, difficulty parsing and splits: real files, real MiniLM."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from promedical.data.dedup import deduplicate, greedy_keep_first
from promedical.data.difficulty import parse_difficulty
from promedical.data.instruction import Instruction, instruction_id
from promedical.data.sources import SourceSpec, known_sources, load_source
from promedical.data.splits import bucket, split_of
from promedical.io import UserError

SHARED = Path(os.environ.get("PROMEDICAL_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
NAMED = ["kqa", "kqa-questions", "healthbench", "medquad", "medinstruct", "medinstruct-seed", "icliniq", "chatdoctor",
         "liveqa", "medicationqa", "medqa", "pubmedqa"]


@needs_shared
@pytest.mark.parametrize("name", NAMED)
def test_named_loaders_read_shared_data(name: str) -> None:
    records, report = load_source(SourceSpec(name=name, limit=5), SHARED)
    assert len(records) == 5 and report.loaded == 5
    for record in records:
        assert record.text.strip() and record.source == name and record.license != "unknown"
        assert record.id == instruction_id(record.text)
    if name in ("kqa", "healthbench"):
        assert all(r.meta["rubric_id"] == r.source_id for r in records)


def test_every_named_loader_is_registered() -> None:
    assert set(NAMED) | {"jsonl", "csv", "hf"} == set(known_sources())


def test_generic_loaders(tmp_path: Path) -> None:
    rows = [{"q": "What is asthma?", "n": 1}, {"q": "  ", "n": 2}, {"other": "x"}, {"q": "what is  ASTHMA?", "n": 4}]
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    spec = SourceSpec(name="jsonl", path=str(jsonl), text_field="q", id_field="n", license="CC0", label="mine")
    records, report = load_source(spec)
    assert [r.source_id for r in records] == ["1"] and records[0].source == "mine" and records[0].license == "CC0"
    assert report.skipped == {"empty_text": 1, "missing_field:q": 1, "bad_json": 1, "exact_repeat_in_source": 1}
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("question,id\nIs flu contagious?,7\n")
    records, _ = load_source(SourceSpec(name="csv", path=str(csv_path), text_field="question", id_field="id"))
    assert records[0].text == "Is flu contagious?" and records[0].source_id == "7"
    from datasets import Dataset

    Dataset.from_list([{"instruction": "Can I take ibuprofen with lisinopril?"}]).save_to_disk(str(tmp_path / "hf"))
    records, _ = load_source(SourceSpec(name="hf", path=str(tmp_path / "hf")))
    assert records[0].text.startswith("Can I take ibuprofen")


def test_unknown_source_and_missing_path_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown source"):
        load_source(SourceSpec(name="nope"))
    with pytest.raises(UserError, match="does not exist"):
        load_source(SourceSpec(name="jsonl", path=str(tmp_path / "missing.jsonl")))


def test_greedy_keep_first_on_hand_vectors() -> None:
    a = np.array([1.0, 0.0])
    b = np.array([0.96, 0.28])  # cos(a, b) = 0.96
    c = np.array([0.0, 1.0])
    d = np.array([0.28, 0.96])  # cos(c, d) = 0.96, cos(b, d) = 0.5376
    out = greedy_keep_first(np.stack([a, b, c, d]), threshold=0.95, chunk=3)  # chunk 3: crosses a block boundary
    assert [(i, j) for i, j, _ in out] == [(0, -1), (1, 0), (2, -1), (3, 2)]
    assert out[1][2] == pytest.approx(0.96)
    assert [j for _, j, _ in greedy_keep_first(np.stack([a, b, c, d]), threshold=0.97)] == [-1, -1, -1, -1]


@pytest.mark.slow
def test_dedup_with_minilm_drops_paraphrase_and_exact_keeps_distinct() -> None:
    texts = ["What are the side effects of metformin?", "What side effects does metformin have?",
             "How do I treat a sprained ankle at home?", "what are the side effects of  METFORMIN?"]
    items = [Instruction.build(t, "test") for t in texts]
    result = deduplicate(items, threshold=0.9)
    assert [i.text for i in result.kept] == [texts[0], texts[2]]
    reasons = {d.reason: d for d in result.dropped}
    assert reasons["exact"].duplicate_of == items[0].id
    assert reasons["semantic"].id == items[1].id and reasons["semantic"].duplicate_of == items[0].id
    assert reasons["semantic"].similarity >= 0.9
    assert result.counts() == {"kept": 2, "dropped_exact": 1, "dropped_semantic": 1}


@pytest.mark.slow
def test_labels_assign_plausible_specialties() -> None:
    from promedical.data.labels import label_instructions

    items = [Instruction.build(t, "test") for t in (
        "My 2 year old son has a rash and fever", "I get crushing chest pain when I climb stairs",
        "Can I take ibuprofen together with warfarin?")]
    labelled, counts = label_instructions(items)
    assert labelled[1].meta["specialty"] == "cardiology"
    assert labelled[2].meta["category"] == "treatment"
    assert all(0 < i.meta["specialty_score"] <= 1 for i in labelled)
    assert sum(counts["category"].values()) == 3


@pytest.mark.parametrize(("text", "expected"), [
    ('{"difficulty": 7}', (7, None)), ('```json\n{"difficulty": 10}\n```', (10, None)), ("I rate it 4.", (4, None)),
    ('{"difficulty": 11}', (None, "difficulty out of range or not an integer: 11")),
    ('{"difficulty": 6.5}', (None, "difficulty out of range or not an integer: 6.5")),
    ("between 3 and 5", (None, "no single integer 0-10 in the output")), (None, (None, "no output")),
])
def test_parse_difficulty(text: str | None, expected: tuple[int | None, str | None]) -> None:
    assert parse_difficulty(text) == expected


def test_splits_are_deterministic_and_follow_fractions() -> None:
    keys = [f"question {i}" for i in range(4000)]
    fractions = {"train": 0.8, "validation": 0.1, "test": 0.1}
    first = [split_of(k, fractions) for k in keys]
    assert first == [split_of(k, fractions) for k in keys]
    assert abs(first.count("train") / 4000 - 0.8) < 0.03 and abs(first.count("test") / 4000 - 0.1) < 0.02
    assert bucket("a") != bucket("a", salt="other")
    with pytest.raises(ValueError, match="sum to 1"):
        split_of("x", {"train": 0.5})
