"""The evidence head (``evidence/1``): a logistic model over criterion-evidence features and the encoder's score.

The encoder alone, fine-tuned on a few hundred constructed rows on 2 CPU cores, learns little more than word
overlap; a handful of explicit evidence features (``promedical.reward.evidence``) already rank physician labels
better. The head combines both and is fitted on physician labels, so the reward model's score is the log-odds
that a physician would say the response states the criterion (for a prohibited criterion: that it does not).

It is saved as ``evidence.json`` beside the checkpoint's weights (the card names its scheme); a checkpoint without
it scores with the encoder alone, as before. ``apply`` runs inside ``reward.score.score_groups``, so the judge, the
scorer, ``rm eval`` and the GRPO reward all see the same score.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from promedical.data.embeddings import TOKEN_LAYER, TokenVectors
from promedical.io import UserError, write_json
from promedical.reward.evidence import (
    EXPLICIT_FEATURES,
    IMPLICIT_FEATURES,
    IdfTable,
    add_interactions,
    criterion_content,
    criterion_kinds,
    lexical_features,
    presence,
    sentences,
    similarity_features,
    token_floor,
    with_interactions,
)
from promedical.reward.inputs import Group

HEAD_FILE = "evidence.json"
HEAD_SCHEME: Literal["evidence/1"] = "evidence/1"
EMBEDDER = "minilm"


class EvidenceHead(BaseModel):
    """Standardised features -> logistic regression; ``fit`` records what it was fitted on."""

    model_config = ConfigDict(extra="forbid")

    scheme: Literal["evidence/1"] = HEAD_SCHEME
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    idf: IdfTable
    embedder: str = EMBEDDER
    token_layer: int = TOKEN_LAYER  # the embedder's hidden layer ``token_floor`` reads
    fit: dict[str, object] = Field(default_factory=dict)

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.asarray(z @ np.asarray(self.coef) + self.intercept, dtype=float)


def feature_names(explicit: bool, interactions: Sequence[str] = ()) -> tuple[str, ...]:
    """The head's columns: the template's base features, and with ``interactions`` (criterion kinds) an indicator
    per kind and each base feature times it."""
    return with_interactions(EXPLICIT_FEATURES if explicit else IMPLICIT_FEATURES, interactions)


def feature_matrix(names: Sequence[str], idf: IdfTable, groups: Sequence[Group],
                   encoder_scores: Sequence[Sequence[float]], embedder: str = EMBEDDER,
                   token_layer: int = TOKEN_LAYER) -> np.ndarray:
    """One row per (group, criterion), in order; columns ``names``."""
    rows: list[dict[str, float]] = []
    similarity = any(n.startswith("cos_") for n in names)
    vectors: dict[str, np.ndarray] = {}
    tokens: dict[str, TokenVectors] = {}
    if "token_floor" in names:
        from promedical.data.embeddings import token_vectors

        texts = sorted({g.response for g in groups} | {criterion_content(c.text) for g in groups for c in g.criteria})
        tokens = dict(zip(texts, token_vectors(texts, encoder=embedder, layer=token_layer), strict=True))
    if similarity:
        from promedical.data.embeddings import embed

        texts = sorted({s for g in groups for s in sentences(g.response)}
                       | {criterion_content(c.text) for g in groups for c in g.criteria})
        vectors = dict(zip(texts, embed(texts, encoder=embedder), strict=True))
    for g, scores in zip(groups, encoder_scores, strict=True):
        response_vectors = np.stack([vectors[s] for s in sentences(g.response)]) if similarity else None
        for c, value in zip(g.criteria, scores, strict=True):
            content = criterion_content(c.text)
            row = lexical_features(g.instruction, g.response, content, idf)
            if response_vectors is not None:
                row.update(similarity_features(response_vectors, vectors[content]))
            if tokens:
                row["token_floor"] = token_floor(tokens[content], tokens[g.response])
            row["encoder"] = presence(value, c.polarity)
            row.update(criterion_kinds(c.text, c.tier))
            add_interactions(row, names)
            rows.append(row)
    return np.array([[r[n] for n in names] for r in rows], dtype=float).reshape(len(rows), len(names))


def apply(head: EvidenceHead, groups: Sequence[Group], encoder_scores: Sequence[Sequence[float]]) -> list[list[float]]:
    """Per group, the head's score per criterion: presence log-odds, negated for prohibited criteria (so that, as
    for the encoder, a higher score always means "satisfied")."""
    if not any(g.criteria for g in groups):
        return [[] for _ in groups]
    flat = head.logits(feature_matrix(head.features, head.idf, groups, encoder_scores, head.embedder,
                                          head.token_layer))
    out, at = [], 0
    for g in groups:
        part = flat[at : at + len(g.criteria)]
        at += len(g.criteria)
        out.append([float(-v if c.polarity == "prohibited" else v) for c, v in zip(g.criteria, part, strict=True)])
    return out


def fit_logistic(x: np.ndarray, present: np.ndarray, c: float = 1.0) -> tuple[list[float], list[float], list[float],
                                                                               float]:
    """(mean, scale, coef, intercept) of an L2 logistic regression on standardised ``x``."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant column carries nothing; keep it finite
    model = LogisticRegression(C=c, max_iter=1000).fit((x - mean) / scale, present.astype(int))
    return mean.tolist(), scale.tolist(), model.coef_[0].tolist(), float(model.intercept_[0])


def _folds(present: np.ndarray, groups: Sequence[str], folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold

    n = min(folds, len(set(groups)))
    if n < 2:
        raise UserError(f"evidence head: {len(set(groups))} labelled question(s): cross-fitting needs at least 2")
    return list(GroupKFold(n_splits=n).split(np.zeros((len(present), 1)), present, groups=list(groups)))


def out_of_fold(x: np.ndarray, present: np.ndarray, groups: Sequence[str], folds: int, c: float = 1.0) -> np.ndarray:
    """Cross-fitted log-odds: each item's from a head fitted without any item of its question (``groups``)."""
    out = np.zeros(len(present))
    for train, test in _folds(present, groups, folds):
        if len(set(present[train].tolist())) < 2:
            raise UserError("evidence head: a fold's training labels are all one class; add labelled questions")
        mean, scale, coef, intercept = fit_logistic(x[train], present[train], c)
        out[test] = ((x[test] - np.asarray(mean)) / np.asarray(scale)) @ np.asarray(coef) + intercept
    return out


def recall_threshold(scores: np.ndarray, violated: np.ndarray, recall: float) -> float:
    """The highest log-odds threshold that flags (``score >= threshold``) at least ``recall`` of the violations
    among ``scores``; 0.0 (p = 0.5) when there is none."""
    hits = np.sort(np.asarray(scores)[np.asarray(violated, dtype=bool)])[::-1]
    if not len(hits):
        return 0.0
    return float(hits[math.ceil(recall * len(hits) - 1e-9) - 1])


def veto_thresholds(x: np.ndarray, present: np.ndarray, groups: Sequence[str], is_veto: np.ndarray, folds: int,
                    c: float, recall: float) -> np.ndarray:
    """Per item, the threshold its out-of-fold score is read with: 0 for every item but vetoes; a veto's is chosen
    for ``recall`` of violations on *inner* out-of-fold scores of its outer fold's training questions (nested
    cross-fitting: neither the head nor the threshold an item is judged by saw its question's labels)."""
    out = np.zeros(len(present))
    for train, test in _folds(present, groups, folds):
        vetoes = test[is_veto[test]]
        if not len(vetoes):
            continue
        inner = out_of_fold(x[train], present[train], [groups[i] for i in train], folds, c)
        picked = is_veto[train]
        out[vetoes] = recall_threshold(inner[picked], present[train][picked], recall)
    return out


def save_head(path: str | Path, head: EvidenceHead) -> None:
    write_json(Path(path) / HEAD_FILE, head.model_dump(mode="json"))


def load_head(path: str | Path) -> EvidenceHead | None:
    file = Path(path) / HEAD_FILE
    if not file.is_file():
        return None
    try:
        return EvidenceHead.model_validate(json.loads(file.read_text(encoding="utf-8")))
    except ValueError as exc:
        raise UserError(f"{file}:1: -: -: invalid evidence head: {' '.join(str(exc).split())[:200]}") from None
