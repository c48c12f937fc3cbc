"""llama.cpp prefill rate: one-token micro-batches (``--n_ubatch 1``) vs the launcher's shipped defaults, by threads.

One run, one llama-cpp-python install (one server binary), the packaged SmolLM2-135M-Instruct Q4_1 GGUF. Every
configuration is a server started by the project's launcher (``promedical.llm.llamacpp.LlamaServer``); "shipped"
is exactly what the launcher passes by default (the batching probe's choice), "n_ubatch 1" adds
``--n_ubatch 1``. All servers run side by side and the requests go round-robin, so a change in the machine's load
falls on every configuration alike. Each request is a ~1,900-token completion prompt with ``max_tokens`` 1 and a
fresh first line (so no server reuses a cached prefix); prefill rate = prompt tokens / request wall time. A server
that dies is reported as crashed; a configuration whose requests took ``--budget-s`` in all gets no more. The load
average and core count are recorded before and after.

    nice -n 10 python benchmarks/llama_prefill.py --repeats 5 --out /tmp/llama_prefill.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from promedical.llm.llamacpp import LlamaServer
from promedical.llm.llamacpp_probe import probe_batching
from promedical.machine import Conditions, idle_cpus, usable_cpus
from promedical.models import smollm2_gguf

SENTENCE = ("Visit {i}: the patient reported intermittent chest tightness on exertion, relieved by rest; blood "
            "pressure 138/86, pulse 78, no oedema; the plan was reviewed with her.")


@dataclass
class Config:
    name: str
    threads: int
    one_token: bool  # --n_ubatch 1
    server: LlamaServer | None = None
    rates: list[float] = field(default_factory=list)
    seconds: float = 0.0
    prompt_tokens: list[int] = field(default_factory=list)
    crashed: str | None = None


def prompt(tokens: int, nonce: str) -> str:
    """About ``tokens`` SmolLM2 tokens (about 44 per sentence), with a first line that no other request shares."""
    body = " ".join(SENTENCE.format(i=i) for i in range(max(1, tokens // 44)))
    return f"Case {nonce}. Summarise the record in one line.\n{body}\nSummary:"


def request(config: Config, text: str) -> None:
    assert config.server is not None
    start = time.perf_counter()
    try:
        reply = httpx.post(f"{config.server.base_url}/completions", timeout=900,
                           json={"model": config.server.alias, "prompt": text, "max_tokens": 1, "temperature": 0})
        reply.raise_for_status()
    except httpx.HTTPError as exc:
        proc = config.server._proc
        code = proc.poll() if proc is not None else None
        config.crashed = f"server exited with {code}" if code is not None else f"request failed: {exc}"
        return
    seconds = time.perf_counter() - start
    config.seconds += seconds
    used = int(reply.json()["usage"]["prompt_tokens"])
    config.prompt_tokens.append(used)
    config.rates.append(round(used / seconds, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1900, help="prompt length to aim at")
    parser.add_argument("--repeats", type=int, default=5, help="requests per configuration")
    parser.add_argument("--threads", type=int, nargs="*", default=sorted({1, usable_cpus()}))
    parser.add_argument("--budget-s", type=float, default=600.0, help="no further requests for a configuration "
                        "once its requests took this long in all (one-token batches on a busy machine are slow)")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args()
    gguf = smollm2_gguf()
    probe = probe_batching(gguf)
    launcher_threads = idle_cpus()  # what LlamaServer would choose now without n_threads
    configs = [Config(f"n_ubatch 1, {t} thread{'s' if t > 1 else ''}", t, True) for t in args.threads]
    configs += [Config(f"shipped defaults, {t} thread{'s' if t > 1 else ''}", t, False) for t in args.threads]
    with tempfile.TemporaryDirectory(prefix="llama-prefill-") as tmp, contextlib.ExitStack() as stack:
        for i, config in enumerate(configs):
            extra = ("--n_ubatch", "1") if config.one_token else ()
            config.server = LlamaServer(gguf, Path(tmp) / f"server{i}.log", n_threads=config.threads,
                                        extra_args=extra, startup_timeout=180)
            stack.enter_context(config.server)
            request(config, prompt(64, f"warm-up {i}"))  # first-request costs out of the measurement
            config.rates.clear()
            config.prompt_tokens.clear()
            config.seconds = 0.0
        with Conditions() as conditions:
            for rep in range(args.repeats):
                for i, config in enumerate(configs):
                    if config.crashed is None and config.seconds < args.budget_s:
                        request(config, prompt(args.tokens, f"{rep}-{i}-{time.time_ns()}"))
                    time.sleep(0.5)
        commands = {c.name: c.server.command if c.server else None for c in configs}
    rows: list[dict[str, Any]] = [
        {"configuration": c.name, "threads": c.threads, "n_ubatch_1": c.one_token, "rates": c.rates,
         "median_tok_s": statistics.median(c.rates) if c.rates else None, "request_seconds": round(c.seconds, 1),
         "prompt_tokens": c.prompt_tokens[0] if c.prompt_tokens else None, "crashed": c.crashed,
         "command": commands[c.name]} for c in configs]
    median = {(c.one_token, c.threads): r["median_tok_s"] for c, r in zip(configs, rows, strict=True)}
    ratios: dict[str, float] = {
        f"shipped / n_ubatch 1, {t} thread(s) each": round(median[False, t] / median[True, t], 2)
        for t in args.threads if median[False, t] and median[True, t]}
    old = median.get((True, 1))  # the launcher before the probe: --n_ubatch 1, llama-cpp-python's 1 thread on 2 cores
    for t in args.threads:
        if median[False, t] and old:
            key = f"shipped, {t} thread(s) / previous launcher (n_ubatch 1, 1 thread)"
            ratios[key] = round(median[False, t] / old, 2)
    result: dict[str, Any] = {
        "llama_cpp_python": metadata.version("llama_cpp_python"), "python": sys.executable, "model": gguf.name,
        "probe": {"batched_ok": probe.batched_ok, "outcome": probe.outcome, "detail": probe.detail},
        "repeats": args.repeats, "budget_s": args.budget_s, "launcher_default_threads": launcher_threads,
        "rows": rows, "ratios_of_medians": ratios, "conditions": conditions.as_dict()}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| configuration | prompt tokens | prefill tok/s, median | all requests | crashed |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['configuration']} | {r['prompt_tokens']} | {r['median_tok_s']} | "
              f"{', '.join(map(str, r['rates']))} | {r['crashed'] or 'no'} |")
    print("\n" + "; ".join(f"{k}: {v}x" for k, v in ratios.items()))
    print(f"probe: {probe.outcome} ({probe.detail}); the launcher's default thread count at the start: "
          f"{launcher_threads} of {usable_cpus()} usable cores")
    print(f"conditions: {conditions.markdown()}")


if __name__ == "__main__":
    main()
