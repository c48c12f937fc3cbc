"""Train the criterion-conditioned reward model with TRL's ``RewardTrainer`` (wrapped, not forked).

Rows are tokenised here with the versioned template (``template.Encoder``) into ``chosen_ids``/``rejected_ids``,
so training sees exactly the token ids the scorer and the judge will see later; TRL's own collator pads them
and its ``compute_loss`` is the Bradley-Terry loss ``-log sigmoid(r_chosen - r_rejected)``.

With ``pointwise_weight > 0`` the thin subclass ``PointwiseRewardTrainer`` adds
``pointwise_weight * BCE(sigmoid(r), satisfied)`` on pointwise rows (the scalar doubles as the logit of "this
criterion is satisfied"); everything else (optimiser, checkpoints, DDP through accelerate) stays TRL's.

Outputs under ``output_dir``: ``checkpoints/`` (Trainer checkpoints; a re-run resumes from the last one),
``model/`` (final weights, LoRA merged, tokenizer, ``rm.json`` card with thresholds when ``val_data`` is given)
and ``train.config.json`` + ``train.manifest.json``. Data-parallel runs (``accelerate launch``) write from the
main process only.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promedical.reward.config import RMTrainConfig
from promedical.reward.data import LabelledData, PairRow, PointRow, read_many
from promedical.reward.model import RewardModel, RMCard, load_backbone, write_card
from promedical.reward.template import Encoder, get_template

MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"


def tokenise_rows(enc: Encoder, pairs: Sequence[PairRow], points: Sequence[PointRow]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for p in pairs:
        suffix = enc.suffix(p.criterion, p.tier, p.polarity)
        rows.append({
            "chosen_ids": enc.prefix(p.instruction, p.chosen) + suffix,
            "rejected_ids": enc.prefix(p.instruction, p.rejected) + suffix,
            "label": -1.0,
        })
    for q in points:
        ids = enc.prefix(q.instruction, q.response) + enc.suffix(q.criterion, q.tier, q.polarity)
        rows.append({"chosen_ids": ids, "rejected_ids": [], "label": float(q.satisfied)})
    return rows


def _sample(items: list[Any], cap: int | None, seed: int) -> list[Any]:
    if cap is None or len(items) <= cap:
        return items
    return random.Random(seed).sample(items, cap)


def _trainer_class(pointwise: bool) -> Any:
    import torch
    from torch import nn
    from trl import RewardTrainer
    from trl.trainer.utils import pad

    if not pointwise:
        return RewardTrainer

    class PointwiseRewardTrainer(RewardTrainer):
        """RewardTrainer plus a pointwise BCE term; batches mix pair rows (label -1) and point rows (0/1)."""

        pointwise_weight: float = 1.0

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            n_pairs = int(inputs.pop("n_pairs"))
            point_labels = inputs.pop("point_labels")
            inputs["use_cache"] = False
            outputs = model(**inputs)
            scores = outputs.logits.squeeze(-1)
            loss = scores.sum() * 0.0
            if n_pairs:
                chosen, rejected = scores[:n_pairs], scores[n_pairs : 2 * n_pairs]
                loss = loss - nn.functional.logsigmoid(chosen - rejected).mean()
                self._metrics["train" if model.training else "eval"]["accuracy"].append(
                    (chosen > rejected).float().mean().item())
            if point_labels.numel():
                points = scores[2 * n_pairs :]
                loss = loss + self.pointwise_weight * nn.functional.binary_cross_entropy_with_logits(
                    points, point_labels.to(points.dtype))
            return (loss, outputs) if return_outputs else loss

    def collate(examples: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
        pair_rows = [e for e in examples if e["label"] < 0]
        point_rows = [e for e in examples if e["label"] >= 0]
        seqs = ([e["chosen_ids"] for e in pair_rows] + [e["rejected_ids"] for e in pair_rows]
                + [e["chosen_ids"] for e in point_rows])
        tensors = [torch.tensor(s, dtype=torch.long) for s in seqs]
        return {
            "input_ids": pad(tensors, padding_value=pad_id, padding_side="right"),
            "attention_mask": pad([torch.ones_like(t) for t in tensors], padding_value=0, padding_side="right"),
            "n_pairs": len(pair_rows),
            "point_labels": torch.tensor([e["label"] for e in point_rows], dtype=torch.float),
        }

    PointwiseRewardTrainer.collate = staticmethod(collate)  # type: ignore[attr-defined]
    return PointwiseRewardTrainer


def build_trainer(cfg: RMTrainConfig, data: LabelledData, report_to: str = "none") -> tuple[Any, Any, Any]:
    """The TRL trainer, the model and the tokenizer for ``cfg`` on ``data`` (train split)."""
    from datasets import Dataset
    from trl import RewardConfig

    pointwise = cfg.pointwise_weight > 0
    model, tokenizer = load_backbone(cfg.backbone, seed=cfg.seed)
    enc = Encoder.build(tokenizer, get_template(cfg.template), cfg.max_length)
    pairs = _sample(data.pairs, cfg.max_rows, cfg.seed)
    points = _sample(data.points, cfg.max_rows, cfg.seed) if pointwise else []
    rows = tokenise_rows(enc, pairs, points)
    if not rows:
        from promedical.io import UserError

        raise UserError(f"{cfg.train_data[0]}: -: -: no training rows (pairs, or points with pointwise_weight > 0)")
    columns = ["chosen_ids", "rejected_ids"] + (["label"] if pointwise else [])
    # One seeded shuffle here and a sequential sampler in the trainer: every data-parallel layout then sees the
    # same global batches in the same order, so N processes x batch B trains like 1 process x batch N*B.
    dataset = Dataset.from_list([{k: r[k] for k in columns} for r in rows]).shuffle(seed=cfg.seed)
    if cfg.freeze_backbone:
        head = model.score if hasattr(model, "score") else model.classifier
        for param in model.parameters():
            param.requires_grad = False
        for param in head.parameters():
            param.requires_grad = True
    peft_config = None
    if cfg.lora is not None:
        from peft import LoraConfig, TaskType

        peft_config = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                                 lora_dropout=cfg.lora.dropout, target_modules=cfg.lora.target_modules)
    args = RewardConfig(
        output_dir=str(Path(cfg.output_dir) / CHECKPOINT_DIR),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a fraction of the total steps
        max_length=None,  # the template already truncates: nothing is filtered out
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        train_sampling_strategy="sequential",
        report_to=report_to,
        use_cpu=True,
        remove_unused_columns=not pointwise,
        disable_tqdm=True,
        dataloader_drop_last=False,
        center_rewards_coefficient=None,
    )
    cls = _trainer_class(pointwise)
    kwargs: dict[str, Any] = {}
    if pointwise:
        kwargs["data_collator"] = lambda ex: cls.collate(ex, tokenizer.pad_token_id)
    trainer = cls(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config,
                  **kwargs)
    if pointwise:
        trainer.pointwise_weight = cfg.pointwise_weight
    trainer.row_counts = {"pairs": len(pairs), "points": len(points), "rows": len(rows)}
    return trainer, model, tokenizer


def last_checkpoint(cfg: RMTrainConfig) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = Path(cfg.output_dir) / CHECKPOINT_DIR
    return get_last_checkpoint(str(folder)) if cfg.resume and folder.is_dir() else None


def save_final(trainer: Any, tokenizer: Any, cfg: RMTrainConfig) -> RewardModel:
    """Merge LoRA (if any), save weights + tokenizer + card under ``output_dir/model``; returns it for scoring."""
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    target = Path(cfg.output_dir) / MODEL_DIR
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    card = RMCard(backbone=cfg.backbone, template=cfg.template, max_length=cfg.max_length, lora=cfg.lora is not None,
                  training={"config": cfg.model_dump(mode="json"), "counts": trainer.row_counts})
    write_card(target, card)
    model.eval()
    return RewardModel(model=model, tokenizer=tokenizer, card=card, path=str(target))


def run(cfg: RMTrainConfig) -> dict[str, Any]:
    """Train (resuming when possible); returns the summary. Calibration and the manifest are the caller's."""
    data = read_many(cfg.train_data, cfg.derive_pairs, cfg.max_pairs_per_criterion)
    trainer, _, tokenizer = build_trainer(cfg, data)
    resume = last_checkpoint(cfg)
    result = trainer.train(resume_from_checkpoint=resume)
    summary: dict[str, Any] = {
        "output_dir": cfg.output_dir,
        "resumed_from": resume,
        "train_loss": float(result.training_loss),
        "global_step": int(result.global_step),
        "counts": {**trainer.row_counts, "notes": dict(data.notes)},
        "world_size": int(trainer.args.world_size),
        "log_history": [h for h in trainer.state.log_history if "loss" in h],
        "is_main_process": bool(trainer.is_world_process_zero()),
    }
    if trainer.is_world_process_zero():
        rm = save_final(trainer, tokenizer, cfg)
        summary["checkpoint"] = rm.path
        summary["_rm"] = rm
    return summary
