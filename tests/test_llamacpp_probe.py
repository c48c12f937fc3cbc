"""The llama.cpp launcher batches prompts where a probe shows the build survives it, else falls back to one token.

The probe's crash path is exercised with fault injection: the probe child is replaced by a process that prints the
probe's "model loaded" mark and then kills itself with SIGSEGV, as a build whose AMX kernels fault does (no build
that crashes can be made on a machine without AMX). Everything else is real: the real probe child on the packaged
SmolLM2 GGUF, the real cache file, a real llama.cpp server on loopback with the shipped arguments.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from promedical.llm import llamacpp, llamacpp_probe
from promedical.machine import usable_cpus

pytestmark = pytest.mark.skipif(not llamacpp.available(), reason="llama-cpp-python is not installed")


@pytest.fixture
def gguf() -> Path:
    from promedical.models import ModelNotAvailable, smollm2_gguf

    try:
        return smollm2_gguf()
    except ModelNotAvailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PROMEDICAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PROMEDICAL_LLAMA_SERVER_ARGS", raising=False)
    llamacpp_probe._reported.clear()
    yield tmp_path / "cache" / "llamacpp-probe"
    llamacpp_probe._reported.clear()


def crashing_child() -> list[str]:
    """Fault injection: a probe child that loads, then dies by a signal, like a faulting AMX kernel."""
    return [sys.executable, "-c", "import os, signal; print('PROBE-LOADED', flush=True); "
            "os.kill(os.getpid(), signal.SIGSEGV)"]


def test_crash_falls_back_to_one_token_batches_is_cached_and_said_once(
        gguf: Path, fresh_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = llamacpp_probe.probe_batching(gguf, command=crashing_child())
    assert (result.batched_ok, result.outcome, result.cached) == (False, "crashed", False)
    assert signal.Signals.SIGSEGV.name in result.detail
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "--n_ubatch 1" in said[0] and "GGML_NATIVE=OFF" in said[0]
    assert len(list(fresh_cache.glob("*.json"))) == 1
    # The launcher reads the cached verdict for the same build, CPU and model: no new probe, no second message.
    server = llamacpp.LlamaServer(gguf, tmp_path / "server.log")
    command = server.command
    assert command[command.index("--n_ubatch") + 1] == "1"
    assert capsys.readouterr().err == ""
    again = llamacpp_probe.probe_batching(gguf, command=[sys.executable, "-c", "raise SystemExit(9)"])
    assert again.cached and not again.batched_ok


def test_inconclusive_probe_falls_back_without_caching(gguf: Path, fresh_cache: Path) -> None:
    # Fault injection: the child fails before the model is loaded (says nothing about batching).
    failing = [sys.executable, "-c", "import sys; sys.exit('cannot load model')"]
    result = llamacpp_probe.probe_batching(gguf, command=failing)
    assert (result.batched_ok, result.outcome) == (False, "inconclusive")
    assert "cannot load model" in result.detail
    assert not fresh_cache.exists() or not list(fresh_cache.glob("*.json"))


def test_cache_key_follows_cpu_flags_and_model(gguf: Path, tmp_path: Path) -> None:
    assert llamacpp_probe.cache_key(gguf, "avx2 avx512f") == llamacpp_probe.cache_key(gguf, "avx2 avx512f")
    assert llamacpp_probe.cache_key(gguf, "avx2 avx512f") != llamacpp_probe.cache_key(gguf, "amx_tile avx2 avx512f")
    other = tmp_path / "copy.gguf"
    other.write_bytes(b"GGUF")
    assert llamacpp_probe.cache_key(other, "avx2") != llamacpp_probe.cache_key(gguf, "avx2")


def test_user_arguments_replace_the_probe(gguf: Path, fresh_cache: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMEDICAL_LLAMA_SERVER_ARGS", "--n_ubatch 1")
    command = llamacpp.LlamaServer(gguf, tmp_path / "a.log", n_threads=1).command
    assert command[command.index("--n_ubatch") + 1] == "1"
    assert command[command.index("--n_threads") + 1] == "1"
    monkeypatch.setenv("PROMEDICAL_LLAMA_SERVER_ARGS", "")
    assert "--n_ubatch" not in llamacpp.LlamaServer(gguf, tmp_path / "b.log").command
    assert not fresh_cache.exists()  # no probe ran


@pytest.mark.server
@pytest.mark.slow
def test_real_probe_and_shipped_server_serve_a_long_prompt(gguf: Path, tmp_path: Path) -> None:
    result = llamacpp_probe.probe_batching(gguf)
    assert result.outcome in {"ok", "crashed"}, result.detail  # a real verdict about this build on this CPU
    assert llamacpp_probe.probe_batching(gguf).cached
    server = llamacpp.LlamaServer(gguf, tmp_path / "server.log", startup_timeout=120)
    command = server.command
    assert 1 <= int(command[command.index("--n_threads") + 1]) <= usable_cpus()  # the idle cores at launch
    assert ("--n_ubatch" in command) is not result.batched_ok  # batched defaults exactly where the probe passed
    prompt = "Summarise the case. " + " ".join(f"Visit {i}: blood pressure was normal." for i in range(160))
    with server as base:
        reply = httpx.post(f"{base}/completions", json={"model": server.alias, "prompt": prompt, "max_tokens": 1,
                                                          "temperature": 0}, timeout=600)
        assert reply.status_code == 200, reply.text
        assert reply.json()["usage"]["prompt_tokens"] > 1000
        assert server._proc is not None and server._proc.poll() is None  # still serving after a batched prefill
