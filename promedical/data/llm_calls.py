"""Shared helpers for the LLM stages: run requests through any ``Generator`` and pull JSON out of its text.

Failures stay values: a failed completion or unparsable text becomes ``None`` plus a reason, never an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from promedical.llm.protocol import Completion, Generator, Request

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> tuple[Any | None, str | None]:
    """The first JSON object in ``text`` (fenced or bare); ``(None, reason)`` when there is none."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        candidates.append(text[start : end + 1])
    if not candidates:
        return None, "no JSON object in the output"
    last = "no JSON object in the output"
    for candidate in candidates:
        try:
            return json.loads(candidate), None
        except json.JSONDecodeError as exc:
            last = f"bad JSON: {exc.msg} at char {exc.pos}"
    return None, last


def run_requests(
    generator: Generator, requests: Sequence[Request], on_done: Callable[[int], None] | None = None,
    chunk: int = 8,
) -> list[Completion]:
    """Generate in chunks so a progress bar moves and an interrupt keeps what the generator's cache holds."""
    out: list[Completion] = []
    for start in range(0, len(requests), chunk):
        out.extend(generator.generate(list(requests[start : start + chunk]), on_done=on_done))
    return out
