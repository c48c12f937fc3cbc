"""OpenAI-compatible backend against a real llama.cpp server on loopback (SmolLM2: mechanics only)."""

from __future__ import annotations

import json

import pytest

from promedical.llm.llamacpp import free_port
from promedical.llm.openai_compat import OpenAICompatGenerator
from promedical.llm.protocol import GenerationParams, Request
from tests.conftest import SERVER_MODEL

pytestmark = pytest.mark.server

SCHEMA = {"type": "object", "properties": {"met": {"type": "boolean"}}, "required": ["met"]}


def _ask(text: str, **params: object) -> Request:
    return Request([{"role": "user", "content": text}], GenerationParams(**{"max_tokens": 16, **params}))  # type: ignore[arg-type]


def test_completions_come_back_in_order_with_usage(llama_server: str) -> None:
    gen = OpenAICompatGenerator(SERVER_MODEL, llama_server, timeout=60, retries=1, concurrency=2)
    done: list[int] = []
    out = gen.generate([_ask("Say yes."), _ask("Say no."), _ask("Count to three.")], on_done=done.append)
    assert sum(done) == 3
    for completion in out:
        assert completion.ok and completion.text and completion.calls == 1
        assert completion.prompt_tokens > 0 and 0 < completion.completion_tokens <= 16
    repeat = gen.generate([_ask("Count to three.")])[0]
    assert repeat.text == out[2].text  # temperature 0 and a pinned seed repeat
    gen.close()


def test_json_object_flavour_is_grammar_constrained(llama_server: str) -> None:
    gen = OpenAICompatGenerator(SERVER_MODEL, llama_server, timeout=60, retries=1, structured="json_object")
    out = gen.generate([_ask("Is the sky blue? Answer as JSON.", json_schema=SCHEMA, max_tokens=24)])[0]
    assert out.ok
    assert isinstance(json.loads(out.text or "")["met"], bool)
    gen.close()


def test_connection_failures_are_bounded_values() -> None:
    gen = OpenAICompatGenerator("m", f"http://127.0.0.1:{free_port()}/v1", timeout=2, retries=2, backoff=0.01)
    out = gen.generate([_ask("hello")])[0]
    assert not out.ok and out.calls == 3 and out.error and "connection error" in out.error
    gen.close()


def test_client_errors_are_not_retried(llama_server: str) -> None:
    gen = OpenAICompatGenerator(SERVER_MODEL, llama_server + "/no-such-route", timeout=10, retries=3, backoff=0.01)
    out = gen.generate([_ask("hello")])[0]
    assert not out.ok and out.calls == 1 and out.error and "HTTP 404" in out.error
    gen.close()
