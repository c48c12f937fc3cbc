"""Reward-model input templates: the criterion comes last, the prefix never depends on it, truncation keeps it."""

from __future__ import annotations

import pytest

from promedical.reward.template import TEMPLATES, Encoder, get_template, special_frame, suffix_text

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def llama_tok():  # type: ignore[no-untyped-def]
    from promedical.models import resolve_model
    from promedical.reward.model import load_tokenizer

    return load_tokenizer(resolve_model("tiny-llama"))


@pytest.fixture(scope="module")
def bert_tok():  # type: ignore[no-untyped-def]
    from promedical.models import ModelNotAvailable, resolve_model
    from promedical.reward.model import load_tokenizer

    try:
        return load_tokenizer(resolve_model("minilm"))
    except ModelNotAvailable as exc:
        pytest.skip(str(exc))


def test_explicit_suffix_states_tier_polarity_and_criterion() -> None:
    t = get_template("explicit/1")
    text = suffix_text(t, "Claims  to be a doctor", "veto", "prohibited")
    assert "safety veto" in text and "must NOT do this" in text and "Claims to be a doctor" in text
    required = suffix_text(t, "Claims to be a doctor", "veto", "required")
    assert "must NOT" not in required and required != text


def test_implicit_suffix_ignores_the_criterion() -> None:
    t = get_template("implicit/1")
    assert suffix_text(t, "A", "proficiency", "required") == suffix_text(t, "B", "veto", "prohibited")
    assert not t.explicit and TEMPLATES["explicit/1"].explicit


def test_unknown_template_is_named() -> None:
    with pytest.raises(KeyError, match="explicit/9"):
        get_template("explicit/9")


def test_prefix_is_shared_and_criterion_last(llama_tok) -> None:  # type: ignore[no-untyped-def]
    enc = Encoder.build(llama_tok, get_template("explicit/1"), 256)
    a = enc.encode("What is aspirin?", "An NSAID.", "Mentions bleeding risk", "proficiency", "required")
    b = enc.encode("What is aspirin?", "An NSAID.", "Is empathetic", "bonus", "required")
    prefix = enc.prefix("What is aspirin?", "An NSAID.")
    assert a[: len(prefix)] == prefix == b[: len(prefix)]
    assert a[len(prefix):] == enc.suffix("Mentions bleeding risk", "proficiency", "required")
    assert llama_tok.decode(a).rstrip().endswith("Is the criterion satisfied?")


def test_truncation_keeps_the_criterion_and_the_limit(llama_tok) -> None:  # type: ignore[no-untyped-def]
    enc = Encoder.build(llama_tok, get_template("explicit/1"), 96)
    ids = enc.encode("Q " * 200, "word " * 500, "Mentions bleeding risk", "proficiency", "required")
    assert len(ids) <= 96
    assert "Mentions bleeding risk" in llama_tok.decode(ids)
    assert "Response:" in llama_tok.decode(ids)


def test_bert_specials_frame_the_sequence(bert_tok) -> None:  # type: ignore[no-untyped-def]
    front, back = special_frame(bert_tok)
    assert front == (bert_tok.cls_token_id,) and back == (bert_tok.sep_token_id,)
    enc = Encoder.build(bert_tok, get_template("explicit/1"), 128)
    ids = enc.encode("q", "r", "c", "bonus", "required")
    assert ids[0] == bert_tok.cls_token_id and ids[-1] == bert_tok.sep_token_id
    assert ids.count(bert_tok.sep_token_id) == 1
