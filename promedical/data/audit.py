"""Independence audit between a training pool and a bench: how much of the bench the training side already holds.

Four checks, each with counts and a few examples (bench item -> closest training item):

* ``exact``: same normalised text (NFKC, lower case, whitespace collapsed);
* ``ngram``: word 8-gram containment ``|G(b) & G(a)| / min(|G(b)|, |G(a)|) >= 0.5`` (texts shorter than 8 words
  have no 8-grams and are left to the other checks);
* ``embedding``: MiniLM cosine ``>= 0.9`` (max over the training side);
* ``rubric_text``: bench criteria whose text is shared exactly with, or within MiniLM cosine ``>= 0.9`` of, a
  training criterion (only when both sides carry rubrics).

A side is a JSONL file of rubrics or instructions, or ``source:<loader>`` (e.g. ``source:kqa``), or
``source:<loader>=<path>``; K-QA and HealthBench sources bring their physician rubrics.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promedical.data.instruction import Instruction, normalise_text
from promedical.io import UserError, iter_jsonl, load_models
from promedical.rubrics.schema import Rubric

NGRAM = 8
NGRAM_THRESHOLD = 0.5
EMBED_THRESHOLD = 0.9
_WORD = re.compile(r"\w+")


@dataclass
class Side:
    name: str
    items: list[tuple[str, str]]  # (id, text)
    criteria: list[tuple[str, str]]  # (rubric_id/criterion_id, text)


def ngrams(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    words = _WORD.findall(normalise_text(text))
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _from_rubrics(name: str, rubrics: Sequence[Rubric]) -> Side:
    return Side(name, [(r.id, r.instruction) for r in rubrics],
                [(f"{r.id}/{c.id}", c.text) for r in rubrics for c in r.criteria])


def load_side(arg: str) -> Side:
    """Read one side of the audit (see the module docstring for the accepted forms)."""
    if arg.startswith("source:"):
        from promedical.data.sources import SourceSpec, load_source

        name, _, path = arg[len("source:") :].partition("=")
        if name in ("kqa", "healthbench"):
            from promedical.data.sources import resolve_path
            from promedical.rubrics.importers import import_file

            spec = SourceSpec(name=name, path=path or None)
            return _from_rubrics(arg, import_file(name, resolve_path(spec)).rubrics)
        instructions, _ = load_source(SourceSpec(name=name, path=path or None))
        return Side(arg, [(i.id, i.text) for i in instructions], [])
    if not Path(arg).is_file():
        raise UserError(f"audit: {arg}: no such file (or use source:<loader>)")
    first = next((v for _, v, p in iter_jsonl(arg) if p is None), None)
    if isinstance(first, dict) and str(first.get("schema_version", "")).startswith("promedical.rubric/"):
        records, problems = load_models(arg, Rubric)
        if problems:
            raise UserError(str(problems[0]))
        return _from_rubrics(arg, [r for _, r in records])
    inst, problems = load_models(arg, Instruction)
    if problems:
        raise UserError(f"{problems[0]} (expected rubric or instruction records)")
    return Side(arg, [(i.id, i.text) for _, i in inst], [])


def _short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _example(b: tuple[str, str], a: tuple[str, str], score: float) -> dict[str, Any]:
    return {"bench_id": b[0], "bench": _short(b[1]), "train_id": a[0], "train": _short(a[1]), "score": round(score, 4)}


def exact_matches(train: Sequence[tuple[str, str]], bench: Sequence[tuple[str, str]]) -> list[tuple[int, int]]:
    index = {normalise_text(t): i for i, (_, t) in enumerate(train)}
    return [(j, index[normalise_text(t)]) for j, (_, t) in enumerate(bench) if normalise_text(t) in index]


def ngram_matches(
    train: Sequence[tuple[str, str]], bench: Sequence[tuple[str, str]], threshold: float = NGRAM_THRESHOLD
) -> list[tuple[int, int, float]]:
    grams = [ngrams(t) for _, t in train]
    inverted: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, g in enumerate(grams):
        for gram in g:
            inverted[gram].append(i)
    out = []
    for j, (_, text) in enumerate(bench):
        mine = ngrams(text)
        shared: dict[int, int] = defaultdict(int)
        for gram in mine:
            for i in inverted.get(gram, ()):
                shared[i] += 1
        best = max(((c / min(len(mine), len(grams[i])), i) for i, c in shared.items()), default=(0.0, -1))
        if best[0] >= threshold:
            out.append((j, best[1], best[0]))
    return out


def nearest(train_vectors: np.ndarray, bench_vectors: np.ndarray) -> list[tuple[int, int, float]]:
    """For every bench row, its most similar training row and the cosine."""
    out: list[tuple[int, int, float]] = []
    if not len(train_vectors) or not len(bench_vectors):
        return out
    for start in range(0, len(bench_vectors), 1024):
        sims = bench_vectors[start : start + 1024] @ train_vectors.T
        best = sims.argmax(axis=1)
        out.extend((start + offset, int(i), float(sims[offset, i])) for offset, i in enumerate(best))
    return out


def _embedding_section(bench: Sequence[tuple[str, str]], train: Sequence[tuple[str, str]],
                       best: list[tuple[int, int, float]], threshold: float, examples: int) -> dict[str, Any]:
    section = _section(bench, train, [h for h in best if h[2] >= threshold], examples)
    sims = np.array([h[2] for h in best]) if best else np.zeros(0)
    section["nearest_cosine"] = ({"max": round(float(sims.max()), 4), "median": round(float(np.median(sims)), 4)}
                                 if len(sims) else None)
    section["closest"] = [_example(bench[h[0]], train[h[1]], h[2])
                          for h in sorted(best, key=lambda h: -h[2])[:examples]]
    return section


def _section(bench: Sequence[tuple[str, str]], train: Sequence[tuple[str, str]], hits: list[Any],
             examples: int) -> dict[str, Any]:
    flagged = sorted({h[0] for h in hits})
    hits = sorted(hits, key=lambda h: -(h[2] if len(h) > 2 else 1.0))
    return {"flagged": len(flagged), "share": round(len(flagged) / len(bench), 4) if bench else None,
            "examples": [_example(bench[h[0]], train[h[1]], h[2] if len(h) > 2 else 1.0) for h in hits[:examples]]}


def audit(
    train: Side, bench: Side, embed_fn: Callable[[list[str]], np.ndarray] | None = None,
    ngram_threshold: float = NGRAM_THRESHOLD, embed_threshold: float = EMBED_THRESHOLD, examples: int = 3,
) -> dict[str, Any]:
    """The full report (JSON-ready)."""
    if embed_fn is None:
        from promedical.data.embeddings import embed

        embed_fn = embed
    exact = [(j, i, 1.0) for j, i in exact_matches(train.items, bench.items)]
    ngram = ngram_matches(train.items, bench.items, ngram_threshold)
    emb_best = nearest(embed_fn([t for _, t in train.items]), embed_fn([t for _, t in bench.items]))
    emb = [h for h in emb_best if h[2] >= embed_threshold]
    report: dict[str, Any] = {
        "train": {"name": train.name, "items": len(train.items), "criteria": len(train.criteria)},
        "bench": {"name": bench.name, "items": len(bench.items), "criteria": len(bench.criteria)},
        "thresholds": {"ngram_n": NGRAM, "ngram_containment": ngram_threshold, "embedding_cosine": embed_threshold},
        "exact": _section(bench.items, train.items, exact, examples),
        "ngram": _section(bench.items, train.items, ngram, examples),
        "embedding": _embedding_section(bench.items, train.items, emb_best, embed_threshold, examples),
    }
    flagged = {h[0] for h in exact} | {h[0] for h in ngram} | {h[0] for h in emb}
    report["any"] = {"flagged": len(flagged),
                     "share": round(len(flagged) / len(bench.items), 4) if bench.items else None}
    if train.criteria and bench.criteria:
        c_exact = [(j, i, 1.0) for j, i in exact_matches(train.criteria, bench.criteria)]
        c_best = nearest(embed_fn([t for _, t in train.criteria]), embed_fn([t for _, t in bench.criteria]))
        report["rubric_text"] = {
            "exact": _section(bench.criteria, train.criteria, c_exact, examples),
            "embedding": _embedding_section(bench.criteria, train.criteria, c_best, embed_threshold, examples)}
    else:
        report["rubric_text"] = None
    return report
