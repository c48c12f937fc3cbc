"""The paper's comparison baselines, driven by the same config style as GRPO: the implicit-RM reward lives here, the
DPO run in ``promedical.rl.dpo``.

* **Implicit-RM GRPO** (``reward.mode: scalar`` in a GRPO config): the same GRPO builder, but the reward is the
  single score of a reward model trained *without* criteria (the ``implicit/1`` template of
  ``promedical.reward.template``): a scalar Bradley-Terry RM that sees only instruction and response. No tiers,
  no veto: exactly what the hierarchical reward is compared against.
* **DPO** (``promedical dpo train``, ``promedical.rl.dpo``): TRL's ``DPOTrainer`` on the lexicographic preference
  pairs exported by the data pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from promedical.io import UserError
from promedical.llm.spec import parse_spec
from promedical.rl import monitors
from promedical.rl.rewards import RewardHistory, completion_text
from promedical.rl.signal import SignalTracker
from promedical.rubrics.schema import Rubric
from promedical.unscored import check_rate


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

        parsed = parse_spec(spec)
        if parsed.backend != "rm":
            raise UserError(f"reward.judge {spec!r}: the scalar baseline needs rm:<checkpoint of an implicit RM>")
        path = parsed.target
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
        from promedical.reward.inputs import CriterionInput, Group
        from promedical.reward.score import score_shared

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
