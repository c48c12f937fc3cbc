"""The paper's comparison baselines, driven by the same config style as GRPO.

* **Implicit-RM GRPO** (``reward.mode: scalar`` in a GRPO config): the same GRPO builder, but the reward is the
  single score of a reward model trained *without* criteria (the ``implicit/1`` template of
  ``promedical.reward.template``): a scalar Bradley-Terry RM that sees only instruction and response. No tiers,
  no veto: exactly what the hierarchical reward is compared against.
* **DPO** (``promedical grpo dpo``): TRL's ``DPOTrainer`` on the lexicographic preference pairs exported by the data
  pipeline (``prompt``/``chosen``/``rejected``; ``promedical.pair/1`` records are accepted as they are).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from promedical.io import UserError, iter_jsonl, write_json
from promedical.rl import monitors
from promedical.rl.config import DPOSettings
from promedical.rl.rewards import RewardHistory, completion_text
from promedical.rl.signal import SignalTracker
from promedical.rubrics.schema import Rubric
from promedical.unscored import check_rate

DPO_STAGE = "dpo"


class ScalarRMReward:
    """TRL reward function: the implicit reward model's score of (instruction, completion). ``None`` (excluded by
    TRL, counted in ``scalar/unscored_rate``) only when the model returns a non-finite score."""

    __name__ = "implicit_rm_reward"

    def __init__(self, rm: Any, rubrics: Mapping[str, Rubric], batch_size: int = 16,
                 history: RewardHistory | None = None, max_unscored_rate: float = 1.0) -> None:
        self.rm = rm
        self.rubrics = dict(rubrics)
        self.batch_size = batch_size
        self.history = history if history is not None else RewardHistory()
        self.max_unscored_rate = max_unscored_rate  # the unscored-rate gate, cumulative over training
        self.seen = self.unscored = 0
        self.signal: SignalTracker | None = None  # group-signal diagnostics, set by the GRPO builder

    @classmethod
    def from_spec(cls, spec: str, rubrics: Mapping[str, Rubric], history: RewardHistory | None = None,
                  max_unscored_rate: float = 1.0) -> ScalarRMReward:
        from promedical.reward.model import load_rm

        scheme, sep, path = spec.partition(":")
        if scheme != "rm" or not sep or not path:
            raise UserError(f"reward.judge {spec!r}: the scalar baseline needs rm:<checkpoint of an implicit RM>")
        rm = load_rm(path)
        if rm.card.explicit:
            raise UserError(f"{path}: rm.json: template: {rm.card.template} injects criteria; the implicit-RM baseline "
                            "needs a model trained with template implicit/1")
        return cls(rm, rubrics, history=history, max_unscored_rate=max_unscored_rate)

    def instruction(self, prompt: Any, rubric_id: str | None) -> str:
        if rubric_id and rubric_id in self.rubrics:
            return self.rubrics[rubric_id].instruction
        if isinstance(prompt, list):
            return next((m["content"] for m in reversed(prompt) if m.get("role") == "user"), "")
        return str(prompt)

    def score_texts(self, instructions: Sequence[str], texts: Sequence[str]) -> list[float | None]:
        """The RM's score per text; ``None`` for a non-finite score (a model failure, never a reward of NaN)."""
        from promedical.reward.score import CriterionInput, Group, score_shared

        probe = (CriterionInput("", "proficiency", "required"),)  # the implicit template ignores the criterion
        groups = [Group(i, t, probe) for i, t in zip(instructions, texts, strict=True)]
        return [values[0] if math.isfinite(values[0]) else None
                for values in score_shared(self.rm, groups, self.batch_size)]

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], rubric_id: Sequence[str] | None = None,
                 trainer_state: Any = None, log_metric: Callable[[str, float], None] | None = None,
                 **_: Any) -> list[float | None]:
        ids = list(rubric_id) if rubric_id is not None else [None] * len(prompts)
        texts = [completion_text(c) for c in completions]
        rewards = self.score_texts([self.instruction(p, r) for p, r in zip(prompts, ids, strict=True)], texts)
        step = int(getattr(trainer_state, "global_step", 0) or 0)
        scored = [value for value in rewards if value is not None]
        self.seen += len(rewards)
        self.unscored += len(rewards) - len(scored)
        check_rate(self.unscored, self.seen, self.max_unscored_rate, f"reward.judge rm:{self.rm.path}",
                   what="rewards", reasons=["reward model returned a non-finite score"] * self.unscored)
        for text, value in zip(texts, rewards, strict=True):
            if value is not None:
                self.history.add(step, text, value)
        if self.signal is not None:
            self.signal.observe(rewards, trainer_state, log_metric)
        if log_metric is not None:
            if scored:
                log_metric("scalar/reward", sum(scored) / len(scored))
            log_metric("scalar/unscored_rate", (len(rewards) - len(scored)) / len(rewards))
            log_metric("scalar/completion_words", sum(len(t.split()) for t in texts) / len(texts))
            for name, value in monitors.lexicon_rates(texts).items():
                log_metric(f"monitor/{name}", value)
        return rewards


def _as_messages(value: Any, role: str) -> list[dict[str, str]] | None:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, list) and value and all(isinstance(m, dict) and "content" in m for m in value):
        return [{"role": str(m.get("role", role)), "content": str(m["content"])} for m in value]
    return None


def read_pairs(paths: Sequence[str], limit: int | None = None) -> list[dict[str, Any]]:
    """Conversational DPO rows from pair files; one line naming file, line and field on a defect."""
    rows: list[dict[str, Any]] = []
    for path in paths:
        for line, value, problem in iter_jsonl(path):
            if problem is not None:
                raise UserError(str(problem))
            if not isinstance(value, dict):
                raise UserError(f"{path}:{line}: -: -: expected a JSON object")
            record_id = str(value.get("id", "-"))
            row = {}
            for key, role in (("prompt", "user"), ("chosen", "assistant"), ("rejected", "assistant")):
                messages = _as_messages(value.get(key), role)
                if messages is None:
                    raise UserError(f"{path}:{line}: {record_id}: {key}: missing or not text/messages")
                row[key] = messages
            rows.append(row)
    if not rows:
        raise UserError(f"{', '.join(paths)}: -: -: no preference pairs")
    return rows[:limit] if limit else rows


def dpo_args(s: DPOSettings) -> Any:
    from trl import DPOConfig

    from promedical.rl.grpo import on_cpu

    return DPOConfig(
        output_dir=s.output_dir, beta=s.dpo_beta, learning_rate=s.learning_rate,
        per_device_train_batch_size=s.per_device_train_batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps, max_steps=s.max_steps,
        num_train_epochs=s.num_train_epochs, max_length=s.max_length, bf16=s.bf16,
        save_strategy="steps", save_steps=s.save_steps, save_total_limit=s.save_total_limit,
        logging_steps=s.logging_steps, report_to=s.report_to, seed=s.seed, disable_tqdm=True, use_cpu=on_cpu(),
    )


def run_dpo(s: DPOSettings, extra_callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Train the DPO baseline (resuming from the last checkpoint) and write final policy, config and manifest."""
    from datasets import Dataset
    from trl import DPOTrainer

    from promedical.rl.grpo import (
        final_metrics,
        last_checkpoint,
        load_policy,
        peft_config,
        quiet_printer,
        save_final,
        write_log_history,
    )
    from promedical.runs import write_manifest

    out = Path(s.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{DPO_STAGE}.config.json", s.model_dump(mode="json"))
    rows = read_pairs(s.pairs, s.max_pairs)
    model, tokenizer = load_policy(s.policy)
    trainer = DPOTrainer(model=model, args=dpo_args(s), train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, peft_config=peft_config(s.lora), callbacks=extra_callbacks)
    quiet_printer(trainer)
    resume = last_checkpoint(s.output_dir) if s.resume else None
    result = trainer.train(resume_from_checkpoint=resume)
    final = save_final(trainer, out) if s.merge_final and trainer.is_world_process_zero() else None
    summary = {"output_dir": str(out), "final_policy": str(final) if final else None, "resumed_from": resume,
               "global_step": trainer.state.global_step, "train_runtime": result.metrics.get("train_runtime"),
               "metrics": {k: v for k, v in final_metrics(trainer.state.log_history).items()},
               "last_loss": next((e["loss"] for e in reversed(trainer.state.log_history) if "loss" in e), None)}
    if trainer.is_world_process_zero():
        write_log_history(out, DPO_STAGE, trainer.state.log_history)
        write_manifest(out, DPO_STAGE, s.model_dump(mode="json"), inputs=s.pairs, seed=s.seed,
                       counts={"pairs": len(rows), "steps": trainer.state.global_step}, extra={"summary": summary})
    return summary
