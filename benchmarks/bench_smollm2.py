"""The recorded bench runs of docs/benchmarks.md: SmolLM2-135M-Instruct on a held-out rubric slice (greedy and
sampled), their paired comparison, and a MedQA multiple-choice run. Everything goes through the ``promedical bench``
CLI; this script only starts a llama.cpp server for the judge, runs the commands in order, and stops the server.

    nice -n 10 python benchmarks/bench_smollm2.py --out /tmp/bench-smollm2

Re-running resumes from the caches in each run directory. Prints every command it runs.
"""

from __future__ import annotations

import argparse
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from promedical.models import smollm2_gguf

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    # --n_ubatch 1: the llama.cpp CPU build on these machines crashes (general protection fault in libggml-cpu)
    # on multi-token micro-batches; one-token micro-batches work, at the cost of slower prompt processing.
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--model_alias", "smollm2",
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_ubatch", "1", "--verbose", "False"]
    print("$", shlex.join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    for _ in range(120):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"llama.cpp server exited with {proc.returncode}; see {log}")
        time.sleep(1)
    proc.terminate()
    raise SystemExit("llama.cpp server did not come up in 120 s")


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
    server = start_server(port, args.out / "llama_server.log")
    url = f"http://127.0.0.1:{port}/v1"
    judge = f"openai:smollm2@{url}#structured=json_object" if args.judge == "server" else args.judge
    policy = f"openai:smollm2@{url}" if args.policy == "server" else args.policy
    common = ["--bench", str(args.bench), "--policy", policy, "--judge", judge, "--limit", str(args.limit),
              "--max-tokens", str(args.max_tokens), "--seed", "0", "--train", args.train, "--json"]
    try:
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
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
