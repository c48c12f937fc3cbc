"""Generator specs: one string on the command line selects a backend, a model and its endpoint.

Grammar: ``<backend>:<target>[#<option>=<value>[&...]]``.

* ``openai:<model>@<base_url>``: any OpenAI-compatible chat server, e.g.
  ``openai:qwen3-8b@http://127.0.0.1:8000/v1`` (vLLM), ``openai:smollm2@http://127.0.0.1:8080/v1#structured=json_object``
  (llama-cpp-python's server), ``openai:gpt-4.1-mini@https://api.openai.com/v1`` (key from ``PROMEDICAL_API_KEY``
  or ``OPENAI_API_KEY``). Option ``structured``: ``json_schema`` (default), ``json_object``, ``guided_json``,
  ``none`` (see ``promedical.llm.openai_compat``).
* ``hf:<name-or-path>``: a local transformers model, e.g. ``hf:smollm2``, ``hf:/models/my-checkpoint``. Options
  ``batch`` (batch size, default 4) and ``constrained`` (``1``/``0``: schema-constrained decoding when
  lm-format-enforcer is installed).

Timeout, retry count and concurrency are arguments of ``load_generator`` (CLI options), not part of the spec: they
do not change what a model answers, so they stay out of cache keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from promedical.io import UserError
from promedical.llm.cache import CachedGenerator
from promedical.llm.openai_compat import STRUCTURED_FLAVOURS, OpenAICompatGenerator
from promedical.llm.protocol import Generator


@dataclass(frozen=True, slots=True)
class ParsedSpec:
    backend: str
    target: str
    options: dict[str, str]


def parse_spec(spec: str) -> ParsedSpec:
    """Split a spec into backend, target and options; ``UserError`` naming the spec when it is malformed."""
    text = spec.strip()
    backend, sep, rest = text.partition(":")
    if not sep or not backend or not rest:
        raise UserError(f"judge/generator spec {spec!r}: expected <backend>:<target>, e.g. "
                        "openai:<model>@<base_url> or hf:<name-or-path>")
    target, _, raw_options = rest.partition("#")
    options: dict[str, str] = {}
    for item in filter(None, raw_options.split("&")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UserError(f"spec {spec!r}: option {item!r} is not key=value")
        options[key.strip()] = value.strip()
    return ParsedSpec(backend.strip().lower(), target.strip(), options)


def _check_options(spec: str, options: dict[str, str], allowed: set[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise UserError(
            f"spec {spec!r}: unknown option(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )


def _openai(spec: str, parsed: ParsedSpec, *, timeout: float, retries: int, concurrency: int) -> Generator:
    model, at, base_url = parsed.target.rpartition("@")
    if not at or not model or not base_url.startswith(("http://", "https://")):
        raise UserError(f"spec {spec!r}: expected openai:<model>@<base_url> with an http(s) base URL")
    _check_options(spec, parsed.options, {"structured"})
    structured = parsed.options.get("structured", "json_schema")
    if structured not in STRUCTURED_FLAVOURS:
        raise UserError(f"spec {spec!r}: structured={structured!r} is not one of {', '.join(STRUCTURED_FLAVOURS)}")
    return OpenAICompatGenerator(model, base_url, timeout=timeout, retries=retries, concurrency=concurrency,
                                 structured=structured)


def _hf(spec: str, parsed: ParsedSpec) -> Generator:
    from promedical.llm.hf_local import HFLocalGenerator

    _check_options(spec, parsed.options, {"batch", "constrained"})
    try:
        batch = int(parsed.options.get("batch", "4"))
    except ValueError:
        raise UserError(f"spec {spec!r}: batch must be an integer") from None
    if batch < 1:
        raise UserError(f"spec {spec!r}: batch must be >= 1")
    constrained = parsed.options.get("constrained", "1") not in ("0", "false", "no")
    return HFLocalGenerator(parsed.target, batch_size=batch, constrained=constrained)


def load_generator(
    spec: str,
    *,
    timeout: float = 60.0,
    retries: int = 3,
    concurrency: int = 4,
    cache_path: str | Path | None = None,
) -> Generator:
    """Build the generator a spec names, wrapped in a ``CachedGenerator`` when ``cache_path`` is given."""
    if timeout <= 0 or retries < 0 or concurrency < 1:
        raise UserError("timeout must be > 0, retries >= 0 and concurrency >= 1")
    parsed = parse_spec(spec)
    generator: Generator
    if parsed.backend == "openai":
        generator = _openai(spec, parsed, timeout=timeout, retries=retries, concurrency=concurrency)
    elif parsed.backend == "hf":
        generator = _hf(spec, parsed)
    else:
        raise UserError(f"spec {spec!r}: unknown backend {parsed.backend!r} (openai:, hf:)")
    if cache_path is not None:
        return CachedGenerator(generator, cache_path)
    return generator
