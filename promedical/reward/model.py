"""The criterion-conditioned reward model: a transformers sequence classifier with one output, plus its card.

Any backbone works: an encoder (MiniLM/BERT: the pooled ``[CLS]`` goes through the classifier) or a decoder
(Llama, SmolLM2, Qwen...: ``AutoModelForSequenceClassification`` reads the score at the last non-pad token).
Decoders without a pad token get the EOS token as pad; templates never contain it, so the "last non-pad token"
is always the last token of the criterion suffix.

A trained checkpoint is a plain transformers directory (LoRA adapters are merged before saving) with an
``rm.json`` card beside the weights: template version, backbone, max length, input scheme (how a long response
is read: ``head/1`` for cards written before windows existed, ``windows/1`` with its layout; see
``promedical.reward.windows``) and, after ``promedical rm calibrate``, the per-tier thresholds that turn scores
into met/unmet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promedical.io import UserError, write_json
from promedical.models import resolve_model
from promedical.reward.head import HEAD_FILE, EvidenceHead, load_head
from promedical.reward.template import Encoder, get_template
from promedical.reward.windows import INPUT_HEAD, INPUT_WINDOWS, InputScheme, WindowSettings

CARD_FILE = "rm.json"
CARD_SCHEMA: Literal["promedical.rm/1"] = "promedical.rm/1"


class TierThreshold(BaseModel):
    """Score threshold for one tier: ``score >= threshold`` means the criterion is satisfied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float
    rule: str  # how it was chosen, e.g. "max-accuracy" or "veto: max-F1 on violations, ties to the safe side"
    n: int  # validation items it was chosen on
    validation_accuracy: float | None = None


class RMCard(BaseModel):
    """What a checkpoint needs to be used again exactly as trained (and where it came from)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["promedical.rm/1"] = CARD_SCHEMA
    backbone: str
    template: str
    max_length: int = Field(ge=32)
    # absent in cards written before windows/1: such a model read the response's head and is scored that way
    input: InputScheme = INPUT_HEAD
    windows: WindowSettings | None = None
    lora: bool = False
    thresholds: dict[str, TierThreshold] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)  # config digest, data counts, run dir
    # "evidence/1" when an evidence head (promedical.reward.head, evidence.json beside the weights) turns the
    # encoder's score and evidence features into the final score; None: the encoder's score is the score
    evidence: str | None = None
    calibration: dict[str, Any] = Field(default_factory=dict)  # data and rule used by calibrate

    @model_validator(mode="after")
    def _input_matches_windows(self) -> RMCard:
        if (self.input == INPUT_WINDOWS) != (self.windows is not None):
            raise ValueError("input windows/1 needs a windows layout, and head/1 takes none")
        return self

    @property
    def explicit(self) -> bool:
        return get_template(self.template).explicit


def quiet_transformers() -> None:
    """Keep stderr for our own messages: load reports and hub hints are noise offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_backbone(name: str, seed: int = 0) -> tuple[Any, Any]:
    """A fresh reward model on ``name`` (resolved offline): ``num_labels=1`` head, pad token set on both sides."""
    import torch
    from transformers import AutoModelForSequenceClassification

    quiet_transformers()
    path = resolve_model(name)
    tokenizer = load_tokenizer(path)
    torch.manual_seed(seed)  # the new head is random: make it reproducible
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def is_decoder(model: Any) -> bool:
    """True for causal backbones whose score head reads the last token (prefix sharing applies)."""
    import torch

    return isinstance(getattr(model, "score", None), torch.nn.Linear) and not model.config.is_encoder_decoder


@dataclass
class RewardModel:
    model: Any
    tokenizer: Any
    card: RMCard
    path: str
    evidence: EvidenceHead | None = None  # applied by reward.score.score_groups when present

    @property
    def encoder(self) -> Encoder:
        return Encoder.build(self.tokenizer, get_template(self.card.template), self.card.max_length,
                             self.card.windows)

    @property
    def decoder(self) -> bool:
        return is_decoder(self.model)


def read_card(path: str | Path) -> RMCard:
    card_path = Path(path) / CARD_FILE
    if not card_path.is_file():
        raise UserError(f"{path}: not a reward-model checkpoint (no {CARD_FILE}); train one with `promedical rm train`")
    try:
        return RMCard.model_validate_json(card_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{card_path}:1: -: -: invalid card: {' '.join(str(exc).split())[:200]}") from None


def write_card(path: str | Path, card: RMCard) -> None:
    write_json(Path(path) / CARD_FILE, card.model_dump(mode="json"))


def load_rm(path: str | Path) -> RewardModel:
    """Load a trained checkpoint for scoring (eval mode, fp32)."""
    from transformers import AutoModelForSequenceClassification

    quiet_transformers()
    card = read_card(path)
    tokenizer = load_tokenizer(str(path))
    model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    head = load_head(path) if card.evidence else None
    if card.evidence and head is None:
        raise UserError(f"{path}: rm.json: evidence: the card names {card.evidence} but {HEAD_FILE} is missing")
    return RewardModel(model=model, tokenizer=tokenizer, card=card, path=str(path), evidence=head)


def fresh_rm(backbone: str, template: str, max_length: int, seed: int = 0,
             windows: WindowSettings | None = None) -> RewardModel:
    """An untrained reward model on ``backbone`` (random head): the starting point of training and of tests.

    ``windows=None`` reads the response's head (``head/1``), a layout reads it in windows (``windows/1``)."""
    get_template(template)
    model, tokenizer = load_backbone(backbone, seed=seed)
    model.eval()
    card = RMCard(backbone=backbone, template=template, max_length=max_length,
                  input=INPUT_HEAD if windows is None else INPUT_WINDOWS, windows=windows)
    return RewardModel(model=model, tokenizer=tokenizer, card=card, path=f"untrained:{backbone}")
