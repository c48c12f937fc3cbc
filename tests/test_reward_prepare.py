"""What a reward-model run trains on: blind-test items dropped wherever they appear, only the configured split kept,
and an audit of both in the run's report (which `rm train` writes into its manifest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promedical import samples
from promedical.data.blind import BlindList, find_blind_list
from promedical.data.splits import HELD_OUT_FRACTIONS, instruction_key, split_of
from promedical.io import UserError
from promedical.reward.config import RMTrainConfig
from promedical.reward.data import drop_blind, read_many
from promedical.reward.prepare import prepare

SAMPLES = str(Path(samples.rubrics_path()).parent)


def _blind_file(tmp_path: Path, questions: list[str], ids: list[str] = []) -> Path:  # noqa: B006
    path = tmp_path / "blind_test.json"
    path.write_text(json.dumps({"about": "test list", "kqa_questions": questions, "healthbench_prompt_ids": ids}))
    return path


def test_blind_rows_are_dropped_by_text_normalised_text_and_prompt_id(tmp_path: Path) -> None:
    rubrics = samples.load_rubrics()
    by_text, by_key, by_id = rubrics[0], rubrics[1], rubrics[2]
    blind = BlindList.read(_blind_file(tmp_path, [by_text.instruction, "  " + by_key.instruction.upper() + "\n"],
                                       [by_id.id]))
    data = read_many([SAMPLES])
    kept, counts = drop_blind(data, blind)
    gone = {by_text.id, by_key.id, by_id.id}
    assert counts["instructions"] == 3 and counts["by_match"] == {"exact": 1, "normalised": 1, "prompt_id": 1}
    assert counts["points"] == sum(1 for p in data.points if p.rubric_id in gone) > 0
    assert counts["pairs"] == sum(1 for p in data.pairs if p.rubric_id in gone)
    assert not ({p.rubric_id for p in kept.points} | {p.rubric_id for p in kept.pairs}) & gone
    assert len(kept.points) == len(data.points) - counts["points"]


def test_prepare_drops_blind_keeps_the_train_split_and_audits(tmp_path: Path) -> None:
    rubrics = samples.load_rubrics()
    train_rubric = next(r for r in rubrics if split_of(instruction_key(r.instruction), HELD_OUT_FRACTIONS) == "train")
    blind = _blind_file(tmp_path, [train_rubric.instruction])
    cfg = RMTrainConfig(train_data=[SAMPLES], val_data=[SAMPLES], output_dir=str(tmp_path / "run"),
                        blind_test=str(blind), train_split="train", val_split="val")
    train, val, report = prepare(cfg)
    assert report["blind_test"]["dropped_train"]["instructions"] == 1
    assert report["audit"]["blind_rows_left"] == 0
    assert report["audit"]["train_rows_by_split"]["test"] == 0 and report["audit"]["train_rows_by_split"]["val"] == 0
    assert report["audit"]["train_rows_by_split"]["train"] == len(train.points) + len(train.pairs) > 0
    assert val is not None and report["audit"]["val_rows_by_split"]["train"] == 0
    assert report["train_split"]["dropped_by_split"]["test"] > 0  # the samples do hold test-split questions
    assert all(p.rubric_id != train_rubric.id for p in train.points)


def test_without_a_split_filter_the_audit_shows_the_test_split(tmp_path: Path) -> None:
    cfg = RMTrainConfig(train_data=[SAMPLES], output_dir=str(tmp_path / "run"), blind_test="none")
    _, _, report = prepare(cfg)
    assert report["audit"]["train_rows_by_split"]["test"] > 0  # what train_split exists to prevent
    assert report["blind_test"]["list"] is None


def test_blind_list_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMEDICAL_SHARED_DATA", str(tmp_path))
    assert find_blind_list("auto") is None  # no list in that folder: nothing to drop, said in the report
    _blind_file(tmp_path, ["Is it serious?"])
    found = find_blind_list("auto")
    assert found is not None and found.match("is it  SERIOUS?") == "normalised"
    with pytest.raises(UserError, match="no such blind-test list"):
        find_blind_list(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="split 'dev'"):
        RMTrainConfig(train_data=[SAMPLES], output_dir="x", train_split="dev")


def test_the_shared_blind_list_reaches_kqa_answers() -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (shared / "blind_test.json").is_file() or not (shared / "k-qa" / "questions_w_answers.jsonl").is_file():
        pytest.skip("../shared/data not present")
    blind = BlindList.read(shared / "blind_test.json")
    questions = [json.loads(line)["Question"] for line in
                 (shared / "k-qa" / "questions_w_answers.jsonl").read_text().splitlines() if line.strip()]
    assert sum(blind.match(q) is not None for q in questions) == 19  # 18 exact, 1 only after normalising
