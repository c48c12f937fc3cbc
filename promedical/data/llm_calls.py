"""Shared helper for the LLM stages: run requests through any ``Generator`` in chunks.

JSON is pulled out of answers by the judge's parser (``promedical.judge.parse.extract_json``), one extractor for
every stage: failures stay values (``None`` plus a reason), never exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from promedical.llm.protocol import Completion, Generator, Request


def run_requests(
    generator: Generator, requests: Sequence[Request], on_done: Callable[[int], None] | None = None,
    chunk: int = 8,
) -> list[Completion]:
    """Generate in chunks so a progress bar moves and an interrupt keeps what the generator's cache holds."""
    out: list[Completion] = []
    for start in range(0, len(requests), chunk):
        out.extend(generator.generate(list(requests[start : start + chunk]), on_done=on_done))
    return out
