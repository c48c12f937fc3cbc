"""Paper-format judge evaluation on hand-labelled verdicts, and the reward-model margin reading."""

from __future__ import annotations

from pathlib import Path

import pytest

from promedical.bench.judge_eval import judge_eval, margin
from promedical.io import read_rubrics, read_verdicts
from promedical.labels import MAJORITY_JUDGE
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Polarity, Rubric
from tests.helpers_bench import bench_rubric, verdicts
from tests.helpers_importers import KQA, KQA_NLI, last_json, run_cli, shared


def _hand_worked() -> tuple[Rubric, list[Verdict], list[Verdict]]:
    """One rubric, two responses, an expert's labels and a judge's verdicts (one unscored each)."""
    rubric = bench_rubric("rb-1", "triage", "cardiology")
    r1 = Response(id="r1", rubric_id="rb-1", model="m", text="a")
    r2 = Response(id="r2", rubric_id="rb-1", model="m", text="b")
    labels = (verdicts(r1, {"c0": "met", "c5": "unmet", "c6": "met"}, judge="human:expert")
              + verdicts(r2, {"c0": "unmet", "c5": "met", "c6": "met", "c1": "unscored"}, judge="human:expert"))
    judged = (verdicts(r1, {"c0": "met", "c5": "unmet", "c6": "met"})
              + verdicts(r2, {"c0": "met", "c5": "met", "c6": "unscored"}))
    return rubric, labels, judged


def test_hand_worked_judge_report() -> None:
    rubric, labels, judged = _hand_worked()
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
    assert report["reference"] == "human:expert" and report["judges"] == ["test-judge"]


def test_margin_reads_reward_model_scores_and_binary_verdicts() -> None:
    rm = Verdict(response_id="r", rubric_id="rb", criterion_id="c", status=Status.MET, judge="rm:x",
                 meta={"score": 0.3, "threshold": 0.5})
    assert margin(rm, Polarity.REQUIRED) == pytest.approx(-0.2)
    binary = Verdict(response_id="r", rubric_id="rb", criterion_id="c", status=Status.MET, judge="j")
    assert margin(binary, Polarity.REQUIRED) == 1.0
    assert margin(binary, Polarity.PROHIBITED) == -1.0  # a prohibited behaviour present: not satisfied


# --- a multi-annotator label file (K-QA: three physicians and their majority) ------------------------------------

def _annotated(response: Response, majority: dict[str, str], annotators: list[dict[str, str]]) -> list[Verdict]:
    out = verdicts(response, majority, judge=MAJORITY_JUDGE)
    for k, labels in enumerate(annotators):
        out += verdicts(response, labels, judge=f"human:kqa-annotator-{k}")
    return out


def _multi_annotator() -> tuple[list, list[Verdict], list[Verdict]]:
    rubric = bench_rubric("rb-1", "triage", "cardiology")
    r1 = Response(id="r1", rubric_id="rb-1", model="m", text="a")
    r2 = Response(id="r2", rubric_id="rb-1", model="m", text="b")
    # c0: the majority splits r1 (met) from r2 (unmet), one physician dissents on each response
    labels = (_annotated(r1, {"c0": "met"}, [{"c0": "met"}, {"c0": "unmet"}, {"c0": "met"}])
              + _annotated(r2, {"c0": "unmet"}, [{"c0": "unmet"}, {"c0": "met"}, {"c0": "unmet"}]))
    judged = verdicts(r1, {"c0": "met"}) + verdicts(r2, {"c0": "unmet"})
    return [rubric], judged, labels


def test_each_item_counts_once_against_the_majority_and_pairs_join_different_responses() -> None:
    rubrics, judged, labels = _multi_annotator()
    report = judge_eval(rubrics, judged, labels, n_resamples=200)
    # two (response, criterion) items, not eight; one pair (r1 vs r2), no pair of a response with itself
    assert report["n_points"] == 2
    assert report["n_pairs"] == 1
    assert report["n_items"] == 2 and report["reference"] == MAJORITY_JUDGE
    assert report["overall_accuracy"]["value"] == 1.0 and report["pairwise_accuracy"]["value"] == 1.0


def test_one_annotator_can_be_chosen_as_the_reference() -> None:
    rubrics, judged, labels = _multi_annotator()
    report = judge_eval(rubrics, judged, labels, n_resamples=200, reference="human:kqa-annotator-1")
    # annotator 1 says the opposite on both responses: the judge is wrong on both, and the pair is reversed
    assert report["reference"] == "human:kqa-annotator-1" and report["n_points"] == 2
    assert report["overall_accuracy"]["value"] == 0.0 and report["pairwise_accuracy"]["value"] == 0.0
    with pytest.raises(ValueError, match="no labels from judge"):
        judge_eval(rubrics, judged, labels, reference="human:nobody")


def test_several_label_judges_without_a_majority_or_a_choice_are_refused() -> None:
    rubrics, judged, labels = _multi_annotator()
    annotators = [v for v in labels if v.judge != MAJORITY_JUDGE]
    with pytest.raises(ValueError, match="choose one as the reference"):
        judge_eval(rubrics, judged, annotators)
    with pytest.raises(ValueError, match="several judges"):  # a verdict file of several judges would mix them too
        judge_eval(rubrics, labels, annotators, reference="human:kqa-annotator-0")


def test_conflicting_duplicate_labels_drop_the_item_instead_of_counting_it_twice() -> None:
    rubrics, judged, labels = _multi_annotator()
    r1 = next(v for v in labels if v.response_id == "r1" and v.judge == MAJORITY_JUDGE)
    flipped = r1.model_copy(update={"status": Status.UNMET})
    report = judge_eval(rubrics, judged, [*labels, r1, flipped], n_resamples=200)
    assert report["counts"]["label_conflicts"] == 1 and report["counts"]["label_duplicates"] == 1
    assert report["n_points"] == 1 and report["n_pairs"] == 0


def _split_pairs(labels: list[Verdict], scored: set[tuple[str, str]], polarity: dict[tuple[str, str], Polarity | None],
                 ) -> int:
    """Pairs of different responses the labels split on a criterion, both scored by the judge (worked separately)."""
    groups: dict[tuple[str, str], dict[str, bool]] = {}
    for label in labels:
        if label.status is Status.UNSCORED or label.key not in scored:
            continue
        met = label.status is Status.MET
        ok = not met if polarity[(label.rubric_id, label.criterion_id)] is Polarity.PROHIBITED else met
        groups.setdefault((label.rubric_id, label.criterion_id), {})[label.response_id] = ok
    # a criterion with k satisfying and n - k failing responses splits k * (n - k) pairs
    return sum(sum(group.values()) * (len(group) - sum(group.values())) for group in groups.values())


def test_judge_eval_command_on_the_real_kqa_label_file_counts_each_item_once(tmp_path: Path) -> None:
    rubrics, labels, responses = tmp_path / "rubrics.jsonl", tmp_path / "labels.jsonl", tmp_path / "responses.jsonl"
    done = run_cli("rubrics", "import", "--format", "kqa", shared(KQA), "-o", rubrics)
    assert done.returncode == 0, done.stderr
    done = run_cli("labels", "import", "--format", "kqa-nli", shared(KQA_NLI), "--rubrics", rubrics, "-o", labels,
                   "--responses-out", responses)
    assert done.returncode == 0, done.stderr
    label_verdicts = read_verdicts(labels)
    assert len({v.judge for v in label_verdicts}) == 4  # three physicians and their majority
    majority = [v for v in label_verdicts if v.judge == MAJORITY_JUDGE]
    keys = {v.key for v in majority}
    assert len(keys) == len(majority)

    done = run_cli("bench", "judge-eval", "-r", rubrics, "-l", labels, "-j", "lexical", "-x", responses,
                   "-o", tmp_path / "eval", "--resamples", "200", "--json")
    assert done.returncode == 0, done.stderr
    report = last_json(done.stdout)
    counts = report["counts"]
    judged = read_verdicts(tmp_path / "eval" / "verdicts.jsonl")
    scored = {v.key for v in judged if v.status is not Status.UNSCORED}
    assert report["n_points"] == len(keys & scored)  # each labelled item once
    polarity = {(r.id, c.id): c.polarity for r in read_rubrics([rubrics]) for c in r.criteria}
    # K-QA labels one answer per question: no two different responses share a criterion, so there is no pair at
    # all (pairing each physician's label with the majority's on the same answer made pairs of a response with itself)
    assert report["n_pairs"] == _split_pairs(majority, scored, polarity) == 0
    assert report["n_items"] + counts.get("label_unscored", 0) == len(keys)
    assert report["n_points"] + counts.get("judge_missing", 0) + counts.get("judge_unscored", 0) == report["n_items"]
    assert report["reference"] == MAJORITY_JUDGE and len(report["label_judges"]) == 4

    one = last_json(run_cli("bench", "judge-eval", "-r", rubrics, "-l", labels, "-v", tmp_path / "eval" /
                            "verdicts.jsonl", "--reference", "human:kqa-annotator-0", "--resamples", "200",
                            "--json").stdout)
    annotator = {v.key for v in label_verdicts if v.judge == "human:kqa-annotator-0"}
    assert one["reference"] == "human:kqa-annotator-0"
    assert one["n_items"] + one["counts"].get("label_unscored", 0) == len(annotator)
    refused = run_cli("bench", "judge-eval", "-r", rubrics, "-l", labels, "-v", labels)
    assert refused.returncode == 2 and "several judges" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


# --- one judge-vs-expert computation behind `bench judge-eval` and `judge meta-eval` ------------------------------

def test_judge_eval_carries_the_meta_eval_agreement_of_the_same_alignment() -> None:
    from promedical.judge.meta_eval import meta_evaluate, tier_map

    rubric, labels, judged = _hand_worked()
    report = judge_eval([rubric], judged, labels, n_resamples=300, seed=3)
    meta = meta_evaluate(labels, judged, tiers=tier_map([rubric]), n_resamples=300, seed=3)
    assert report["agreement"] == meta["judges"]["test-judge"]
    # the two readings count the same items: met/unmet agreement and the paper's pointwise accuracy
    overall = report["agreement"]["overall"]
    assert overall["n_scored"] == report["counts"]["labels_used"] == 5
    assert overall["accuracy_scored"]["value"] == pytest.approx(report["overall_accuracy"]["value"])
