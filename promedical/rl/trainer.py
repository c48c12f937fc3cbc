"""What the GRPO and DPO runs share: the policy and its LoRA config, the device, TRL's checkpoints, the final
(merged) policy and the logs written beside the manifest. Both trainers are TRL's (wrapped, never forked).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promedical.io import write_json
from promedical.rl.config import LoraSettings


def peft_config(lora: LoraSettings | None) -> Any:
    if lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM")


def on_cpu() -> bool:
    """No GPU: train on CPU, which also makes ``accelerate launch`` run several CPU processes over gloo."""
    import torch

    return not torch.cuda.is_available()


def load_policy(name: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from promedical.models import resolve_model
    from promedical.reward.model import quiet_transformers

    quiet_transformers()
    path = resolve_model(name)
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path)
    return model, tokenizer


def quiet_printer(trainer: Any) -> None:
    """Keep stdout for ``--json``: the trainer's own printer writes every log dict there."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)


def last_checkpoint(output_dir: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None


def save_final(trainer: Any, output_dir: str | Path) -> Path:
    """The trained policy as a plain transformers checkpoint (LoRA merged), usable as ``hf:<run>/final``."""
    target = Path(output_dir) / "final"
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(target)
    trainer.processing_class.save_pretrained(target)
    return target


def final_metrics(log_history: list[dict[str, Any]]) -> dict[str, Any]:
    """The last logged value of every reward component and monitor (what the manifest records)."""
    out: dict[str, Any] = {}
    for entry in log_history:
        for key, value in entry.items():
            if key.startswith(("rubric/", "monitor/", "probe/", "rewards/", "reward", "kl", "train_")):
                out[key] = value
    return out


def write_log_history(out: Path, stage: str, log_history: list[dict[str, Any]]) -> Path:
    """The trainer's whole log history beside the manifest (checkpoints hold it only up to their step): what
    ``promedical grpo curves`` plots."""
    path = out / f"{stage}.log_history.json"
    write_json(path, log_history)
    return path
