"""GRPO on SmolLM2-135M-Instruct (LoRA) with ProMedical-RM vs the implicit-RM baseline, measured on held-out prompts.

Prompts: K-QA (201 physician-written questions) and the HealthBench sample (67 rubrics), imported with the
project's importers from ``../shared/data`` (or ``$PROMEDICAL_SHARED_DATA``; nothing is copied into the repo) and
split by rubric id with ``promedical.reward.data.split_of`` (seed 0, val 15%, test 30%), the split the reward
models of ``benchmarks/rm_quality.py`` were trained on: training prompts come from ``train``, measurement prompts
from ``test``, so neither the policy nor the RM saw a measurement prompt. Prompts are kept short (single user
turn, at most ``--max-chars`` characters) for the CPU budget.

Runs (each with ``nice -n 10``):

1. ``promedical grpo train`` with ``configs/grpo_smollm2_lora.yaml``, reward = ``rm:<explicit RM>`` (hierarchical);
2. the same with ``reward.mode=scalar reward.judge=rm:<implicit RM>`` (implicit-RM baseline);
3. measurement, the same judge for every policy (``rm:<explicit RM>``): the monitors' probe on the held-out prompts
   at step 0 (the base policy) and at the last step (greedy answers, training judge and the lexical judge), and,
   when available, ``promedical bench run`` on the same held-out rubrics for base, GRPO and baseline.

    nice -n 10 python benchmarks/grpo_smollm2.py --work /tmp/pgrpo --rm RM_DIR --implicit-rm RM_DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROMEDICAL_SHARED_DATA", ROOT / ".." / "shared" / "data"))


def prepare(work: Path, n_train: int, n_eval: int, max_chars: int) -> dict[str, Any]:
    from promedical.io import write_jsonl
    from promedical.reward.data import split_of
    from promedical.rubrics.importers import import_file
    from promedical.rubrics.schema import Tier

    rubrics = [*import_file("kqa", SHARED / "k-qa" / "questions_w_answers.jsonl").rubrics,
               *import_file("healthbench", SHARED / "healthbench_samples" / "m42_judge_responses.jsonl").rubrics]
    short = [r for r in rubrics if len(r.prompt) == 1 and len(r.instruction) <= max_chars]
    split = {name: sorted((r for r in short if split_of(r.id, 0, 0.15, 0.3) == name), key=lambda r: r.id)
             for name in ("train", "test")}
    # interleave sources so both K-QA (no vetoes) and HealthBench (vetoes) are represented
    def pick(items: list[Any], n: int) -> list[Any]:
        by_source: dict[str, list[Any]] = {}
        for r in items:
            by_source.setdefault(r.meta.source or "-", []).append(r)
        out: list[Any] = []
        while len(out) < n and any(by_source.values()):
            for queue in by_source.values():
                if queue and len(out) < n:
                    out.append(queue.pop(0))
        return out

    train, heldout = pick(split["train"], n_train), pick(split["test"], n_eval)
    write_jsonl(work / "train_rubrics.jsonl", train)
    write_jsonl(work / "heldout_rubrics.jsonl", heldout)
    count = {"train": len(train), "heldout": len(heldout),
             "train_sources": sorted({r.meta.source for r in train}),
             "heldout_vetoes": sum(len(r.by_tier(Tier.VETO)) for r in heldout)}
    (work / "prepare.json").write_text(json.dumps(count, indent=2))
    return count


def run(cmd: list[str], log: Path) -> dict[str, Any]:
    shown = " ".join(cmd)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ {shown}\n")
    start = time.time()
    proc = subprocess.run(["nice", "-n", "10", *cmd], cwd=ROOT, capture_output=True, text=True, check=False)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(proc.stderr[-4000:] + f"\n[exit {proc.returncode}, {time.time() - start:.0f} s]\n")
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {shown}\n{proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def train(work: Path, name: str, reward: list[str], args: argparse.Namespace) -> dict[str, Any]:
    out = work / name
    cmd = [sys.executable, "-m", "promedical", "grpo", "train", "--config", "configs/grpo_smollm2_lora.yaml",
           f"rubrics=[{work / 'train_rubrics.jsonl'}]", f"output_dir={out}", *reward,
           f"num_generations={args.group}", f"per_device_train_batch_size={args.group}",
           f"max_steps={args.steps}", f"max_completion_length={args.max_new}", f"learning_rate={args.lr}",
           f"save_steps={args.steps}", f"monitors.probe_rubrics=[{work / 'heldout_rubrics.jsonl'}]",
           f"monitors.probe_judge=rm:{args.rm}", f"monitors.probe_n={args.n_eval}",
           f"monitors.probe_every={args.steps}", "--json"]
    return run(cmd, work / "log.txt")


def probe_table(work: Path, names: list[str]) -> list[dict[str, Any]]:
    """Before/after rows from each run's probe series (step 0 = base policy; last step = trained policy)."""
    from promedical.stats import bootstrap_mean, paired_comparison

    rows = []
    for name in names:
        series = [json.loads(line) for line in (work / name / "monitors.jsonl").read_text().splitlines()]
        first, last = series[0], series[-1]
        # the held-out judge is the explicit RM for both runs: same judge before and after
        before = [v for v in first["probe/heldout_rewards"] if v is not None]
        after = [v for v in last["probe/heldout_rewards"] if v is not None]
        b, a = bootstrap_mean(before, seed=0), bootstrap_mean(after, seed=0)
        paired = [(x, y) for x, y in zip(first["probe/heldout_rewards"], last["probe/heldout_rewards"], strict=True)
                  if x is not None and y is not None]
        cmp = paired_comparison([y for _, y in paired], [x for x, _ in paired], seed=0)
        rows.append({"run": name, "steps": last["step"], "before": b, "after": a, "delta": cmp,
                     "train_judge_before": first.get("probe/train"), "train_judge_after": last.get("probe/train")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/promedical-grpo"))
    parser.add_argument("--rm", required=True, help="explicit ProMedical-RM checkpoint (calibrated)")
    parser.add_argument("--implicit-rm", required=True, help="implicit-template RM checkpoint (baseline)")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--max-new", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--n-train", type=int, default=32)
    parser.add_argument("--n-eval", type=int, default=24)
    parser.add_argument("--max-chars", type=int, default=400)
    parser.add_argument("--only", choices=["prepare", "grpo", "implicit", "report"], default=None)
    args = parser.parse_args()
    if not (SHARED / "k-qa").is_dir():
        raise SystemExit(f"shared data not found at {SHARED}")
    args.work.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "prepare"):
        print(json.dumps(prepare(args.work, args.n_train, args.n_eval, args.max_chars)))
    if args.only in (None, "grpo"):
        print(json.dumps(train(args.work, "grpo", [f"reward.judge=rm:{args.rm}"], args))[:2000])
    if args.only in (None, "implicit"):
        print(json.dumps(train(args.work, "implicit", ["reward.mode=scalar", f"reward.judge=rm:{args.implicit_rm}"],
                               args))[:2000])
    if args.only in (None, "report"):
        rows = probe_table(args.work, [n for n in ("grpo", "implicit") if (args.work / n / "monitors.jsonl").exists()])
        (args.work / "report.json").write_text(json.dumps(rows, indent=2, default=str))
        print(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
