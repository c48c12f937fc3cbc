"""Criterion-evidence features: how much of a criterion's content a response states, and where.

These are the inputs of the evidence head (``promedical.reward.head``), a small logistic model that sits on top
of the trained encoder's score. Each feature looks at the criterion and the whole response (not a truncated
head), so evidence anywhere in a long answer counts:

* ``lexical``: share of the criterion's content words found in the response (the ``lexical:0.5`` judge's score);
* ``recall`` / ``idf_recall``: the same on light-stemmed words, plain and weighted by inverse document frequency
  (rare words such as drug names weigh more than "treatment");
* ``idf_recall_new``: the weighted share of the criterion's words that the *question* does not already contain.
  A response repeats the question's words whether or not it satisfies the criterion, so these words carry no
  evidence; the rest do;
* ``best_window``: the weighted share found inside the best pair of adjacent sentences (evidence stated in one
  place rather than scattered words);
* ``bigram``: share of the criterion's word bigrams in the response; ``numbers``: share of its numbers;
* ``cos_best`` / ``cos_top2``: MiniLM cosine of the criterion with the response's closest sentence (and the mean
  of the two closest): paraphrases that share no words;
* ``token_floor``: soft word matching. Each content word of the criterion (its first word piece: alphabetic, three
  letters or more, not a stopword) gets its best cosine with any word piece of the response, both read in context
  by MiniLM (``promedical.data.embeddings.token_vectors``); the feature is the mean of the lowest third. A criterion
  is stated when even its least-covered words have a close match ("beneficial for vision" for "a positive effect on
  vision"), which one sentence vector or exact word overlap cannot see;
* ``log_criterion_words``, ``log_response_words``, ``new_share``: size terms, so the head can discount recall on
  very short criteria or very long answers;
* ``encoder``: the trained encoder's pooled score, turned to "content present" (negated for prohibited criteria,
  whose score means "absent").

The implicit ablation's head sees only the size of the response and the encoder's score: nothing that needs the
criterion (``IMPLICIT_FEATURES``).

Criterion kinds (``KINDS``, opt-in with ``evidence.interactions``): ``penalty`` (a HealthBench negative-points item
imported as "Avoids the following: <text>"), ``veto`` (an S3 veto) and ``bonus``: an indicator per kind, and the
product of every base feature with it (``"<feature>*<kind>"``), so each kind gets its own intercept and slopes:
the presence of a penalty's words is evidence *against* "avoids", which one shared slope cannot say. Every content
feature is computed on the criterion's content, the penalty prefix removed (``criterion_content``).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from promedical.data.embeddings import TokenVectors
from promedical.judge.lexical import STOPWORDS, lexical_score
from promedical.rubrics.importers.healthbench import PENALTY_PREFIX

EXPLICIT_FEATURES = ("lexical", "recall", "idf_recall", "idf_recall_new", "best_window", "bigram", "numbers",
                     "cos_best", "cos_top2", "token_floor", "log_criterion_words", "log_response_words", "new_share",
                     "encoder")
IMPLICIT_FEATURES = ("log_response_words", "encoder")
KINDS = ("penalty", "veto", "bonus")
INTERACTION = "*"

_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s")


def criterion_content(text: str) -> str:
    """What a criterion's evidence is about: a penalty's text without its "Avoids the following: " prefix."""
    return text[len(PENALTY_PREFIX):] if text.startswith(PENALTY_PREFIX) else text


def criterion_kinds(text: str, tier: str) -> dict[str, float]:
    """Indicators of the criterion's kind (``KINDS``): a penalty, a veto, a bonus item."""
    return {"penalty": float(text.startswith(PENALTY_PREFIX)), "veto": float(tier == "veto"),
            "bonus": float(tier == "bonus")}


def with_interactions(base: Sequence[str], kinds: Sequence[str]) -> tuple[str, ...]:
    """``base``, then each kind's indicator, then every base feature times each kind (``"lexical*penalty"``)."""
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown criterion kind {kind!r} (known: {', '.join(KINDS)})")
    return (*base, *kinds, *(f"{f}{INTERACTION}{k}" for k in kinds for f in base))


def add_interactions(row: dict[str, float], names: Iterable[str]) -> None:
    """Fill the product features among ``names`` from the row's base features and kind indicators."""
    for name in names:
        if INTERACTION in name:
            feature, kind = name.split(INTERACTION, 1)
            row[name] = row[feature] * row[kind]


def stem(word: str) -> str:
    """Strip one common English suffix, keeping at least four letters ("infections" and "infection" meet)."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def terms(text: str) -> set[str]:
    """Stemmed content words: three letters or more, not a stop word."""
    return {stem(w) for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in STOPWORDS}


def sentences(text: str) -> list[str]:
    parts = [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) > 3]
    return parts or [text.strip() or text]


class IdfTable(BaseModel):
    """Document frequencies of stemmed terms over the training texts; unseen terms count as the rarest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_docs: int = Field(ge=0)
    df: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def build(cls, documents: Iterable[str]) -> IdfTable:
        counts: Counter[str] = Counter()
        n = 0
        for doc in documents:
            n += 1
            counts.update(terms(doc))
        return cls(n_docs=n, df=dict(sorted(counts.items())))

    def weight(self, term: str) -> float:
        return math.log((self.n_docs + 1) / (self.df.get(term, 0) + 1)) + 1.0


def _weighted_share(wanted: set[str], found: set[str], idf: IdfTable) -> float:
    total = sum(idf.weight(w) for w in wanted)
    return sum(idf.weight(w) for w in wanted & found) / total if total > 0 else 0.0


def _bigrams(text: str) -> set[tuple[str, str]]:
    words = _WORD.findall(text.lower())
    return set(itertools.pairwise(words))


def lexical_features(instruction: str, response: str, criterion: str, idf: IdfTable) -> dict[str, float]:
    """Every feature that needs no model: see the module docstring."""
    wanted, found, asked = terms(criterion), terms(response), terms(instruction)
    new = wanted - asked
    windows = [terms(" ".join(pair)) for pair in _sentence_pairs(sentences(response))]
    criterion_bigrams = _bigrams(criterion)
    numbers = set(_NUMBER.findall(criterion))
    idf_recall = _weighted_share(wanted, found, idf)
    return {
        "lexical": lexical_score(response, criterion),
        "recall": len(wanted & found) / len(wanted) if wanted else 0.0,
        "idf_recall": idf_recall,
        # a criterion made only of the question's words has no new words: its plain weighted recall stands in
        "idf_recall_new": _weighted_share(new, found, idf) if new else idf_recall,
        "best_window": max((_weighted_share(wanted, w, idf) for w in windows), default=0.0),
        "bigram": len(criterion_bigrams & _bigrams(response)) / len(criterion_bigrams) if criterion_bigrams else 0.0,
        "numbers": len(numbers & set(_NUMBER.findall(response))) / len(numbers) if numbers else 1.0,
        "log_criterion_words": math.log1p(len(wanted)),
        "log_response_words": math.log1p(len(_WORD.findall(response.lower()))),
        "new_share": len(new) / len(wanted) if wanted else 0.0,
    }


def _sentence_pairs(parts: Sequence[str]) -> list[tuple[str, ...]]:
    if len(parts) < 2:
        return [tuple(parts)]
    return [tuple(parts[i : i + 2]) for i in range(len(parts) - 1)]


def similarity_features(sentence_vectors: np.ndarray, criterion_vector: np.ndarray) -> dict[str, float]:
    """Cosine of the criterion with the response's closest sentence, and the mean of the two closest (unit
    vectors: the dot product is the cosine)."""
    sims = np.sort(sentence_vectors @ criterion_vector)[::-1]
    return {"cos_best": float(sims[0]), "cos_top2": float(sims[:2].mean())}


def content_pieces(pieces: Sequence[str]) -> list[int]:
    """Positions of a criterion's content words among its word pieces: a word's first piece, alphabetic, three
    letters or more, not a stopword. All positions when there is none (a criterion of stopwords or numbers)."""
    picked = [i for i, p in enumerate(pieces) if p.isalpha() and len(p) > 2 and p not in STOPWORDS]
    return picked or list(range(len(pieces)))


def token_floor(criterion: TokenVectors, response: TokenVectors) -> float:
    """Mean of the lowest third (at least one) of the criterion's content words' best cosine with any response
    piece; 0.0 when either side has no pieces."""
    if not len(criterion.pieces) or not len(response.pieces):
        return 0.0
    picked = content_pieces(criterion.pieces)
    best = np.sort((criterion.vectors[picked] @ response.vectors.T).max(axis=1))
    return float(best[: max(1, len(best) // 3)].mean())


def presence(encoder_score: float, polarity: str) -> float:
    """The encoder's score read as "the criterion's content is present": a prohibited criterion's score means
    "absent", so it is negated."""
    return -encoder_score if polarity == "prohibited" else encoder_score
