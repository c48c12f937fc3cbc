"""GRPO on SmolLM2-135M-Instruct (LoRA): the hierarchical ProMedical-RM reward vs the implicit-RM reward vs DPO on
lexicographic pairs vs the starting policy, measured on held-out prompts by a judge none of them trained against.

Prompts: K-QA (201 physician-written questions) and the HealthBench sample (67 rubrics), imported with the
project's importers from ``../shared/data`` (or ``$PROMEDICAL_SHARED_DATA``; nothing is copied into the repo) and
split by instruction with the project's one split scheme (``promedical.data.splits``, ``HELD_OUT_FRACTIONS``: val
15%, test 30%; keyed by the normalised last user turn): training prompts come from ``train``, measurement prompts
from ``test``, so no policy saw a measurement prompt. Blind-test questions and prompt ids
(``../shared/data/blind_test.json``) are dropped from both sides. Prompts are kept short (single user turn, at
most ``--max-chars`` characters) for the CPU budget.

Arms (each process under ``nice -n 10`` with ``OMP_NUM_THREADS=1``; results and the exact command in
docs/benchmarks.md):

* ``grpo``: ``promedical grpo train`` with ``configs/grpo_smollm2_lora.yaml`` and the hierarchical reward
  ``rm:<explicit RM>`` (``clip(S1 + alpha*S2, 0, 1 + beta) - lambda*S3``), with ``reward.credit=probability``
  (``--credit``): S1 and S2 are the RM's expected values, vetoes hard verdicts (with 0/1 credit, SmolLM2's short
  answers meet no K-QA criterion, so most groups carry no signal);
* ``implicit``: the same with ``reward.mode=scalar reward.judge=rm:<implicit RM>`` (one score per response);
* ``dpo``: ``--dpo-samples`` sampled answers (temperature 1) of the starting policy per training prompt (4 x 72 =
  288 completions, against 40 x 8 = 320 for a GRPO arm), graded by the explicit RM (``promedical bench run``),
  ordered lexicographically (``promedical data prefs``: fewer vetoes, then S1, then S2; at most
  ``--dpo-pairs-per-prompt`` pairs per prompt) and trained with ``promedical dpo train`` at the GRPO arms'
  learning rate for ``--dpo-epochs`` passes;
* ``base``: the starting policy.

Each policy answers the held-out prompts greedily (``promedical bench run``), graded by the training RM and by every
``--also-judge`` (default ``lexical:0.5``: criterion-word overlap, which no arm optimised); ``promedical bench
compare`` gives paired bootstrap CIs and sign-flip permutation p-values per judge, the veto rate and the length
monitors. With ``--eval-samples K`` each policy also answers every held-out prompt K times at temperature 1 (seeds
1..K), and the pairs are compared on the per-prompt mean reward (``sampled`` in the report): a secondary measure of
the sampling policy GRPO trains, with less noise per prompt than one greedy answer. Every stage is skipped when its
output is complete, so an interrupted run resumes where it stopped (GRPO and DPO from their last checkpoint).
``report.json`` in ``--work`` holds everything, with the load average and core count before and after
(``conditions``).

    nice -n 10 python benchmarks/grpo_smollm2.py --work /tmp/pgrpo --rm RM_DIR --implicit-rm RM_DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from promedical.machine import Conditions

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROMEDICAL_SHARED_DATA", ROOT / ".." / "shared" / "data"))
# One intra-op thread per process: on a shared, oversubscribed CPU, torch's 2-thread parallel regions wait on
# descheduled threads (measured here: 32-token generation 9.5 s with 2 threads, 1.3 s with 1).
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def prepare(work: Path, n_train: int, n_eval: int, max_chars: int) -> dict[str, Any]:
    from promedical.data.blind import BLIND_FILE, BlindList
    from promedical.data.splits import HELD_OUT_FRACTIONS, rubric_key, split_of
    from promedical.io import write_jsonl
    from promedical.rubrics.importers import import_file
    from promedical.rubrics.schema import Tier

    rubrics = [*import_file("kqa", SHARED / "k-qa" / "questions_w_answers.jsonl").rubrics,
               *import_file("healthbench", SHARED / "healthbench_samples" / "m42_judge_responses.jsonl").rubrics]
    blind = BlindList.read(SHARED / BLIND_FILE) if (SHARED / BLIND_FILE).is_file() else None
    dropped = [r for r in rubrics if blind and blind.match(r.instruction, r.id)]
    short = [r for r in rubrics if len(r.prompt) == 1 and len(r.instruction) <= max_chars and r not in dropped]
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
    def sources(items: list[Any]) -> dict[str, int]:
        return {s: sum(r.meta.source == s for r in items) for s in sorted({r.meta.source or "-" for r in items})}

    count = {"train": len(train), "heldout": len(heldout), "blind_dropped": len(dropped),
             "train_sources": sources(train), "heldout_sources": sources(heldout),
             "heldout_vetoes": sum(len(r.by_tier(Tier.VETO)) for r in heldout),
             "shared_keys": len({rubric_key(r) for r in train} & {rubric_key(r) for r in heldout})}
    if count["shared_keys"]:
        raise SystemExit(f"split leak: {count['shared_keys']} instruction(s) on both sides")
    (work / "prepare.json").write_text(json.dumps(count, indent=2))
    return count


def run(cmd: list[str], log: Path, name: str, done: Path | None = None) -> dict[str, Any]:
    """Run ``cmd`` under ``nice -n 10`` (stdout and stderr to files under ``logs/``, no pipe can fill up); it must
    exit 0 and print its JSON summary last. Skipped when ``done`` exists and the earlier run's summary is on file
    (resume): returns that summary."""
    shown = " ".join(cmd)
    logs = log.parent / "logs"
    if done is not None and done.exists() and (logs / f"{name}.out").is_file():
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"[{name}: skipped, {done} exists] {shown[:160]}\n")
        lines = (logs / f"{name}.out").read_text().strip().splitlines()
        return dict(json.loads(lines[-1])) if lines else {}
    logs.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ nice -n 10 {shown}\n")
    start = time.time()
    with open(logs / f"{name}.out", "wb") as out, open(logs / f"{name}.err", "wb") as err:
        code = subprocess.call(["nice", "-n", "10", *cmd], cwd=ROOT, stdout=out, stderr=err, env=CHILD_ENV)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"[{name}: exit {code}, {time.time() - start:.0f} s] {shown[:160]}\n")
    if code != 0:
        tail = (logs / f"{name}.err").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{name} failed ({code}): {shown}\n{tail}")
    lines = (logs / f"{name}.out").read_text().strip().splitlines()
    return dict(json.loads(lines[-1])) if lines else {}


def train_cmd(work: Path, name: str, reward: list[str], args: argparse.Namespace) -> list[str]:
    """GRPO run; with ``--n-probe`` > 0 its probe (start and end, greedy) grades held-out prompts with the training
    reward and with the lexical judge (a judge that took no part in training): the divergence monitor."""
    probe = [f"monitors.probe_rubrics=[{work / 'heldout_rubrics.jsonl'}]", "monitors.probe_judge=lexical",
             f"monitors.probe_n={args.n_probe}", f"monitors.probe_every={args.steps}"] if args.n_probe else []
    return [sys.executable, "-m", "promedical", "grpo", "train", "--config", "configs/grpo_smollm2_lora.yaml",
            f"rubrics=[{work / 'train_rubrics.jsonl'}]", f"output_dir={work / name}", *reward,
            f"num_generations={args.group}", f"per_device_train_batch_size={args.group}",
            f"max_steps={args.steps}", f"max_completion_length={args.max_new}", f"learning_rate={args.lr}",
            f"save_steps={args.save_steps}", *probe, "--json"]


def bench_cmd(work: Path, name: str, policy: str, args: argparse.Namespace, *, rubrics: Path | None = None,
              temperature: float = 0.0, seed: int = 0, also: bool = True) -> list[str]:
    """The bench: the policy's answers (greedy unless ``temperature``), graded by the explicit RM and, with
    ``also``, by every ``--also-judge``."""
    extra = [x for spec in args.also_judge for x in ("--also-judge", spec)] if also else []
    return [sys.executable, "-m", "promedical", "bench", "run", "--bench",
            str(rubrics or work / "heldout_rubrics.jsonl"), "--policy", policy, "--judge", f"rm:{args.rm}",
            *extra, "-o", str(work / "bench" / name), "--max-tokens", str(args.max_new),
            "--temperature", str(temperature), "--seed", str(seed), "--no-report", "--json"]


def compare_cmd(work: Path, a: str, b: str) -> list[str]:
    return [sys.executable, "-m", "promedical", "bench", "compare", str(work / "bench" / a),
            str(work / "bench" / b), "--json"]


def merge_jsonl(sources: list[Path], target: Path, key: tuple[str, ...] = ("id",)) -> int:
    """Concatenate JSONL records, one per ``key`` (two samples can be the same text), atomically."""
    seen: set[tuple[str, ...]] = set()
    lines = []
    for path in sources:
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line.strip() else None
            if record is not None and (k := tuple(str(record.get(f)) for f in key)) not in seen:
                seen.add(k)
                lines.append(line)
    tmp = target.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(target)
    return len(lines)


def grpo_arm(work: Path, name: str, reward: list[str], args: argparse.Namespace, log: Path) -> dict[str, Any]:
    trained = run(train_cmd(work, name, reward, args), log, f"train-{name}", done=work / name / "final")
    benched = run(bench_cmd(work, name, f"hf:{work / name / 'final'}", args), log, f"bench-{name}",
                  done=work / "bench" / name / "summary.json")
    return {"training": trained, "bench": benched}


def dpo_arm(work: Path, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    """Sampled answers of the starting policy on the training prompts, graded by the explicit RM; lexicographic
    pairs; DPO at the GRPO arms' learning rate; then the bench."""
    samples = [f"sample{k}" for k in range(args.dpo_samples)]
    for k, name in enumerate(samples):
        run(bench_cmd(work, name, "hf:smollm2", args, rubrics=work / "train_rubrics.jsonl", temperature=1.0,
                      seed=k, also=False), log, f"dpo-{name}", done=work / "bench" / name / "summary.json")
    pool = work / "dpo_pool"
    pool.mkdir(exist_ok=True)
    n_responses = merge_jsonl([work / "bench" / s / "responses.jsonl" for s in samples], pool / "responses.jsonl")
    merge_jsonl([work / "bench" / s / "verdicts.jsonl" for s in samples], pool / "verdicts.jsonl",
                key=("response_id", "criterion_id", "judge"))
    prefs = run([sys.executable, "-m", "promedical", "data", "prefs", "-r", str(work / "train_rubrics.jsonl"),
                 "-x", str(pool / "responses.jsonl"), "-v", str(pool / "verdicts.jsonl"), "-o", str(pool / "prefs"),
                 "--max-pairs-per-rubric", str(args.dpo_pairs_per_prompt), "--json"], log, "dpo-prefs")
    trained = run([sys.executable, "-m", "promedical", "dpo", "train", "--config", "configs/dpo_smollm2_lora.yaml",
                   f"pairs=[{pool / 'prefs' / 'pairs.jsonl'}]", f"output_dir={work / 'dpo'}",
                   f"learning_rate={args.lr}", f"max_length={args.dpo_max_length}",
                   f"num_train_epochs={args.dpo_epochs}", "--json"],
                  log, "train-dpo", done=work / "dpo" / "final")
    benched = run(bench_cmd(work, "dpo", f"hf:{work / 'dpo' / 'final'}", args), log, "bench-dpo",
                  done=work / "bench" / "dpo" / "summary.json")
    return {"responses": n_responses, "prefs": prefs, "training": trained, "bench": benched}


def bench_keys(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "overall", "overall_ci", "s1", "s1_ci", "s3", "s3_ci", "safety_compliance", "safety_compliance_ci",
            "unscored_rate", "unscorable_rate", "monitors")
    independent = {spec: {k: block.get(k) for k in ("overall", "overall_ci", "s1", "s1_ci", "safety_compliance",
                                                     "safety_compliance_ci")}
                   for spec, block in (summary.get("independent") or {}).items()}
    return {**{k: summary.get(k) for k in keys}, "independent": independent}


def compare_keys(c: dict[str, Any]) -> dict[str, Any]:
    return {"n_pairs": c.get("n_pairs"), "training_judge": {k: c["metrics"].get(k) for k in (
                "overall", "s1", "safety_compliance")}, "lexicographic": c.get("lexicographic"),
            "independent": {spec: {"overall": block["metrics"].get("overall"), "s1": block["metrics"].get("s1"),
                                   "safety_compliance": block["metrics"].get("safety_compliance"),
                                   "divergence": block.get("divergence")}
                            for spec, block in (c.get("independent") or {}).items()},
            "monitors": c.get("monitors")}


def run_scores(run_dir: Path, spec: str | None) -> dict[str, float]:
    """Reward per rubric in one bench run: the training judge's (``spec`` None) or an ``--also-judge``'s, found
    through the run's ``summary.json`` (its ``independent`` block names the judge's folder under ``judges/``)."""
    if spec is None:
        path = run_dir / "scores.jsonl"
    else:
        block = json.loads((run_dir / "summary.json").read_text())["independent"][spec]
        path = run_dir / "judges" / Path(block["dir"]).name / "scores.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["rubric_id"]: float(r["reward"]) for r in rows}


def run_words(run_dir: Path) -> dict[str, float]:
    """Words per answer, per rubric, in one bench run."""
    rows = [json.loads(line) for line in (run_dir / "responses.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    return {r["rubric_id"]: float(len(r["text"].split())) for r in rows}


def length_adjusted(diff: np.ndarray, words: np.ndarray, n_resamples: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """The per-prompt reward difference regressed on the per-prompt length difference (words): the intercept is the
    difference at equal length, with a percentile bootstrap CI over prompts; a gain that is only longer answers
    has an intercept near zero."""
    design = np.c_[np.ones(len(diff)), words]
    fit = np.linalg.lstsq(design, diff, rcond=None)[0]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_resamples):
        pick = rng.integers(0, len(diff), len(diff))
        draws.append(np.linalg.lstsq(design[pick], diff[pick], rcond=None)[0][0])
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"at_equal_length": float(fit[0]), "ci": [float(low), float(high)], "per_word": float(fit[1])}


def sampled_compare(runs_a: list[Path], runs_b: list[Path], spec: str | None) -> dict[str, Any]:
    """Paired comparison of two policies on the mean reward of their sampled answers per rubric (one bench run per
    sample seed): averaging K samples per prompt measures the sampling policy GRPO trains, with less noise per
    prompt than one greedy answer. Only rubrics scored in every run of both sides are paired. Also: mean words per
    answer on each side and the difference at equal length (``length_adjusted``)."""
    from promedical.stats import paired_comparison

    a = [run_scores(r, spec) for r in runs_a]
    b = [run_scores(r, spec) for r in runs_b]
    keys = sorted(set.intersection(*(set(s) for s in (*a, *b))))
    if not keys:
        raise ValueError("no rubric is scored in every sampled run of both policies")
    mean_a = np.array([sum(s[k] for s in a) / len(a) for k in keys])
    mean_b = np.array([sum(s[k] for s in b) / len(b) for k in keys])
    words_a = [run_words(r) for r in runs_a]
    words_b = [run_words(r) for r in runs_b]
    length_a = np.array([np.mean([w[k] for w in words_a]) for k in keys])
    length_b = np.array([np.mean([w[k] for w in words_b]) for k in keys])
    c = paired_comparison(mean_a, mean_b)
    return {
        "n": len(keys),
        "samples": (len(a), len(b)),
        "a": float(mean_a.mean()),
        "b": float(mean_b.mean()),
        "difference": c.diff.value,
        "ci": c.diff.ci,
        "p_value": c.p_value,
        "words": [float(length_a.mean()), float(length_b.mean())],
        "length_adjusted": length_adjusted(mean_a - mean_b, length_a - length_b),
    }


ARMS = ("grpo", "implicit", "dpo")
PAIRS = (("grpo", "base"), ("implicit", "base"), ("dpo", "base"), ("grpo", "implicit"), ("grpo", "dpo"))


def policy_spec(work: Path, name: str) -> str:
    return "hf:smollm2" if name == "base" else f"hf:{work / name / 'final'}"


def sampled_arms(work: Path, results: dict[str, Any], args: argparse.Namespace, log: Path) -> dict[str, Any]:
    """``--eval-samples`` K answers per held-out prompt (temperature 1, seeds 1..K) for every policy, then each
    pair of ``PAIRS`` compared on the per-prompt mean reward under the training RM and every ``--also-judge``."""
    names = {name: [f"{name}-t1-s{k}" for k in range(1, args.eval_samples + 1)] for name in results}

    def bench_all(name: str) -> None:
        for k, run_name in enumerate(names[name], start=1):
            run(bench_cmd(work, run_name, policy_spec(work, name), args, temperature=1.0, seed=k), log,
                f"bench-{run_name}", done=work / "bench" / run_name / "summary.json")

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        list(pool.map(bench_all, names))
    dirs = {name: [work / "bench" / r for r in runs] for name, runs in names.items()}
    judges: list[str | None] = [None, *args.also_judge]
    return {f"{a}-{b}": {spec or "training RM": sampled_compare(dirs[a], dirs[b], spec) for spec in judges}
            for a, b in PAIRS if a in dirs and b in dirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/promedical-grpo"))
    parser.add_argument("--rm", required=True, help="explicit ProMedical-RM checkpoint (e.g. configs/rm_recommended)")
    parser.add_argument("--implicit-rm", required=True, help="implicit-template RM checkpoint (baseline)")
    parser.add_argument("--also-judge", action="append", default=None,
                        help="independent judge spec for the bench (repeatable; default lexical:0.5)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--save-steps", type=int, default=10)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--max-new", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--n-train", type=int, default=60)
    parser.add_argument("--n-eval", type=int, default=48)
    parser.add_argument("--n-probe", type=int, default=0, help="probe prompts (0: no probe; saves CPU)")
    parser.add_argument("--max-chars", type=int, default=400)
    parser.add_argument("--dpo-samples", type=int, default=4, help="sampled answers per training prompt for DPO")
    parser.add_argument("--dpo-pairs-per-prompt", type=int, default=2)
    parser.add_argument("--dpo-max-length", type=int, default=384)
    parser.add_argument("--dpo-epochs", type=int, default=3, help="passes over the pairs (few pairs: more than one)")
    parser.add_argument("--credit", choices=("verdict", "probability"), default="probability",
                        help="reward.credit of the hierarchical arm (docs/grpo.md)")
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset of grpo,implicit,dpo")
    parser.add_argument("--eval-samples", type=int, default=0,
                        help="also answer each held-out prompt K times at temperature 1 (seeds 1..K) per policy and "
                             "compare the per-prompt mean reward (secondary measure; 0: greedy only)")
    args = parser.parse_args()
    args.also_judge = args.also_judge or ["lexical:0.5"]
    if not (SHARED / "k-qa").is_dir():
        raise SystemExit(f"shared data not found at {SHARED}")
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    started = time.time()
    conditions = Conditions()
    conditions.start()
    print(json.dumps(prepare(work, args.n_train, args.n_eval, args.max_chars)), flush=True)
    arms = [a for a in args.arms.split(",") if a]
    jobs = {
        "grpo": lambda: grpo_arm(work, "grpo", [f"reward.judge=rm:{args.rm}", f"reward.credit={args.credit}"], args,
                                 log),
        "implicit": lambda: grpo_arm(work, "implicit", ["reward.mode=scalar", f"reward.judge=rm:{args.implicit_rm}"],
                                     args, log),
        "dpo": lambda: dpo_arm(work, args, log),
    }
    # the arms and the starting policy's bench run side by side, one intra-op thread each
    with ThreadPoolExecutor(max_workers=len(arms) + 1) as pool:
        futures = {name: pool.submit(jobs[name]) for name in arms}
        futures["base"] = pool.submit(lambda: {"bench": run(bench_cmd(work, "base", "hf:smollm2", args), log,
                                                            "bench-base", done=work / "bench" / "base" /
                                                            "summary.json")})
        results = {name: f.result() for name, f in futures.items()}
    compared = {f"{a}-{b}": compare_keys(run(compare_cmd(work, a, b), log, f"compare-{a}-{b}"))
                for a, b in PAIRS if a in results and b in results}
    sampled = sampled_arms(work, results, args, log) if args.eval_samples else {}
    conditions.stop()
    report = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "wall_seconds": round(time.time() - started),
        "conditions": conditions.as_dict(),
        "prepare": json.loads((work / "prepare.json").read_text()),
        "training": {name: results[name].get("training") for name in arms},
        "dpo_pairs": results.get("dpo", {}).get("prefs"),
        "bench": {name: bench_keys(results[name]["bench"]) for name in results},
        "compare": compared,
        "sampled": sampled,
        "monitors": {name: json.loads((work / name / "monitors_summary.json").read_text())
                     for name in ("grpo", "implicit") if (work / name / "monitors_summary.json").is_file()},
    }
    (work / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
