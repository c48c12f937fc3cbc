"""Local transformers backend (tiny random Llama: mechanics only) and the SQLite completion cache over it."""

from __future__ import annotations

import json
import sqlite3

import pytest

from promedical.llm.cache import CachedGenerator, CompletionCache, cache_key
from promedical.llm.hf_local import HFLocalGenerator
from promedical.llm.protocol import GenerationParams, Request

SCHEMA = {"type": "object", "properties": {"met": {"type": "boolean"}}, "required": ["met"]}


def _requests(n: int, **params: object) -> list[Request]:
    return [
        Request([{"role": "user", "content": f"Question number {i}?"}], GenerationParams(**{"max_tokens": 6, **params}),
                audit={"template_version": "t/1", "criterion_ids": [f"c{i}"]})  # type: ignore[arg-type]
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def tiny() -> HFLocalGenerator:
    return HFLocalGenerator("tiny-llama", batch_size=2)


def test_batched_generation_answers_every_request_in_order(tiny: HFLocalGenerator) -> None:
    done: list[int] = []
    out = tiny.generate(_requests(3), on_done=done.append)
    assert len(out) == 3 and sum(done) == 3
    assert all(c.ok and c.calls == 1 and c.completion_tokens <= 6 and c.prompt_tokens > 0 for c in out)
    alone = tiny.generate(_requests(3)[2:])  # left padding must not change a greedy answer
    assert alone[0].text == out[2].text


@pytest.mark.slow
def test_schema_constrained_decoding_gives_schema_valid_json() -> None:
    smol = HFLocalGenerator("smollm2", batch_size=2)
    if not smol.constrained:
        pytest.skip("lm-format-enforcer is not installed")
    out = smol.generate(_requests(2, json_schema=SCHEMA, max_tokens=24))
    for completion in out:
        assert completion.ok and completion.meta["constrained"]
        value = json.loads(completion.text or "")
        assert isinstance(value, dict) and isinstance(value["met"], bool)


def test_cache_serves_repeats_without_calls_and_keeps_audit_columns(tiny: HFLocalGenerator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "cache.sqlite"
    cached = CachedGenerator(tiny, CompletionCache(path))
    first = cached.generate(_requests(3))
    assert [c.cached for c in first] == [False] * 3
    second = CachedGenerator(tiny, CompletionCache(path)).generate(_requests(4))
    assert [c.cached for c in second] == [True, True, True, False]
    assert [c.calls for c in second[:3]] == [0, 0, 0] and second[3].calls == 1
    assert [c.text for c in second[:3]] == [c.text for c in first]
    assert second[0].prompt_tokens == 0 and second[0].meta["cached_usage"]["prompt_tokens"] == first[0].prompt_tokens
    rows = sqlite3.connect(path).execute("SELECT template_version, criterion_ids FROM completions").fetchall()
    assert len(rows) == 4 and ("t/1", '["c0"]') in rows


def test_cache_key_covers_spec_params_and_messages() -> None:
    base = _requests(1)[0]
    other_params = Request(base.messages, GenerationParams(max_tokens=7))
    other_text = Request([{"role": "user", "content": "Question number 1?"}], base.params)
    relabelled = Request(base.messages, base.params, audit={"template_version": "other"})
    keys = {cache_key("hf:a", base), cache_key("hf:b", base), cache_key("hf:a", other_params),
            cache_key("hf:a", other_text)}
    assert len(keys) == 4
    assert cache_key("hf:a", relabelled) == cache_key("hf:a", base)  # audit labels are not content


def test_failures_are_values_and_are_not_cached(tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = HFLocalGenerator(str(tmp_path / "no-such-model"), batch_size=2)
    cache = CompletionCache(tmp_path / "c.sqlite")
    out = CachedGenerator(broken, cache).generate(_requests(2))
    assert all(not c.ok and c.error and "cannot load" in c.error for c in out)
    assert len(cache) == 0
