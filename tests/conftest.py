"""Shared fixtures: a real llama.cpp OpenAI-compatible server on loopback serving the packaged SmolLM2 GGUF.

``llama_server`` is session-scoped (one server for the whole run) and yields its base URL
(``http://127.0.0.1:<port>/v1``); tests using it are skipped cleanly when ``llama_cpp`` or the GGUF is missing.
``llama_spec`` is the matching judge/generator spec (llama-cpp-python's structured-output flavour).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SERVER_MODEL = "smollm2"
# Extra server arguments. The default works around llama.cpp builds whose batched CPU kernels crash on some CPUs
# (prompt evaluation one token per micro-batch: slower prefill, identical outputs); override with an empty string
# on a healthy build.
SERVER_EXTRA_ARGS = os.environ.get("PROMEDICAL_LLAMA_SERVER_ARGS", "--n_ubatch 1").split()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'promedical[server]')")
    from promedical.models import ModelNotAvailable, smollm2_gguf

    try:
        gguf = smollm2_gguf()
    except ModelNotAvailable as exc:
        pytest.skip(str(exc))
    port = free_port()
    log = Path(tmp_path_factory.mktemp("llama-server")) / "server.log"
    handle = open(log, "wb")  # noqa: SIM115 - closed in the finally block
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", SERVER_MODEL,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--verbose", "False", *SERVER_EXTRA_ARGS],
        stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama.cpp server did not come up within 120 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        handle.close()


@pytest.fixture(scope="session")
def llama_spec(llama_server: str) -> str:
    return f"openai:{SERVER_MODEL}@{llama_server}#structured=json_object"
