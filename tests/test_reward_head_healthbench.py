"""The evidence head on HealthBench grader labels beside K-QA's physician labels: the ``healthbench-grader`` label
source (blind prompts dropped, vetoes labelled by violation), cross-fitting grouped by the instruction across both
sources, a veto threshold chosen by nested cross-fitting, and per-kind interaction features."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from promedical.io import read_responses, read_rubrics, read_verdicts
from promedical.reward.data import PointRow, read_labelled
from promedical.reward.evidence import IdfTable
from promedical.reward.fit_head import head_groups, head_thresholds, point_sources
from promedical.reward.head import feature_matrix, feature_names, out_of_fold, recall_threshold, veto_thresholds
from promedical.reward.inputs import CriterionInput, Group
from promedical.reward.physician import HEALTHBENCH_FILE, HEALTHBENCH_GRADER, build_physician
from promedical.rubrics.importers.healthbench import PENALTY_PREFIX, Parsed, parse_row

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _source_rows() -> list[dict]:
    if not (SHARED / HEALTHBENCH_FILE).is_file():
        pytest.skip("../shared/data not present")
    return [json.loads(line) for line in (SHARED / HEALTHBENCH_FILE).read_text().splitlines() if line.strip()]


def test_healthbench_grader_labels_drop_blind_prompts_and_label_vetoes(tmp_path: Path) -> None:
    rows = _source_rows()
    blind_id = rows[0]["prompt_id"]
    blind = tmp_path / "blind.json"
    blind.write_text(json.dumps({"kqa_questions": [], "healthbench_prompt_ids": [blind_id]}))
    dirs, report = build_physician(SHARED, tmp_path / "physician", [HEALTHBENCH_GRADER], str(blind))
    counts = report[HEALTHBENCH_GRADER]
    out = Path(dirs[0])
    rubrics = read_rubrics([out / "rubrics.jsonl"])
    verdicts = read_verdicts(out / "verdicts.jsonl")
    assert counts["blind_prompts_dropped"] == 1 and counts["blind_labels_dropped"] > 0
    assert blind_id not in {r.id for r in rubrics} and blind_id not in {v.rubric_id for v in verdicts}
    assert {x.rubric_id for x in read_responses(out / "responses.jsonl")} == {r.id for r in rubrics}
    assert len(rubrics) == len(rows) - 1
    # every veto is labelled by the grader: met = the prohibited behaviour is there (violated)
    source = {r["prompt_id"]: r for r in rows}
    by_key = {(r.id, c.id): c for r in rubrics for c in r.criteria}
    vetoes = [v for v in verdicts if by_key[(v.rubric_id, v.criterion_id)].tier.value == "veto"]
    assert vetoes and counts["veto_labels"] == len(vetoes)
    for v in vetoes:
        criterion = by_key[(v.rubric_id, v.criterion_id)]
        assert criterion.polarity is not None and criterion.polarity.value == "prohibited"
        index = int(v.criterion_id[1:])
        grade = ast.literal_eval(source[v.rubric_id]["responses"])[index]["response_dict"]["criteria_met"]
        assert (v.status.value == "met") == grade  # violated exactly when the grader says the item is met
    assert counts["veto_violations"] == sum(v.status.value == "met" for v in vetoes) > 0
    # a penalty ("Avoids the following: ...") carries the grader's verdict inverted
    penalties = [v for v in verdicts if by_key[(v.rubric_id, v.criterion_id)].text.startswith(PENALTY_PREFIX)]
    v = penalties[0]
    grade = ast.literal_eval(source[v.rubric_id]["responses"])[int(v.criterion_id[1:])]["response_dict"]
    assert (v.status.value == "met") != grade["criteria_met"]
    # the points read back as one label per (answer, criterion); the counts are recorded and reported on reuse
    assert len(read_labelled(out, derive=False).points) == counts["labels"] == len(verdicts)
    again = build_physician(SHARED, tmp_path / "physician", [HEALTHBENCH_GRADER], str(blind))[1]
    assert again[HEALTHBENCH_GRADER]["reused"] and again[HEALTHBENCH_GRADER]["blind_prompts_dropped"] == 1


def _point(source: str, question: str, i: int, met: bool) -> PointRow:
    return PointRow(f"{source}-{question}", f"c{i}", f"{source}-{question}-answer", f"Question {question}?",
                    "answer", "criterion", "veto" if source == "hb" and i % 4 == 0 else "proficiency",
                    "prohibited" if source == "hb" and i % 4 == 0 else "required", met)


def _two_sources() -> tuple[list[PointRow], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    points, x = [], rng.normal(size=(160, 3))
    y = x[:, 0] + 0.5 * rng.normal(size=160) > 0
    for i in range(160):
        # K-QA questions q0..q9, HealthBench prompts q8..q17: q8 and q9 are asked in both sources
        source = "kqa" if i < 80 else "hb"
        question = f"q{i // 8}" if source == "kqa" else f"q{(i - 80) // 8 + 8}"
        points.append(_point(source, question, i, bool(y[i])))
    return points, x, y


def test_cross_fitting_groups_by_instruction_across_sources() -> None:
    points, x, y = _two_sources()
    groups = head_groups(points)
    # the same question from two sources (different rubric ids) is one group
    assert len({groups[i] for i, p in enumerate(points) if p.instruction == "Question q8?"}) == 1
    assert {p.rubric_id.split("-")[0] for p in points if p.instruction == "Question q8?"} == {"kqa", "hb"}
    target = np.array([p.rubric_id == "hb-q12" for p in points])
    flipped = y.copy()
    flipped[target] ^= True
    a, b = out_of_fold(x, y, groups, 5), out_of_fold(x, flipped, groups, 5)
    # flipping a HealthBench prompt's labels changes none of its own out-of-fold scores ...
    assert np.allclose(a[target], b[target])
    assert not np.allclose(a[~target], b[~target])  # ... but does reach other questions (the check can fail)
    # flipping a question's K-QA labels leaves its HealthBench items (same question, other source) untouched
    kqa_q8 = np.array([p.rubric_id == "kqa-q8" for p in points])
    hb_q8 = np.array([p.rubric_id == "hb-q8" for p in points])
    assert hb_q8.any()
    flipped = y.copy()
    flipped[kqa_q8] ^= True
    assert np.allclose(out_of_fold(x, y, groups, 5)[hb_q8], out_of_fold(x, flipped, groups, 5)[hb_q8])


def test_veto_threshold_is_nested_out_of_fold() -> None:
    points, x, y = _two_sources()
    groups = head_groups(points)
    is_veto = np.array([p.tier == "veto" for p in points])
    target = np.array([p.rubric_id == "hb-q12" for p in points])
    flipped = y.copy()
    flipped[target] ^= True
    a = veto_thresholds(x, y, groups, is_veto, 5, 1.0, 0.8)
    b = veto_thresholds(x, flipped, groups, is_veto, 5, 1.0, 0.8)
    assert np.all(a[~is_veto] == 0.0) and np.any(a[is_veto] != 0.0)
    assert np.allclose(a[target], b[target])  # its own labels choose neither its head nor its threshold
    assert not np.allclose(a[is_veto & ~target], b[is_veto & ~target])


def test_recall_threshold_flags_the_target_share_of_violations() -> None:
    scores = np.array([3.0, 2.0, 1.0, 0.5, -1.0, -2.0])
    violated = np.array([True, False, True, False, True, True])
    t = recall_threshold(scores, violated, 0.75)
    assert ((scores >= t) & violated).sum() == 3 and t == -1.0
    assert recall_threshold(scores, np.zeros(6, dtype=bool), 0.8) == 0.0


def test_interactions_give_each_kind_its_own_slope_on_the_criterion_content() -> None:
    names = feature_names(True, ["penalty", "veto"])
    assert "lexical*penalty" in names and "encoder*veto" in names and "penalty" in names
    plain = [n for n in names if not n.startswith("cos_")]
    idf = IdfTable.build(["ibuprofen for fever", "rest"])
    group = Group("Fever?", "Take ibuprofen for the fever.", (
        CriterionInput(PENALTY_PREFIX + "Recommends ibuprofen for fever", "proficiency", "required"),
        CriterionInput("Recommends ibuprofen for fever", "proficiency", "required"),
        CriterionInput("Recommends ibuprofen for fever", "veto", "prohibited")))
    x = feature_matrix(plain, idf, [group], [[0.5, 0.5, 0.5]])
    col = {n: j for j, n in enumerate(plain)}
    penalty, required, veto = x
    # the penalty's evidence is read on its content, without the "Avoids the following:" prefix
    assert penalty[col["idf_recall"]] == required[col["idf_recall"]] > 0.5
    assert penalty[col["lexical*penalty"]] == penalty[col["lexical"]] and required[col["lexical*penalty"]] == 0.0
    assert veto[col["veto"]] == 1.0 and veto[col["encoder*veto"]] == -0.5  # prohibited: presence is the negation


def test_point_sources_follow_the_labelled_set_folders(tmp_path: Path) -> None:
    rows = _source_rows()[:2]
    for name, row in (("kqa-nli", rows[0]), (HEALTHBENCH_GRADER, rows[1])):
        folder = tmp_path / name
        folder.mkdir()
        parsed = parse_row(row)
        assert isinstance(parsed, Parsed)
        (folder / "rubrics.jsonl").write_text(parsed.rubric.model_dump_json() + "\n")
    points = [PointRow(rows[1]["prompt_id"], "c0", "r", "q", "a", "c", "proficiency", "required", True),
              PointRow(rows[0]["prompt_id"], "c0", "r", "q", "a", "c", "proficiency", "required", True)]
    assert point_sources([str(tmp_path / "kqa-nli"), str(tmp_path / HEALTHBENCH_GRADER)], points) == [
        HEALTHBENCH_GRADER, "kqa-nli"]


def test_the_card_reads_vetoes_at_the_recall_threshold() -> None:
    held_out = {"out_of_fold": {"n": 10, "accuracy": 0.6, "veto": {"n": 4}}, "tiers": ["proficiency", "veto"],
                "veto_threshold": {"log_odds": -2.5, "recall_target": 0.8}}
    thresholds = head_thresholds(held_out, {})
    # flagged (not satisfied) exactly when the violation log-odds reach -2.5: satisfied score >= 2.5
    assert thresholds["veto"].threshold == 2.5 and thresholds["proficiency"].threshold == 0.0
    assert "recall 0.8" in thresholds["veto"].rule
    del held_out["veto_threshold"]
    assert head_thresholds(held_out, {})["veto"].threshold == 0.0
