"""Does averaging several encoders steady the recommended RM's agreement with physicians? (K-QA, out of fold.)

The recipe's out-of-fold K-QA figure moves by about 3 points between runs that differ only in the seed or in
torch's arithmetic order (docs/benchmarks.md), so its margin over ``lexical:0.5`` is significant in some runs and
not in others. This script takes several finished runs of ``promedical rm train --config
configs/rm_recommended.yaml`` (same data, different seeds or thread counts) and scores the 249 K-QA physician labels
with each run's encoder alone. It then cross-fits the evidence head by question exactly as ``rm train`` does
(``promedical.reward.fit_head``): once on each run's encoder score, which reproduces that run's figure, and once on
the ensemble score, the mean of the encoders' standardised scores. Each variant is compared with lexical:0.5 on the
same items (``compare_predictions``: paired bootstrap, 10,000 resamples, permutation p).

    nice -n 10 python benchmarks/rm_encoder_ensemble.py --runs RUN_SEED0 RUN_SEED1 RUN_SEED2 --work /tmp/rm-ens

The scratch folder holds the physician labels and supervision rebuilt from ``../shared/data`` (the IDF table
comes from the encoders' training rows, which do not depend on the seed) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from promedical.judge.lexical import DEFAULT_THRESHOLD, lexical_score
from promedical.judge.predictions import compare_predictions
from promedical.machine import Conditions
from promedical.reward import prepare as prepare_rows
from promedical.reward.config import RMTrainConfig
from promedical.reward.evidence import IdfTable
from promedical.reward.fit_head import _groups, _predictions, _summary, head_groups, head_labels, training_texts
from promedical.reward.head import feature_matrix, feature_names, out_of_fold
from promedical.reward.model import RewardModel, load_rm
from promedical.reward.score import score_groups


def standardised(scores: list[list[float]]) -> list[list[float]]:
    """Per-run z-scores (encoders trained with different seeds differ in scale and offset)."""
    flat = np.concatenate([np.asarray(s, dtype=float) for s in scores])
    mean, sd = float(flat.mean()), float(flat.std()) or 1.0
    return [[(v - mean) / sd for v in group] for group in scores]


def mean_scores(runs: list[list[list[float]]]) -> list[list[float]]:
    """Element-wise mean over runs of per-group, per-criterion scores."""
    return [[float(np.mean([run[g][c] for run in runs])) for c in range(len(runs[0][g]))]
            for g in range(len(runs[0]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="finished rm_recommended run folders")
    parser.add_argument("--work", type=Path, default=Path("/tmp/promedical-rm-ensemble"))
    args = parser.parse_args()
    conditions = Conditions()
    conditions.start()
    recorded = json.loads((args.runs[0] / "train.config.json").read_text())
    cfg = RMTrainConfig.model_validate({**recorded, "output_dir": str(args.work)})
    evidence = cfg.evidence
    if evidence is None:
        raise SystemExit(f"{args.runs[0]}: train.config.json: evidence: the runs must have an evidence section")
    labels, _ = head_labels(cfg)
    rows, _, _ = prepare_rows.prepare(cfg)
    points = labels.points
    groups, order = _groups(points)
    names = list(feature_names(True, evidence.interactions))
    idf = IdfTable.build(training_texts(rows))
    present = np.array([p.met for p in points])
    questions = head_groups(points)
    lexical = _predictions(points, np.array([lexical_score(p.response, p.criterion) for p in points])
                           - DEFAULT_THRESHOLD, f"lexical:{DEFAULT_THRESHOLD:g}")

    def evaluate(encoder: list[list[float]], name: str) -> dict[str, Any]:
        grouped = feature_matrix(names, idf, groups, encoder)
        x = np.zeros_like(grouped)
        x[np.array(order)] = grouped
        oof = out_of_fold(x, present, questions, evidence.folds, evidence.c)
        head = _predictions(points, oof, name)
        versus = compare_predictions(head, lexical, names=(name, "lexical:0.5"))["point"]["all"]
        return {"out_of_fold": _summary(head, oof), "versus_lexical": versus}

    raw: dict[str, list[list[float]]] = {}
    for run in args.runs:
        rm = load_rm(run / "model")
        scored = score_groups(RewardModel(rm.model, rm.tokenizer, rm.card, rm.path), groups)  # the encoder alone
        raw[str(run)] = [list(s.scores) for s in scored]
    results = {run: evaluate(scores, run) for run, scores in raw.items()}
    results["ensemble"] = evaluate(mean_scores([standardised(s) for s in raw.values()]), "ensemble")
    conditions.stop()
    summary = {"runs": [str(r) for r in args.runs], "n": len(points), "results": results,
               "lexical": _summary(lexical, np.array([x.score for x in lexical])),
               "conditions": conditions.as_dict()}
    (args.work / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    for name, block in results.items():
        fit, diff = block["out_of_fold"], block["versus_lexical"]["accuracy_difference"]
        print(f"{name}: accuracy {fit['accuracy']:.3f} kappa {fit['kappa']:.3f} AUC {fit['auc']:.3f}; vs lexical:0.5 "
              f"{diff['value']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}] p = {diff.get('p_value')}")


if __name__ == "__main__":
    main()
