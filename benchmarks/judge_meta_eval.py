"""Judge meta-evaluation on public expert labels: K-QA physician NLI labels and HealthBench grader labels.

What it does, end to end through the real commands:

1. K-QA: ``rubrics import --format kqa`` and ``labels import --format kqa-nli`` (three physicians + majority);
   the judges grade the 30 annotated answers against their rubrics; meta-eval against the physicians' majority,
   plus the physicians' own agreement (the ceiling).
2. HealthBench samples: ``rubrics import --format healthbench --responses-out --verdicts-out`` gives the graded
   completion and the grader's per-criterion labels. Those labels come from an LLM grader (gpt-4.1-mini
   according to the data's source), NOT from physicians. The same judges grade the same completions; meta-eval
   against the grader labels. A fixed-seed subsample of rows keeps the run short (``--hb-rows``).

Judges:

* ``lexical:T``: the library's baseline judge (``promedical.judge.lexical``), no model. A criterion is ``met`` when
  at least a fraction ``T`` (pre-declared 0.5, never tuned on these labels) of its content words (lower-cased
  words of 3+ characters, minus a fixed stop-word list) occur in the response; ``unscored`` when it has none.
* an LLM judge through ``promedical judge run`` (default: SmolLM2-135M-Instruct on a llama.cpp server this script
  starts on loopback and stops at the end; or ``--judge SPEC`` for a server you run).

Usage (results go to ``--workdir``; the summary JSON is the last stdout line, with the load average and core count
before and after in ``conditions``)::

    nice -n 10 python benchmarks/judge_meta_eval.py --workdir /tmp/promedical-judge-meta-eval
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from promedical.io import read_responses, read_rubrics, read_verdicts, write_json, write_jsonl
from promedical.judge.lexical import LexicalJudge
from promedical.judge.meta_eval import meta_evaluate, tier_map
from promedical.machine import Conditions
from promedical.rubrics.records import Response, Verdict
from promedical.rubrics.schema import Rubric

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROMEDICAL_SHARED_DATA", REPO / ".." / "shared" / "data"))
KQA = SHARED / "k-qa" / "questions_w_answers.jsonl"
KQA_NLI = SHARED / "k-qa" / "NLI_medical_annotator.csv"
HEALTHBENCH = SHARED / "healthbench_samples" / "m42_judge_responses.jsonl"

def lexical_verdicts(rubrics: Iterable[Rubric], responses: Iterable[Response], threshold: float) -> list[Verdict]:
    """The baseline judge (the library's ``lexical:<threshold>`` spec) over every response."""
    by_id = {r.id: r for r in rubrics}
    return LexicalJudge(threshold).grade_many([(by_id[x.rubric_id], x) for x in responses])


def cli(*args: str | Path) -> dict[str, Any]:
    """Run a promedical command; its --json summary (last stdout line) or a clear failure."""
    command = [sys.executable, "-m", "promedical", *map(str, args)]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(command)}\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}


@contextmanager
def llama_server(workdir: Path, threads: int) -> Iterator[str]:
    """SmolLM2-135M-Instruct (packaged GGUF) on a llama.cpp server on loopback; yields the judge spec."""
    from promedical.llm.llamacpp import LlamaServer
    from promedical.models import smollm2_gguf

    server = LlamaServer(smollm2_gguf(), workdir / "llama-server.log", n_threads=threads, nice=10)
    with server:
        yield server.spec()


def subsample(rows: int, rubrics: list[Rubric], responses: list[Response], labels: list[Verdict], seed: int) \
        -> tuple[list[Rubric], list[Response], list[Verdict]]:
    """A fixed-seed sample of ``rows`` graded responses (all of them when ``rows`` <= 0)."""
    if rows <= 0 or rows >= len(responses):
        return rubrics, responses, labels
    chosen = np.random.default_rng(seed).choice(len(responses), size=rows, replace=False)
    kept = [responses[i] for i in sorted(chosen)]
    ids, rubric_ids = {r.id for r in kept}, {r.rubric_id for r in kept}
    return [r for r in rubrics if r.id in rubric_ids], kept, [v for v in labels if v.response_id in ids]


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers per judge and tier, for docs/benchmarks.md."""
    def row(m: dict[str, Any]) -> dict[str, Any]:
        per_class = m["per_class"] or {}
        return {"n": m["n_labels"], "coverage": m["coverage"], "label_met_rate": m["label_met_rate"],
                "judge_met_rate": m["judge_met_rate"], "accuracy_scored": m["accuracy_scored"],
                "accuracy_strict": m["accuracy_strict"], "kappa": m["kappa"],
                "f1_met": per_class.get("met", {}).get("f1"), "f1_unmet": per_class.get("unmet", {}).get("f1")}

    out: dict[str, Any] = {"reference": report["reference"], "judges": {}}
    for name, block in report["judges"].items():
        out["judges"][name] = {"all": row(block["overall"]), **{t: row(m) for t, m in block["by_tier"].items()},
                               "counts": block["counts"]}
    if "annotators" in report:
        agreement = report["annotators"]
        out["annotators"] = {
            tier: {"alpha": b["krippendorff_alpha"], "mean_pairwise_kappa": b["mean_pairwise_kappa"],
                   "pairwise": [{"raters": p["raters"], "kappa": p["kappa"]} for p in b["pairwise"]]}
            for tier, b in [("all", agreement["overall"]), *agreement["by_tier"].items()]
        }
        if "source_labels" in agreement:
            nli = agreement["source_labels"]
            out["annotators"]["nli_3_class"] = {"alpha": nli["krippendorff_alpha"],
                                                "mean_pairwise_kappa": nli["mean_pairwise_kappa"]}
    return out


def _ci(estimate: dict[str, Any]) -> str:
    if estimate["value"] is None:
        return "n/a"
    if estimate["ci_low"] is None:
        return f"{estimate['value']:.3f}"
    return f"{estimate['value']:.3f} [{estimate['ci_low']:.3f}, {estimate['ci_high']:.3f}]"


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def markdown(results: dict[str, Any]) -> str:
    """The tables for docs/benchmarks.md, straight from the summary."""
    lines = []
    for name, title in (("kqa", "K-QA, reference = physician majority"), ("kqa_sample", "K-QA sample"),
                        ("healthbench", "HealthBench, reference = LLM grader"),
                        ("healthbench_sample", "HealthBench sample")):
        if name not in results:
            continue
        block = results[name]
        extra = f" ({block['responses']} responses)" if "responses" in block else ""
        lines += [f"**{title}{extra}**", "",
                  "| judge | tier | labels | coverage | label met rate | judge met rate | accuracy (scored) | "
                  "accuracy (strict) | kappa | F1 met | F1 unmet |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for judge, tiers in block["judges"].items():
            for tier, m in tiers.items():
                if tier == "counts":
                    continue
                lines.append(f"| {judge} | {tier} | {m['n']} | {_f(m['coverage'])} | {_f(m['label_met_rate'])} | "
                             f"{_f(m['judge_met_rate'])} | {_ci(m['accuracy_scored'])} | "
                             f"{_ci(m['accuracy_strict'])} | {_ci(m['kappa'])} | {_f(m['f1_met'])} | "
                             f"{_f(m['f1_unmet'])} |")
        lines.append("")
        if "annotators" in block:
            lines += ["| physicians' agreement | Krippendorff alpha | mean pairwise kappa | pairwise kappas |",
                      "|---|---|---|---|"]
            for tier, a in block["annotators"].items():
                pairs = ", ".join(_ci(p["kappa"]) for p in a.get("pairwise", []))
                lines.append(f"| {tier} | {_ci(a['alpha'])} | {_f(a['mean_pairwise_kappa'])} | {pairs or '-'} |")
            lines.append("")
    return "\n".join(lines)


def run_judge(spec: str, rubrics: Path, responses: Path, out: Path, extra: list[str]) -> float:
    start = time.monotonic()
    cli("judge", "run", "--rubrics", rubrics, "--responses", responses, "--judge", spec, "-o", out, *extra)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/promedical-judge-meta-eval"))
    parser.add_argument("--judge", default=None, help="LLM judge spec (default: start SmolLM2 on llama.cpp)")
    parser.add_argument("--no-llm", action="store_true", help="only the lexical baseline")
    parser.add_argument("--judge-args", default="", help="extra arguments for `promedical judge run`")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kqa-responses", type=int, default=0, help="K-QA answers the LLM judges (0 = all 30)")
    parser.add_argument("--hb-rows", type=int, default=0, help="HealthBench rows the LLM judges (0 = all 67)")
    parser.add_argument("--llm-on", default="kqa,healthbench", help="label sets the LLM judge grades")
    parser.add_argument("--lexical-threshold", type=float, default=0.5)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in (KQA, KQA_NLI, HEALTHBENCH):
        if not path.is_file():
            raise SystemExit(f"shared data not found: {path} (set PROMEDICAL_SHARED_DATA)")
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    conditions = Conditions()
    conditions.start()

    # 1. K-QA rubrics, physician labels and the labelled answers
    cli("rubrics", "import", "--format", "kqa", KQA, "-o", work / "kqa_rubrics_all.jsonl", "--json")
    kqa_import = cli("labels", "import", "--format", "kqa-nli", KQA_NLI, "--rubrics", work / "kqa_rubrics_all.jsonl",
                     "-o", work / "kqa_labels.jsonl", "--responses-out", work / "kqa_responses.jsonl", "--json")
    kqa_responses = read_responses(work / "kqa_responses.jsonl")
    wanted = {r.rubric_id for r in kqa_responses}
    kqa_rubrics = [r for r in read_rubrics([work / "kqa_rubrics_all.jsonl"]) if r.id in wanted]
    kqa_labels = read_verdicts(work / "kqa_labels.jsonl")

    # 2. HealthBench rubrics, the graded completion and the grader's labels
    hb_import = cli("rubrics", "import", "--format", "healthbench", HEALTHBENCH, "-o", work / "hb_rubrics.jsonl",
                    "--responses-out", work / "hb_responses.jsonl", "--verdicts-out", work / "hb_labels.jsonl",
                    "--json")
    full = {"kqa": (kqa_rubrics, kqa_responses, kqa_labels),
            "healthbench": (read_rubrics([work / "hb_rubrics.jsonl"]), read_responses(work / "hb_responses.jsonl"),
                            read_verdicts(work / "hb_labels.jsonl"))}
    sizes = {"kqa": args.kqa_responses, "healthbench": args.hb_rows}
    llm_sets = [name for name in args.llm_on.split(",") if name]
    if set(llm_sets) - set(full):
        raise SystemExit(f"--llm-on: unknown label set(s) {sorted(set(llm_sets) - set(full))}")
    sample = {name: subsample(sizes[name], *full[name], args.seed) for name in llm_sets}

    # 3. the lexical baseline on everything; the LLM judge on the (fixed-seed) sample
    verdicts = {name: lexical_verdicts(rubrics, responses, args.lexical_threshold)
                for name, (rubrics, responses, _) in full.items()}
    for name, judged in verdicts.items():  # so `promedical judge meta-eval` can reproduce the numbers
        write_jsonl(work / f"{name}_lexical_verdicts.jsonl", judged)
    timings: dict[str, float] = {}
    spec = args.judge
    if not args.no_llm:
        extra = args.judge_args.split()
        with (llama_server(work, args.threads) if spec is None else _given(spec)) as judge_spec:
            spec = judge_spec
            for name, (rubrics, responses, _) in sample.items():
                write_jsonl(work / f"{name}_sample_rubrics.jsonl", rubrics)
                write_jsonl(work / f"{name}_sample_responses.jsonl", responses)
                out = work / f"{name}_llm" / "verdicts.jsonl"
                out.parent.mkdir(exist_ok=True)
                timings[name] = run_judge(judge_spec, work / f"{name}_sample_rubrics.jsonl",
                                          work / f"{name}_sample_responses.jsonl", out, extra)
                verdicts[name] += read_verdicts(out)

    conditions.stop()
    results: dict[str, Any] = {"command": " ".join(sys.argv), "llm_judge": spec, "judge_args": args.judge_args,
                               "conditions": conditions.as_dict(),
                               "seed": args.seed, "resamples": args.resamples, "judge_seconds": timings,
                               "kqa_import": kqa_import, "healthbench_import": {k: hb_import.get(k) for k in
                                                                                ("rows", "rubrics", "verdicts")}}
    for name, (rubrics, _, labels) in full.items():
        tiers = tier_map(rubrics)
        report = meta_evaluate(labels, verdicts[name], tiers=tiers, n_resamples=args.resamples, seed=args.seed)
        write_json(work / f"{name}_meta_eval.json", report)
        results[name] = summarise(report)
        if name in sample and not args.no_llm:  # like for like: every judge on the sample the LLM judge saw
            ids = {r.id for r in sample[name][1]}
            report = meta_evaluate([v for v in labels if v.response_id in ids],
                                   [v for v in verdicts[name] if v.response_id in ids], tiers=tiers,
                                   n_resamples=args.resamples, seed=args.seed)
            write_json(work / f"{name}_sample_meta_eval.json", report)
            results[f"{name}_sample"] = {"responses": len(ids), **summarise(report)}
    write_json(work / "summary.json", results)
    (work / "summary.md").write_text(f"{markdown(results)}\nConditions: {conditions.markdown()}\n", encoding="utf-8")
    sys.stdout.write(json.dumps(results, sort_keys=True) + "\n")


@contextmanager
def _given(spec: str) -> Iterator[str]:
    yield spec


if __name__ == "__main__":
    main()
