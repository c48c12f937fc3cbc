"""Generation over any OpenAI-compatible chat server (vLLM, llama.cpp, hosted APIs) with bounded, jittered retries.

Requests run on a thread pool whose size is the concurrency limit. Each request is retried on transient failures
(HTTP 408/409/429/5xx, timeouts, connection errors, a body that is not the expected JSON) with exponential backoff
plus jitter, at most ``retries`` times; after that it becomes a failed ``Completion`` with the reason. Client errors
(4xx other than the transient ones) fail at once. Nothing here raises for a model-side failure.

Structured output (``GenerationParams.json_schema``) is sent in one of these flavours:

* ``json_schema`` (default): OpenAI ``response_format={"type": "json_schema", "json_schema": {...}}``; vLLM and
  recent llama.cpp ``llama-server`` accept it;
* ``json_object``: ``response_format={"type": "json_object", "schema": ...}`` (llama-cpp-python's server, grammar
  constrained);
* ``guided_json``: vLLM's ``extra_body`` field ``guided_json``;
* ``none``: no constraint; the schema only shapes the prompt and the caller validates.

The API key comes from ``PROMEDICAL_API_KEY`` or ``OPENAI_API_KEY`` (optional for local servers).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import httpx

from promedical.llm.protocol import Completion, GenerationParams, Request

StructuredFlavour = Literal["json_schema", "json_object", "guided_json", "none"]
STRUCTURED_FLAVOURS: tuple[str, ...] = ("json_schema", "json_object", "guided_json", "none")
_TRANSIENT_STATUS = frozenset({408, 409, 425, 429})


def api_key_from_env() -> str | None:
    return os.environ.get("PROMEDICAL_API_KEY") or os.environ.get("OPENAI_API_KEY") or None


def structured_payload(schema: dict[str, Any], flavour: str) -> dict[str, Any]:
    """The request fields that ask a server for JSON matching ``schema`` (see the module docstring)."""
    if flavour == "json_schema":
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": "answer", "schema": schema, "strict": True}}}
    if flavour == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if flavour == "guided_json":
        return {"guided_json": schema}
    if flavour == "none":
        return {}
    raise ValueError(f"unknown structured-output flavour {flavour!r} (one of {', '.join(STRUCTURED_FLAVOURS)})")


class OpenAICompatGenerator:
    """A chat model behind ``<base_url>/chat/completions``; spec ``openai:<model>@<base_url>``."""

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        concurrency: int = 4,
        structured: str = "json_schema",
        api_key: str | None = None,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        if structured not in STRUCTURED_FLAVOURS:
            raise ValueError(f"unknown structured-output flavour {structured!r}")
        if retries < 0 or concurrency < 1 or timeout <= 0:
            raise ValueError("retries must be >= 0, concurrency >= 1 and timeout > 0")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.concurrency = concurrency
        self.structured = structured
        self.backoff = backoff
        self.max_backoff = max_backoff
        key = api_key if api_key is not None else api_key_from_env()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self._rng = random.Random(0)
        self._rng_lock = threading.Lock()

    @property
    def spec(self) -> str:
        suffix = "" if self.structured == "json_schema" else f"#structured={self.structured}"
        return f"openai:{self.model}@{self.base_url}{suffix}"

    def payload(self, request: Request) -> dict[str, Any]:
        params: GenerationParams = request.params
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": params.seed,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.json_schema is not None:
            body.update(structured_payload(params.json_schema, self.structured))
        return body

    def _sleep_before_retry(self, attempt: int) -> None:
        with self._rng_lock:
            jitter = self._rng.uniform(0, 1)
        delay = min(self.max_backoff, self.backoff * (2**attempt)) * (0.5 + jitter / 2)
        time.sleep(delay)

    def _one(self, request: Request) -> Completion:
        body = self.payload(request)
        errors: list[str] = []
        attempts = 0
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep_before_retry(attempt - 1)
            attempts += 1
            try:
                response = self._client.post("/chat/completions", json=body)
            except httpx.TimeoutException as exc:
                errors.append(f"timeout after {self.timeout:g}s ({type(exc).__name__})")
                continue
            except httpx.TransportError as exc:
                errors.append(f"connection error: {type(exc).__name__}: {exc}"[:300])
                continue
            status = response.status_code
            if status >= 500 or status in _TRANSIENT_STATUS:
                errors.append(f"HTTP {status}: {response.text[:200]}")
                continue
            if status >= 400:
                errors.append(f"HTTP {status}: {response.text[:300]}")
                break  # the request itself is wrong: retrying cannot help
            parsed = _parse_body(response)
            if isinstance(parsed, str):
                errors.append(parsed)
                continue
            text, finish, usage = parsed
            return Completion(
                text=text,
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                finish_reason=finish,
                calls=attempts,
                meta={"attempts": attempts, "errors": errors} if errors else {"attempts": attempts},
            )
        return Completion(
            text=None,
            error=f"failed after {attempts} attempt(s): {errors[-1] if errors else 'no attempt made'}",
            calls=attempts,
            meta={"attempts": attempts, "errors": errors},
        )

    def generate(
        self, requests: Sequence[Request], on_done: Callable[[int], None] | None = None
    ) -> list[Completion]:
        if not requests:
            return []

        def run(request: Request) -> Completion:
            try:
                result = self._one(request)
            except httpx.HTTPError as exc:  # a transport or protocol failure ``_one`` does not classify: a value
                result = Completion(text=None, error=f"client error: {type(exc).__name__}: {exc}"[:300])
            # Anything else (TypeError, AttributeError, KeyError, ...) is a bug in this code, not a model failure:
            # it propagates, instead of turning every verdict of the run into a plausible-looking "unscored".
            if on_done is not None:
                on_done(1)
            return result

        if self.concurrency == 1 or len(requests) == 1:
            return [run(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(run, requests))

    def close(self) -> None:
        self._client.close()


def _parse_body(response: httpx.Response) -> tuple[str, str | None, dict[str, Any]] | str:
    """``(text, finish_reason, usage)`` from a chat-completions body, or a string saying what is wrong with it."""
    try:
        data = response.json()
    except ValueError:
        return f"response body is not JSON ({len(response.content)} bytes)"
    if not isinstance(data, dict):
        return "response body is not a JSON object"
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "response has no choices"
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        return "response choice has no text content"
    raw_usage = data.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    finish = choices[0].get("finish_reason")
    return content, finish if isinstance(finish, str) else None, usage
