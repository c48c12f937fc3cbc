"""Judge cost: per-criterion grading (one call per criterion, as HealthBench grades) vs grouped mode vs a cached re-run.

Same server, same responses, same 10-criterion rubrics (HealthBench samples from ``../shared/data``, each rubric cut
to its first K criteria, weights renormalised). Measures model calls, prompt/completion tokens, wall time and the
verdict status counts for each configuration. Without ``--base-url`` it starts a llama.cpp server with the packaged
SmolLM2 GGUF on loopback (a weak judge: this measures cost, not quality).

    nice -n 10 python benchmarks/judge_cost.py --responses 4 --criteria 10 --out /tmp/judge_cost.json

The load average and core count before and after the rows go into the JSON (``conditions``) and under the table.
``--configs`` picks the rows (default ``single,grouped,cached``; ``terse`` is grouped mode with the
``pointwise-grouped-terse/2`` template, a boolean per criterion), ``--spec`` any judge spec instead of the server,
e.g. ``--spec "hf:smollm2#batch=4" --configs grouped,terse`` for schema-constrained local decoding.

Throughput on one server: ``--server-cache`` starts llama.cpp with its prompt cache (``--cache True``: the KV state
of earlier prompts is kept in RAM, so a prompt that shares a prefix with any of them, not only with the last one,
skips that prefix), ``--concurrency`` is the judge's number of requests in flight; every row reports criteria
judged per second (verdicts / wall seconds) and the wall-time ratios against per-criterion grading:

    nice -n 10 python benchmarks/judge_cost.py --responses 3 --criteria 10 --configs single,grouped,terse \
        --server-cache --concurrency 4 --out /tmp/judge_throughput.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from promedical.judge.pointwise import PointwiseConfig, PointwiseJudge
from promedical.judge.summary import summarise_verdicts
from promedical.llm.llamacpp import LlamaServer
from promedical.llm.spec import load_generator
from promedical.machine import Conditions
from promedical.models import smollm2_gguf
from promedical.rubrics.importers.healthbench import import_healthbench
from promedical.rubrics.records import Response
from promedical.rubrics.schema import Rubric, Tier, normalise_weights

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROMEDICAL_SHARED_DATA", ROOT / ".." / "shared" / "data"))
SAMPLES = SHARED / "healthbench_samples" / "m42_judge_responses.jsonl"


def cut_rubric(rubric: Rubric, k: int) -> Rubric | None:
    """The rubric's first ``k`` criteria with proficiency weights renormalised (None if no proficiency is left)."""
    kept = list(rubric.criteria[:k])
    proficiency = [c for c in kept if c.tier is Tier.PROFICIENCY]
    if len(kept) < k or not proficiency:
        return None
    weights = iter(normalise_weights([c.weight or 0.0 for c in proficiency]))
    criteria = [c.model_copy(update={"weight": next(weights)}) if c.tier is Tier.PROFICIENCY else c for c in kept]
    return Rubric.model_validate({**rubric.model_dump(), "criteria": [c.model_dump() for c in criteria]})


def load_items(n: int, k: int) -> list[tuple[Rubric, Response]]:
    """The ``n`` shortest HealthBench sample (rubric, response) pairs with at least ``k`` criteria."""
    if not SAMPLES.exists():
        sys.exit(f"HealthBench samples not found at {SAMPLES} (set PROMEDICAL_SHARED_DATA)")
    result = import_healthbench(SAMPLES)
    rubrics = {r.id: r for r in result.rubrics}
    pairs = []
    for response in result.responses:
        cut = cut_rubric(rubrics[response.rubric_id], k)
        if cut is not None:
            pairs.append((cut, response))
    pairs.sort(key=lambda p: len(p[1].text) + sum(len(m.content) for m in p[0].prompt))
    return pairs[:n]


def start_server(log: Path, prompt_cache: bool = False) -> LlamaServer:
    """The same llama.cpp server for every configuration (8k context: the per-criterion prompts are long)."""
    extra = ("--cache", "True") if prompt_cache else ()
    return LlamaServer(smollm2_gguf(), log, n_ctx=8192, startup_timeout=120, extra_args=extra)


def measure(name: str, spec: str, items: list[tuple[Rubric, Response]], config: PointwiseConfig, cache: Path,
            concurrency: int) -> dict[str, Any]:
    generator = load_generator(spec, timeout=600, retries=2, concurrency=concurrency, cache_path=cache)
    judge = PointwiseJudge(generator, config)
    start = time.perf_counter()
    verdicts = judge.grade_many(items)
    wall = time.perf_counter() - start
    judge.close()
    summary = summarise_verdicts(verdicts, judge.usage)
    row = {"configuration": name, "mode": config.mode, "template": config.template.version,
           "max_tokens": config.max_tokens, "concurrency": concurrency, "wall_seconds": round(wall, 1),
           "criteria_per_second": round(len(verdicts) / wall, 3) if wall > 0 else None, **summary}
    print(json.dumps(row), file=sys.stderr)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="An OpenAI-compatible server (default: start llama.cpp with SmolLM2).")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--structured", default="json_object", help="Structured-output flavour of the server.")
    parser.add_argument("--responses", type=int, default=4)
    parser.add_argument("--criteria", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--server-cache", action="store_true",
                        help="Start llama.cpp with its RAM prompt cache (--cache True).")
    parser.add_argument("--out", type=Path, help="Write the result rows as JSON here.")
    parser.add_argument("--spec", help="Any judge spec (e.g. hf:smollm2#batch=4) instead of a server.")
    parser.add_argument("--configs", default="single,grouped,cached",
                        help="Comma list of rows: single, grouped, cached (grouped re-run from its cache), terse.")
    args = parser.parse_args()
    wanted = [c.strip() for c in args.configs.split(",") if c.strip()]
    if set(wanted) - {"single", "grouped", "cached", "terse"}:
        sys.exit(f"--configs: unknown row(s) {sorted(set(wanted) - {'single', 'grouped', 'cached', 'terse'})}")

    items = load_items(args.responses, args.criteria)
    rows = []
    conditions = Conditions()
    server_command: list[str] | None = None
    with tempfile.TemporaryDirectory(prefix="judge-cost-") as tmp, contextlib.ExitStack() as stack:
        if args.spec:
            spec = args.spec
        elif args.base_url:
            spec = f"openai:{args.model}@{args.base_url}#structured={args.structured}"
        else:
            server = start_server(Path(tmp) / "llama-server.log", prompt_cache=args.server_cache)
            base = stack.enter_context(server)
            server_command = server.command[server.command.index("llama_cpp.server") + 1:]
            spec = f"openai:{args.model}@{base}#structured={args.structured}"
        configs = {
            "single": ("per-criterion (HealthBench-style)", PointwiseConfig(mode="single", max_tokens=160), "s"),
            "grouped": ("grouped", PointwiseConfig(mode="grouped", max_tokens=120 * args.criteria), "g"),
            "cached": ("grouped, cached re-run", PointwiseConfig(mode="grouped", max_tokens=120 * args.criteria), "g"),
            "terse": ("grouped, terse (a boolean per criterion)",
                      PointwiseConfig(mode="grouped", max_tokens=16 + 12 * args.criteria,
                                      grouped_template="pointwise-grouped-terse/2"), "t"),
        }
        conditions.start()
        for key in wanted:
            name, config, cache = configs[key]
            rows.append(measure(name, spec, items, config, Path(tmp) / f"{cache}.sqlite", args.concurrency))
        conditions.stop()
    result = {"spec": spec, "server_args": server_command, "responses": len(items),
              "criteria_per_rubric": args.criteria,
              "rubric_ids": [r.id for r, _ in items], "rows": rows, "conditions": conditions.as_dict()}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| configuration | calls | cache hits | prompt tokens | completion tokens | wall s | criteria/s | met "
          "| unmet | unscored |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['configuration']} | {r['calls']} | {r['cache_hits']} | {r['prompt_tokens']} | "
              f"{r['completion_tokens']} | {r['wall_seconds']} | {r['criteria_per_second']} | {r['met']} | "
              f"{r['unmet']} | {r['unscored']} |")
    by_key = dict(zip(wanted, rows, strict=True))
    if "single" in by_key:
        for key in ("grouped", "terse"):
            if key in by_key and by_key[key]["wall_seconds"]:
                print(f"\nwall time, per-criterion / {key}: "
                      f"{by_key['single']['wall_seconds'] / by_key[key]['wall_seconds']:.2f}x")
    if "single" in by_key and "grouped" in by_key and by_key["grouped"]["prompt_tokens"]:
        s, g = by_key["single"], by_key["grouped"]
        print(f"\ncalls per response: per-criterion {s['calls'] / len(items):.1f}, "
              f"grouped {g['calls'] / len(items):.1f}; prompt tokens ratio "
              f"{s['prompt_tokens'] / g['prompt_tokens']:.2f}x")
    if "grouped" in by_key and "terse" in by_key and by_key["terse"]["completion_tokens"]:
        g, t = by_key["grouped"], by_key["terse"]
        print(f"\nterse vs grouped: completion tokens {g['completion_tokens'] / t['completion_tokens']:.2f}x fewer, "
              f"wall {g['wall_seconds'] / max(t['wall_seconds'], 0.1):.2f}x shorter; unscored "
              f"{g['unscored']} vs {t['unscored']} of {g['verdicts']}")
    print(f"\nconditions: {conditions.markdown()}")

if __name__ == "__main__":
    main()
