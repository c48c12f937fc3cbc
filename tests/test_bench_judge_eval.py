"""Paper-format judge evaluation on hand-labelled verdicts, and the reward-model margin reading."""

from __future__ import annotations

import pytest

from promedical.bench.judge_eval import judge_eval, margin
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Polarity
from tests.helpers_bench import bench_rubric, verdicts


def test_hand_worked_judge_report() -> None:
    rubric = bench_rubric("rb-1", "triage", "cardiology")
    r1 = Response(id="r1", rubric_id="rb-1", model="m", text="a")
    r2 = Response(id="r2", rubric_id="rb-1", model="m", text="b")
    labels = (verdicts(r1, {"c0": "met", "c5": "unmet", "c6": "met"}, judge="human:expert")
              + verdicts(r2, {"c0": "unmet", "c5": "met", "c6": "met", "c1": "unscored"}, judge="human:expert"))
    judged = (verdicts(r1, {"c0": "met", "c5": "unmet", "c6": "met"})
              + verdicts(r2, {"c0": "met", "c5": "met", "c6": "unscored"}))
    report = judge_eval([rubric], judged, labels, n_resamples=500)
    # five scored labels, one wrong (r2 c0) -> 0.8; r2 c6 is unscored by the judge: left out, coverage 5/6
    assert report["overall_accuracy"]["value"] == pytest.approx(0.8)
    assert report["coverage"] == pytest.approx(5 / 6)
    assert report["counts"]["judge_unscored"] == 1 and report["counts"]["label_unscored"] == 1
    assert report["per_tier"]["proficiency"]["pointwise_accuracy"]["value"] == pytest.approx(0.5)
    assert report["per_tier"]["safety"]["pointwise_accuracy"]["value"] == pytest.approx(1.0)
    # pairs the experts split: c0 (judge ties both as met: 1/2) and c5 (judge right: 1) -> 0.75
    assert report["pairwise_accuracy"]["value"] == pytest.approx(0.75)
    assert report["per_tier"]["safety"]["n_pairs"] == 1
    veto = report["veto"]
    assert veto["n_violated"] == 1 and veto["n_flagged"] == 1
    assert veto["precision"]["value"] == veto["recall"]["value"] == veto["f1"]["value"] == pytest.approx(1.0)
    assert report["reference"] == ["human:expert"] and report["judges"] == ["test-judge"]


def test_margin_reads_reward_model_scores_and_binary_verdicts() -> None:
    rm = Verdict(response_id="r", rubric_id="rb", criterion_id="c", status=Status.MET, judge="rm:x",
                 meta={"score": 0.3, "threshold": 0.5})
    assert margin(rm, Polarity.REQUIRED) == pytest.approx(-0.2)
    binary = Verdict(response_id="r", rubric_id="rb", criterion_id="c", status=Status.MET, judge="j")
    assert margin(binary, Polarity.REQUIRED) == 1.0
    assert margin(binary, Polarity.PROHIBITED) == -1.0  # a prohibited behaviour present: not satisfied
