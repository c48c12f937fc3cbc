"""Sources, de-duplication, labels, difficulty parsing and splits: real files, real MiniLM."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from promedical.data.dedup import deduplicate, greedy_keep_first
from promedical.data.difficulty import apply_band, parse_difficulty
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
    # Plain-text ratings as real raters write them (UltraMedical's recorded rater outputs read this way):
    ("Score: 7\n\nJustification: the pathophysiology of obesity and type 2 diabetes ...", (7, None)),
    ("This question would be rated as a 9. It involves type 1 diabetes at high altitude.", (9, None)),
    ("I would rate this question a 7. \n\nJustification: 5 drugs, 2 conditions.", (7, None)),
    ("This question would likely be rated as a 9 or 10.", (None, "no single integer 0-10 in the output")),
    ("This question would likely be rated around a 7 or 8.", (None, "no single integer 0-10 in the output")),
    ("Score: 3. Difficulty: 8", (None, "several ratings in the output: 3, 8")),
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


def _ultramedical_rated() -> tuple[list[Instruction], list[tuple[int | None, str | None]]]:
    """UltraMedical's 70 sample questions (MedQA, MedMCQA, PubMedQA, MedQuAD, MedInstruct, ChatDoctor, ...) with the
    difficulty ratings its own rater recorded for each (the ``score`` text, read by ``parse_difficulty``)."""
    items, ratings = [], []
    for name in ("examples.json", "pipeline_medqa_sample.json"):
        for row in json.loads((SHARED / "ultramedical_samples" / name).read_text(encoding="utf-8")):
            items.append(Instruction.build(row["conversations"][0]["value"], "ultramedical", source_id=row["id"]))
            ratings.append(parse_difficulty(row["score"]))
    return items, ratings


def _smollm2_rated() -> tuple[list[Instruction], list[tuple[int | None, str | None]]]:
    """The first 8 K-QA, MedQuAD and MedQA items (less one blind-test K-QA question) with SmolLM2-135M's
    difficulty/v2 answers, recorded from a real run (tests/data/difficulty_smollm2.jsonl keeps the model's outputs
    and the items' ids, not the source text)."""
    recorded = [json.loads(line) for line in (Path(__file__).parent / "data" / "difficulty_smollm2.jsonl")
                .read_text(encoding="utf-8").splitlines()]
    loaded = {}
    for name in ("kqa", "medquad", "medqa"):
        loaded.update({i.id: i for i in load_source(SourceSpec(name=name, limit=8), SHARED)[0]})
    items = [loaded[r["instruction_id"]] for r in recorded]  # the same real items, in the recorded order
    assert len(items) == 23 and all(r["rater"] == "hf:smollm2" and r["prompt"] == "difficulty/v2" for r in recorded)
    return items, [parse_difficulty(r["output"]) for r in recorded]


# SmolLM2's recorded ratings of those 23 items: 0 (12), 1 (6) -> below the band; 10 (5) -> above; none unreadable.
BELOW, ABOVE, UNSCORED = 18, 5, 0


@needs_shared
def test_the_papers_band_on_real_rated_items() -> None:
    items, ratings = _ultramedical_rated()
    result = apply_band(items, ratings, (5, 9), rater="ultramedical (recorded)")
    counts = result.counts()
    assert counts["histogram"] == {"7": 34, "8": 4, "9": 27, "unscored": 5}  # "a 7 or 8", "a 9 or 10" unscored
    assert (counts["kept"], counts["dropped"], counts["dropped_by_reason"]) == (65, 5, {"unscored": 5})
    assert counts["kept_histogram"] == {"7": 34, "8": 4, "9": 27}
    assert [d["detail"] for d in result.dropped] == ["no single integer 0-10 in the output"] * 5
    assert all(i.meta["difficulty"] in (7, 8, 9) for i in result.kept)
    assert result.kept[0].meta["difficulty_rater"] == "ultramedical (recorded)"

    local_items, local_ratings = _smollm2_rated()
    local = apply_band(local_items, local_ratings, (5, 9), rater="hf:smollm2").counts()
    assert local["histogram"] == {"0": 12, "1": 6, "10": 5} and local["kept"] == 0  # no signal: all outside 5-9
    both = apply_band([*items, *local_items], [*ratings, *local_ratings], (5, 9))
    counts = both.counts()
    assert counts["by_band"] == {
        "below_band": {"rated": BELOW, "kept": 0, "dropped": BELOW},
        "in_band": {"rated": 65, "kept": 65, "dropped": 0},
        "above_band": {"rated": ABOVE, "kept": 0, "dropped": ABOVE},
        "unscored": {"rated": 5 + UNSCORED, "kept": 0, "dropped": 5 + UNSCORED},
    }
    assert counts["dropped_by_reason"] == {"above_band": ABOVE, "below_band": BELOW, "unscored": 5 + UNSCORED}
    assert counts["kept"] + counts["dropped"] == len(items) + len(local_items) == 93
    dropped = {d["id"]: d for d in both.dropped}
    for item, (rating, _) in zip(local_items, local_ratings, strict=True):
        expected = "unscored" if rating is None else "below_band" if rating < 5 else "above_band" if rating > 9 \
            else None
        assert (dropped[item.id]["reason"] if item.id in dropped else None) == expected

    # keep_unscored keeps the unreadable ratings (counted as kept in the unscored band), nothing else changes
    lenient = apply_band([*items, *local_items], [*ratings, *local_ratings], (5, 9), keep_unscored=True).counts()
    assert lenient["by_band"]["unscored"] == {"rated": 5 + UNSCORED, "kept": 5 + UNSCORED, "dropped": 0}
    assert lenient["kept"] == 65 + 5 + UNSCORED
