"""Train the criterion-conditioned reward model with TRL's ``RewardTrainer`` (wrapped, not forked).

Rows are tokenised here with the versioned template (``template.Encoder``) into ``chosen_ids``/``rejected_ids``,
so training sees exactly the token ids the scorer and the judge will see later; TRL's own collator pads them
and its ``compute_loss`` is the Bradley-Terry loss ``-log sigmoid(r_chosen - r_rejected)``.

With ``pointwise_weight > 0`` the thin subclass ``PointwiseRewardTrainer`` adds
``pointwise_weight * BCE(sigmoid(r), satisfied)`` on pointwise rows (the scalar doubles as the logit of "this
criterion is satisfied"); everything else (optimiser, checkpoints, DDP through accelerate) stays TRL's.

Input scheme ``windows/1`` (the default; ``promedical.reward.windows``): every response becomes one input per
window, and ``WindowRewardTrainer`` pools each response's window scores per criterion exactly as scoring does
(max for required, min for prohibited, mean for the implicit template) before the same Bradley-Terry and
pointwise terms, so the gradient reaches the window that carries the evidence (multiple-instance learning).
``head/1`` trains as before windows existed (TRL's own loss on head-truncated inputs).

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

from promedical.reward.config import RMTrainConfig, card_windows
from promedical.reward.data import LabelledData, PairRow, PointRow
from promedical.reward.model import RewardModel, RMCard, load_backbone, write_card
from promedical.reward.prepare import prepare
from promedical.reward.template import Encoder, get_template
from promedical.reward.windows import INPUT_WINDOWS, Pool, TruncationStats, pool_kind

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


POOL_CODES: dict[Pool, int] = {"max": 0, "min": 1, "mean": 2}


def tokenise_windowed(enc: Encoder, pairs: Sequence[PairRow], points: Sequence[PointRow],
                      stats: TruncationStats | None = None) -> list[dict[str, Any]]:
    """Rows of scheme windows/1: each side is its windows' ids concatenated, with the window lengths beside them
    (flat int lists, as TRL's data handling expects), and the pooling code of the criterion. ``stats`` counts
    every side read (truncated = tokens in no window)."""
    def side(instruction: str, response: str, suffix: list[int]) -> tuple[list[int], list[int]]:
        windowed = enc.prefixes(instruction, response)
        if stats is not None:
            stats.add(windowed)
        windows = [[*prefix, *suffix] for prefix in windowed.prefixes]
        return [t for w in windows for t in w], [len(w) for w in windows]

    rows: list[dict[str, Any]] = []
    for p in pairs:
        suffix = enc.suffix(p.criterion, p.tier, p.polarity)
        chosen, chosen_lens = side(p.instruction, p.chosen, suffix)
        rejected, rejected_lens = side(p.instruction, p.rejected, suffix)
        rows.append({"chosen_ids": chosen, "chosen_lens": chosen_lens, "rejected_ids": rejected,
                     "rejected_lens": rejected_lens, "label": -1.0,
                     "pool": POOL_CODES[pool_kind(p.polarity, enc.template.explicit)]})
    for q in points:
        ids, lens = side(q.instruction, q.response, enc.suffix(q.criterion, q.tier, q.polarity))
        rows.append({"chosen_ids": ids, "chosen_lens": lens, "rejected_ids": [], "rejected_lens": [],
                     "label": float(q.satisfied), "pool": POOL_CODES[pool_kind(q.polarity, enc.template.explicit)]})
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


def _window_trainer_class() -> Any:
    import torch
    from torch import nn
    from trl import RewardTrainer
    from trl.trainer.utils import pad

    class WindowRewardTrainer(RewardTrainer):
        """Bradley-Terry on pairs plus ``pointwise_weight`` x BCE on points, each response's score pooled over
        its windows first (the pooling of ``promedical.reward.windows``)."""

        pointwise_weight: float = 0.0

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            n_pairs = int(inputs.pop("n_pairs"))
            counts = inputs.pop("window_counts").tolist()
            pools = inputs.pop("pools").tolist()
            point_labels = inputs.pop("point_labels")
            inputs["use_cache"] = False
            outputs = model(**inputs)
            flat = outputs.logits.squeeze(-1)
            pooled, at = [], 0
            for n, code in zip(counts, pools, strict=True):
                part = flat[at : at + n]
                at += n
                pooled.append(part.max() if code == 0 else part.min() if code == 1 else part.mean())
            scores = torch.stack(pooled)
            loss = flat.sum() * 0.0
            if n_pairs:
                chosen, rejected = scores[:n_pairs], scores[n_pairs : 2 * n_pairs]
                loss = loss - nn.functional.logsigmoid(chosen - rejected).mean()
                self._metrics["train" if model.training else "eval"]["accuracy"].append(
                    (chosen > rejected).float().mean().item())
            if point_labels.numel() and self.pointwise_weight > 0:
                points = scores[2 * n_pairs :]
                loss = loss + self.pointwise_weight * nn.functional.binary_cross_entropy_with_logits(
                    points, point_labels.to(points.dtype))
            return (loss, outputs) if return_outputs else loss

    def split(ids: list[int], lens: list[int]) -> list[list[int]]:
        out, at = [], 0
        for n in lens:
            out.append(ids[at : at + n])
            at += n
        return out

    def collate(examples: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
        pair_rows = [e for e in examples if e["label"] < 0]
        point_rows = [e for e in examples if e["label"] >= 0]
        sides = ([split(e["chosen_ids"], e["chosen_lens"]) for e in pair_rows]
                 + [split(e["rejected_ids"], e["rejected_lens"]) for e in pair_rows]
                 + [split(e["chosen_ids"], e["chosen_lens"]) for e in point_rows])
        pools = [e["pool"] for e in pair_rows] * 2 + [e["pool"] for e in point_rows]
        tensors = [torch.tensor(w, dtype=torch.long) for windows in sides for w in windows]
        return {
            "input_ids": pad(tensors, padding_value=pad_id, padding_side="right"),
            "attention_mask": pad([torch.ones_like(t) for t in tensors], padding_value=0, padding_side="right"),
            "n_pairs": len(pair_rows),
            "window_counts": torch.tensor([len(w) for w in sides], dtype=torch.long),
            "pools": torch.tensor(pools, dtype=torch.long),
            "point_labels": torch.tensor([e["label"] for e in point_rows], dtype=torch.float),
        }

    WindowRewardTrainer.collate = staticmethod(collate)  # type: ignore[attr-defined]
    return WindowRewardTrainer


def build_trainer(cfg: RMTrainConfig, data: LabelledData,
                  report_to: str | list[str] | None = None) -> tuple[Any, Any, Any]:
    """The TRL trainer, the model and the tokenizer for ``cfg`` on ``data`` (train split); ``report_to`` defaults
    to the config's."""
    from datasets import Dataset
    from trl import RewardConfig

    pointwise = cfg.pointwise_weight > 0
    windowed = cfg.input == INPUT_WINDOWS
    custom = pointwise or windowed  # our collator and loss; plain head/1 pairs use TRL's own
    model, tokenizer = load_backbone(cfg.backbone, seed=cfg.seed)
    enc = Encoder.build(tokenizer, get_template(cfg.template), cfg.max_length, card_windows(cfg))
    pairs = _sample(data.pairs, cfg.max_rows, cfg.seed)
    points = _sample(data.points, cfg.max_rows, cfg.seed) if pointwise else []
    truncation = TruncationStats()
    rows = tokenise_windowed(enc, pairs, points, truncation) if windowed else tokenise_rows(enc, pairs, points)
    if not rows:
        from promedical.io import UserError

        where = (cfg.train_data or [cfg.output_dir])[0]
        raise UserError(f"{where}: -: -: no training rows (pairs, or points with pointwise_weight > 0)")
    columns = (["chosen_ids", "chosen_lens", "rejected_ids", "rejected_lens", "label", "pool"] if windowed
               else ["chosen_ids", "rejected_ids"] + (["label"] if pointwise else []))
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
        report_to=cfg.report_to if report_to is None else report_to,
        use_cpu=True,
        remove_unused_columns=not custom,
        disable_tqdm=True,
        dataloader_drop_last=False,
        center_rewards_coefficient=None,
    )
    cls = _window_trainer_class() if windowed else _trainer_class(pointwise)
    kwargs: dict[str, Any] = {}
    if custom:
        kwargs["data_collator"] = lambda ex: cls.collate(ex, tokenizer.pad_token_id)
    trainer = cls(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config,
                  **kwargs)
    if custom:
        trainer.pointwise_weight = cfg.pointwise_weight
    trainer.row_counts = {"pairs": len(pairs), "points": len(points), "rows": len(rows)}
    if windowed:
        n_windows = [len(r["chosen_lens"]) for r in rows] + [len(r["rejected_lens"]) for r in rows if r["label"] < 0]
        trainer.row_counts["inputs"] = sum(n_windows)  # model inputs per epoch (windows of every side)
        trainer.row_counts["truncation"] = truncation.as_dict(cfg.input)
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
    windows = card_windows(cfg)
    card = RMCard(backbone=cfg.backbone, template=cfg.template, max_length=cfg.max_length, lora=cfg.lora is not None,
                  input=cfg.input, windows=windows,
                  training={"config": cfg.model_dump(mode="json"), "counts": trainer.row_counts})
    write_card(target, card)
    model.eval()
    return RewardModel(model=model, tokenizer=tokenizer, card=card, path=str(target))


def run(cfg: RMTrainConfig) -> dict[str, Any]:
    """Train (resuming when possible); returns the summary. Calibration and the manifest are the caller's."""
    data, _, hygiene = prepare(cfg)
    trainer, _, tokenizer = build_trainer(cfg, data)
    resume = last_checkpoint(cfg)
    result = trainer.train(resume_from_checkpoint=resume)
    summary: dict[str, Any] = {
        "output_dir": cfg.output_dir,
        "resumed_from": resume,
        "train_loss": float(result.training_loss),
        "global_step": int(result.global_step),
        "counts": {**trainer.row_counts, "notes": dict(data.notes)},
        "data": hygiene,
        "world_size": int(trainer.args.world_size),
        "log_history": [h for h in trainer.state.log_history if "loss" in h],
        "is_main_process": bool(trainer.is_world_process_zero()),
    }
    if trainer.is_world_process_zero():
        rm = save_final(trainer, tokenizer, cfg)
        summary["checkpoint"] = rm.path
        summary["_rm"] = rm
    return summary
