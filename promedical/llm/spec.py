"""Specs: one string on the command line selects a backend, a model and its endpoint. Every spec of the package
(generators and judges) is parsed here, and only here.

Grammar: ``<backend>:<target>[#<option>=<value>[&...]]``; ``lexical`` alone is the one spec without a target.

* ``openai:<model>@<base_url>``: any OpenAI-compatible chat server, e.g.
  ``openai:qwen3-8b@http://127.0.0.1:8000/v1`` (vLLM), ``openai:smollm2@http://127.0.0.1:8080/v1#structured=json_object``
  (llama-cpp-python's server), ``openai:gpt-4.1-mini@https://api.openai.com/v1`` (key from ``PROMEDICAL_API_KEY``
  or ``OPENAI_API_KEY``). Option ``structured``: ``json_schema`` (default), ``json_object``, ``guided_json``,
  ``none`` (see ``promedical.llm.openai_compat``).
* ``hf:<name-or-path>``: a local transformers model, e.g. ``hf:smollm2``, ``hf:/models/my-checkpoint``. Options
  ``batch`` (batch size, default 4) and ``constrained`` (``1``/``0``: schema-constrained decoding when
  lm-format-enforcer is installed).
* ``rm:<checkpoint>`` (judges only): a calibrated reward-model checkpoint (``promedical.reward.judge``), or for the
  implicit-RM baseline an RM trained without criteria; no options.
* ``lexical`` or ``lexical:<threshold>`` (judges only): the content-word-overlap baseline
  (``promedical.judge.lexical``), threshold in (0, 1]; no options.

``openai`` and ``hf`` generate text (``load_generator``); ``promedical.judge.protocol.load_judge`` turns any of the
four into a judge.

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

GENERATORS: tuple[str, ...] = ("openai", "hf")  # the backends that generate text
LEXICAL = "lexical"
# backend -> (the form of its spec, the options it may carry); a backend not listed here is refused by parse_spec
BACKENDS: dict[str, tuple[str, frozenset[str]]] = {
    "openai": ("openai:<model>@<base_url>", frozenset({"structured"})),
    "hf": ("hf:<name-or-path>", frozenset({"batch", "constrained"})),
    "rm": ("rm:<checkpoint>", frozenset()),
    LEXICAL: ("lexical or lexical:<threshold in (0, 1]>", frozenset()),
}


@dataclass(frozen=True, slots=True)
class ParsedSpec:
    backend: str
    target: str
    options: dict[str, str]
    spec: str = ""  # as given, for messages

    @property
    def generates_text(self) -> bool:
        return self.backend in GENERATORS


def parse_spec(spec: str) -> ParsedSpec:
    """Split a spec into backend, target and options; ``UserError`` naming the spec when it is malformed, names an
    unknown backend, or carries an option its backend does not know."""
    text = spec.strip()
    backend, sep, rest = text.partition(":")
    backend = backend.strip().lower()
    if backend == LEXICAL and not sep:
        return ParsedSpec(LEXICAL, "", {}, spec)
    if not sep or not backend:
        raise UserError(f"judge/generator spec {spec!r}: expected <backend>:<target>, e.g. "
                        "openai:<model>@<base_url> or hf:<name-or-path>")
    if backend not in BACKENDS:
        raise UserError(f"spec {spec!r}: unknown backend {backend!r} ({', '.join(f'{b}:' for b in BACKENDS)})")
    form, allowed = BACKENDS[backend]
    target, _, raw_options = rest.partition("#")
    if not target.strip():
        raise UserError(f"spec {spec!r}: expected {form}")
    options: dict[str, str] = {}
    for item in filter(None, raw_options.split("&")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UserError(f"spec {spec!r}: option {item!r} is not key=value")
        options[key.strip()] = value.strip()
    _check_options(spec, options, allowed)
    return ParsedSpec(backend, target.strip(), options, spec)


def lexical_threshold(parsed: ParsedSpec) -> float | None:
    """The threshold of a ``lexical:<threshold>`` spec; ``None`` for plain ``lexical`` (the judge's default).
    The range (0, 1] is the judge's to check."""
    if not parsed.target:
        return None
    try:
        return float(parsed.target)
    except ValueError:
        raise UserError(f"judge spec {parsed.spec!r}: expected lexical:<threshold in (0, 1]>") from None


def _check_options(spec: str, options: dict[str, str], allowed: frozenset[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise UserError(
            f"spec {spec!r}: unknown option(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed)) or 'none'})"
        )


def _openai(spec: str, parsed: ParsedSpec, *, timeout: float, retries: int, concurrency: int) -> Generator:
    model, at, base_url = parsed.target.rpartition("@")
    if not at or not model or not base_url.startswith(("http://", "https://")):
        raise UserError(f"spec {spec!r}: expected openai:<model>@<base_url> with an http(s) base URL")
    structured = parsed.options.get("structured", "json_schema")
    if structured not in STRUCTURED_FLAVOURS:
        raise UserError(f"spec {spec!r}: structured={structured!r} is not one of {', '.join(STRUCTURED_FLAVOURS)}")
    return OpenAICompatGenerator(model, base_url, timeout=timeout, retries=retries, concurrency=concurrency,
                                 structured=structured)


def _hf(spec: str, parsed: ParsedSpec) -> Generator:
    from promedical.llm.hf_local import HFLocalGenerator

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
        raise UserError(f"spec {spec!r}: backend {parsed.backend!r} does not generate text (openai:, hf:)")
    if cache_path is not None:
        return CachedGenerator(generator, cache_path)
    return generator
