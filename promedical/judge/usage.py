"""Call and token accounting for judge runs, and the small progress hook the engines report through."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from promedical.llm.protocol import Completion


@dataclass
class Usage:
    """What a run spent: ``calls`` are model calls made (retries included, cache hits excluded); tokens likewise."""

    requests: int = 0  # requests answered (from the model or the cache)
    calls: int = 0
    cache_hits: int = 0
    failed_requests: int = 0  # requests that ended without text after the backend's retries
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, completion: Completion) -> None:
        with self._lock:
            self.requests += 1
            self.calls += completion.calls
            self.cache_hits += int(completion.cached)
            self.failed_requests += int(not completion.ok)
            if not completion.cached:
                self.prompt_tokens += completion.prompt_tokens
                self.completion_tokens += completion.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "failed_requests": self.failed_requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


@dataclass(frozen=True, slots=True)
class ProgressHook:
    """``add_total(n)`` when n more requests are planned (re-asks), ``advance(n)`` when n finish."""

    add_total: Callable[[int], None] = lambda n: None
    advance: Callable[[int], None] = lambda n: None
