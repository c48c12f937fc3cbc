"""Fit the evidence head after the encoder, with a held-out estimate that never looks at its own question.

``rm train`` with an ``evidence`` section:

1. ``head_labels(cfg)`` builds the physician labels (``reward.physician``), reads them with any ``labels`` sets and
   drops blind-test questions. ``reward.prepare`` keeps every question of these labels out of the encoder's
   training and calibration rows, so the encoder never saw any of them;
2. ``fit_evidence`` scores the labelled items with the trained encoder, computes the evidence features (IDF from
   the encoder's training texts only), and cross-fits the head by question (``folds``): each item's out-of-fold
   score comes from a head fitted without its question. Those scores, and the lexical baseline's on the same
   items, are written as prediction files (``promedical judge compare`` reads them) and compared with paired
   bootstrap CIs; that comparison is the run's held-out result, pooled and per label source (K-QA physicians,
   HealthBench grader). The groups are the instructions across every source, so a HealthBench prompt's
   out-of-fold score never comes from a head that saw that prompt's labels. With ``veto_recall``, a veto's
   out-of-fold prediction is read at a threshold chosen for that recall by nested cross-fitting (inner folds of
   its outer fold's training questions: ``head.veto_thresholds``);
3. the final head is fitted on all labels and saved beside the weights (``evidence.json``); the veto threshold
   stored in the card is chosen for ``veto_recall`` on the out-of-fold veto scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promedical.data.blind import find_blind_list, shared_data_dir
from promedical.data.splits import instruction_key
from promedical.io import read_rubrics
from promedical.judge.lexical import DEFAULT_THRESHOLD, lexical_score
from promedical.judge.predictions import Prediction, compare_predictions, point_key, write_predictions
from promedical.reward.config import RMTrainConfig
from promedical.reward.data import RUBRICS_FILE, LabelledData, PointRow, drop_blind, read_many
from promedical.reward.evidence import IdfTable
from promedical.reward.head import (
    HEAD_SCHEME,
    EvidenceHead,
    feature_matrix,
    feature_names,
    fit_logistic,
    out_of_fold,
    recall_threshold,
    save_head,
    veto_thresholds,
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
                                                 cfg.evidence.physician_labels, cfg.blind_test)
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


def point_sources(dirs: Sequence[str], points: Sequence[PointRow]) -> list[str]:
    """Per point, the label source it came from: the labelled-set directory's name (``kqa-nli``,
    ``healthbench-grader``, or a ``labels`` set's folder name), matched by rubric id."""
    owner: dict[str, str] = {}
    for folder in dirs:
        file = Path(folder) / RUBRICS_FILE
        for rubric in read_rubrics([file]) if file.is_file() else []:
            owner.setdefault(rubric.id, Path(folder).name)
    return [owner.get(p.rubric_id, "other") for p in points]


def head_groups(points: Sequence[PointRow]) -> list[str]:
    """Cross-fitting groups: the normalised instruction, whatever source the label came from (a K-QA question or
    a HealthBench prompt), so no item's out-of-fold score comes from a head fitted on its own question's labels."""
    return [instruction_key(p.instruction) for p in points]


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
    out: dict[str, Any] = {"n": len(y), "accuracy": float((y == yhat).mean()),
                           "kappa": float(cohen_kappa_score(y, yhat)), "auc": _auc(scores, y),
                           "majority_class": float(max(y.mean(), 1 - y.mean()))}
    vetoes = [x for x in predictions if x.tier == "veto"]
    if vetoes:  # a veto's "met" is a violation: recall and precision of flagged violations
        hits = sum(x.label and bool(x.predicted) for x in vetoes)
        flagged, violations = sum(bool(x.predicted) for x in vetoes), sum(x.label for x in vetoes)
        out["veto"] = {"n": len(vetoes), "violations": violations, "flagged": flagged, "true_positives": hits,
                       "recall": hits / violations if violations else None,
                       "precision": hits / flagged if flagged else None}
    return out


def _compare_block(head: list[Prediction], lexical: list[Prediction], head_scores: np.ndarray,
                   lexical_scores: np.ndarray) -> dict[str, Any]:
    compared = compare_predictions(head, lexical, names=("rm (out of fold)", "lexical:0.5"))
    return {"out_of_fold": _summary(head, head_scores), "lexical": _summary(lexical, lexical_scores),
            "versus_lexical": compared["point"]["all"]}


def fit_evidence(rm: RewardModel, cfg: RMTrainConfig, encoder_rows: LabelledData, labels: LabelledData,
                 report: dict[str, Any]) -> dict[str, Any]:
    """Cross-fit, compare with the lexical baseline, fit the final head and save it with the checkpoint."""
    assert cfg.evidence is not None
    points = labels.points
    out = Path(cfg.output_dir) / EVIDENCE_DIR
    groups, order = _groups(points)
    raw = score_groups(RewardModel(rm.model, rm.tokenizer, rm.card, rm.path), groups)  # the encoder alone
    names = list(feature_names(rm.card.explicit, cfg.evidence.interactions))
    idf = IdfTable.build(training_texts(encoder_rows))
    x_grouped = feature_matrix(names, idf, groups, [r.scores for r in raw])
    x = np.zeros_like(x_grouped)
    x[np.array(order)] = x_grouped
    present = np.array([p.met for p in points])
    questions = head_groups(points)
    sources = point_sources(report.get("sources", []), points)
    oof = out_of_fold(x, present, questions, cfg.evidence.folds, cfg.evidence.c)
    is_veto = np.array([p.tier == "veto" for p in points])
    recall = cfg.evidence.veto_recall
    threshold = np.zeros(len(points))
    if recall is not None and is_veto.any():
        threshold = veto_thresholds(x, present, questions, is_veto, cfg.evidence.folds, cfg.evidence.c, recall)
    oof_read = oof - threshold  # >= 0: predicted met (for a veto: a violation flagged)
    lexical = np.array([lexical_score(p.response, p.criterion) for p in points]) - DEFAULT_THRESHOLD
    judge = f"rm-oof:{cfg.output_dir}"
    head_predictions = _predictions(points, oof_read, judge)
    lexical_predictions = _predictions(points, lexical, f"lexical:{DEFAULT_THRESHOLD:g}")
    write_predictions(out / OOF_FILE, head_predictions)
    write_predictions(out / LEXICAL_FILE, lexical_predictions)
    # AUC is read on the head's log-odds (threshold-free); accuracy, kappa and veto recall on its decisions
    held_out: dict[str, Any] = _compare_block(head_predictions, lexical_predictions, oof, lexical)
    by_source = {}
    for name in sorted(set(sources)):
        pick = [i for i, s in enumerate(sources) if s == name]
        by_source[name] = {"questions": len({questions[i] for i in pick}),
                           **_compare_block([head_predictions[i] for i in pick], [lexical_predictions[i] for i in pick],
                                            oof[pick], lexical[pick])}
    mean, scale, coef, intercept = fit_logistic(x, present, cfg.evidence.c)
    held_out.update({"by_source": by_source,
                     "predictions": {"rm": str(out / OOF_FILE), "lexical": str(out / LEXICAL_FILE)},
                     "folds": cfg.evidence.folds, "questions": len(set(questions)),
                     "grouping": "normalised instruction across every label source",
                     "tiers": sorted({p.tier for p in points}), "features": names})
    if recall is not None and is_veto.any():
        held_out["veto_threshold"] = {
            "recall_target": recall, "log_odds": recall_threshold(oof[is_veto], present[is_veto], recall),
            "rule": "out of fold: each veto read at a threshold chosen for the recall target on inner out-of-fold "
                    "scores of its outer fold's training questions; the stored threshold is chosen the same way "
                    "on all out-of-fold veto scores"}
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
    other tiers (vetoes: chosen on the validation rows for violation-F1, fail closed) keep their calibration.
    With a ``veto_threshold`` (``evidence.veto_recall``), the veto tier's threshold is the one chosen for that
    recall on the out-of-fold veto scores (in the score's "satisfied" sense: its negation)."""
    fitted = held_out["out_of_fold"]
    covered = set(held_out.get("tiers", ()))
    out = {tier: TierThreshold(threshold=0.0, n=fitted["n"], validation_accuracy=fitted["accuracy"],
                               rule="evidence head: log-odds 0 (p = 0.5 of a physician 'met'); accuracy is "
                                    "out of fold")
           for tier in covered if tier in calibrated or tier in TIERS}
    veto = held_out.get("veto_threshold")
    if veto is not None and "veto" in out:
        flagged = fitted.get("veto", {})
        out["veto"] = TierThreshold(threshold=-float(veto["log_odds"]), n=int(flagged.get("n", 0)),
                                    validation_accuracy=fitted["accuracy"],
                                    rule=f"evidence head: violation log-odds >= {veto['log_odds']:.3f}, chosen for "
                                         f"recall {veto['recall_target']:g} on out-of-fold veto scores")
    return out


def _line(block: dict[str, Any]) -> str:
    rm, lex, diff = block["out_of_fold"], block["lexical"], block["versus_lexical"]["accuracy_difference"]
    text = (f"accuracy {rm['accuracy']:.3f} kappa {rm['kappa']:.3f} vs lexical:0.5 {lex['accuracy']:.3f} kappa "
            f"{lex['kappa']:.3f}; difference {diff['value']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]"
            f" (majority class {rm['majority_class']:.3f})")
    auc = block["versus_lexical"].get("auc_difference") or {}
    if auc.get("value") is not None:  # ranking: what the GRPO reward's probability credit reads
        text += (f"; AUC {auc['auc_a']:.3f} vs {auc['auc_b']:.3f}, difference {auc['value']:+.3f} "
                 f"[{auc['ci_low']:+.3f}, {auc['ci_high']:+.3f}]")
    veto = rm.get("veto")
    if veto:
        show = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        text += (f"; vetoes: recall {show(veto['recall'])} precision {show(veto['precision'])} "
                 f"({veto['true_positives']}/{veto['violations']} violations, {veto['flagged']} flagged)")
    return text


def held_out_line(held_out: dict[str, Any]) -> str:
    """For the terminal: the out-of-fold agreement with the labels next to the lexical baseline's, pooled and (with
    more than one label source) per source."""
    rm = held_out["out_of_fold"]
    by_source = held_out.get("by_source", {})
    what = "physician labels" if len(by_source) < 2 else f"labels of {len(by_source)} sources, pooled"
    line = (f"held out ({what}, {held_out['questions']} questions cross-fitted by question, n={rm['n']}): "
            + _line(held_out))
    if len(by_source) > 1:
        for name, block in by_source.items():
            line += f"\n  {name} ({block['questions']} questions, n={block['out_of_fold']['n']}): " + _line(block)
    return line
