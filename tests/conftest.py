"""Shared fixtures: a real llama.cpp OpenAI-compatible server on loopback serving the packaged SmolLM2 GGUF.

``llama_server`` is session-scoped (one server for the whole run) and yields its base URL
(``http://127.0.0.1:<port>/v1``); tests using it are skipped cleanly when ``llama_cpp`` or the GGUF is missing.
``llama_spec`` is the matching judge/generator spec (llama-cpp-python's structured-output flavour).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from promedical.llm import llamacpp

SERVER_MODEL = "smollm2"


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not llamacpp.available():
        pytest.skip("llama-cpp-python is not installed (pip install 'promedical[server]')")
    from promedical.models import ModelNotAvailable, smollm2_gguf

    try:
        gguf = smollm2_gguf()
    except ModelNotAvailable as exc:
        pytest.skip(str(exc))
    log = Path(tmp_path_factory.mktemp("llama-server")) / "server.log"
    try:
        with llamacpp.LlamaServer(gguf, log, alias=SERVER_MODEL, startup_timeout=120) as base:
            yield base
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def llama_spec(llama_server: str) -> str:
    return f"openai:{SERVER_MODEL}@{llama_server}#structured=json_object"
