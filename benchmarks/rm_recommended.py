"""The recommended reward model (configs/rm_recommended.yaml) and its ablations, on physician labels it never saw.

Every variant is trained with the one command a user runs (``promedical rm train --config
configs/rm_recommended.yaml output_dir=DIR`` plus the variant's overrides), which builds its supervision and
physician labels from ``../shared/data``, drops the blind-test questions, keeps the labelled questions out of the
encoder's rows, and cross-fits the evidence head by question. The K-QA figures are those out-of-fold scores: for
every item, neither the encoder nor the head it was scored by saw its question.

Variants: ``explicit`` (the recipe), ``implicit`` (``template=implicit/1``: no criterion anywhere),
``pointwise+pairwise`` (``pointwise_weight=1``: BCE on the constructed labels beside Bradley-Terry), and
``no-supervision`` (the encoder trained on the bundled samples instead of the K-QA constructions). Paired
comparisons (``promedical judge compare`` on the prediction files): explicit vs lexical:0.5
and explicit vs each variant, on the same 249 K-QA items.

HealthBench: each checkpoint whose head was fitted on K-QA labels only is evaluated with ``promedical rm eval``
on the shared HealthBench grader labels (blind prompt ids dropped; vetoes by the default veto rule), next to
lexical:0.5 on the same items: accuracy, kappa, veto recall and precision (transfer figures).

``healthbench-head`` (configs/rm_recommended_hb.yaml), ``healthbench-head-t0`` (the same, vetoes read at log-odds
0 instead of the 80%-recall threshold) and ``healthbench-head-plain`` (neither the criterion-kind interactions nor
the veto-recall threshold) fit the head on K-QA *and* HealthBench grader labels,
cross-fitted by question across both sources; their figures are the out-of-fold scores per source (K-QA,
HealthBench), next to lexical:0.5 on the same items. Their encoder is the ``explicit`` run's (same config, same
seed: its checkpoints are copied and the run resumes at the last step), so only the head differs.

    nice -n 10 python benchmarks/rm_recommended.py --work /tmp/promedical-rm-recommended

A finished run directory is reused (delete it to retrain); the supervision built by the first variant is copied to
the others. The Markdown table and ``summary.json`` go under ``--work``, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from rm_quality import cli  # the sibling script's command runner (benchmarks/ is on sys.path when run)

from promedical.machine import Conditions

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROMEDICAL_SHARED_DATA", ROOT / ".." / "shared" / "data"))
CONFIG = "configs/rm_recommended.yaml"
VARIANTS: dict[str, list[str]] = {
    "explicit": [],
    "implicit": ["template=implicit/1"],
    "pointwise+pairwise": ["pointwise_weight=1.0"],
    "no-supervision": ["supervision=[]", "train_data=[promedical/samples]"],
    "healthbench-head": [],
    "healthbench-head-t0": ["evidence.veto_recall=null"],
    "healthbench-head-plain": ["evidence.interactions=[]", "evidence.veto_recall=null"],
}
CONFIGS = dict.fromkeys(("healthbench-head", "healthbench-head-t0", "healthbench-head-plain"),
                        "configs/rm_recommended_hb.yaml")
HEAD_ONLY = tuple(CONFIGS)  # same encoder as explicit: only the head differs
HB_SOURCE = "healthbench-grader"


def train(work: Path, name: str) -> dict[str, Any]:
    """Train one variant (or reuse a finished run); returns its held-out block, checkpoint and cost."""
    run_dir = work / "runs" / name
    manifest = run_dir / "train.manifest.json"
    if not manifest.is_file():
        first = work / "runs" / "explicit" / "supervision"
        if name != "explicit" and first.is_dir() and not (run_dir / "supervision").exists():
            shutil.copytree(first, run_dir / "supervision")  # same constructions: built once
        encoder = work / "runs" / "explicit" / "checkpoints"
        if name in HEAD_ONLY and encoder.is_dir() and not (run_dir / "checkpoints").exists():
            shutil.copytree(encoder, run_dir / "checkpoints")  # the explicit encoder: the run resumes at its end
        start = time.monotonic()
        cli("rm", "train", "--config", CONFIGS.get(name, CONFIG), f"output_dir={run_dir}", *VARIANTS[name])
        (run_dir / "wall_seconds.txt").write_text(f"{time.monotonic() - start:.0f}\n")
    recorded = json.loads(manifest.read_text())
    seconds = run_dir / "wall_seconds.txt"
    return {"held_out": recorded["evidence"], "checkpoint": recorded["checkpoint"],
            "wall_seconds": int(seconds.read_text()) if seconds.is_file() else None,
            "rows": {k: recorded["counts"].get(k) for k in ("pairs", "points", "inputs")}}


def healthbench_set(work: Path) -> Path:
    """HealthBench grader labels as a labelled set (blind prompt ids dropped)."""
    from promedical.data.blind import find_blind_list
    from promedical.io import write_jsonl
    from promedical.rubrics.importers import import_file

    out = work / "healthbench"
    if (out / "verdicts.jsonl").is_file():
        return out
    hb = import_file("healthbench", SHARED / "healthbench_samples" / "m42_judge_responses.jsonl")
    blind = find_blind_list("auto")
    keep = {r.id for r in hb.rubrics if blind is None or blind.match(r.instruction, r.id) is None}
    write_jsonl(out / "rubrics.jsonl", [r for r in hb.rubrics if r.id in keep])
    write_jsonl(out / "responses.jsonl", [x for x in hb.responses if x.rubric_id in keep])
    write_jsonl(out / "verdicts.jsonl", [v for v in hb.verdicts if v.rubric_id in keep])
    return out


def lexical_predictions(data_dir: Path, path: Path) -> None:
    from promedical.judge.lexical import DEFAULT_THRESHOLD, lexical_score
    from promedical.judge.predictions import Prediction, point_key, write_predictions
    from promedical.reward.data import read_many

    rows = []
    for p in read_many([data_dir], derive=False).points:
        met = lexical_score(p.response, p.criterion) >= DEFAULT_THRESHOLD
        rows.append(Prediction(kind="point", key=point_key(p.response_id, p.criterion_id), tier=p.tier,
                               label=p.met, predicted=met, correct=float(met == p.met), judge="lexical:0.5"))
    write_predictions(path, rows)


def point_metrics(path: Path) -> dict[str, Any]:
    """Accuracy, kappa and veto recall/precision (a violation = a met prohibited veto) from a predictions file."""
    from sklearn.metrics import cohen_kappa_score

    from promedical.judge.predictions import read_predictions

    rows = [r for r in read_predictions(path) if r.kind == "point"]
    scored = [r for r in rows if r.predicted is not None]
    y = [r.label for r in scored]
    yhat = [bool(r.predicted) for r in scored]
    vetoes = [r for r in scored if r.tier == "veto"]
    true_pos = sum(r.label and bool(r.predicted) for r in vetoes)
    flagged = sum(bool(r.predicted) for r in vetoes)
    violations = sum(r.label for r in vetoes)
    return {"n": len(rows), "accuracy": sum(a == b for a, b in zip(y, yhat, strict=True)) / len(rows),
            "kappa": float(cohen_kappa_score(y, yhat)), "veto_n": len(vetoes), "veto_violations": violations,
            "veto_recall": true_pos / violations if violations else None,
            "veto_precision": true_pos / flagged if flagged else None,
            "majority_class": max(sum(y), len(y) - sum(y)) / len(y) if y else None}


def head_tables(runs: dict[str, Any]) -> list[str]:
    """Per label source, for the runs whose head was fitted on more than one: out-of-fold metrics next to
    lexical:0.5 on the same items, with the paired bootstrap CI of the accuracy and kappa differences (the
    comparison ``promedical judge compare`` makes, run by the head on each source's items)."""
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines = []
    for name, run in runs.items():
        by_source = run["held_out"].get("by_source", {})
        if len(by_source) < 2:
            continue
        lines += [f"**{name}** (out of fold, cross-fitted by question across sources)", "",
                  "| source | n (questions) | judge | accuracy | kappa | AUC | veto recall | veto precision | "
                  "accuracy difference vs lexical [95% CI] | kappa difference [95% CI] |", "|" + "---|" * 10]
        for source, block in by_source.items():
            diff = block["versus_lexical"]
            for judge, key in (("rm", "out_of_fold"), ("lexical:0.5", "lexical")):
                m = block[key]
                veto = m.get("veto") or {}
                cells = ([ci(diff["accuracy_difference"]), ci(diff["kappa_difference"])] if judge == "rm"
                         else ["", ""])
                lines.append(f"| {source} | {m['n']} ({block['questions']}) | {judge} | {m['accuracy']:.3f} | "
                             f"{m['kappa']:.3f} | {fmt(m['auc'])} | {fmt(veto.get('recall'))} | "
                             f"{fmt(veto.get('precision'))} | {cells[0]} | {cells[1]} |")
        lines.append("")
    return lines


def ci(diff: dict[str, Any]) -> str:
    return f"{diff['value']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}], p = {diff['p_value']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/promedical-rm-recommended"))
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    work: Path = args.work
    if not SHARED.is_dir():
        raise SystemExit(f"shared data not found at {SHARED}")
    with Conditions() as conditions:
        runs = {name: train(work, name) for name in args.variants}
        hb = healthbench_set(work)
        lexical_predictions(hb, work / "healthbench.lexical.jsonl")
        hb_lexical = point_metrics(work / "healthbench.lexical.jsonl")
        for name, run in runs.items():
            if HB_SOURCE in run["held_out"].get("by_source", {}):
                continue  # its head saw HealthBench labels: its HealthBench figures are out of fold (below)
            out = work / f"healthbench.{name}.jsonl"
            if not out.is_file():  # written last by rm eval: a finished evaluation is reused
                cli("rm", "eval", "--model", run["checkpoint"], "--data", str(hb), "--resamples", "1000",
                    "--predictions-out", str(out))
            run["healthbench"] = point_metrics(out)
            run["healthbench_vs_lexical"] = cli("judge", "compare", str(out),
                                                str(work / "healthbench.lexical.jsonl"))["point"]["all"]
        base = runs.get("explicit")
        comparisons: dict[str, Any] = {}
        if base is not None:
            oof = base["held_out"]["predictions"]["rm"]
            comparisons["explicit vs lexical:0.5"] = cli("judge", "compare", oof,
                                                         base["held_out"]["predictions"]["lexical"])["point"]["all"]
            for name, run in runs.items():
                if name != "explicit":
                    comparisons[f"explicit vs {name}"] = cli("judge", "compare", oof,
                                                             run["held_out"]["predictions"]["rm"])["point"]["all"]
    lines = [*head_tables(runs), "| variant | K-QA accuracy (out of fold) | kappa | AUC | HealthBench accuracy | "
             "kappa | veto recall | veto precision | training rows (pairs/points) | wall time |", "|" + "---|" * 10]
    first = next(iter(runs.values()))["held_out"]["lexical"]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines.append(f"| lexical:0.5 (no model) | {first['accuracy']:.3f} | {first['kappa']:.3f} | {first['auc']:.3f} | "
                 f"{hb_lexical['accuracy']:.3f} | {hb_lexical['kappa']:.3f} | {fmt(hb_lexical['veto_recall'])} | "
                 f"{fmt(hb_lexical['veto_precision'])} | - | - |")
    for name, run in runs.items():
        if "healthbench" not in run:
            continue  # in the per-source table above
        k, h = run["held_out"]["out_of_fold"], run["healthbench"]
        lines.append(f"| {name} | {k['accuracy']:.3f} | {k['kappa']:.3f} | {fmt(k['auc'])} | {h['accuracy']:.3f} | "
                     f"{h['kappa']:.3f} | {fmt(h['veto_recall'])} | {fmt(h['veto_precision'])} | "
                     f"{run['rows']['pairs']}/{run['rows']['points']} | {run['wall_seconds']} s |")
    lines.append("")
    for label, block in comparisons.items():
        lines.append(f"- {label}: accuracy difference {ci(block['accuracy_difference'])}; kappa difference "
                     f"{ci(block['kappa_difference'])}")
    for name, run in runs.items():
        if "healthbench_vs_lexical" not in run:
            continue
        lines.append(f"- HealthBench, {name} vs lexical:0.5: accuracy difference "
                     f"{ci(run['healthbench_vs_lexical']['accuracy_difference'])}")
    lines.append(f"\nConditions: {conditions.markdown()}")
    text = "\n".join(lines)
    (work / "summary.json").write_text(json.dumps({"runs": runs, "comparisons": comparisons,
                                                   "healthbench_lexical": hb_lexical,
                                                   "conditions": conditions.as_dict()}, indent=2, default=str))
    (work / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
