"""Soft word matching for the evidence head (``token_floor``): MiniLM's contextual word-piece vectors read the whole
response in overlapping windows, and a criterion scores by its least-covered content words. Real packaged MiniLM."""

from __future__ import annotations

import numpy as np

from promedical.data.embeddings import MAX_TOKENS, TokenVectors, token_vectors
from promedical.reward.evidence import content_pieces, token_floor


def _floor(criterion: str, response: str) -> float:
    c, r = token_vectors([criterion, response])
    return token_floor(c, r)


def test_a_long_text_is_read_whole_in_windows() -> None:
    text = " ".join(f"Patient {i} rested at home." for i in range(60)) + " Metformin lowers glucose."
    (read,) = token_vectors([text])
    from promedical.data.embeddings import _load

    tokenizer, _ = _load("minilm")
    wanted = tokenizer.tokenize(text)
    assert len(wanted) > 2 * MAX_TOKENS  # several windows
    assert read.vectors.shape == (len(read.pieces), 384)
    assert np.allclose(np.linalg.norm(read.vectors, axis=1), 1.0, atol=1e-4)
    assert set(read.pieces) == set(wanted)  # nothing cut off, nothing invented
    assert read.pieces[-4:] == tuple(wanted[-4:])  # the tail, in order
    assert len(read.pieces) < 2.2 * len(wanted)  # windows overlap by half, no more


def test_content_pieces_skip_stopwords_short_words_and_continuations() -> None:
    pieces = ("the", "met", "##formin", "is", "an", "anti", "##diabetic", "drug", "5")
    assert [pieces[i] for i in content_pieces(pieces)] == ["met", "anti", "drug"]
    assert content_pieces(("is", "the")) == [0, 1]  # nothing else to read: every piece


def test_a_paraphrase_scores_above_an_answer_on_something_else() -> None:
    criterion = "Vitamin A has a positive effect on vision"
    paraphrase = _floor(criterion, "Eating carrots gives you vitamin A, which is beneficial for your eyesight.")
    elsewhere = _floor(criterion, "Ibuprofen can upset the stomach, so take it with food.")
    assert paraphrase > elsewhere + 0.1


def test_one_missing_word_pulls_the_floor_down() -> None:
    response = "Metformin lowers blood glucose and is taken with meals."
    full = _floor("Metformin lowers blood glucose", response)
    missing = _floor("Metformin lowers blood glucose and causes lactic acidosis", response)
    assert full > missing


def test_evidence_at_the_end_of_a_long_answer_counts() -> None:
    criterion = "Metformin lowers blood glucose"
    filler = " ".join(f"Sentence {i} talks about rest and fluids." for i in range(60))
    tail = _floor(criterion, filler + " Metformin lowers blood glucose.")
    absent = _floor(criterion, filler)
    alone = _floor(criterion, "Metformin lowers blood glucose.")
    assert tail > absent + 0.1
    # read in the context of its window, so a little below the sentence alone, but nowhere near "absent"
    assert alone - tail < (alone - absent) / 2


def test_an_empty_side_scores_zero() -> None:
    empty = TokenVectors((), np.zeros((0, 384), dtype=np.float32))
    (some,) = token_vectors(["fever"])
    assert token_floor(empty, some) == 0.0 and token_floor(some, empty) == 0.0


def test_a_head_saved_before_token_floor_loads_with_the_layer_it_would_read() -> None:
    from promedical.reward.evidence import IdfTable
    from promedical.reward.head import EvidenceHead

    old = {"features": ["lexical", "encoder"], "mean": [0.0, 0.0], "scale": [1.0, 1.0], "coef": [1.0, 1.0],
           "intercept": 0.0, "idf": IdfTable.build(["fever"]).model_dump(mode="json")}
    head = EvidenceHead.model_validate(old)
    assert head.token_layer == 4 and "token_floor" not in head.features
