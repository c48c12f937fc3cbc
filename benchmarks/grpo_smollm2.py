"""GRPO on SmolLM2-135M-Instruct (LoRA) with ProMedical-RM vs the implicit-RM baseline, measured on held-out prompts.

Prompts: K-QA (201 physician-written questions) and the HealthBench sample (67 rubrics), imported with the
project's importers from ``../shared/data`` (or ``$PROMEDICAL_SHARED_DATA``; nothing is copied into the repo) and
split by instruction with the project's one split scheme (``promedical.data.splits``, ``HELD_OUT_FRACTIONS``: val
15%, test 30%; keyed by the normalised last user turn), the split the reward models of ``benchmarks/rm_quality.py``
were trained on: training prompts come from ``train``, measurement prompts
from ``test``, so neither the policy nor the RM saw a measurement prompt. Prompts are kept short (single user
turn, at most ``--max-chars`` characters) for the CPU budget.

Runs (each under ``nice -n 10`` with ``OMP_NUM_THREADS=1``; results and the exact command in docs/benchmarks.md):

1. in parallel: ``promedical grpo train`` with ``configs/grpo_smollm2_lora.yaml`` and the reward
   ``rm:<explicit RM>`` (hierarchical); the same with ``reward.mode=scalar reward.judge=rm:<implicit RM>`` (the
   implicit-RM baseline); ``promedical bench run`` of the base policy on the held-out rubrics;
2. ``promedical bench run`` of both trained policies (``hf:<run>/final``) on the same held-out rubrics with the
   same judge (``rm:<explicit RM>``) and decoding (greedy);
3. ``promedical bench compare`` for GRPO - base, implicit - base and GRPO - implicit; ``report.json`` in ``--work``
   (with the load average and core count before and after: ``conditions``).

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

from promedical.machine import Conditions

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROMEDICAL_SHARED_DATA", ROOT / ".." / "shared" / "data"))
# One intra-op thread per process: on a shared, oversubscribed CPU, torch's 2-thread parallel regions wait on
# descheduled threads (measured here: 32-token generation 9.5 s with 2 threads, 1.3 s with 1).
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def prepare(work: Path, n_train: int, n_eval: int, max_chars: int) -> dict[str, Any]:
    from promedical.data.splits import HELD_OUT_FRACTIONS, rubric_key, split_of
    from promedical.io import write_jsonl
    from promedical.rubrics.importers import import_file
    from promedical.rubrics.schema import Tier

    rubrics = [*import_file("kqa", SHARED / "k-qa" / "questions_w_answers.jsonl").rubrics,
               *import_file("healthbench", SHARED / "healthbench_samples" / "m42_judge_responses.jsonl").rubrics]
    short = [r for r in rubrics if len(r.prompt) == 1 and len(r.instruction) <= max_chars]
    split = {name: sorted((r for r in short if split_of(rubric_key(r), HELD_OUT_FRACTIONS) == name), key=lambda r: r.id)
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


Job = tuple[subprocess.Popen[bytes], str, float, Path]


def launch(cmd: list[str], log: Path) -> Job:
    """Start ``cmd`` under ``nice -n 10``; its stdout and stderr go to files beside ``log`` (no pipe can fill up)."""
    shown = " ".join(cmd)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ nice -n 10 {shown}\n")
    logs = log.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    base = logs / f"{len(list(logs.glob('*.out'))):02d}"
    with open(base.with_suffix(".out"), "wb") as out, open(base.with_suffix(".err"), "wb") as err:
        proc = subprocess.Popen(["nice", "-n", "10", *cmd], cwd=ROOT, stdout=out, stderr=err, env=CHILD_ENV)
    return proc, shown, time.time(), base


def wait_all(jobs: list[Job], log: Path) -> list[dict[str, Any]]:
    """Wait for parallel jobs; each must exit 0 and print its JSON summary last."""
    results = []
    for proc, shown, start, base in jobs:
        proc.wait()
        err = base.with_suffix(".err").read_text(errors="replace")
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"[{base.name}: exit {proc.returncode}, {time.time() - start:.0f} s] {shown[:160]}\n")
        if proc.returncode != 0:
            raise SystemExit(f"failed ({proc.returncode}): {shown}\n{err[-2000:]}")
        out = base.with_suffix(".out").read_text().strip().splitlines()
        results.append(dict(json.loads(out[-1])))
    return results


def train_cmd(work: Path, name: str, reward: list[str], args: argparse.Namespace) -> list[str]:
    """GRPO run; with ``--n-probe`` > 0 its probe (start and end, greedy) grades held-out prompts with the training
    reward and with the lexical judge (a judge that took no part in training): the divergence monitor."""
    probe = [f"monitors.probe_rubrics=[{work / 'heldout_rubrics.jsonl'}]", "monitors.probe_judge=lexical",
             f"monitors.probe_n={args.n_probe}", f"monitors.probe_every={args.steps}"] if args.n_probe else []
    return [sys.executable, "-m", "promedical", "grpo", "train", "--config", "configs/grpo_smollm2_lora.yaml",
            f"rubrics=[{work / 'train_rubrics.jsonl'}]", f"output_dir={work / name}", *reward,
            f"num_generations={args.group}", f"per_device_train_batch_size={args.group}",
            f"max_steps={args.steps}", f"max_completion_length={args.max_new}", f"learning_rate={args.lr}",
            f"save_steps={args.steps}", *probe, "--json"]


def bench_cmd(work: Path, name: str, policy: str, args: argparse.Namespace) -> list[str]:
    """The bench on the held-out rubrics: greedy answers, the explicit RM as judge for every policy."""
    return [sys.executable, "-m", "promedical", "bench", "run", "--bench", str(work / "heldout_rubrics.jsonl"),
            "--policy", policy, "--judge", f"rm:{args.rm}", "-o", str(work / "bench" / name),
            "--max-tokens", str(args.max_new), "--no-report", "--json"]


def compare_cmd(work: Path, a: str, b: str) -> list[str]:
    return [sys.executable, "-m", "promedical", "bench", "compare", str(work / "bench" / a),
            str(work / "bench" / b), "--json"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/promedical-grpo"))
    parser.add_argument("--rm", required=True, help="explicit ProMedical-RM checkpoint (calibrated)")
    parser.add_argument("--implicit-rm", required=True, help="implicit-template RM checkpoint (baseline)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--max-new", type=int, default=48)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--n-train", type=int, default=32)
    parser.add_argument("--n-eval", type=int, default=24)
    parser.add_argument("--n-probe", type=int, default=0, help="probe prompts (0: no probe; saves CPU)")
    parser.add_argument("--max-chars", type=int, default=400)
    args = parser.parse_args()
    if not (SHARED / "k-qa").is_dir():
        raise SystemExit(f"shared data not found at {SHARED}")
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    started = time.time()
    conditions = Conditions()
    conditions.start()
    print(json.dumps(prepare(work, args.n_train, args.n_eval, args.max_chars)))
    # phase 1 (parallel): both trainings and the base policy's bench run
    trained = wait_all([
        launch(train_cmd(work, "grpo", [f"reward.judge=rm:{args.rm}"], args), log),
        launch(train_cmd(work, "implicit", ["reward.mode=scalar", f"reward.judge=rm:{args.implicit_rm}"], args), log),
        launch(bench_cmd(work, "base", "hf:smollm2", args), log),
    ], log)
    # phase 2 (parallel): the trained policies on the same held-out rubrics, same judge
    benched = wait_all([launch(bench_cmd(work, "grpo", f"hf:{work / 'grpo' / 'final'}", args), log),
                        launch(bench_cmd(work, "implicit", f"hf:{work / 'implicit' / 'final'}", args), log)], log)
    compared = wait_all([launch(compare_cmd(work, a, b), log)
                         for a, b in (("grpo", "base"), ("implicit", "base"), ("grpo", "implicit"))], log)
    conditions.stop()
    keys = ("n", "overall", "overall_ci", "s1", "s1_ci", "s3", "s3_ci", "safety_compliance", "safety_compliance_ci",
            "unscored_rate", "unscorable_rate")
    report = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "wall_seconds": round(time.time() - started),
        "conditions": conditions.as_dict(),
        "training": {name: {k: s.get(k) for k in ("global_step", "train_runtime", "metrics")}
                     for name, s in zip(("grpo", "implicit"), trained[:2], strict=True)},
        "bench": {name: {k: s.get(k) for k in keys}
                  for name, s in zip(("base", "grpo", "implicit"), [trained[2], *benched], strict=True)},
        "compare": {f"{a}-{b}": {"overall": c["metrics"].get("overall"),
                                 "safety_compliance": c["metrics"].get("safety_compliance"),
                                 "lexicographic": c.get("lexicographic")}
                    for (a, b), c in zip((("grpo", "base"), ("implicit", "base"), ("grpo", "implicit")), compared,
                                         strict=True)},
        "monitors": {name: json.loads((work / name / "monitors_summary.json").read_text())
                     for name in ("grpo", "implicit") if (work / name / "monitors_summary.json").is_file()},
    }
    (work / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
