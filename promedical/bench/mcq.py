"""External multiple-choice benchmarks: MedQA (4 options), PubMedQA (PQA-L test ids), MMLU medical subjects.

Loaders read the public files as published (see ``../shared/data``), prompts are versioned constants (never edited
in place), answers go through ``promedical.bench.extract``, and the summary reports the extraction failure rate next
to two labelled accuracies: on extracted answers only, and counting failures (and generation errors) as wrong.
Generation goes through any ``Generator`` (its own cache makes a run resumable).
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from promedical.bench.extract import extract_label, extract_letter
from promedical.io import UserError, iter_jsonl
from promedical.llm.protocol import ChatMessage, Completion, GenerationParams, Generator, Request
from promedical.stats import bootstrap_mean

Dataset = Literal["medqa", "pubmedqa", "mmlu"]
Mode = Literal["direct", "cot"]
DATASETS: tuple[str, ...] = ("medqa", "pubmedqa", "mmlu")
MMLU_MEDICAL = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics",
                "nutrition", "professional_medicine", "virology")
PUBMEDQA_LABELS = ("yes", "no", "maybe")

# Prompt templates: versioned constants. Change one by adding a new version, never by editing it.
PROMPTS: dict[str, str] = {
    "mcq-direct/1": (
        "Answer the following multiple-choice medical question. Reply with the letter of the single best option "
        "only, as \"Answer: X\".\n\n{question}\n\n{options}\n\nAnswer:"
    ),
    "mcq-cot/1": (
        "Answer the following multiple-choice medical question. Think step by step, briefly, then finish with a "
        "last line of the form \"Answer: X\" where X is the letter of the single best option.\n\n{question}\n\n"
        "{options}"
    ),
    "pubmedqa-direct/1": (
        "Read the abstract and answer the research question with yes, no or maybe. Reply with one word only, as "
        "\"Answer: yes\", \"Answer: no\" or \"Answer: maybe\".\n\nAbstract: {context}\n\nQuestion: {question}\n\n"
        "Answer:"
    ),
    "pubmedqa-cot/1": (
        "Read the abstract and answer the research question. Think step by step, briefly, then finish with a last "
        "line \"Answer: yes\", \"Answer: no\" or \"Answer: maybe\".\n\nAbstract: {context}\n\nQuestion: {question}"
    ),
}
DEFAULT_PROMPT = {("mcq", "direct"): "mcq-direct/1", ("mcq", "cot"): "mcq-cot/1",
                  ("pubmedqa", "direct"): "pubmedqa-direct/1", ("pubmedqa", "cot"): "pubmedqa-cot/1"}


@dataclass(frozen=True, slots=True)
class MCQItem:
    id: str
    dataset: str
    question: str
    options: dict[str, str]  # key -> text; PubMedQA: yes/no/maybe -> same word
    answer: str  # the gold key
    context: str | None = None
    subject: str | None = None


def _need(path: Path) -> Path:
    if not path.exists():
        raise UserError(f"{path}: -: -: no such file")
    return path


def load_medqa(root: str | Path) -> list[MCQItem]:
    """MedQA US 4-option test (``phrases_no_exclude_test.jsonl``: question, options A-D, answer_idx)."""
    folder = Path(root)
    path = _need(folder / "phrases_no_exclude_test.jsonl" if folder.is_dir() else folder)
    items: list[MCQItem] = []
    for number, row, problem in iter_jsonl(path):
        if problem is not None:
            raise UserError(str(problem))
        if not isinstance(row, dict):
            raise UserError(f"{path}:{number}: -: -: not a MedQA row (not a JSON object)")
        try:
            options = {str(k): str(v) for k, v in row["options"].items()}
            answer = str(row["answer_idx"])
            question = str(row["question"])
        except (KeyError, AttributeError, TypeError) as exc:
            raise UserError(f"{path}:{number}: -: -: not a MedQA row ({type(exc).__name__}: {exc})") from None
        if answer not in options:
            raise UserError(f"{path}:{number}: -: answer_idx: {answer!r} is not an option")
        items.append(MCQItem(f"medqa-{number}", "medqa", question, options, answer,
                             subject=str(row.get("meta_info") or "") or None))
    return items


def load_pubmedqa(root: str | Path) -> list[MCQItem]:
    """PubMedQA PQA-L, restricted to the official 500 test ids (``test_ground_truth.json``)."""
    folder = Path(root)
    data = json.loads(_need(folder / "ori_pqal.json").read_text(encoding="utf-8"))
    truth = json.loads(_need(folder / "test_ground_truth.json").read_text(encoding="utf-8"))
    items = []
    for pmid, label in truth.items():
        row = data.get(pmid)
        if row is None:
            raise UserError(f"{folder / 'ori_pqal.json'}: -: {pmid}: -: test id missing from ori_pqal.json")
        if label not in PUBMEDQA_LABELS:
            raise UserError(f"{folder / 'test_ground_truth.json'}: -: {pmid}: label: {label!r}")
        context = " ".join(str(c) for c in row.get("CONTEXTS", []))
        items.append(MCQItem(f"pubmedqa-{pmid}", "pubmedqa", str(row["QUESTION"]),
                             {k: k for k in PUBMEDQA_LABELS}, label, context=context))
    return items


def load_mmlu(root: str | Path, subjects: Sequence[str] = MMLU_MEDICAL, split: str = "test") -> list[MCQItem]:
    """MMLU medical subjects: headerless CSV rows ``question, A, B, C, D, answer``."""
    folder = Path(root)
    items = []
    for subject in subjects:
        path = _need(folder / f"{subject}_{split}.csv")
        with open(path, encoding="utf-8", newline="") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if len(row) != 6 or row[5] not in "ABCD" or not row[5]:
                    raise UserError(f"{path}:{number}: -: -: expected question, A, B, C, D, answer letter")
                options = dict(zip("ABCD", row[1:5], strict=True))
                items.append(MCQItem(f"mmlu-{subject}-{number}", "mmlu", row[0], options, row[5], subject=subject))
    return items


def load_dataset(name: str, root: str | Path) -> list[MCQItem]:
    if name == "medqa":
        return load_medqa(root)
    if name == "pubmedqa":
        return load_pubmedqa(root)
    if name == "mmlu":
        return load_mmlu(root)
    raise UserError(f"-: -: -: dataset: {name!r} is not one of {', '.join(DATASETS)}")


def subsample(items: Sequence[MCQItem], limit: int | None, seed: int) -> list[MCQItem]:
    """A fixed-seed subsample (order kept as in the source), or everything when ``limit`` is None."""
    if limit is None or limit >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in chosen]


def prompt_version(item: MCQItem, mode: Mode) -> str:
    return DEFAULT_PROMPT[("pubmedqa" if item.dataset == "pubmedqa" else "mcq", mode)]


def render(item: MCQItem, version: str) -> list[ChatMessage]:
    options = "\n".join(f"{k}. {v}" for k, v in item.options.items())
    text = PROMPTS[version].format(question=item.question.strip(), options=options, context=item.context or "")
    return [{"role": "user", "content": text}]


def grade(item: MCQItem, completion: Completion) -> dict[str, Any]:
    """One prediction row: extracted answer, whether it is right (None when nothing was extracted), and why."""
    if not completion.ok:
        return {"id": item.id, "gold": item.answer, "pred": None, "correct": None, "method": None,
                "failure": f"generation failed: {completion.error}", "generation_error": True,
                "subject": item.subject, "text": completion.text}
    extraction = (extract_label(completion.text, PUBMEDQA_LABELS) if item.dataset == "pubmedqa"
                  else extract_letter(completion.text, item.options))
    correct = None if extraction.answer is None else extraction.answer == item.answer
    return {"id": item.id, "gold": item.answer, "pred": extraction.answer, "correct": correct,
            "method": extraction.method, "failure": extraction.reason, "generation_error": False,
            "subject": item.subject, "text": completion.text}


def summarise(rows: Sequence[dict[str, Any]], n_resamples: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Accuracy (extracted only / failures as wrong), failure rate and chance level, each with a bootstrap CI."""
    correct = np.array([1.0 if r["correct"] else 0.0 for r in rows])
    extracted = np.array([r["correct"] is not None for r in rows])
    failed = (~extracted).astype(float)
    on_extracted = bootstrap_mean(correct[extracted], n_resamples=n_resamples, seed=seed)
    strict = bootstrap_mean(correct, n_resamples=n_resamples, seed=seed + 1)
    failure = bootstrap_mean(failed, n_resamples=n_resamples, seed=seed + 2)
    methods: dict[str, int] = {}
    for r in rows:
        key = r["method"] or ("generation-error" if r["generation_error"] else "failed")
        methods[key] = methods.get(key, 0) + 1
    return {
        "n": len(rows),
        "extracted": int(extracted.sum()),
        "accuracy_extracted": on_extracted.value,
        "accuracy_extracted_ci": on_extracted.ci,
        "accuracy_failures_as_wrong": strict.value,
        "accuracy_failures_as_wrong_ci": strict.ci,
        "extraction_failure_rate": failure.value,
        "extraction_failure_rate_ci": failure.ci,
        "generation_errors": sum(1 for r in rows if r["generation_error"]),
        "pred_distribution": _distribution(rows),
        "methods": methods,
    }


@dataclass(frozen=True, slots=True)
class MCQConfig:
    dataset: str
    data: str
    mode: Mode = "direct"
    limit: int | None = 150
    seed: int = 0
    max_tokens: int = 16
    temperature: float = 0.0
    n_resamples: int = 10_000

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_mcq(
    items: Sequence[MCQItem],
    generator: Generator,
    config: MCQConfig,
    on_done: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Generate an answer for every item, extract and grade it, and summarise with CIs."""
    params = GenerationParams(temperature=config.temperature, max_tokens=config.max_tokens, seed=config.seed)
    versions = [prompt_version(item, config.mode) for item in items]
    requests = [Request(messages=render(item, v), params=params) for item, v in zip(items, versions, strict=True)]
    completions = generator.generate(requests, on_done=on_done)
    rows = [{**grade(item, c), "prompt_version": v} for item, c, v in zip(items, completions, versions, strict=True)]
    summary = summarise(rows, n_resamples=config.n_resamples, seed=config.seed)
    summary.update({"dataset": config.dataset, "mode": config.mode, "prompt_versions": sorted(set(versions)),
                    "policy": generator.spec, "max_tokens": config.max_tokens, "temperature": config.temperature,
                    "seed": config.seed, "chance": _chance(items)})
    return rows, summary


def _distribution(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How often each key was predicted (a model that always says "A" shows up here)."""
    keys = sorted({str(r["gold"]) for r in rows} | {str(r["pred"]) for r in rows if r["pred"] is not None})
    return {k: sum(1 for r in rows if r["pred"] == k) for k in keys}


def _chance(items: Sequence[MCQItem]) -> float | None:
    return float(np.mean([1.0 / len(i.options) for i in items])) if items else None
