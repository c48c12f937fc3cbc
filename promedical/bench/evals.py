"""The runs behind ``bench mcq`` (an external multiple-choice benchmark) and ``bench judge-eval`` (a judge or
reward model against expert labels, paper format): options checked before anything is written, then the outputs.
The command line parses the options and prints what these return.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promedical.bench.judge_eval import judge_eval, reference_labels
from promedical.bench.mcq import DATASETS, MCQConfig, load_dataset, subsample
from promedical.bench.mcq import run_mcq as answer_all
from promedical.files import UserError, write_json, write_jsonl
from promedical.io import read_responses, read_rubrics, read_verdicts
from promedical.judge.protocol import load_judge
from promedical.judge.run import Bar, no_bar
from promedical.llm.spec import load_generator
from promedical.runs import write_manifest

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MCQ_FOLDERS = {"medqa": "medqa_usmle_4opt", "pubmedqa": "pubmedqa", "mmlu": "mmlu_medical"}


def shared_data() -> Path:
    """The shared data folder (``PROMEDICAL_SHARED_DATA``, else ``shared/data`` beside the checkout)."""
    return Path(os.environ.get("PROMEDICAL_SHARED_DATA", str(DEFAULT_SHARED)))


def mcq_folder(dataset: str) -> Path:
    """Where a benchmark's files are by default: its folder in the shared data."""
    return shared_data() / MCQ_FOLDERS[dataset]


def run_mcq_bench(config: MCQConfig, policy: str, out: Path, timeout: float = 120.0,
                  bar: Bar = no_bar) -> dict[str, Any]:
    """Answer the benchmark's fixed-seed slice with the policy; write predictions, summary and manifest into
    ``out`` and return the summary (``UserError`` for bad options before anything is written)."""
    if config.dataset not in DATASETS:
        raise UserError(f"-: -: -: --dataset: {config.dataset!r} is not one of {', '.join(DATASETS)}")
    if config.mode not in ("direct", "cot"):
        raise UserError(f"-: -: -: --mode: {config.mode!r} is not direct or cot")
    if config.max_tokens < 1:
        raise UserError("-: -: -: --max-tokens: must be >= 1")
    folder = Path(config.data)
    items = subsample(load_dataset(config.dataset, folder), config.limit, config.seed)
    out.mkdir(parents=True, exist_ok=True)
    generator = load_generator(policy, timeout=timeout, cache_path=out / "generations.sqlite")
    try:
        with bar(f"{config.dataset} ({config.mode})") as hook:
            if hook is not None:
                hook.add_total(len(items))
            rows, summary = answer_all(items, generator, config, on_done=hook.advance if hook is not None else None)
    finally:
        generator.close()
    write_jsonl(out / "predictions.jsonl", rows)
    summary["out"] = str(out)
    write_json(out / "summary.json", summary)
    write_manifest(out, "mcq", {**config.as_dict(), "policy": policy}, inputs=sorted(folder.glob("*")) if
                   folder.is_dir() else [folder], counts={"items": len(rows)}, seed=config.seed)
    return summary


def run_judge_eval(rubrics: Sequence[Path], labels: Path, verdicts: Path | None = None, judge: str | None = None,
                   responses: Path | None = None, out: Path | None = None, n_resamples: int = 2000, seed: int = 0,
                   timeout: float = 120.0, reference: str | None = None) -> dict[str, Any]:
    """Evaluate one judge's verdicts (``verdicts``), or a judge spec grading the labelled responses now
    (``judge`` + ``responses``), against the reference expert labels; with ``out``, ``judge_eval.json`` (and the
    verdicts graded now) there. ``UserError`` for bad options before anything is written."""
    if (verdicts is None) == (judge is None):
        raise UserError("-: -: -: --verdicts / --judge: give exactly one of them")
    rubric_list = read_rubrics(list(rubrics))
    label_verdicts = read_verdicts(labels)
    try:
        _, counted = reference_labels(label_verdicts, reference)
    except ValueError as exc:
        raise UserError(f"{labels}: -: -: --reference: {exc}") from None
    if verdicts is not None:
        judged = read_verdicts(verdicts)
    else:
        if responses is None:
            raise UserError("-: -: -: --responses: needed with --judge")
        by_id = {r.id: r for r in rubric_list}
        keys = {v.response_id for v in counted}  # grade only the responses the reference labels
        todo = [(by_id[x.rubric_id], x) for x in read_responses(responses) if x.id in keys and x.rubric_id in by_id]
        grader = load_judge(str(judge), timeout=timeout, cache_path=(out / "judge.sqlite") if out else None)
        try:
            judged = list(grader.grade_many(todo))
        finally:
            grader.close()
        if out is not None:
            write_jsonl(out / "verdicts.jsonl", judged)
    try:
        report = judge_eval(rubric_list, judged, label_verdicts, n_resamples=n_resamples, seed=seed,
                            reference=reference)
    except ValueError as exc:  # the reference was checked above: what is left is a verdict file of several judges
        raise UserError(f"{verdicts or judge}: -: -: judge: {exc}") from None
    if out is not None:
        write_json(out / "judge_eval.json", report)
    return report
