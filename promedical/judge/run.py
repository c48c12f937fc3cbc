"""Judge runs: grade responses against their rubrics (``promedical judge run``) and adjudicate response pairs
(``promedical judge pairwise``), with the inputs checked, the outputs, manifest and unscored gate written.

Both stream every model answer into a SQLite cache as it arrives (default ``<out dir>/judge-cache.sqlite``), so a
killed run resumes on re-run with calls only for what is missing; outputs are written atomically at the end together
with the resolved config and a run manifest. The command line only parses options and prints the summary returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promedical.files import UserError
from promedical.hashing import content_hash
from promedical.io import load_models, read_rubrics, write_jsonl
from promedical.judge.pairwise import PairwiseConfig, PairwiseJudge, make_pairs, summarise_pairs
from promedical.judge.pointwise import MODES, PointwiseConfig
from promedical.judge.prompts import GROUPED_TEMPLATES
from promedical.judge.protocol import Judge, load_judge
from promedical.judge.summary import summarise_verdicts
from promedical.judge.usage import ProgressHook, Usage
from promedical.llm.spec import load_generator, parse_spec
from promedical.rubrics.records import Response
from promedical.rubrics.schema import Rubric
from promedical.runs import write_manifest
from promedical.unscored import check_rate, check_verdicts, validate_max_rate

# A progress bar factory: ``with bar("judging") as hook`` yields the hook the judge drives (None: no bar).
Bar = Callable[[str], AbstractContextManager[ProgressHook | None]]


@contextmanager
def no_bar(description: str) -> Iterator[ProgressHook | None]:
    yield None


@dataclass(frozen=True, slots=True)
class Transport:
    """How a judge reaches its model: what ``judge run`` and ``judge pairwise`` share."""

    concurrency: int = 4
    timeout: float = 120.0
    retries: int = 3
    reasks: int = 2
    max_tokens: int = 1024
    seed: int = 0
    use_schema: bool = True
    cache: Path | None = None  # None: <out dir>/judge-cache.sqlite
    no_cache: bool = False

    def check(self) -> None:
        if (self.timeout <= 0 or self.retries < 0 or self.concurrency < 1 or self.max_tokens < 1
                or self.reasks < 0):
            raise UserError("options: need --timeout > 0, --retries >= 0, --concurrency >= 1, --max-tokens >= 1, "
                            "--reasks >= 0")

    def cache_path(self, out: Path) -> Path | None:
        if self.no_cache:
            return None
        # Beside the output by default: re-running into the same folder resumes from the answers already paid for.
        return self.cache if self.cache is not None else out.parent / "judge-cache.sqlite"

    def resolved(self) -> dict[str, Any]:
        return {"timeout": self.timeout, "retries": self.retries, "concurrency": self.concurrency}


def open_judge(spec: str, transport: Transport, cache_path: Path | None,
               config: PointwiseConfig | None = None) -> Judge:
    """``load_judge`` with the transport's timeout, retries and concurrency (every run that grades goes here)."""
    return load_judge(spec, config=config, timeout=transport.timeout, retries=transport.retries,
                      concurrency=transport.concurrency, cache_path=cache_path)


def latest_rubrics(paths: list[Path]) -> dict[str, Rubric]:
    """Rubrics by id, the highest version of each (a file may hold a rubric's whole review history)."""
    latest: dict[str, Rubric] = {}
    for rubric in read_rubrics(paths):
        if rubric.id not in latest or rubric.version > latest[rubric.id].version:
            latest[rubric.id] = rubric
    return latest


def read_judged_responses(path: Path, rubrics: dict[str, Rubric]) -> list[Response]:
    """The responses to judge: valid records, each answering one of ``rubrics``, ids unique, at least one."""
    records, problems = load_models(path, Response)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise UserError(f"{problems[0]}{more}")
    seen: set[str] = set()
    for line, response in records:
        if response.rubric_id not in rubrics:
            raise UserError(f"{path}:{line}: {response.id}: rubric_id: no rubric {response.rubric_id!r} in the "
                            "rubric file(s)")
        if response.id in seen:
            raise UserError(f"{path}:{line}: {response.id}: id: duplicate response id")
        seen.add(response.id)
    if not records:
        raise UserError(f"{path}:0: -: -: no responses")
    return [r for _, r in records]


def run_pointwise(
    rubrics: list[Path], responses: Path, judge_spec: str, out: Path, transport: Transport,
    mode: str = "grouped", template: str = "", limit: int | None = None, max_unscored_rate: float = 0.2,
    bar: Bar = no_bar,
) -> dict[str, Any]:
    """Grade every response against every criterion of its rubric; write one verdict per pair and the manifest.

    Returns the summary. Raises ``UserError`` for bad options or inputs, and after writing (so the reasons stay
    readable) when more than ``max_unscored_rate`` of the verdicts are unscored.
    """
    validate_max_rate(max_unscored_rate)
    if limit is not None and limit < 1:
        raise UserError(f"--limit: must be >= 1, got {limit}")
    if mode not in MODES:
        raise UserError(f"--mode: {mode!r} is not one of {', '.join(MODES)}")
    if template not in GROUPED_TEMPLATES:
        raise UserError(f"--template: {template!r} is not one of {', '.join(GROUPED_TEMPLATES)}")
    transport.check()
    rubric_map = latest_rubrics(rubrics)
    items = [(rubric_map[r.rubric_id], r) for r in read_judged_responses(responses, rubric_map)]
    if limit is not None and limit < len(items):
        # A seeded hash, not the file's head: the slice is the same whatever order the file is in.
        keep = {r.id for _, r in sorted(items, key=lambda item: content_hash([transport.seed, item[1].id]))[:limit]}
        items = [item for item in items if item[1].id in keep]
    config = PointwiseConfig(mode=mode, max_tokens=transport.max_tokens, seed=transport.seed,  # type: ignore[arg-type]
                             reasks=transport.reasks, use_schema=transport.use_schema, grouped_template=template)
    cache_path = transport.cache_path(out)
    judge = open_judge(judge_spec, transport, cache_path, config)
    try:
        if judge.usage is not None:
            with bar("judging") as hook:
                verdicts = judge.grade_many(items, progress=hook)
        else:  # the lexical and reward-model judges: no model calls to count
            verdicts = judge.grade_many(items)
    finally:
        judge.close()
    usage = judge.usage
    write_jsonl(out, verdicts)
    # Judges without a language model behind them (lexical, reward model) have no prompt, mode or completion cache.
    template_version = judge.template_version
    summary: dict[str, Any] = {**summarise_verdicts(verdicts, usage or Usage()), "judge": judge.spec,
                               "template_version": template_version, "mode": mode if usage else None,
                               "out": str(out), "cache": str(cache_path) if cache_path and usage else None}
    options = config.as_dict() if usage else {"template_version": template_version}
    resolved = {"judge": judge.spec, "rubrics": [str(p) for p in rubrics], "responses": str(responses),
                "limit": limit, **options, **transport.resolved(), "cache": summary["cache"],
                "max_unscored_rate": max_unscored_rate}
    write_manifest(out.parent, "judge", resolved, inputs=[*rubrics, responses], counts=summary, seed=transport.seed)
    check_verdicts(verdicts, max_unscored_rate, str(out))  # after writing: the reasons stay readable
    return summary


def run_pairwise(
    rubrics: list[Path], responses: Path, judge_spec: str, out: Path, transport: Transport,
    max_unscored_rate: float = 0.2, bar: Bar = no_bar,
) -> dict[str, Any]:
    """Compare every pair of responses to the same rubric under its criteria, in both orders; write the pair
    outcomes and the manifest, and return the summary (``UserError`` as for ``run_pointwise``)."""
    validate_max_rate(max_unscored_rate)
    transport.check()
    if not parse_spec(judge_spec).generates_text:
        raise UserError(f"--judge: {judge_spec!r}: pairwise adjudication needs an LLM judge (openai: or hf:)")
    rubric_map = latest_rubrics(rubrics)
    pairs = make_pairs(rubric_map, read_judged_responses(responses, rubric_map))
    if not pairs:
        raise UserError(f"{responses}:0: -: rubric_id: no rubric has two or more responses to compare")
    config = PairwiseConfig(max_tokens=transport.max_tokens, seed=transport.seed, reasks=transport.reasks,
                            use_schema=transport.use_schema)
    cache_path = transport.cache_path(out)
    generator = load_generator(judge_spec, timeout=transport.timeout, retries=transport.retries,
                               concurrency=transport.concurrency, cache_path=cache_path)
    judge = PairwiseJudge(generator, config)
    try:
        with bar("comparing") as hook:
            records = judge.compare(pairs, progress=hook)
    finally:
        judge.close()
    write_jsonl(out, records)
    summary = {**summarise_pairs(records), **judge.usage.as_dict(), "judge": judge.spec,
               "template_version": config.as_dict()["template_version"], "out": str(out),
               "cache": str(cache_path) if cache_path else None}
    resolved = {"judge": judge.spec, "rubrics": [str(p) for p in rubrics], "responses": str(responses),
                **config.as_dict(), **transport.resolved(), "cache": summary["cache"],
                "max_unscored_rate": max_unscored_rate}
    write_manifest(out.parent, "judge-pairwise", resolved, inputs=[*rubrics, responses], counts=summary,
                   seed=transport.seed)
    check_rate(summary["unscored"], summary["pairs"], max_unscored_rate, str(out), what="pair outcomes")
    return summary
