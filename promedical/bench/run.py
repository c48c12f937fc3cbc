"""A bench run: held-out rubrics -> policy responses -> judge verdicts -> scores -> metrics with CIs (+ audit).

Stages, each resumable: generation and judging go through SQLite-cached backends kept in the run directory, so
re-running the same command answers finished items from the caches. The run directory holds the rubric slice,
responses, verdicts, one score row per response, ``summary.json``, the resolved config and a manifest, and (when a
training pool is given) the independence audit, which is also embedded in the summary.

A generation failure is a value: the response is kept with empty text and its error, and every criterion gets an
``unscored`` verdict saying why (the judge never sees it); the scoring path then reports it as unscorable.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from promedical.bench.metrics import response_rows, summarise
from promedical.llm.protocol import Completion, GenerationParams, Generator, Request
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Rubric
from promedical.rubrics.scoring import RewardParams
from promedical.unscored import DEFAULT_MAX_UNSCORED_RATE

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class BenchConfig:
    bench: str
    policy: str
    judge: str
    limit: int | None = None
    seed: int = 0
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 192
    system: str | None = None
    alpha: float = RewardParams().alpha
    beta: float = RewardParams().beta
    lam: float = RewardParams().lam
    n_resamples: int = 10_000
    train: str | None = None
    max_unscored_rate: float = DEFAULT_MAX_UNSCORED_RATE

    @property
    def params(self) -> RewardParams:
        return RewardParams(alpha=self.alpha, beta=self.beta, lam=self.lam)

    @property
    def policy_label(self) -> str:
        """The policy plus its decoding setting: the ``model`` field of every response (provenance)."""
        label = f"{self.policy}|t={self.temperature:g}|top_p={self.top_p:g}|max={self.max_tokens}|seed={self.seed}"
        return label + ("|system" if self.system else "")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def select(rubrics: Sequence[Rubric], limit: int | None, seed: int) -> list[Rubric]:
    """A fixed-seed slice of the bench, in file order (all of it when ``limit`` is None)."""
    if limit is None or limit >= len(rubrics):
        return list(rubrics)
    keep = set(random.Random(seed).sample(range(len(rubrics)), limit))
    return [r for i, r in enumerate(rubrics) if i in keep]


def requests_for(rubrics: Sequence[Rubric], config: BenchConfig) -> list[Request]:
    params = GenerationParams(temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_tokens,
                              seed=config.seed)
    out = []
    for rubric in rubrics:
        messages = [{"role": m.role, "content": m.content} for m in rubric.prompt]
        if config.system and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": config.system})
        out.append(Request(messages=messages, params=params, audit={"rubric_id": rubric.id, "stage": "bench"}))
    return out


def _response(rubric: Rubric, completion: Completion, config: BenchConfig) -> Response:
    meta: dict[str, Any] = {"policy": config.policy, "temperature": config.temperature, "top_p": config.top_p,
                            "max_tokens": config.max_tokens, "seed": config.seed, "system": config.system,
                            "finish_reason": completion.finish_reason,
                            "completion_tokens": completion.completion_tokens}
    if not completion.ok:
        meta["error"] = completion.error
        return Response.build(rubric.id, config.policy_label, "", **meta)
    return Response.build(rubric.id, config.policy_label, completion.text or "", **meta)


def generate(rubrics: Sequence[Rubric], generator: Generator, config: BenchConfig,
             on_done: Progress | None = None) -> list[Response]:
    """One response per rubric from the policy (failures kept as values, see the module docstring)."""
    completions = generator.generate(requests_for(rubrics, config), on_done=on_done)
    return [_response(r, c, config) for r, c in zip(rubrics, completions, strict=True)]


def failed_verdicts(rubric: Rubric, response: Response) -> list[Verdict]:
    reason = f"generation failed: {response.meta.get('error')}"
    return [Verdict(response_id=response.id, rubric_id=rubric.id, criterion_id=c.id, status=Status.UNSCORED,
                    reason=reason, judge="bench:generation") for c in rubric.criteria]


def judge_all(rubrics: Sequence[Rubric], responses: Sequence[Response], judge: Any) -> list[Verdict]:
    """Verdicts for every (response, criterion); failed generations get ``unscored`` without a judge call."""
    by_id = {r.id: r for r in rubrics}
    todo = [(by_id[x.rubric_id], x) for x in responses if "error" not in x.meta]
    verdicts = list(judge.grade_many(todo)) if todo else []
    for x in responses:
        if "error" in x.meta:
            verdicts.extend(failed_verdicts(by_id[x.rubric_id], x))
    return verdicts


def evaluate(rubrics: Sequence[Rubric], responses: Sequence[Response], verdicts: Sequence[Verdict],
             config: BenchConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score rows and the summary (headline, breakdowns, scoring parameters, provenance)."""
    rows, scoring = response_rows(rubrics, responses, verdicts, config.params)
    summary = summarise(rows, n_resamples=config.n_resamples, seed=config.seed)
    judges = sorted({v.judge for v in verdicts})
    templates = sorted({v.template_version for v in verdicts if v.template_version})
    summary.update({
        "policy": config.policy,
        "policy_label": config.policy_label,
        "judge": config.judge,
        "judges_seen": judges,
        "judge_templates": templates,
        "bench": config.bench,
        "rubrics": len(rubrics),
        "generation_failures": sum(1 for x in responses if "error" in x.meta),
        "truncated": sum(1 for x in responses if x.meta.get("finish_reason") == "length"),
        "params": scoring["params"],
    })
    return rows, summary


def run_audit(train: str, bench_path: Path) -> dict[str, Any]:
    """The independence audit of ``promedical.data.audit`` between a training pool and the bench slice."""
    from promedical.data.audit import audit, load_side

    return audit(load_side(train), load_side(str(bench_path)))
