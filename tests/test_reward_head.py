"""The evidence head: features that read the whole response, cross-fitting that never sees an item's question,
and a checkpoint whose score (judge, scorer, eval) goes through the head."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from promedical.data.splits import instruction_key
from promedical.io import UserError, read_rubrics
from promedical.reward.data import read_many
from promedical.reward.evidence import IdfTable, lexical_features, presence
from promedical.reward.head import out_of_fold
from tests.helpers_cli import last_json, run_cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "promedical" / "samples"
TINY = str(ROOT / "configs" / "rm_tiny.yaml")

IDF = IdfTable.build(["fever and cough", "take ibuprofen for fever", "metformin lowers glucose", "rest at home"])


def test_evidence_in_the_tail_of_a_long_answer_counts() -> None:
    filler = " ".join(f"Sentence {i} talks about rest and fluids." for i in range(60))
    criterion = "Recommends metformin to lower blood glucose"
    tail = lexical_features("What helps diabetes?", filler + " Metformin lowers blood glucose.", criterion, IDF)
    absent = lexical_features("What helps diabetes?", filler, criterion, IDF)
    assert tail["idf_recall"] > 0.7 and absent["idf_recall"] == 0.0  # all but "recommends"
    assert tail["best_window"] > 0.7 and absent["best_window"] == 0.0


def test_words_of_the_question_carry_no_evidence() -> None:
    question = "Should I take ibuprofen for a fever?"
    criterion = "Ibuprofen is safe for fever at the usual dose"
    echo = lexical_features(question, "You asked whether to take ibuprofen for a fever.", criterion, IDF)
    answer = lexical_features(question, "It is safe at the usual dose.", criterion, IDF)
    # the echo shares words with the criterion, but only words the question already holds
    assert echo["lexical"] > 0.0 and echo["idf_recall"] > 0.0
    assert echo["idf_recall_new"] == 0.0 and answer["idf_recall_new"] == 1.0


def test_stemmed_words_meet() -> None:
    row = lexical_features("q", "The infections were treated.", "Treats the infection", IDF)
    assert row["recall"] == 1.0 and row["lexical"] < 1.0  # the plain lexical share misses the plural


def test_prohibited_score_reads_as_absence() -> None:
    assert presence(2.0, "required") == 2.0 and presence(2.0, "prohibited") == -2.0


def test_out_of_fold_never_sees_the_items_own_question() -> None:
    rng = np.random.default_rng(0)
    groups = [f"q{i // 8}" for i in range(80)]
    x = rng.normal(size=(80, 3))
    y = (x[:, 0] + 0.3 * rng.normal(size=80) > 0)
    flipped = y.copy()
    flipped[[i for i, g in enumerate(groups) if g == "q3"]] ^= True
    a, b = out_of_fold(x, y, groups, 5), out_of_fold(x, flipped, groups, 5)
    in_q3 = np.array([g == "q3" for g in groups])
    # changing q3's labels changes no q3 prediction (q3 is never in its own fold's training set) ...
    assert np.allclose(a[in_q3], b[in_q3])
    # ... but it does change predictions of other questions (the check can fail)
    assert not np.allclose(a[~in_q3], b[~in_q3])


def test_out_of_fold_needs_two_questions() -> None:
    with pytest.raises(UserError, match="at least 2"):
        out_of_fold(np.zeros((4, 1)), np.array([True, False, True, False]), ["q"] * 4, 5)


def _split_samples(tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "split"
    proc = run_cli("data", "split-rubrics", "-r", str(SAMPLES / "rubrics.jsonl"), "-x",
                   str(SAMPLES / "responses.jsonl"), "-v", str(SAMPLES / "verdicts.jsonl"), "-f", "train=0.5",
                   "-f", "test=0.5", "--salt", "head-test", "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    return out / "train", out / "test"


@pytest.mark.slow
def test_train_with_an_evidence_head(tmp_path: Path) -> None:
    train, labels = _split_samples(tmp_path)
    run_dir = tmp_path / "run"
    # the encoder's data also holds the label questions: the run must keep them out of its rows
    summary = last_json(run_cli("rm", "train", "--config", TINY, f"output_dir={run_dir}",
                                f"train_data=[{train},{labels}]", f"val_data=[{train}]", "max_steps=2",
                                "pointwise_weight=1.0", f"evidence={{labels: [{labels}], folds: 3}}", "--json",
                                timeout=900))
    held_out = summary["evidence"]
    n_labels = len(read_many([labels], derive=False).points)  # one label per (response, criterion)
    assert held_out["out_of_fold"]["n"] == n_labels and held_out["lexical"]["n"] == n_labels
    assert held_out["versus_lexical"]["accuracy_difference"]["ci_low"] is not None
    auc = held_out["versus_lexical"]["auc_difference"]  # ranking, from the predictions files' scores ...
    assert auc["auc_a"] == pytest.approx(held_out["out_of_fold"]["auc"])  # ... equals the head's own AUC
    assert auc["auc_b"] == pytest.approx(held_out["lexical"]["auc"])
    dropped = summary["data"]["evidence_labels"]["dropped_train"]
    assert dropped["points"] > 0  # every label question left the encoder's rows ...
    label_keys = {instruction_key(r.instruction) for r in read_rubrics([labels / "rubrics.jsonl"])}
    by_split = summary["data"]["audit"]["train_rows_by_split"]
    assert by_split  # ... and the audit still sees training rows
    manifest = json.loads((run_dir / "train.manifest.json").read_text())
    assert manifest["evidence"]["out_of_fold"]["accuracy"] == held_out["out_of_fold"]["accuracy"]
    oof = [json.loads(line) for line in (run_dir / "evidence" / "oof.predictions.jsonl").open()]
    assert len(oof) == n_labels
    # the predictions files are what `judge compare` takes
    compared = last_json(run_cli("judge", "compare", str(run_dir / "evidence" / "oof.predictions.jsonl"),
                                 str(run_dir / "evidence" / "lexical.predictions.jsonl"), "--json"))
    assert compared["n_joined"] == n_labels
    checkpoint = Path(summary["checkpoint"])
    card = json.loads((checkpoint / "rm.json").read_text())
    assert card["evidence"] == "evidence/1" and (checkpoint / "evidence.json").is_file()
    assert card["thresholds"]["proficiency"]["threshold"] == 0.0
    assert label_keys  # the label set is non-empty
    # scoring goes through the head: the judge's scores equal the head's log-odds, and differ from the encoder's
    verdicts = tmp_path / "v.jsonl"
    last_json(run_cli("rm", "score", "--model", str(checkpoint), "--rubrics", str(labels / "rubrics.jsonl"),
                      "--responses", str(labels / "responses.jsonl"), "-o", str(verdicts), "--json"))
    with_head = [json.loads(line)["meta"]["score"] for line in verdicts.open()]
    bare = tmp_path / "bare"
    shutil.copytree(checkpoint, bare)
    (bare / "evidence.json").unlink()
    proc = run_cli("rm", "score", "--model", str(bare), "--rubrics", str(labels / "rubrics.jsonl"),
                   "--responses", str(labels / "responses.jsonl"), "-o", str(tmp_path / "x.jsonl"))
    assert proc.returncode == 2 and "evidence.json is missing" in proc.stderr
    card["evidence"] = None
    (bare / "rm.json").write_text(json.dumps(card))
    last_json(run_cli("rm", "score", "--model", str(bare), "--rubrics", str(labels / "rubrics.jsonl"),
                      "--responses", str(labels / "responses.jsonl"), "-o", str(tmp_path / "e.jsonl"), "--json"))
    encoder_only = [json.loads(line)["meta"]["score"] for line in (tmp_path / "e.jsonl").open()]
    assert len(with_head) == len(encoder_only) and not np.allclose(with_head, encoder_only)


@pytest.mark.slow
def test_a_head_without_validation_data_still_gives_the_checkpoint_its_thresholds(tmp_path: Path) -> None:
    """With no validation rows (e.g. ``supervision=[]`` and the samples as training data) nothing is calibrated,
    but the head's own threshold (log-odds 0) must still reach the card: without it every verdict is unscored."""
    train, labels = _split_samples(tmp_path)
    run_dir = tmp_path / "run"
    summary = last_json(run_cli("rm", "train", "--config", TINY, f"output_dir={run_dir}", f"train_data=[{train}]",
                                "val_data=[]", "max_steps=2", f"evidence={{labels: [{labels}], folds: 3}}", "--json",
                                timeout=900))
    checkpoint = Path(summary["checkpoint"])
    card = json.loads((checkpoint / "rm.json").read_text())
    assert card["thresholds"]["proficiency"]["threshold"] == 0.0
    assert summary["thresholds"]["proficiency"] == 0.0
    out = tmp_path / "eval.predictions.jsonl"
    last_json(run_cli("rm", "eval", "--model", str(checkpoint), "--data", str(labels), "--resamples", "50",
                      "--predictions-out", str(out), "--json", timeout=600))
    rows = [json.loads(line) for line in out.open()]
    proficiency = [r for r in rows if r["kind"] == "point" and r["tier"] == "proficiency"]
    assert proficiency and all(r["status"] != "unscored" for r in proficiency)
