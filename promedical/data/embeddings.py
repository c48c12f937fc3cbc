"""Sentence embeddings with MiniLM (all-MiniLM-L6-v2): mean-pooled over tokens, L2-normalised, so a dot product
is the cosine similarity. Used by de-duplication, the label classifier and the independence audit.

``token_vectors`` gives the contextual vector of every word piece instead (one hidden layer, unit length), for the
reward model's soft word matching (``promedical.reward.evidence.token_floor``): a long text is read in overlapping
windows of ``MAX_TOKENS`` pieces, so every piece is seen with context and none is cut off.

Loaded offline from the packaged folder (``resolve_model("minilm")``) with transformers ``AutoModel``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

DEFAULT_ENCODER = "minilm"
MAX_TOKENS = 128  # MiniLM was trained at 128 word pieces; longer text is truncated


@lru_cache(maxsize=2)
def _load(name: str) -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    from promedical.models import resolve_model

    path = resolve_model(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    model.eval()
    return tokenizer, model


def embed(
    texts: Sequence[str],
    encoder: str = DEFAULT_ENCODER,
    batch_size: int = 64,
    on_done: Callable[[int], None] | None = None,
) -> np.ndarray:
    """``(len(texts), dim)`` float32 matrix of unit vectors."""
    import torch

    tokenizer, model = _load(encoder)
    out: list[np.ndarray] = []
    # Sorting by length keeps padding small; the original order is restored at the end.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[start : start + batch_size]]
            enc = tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out.append(pooled.float().numpy())
            if on_done:
                on_done(len(batch))
    if not out:
        return np.zeros((0, 384), dtype=np.float32)
    matrix = np.concatenate(out)
    result = np.empty_like(matrix)
    result[np.array(order)] = matrix
    return result


@dataclass(frozen=True, slots=True)
class TokenVectors:
    """One text's word pieces (a piece that continues a word starts with ``##``) and their unit vectors, row by row."""

    pieces: tuple[str, ...]
    vectors: np.ndarray  # (len(pieces), dim) float32


TOKEN_LAYER = 4  # hidden layer of MiniLM's six read for token vectors (docs/benchmarks.md: layers 3-6 compared)


def token_vectors(
    texts: Sequence[str],
    encoder: str = DEFAULT_ENCODER,
    layer: int = TOKEN_LAYER,
    window: int = MAX_TOKENS,
    batch_size: int = 32,
) -> list[TokenVectors]:
    """Per text, every word piece's contextual vector from hidden layer ``layer``. A text longer than ``window``
    pieces is read in windows that overlap by half; a piece seen twice keeps both vectors (callers take maxima)."""
    import torch

    tokenizer, model = _load(encoder)
    inner = window - 2  # room for [CLS] and [SEP]
    step = max(1, inner // 2)
    chunks: list[tuple[int, list[int]]] = []  # (text index, piece ids)
    for i, text in enumerate(texts):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        starts = range(0, max(1, len(ids) - inner + step), step) if len(ids) > inner else [0]
        chunks.extend((i, ids[s : s + inner]) for s in starts)
    read: dict[int, np.ndarray] = {}
    order = sorted(range(len(chunks)), key=lambda k: len(chunks[k][1]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [chunks[k] for k in order[start : start + batch_size]]
            width = max(len(ids) for _, ids in batch) + 2
            input_ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (_, ids) in enumerate(batch):
                full = [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]
                input_ids[row, : len(full)] = torch.tensor(full)
                mask[row, : len(full)] = 1
            hidden = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states[layer]
            hidden = torch.nn.functional.normalize(hidden, p=2, dim=-1).float().numpy()
            for row, k in enumerate(order[start : start + batch_size]):
                read[k] = hidden[row, 1 : 1 + len(chunks[k][1])]
    pieces: list[list[str]] = [[] for _ in texts]
    parts: list[list[np.ndarray]] = [[] for _ in texts]
    for k, (i, ids) in enumerate(chunks):  # text order, window by window
        parts[i].append(read[k])
        pieces[i].extend(tokenizer.convert_ids_to_tokens(ids))
    dim = model.config.hidden_size
    return [TokenVectors(tuple(p), np.concatenate(v) if v else np.zeros((0, dim), dtype=np.float32))
            for p, v in zip(pieces, parts, strict=True)]
