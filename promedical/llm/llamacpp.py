"""Start llama.cpp's OpenAI-compatible server (llama-cpp-python) on loopback for a GGUF model, and stop it.

Used by the quickstart, the tests and the benchmarks; on a GPU box a user would rather point
``openai:<model>@<url>`` at a vLLM server. Prompts are evaluated in llama.cpp's default multi-token micro-batches
(faster prefill than one token at a time: docs/benchmarks.md) wherever a one-off probe (``llamacpp_probe``, cached
per build, CPU and model) shows that this build survives them; where it does not (native builds whose AMX kernels
fault on machines that advertise AMX but do not let a process use it), the server gets ``--n_ubatch 1`` and the
launcher says so once on stderr. ``n_threads`` (default: the usable cores not busy at launch,
``promedical.machine.idle_cpus``) applies to generation and to prompt evaluation alike.
``PROMEDICAL_LLAMA_SERVER_ARGS``, when set (even to an empty string), replaces the probe's choice."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from promedical.llm.llamacpp_probe import probe_batching
from promedical.machine import idle_cpus

DEFAULT_ALIAS = "smollm2"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def preferred_port(port: int) -> int:
    """``port`` when it is free (stable URLs keep judge-cache keys stable across runs), else any free port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


def available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def server_args(gguf: Path, n_threads: int | None = None) -> list[str]:
    """Micro-batch arguments: the user's ``PROMEDICAL_LLAMA_SERVER_ARGS`` if set, else what the probe allows."""
    override = os.environ.get("PROMEDICAL_LLAMA_SERVER_ARGS")
    if override is not None:
        return override.split()
    return [] if probe_batching(gguf, n_threads=n_threads).batched_ok else ["--n_ubatch", "1"]


class LlamaServer:
    """``with LlamaServer(gguf, log) as base_url:`` serves ``gguf`` at ``base_url`` until the block ends."""

    def __init__(self, gguf: Path, log: Path, alias: str = DEFAULT_ALIAS, n_ctx: int = 4096,
                 port: int | None = None, startup_timeout: float = 180.0, extra_args: tuple[str, ...] = (),
                 nice: int = 0, n_threads: int | None = None) -> None:
        self.gguf, self.log, self.alias, self.n_ctx = gguf, log, alias, n_ctx
        self.extra_args, self.nice = extra_args, nice
        # llama-cpp-python's own default is half the cores for generation (one thread on two cores); every usable
        # core is faster on a quiet machine, but on a busy one threads that wait for a descheduled sibling at each
        # step's barrier are far slower than fewer threads (docs/benchmarks.md): the cores not already busy.
        self.n_threads = n_threads or idle_cpus()
        self._batch_args: list[str] | None = None
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        if self._batch_args is None:  # probed (or read from the probe cache) once per server
            self._batch_args = server_args(self.gguf, self.n_threads)
        prefix = ["nice", "-n", str(self.nice)] if self.nice else []
        threads = ["--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads)]
        return [*prefix, sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--model_alias",
                self.alias, "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                "--verbose", "False", *threads, *self._batch_args, *self.extra_args]

    def spec(self) -> str:
        """The judge/generator spec for this server (llama-cpp-python's structured-output flavour)."""
        return f"openai:{self.alias}@{self.base_url}#structured=json_object"

    def __enter__(self) -> str:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.log, "wb")  # the child keeps its own copy of the descriptor
        self._proc = subprocess.Popen(self.command, stdout=handle, stderr=subprocess.STDOUT,
                                      env={**os.environ, "PYTHONUNBUFFERED": "1"})
        handle.close()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-1500:]
                raise RuntimeError(f"llama.cpp server exited with {self._proc.returncode}: {tail}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return self.base_url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"llama.cpp server did not answer within {self.startup_timeout:.0f} s")
            time.sleep(0.5)

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
