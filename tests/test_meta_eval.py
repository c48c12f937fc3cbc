"""Judge meta-evaluation on hand-worked numbers: kappa, P/R/F1, alignment edge cases, unscored handling, agreement."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from promedical.io import write_jsonl
from promedical.judge.meta_eval import align, choose_reference, evaluate, meta_evaluate, metrics
from promedical.labels.agreement import cohen_kappa, group_agreement, krippendorff_alpha
from promedical.rubrics.records import Status, Verdict
from tests.helpers_importers import last_json, run_cli

RESAMPLES = 300
META_EVAL = ("judge", "meta-eval")
MET, UNMET, UNSCORED = Status.MET, Status.UNMET, Status.UNSCORED


def v(key: int, status: Status, judge: str = "judge", tier: str = "proficiency", criterion: str | None = None,
      **meta: object) -> Verdict:
    return Verdict(response_id=f"rs-{key}", rubric_id="rb-1", criterion_id=criterion or f"c{key}", status=status,
                   judge=judge, reason="no JSON in the reply" if status is UNSCORED else None,
                   meta={"tier": tier, **meta})


# The tiny confusion matrix used below (rows: label, columns: judge):
#                judge met  judge unmet
#   label met        4          1
#   label unmet      2          3
# n = 10, observed agreement po = 7/10; label met rate 5/10, judge met rate 6/10;
# chance agreement pe = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
# met:   precision 4/6, recall 4/5, F1 = 2*4/(2*4+2+1) = 8/11.
# unmet: precision 3/4, recall 3/5, F1 = 2*3/(2*3+1+2) = 2/3.
LABELS = [MET] * 5 + [UNMET] * 5
JUDGED = [MET, MET, MET, MET, UNMET, MET, MET, UNMET, UNMET, UNMET]


def tiny() -> tuple[list[Verdict], list[Verdict]]:
    labels = [v(i, s, judge="human:ref") for i, s in enumerate(LABELS)]
    judged = [v(i, s) for i, s in enumerate(JUDGED)]
    return labels, judged


def test_hand_worked_kappa_accuracy_and_per_class_prf() -> None:
    labels, judged = tiny()
    m = metrics(align(labels, judged).items, n_resamples=RESAMPLES)
    assert m["n_labels"] == m["n_scored"] == 10 and m["coverage"] == 1.0
    assert m["accuracy_scored"]["value"] == pytest.approx(0.7)
    assert m["kappa"]["value"] == pytest.approx(0.4)
    assert m["per_class"]["met"] == pytest.approx({"precision": 4 / 6, "recall": 4 / 5, "f1": 8 / 11, "support": 5})
    assert m["per_class"]["unmet"] == pytest.approx({"precision": 3 / 4, "recall": 3 / 5, "f1": 2 / 3, "support": 5})
    assert m["confusion"]["matrix"] == [[4, 1], [2, 3]]
    low, high = m["kappa"]["ci_low"], m["kappa"]["ci_high"]
    assert low < 0.4 < high and low >= -1.0 and high <= 1.0


def test_numpy_kappa_equals_scikit_learn_and_the_hand_value() -> None:
    truth = np.array([s is MET for s in LABELS], dtype=np.int64)
    pred = np.array([s is MET for s in JUDGED], dtype=np.int64)
    assert cohen_kappa(truth, pred, 2) == pytest.approx(0.4)
    rng = np.random.default_rng(7)
    for n_classes in (2, 3):
        for _ in range(25):
            a = rng.integers(0, n_classes, size=int(rng.integers(5, 60)))
            b = np.where(rng.random(a.size) < 0.6, a, rng.integers(0, n_classes, size=a.size))
            expected = cohen_kappa_score(a, b)
            assert cohen_kappa(a, b, n_classes) == pytest.approx(expected, nan_ok=True)


def test_kappa_is_undefined_not_a_crash_when_everyone_says_met() -> None:
    labels = [v(i, MET, judge="human:ref") for i in range(4)]
    judged = [v(i, MET) for i in range(4)]
    m = metrics(align(labels, judged).items, n_resamples=RESAMPLES)
    assert m["accuracy_scored"]["value"] == 1.0
    assert m["kappa"]["value"] is None and m["kappa"]["ci_low"] is None
    assert m["per_class"]["unmet"]["support"] == 0 and m["per_class"]["unmet"]["precision"] is None


def test_unscored_and_missing_verdicts_are_coverage_not_silent_errors() -> None:
    labels, judged = tiny()
    # key 0 (label met, judge met: correct) becomes unscored; key 4 (label met, judge unmet: wrong) goes missing
    judged = [v(0, UNSCORED), *judged[1:4], *judged[5:]]
    m = metrics(align(labels, judged).items, n_resamples=RESAMPLES)
    assert (m["n_labels"], m["n_scored"], m["n_unscored"], m["n_missing"]) == (10, 8, 1, 1)
    assert m["coverage"] == pytest.approx(0.8)
    # scored items: 3 met->met, 2 unmet->met, 3 unmet->unmet => 6 / 8 right
    assert m["accuracy_scored"]["value"] == pytest.approx(6 / 8)
    # strict: the unscored and the missing item both count as wrong => 6 / 10
    assert m["accuracy_strict"]["value"] == pytest.approx(6 / 10)
    assert m["unscored_reasons"] == {"no JSON in the reply": 1}
    assert m["label_met_rate"] == 0.5 and m["judge_met_rate"] == pytest.approx(5 / 8)  # labels: all; judge: scored


def test_alignment_duplicates_conflicts_unscored_labels_and_unlabelled_verdicts() -> None:
    labels = [
        v(0, MET, judge="ref"), v(0, MET, judge="ref"),  # agreeing duplicate: kept once
        v(1, MET, judge="ref"), v(1, UNMET, judge="ref"),  # conflicting: dropped
        v(2, UNSCORED, judge="ref"),  # a label that cannot grade: dropped
        v(3, UNMET, judge="ref"),
    ]
    judged = [v(0, MET), v(3, MET), v(3, UNMET), v(9, MET)]  # key 3 conflicts, key 9 has no label
    alignment = align(labels, judged)
    assert [i.key for i in alignment.items] == [("rs-0", "c0"), ("rs-3", "c3")]
    assert alignment.counts == {"label_duplicates": 1, "label_conflicts": 1, "labels_unscored": 1,
                                "judge_duplicates": 0, "judge_conflicts": 1, "judge_unlabelled": 1}
    assert alignment.items[1].judged is None  # the judge's conflicting pair leaves key 3 without a verdict


def test_same_criterion_id_on_different_responses_are_different_items() -> None:
    labels = [v(0, MET, judge="ref", criterion="must-0"), v(1, UNMET, judge="ref", criterion="must-0")]
    judged = [v(0, MET, criterion="must-0"), v(1, MET, criterion="must-0")]
    m = metrics(align(labels, judged).items, n_resamples=RESAMPLES)
    assert m["n_scored"] == 2 and m["accuracy_scored"]["value"] == 0.5


def test_per_tier_from_rubrics_overrides_label_meta() -> None:
    labels, judged = tiny()
    tiers = {("rb-1", f"c{i}"): ("bonus" if i >= 6 else "proficiency") for i in range(10)}
    report = evaluate(align(labels, judged, tiers), n_resamples=RESAMPLES)
    assert list(report["by_tier"]) == ["proficiency", "bonus"]
    assert report["by_tier"]["bonus"]["n_labels"] == 4
    # bonus: keys 6..9 are label unmet, judge met/unmet/unmet/unmet -> 3 / 4
    assert report["by_tier"]["bonus"]["accuracy_scored"]["value"] == pytest.approx(0.75)
    assert report["overall"]["n_labels"] == 10


def test_reference_choice() -> None:
    assert choose_reference(["a"]) == "a"
    assert choose_reference(["human:x-1", "human:x-majority", "human:x-2"]) == "human:x-majority"
    assert choose_reference(["a", "b"], "b") == "b"
    with pytest.raises(ValueError, match="several label judges"):
        choose_reference(["a", "b"])
    with pytest.raises(ValueError, match="no labels from judge 'c'"):
        choose_reference(["a", "b"], "c")


def test_krippendorff_alpha_by_hand_and_pairwise_kappa_vs_sklearn() -> None:
    # Two raters, four items, nominal; rater x = 0 0 1 1, rater y = 0 1 1 1 (they agree on 3 of 4 items).
    # Coincidences (each item gives its 2 ordered pairs, weight 1/(m-1) = 1): o_00 = 2, o_01 = o_10 = 1, o_11 = 4;
    # n_0 = 3, n_1 = 5, n = 8. D_o = (o_01 + o_10) / n = 2/8; D_e = 2 * n_0 * n_1 / (n (n - 1)) = 30/56.
    # alpha = 1 - D_o / D_e = 1 - (2/8) * (56/30) = 8/15.
    a = np.array([0, 0, 1, 1], dtype=np.int64)
    b = np.array([0, 1, 1, 1], dtype=np.int64)
    matrix = np.array([a, b], dtype=np.float64)
    assert krippendorff_alpha(matrix) == pytest.approx(8 / 15)
    with_gap = np.array([[0, 0, 1, 1, 1], [0, 1, 1, 1, np.nan]])  # an item only one rater saw adds nothing
    assert krippendorff_alpha(with_gap) == pytest.approx(8 / 15)
    assert np.isnan(krippendorff_alpha(np.array([[1, 1, 1], [1, 1, 1]], dtype=np.float64)))  # one value: undefined
    report = group_agreement({"x": a, "y": b, "z": a.copy()}, 2, n_resamples=RESAMPLES)
    pairs = {tuple(p["raters"]): p for p in report["pairwise"]}
    assert pairs[("x", "y")]["kappa"]["value"] == pytest.approx(cohen_kappa_score(a, b))
    assert pairs[("x", "z")]["kappa"]["value"] == 1.0
    assert pairs[("x", "y")]["agreement"]["value"] == 0.75


def test_meta_evaluate_reports_each_judge_and_the_annotators() -> None:
    raters = {"human:a-0": LABELS, "human:a-1": JUDGED, "human:a-2": LABELS}
    labels = [v(i, s, judge=name) for name, statuses in raters.items() for i, s in enumerate(statuses)]
    labels += [v(i, s, judge="human:a-majority") for i, s in enumerate(LABELS)]
    judged = [v(i, s, judge="j1") for i, s in enumerate(JUDGED)] + [v(i, s, judge="j2") for i, s in enumerate(LABELS)]
    report = meta_evaluate(labels, judged, n_resamples=RESAMPLES)
    assert report["reference"] == "human:a-majority"
    assert report["judges"]["j1"]["overall"]["kappa"]["value"] == pytest.approx(0.4)
    assert report["judges"]["j2"]["overall"]["kappa"]["value"] == pytest.approx(1.0)
    among = report["annotators"]["overall"]
    assert among["raters"] == ["human:a-0", "human:a-1", "human:a-2"] and among["n_complete"] == 10
    assert among["mean_pairwise_kappa"] == pytest.approx((0.4 + 1.0 + 0.4) / 3)
    json.dumps(report)  # plain JSON all the way down


def meta_eval_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*META_EVAL, *args)


def _write(path: Path, verdicts: list[Verdict]) -> Path:
    write_jsonl(path, verdicts)
    return path


def test_cli_meta_eval_json_and_table(tmp_path: Path) -> None:
    labels, judged = tiny()
    lpath, vpath = _write(tmp_path / "labels.jsonl", labels), _write(tmp_path / "verdicts.jsonl", judged)
    proc = meta_eval_cli("--labels", lpath, "--verdicts", vpath, "--resamples", "200", "--json",
                         "-o", tmp_path / "report.json")
    assert proc.returncode == 0, proc.stderr
    report = last_json(proc.stdout)
    assert report["judges"]["judge"]["overall"]["kappa"]["value"] == pytest.approx(0.4)
    assert json.loads((tmp_path / "report.json").read_text())["reference"] == "human:ref"


def test_cli_meta_eval_unknown_reference_is_one_line_exit_2(tmp_path: Path) -> None:
    labels, judged = tiny()
    lpath, vpath = _write(tmp_path / "labels.jsonl", labels), _write(tmp_path / "verdicts.jsonl", judged)
    proc = meta_eval_cli("--labels", lpath, "--verdicts", vpath, "--reference", "human:nobody")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {lpath}: judge: no labels from judge 'human:nobody'")
    assert len(proc.stderr.strip().splitlines()) == 1
