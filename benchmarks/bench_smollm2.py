"""The recorded bench runs of docs/benchmarks.md: SmolLM2-135M-Instruct on a held-out rubric slice (greedy and
sampled), their paired comparison, and a MedQA multiple-choice run. Everything goes through the ``promedical bench``
CLI; this script only starts a llama.cpp server for the judge, runs the commands in order, and stops the server.

    nice -n 10 python benchmarks/bench_smollm2.py --out /tmp/bench-smollm2

Re-running resumes from the caches in each run directory. Prints every command it runs; the load average and core
count before and after go to ``<out>/conditions.json`` (``promedical.machine``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from promedical.llm.llamacpp import LlamaServer, free_port
from promedical.machine import Conditions
from promedical.models import smollm2_gguf

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "promedical", *args]
    print("$", shlex.join(["promedical", *args]), flush=True)
    started = time.monotonic()
    subprocess.run(cmd, check=True, cwd=ROOT)
    print(f"  ({time.monotonic() - started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-smollm2"))
    parser.add_argument("--bench", type=Path, default=ROOT / "promedical" / "samples" / "rubrics.jsonl")
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--mcq-limit", type=int, default=60)
    parser.add_argument("--train", default="source:kqa", help="Training pool for the independence audit.")
    parser.add_argument("--policy", default="server", help="Policy spec; 'server' = SmolLM2 on the same llama.cpp "
                        "server as the judge (the GGUF of SmolLM2-135M-Instruct); e.g. hf:smollm2 for transformers.")
    parser.add_argument("--judge", default="server", help="Judge spec; 'server' = SmolLM2 on the llama.cpp server "
                        "(structured JSON); e.g. rm:<checkpoint> for a calibrated reward model.")
    parser.add_argument("--port", type=int, default=8766, help="Server port (part of the policy spec, so of the "
                        "generation cache keys: keep it fixed to resume); 0 picks a free one.")
    parser.add_argument("--skip", nargs="*", default=[], choices=["greedy", "sampled", "compare", "mcq"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    # The shared launcher: batched prompt evaluation where its probe finds that safe, one thread per usable core.
    server = LlamaServer(smollm2_gguf(), args.out / "llama_server.log", port=port, startup_timeout=120)
    print("$", shlex.join(server.command), flush=True)
    with server as url, Conditions() as conditions:
        judge = f"openai:smollm2@{url}#structured=json_object" if args.judge == "server" else args.judge
        policy = f"openai:smollm2@{url}" if args.policy == "server" else args.policy
        common = ["--bench", str(args.bench), "--policy", policy, "--judge", judge, "--limit", str(args.limit),
                  "--max-tokens", str(args.max_tokens), "--seed", "0", "--train", args.train, "--json"]
        if "greedy" not in args.skip:
            run(["bench", "run", *common, "--temperature", "0", "-o", str(args.out / "greedy")])
        if "sampled" not in args.skip:
            run(["bench", "run", *common, "--temperature", "0.7", "-o", str(args.out / "t07")])
        if "compare" not in args.skip:
            run(["bench", "compare", str(args.out / "greedy"), str(args.out / "t07"), "-o",
                 str(args.out / "compare"), "--json"])
        if "mcq" not in args.skip:
            run(["bench", "mcq", "--dataset", "medqa", "--policy", f"openai:smollm2@{url}", "--limit",
                 str(args.mcq_limit), "--seed", "0", "--max-tokens", "16", "-o", str(args.out / "medqa"), "--json"])
    (args.out / "conditions.json").write_text(json.dumps(conditions.as_dict(), indent=2) + "\n")
    print(f"conditions: {conditions.markdown()}", flush=True)


if __name__ == "__main__":
    main()
