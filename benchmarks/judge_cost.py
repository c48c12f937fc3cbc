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

``--single-template`` and ``--grouped-template`` pick the templates of the per-criterion and grouped rows (default:
the judge's defaults, ``pointwise-single/2`` and ``pointwise-grouped/3``); with the bounded pair
(``pointwise-single/3``, ``pointwise-grouped/4``: the same bounded explanation asked in both modes, no example
value to copy) the answer budget is sized per criterion (``promedical.judge.prompts.answer_tokens``). Every row
reports how long its explanations are (mean words) and how many distinct explanations it gave, so a row that is
fast because it copies one phrase for every criterion shows it. ``--n-threads`` sets the server's threads (default:
the launcher's, the idle cores). ``--timings`` splits each row's wall time into llama.cpp's own prefill and decode
time (summed from its per-request timings in the server log, ``--verbose True``) and the rest (HTTP, chat template,
tokenizing, grammar set-up and sampling, the judge's own work); prefill counts only the prompt tokens evaluated
after the server's prefix reuse, so it shows what the prompt tokens billed really cost.

    nice -n 10 python benchmarks/judge_cost.py --responses 3 --criteria 10 --configs single,grouped,terse \
        --single-template pointwise-single/3 --grouped-template pointwise-grouped/4 --out /tmp/judge_bounded.json

A row of ``--configs`` may name its own template (``kind@template``), so that rows on different templates share one
run and one server; the ratios are printed for every per-criterion row against every grouped and terse row:

    nice -n 10 python benchmarks/judge_cost.py --responses 3 --criteria 10 --timings --configs \
        single,grouped,single@pointwise-single/3,grouped@pointwise-grouped/4,terse \
        --out /tmp/judge_templates.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from promedical.judge.pointwise import PointwiseConfig, PointwiseJudge
from promedical.judge.prompts import (
    DEFAULT_GROUPED,
    DEFAULT_SINGLE,
    GROUPED_TEMPLATES,
    SINGLE_TEMPLATES,
    TEMPLATES,
    answer_tokens,
)
from promedical.judge.summary import summarise_verdicts
from promedical.llm.llamacpp import LlamaServer
from promedical.llm.spec import load_generator
from promedical.machine import Conditions
from promedical.models import smollm2_gguf
from promedical.rubrics.importers.healthbench import import_healthbench
from promedical.rubrics.records import Response, Verdict
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


def start_server(log: Path, prompt_cache: bool = False, n_threads: int | None = None,
                 timings: bool = False) -> LlamaServer:
    """The same llama.cpp server for every configuration (8k context: the per-criterion prompts are long).
    ``timings``: the server logs llama.cpp's own timings of every request (``--verbose True``, after the launcher's
    ``--verbose False``: the last one counts)."""
    extra = (("--cache", "True") if prompt_cache else ()) + (("--verbose", "True") if timings else ())
    return LlamaServer(smollm2_gguf(), log, n_ctx=8192, startup_timeout=120, extra_args=extra, n_threads=n_threads)


_PREFILL = re.compile(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
_DECODE = re.compile(r"^\S*:\s+eval time =\s*([\d.]+) ms /\s*(\d+) runs", re.MULTILINE)


def server_timings(log_text: str) -> dict[str, Any]:
    """llama.cpp's per-request timings summed over a stretch of a verbose server log: seconds and tokens spent
    evaluating prompts (prefill, after prefix reuse) and generating (decode), and the number of requests."""
    prefill = [(float(ms), int(n)) for ms, n in _PREFILL.findall(log_text)]
    decode = [(float(ms), int(n)) for ms, n in _DECODE.findall(log_text)]
    return {"server_requests": len(prefill),
            "prefill_seconds": round(sum(ms for ms, _ in prefill) / 1000, 2),
            "prefill_tokens_evaluated": sum(n for _, n in prefill),
            "decode_seconds": round(sum(ms for ms, _ in decode) / 1000, 2),
            "decode_tokens": sum(n for _, n in decode)}


def explanation_stats(verdicts: list[Verdict]) -> dict[str, Any]:
    """Mean explanation length in words and the number of distinct explanations (a copied phrase counts once)."""
    texts = [" ".join(v.explanation.split()) for v in verdicts if v.explanation]
    return {"explained": len(texts),
            "explanation_words_mean": round(sum(len(t.split()) for t in texts) / len(texts), 1) if texts else 0.0,
            "distinct_explanations": len(set(texts))}


ROW_KINDS = ("single", "grouped", "cached", "terse")
TERSE = "pointwise-grouped-terse/2"


def parse_rows(text: str, single_template: str, grouped_template: str) -> list[tuple[str, str]]:
    """``--configs`` as (kind, template) rows: each entry is a kind, optionally ``@template`` (e.g.
    ``single@pointwise-single/2``) to put rows on different templates in one run on one server."""
    rows = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        kind, _, template = entry.partition("@")
        if kind not in ROW_KINDS:
            raise ValueError(f"unknown row {kind!r} (one of {', '.join(ROW_KINDS)})")
        template = template or {"single": single_template, "terse": TERSE}.get(kind, grouped_template)
        allowed = SINGLE_TEMPLATES if kind == "single" else [t for t in GROUPED_TEMPLATES
                                                                 if ("terse" in t) == (kind == "terse")]
        if template not in allowed:
            raise ValueError(f"{entry!r}: template {template!r} is not one of {', '.join(allowed)}")
        rows.append((kind, template))
    if not rows:
        raise ValueError("no rows")
    return rows


def max_tokens_for(template: str, per_call_criteria: int, unbounded: int) -> int:
    """The answer budget of one call: sized per criterion for the bounded templates, else ``unbounded``."""
    try:
        return answer_tokens(TEMPLATES[template], per_call_criteria)
    except ValueError:
        return unbounded


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
           "criteria_per_second": round(len(verdicts) / wall, 3) if wall > 0 else None, **summary,
           **explanation_stats(verdicts)}
    print(json.dumps(row), file=sys.stderr)
    row["answers"] = [[v.response_id, v.criterion_id, v.status.value, v.explanation] for v in verdicts]  # JSON only
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
                        help="Comma list of rows: single, grouped, cached (grouped re-run from its cache), terse; "
                             "each may name its template, e.g. single@pointwise-single/3.")
    parser.add_argument("--single-template", default=DEFAULT_SINGLE.version, choices=SINGLE_TEMPLATES,
                        help="Template of the per-criterion row.")
    parser.add_argument("--grouped-template", default=DEFAULT_GROUPED.version,
                        choices=[t for t in GROUPED_TEMPLATES if "terse" not in t],
                        help="Template of the grouped and cached rows.")
    parser.add_argument("--n-threads", type=int, help="Server threads (default: the launcher's, the idle cores).")
    parser.add_argument("--timings", action="store_true",
                        help="Split each row's wall time into the server's prefill, decode and the rest (from "
                             "llama.cpp's per-request timings in the server log).")
    args = parser.parse_args()
    try:
        wanted = parse_rows(args.configs, args.single_template, args.grouped_template)
    except ValueError as exc:
        print(f"--configs: {exc}", file=sys.stderr)
        sys.exit(2)

    items = load_items(args.responses, args.criteria)
    rows = []
    conditions = Conditions()
    server_command: list[str] | None = None
    server_log: Path | None = None
    with tempfile.TemporaryDirectory(prefix="judge-cost-") as tmp, contextlib.ExitStack() as stack:
        if args.spec:
            spec = args.spec
        elif args.base_url:
            spec = f"openai:{args.model}@{args.base_url}#structured={args.structured}"
        else:
            server_log = Path(tmp) / "llama-server.log"
            server = start_server(server_log, prompt_cache=args.server_cache, n_threads=args.n_threads,
                                  timings=args.timings)
            base = stack.enter_context(server)
            server_command = server.command[server.command.index("llama_cpp.server") + 1:]
            spec = f"openai:{args.model}@{base}#structured={args.structured}"
        conditions.start()
        for kind, template in wanted:
            if kind == "single":
                name = f"per-criterion (`{template}`)"
                config = PointwiseConfig(mode="single", single_template=template,
                                         max_tokens=max_tokens_for(template, 1, 160))
            else:
                name = {"grouped": f"grouped (`{template}`)", "cached": f"grouped (`{template}`), cached re-run",
                        "terse": f"grouped, terse (`{template}`, a boolean per criterion)"}[kind]
                unbounded = 16 + 12 * args.criteria if kind == "terse" else 120 * args.criteria
                config = PointwiseConfig(mode="grouped", grouped_template=template,
                                         max_tokens=max_tokens_for(template, args.criteria, unbounded))
            # the cached row re-reads the cache its grouped row wrote (same template)
            cache = f"{'single' if kind == 'single' else 'grouped'}-{template.replace('/', '-')}"
            offset = server_log.stat().st_size if server_log is not None and args.timings else None
            row = measure(name, spec, items, config, Path(tmp) / f"{cache}.sqlite", args.concurrency)
            row["kind"] = kind
            if server_log is not None and offset is not None:
                with open(server_log, "rb") as handle:
                    handle.seek(offset)
                    split = server_timings(handle.read().decode(errors="replace"))
                split["other_seconds"] = round(row["wall_seconds"] - split["prefill_seconds"]
                                               - split["decode_seconds"], 1)
                row.update(split)
                print(json.dumps({"configuration": name, **split}), file=sys.stderr)
            rows.append(row)
        conditions.stop()
    result = {"spec": spec, "server_args": server_command, "responses": len(items),
              "criteria_per_rubric": args.criteria,
              "rubric_ids": [r.id for r, _ in items], "rows": rows, "conditions": conditions.as_dict()}
    if args.out:
        tmp_out = args.out.with_name(f".{args.out.name}.{os.getpid()}.tmp")
        tmp_out.write_text(json.dumps(result, indent=2) + "\n")
        tmp_out.replace(args.out)
    print("| configuration | calls | cache hits | prompt tokens | completion tokens | wall s | criteria/s | met "
          "| unmet | unscored | explanation words (mean) | distinct explanations |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['configuration']} | {r['calls']} | {r['cache_hits']} | {r['prompt_tokens']} | "
              f"{r['completion_tokens']} | {r['wall_seconds']} | {r['criteria_per_second']} | {r['met']} | "
              f"{r['unmet']} | {r['unscored']} | {r['explanation_words_mean']} | {r['distinct_explanations']} |")
    if args.timings and server_log is not None:
        print("\n| configuration | server requests | prefill s | prompt tokens evaluated | decode s | tokens decoded "
              "| other s |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['configuration']} | {r['server_requests']} | {r['prefill_seconds']} | "
                  f"{r['prefill_tokens_evaluated']} | {r['decode_seconds']} | {r['decode_tokens']} | "
                  f"{r['other_seconds']} |")
    singles = [r for r in rows if r["kind"] == "single"]
    others = [r for r in rows if r["kind"] in ("grouped", "terse") and r["wall_seconds"]]
    if singles and others:
        print()
    for s in singles:
        for g in others:
            prompt = f"{s['prompt_tokens'] / g['prompt_tokens']:.2f}x" if g["prompt_tokens"] else "n/a"
            wall = s["wall_seconds"] / g["wall_seconds"]
            print(f"{s['configuration']} / {g['configuration']}: wall time {wall:.2f}x, "
                  f"prompt tokens {prompt}, calls per response {s['calls'] / len(items):.1f} vs "
                  f"{g['calls'] / len(items):.1f}")
    print(f"\nconditions: {conditions.markdown()}")

if __name__ == "__main__":
    main()
