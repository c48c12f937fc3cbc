"""The DPO baseline (``promedical dpo train``): TRL's ``DPOTrainer`` on the lexicographic preference pairs exported by
the data pipeline (``prompt``/``chosen``/``rejected``; ``promedical.pair/1`` records are accepted as they are).

Policy loading, checkpoints, the final (merged) policy and the log history are shared with GRPO
(``promedical.rl.trainer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promedical.io import UserError, iter_jsonl, write_json
from promedical.rl.config import DPOSettings
from promedical.rl.trainer import (
    final_metrics,
    last_checkpoint,
    load_policy,
    on_cpu,
    peft_config,
    quiet_printer,
    save_final,
    write_log_history,
)
from promedical.runs import write_manifest

DPO_STAGE = "dpo"


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
