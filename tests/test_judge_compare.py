"""Paired comparison of two judges on the same labels: per-item predictions from `judge meta-eval` and `rm eval`,
joined by `judge compare` into accuracy and kappa differences with bootstrap CIs and permutation p-values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from promedical import samples
from promedical.io import UserError, write_jsonl
from promedical.judge.predictions import (
    Prediction,
    _auc,
    _auc_difference,
    _kappa,
    compare_predictions,
    read_predictions,
)
from tests.helpers_cli import last_json, run_cli

SAMPLES = str(Path(samples.rubrics_path()).parent)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("cmp")
    paths = {"rm": tmp / "lexical-rm.jsonl", "v": tmp / "v.jsonl", "judge": tmp / "judge.jsonl"}
    rm = last_json(_run("rm", "eval", "--model", "lexical", "--data", SAMPLES, "--calibrate-on", SAMPLES,
                         "--predictions-out", str(paths["rm"]), "--json"))
    assert rm["predictions"]["rows"] > 0
    last_json(_run("judge", "run", "-r", str(samples.rubrics_path()), "-x", str(samples.responses_path()),
                    "--judge", "lexical:0.3", "-o", str(paths["v"]), "--json"))
    meta = last_json(_run("judge", "meta-eval", "-l", str(samples.verdicts_path()), "-v", str(paths["v"]),
                           "--predictions-out", str(paths["judge"]), "--json"))
    assert meta["predictions"]["rows"] == meta["judges"]["lexical:0.3"]["overall"]["n_labels"]
    return paths


def test_rm_eval_and_meta_eval_predictions_join_item_for_item(files: dict[str, Path]) -> None:
    report = last_json(_run("judge", "compare", str(files["rm"]), str(files["judge"]), "--resamples", "1000",
                             "--json"))
    judge_rows = read_predictions(files["judge"])
    assert report["n_joined"] == len(judge_rows) and report["only_b"] == 0  # every labelled point joins
    assert report["judge_a"] == "lexical" and report["judge_b"] == "lexical:0.3"
    block = report["point"]["all"]
    a = [r for r in read_predictions(files["rm"]) if r.kind == "point"]
    assert block["accuracy_a"] == pytest.approx(np.mean([r.correct or 0.0 for r in a]))
    acc = block["accuracy_difference"]
    assert acc["value"] == pytest.approx(block["accuracy_a"] - block["accuracy_b"])
    assert acc["ci_low"] <= acc["value"] <= acc["ci_high"] and 0 < acc["p_value"] <= 1
    assert set(report["point"]) == {"all", "proficiency", "bonus", "veto"}


def test_a_judge_compared_with_itself_differs_by_nothing(files: dict[str, Path]) -> None:
    rows = read_predictions(files["judge"])
    report = compare_predictions(rows, rows, n_resamples=500)
    acc = report["point"]["all"]["accuracy_difference"]
    assert acc["value"] == 0 and acc["p_value"] == 1.0
    assert report["point"]["all"]["kappa_difference"]["value"] == 0


def test_kappa_matches_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60).astype(float)
    a = np.where(rng.random(60) < 0.8, y, 1 - y)
    b = np.where(rng.random(60) < 0.6, y, 1 - y)
    expected = cohen_kappa_score(y, a) - cohen_kappa_score(y, b)
    assert float(_kappa(a[None, :], b[None, :], y[None, :])[0]) == pytest.approx(expected)


def _p(key: str, label: bool, predicted: bool | None, judge: str) -> Prediction:
    return Prediction(kind="point", key=key, tier="proficiency", label=label, predicted=predicted,
                      correct=None if predicted is None else float(predicted == label),
                      status="scored" if predicted is not None else "unscored", judge=judge)


def test_abstaining_counts_as_wrong_and_different_references_are_refused(tmp_path: Path) -> None:
    a = [_p(f"r{i}|c", True, True, "a") for i in range(20)]
    b = [_p(f"r{i}|c", True, None, "b") for i in range(20)]  # B never answers
    report = compare_predictions(a, b, n_resamples=500)
    assert report["point"]["all"]["accuracy_b"] == 0.0 and report["point"]["all"]["coverage_b"] == 0.0
    assert report["point"]["all"]["accuracy_difference"]["ci_low"] == 1.0
    flipped = [_p(f"r{i}|c", False, True, "b") for i in range(20)]
    with pytest.raises(UserError, match="different references"):
        compare_predictions(a, flipped)
    write_jsonl(tmp_path / "a.jsonl", a)
    write_jsonl(tmp_path / "b.jsonl", flipped)
    proc = _run("judge", "compare", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"))
    assert proc.returncode == 2 and "different references" in proc.stderr and "Traceback" not in proc.stderr


def test_auc_matches_scikit_learn_with_ties() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, (5, 80)).astype(float)
    scores = np.round(y + rng.normal(0, 1.2, (5, 80)), 1)  # rounded: many ties
    expected = [roc_auc_score(y[i], scores[i]) for i in range(5)]
    assert _auc(scores, y) == pytest.approx(expected)
    assert np.isnan(_auc(scores[:1], np.ones((1, 80))))[0]  # one class: no AUC


def _scored(key: str, label: bool, score: float | None, judge: str) -> Prediction:
    predicted = None if score is None else score >= 0
    return Prediction(kind="point", key=key, tier="proficiency", label=label, predicted=predicted,
                      correct=None if predicted is None else float(predicted == label),
                      status="scored" if predicted is not None else "unscored", score=score, judge=judge)


def test_auc_difference_ranks_scores_on_any_scale() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200).astype(bool)
    good = y + rng.normal(0, 0.6, 200) - 0.5  # ranks the labels well (AUC about 0.88)
    noise = rng.normal(0, 1, 200)  # ranks them at chance
    a = [_scored(f"r{i}|c", bool(y[i]), float(good[i]), "a") for i in range(200)]
    b = [_scored(f"r{i}|c", bool(y[i]), float(noise[i]), "b") for i in range(200)]
    auc = compare_predictions(a, b, n_resamples=2000)["point"]["all"]["auc_difference"]
    assert auc["auc_a"] == pytest.approx(roc_auc_score(y, good))
    assert auc["auc_b"] == pytest.approx(roc_auc_score(y, noise))
    assert auc["value"] == pytest.approx(auc["auc_a"] - auc["auc_b"])
    assert auc["ci_low"] > 0.2 and auc["p_value"] < 0.01 and auc["n"] == 200
    # AUC reads ranks only: a monotone rescaling of A (log-odds -> a probability-like share) changes nothing
    squashed = [_scored(x.key, x.label, float(np.tanh(x.score or 0.0) / 3), "a") for x in a]
    again = compare_predictions(squashed, b, n_resamples=2000)["point"]["all"]["auc_difference"]
    assert again["value"] == pytest.approx(auc["value"]) and again["ci_low"] == pytest.approx(auc["ci_low"])
    same = compare_predictions(a, a, n_resamples=500)["point"]["all"]["auc_difference"]
    assert same["value"] == 0 and same["p_value"] == 1.0
    # a judge without scores (an LLM judge's verdicts) has no AUC: reported as None, never as 0.5
    verdicts = [_p(x.key, x.label, bool(x.predicted), "v") for x in b]
    assert compare_predictions(a, verdicts, n_resamples=500)["point"]["all"]["auc_difference"]["value"] is None


def test_rm_eval_scores_are_margins_in_the_labels_sense(files: dict[str, Path]) -> None:
    """A point's score is >= 0 exactly when it is predicted met, prohibited criteria included, so one file's scores
    rank its items across tiers (each tier has its own threshold) for the AUC comparison."""
    rows = [r for r in read_predictions(files["rm"]) if r.kind == "point" and r.score is not None]
    assert rows and any(r.tier == "veto" for r in rows)
    assert all((r.score >= 0) == r.predicted for r in rows)  # type: ignore[operator]


def _rejection_rate(noise_a: float, noise_b: float, runs: int, seed: int) -> float:
    """Share of simulated runs whose AUC comparison rejects at 5%: judge A scores in log-odds, judge B on an
    exponential scale, each the label plus normal noise of the given spread (120 items, 35% positive)."""
    rng = np.random.default_rng(seed)
    p_values = []
    for rep in range(runs):
        y = (rng.random(120) < 0.35).astype(float)
        a = y + rng.normal(0, noise_a, 120)
        b = np.exp(y + rng.normal(0, noise_b, 120))
        p_values.append(_auc_difference(a, b, y, 500, rep)["p_value"])
    return float(np.mean(np.array(p_values) < 0.05))


def test_auc_permutation_p_holds_its_level_and_power_across_scales() -> None:
    """Two equally good judges with independent errors on different scales: the swap-permutation p (on within-judge
    ranks) rejects at about the nominal 5%, not more. And it has power: with A ranking better (AUC about 0.84
    against 0.72) it rejects in 63% of runs; swapping the raw scores instead of their ranks mixes the two scales
    inside each permuted judge and rejects in only 46%."""
    assert 0.01 <= _rejection_rate(1.0, 1.0, runs=200, seed=0) <= 0.11
    assert _rejection_rate(0.7, 1.3, runs=150, seed=1) >= 0.55
