"""Sentence embeddings with MiniLM (all-MiniLM-L6-v2): mean-pooled over tokens, L2-normalised, so a dot product
is the cosine similarity. Used by de-duplication, the label classifier and the independence audit.

Loaded offline from the packaged folder (``resolve_model("minilm")``) with transformers ``AutoModel``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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
