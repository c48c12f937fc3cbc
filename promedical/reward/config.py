"""Training configuration of the reward model: a pydantic model read from YAML, with ``key=value`` overrides.

``promedical rm train --config configs/rm_minilm.yaml epochs=2 lora.r=16`` loads the YAML, applies each
override (dotted keys reach nested fields; values are parsed as YAML scalars, so ``2`` is an int, ``true`` a
bool, ``[a, b]`` a list) and validates the result. The resolved config is written beside the run's outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from promedical.config import load_settings
from promedical.data.splits import HELD_OUT_FRACTIONS
from promedical.report_to import ReportTo, check_report_to
from promedical.reward.template import DEFAULT_EXPLICIT, get_template
from promedical.reward.windows import INPUT_WINDOWS, InputScheme, WindowSettings


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | str = "all-linear"


class EvidenceSettings(BaseModel):
    """The evidence head (``promedical.reward.head``): fitted after the encoder on physician labels."""

    model_config = ConfigDict(extra="forbid")

    physician_labels: list[str] = Field(default_factory=list)  # built from the shared data (reward.physician)
    labels: list[str] = Field(default_factory=list)  # labelled sets (dirs) with more physician labels
    folds: int = Field(default=5, ge=2)  # cross-fitting by question: the out-of-fold scores are the held-out estimate
    c: float = Field(default=1.0, gt=0)  # inverse L2 strength of the logistic regression
    # criterion kinds (penalty, veto, bonus) whose indicator and products with every feature join the head, so each
    # kind has its own intercept and slopes (promedical.reward.evidence)
    interactions: list[Literal["penalty", "veto", "bonus"]] = Field(default_factory=list)
    # read vetoes at a threshold chosen for this recall of violations (nested out of fold; None: log-odds 0)
    veto_recall: float | None = Field(default=None, gt=0, le=1)


class RMTrainConfig(BaseModel):
    """Everything a reward-model training run depends on."""

    model_config = ConfigDict(extra="forbid")

    backbone: str = "minilm"  # a name resolve_model accepts, or a local checkpoint directory
    template: str = DEFAULT_EXPLICIT  # explicit/1 (criterion injected) or implicit/1 (the ablation)
    max_length: int = Field(default=256, ge=32)
    # how a long response is read, in training and scoring alike: windows/1 (overlapping windows pooled per
    # criterion) or head/1 (the response's head only; what models trained before windows/1 did)
    input: InputScheme = INPUT_WINDOWS
    windows: WindowSettings = Field(default_factory=WindowSettings)  # used by windows/1 only
    train_data: list[str] = Field(default_factory=list)  # labelled sets or CriterionPair JSONL files
    val_data: list[str] = Field(default_factory=list)  # used for calibration after training
    output_dir: str
    pointwise_weight: float = Field(default=0.0, ge=0.0)  # > 0 adds BCE(sigmoid(score), satisfied) on points
    derive_pairs: bool = True
    max_pairs_per_criterion: int = Field(default=6, ge=1)
    max_rows: int | None = Field(default=None, ge=1)  # cap on pair rows and on point rows each (seeded sample)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = -1
    batch_size: int = Field(default=8, ge=1)  # per device
    grad_accum: int = Field(default=1, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    weight_decay: float = 0.0
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    lora: LoraSettings | None = None
    freeze_backbone: bool = False  # train only the score head (cheap baseline for large backbones)
    save_steps: int = Field(default=50, ge=1)
    save_total_limit: int = Field(default=2, ge=1)
    logging_steps: int = Field(default=5, ge=1)
    resume: bool = True  # pick up from the last checkpoint in output_dir when there is one
    seed: int = 0
    calibrate: bool = True
    # Held-out hygiene. blind_test: "auto" (blind_test.json of the shared data folder, when there is one), a path,
    # or "none": every row of a listed question or HealthBench prompt is dropped from train_data and val_data and
    # counted in the manifest. train_split / val_split: keep only the rows whose instruction falls in that split
    # of the project's one split (promedical.data.splits, HELD_OUT_FRACTIONS), so whatever the files hold, no
    # question of the test split is trained or calibrated on; the manifest audits it.
    blind_test: str = "auto"
    train_split: str | None = None
    val_split: str | None = None
    # Constructions of promedical.reward.supervision built into <output_dir>/supervision from the shared data
    # folder before training; their train split joins train_data, their val split val_data.
    supervision: list[str] = Field(default_factory=list)
    # Evidence head over the encoder (None: the encoder's score is the score). Its labels' questions are kept out
    # of the encoder's data, so every out-of-fold score comes from models that never saw its question.
    evidence: EvidenceSettings | None = None
    report_to: ReportTo = "none"  # training curves: none, tensorboard, wandb, trackio, ... or a list (as TRL takes)

    _report_to = field_validator("report_to")(check_report_to)

    @model_validator(mode="after")
    def _check(self) -> RMTrainConfig:
        get_template(self.template)
        if not self.train_data and not self.supervision:
            raise ValueError("train_data: give at least one labelled set, or supervision to build")
        for name in (self.train_split, self.val_split):
            if name is not None and name not in HELD_OUT_FRACTIONS:
                raise ValueError(f"split {name!r} is not one of {', '.join(HELD_OUT_FRACTIONS)}")
        if self.lora is not None and self.freeze_backbone:
            raise ValueError("choose one of lora and freeze_backbone")
        return self


def card_windows(cfg: RMTrainConfig) -> WindowSettings | None:
    """The window layout a model trained with ``cfg`` records in its card (None: head/1)."""
    return cfg.windows if cfg.input == INPUT_WINDOWS else None


def load_config(path: str | Path | None, overrides: list[str]) -> RMTrainConfig:
    return load_settings(RMTrainConfig, path, overrides)
