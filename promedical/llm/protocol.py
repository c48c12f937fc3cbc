"""The one protocol every generation backend implements: chat messages in, completions (or failures) out.

A backend never raises for a model-side failure (HTTP 5xx, timeout, refusal, truncated output): it returns a
``Completion`` whose ``error`` says what happened, so callers turn it into an ``unscored`` value. Exceptions are
for programming and configuration errors only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

ChatMessage = dict[str, str]  # {"role": ..., "content": ...}


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Decoding parameters; part of every cache key. Temperature 0 and a fixed seed by default (reproducible)."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int = 0
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None  # ask for structured output when the backend supports it

    def cache_fields(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": list(self.stop),
            "json_schema": self.json_schema,
        }


@dataclass(frozen=True, slots=True)
class Completion:
    text: str | None  # None when the call failed
    error: str | None = None  # why it failed; None on success
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # "stop", "length", ...
    cached: bool = False
    calls: int = 1  # model calls spent (retries included); 0 when served from cache
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


@dataclass(frozen=True, slots=True)
class Request:
    messages: Sequence[ChatMessage]
    params: GenerationParams = GenerationParams()
    # Audit labels (e.g. template version, criterion ids) stored beside cached completions; never part of a cache
    # key and never sent to a model.
    audit: dict[str, Any] = field(default_factory=dict, compare=False)


@runtime_checkable
class Generator(Protocol):
    """A chat model. ``spec`` names it fully (backend, model, endpoint) for provenance and cache keys."""

    @property
    def spec(self) -> str: ...

    def generate(
        self, requests: Sequence[Request], on_done: Callable[[int], None] | None = None
    ) -> list[Completion]:
        """Answer every request, in order; batched or concurrent as the backend allows. ``on_done(n)`` is called
        as ``n`` more requests finish (progress bars). Never raises for model failures (see the module docstring)."""
        ...

    def close(self) -> None: ...
