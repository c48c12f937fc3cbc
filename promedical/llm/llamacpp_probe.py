"""Can this llama.cpp build evaluate multi-token micro-batches on this CPU? Ask a throw-away process, once.

Some llama.cpp CPU builds die on their first multi-token micro-batch: compiled with ``-march=native`` on a
processor that advertises Intel AMX, ``libggml-cpu`` runs AMX tile kernels (``ldtilecfg`` in
``ggml_backend_amx_mul_mat``), and where the environment (a VM, a container) does not let a process use the tile
state the instruction faults and the process is killed. Evaluating one token per micro-batch (``--n_ubatch 1``)
never reaches those kernels, at several times the prefill cost. A build cannot be checked by reading its flags
alone (the fault depends on the machine it runs on), so the launcher asks: a child process loads the model and
evaluates a 256-token prompt in one micro-batch (llama.cpp's defaults, as the server will). If the child is killed
while evaluating, batching is unsafe here and the server gets ``--n_ubatch 1``; if it finishes, the server keeps
llama.cpp's batched defaults. It costs one model load and one short prefill, once per cache key.

The answer is cached in the user cache dir (``$PROMEDICAL_CACHE``, default ``~/.cache/promedical``) under a key made
of the llama-cpp-python version, the interpreter, the size and time stamp of every library it ships, the CPU's
flags and the model file: a rebuilt or upgraded llama.cpp, another machine or another model is probed again.
Outcomes that say nothing about batching (the model does not load, the probe times out) are not cached, and the
server falls back to ``--n_ubatch 1`` for that launch.

    python -m promedical.llm.llamacpp_probe MODEL.gguf [--tokens 256] [--n_threads 2]   # the child itself
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from promedical.models import cache_dir

PROBE_VERSION = 1
PROBE_TOKENS = 256  # one multi-token micro-batch, far above the row blocks that tile kernels work in
PROBE_TIMEOUT_S = 300.0
LOADED, DONE = "PROBE-LOADED", "PROBE-DONE"  # the child's progress marks on stdout
SAFE_BUILD_HINT = ('a build without native AMX kernels batches safely: CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON '
                   '-DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON '
                   '-DGGML_AVX512_BF16=ON" pip install --force-reinstall --no-deps --no-binary llama-cpp-python '
                   '"llama-cpp-python[server]"')
_reported: set[str] = set()  # cache keys whose fallback was already announced by this process


@dataclass(frozen=True)
class ProbeResult:
    batched_ok: bool  # False: serve with --n_ubatch 1
    outcome: str  # "ok", "crashed" (cached either way), "inconclusive" (not cached)
    detail: str
    cached: bool = False


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


def _build_identity() -> dict[str, object]:
    """What identifies the llama.cpp binary that ``sys.executable -m llama_cpp.server`` would load."""
    spec = importlib.util.find_spec("llama_cpp")  # not imported: loading the libraries is the child's job
    package = Path(spec.origin).parent if spec is not None and spec.origin else None
    try:
        version = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        version = None
    libs = []
    if package is not None:
        for path in sorted(package.rglob("*")):
            if path.suffix in {".so", ".dylib", ".dll"} or ".so." in path.name:
                stat = path.stat()
                libs.append([str(path), stat.st_size, stat.st_mtime_ns])
    return {"llama_cpp_python": version, "python": sys.executable, "package": str(package), "libraries": libs}


def cache_key(gguf: Path, cpu_flags: str | None = None) -> str:
    stat = gguf.stat()
    identity = {"probe": PROBE_VERSION, "build": _build_identity(), "cpu_flags": cpu_flags or _cpu_flags(),
                "model": [str(gguf.resolve()), stat.st_size, stat.st_mtime_ns]}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def _cache_file(key: str) -> Path:
    return cache_dir() / "llamacpp-probe" / f"{key}.json"


def probe_command(gguf: Path, tokens: int = PROBE_TOKENS, n_threads: int | None = None) -> list[str]:
    threads = ["--n_threads", str(n_threads)] if n_threads else []
    return [sys.executable, "-m", "promedical.llm.llamacpp_probe", str(gguf), "--tokens", str(tokens), *threads]


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def run_probe(command: list[str], timeout: float = PROBE_TIMEOUT_S) -> ProbeResult:
    """Run a probe child and read its fate. ``command`` is a parameter so a test can inject a crashing child."""
    try:
        proc = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return ProbeResult(False, "inconclusive", f"the probe did not finish within {timeout:.0f} s")
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace").strip().splitlines()
    last = err[-1] if err else ""
    if proc.returncode == 0 and DONE in out:
        return ProbeResult(True, "ok", "a multi-token micro-batch evaluated")
    if LOADED in out and DONE not in out and (proc.returncode < 0 or "PROBE-ERROR" not in out):
        # Killed while evaluating (a signal on POSIX, an exception code elsewhere): the batched kernels crash.
        how = _signal_name(proc.returncode) if proc.returncode < 0 else f"exit code {proc.returncode}"
        return ProbeResult(False, "crashed", f"the process died ({how}) evaluating a multi-token micro-batch")
    return ProbeResult(False, "inconclusive", f"the probe failed (exit code {proc.returncode}): {last[-300:]}")


def probe_batching(gguf: Path, n_threads: int | None = None, command: list[str] | None = None,
                   timeout: float = PROBE_TIMEOUT_S) -> ProbeResult:
    """Cached: is batched prompt evaluation safe for this build, CPU and model? Announces a fallback once."""
    key = cache_key(gguf)
    path = _cache_file(key)
    result: ProbeResult | None = None
    try:
        stored = json.loads(path.read_text())
        result = ProbeResult(bool(stored["batched_ok"]), str(stored["outcome"]), str(stored["detail"]), cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if result is None:
        result = run_probe(command or probe_command(gguf, n_threads=n_threads), timeout)
        if result.outcome in {"ok", "crashed"}:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({k: v for k, v in asdict(result).items() if k != "cached"}) + "\n")
            tmp.replace(path)
    if not result.batched_ok and key not in _reported:
        _reported.add(key)
        print(f"llama.cpp: {result.detail}; serving with --n_ubatch 1 (prompts evaluated one token at a time, "
              f"slower prefill)." + (f" Probe cached in {path}; {SAFE_BUILD_HINT}" if result.outcome == "crashed"
                                     else ""), file=sys.stderr, flush=True)
    return result


def _child(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate one multi-token batch with llama.cpp (a probe child).")
    parser.add_argument("model", type=Path)
    parser.add_argument("--tokens", type=int, default=PROBE_TOKENS)
    parser.add_argument("--n_threads", type=int, default=None)
    args = parser.parse_args(argv)
    from llama_cpp import Llama

    llm = Llama(model_path=str(args.model), n_ctx=args.tokens + 64, n_batch=512, n_ubatch=512,
                n_threads=args.n_threads, n_threads_batch=args.n_threads, verbose=False)
    text = b" The patient describes the symptoms, the doctor listens and answers each question in turn."
    ids: list[int] = []
    while len(ids) < args.tokens:
        ids += llm.tokenize(text, add_bos=False)
    print(LOADED, flush=True)
    try:
        llm.eval(ids[:args.tokens])
    except Exception as exc:  # a Python-level failure is not the crash this probe looks for
        print(f"PROBE-ERROR {type(exc).__name__}: {exc}", flush=True)
        return 3
    print(DONE, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child())
