"""Semantic de-duplication: drop an instruction whose MiniLM embedding is within a cosine threshold of an earlier one.

Rule (stated in docs/data_pipeline.md): instructions are visited in input order (the order of the sources in the
config, then file order); an exact repeat (same normalised-text id) is dropped first; otherwise the instruction
is dropped when its cosine similarity to any instruction already kept is ``>= threshold`` (default 0.93), and the
report names the kept instruction it duplicated. The first occurrence always survives, so the rule is stable.
0.93 rather than 0.9: MedQuAD's templated questions about different diseases ("What are the symptoms of chronic
myelogenous leukemia?" vs "... acute myeloid leukemia?") reach 0.90-0.92 with MiniLM and are not duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promedical.data.instruction import Instruction

DEFAULT_THRESHOLD = 0.93


@dataclass(frozen=True, slots=True)
class Dropped:
    id: str
    source: str
    duplicate_of: str
    reason: str  # "exact" or "semantic"
    similarity: float

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "duplicate_of": self.duplicate_of, "reason": self.reason,
                "similarity": round(self.similarity, 4)}


@dataclass
class DedupResult:
    kept: list[Instruction]
    dropped: list[Dropped] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"kept": len(self.kept), "dropped_exact": sum(d.reason == "exact" for d in self.dropped),
                "dropped_semantic": sum(d.reason == "semantic" for d in self.dropped)}


def greedy_keep_first(vectors: np.ndarray, threshold: float, chunk: int = 512) -> list[tuple[int, int, float]]:
    """For unit vectors in order, ``(index, kept index it duplicates or -1, similarity)`` per row.

    Pure: row ``i`` is a duplicate when ``max_j<i, j kept cos(i, j) >= threshold``.
    """
    out: list[tuple[int, int, float]] = []
    kept: list[int] = []
    for start in range(0, len(vectors), chunk):
        block = vectors[start : start + chunk]
        prior = block @ vectors[kept].T if kept else np.zeros((len(block), 0), dtype=vectors.dtype)
        inner = block @ block.T
        block_kept: list[int] = []
        for offset in range(len(block)):
            best_j, best = -1, -1.0
            if prior.shape[1]:
                j = int(np.argmax(prior[offset]))
                best_j, best = kept[j], float(prior[offset, j])
            for k in block_kept:
                sim = float(inner[offset, k - start])
                if sim > best:
                    best_j, best = k, sim
            index = start + offset
            if best >= threshold:
                out.append((index, best_j, best))
            else:
                out.append((index, -1, best))
                block_kept.append(index)
        kept.extend(block_kept)
    return out


def deduplicate(
    instructions: Sequence[Instruction],
    threshold: float = DEFAULT_THRESHOLD,
    embed_fn: Callable[[list[str]], np.ndarray] | None = None,
) -> DedupResult:
    """Exact repeats, then semantic near-duplicates (``embed_fn`` defaults to MiniLM)."""
    if not 0 < threshold <= 1:
        raise ValueError(f"dedup threshold must be in (0, 1], got {threshold}")
    unique: list[Instruction] = []
    dropped: list[Dropped] = []
    seen: dict[str, str] = {}
    for item in instructions:
        if item.id in seen:
            dropped.append(Dropped(item.id, item.source, seen[item.id], "exact", 1.0))
            continue
        seen[item.id] = item.id
        unique.append(item)
    if not unique:
        return DedupResult([], dropped)
    if embed_fn is None:
        from promedical.data.embeddings import embed

        embed_fn = embed
    vectors = embed_fn([i.text for i in unique])
    kept: list[Instruction] = []
    for index, duplicate_of, similarity in greedy_keep_first(vectors, threshold):
        if duplicate_of < 0:
            kept.append(unique[index])
        else:
            item = unique[index]
            dropped.append(Dropped(item.id, item.source, unique[duplicate_of].id, "semantic", similarity))
    return DedupResult(kept, dropped)
