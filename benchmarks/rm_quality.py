"""Reward-model quality on held-out labelled data: explicit RM vs implicit RM vs lexical overlap, two backbones.

Data (read from ``../shared/data`` or ``$PROMEDICAL_SHARED_DATA``; nothing is copied into the repository):

* K-QA physician NLI labels (majority of 3 physicians; 4 LLM answers per question, so same-criterion pairs exist);
* HealthBench sample grader labels (one answer per prompt: pointwise only; its negative-point items are vetoes);
* the package's hand-labelled sample set (``promedical/samples``: several answers per prompt, the only source of
  same-criterion pairs here, since the K-QA annotation file labels one LLM answer per question).

Every source is split by instruction with the project's one split scheme (``promedical.data.splits``: a salted
hash of the normalised last user turn; ``HELD_OUT_FRACTIONS``: test 30%, val 15%, train 55%): no question is in
two splits, even when two rubrics (different ids) share it. Each variant is trained with ``promedical rm train`` on
train, calibrated on val, evaluated with ``promedical rm eval`` on test. Labelled sets, runs and reports go
under ``--work`` (default ``/tmp/promedical-rm-quality``); the Markdown table is printed at the end, with the load
average and core count before and after (also in ``reports/summary.json``). The
configs read long responses in overlapping windows (input scheme ``windows/1``); the last column counts the test
responses still read only in part.

    nice -n 10 python benchmarks/rm_quality.py --work /tmp/promedical-rm-quality
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from promedical.machine import Conditions

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROMEDICAL_SHARED_DATA", ROOT / ".." / "shared" / "data"))
VARIANTS = {  # name -> (config, overrides)
    "minilm-explicit": ("configs/rm_minilm.yaml", []),
    "minilm-implicit": ("configs/rm_minilm.yaml", ["template=implicit/1"]),
    "smollm2-explicit": ("configs/rm_smollm2.yaml", []),
    "smollm2-implicit": ("configs/rm_smollm2.yaml", ["template=implicit/1"]),
}


def build_sets(work: Path) -> dict[str, Any]:
    """Write train/val/test labelled-set directories (rubrics, responses, verdicts per split)."""
    from promedical.data.splits import HELD_OUT_FRACTIONS, rubric_key, split_of
    from promedical.io import write_jsonl
    from promedical.labels.kqa_nli import import_kqa_nli
    from promedical.rubrics.importers import import_file

    kqa = import_file("kqa", SHARED / "k-qa" / "questions_w_answers.jsonl")
    labels = import_kqa_nli(SHARED / "k-qa" / "NLI_medical_annotator.csv", kqa.rubrics)
    hb = import_file("healthbench", SHARED / "healthbench_samples" / "m42_judge_responses.jsonl")
    samples = ROOT / "promedical" / "samples"
    from promedical.io import read_responses, read_rubrics, read_verdicts

    sources = {
        "kqa": (kqa.rubrics, labels.responses, labels.verdicts),
        "healthbench": (hb.rubrics, hb.responses, hb.verdicts),
        "samples": (read_rubrics([samples / "rubrics.jsonl"]), read_responses(samples / "responses.jsonl"),
                    read_verdicts(samples / "verdicts.jsonl")),
    }
    counts: dict[str, Any] = {}
    splits: dict[str, tuple[list[Any], list[Any], list[Any]]] = {s: ([], [], []) for s in ("train", "val", "test")}
    for name, (rubrics, responses, verdicts) in sources.items():
        labelled = {v.rubric_id for v in verdicts}
        for r in rubrics:
            if r.id not in labelled:
                continue
            split = split_of(rubric_key(r), HELD_OUT_FRACTIONS)
            splits[split][0].append(r)
            counts[f"{name}/{split}/rubrics"] = counts.get(f"{name}/{split}/rubrics", 0) + 1
        where = {r.id: s for s, (rs, _, _) in splits.items() for r in rs}
        for resp in responses:
            if resp.rubric_id in where:
                splits[where[resp.rubric_id]][1].append(resp)
        for v in verdicts:
            if v.rubric_id in where:
                splits[where[v.rubric_id]][2].append(v)
    for split, (rubrics, responses, verdicts) in splits.items():
        folder = work / "data" / split
        write_jsonl(folder / "rubrics.jsonl", rubrics)
        write_jsonl(folder / "responses.jsonl", responses)
        write_jsonl(folder / "verdicts.jsonl", verdicts)
    return counts


def cli(*args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "promedical", *args, "--json"]
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def fmt(est: dict[str, Any] | None) -> str:
    if not est or est.get("value") is None:
        return "n/a"
    if est.get("ci_low") is None:
        return f"{est['value']:.3f}"
    return f"{est['value']:.3f} [{est['ci_low']:.2f}, {est['ci_high']:.2f}]"


def truncated(report: dict[str, Any]) -> str:
    """Test responses the model read only in part (tokens in no window); n/a for the lexical baseline."""
    t = report.get("truncation")
    if not t or not t.get("responses"):
        return "n/a"
    return f"{t['truncated']}/{t['responses']} ({t['input']})"


def table(reports: dict[str, dict[str, Any]]) -> str:
    tiers = ("proficiency", "bonus", "veto")
    head = ("| model | pairwise (all) | pairwise prof. | pairwise bonus | pairwise veto | pointwise (all) | "
            "pointwise prof. | pointwise bonus | pointwise veto | veto F1 | ECE | read in part |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in reports.items():
        t = r["per_tier"]
        cells = [fmt(r["pairwise_accuracy"]), *(fmt(t[k]["pairwise_accuracy"]) for k in tiers),
                 fmt(r["pointwise_accuracy"]), *(fmt(t[k]["pointwise_accuracy"]) for k in tiers),
                 fmt((r.get("veto") or {}).get("f1")), fmt((r.get("calibration") or {}).get("ece")), truncated(r)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/promedical-rm-quality"))
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"shared data not found at {SHARED}")
    work: Path = args.work
    conditions = Conditions()
    conditions.start()
    counts = build_sets(work)
    print(json.dumps(counts, sort_keys=True), file=sys.stderr)
    data = {s: str(work / "data" / s) for s in ("train", "val", "test")}
    reports: dict[str, dict[str, Any]] = {}
    report_dir = work / "reports"
    report_dir.mkdir(parents=True, exist_ok=True)
    reports["lexical-overlap"] = cli("rm", "eval", "--model", "lexical", "--data", data["test"],
                                     "--calibrate-on", data["val"], "--out", str(report_dir / "lexical.json"))
    for name in args.variants:
        config, overrides = VARIANTS[name]
        run_dir = work / "runs" / name
        trained = cli("rm", "train", "--config", config, f"train_data=[{data['train']}]",
                      f"val_data=[{data['val']}]", f"output_dir={run_dir}", *overrides)
        reports[name] = cli("rm", "eval", "--model", trained["checkpoint"], "--data", data["test"],
                            "--out", str(report_dir / f"{name}.json"))
        reports[name]["train"] = {k: trained.get(k) for k in ("train_loss", "global_step", "counts", "thresholds")}
        (report_dir / "summary.json").write_text(json.dumps({"counts": counts, "reports": reports}, indent=2))
        print(table(reports), file=sys.stderr, flush=True)
    conditions.stop()
    (report_dir / "summary.json").write_text(json.dumps({"counts": counts, "reports": reports,
                                                         "conditions": conditions.as_dict()}, indent=2))
    print(table(reports))
    print(f"\nConditions: {conditions.markdown()}")


if __name__ == "__main__":
    main()
