"""The trainer callback around ``promedical.rl.monitors``: probe the policy during training, summarise at the end.

Every ``probe_every`` steps (and at the first and last step) the current policy answers the fixed probe prompts
(greedy decoding, so successive probes differ only through the policy); the training reward and the held-out
judge grade the same answers. Each probe is appended to ``<run>/monitors.jsonl`` and to the trainer's
``log_history`` (so it lands in ``trainer_state.json``). At the end of training ``<run>/monitors_summary.json``
holds: length-reward correlation over every scored training completion, the lexicon rates of the first and last
quarter of training completions, and the probe series with the trend of its train/held-out gap.
Only the main process probes and writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from promedical.io import write_json
from promedical.rl import monitors
from promedical.rl.rewards import RewardHistory, RubricReward, component_metrics
from promedical.rubrics.schema import Rubric

TrainScorer = Callable[[list[Rubric], list[str], int], list[float | None]]


def _chat_prompt(rubric: Rubric) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in rubric.prompt]


def generate_answers(model: Any, tokenizer: Any, rubrics: list[Rubric], max_new_tokens: int) -> list[str]:
    """Greedy answers of ``model`` to each rubric's prompt (one left-padded batch)."""
    import torch

    texts = [tokenizer.apply_chat_template(_chat_prompt(r), tokenize=False, add_generation_prompt=True)
             for r in rubrics]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = model.generate(**{k: v.to(device) for k, v in batch.items()}, max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id)
    if was_training:
        model.train()
    width = batch["input_ids"].shape[1]
    return [tokenizer.decode(row[width:], skip_special_tokens=True) for row in out]


class MonitorCallback(TrainerCallback):
    def __init__(
        self,
        run_dir: str | Path,
        history: RewardHistory,
        train_scorer: TrainScorer | None = None,
        heldout_reward: RubricReward | None = None,
        probe_rubrics: list[Rubric] | None = None,
        probe_every: int = 10,
        max_new_tokens: int = 64,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.history = history
        self.train_scorer = train_scorer
        self.heldout_reward = heldout_reward
        self.probe_rubrics = probe_rubrics or []
        self.probe_every = probe_every
        self.max_new_tokens = max_new_tokens
        self.probes: list[dict[str, Any]] = []

    @property
    def probing(self) -> bool:
        return bool(self.probe_rubrics) and self.train_scorer is not None and self.heldout_reward is not None

    def probe(self, model: Any, tokenizer: Any, step: int) -> dict[str, Any]:
        assert self.train_scorer is not None and self.heldout_reward is not None
        answers = generate_answers(model, tokenizer, self.probe_rubrics, self.max_new_tokens)
        train = self.train_scorer(self.probe_rubrics, answers, step)
        heldout_scores = self.heldout_reward.score_texts([r.id for r in self.probe_rubrics], answers, step)
        heldout = [s.reward if s else None for s in heldout_scores]
        record = {"step": step, "time": time.time(),
                  **{f"probe/{k}": v for k, v in monitors.divergence(train, heldout).items()},
                  **{f"probe/heldout_{k}": v for k, v in component_metrics(heldout_scores, answers).items()},
                  **{f"probe/{k}": v for k, v in monitors.lexicon_rates(answers).items()},
                  "probe/train_rewards": train, "probe/heldout_rewards": heldout}
        self.probes.append(record)
        with open(self.run_dir / "monitors.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        return record

    def _maybe_probe(self, state: Any, kwargs: dict[str, Any], force: bool = False) -> None:
        if not self.probing or not state.is_world_process_zero:
            return
        if not force and state.global_step % self.probe_every:
            return
        if self.probes and self.probes[-1]["step"] == state.global_step:
            return
        model = kwargs.get("model")
        tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer")
        if model is None or tokenizer is None:
            return
        record = self.probe(model, tokenizer, state.global_step)
        state.log_history.append({k: v for k, v in record.items() if not isinstance(v, list) and k != "time"})

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._maybe_probe(state, kwargs, force=True)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._maybe_probe(state, kwargs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._maybe_probe(state, kwargs, force=True)
        if state.is_world_process_zero:
            write_json(self.run_dir / "monitors_summary.json", self.summary())

    def summary(self) -> dict[str, Any]:
        h = self.history
        quarter = max(len(h.texts) // 4, 1)
        gaps = [(p["step"], p["probe/gap"]) for p in self.probes if p.get("probe/gap") is not None]
        return {
            "lexicon_version": monitors.LEXICON_VERSION,
            "scored_completions": len(h.rewards),
            "length_reward": monitors.length_reward_correlation(h.lengths, h.rewards),
            "lexicon_first_quarter": monitors.lexicon_rates(h.texts[:quarter]),
            "lexicon_last_quarter": monitors.lexicon_rates(h.texts[-quarter:]),
            "reward_trend_per_step": monitors.trend(h.steps, h.rewards) if h.rewards else None,
            "probe": {
                "n_prompts": len(self.probe_rubrics),
                "series": self.probes,
                "gap_trend_per_step": monitors.trend([g[0] for g in gaps], [g[1] for g in gaps]) if gaps else None,
            },
        }
