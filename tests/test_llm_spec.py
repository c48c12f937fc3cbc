"""Spec parsing and generator construction: one string selects backend, model, endpoint and options."""

from __future__ import annotations

import pytest

from promedical.io import UserError
from promedical.llm.cache import CachedGenerator
from promedical.llm.hf_local import HFLocalGenerator
from promedical.llm.openai_compat import OpenAICompatGenerator, structured_payload
from promedical.llm.protocol import GenerationParams, Request
from promedical.llm.spec import load_generator, parse_spec


def test_openai_spec_round_trips_model_url_and_flavour() -> None:
    gen = load_generator("openai:qwen3-8b@http://127.0.0.1:8000/v1", timeout=5, retries=2, concurrency=3)
    assert isinstance(gen, OpenAICompatGenerator)
    assert (gen.model, gen.base_url, gen.retries, gen.concurrency, gen.timeout) == (
        "qwen3-8b", "http://127.0.0.1:8000/v1", 2, 3, 5)
    assert gen.spec == "openai:qwen3-8b@http://127.0.0.1:8000/v1"
    other = load_generator("openai:m@http://h:1/v1/#structured=json_object")
    assert isinstance(other, OpenAICompatGenerator)
    assert other.spec == "openai:m@http://h:1/v1#structured=json_object"
    gen.close()
    other.close()


def test_model_names_may_contain_at_signs() -> None:
    gen = load_generator("openai:org@model@https://api.example.org/v1")
    assert isinstance(gen, OpenAICompatGenerator)
    assert gen.model == "org@model"
    gen.close()


@pytest.mark.parametrize("spec", [
    "nocolon", "openai:", "openai:model-without-url", "openai:m@ftp://x", "openai:m@http://x#structured=xml",
    "openai:m@http://x#colour=red", "hf:smollm2#batch=zero", "hf:smollm2#batch=0", "mystery:thing", "hf:x#novalue",
])
def test_bad_specs_are_user_errors_naming_the_spec(spec: str) -> None:
    with pytest.raises(UserError, match="spec"):
        load_generator(spec)


def test_hf_spec_options() -> None:
    gen = load_generator("hf:tiny-llama#batch=3&constrained=0")
    assert isinstance(gen, HFLocalGenerator)
    assert (gen.name, gen.batch_size, gen.constrained) == ("tiny-llama", 3, False)
    assert gen.spec == "hf:tiny-llama#constrained=0"  # decoding differs, so the spec (and cache keys) differ


def test_cache_path_wraps_in_cached_generator(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gen = load_generator("hf:tiny-llama", cache_path=tmp_path / "c.sqlite")
    assert isinstance(gen, CachedGenerator)
    assert gen.spec == "hf:tiny-llama"
    assert (tmp_path / "c.sqlite").exists()
    gen.close()


def test_parse_spec_options() -> None:
    parsed = parse_spec("hf:/models/x#batch=2&constrained=1")
    assert (parsed.backend, parsed.target, parsed.options) == ("hf", "/models/x", {"batch": "2", "constrained": "1"})


def test_structured_flavours_and_payload() -> None:
    schema = {"type": "object"}
    assert structured_payload(schema, "json_object") == {"response_format": {"type": "json_object", "schema": schema}}
    assert structured_payload(schema, "guided_json") == {"guided_json": schema}
    assert structured_payload(schema, "none") == {}
    rf = structured_payload(schema, "json_schema")["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["schema"] == schema
    gen = OpenAICompatGenerator("m", "http://127.0.0.1:9/v1", structured="json_object")
    body = gen.payload(Request([{"role": "user", "content": "x"}], GenerationParams(seed=7, json_schema=schema)))
    assert body["seed"] == 7 and body["temperature"] == 0.0 and body["response_format"]["schema"] == schema
    gen.close()
