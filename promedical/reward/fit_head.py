"""Fit the evidence head after the encoder, with a held-out estimate that never looks at its own question.

``rm train`` with an ``evidence`` section:

1. ``head_labels(cfg)`` builds the physician labels (``reward.physician``), reads them with any ``labels`` sets and
   drops blind-test questions. ``reward.prepare`` keeps every question of these labels out of the encoder's
   training and calibration rows, so the encoder never saw any of them;
2. ``fit_evidence`` scores the labelled items with the trained encoder, computes the evidence features (IDF from
   the encoder's training texts only), and cross-fits the head by question (``folds``): each item's out-of-fold
   score comes from a head fitted without its question. Those scores, and the lexical baseline's on the same
   items, are written as prediction files (``promedical judge compare`` reads them) and compared with paired
   bootstrap CIs; that comparison is the run's held-out result;
3. the final head is fitted on all labels and saved beside the weights (``evidence.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promedical.data.blind import find_blind_list, shared_data_dir
from promedical.data.splits import instruction_key
from promedical.judge.lexical import DEFAULT_THRESHOLD, lexical_score
from promedical.judge.predictions import Prediction, compare_predictions, point_key, write_predictions
from promedical.reward.config import RMTrainConfig
from promedical.reward.data import LabelledData, PointRow, drop_blind, read_many
from promedical.reward.evidence import IdfTable
from promedical.reward.head import (
    HEAD_SCHEME,
    EvidenceHead,
    feature_matrix,
    feature_names,
    fit_logistic,
    out_of_fold,
    save_head,
)
from promedical.reward.inputs import CriterionInput, Group
from promedical.reward.model import RewardModel, TierThreshold, write_card
from promedical.reward.physician import build_physician
from promedical.reward.score import score_groups
from promedical.rubrics.schema import TIER_NAMES

PHYSICIAN_DIR = "physician"
EVIDENCE_DIR = "evidence"
OOF_FILE = "oof.predictions.jsonl"
TIERS = TIER_NAMES
LEXICAL_FILE = "lexical.predictions.jsonl"


def head_labels(cfg: RMTrainConfig) -> tuple[LabelledData, dict[str, Any]]:
    """The physician labels the head is fitted on (blind questions dropped) and a report for the manifest."""
    assert cfg.evidence is not None
    report: dict[str, Any] = {}
    dirs = list(cfg.evidence.labels)
    if cfg.evidence.physician_labels:
        built, report["built"] = build_physician(shared_data_dir(), Path(cfg.output_dir) / PHYSICIAN_DIR,
                                                 cfg.evidence.physician_labels)
        dirs += built
    data = read_many(dirs, derive=False)
    data.pairs = []  # the head is fitted on pointwise labels only
    blind = find_blind_list(cfg.blind_test)
    if blind is not None:
        data, report["blind_dropped"] = drop_blind(data, blind)
    report.update(sources=dirs, points=len(data.points),
                  questions=len({instruction_key(p.instruction) for p in data.points}))
    return data, report


def label_questions(data: LabelledData) -> set[str]:
    return {instruction_key(p.instruction) for p in data.points}


def drop_questions(data: LabelledData, keys: set[str]) -> tuple[LabelledData, dict[str, int]]:
    """``data`` without rows of the given instructions (the head's questions stay out of the encoder's rows)."""
    kept = LabelledData(pairs=[p for p in data.pairs if instruction_key(p.instruction) not in keys],
                        points=[p for p in data.points if instruction_key(p.instruction) not in keys],
                        notes=data.notes)
    return kept, {"points": len(data.points) - len(kept.points), "pairs": len(data.pairs) - len(kept.pairs)}


def training_texts(data: LabelledData) -> list[str]:
    """Documents for the IDF table: the encoder's training responses and criteria (never the head's labels)."""
    texts = {p.response for p in data.points} | {p.criterion for p in data.points}
    texts |= {t for p in data.pairs for t in (p.chosen, p.rejected, p.criterion)}
    return sorted(texts)


def _groups(points: Sequence[PointRow]) -> tuple[list[Group], list[int]]:
    """Points grouped by (instruction, response) for one scoring pass each; returns groups and, per group, the
    order its criteria map back to."""
    index: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(points):
        index.setdefault((p.instruction, p.response), []).append(i)
    groups, order = [], []
    for (instruction, response), idx in index.items():
        groups.append(Group(instruction, response, tuple(
            CriterionInput(points[i].criterion, points[i].tier, points[i].polarity) for i in idx)))
        order.extend(idx)
    return groups, order


def _predictions(points: Sequence[PointRow], scores: np.ndarray, judge: str) -> list[Prediction]:
    out = []
    for p, s in zip(points, scores, strict=True):
        predicted = bool(s >= 0)
        out.append(Prediction(kind="point", key=point_key(p.response_id, p.criterion_id), tier=p.tier, label=p.met,
                              predicted=predicted, correct=float(predicted == p.met), score=float(s), judge=judge))
    return out


def _auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else None


def _summary(predictions: Sequence[Prediction], scores: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import cohen_kappa_score

    y = np.array([x.label for x in predictions])
    yhat = np.array([bool(x.predicted) for x in predictions])
    return {"n": len(y), "accuracy": float((y == yhat).mean()), "kappa": float(cohen_kappa_score(y, yhat)),
            "auc": _auc(scores, y), "majority_class": float(max(y.mean(), 1 - y.mean()))}


def fit_evidence(rm: RewardModel, cfg: RMTrainConfig, encoder_rows: LabelledData, labels: LabelledData,
                 report: dict[str, Any]) -> dict[str, Any]:
    """Cross-fit, compare with the lexical baseline, fit the final head and save it with the checkpoint."""
    assert cfg.evidence is not None
    points = labels.points
    out = Path(cfg.output_dir) / EVIDENCE_DIR
    groups, order = _groups(points)
    raw = score_groups(RewardModel(rm.model, rm.tokenizer, rm.card, rm.path), groups)  # the encoder alone
    names = list(feature_names(rm.card.explicit))
    idf = IdfTable.build(training_texts(encoder_rows))
    x_grouped = feature_matrix(names, idf, groups, [r.scores for r in raw])
    x = np.zeros_like(x_grouped)
    x[np.array(order)] = x_grouped
    present = np.array([p.met for p in points])
    questions = [instruction_key(p.instruction) for p in points]
    oof = out_of_fold(x, present, questions, cfg.evidence.folds, cfg.evidence.c)
    lexical = np.array([lexical_score(p.response, p.criterion) for p in points]) - DEFAULT_THRESHOLD
    judge = f"rm-oof:{cfg.output_dir}"
    head_predictions = _predictions(points, oof, judge)
    lexical_predictions = _predictions(points, lexical, f"lexical:{DEFAULT_THRESHOLD:g}")
    write_predictions(out / OOF_FILE, head_predictions)
    write_predictions(out / LEXICAL_FILE, lexical_predictions)
    compared = compare_predictions(head_predictions, lexical_predictions, names=("rm (out of fold)", "lexical:0.5"))
    mean, scale, coef, intercept = fit_logistic(x, present, cfg.evidence.c)
    held_out = {"out_of_fold": _summary(head_predictions, oof),
                "lexical": _summary(lexical_predictions, lexical),
                "versus_lexical": compared["point"]["all"],
                "predictions": {"rm": str(out / OOF_FILE), "lexical": str(out / LEXICAL_FILE)},
                "folds": cfg.evidence.folds, "questions": len(set(questions)),
                "tiers": sorted({p.tier for p in points})}
    head = EvidenceHead(features=names, mean=mean, scale=scale, coef=coef, intercept=intercept, idf=idf,
                        fit={"labels": report, "held_out": {k: v for k, v in held_out.items() if k != "predictions"},
                             "idf_documents": idf.n_docs, "coefficients": dict(zip(names, coef, strict=True))})
    save_head(rm.path, head)
    rm.card.evidence = HEAD_SCHEME
    write_card(rm.path, rm.card)
    rm.evidence = head
    return held_out


def head_thresholds(held_out: dict[str, Any], calibrated: dict[str, TierThreshold]) -> dict[str, TierThreshold]:
    """Thresholds of the tiers the physician labels cover: log-odds 0 (a physician more likely than not to call
    it met). The head is a calibrated logistic model, so no threshold is tuned on the labels it is evaluated on;
    other tiers (vetoes: chosen on the validation rows for violation-F1, fail closed) keep their calibration."""
    fitted = held_out["out_of_fold"]
    covered = set(held_out.get("tiers", ()))
    return {tier: TierThreshold(threshold=0.0, n=fitted["n"], validation_accuracy=fitted["accuracy"],
                                rule="evidence head: log-odds 0 (p = 0.5 of a physician 'met'); accuracy is "
                                     "out of fold")
            for tier in covered if tier in calibrated or tier in TIERS}


def held_out_line(held_out: dict[str, Any]) -> str:
    """One line for the terminal: the out-of-fold agreement with physicians next to the lexical baseline's."""
    rm, lex, diff = held_out["out_of_fold"], held_out["lexical"], held_out["versus_lexical"]["accuracy_difference"]
    return (f"held out (physician labels, {held_out['questions']} questions cross-fitted by question, n={rm['n']}): "
            f"accuracy {rm['accuracy']:.3f} kappa {rm['kappa']:.3f} vs lexical:0.5 {lex['accuracy']:.3f} kappa "
            f"{lex['kappa']:.3f}; difference {diff['value']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]"
            f" (majority class {rm['majority_class']:.3f})")
