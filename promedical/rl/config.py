"""Configuration of policy optimisation runs (GRPO and the DPO baseline): pydantic models read from YAML.

``promedical grpo train --config configs/grpo_smollm2_lora.yaml max_steps=20 reward.alpha=0.2`` loads the YAML,
applies each ``key=value`` override (dotted keys reach nested fields; values are parsed as YAML scalars, so ``2``
is an int, ``true`` a bool, ``null`` clears a field) and validates the result. A bad value is one line naming the
file and the field, exit code 2. The resolved config is written into the run directory.

Paper defaults (METHOD.md section 5) are set explicitly because TRL's own defaults differ: group size 8
(``num_generations``), KL coefficient 0.04 (``kl_coef``; TRL's default ``beta`` is 0.0) and learning rate 1e-6.
``loss_type`` defaults to ``"grpo"`` (TRL defaults to ``"dapo"``). The reward coefficients default to those of
``promedical.rubrics.scoring.RewardParams`` and are validated by it (``0 <= alpha < 1``, ``beta > 0``,
``lambda >= 1 + beta``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from promedical.report_to import ReportTo, check_report_to
from promedical.reward.config import LoraSettings
from promedical.rubrics.scoring import RewardParams
from promedical.unscored import DEFAULT_MAX_UNSCORED_RATE


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The policy's LoRA defaults. The class is the reward model's (one ``LoraSettings``), whose own defaults are smaller
# (r=8, alpha=16, no dropout): a policy adapter gets more rank and some dropout. The keys a ``lora:`` block leaves
# out take these values, so the configs written for the policy runs resolve as they always did.
POLICY_LORA: dict[str, Any] = {"r": 16, "alpha": 32, "dropout": 0.05}


def _policy_defaults(value: Any) -> Any:
    return {**POLICY_LORA, **value} if isinstance(value, dict) else value


def policy_lora(**values: Any) -> LoraSettings:
    """A ``LoraSettings`` with the policy's defaults for what ``values`` leaves out."""
    return LoraSettings(**_policy_defaults(values))


# ``lora:`` of the GRPO and DPO configs: absent or null is no LoRA (full fine-tuning).
PolicyLora = Annotated[LoraSettings | None, BeforeValidator(_policy_defaults)]


class RewardSettings(_Strict):
    """Where the reward comes from.

    ``mode: hierarchical`` grades every criterion of the prompt's rubric with ``judge`` (any judge spec:
    ``rm:<checkpoint>``, ``openai:<model>@<url>``, ``hf:<model>``, or ``lexical`` for the criterion-overlap baseline)
    and computes ``clip(S1 + alpha*S2, 0, 1 + beta) - lambda*S3`` through the one scoring path.
    ``mode: scalar`` is the implicit-RM baseline: ``judge`` must be ``rm:<checkpoint>`` of a reward model trained
    with the implicit template, whose single score per response is the reward.
    """

    mode: Literal["hierarchical", "scalar"] = "hierarchical"
    judge: str = Field(min_length=1)
    alpha: float = RewardParams().alpha
    beta: float = RewardParams().beta
    lam: float = RewardParams().lam
    # verdict: each proficiency/bonus criterion counts 0 or 1. probability: a judge that scores each criterion (the
    # reward model) credits it with its probability of being met, so S1 and S2 are expectations and completions that
    # miss the same criteria are still ranked; vetoes stay hard verdicts (promedical.rl.rewards)
    credit: Literal["verdict", "probability"] = "verdict"
    concurrency: int = Field(default=4, ge=1)  # concurrent judge calls (HTTP judges)
    timeout: float = Field(default=60.0, gt=0)
    retries: int = Field(default=2, ge=0)
    # stop training when more than this share of the reward's verdicts (cumulative) is unscored; 1 = off
    max_unscored_rate: float = Field(default=DEFAULT_MAX_UNSCORED_RATE, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _params(self) -> RewardSettings:
        RewardParams(alpha=self.alpha, beta=self.beta, lam=self.lam)  # raises with the violated inequality
        return self

    @property
    def params(self) -> RewardParams:
        return RewardParams(alpha=self.alpha, beta=self.beta, lam=self.lam)


class GenerationSettings(_Strict):
    """Rollout backend: ``transformers`` (CPU and GPU) or ``vllm`` (GPU only; ``server`` mode needs
    ``trl vllm-serve``)."""

    backend: Literal["transformers", "vllm"] = "transformers"
    vllm_mode: Literal["server", "colocate"] = "server"
    vllm_server_base_url: str | None = None
    vllm_gpu_memory_utilization: float = Field(default=0.3, gt=0, le=1)
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)


class MonitorSettings(_Strict):
    """Reward-hacking monitors. The probe set is a fixed list of rubrics graded every ``probe_every`` steps by the
    training reward and by ``probe_judge`` (a held-out judge); their divergence is logged."""

    probe_rubrics: list[str] = Field(default_factory=list)
    probe_judge: str | None = None
    probe_every: int = Field(default=10, ge=1)
    probe_n: int = Field(default=8, ge=1)
    probe_max_new_tokens: int | None = Field(default=None, ge=1)  # default: max_completion_length


class SignalSettings(_Strict):
    """Group-signal diagnostics (``promedical.rl.signal``). A step is *dead* when more than ``max_zero_std_share``
    of its prompts' groups got one reward for all their completions (or fewer than two scored ones): GRPO has
    nothing to learn from them. ``warn_after`` dead steps in a row print one warning per streak;
    ``stop_after_dead_steps`` (off by default) stops the run with exit code 2 after that many."""

    max_zero_std_share: float = Field(default=0.5, ge=0.0, lt=1.0)
    warn_after: int = Field(default=5, ge=1)
    stop_after_dead_steps: int | None = Field(default=None, ge=1)


class GRPOSettings(_Strict):
    """One GRPO run: policy, prompt set, reward, optimisation and output."""

    policy: str = "smollm2"  # a name resolve_model accepts, or a local checkpoint directory
    rubrics: list[str] = Field(min_length=1)  # rubric JSONL files: the rubric behind every training prompt
    prompts: str | None = None  # optional JSONL of {"prompt": [...], "rubric_id": ...}; default one row per rubric
    max_prompts: int | None = Field(default=None, ge=1)
    output_dir: str
    reward: RewardSettings
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    monitors: MonitorSettings = Field(default_factory=MonitorSettings)
    signal: SignalSettings = Field(default_factory=SignalSettings)
    num_generations: int = Field(default=8, ge=2)  # group size G (paper: 8)
    kl_coef: float = Field(default=0.04, ge=0.0)  # TRL's `beta` (paper: 0.04; TRL default 0.0)
    learning_rate: float = Field(default=1e-6, gt=0)  # paper: 1e-6
    loss_type: str = "grpo"  # TRL default is "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    per_device_train_batch_size: int | None = Field(default=None, ge=1)  # default: num_generations
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_steps: int = -1
    num_train_epochs: float = Field(default=1.0, gt=0)
    max_completion_length: int = Field(default=256, ge=1)
    lora: PolicyLora = None
    bf16: bool = False
    gradient_checkpointing: bool = False  # TRL turns it on by default; worth it on GPUs with long completions
    deepspeed: str | None = None  # a DeepSpeed JSON config (GPU); usually given through `accelerate launch` instead
    save_steps: int = Field(default=50, ge=1)
    save_total_limit: int = Field(default=2, ge=1)
    logging_steps: int = Field(default=1, ge=1)
    resume: bool = True  # continue from the last checkpoint in output_dir when there is one
    merge_final: bool = True  # save the final policy (LoRA merged) under output_dir/final for `hf:` specs
    seed: int = 0
    report_to: ReportTo = "none"  # TRL/transformers integrations: tensorboard, wandb, trackio, ... or a list

    _report_to = field_validator("report_to")(check_report_to)

    @model_validator(mode="after")
    def _check(self) -> GRPOSettings:
        batch = self.per_device_train_batch_size or self.num_generations
        if (batch * self.gradient_accumulation_steps) % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size * gradient_accumulation_steps ({batch} * "
                f"{self.gradient_accumulation_steps}) must be a multiple of num_generations ({self.num_generations})"
            )
        if self.generation.backend == "vllm" and self.generation.vllm_mode == "server" \
                and self.generation.vllm_server_base_url is None:
            raise ValueError("generation.vllm_server_base_url is required with vllm_mode: server "
                             "(start the server with `trl vllm-serve --model <policy>`)")
        return self


class DPOSettings(_Strict):
    """The DPO baseline: TRL's DPOTrainer on the lexicographic pairs exported by the data pipeline."""

    policy: str = "smollm2"
    pairs: list[str] = Field(min_length=1)  # JSONL with prompt/chosen/rejected (TRL preference format)
    max_pairs: int | None = Field(default=None, ge=1)
    output_dir: str
    dpo_beta: float = Field(default=0.1, gt=0)
    learning_rate: float = Field(default=1e-6, gt=0)
    per_device_train_batch_size: int = Field(default=4, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_steps: int = -1
    num_train_epochs: float = Field(default=1.0, gt=0)
    max_length: int = Field(default=512, ge=16)
    lora: PolicyLora = None
    bf16: bool = False
    save_steps: int = Field(default=50, ge=1)
    save_total_limit: int = Field(default=2, ge=1)
    logging_steps: int = Field(default=1, ge=1)
    resume: bool = True
    merge_final: bool = True
    seed: int = 0
    report_to: ReportTo = "none"

    _report_to = field_validator("report_to")(check_report_to)
