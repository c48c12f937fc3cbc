"""Candidate responses: K answers per rubric prompt from each of several generators, with model provenance.

Sample ``k`` of a model uses seed ``k`` and, for ``k > 0``, the configured sampling temperature (sample 0 is greedy),
so answers differ and every call has its own cache key. A failed generation is reported and gives no response;
an empty answer is reported as ``empty``. Identical texts from one model for one rubric are kept once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from promedical.data.llm_calls import run_requests
from promedical.llm.protocol import GenerationParams, Generator, Request
from promedical.rubrics.records import Response
from promedical.rubrics.schema import Rubric


@dataclass(frozen=True, slots=True)
class CandidateSettings:
    per_model: int = 2  # K samples per model
    max_tokens: int = 256
    temperature: float = 0.8  # for samples after the first (greedy) one
    top_p: float = 0.95


def candidate_requests(rubric: Rubric, settings: CandidateSettings) -> list[tuple[int, Request]]:
    messages = [m.model_dump() for m in rubric.prompt]
    out = []
    for k in range(settings.per_model):
        params = GenerationParams(temperature=0.0 if k == 0 else settings.temperature,
                                  top_p=1.0 if k == 0 else settings.top_p, max_tokens=settings.max_tokens, seed=k)
        out.append((k, Request(messages, params)))
    return out


def generate_candidates(
    rubrics: Sequence[Rubric],
    generators: Sequence[Generator],
    settings: CandidateSettings = CandidateSettings(),
    on_done: Callable[[int], None] | None = None,
) -> tuple[list[Response], dict[str, Any]]:
    """All candidates, grouped by rubric then model then sample; plus counts and failures by model."""
    responses: list[Response] = []
    failures: Counter[str] = Counter()
    failure_examples: list[dict[str, Any]] = []
    per_model: Counter[str] = Counter()
    seen: set[str] = set()
    for generator in generators:
        planned = [(rubric, k, request) for rubric in rubrics for k, request in candidate_requests(rubric, settings)]
        completions = run_requests(generator, [r for _, _, r in planned], on_done)
        for (rubric, k, request), completion in zip(planned, completions, strict=True):
            text = completion.text.strip() if completion.ok and completion.text else ""
            if not completion.ok or not text:
                kind = "empty" if completion.ok else "failed"
                failures[f"{generator.spec}:{kind}"] += 1
                if len(failure_examples) < 5:
                    failure_examples.append({"rubric_id": rubric.id, "model": generator.spec, "sample": k,
                                             "error": completion.error or "empty answer"})
                continue
            response = Response.build(
                rubric.id, generator.spec, text, sample=k, rubric_version=rubric.version,
                params=request.params.cache_fields(), finish_reason=completion.finish_reason,
                completion_tokens=completion.completion_tokens)
            if response.id in seen:
                failures[f"{generator.spec}:duplicate_text"] += 1
                continue
            seen.add(response.id)
            per_model[generator.spec] += 1
            responses.append(response)
    responses.sort(key=lambda r: (r.rubric_id, r.model, r.meta.get("sample", 0)))
    counts = {"rubrics": len(rubrics), "responses": len(responses), "by_model": dict(per_model),
              "not_kept": dict(failures), "examples_not_kept": failure_examples}
    return responses, counts
