"""A bench run: held-out rubrics -> policy responses -> judge verdicts -> scores -> metrics with CIs (+ audit).

``run_bench`` is the whole of ``promedical bench run``: the command line parses the options into a ``BenchConfig``
and a ``Transport`` (the judge options ``judge run`` declares too) and prints the summary this returns. Stages,
each resumable: generation and judging go through SQLite-cached backends kept in the run directory, so
re-running the same command answers finished items from the caches. The run directory holds the rubric slice,
responses, verdicts, one score row per response, ``summary.json``, the resolved config and a manifest, and (when a
training pool is given) the independence audit, which is also embedded in the summary.

A generation failure is a value: the response is kept with empty text and its error, and every criterion gets an
``unscored`` verdict saying why (the judge never sees it); the scoring path then reports it as unscorable.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from promedical.bench.independent import headline, judge_slug, monitors
from promedical.bench.metrics import response_rows, summarise
from promedical.files import UserError, atomic_writer, write_json, write_jsonl
from promedical.io import read_rubrics
from promedical.judge.protocol import Judge
from promedical.judge.run import Bar, Transport, no_bar, open_judge
from promedical.llm.protocol import Completion, GenerationParams, Generator, Request
from promedical.llm.spec import load_generator
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Rubric
from promedical.rubrics.scoring import RewardParams
from promedical.runs import write_manifest
from promedical.unscored import DEFAULT_MAX_UNSCORED_RATE, check_verdicts, validate_max_rate

Progress = Callable[[int], None]
Say = Callable[[str], None]  # where progress messages go (the CLI: stderr)


def _silent(message: str) -> None:
    return None


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


def judge_all(rubrics: Sequence[Rubric], responses: Sequence[Response], judge: Judge) -> list[Verdict]:
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


def check_config(config: BenchConfig, also_judge: Sequence[str] = ()) -> None:
    """The options a run refuses before it writes anything (``UserError``, one line each)."""
    try:
        RewardParams(alpha=config.alpha, beta=config.beta, lam=config.lam)  # validates the inequalities
    except ValueError as exc:
        raise UserError(f"-: -: -: reward parameters: {str(exc).splitlines()[-1].strip()}") from None
    if config.max_tokens < 1 or config.n_resamples < 100:
        raise UserError("-: -: -: --max-tokens must be >= 1 and --resamples >= 100")
    validate_max_rate(config.max_unscored_rate)
    if config.judge in also_judge:
        raise UserError(f"-: -: --also-judge: {config.judge} is the main judge already")


def run_bench(config: BenchConfig, out: Path, *, also_judge: Sequence[str] = (), transport: Transport = Transport(),
              report: bool = True, bar: Bar = no_bar, say: Say = _silent) -> dict[str, Any]:
    """Generate with the policy on the bench slice, judge, score, summarise; write the run directory ``out``.

    Returns the summary (also ``out/summary.json``). ``also_judge``: extra judges over the same responses
    (``promedical.bench.independent``). Raises ``UserError`` for bad options or an empty bench before writing
    anything, and after writing the verdicts when too many are unscored (no summary is written then).
    """
    check_config(config, also_judge)
    bench = Path(config.bench)
    rubrics = select(read_rubrics([bench]), config.limit, config.seed)
    if not rubrics:
        raise UserError(f"{bench}: -: -: no rubrics")
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "rubrics.jsonl", rubrics)
    generator = load_generator(config.policy, timeout=transport.timeout, cache_path=out / "generations.sqlite")
    try:
        with bar("generate") as hook:
            if hook is not None:
                hook.add_total(len(rubrics))
            responses = generate(rubrics, generator, config, on_done=hook.advance if hook is not None else None)
    finally:
        generator.close()
    write_jsonl(out / "responses.jsonl", responses)
    say(f"judging {len(responses)} responses with {config.judge}")
    verdicts, rows, summary = grade_into(out, config, rubrics, responses, transport)
    summary["independent"] = grade_again(also_judge, rubrics, responses, config, out, transport, say)
    summary["monitors"] = monitors(responses)
    if config.train:
        say(f"independence audit against {config.train}")
        summary["audit"] = run_audit(config.train, out / "rubrics.jsonl")
        write_json(out / "audit.json", summary["audit"])
    else:
        summary["audit"] = None
    summary["out"] = str(out)
    write_json(out / "summary.json", summary)
    if report:
        from promedical.bench.report import render_run  # matplotlib: only when a report is written

        with atomic_writer(out / "report.html") as handle:
            handle.write(render_run(summary, rows))
    write_manifest(out, "bench", config.as_dict(), inputs=[bench], counts={"rubrics": len(rubrics),
                   "responses": len(responses), "verdicts": len(verdicts)}, seed=config.seed)
    return summary


def grade_again(specs: Sequence[str], rubrics: Sequence[Rubric], responses: Sequence[Response], config: BenchConfig,
                out: Path, transport: Transport, say: Say = _silent) -> dict[str, Any]:
    """Grade the run's responses with each extra judge; their rows go under ``<out>/judges/<slug>/``, their
    headlines into the summary's ``independent`` block (each extra judge passes the same unscored gate)."""
    found: dict[str, Any] = {}
    for spec in specs:
        folder = out / "judges" / judge_slug(spec)
        folder.mkdir(parents=True, exist_ok=True)
        say(f"judging {len(responses)} responses again with {spec} (independent of the training reward)")
        _, _, summary = grade_into(folder, replace(config, judge=spec), rubrics, responses, transport)
        found[spec] = {"dir": str(folder), **headline(summary)}
    return found


def grade_into(folder: Path, config: BenchConfig, rubrics: Sequence[Rubric], responses: Sequence[Response],
               transport: Transport) -> tuple[list[Verdict], list[dict[str, Any]], dict[str, Any]]:
    """Grade the responses with ``config.judge`` (cache ``folder/judge.sqlite``); write the verdicts, pass the
    unscored gate, score, and write the score rows. Returns verdicts, rows and summary."""
    grader = open_judge(config.judge, transport, cache_path=folder / "judge.sqlite")
    try:
        verdicts = judge_all(rubrics, responses, grader)
    finally:
        grader.close()
    write_jsonl(folder / "verdicts.jsonl", verdicts)
    # No summary for a run that measured almost nothing: the verdicts (with their reasons) stay for inspection.
    check_verdicts(verdicts, config.max_unscored_rate, str(folder / "verdicts.jsonl"))
    rows, summary = evaluate(rubrics, responses, verdicts, config)
    write_jsonl(folder / "scores.jsonl", rows)
    return verdicts, rows, summary
