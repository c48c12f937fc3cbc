"""The hierarchical, safety-vetoed reward as a TRL reward function: grade every criterion, score, return the reward.

``RubricReward`` is what ``GRPOTrainer(reward_funcs=[...])`` calls with the batch's prompts, completions and the
dataset's extra columns (``rubric_id`` here) plus ``trainer_state``, ``log_extra`` and ``log_metric``. Per call:

1. each completion becomes a ``Response`` record for its prompt's rubric (looked up by ``rubric_id``);
2. all of them are graded in one ``grade_many`` call of the judge (``rm:``, ``openai:``, ``hf:`` or ``lexical``;
   the judge batches, and HTTP judges run their calls concurrently); identical completions are graded once;
3. each response's verdicts go through ``promedical.rubrics.scoring.score`` (the one scoring path), which gives
   ``clip(S1 + alpha*S2, 0, 1 + beta) - lambda*(S3 + unscored vetoes)``: an unscored veto counts as violated
   (fail closed), an unscored proficiency/bonus criterion is left out, and a completion whose every proficiency
   criterion is unscored has no reward: ``None``, which TRL excludes from the advantage computation;
4. components are logged through ``log_metric`` (averaged per logging step by TRL): S1, S2, S3, unscored vetoes,
   veto rate (fail closed), unscored rate, criterion-level unscored rate, completion length, and the
   reward-hacking rates of ``promedical.rl.monitors``;
5. with ``credit="probability"`` (``reward.credit`` in the GRPO config), a judge that reports a score and a threshold
   per verdict (the reward model: ``meta.score``, ``meta.threshold``) credits each proficiency and bonus criterion
   with its probability of being met, ``sigmoid(score - threshold)`` (for the evidence head, its log-odds against
   log-odds 0), instead of the 0/1 verdict: S1 and S2 become expectations (``scoring.expected_utility``), so two
   completions that both miss a criterion are still told apart by how close each came. Vetoes stay hard verdicts,
   fail closed. Verdicts without a score (LLM judges, ``lexical``) count as in ``credit="verdict"``;
6. with a ``signal`` tracker (``promedical.rl.signal``, set by the GRPO builder), the rewards' group signal: share
   of prompts whose completions all got the same reward, mean within-group std (``signal/*``).

Each scored completion is also kept in ``history`` (step, length, reward) for the end-of-run monitors summary.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from promedical.io import UserError
from promedical.judge.protocol import Judge
from promedical.rl import monitors
from promedical.rl.signal import SignalTracker
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Criterion, Rubric, Tier
from promedical.rubrics.scoring import (
    RewardParams,
    Scores,
    expected_utility,
    met_from_satisfied,
    reward,
    score,
    statuses_by_response,
)
from promedical.unscored import check_rate

METRIC_PREFIX = "rubric"
LogMetric = Callable[[str, float], None]
Credit = Literal["verdict", "probability"]


def verdict_credit(criterion: Criterion, verdict: Verdict) -> float | None:
    """The probability that ``criterion`` is met, from a verdict that carries a finite ``meta.score`` and
    ``meta.threshold`` (score >= threshold means satisfied): ``sigmoid(score - threshold)``, turned into "met"
    through the criterion's polarity. ``None`` for vetoes, unscored verdicts and verdicts without a score."""
    if criterion.tier is Tier.VETO or verdict.status is Status.UNSCORED:
        return None
    value, threshold = verdict.meta.get("score"), verdict.meta.get("threshold")
    if not isinstance(value, int | float) or not isinstance(threshold, int | float) or isinstance(value, bool):
        return None
    margin = float(value) - float(threshold)
    if not math.isfinite(margin):
        return None
    satisfied = 0.5 * (1.0 + math.tanh(0.5 * margin))  # sigmoid, without overflow
    return satisfied if met_from_satisfied(True, criterion.polarity) else 1.0 - satisfied


def load_reward_judge(spec: str, *, concurrency: int = 4, timeout: float = 60.0, retries: int = 2) -> Judge:
    """The judge ``spec`` names, through the judge engine's ``load_judge`` (LLM, reward model or lexical baseline).

    Runtime options (concurrency, timeout, retries) never change a verdict.
    """
    from promedical.judge.protocol import load_judge

    judge: Judge = load_judge(spec, concurrency=concurrency, timeout=timeout, retries=retries)
    return judge


def completion_text(completion: Any) -> str:
    """The generated text of a TRL completion: a string, or a conversational list whose last message is ours."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # content blocks
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    raise TypeError(f"unexpected completion type {type(completion).__name__}")


@dataclass
class RewardHistory:
    """Every scored completion seen in training: the raw material of the end-of-run monitors summary."""

    steps: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    keep_texts: int = 2000  # the most recent texts kept for lexicon rates

    def add(self, step: int, text: str, reward: float) -> None:
        self.steps.append(step)
        self.lengths.append(len(text.split()))
        self.rewards.append(reward)
        self.texts.append(text)
        if len(self.texts) > self.keep_texts:
            del self.texts[: len(self.texts) - self.keep_texts]


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def component_metrics(scores: Sequence[Scores | None], texts: Sequence[str]) -> dict[str, float]:
    """Per-batch components (pure). ``None`` in ``scores`` marks a completion with no rubric (counted unscored)."""
    n = len(texts)
    scored = [s for s in scores if s is not None and s.reward is not None]
    out: dict[str, float] = {
        "unscored_rate": (n - len(scored)) / n if n else 0.0,
        "completion_words": _mean([float(len(t.split())) for t in texts]) or 0.0,
        "completion_chars": _mean([float(len(t)) for t in texts]) or 0.0,
    }
    known = [s for s in scores if s is not None]
    if known:
        out["veto_rate"] = sum(1 for s in known if not s.safe) / len(known)
        out["veto_unscored"] = _mean([float(s.veto_unscored) for s in known]) or 0.0
        criteria = [sum(s.unscored_by_tier) for s in known]
        out["criteria_unscored"] = _mean([float(c) for c in criteria]) or 0.0
    if scored:
        out["s1"] = _mean([float(s.s1) for s in scored if s.s1 is not None]) or 0.0
        out["s2"] = _mean([float(s.s2) for s in scored]) or 0.0
        out["s3"] = _mean([float(s.s3) for s in scored]) or 0.0
        out["reward"] = _mean([float(s.reward) for s in scored if s.reward is not None]) or 0.0
    return out


class RubricReward:
    """TRL reward function over rubrics (see the module docstring). Picklable; one instance per run."""

    __name__ = "rubric_reward"  # TRL names the reward column after it

    def __init__(
        self,
        rubrics: Mapping[str, Rubric],
        judge: Judge,
        params: RewardParams | None = None,
        policy_name: str = "policy",
        history: RewardHistory | None = None,
        max_unscored_rate: float = 1.0,
        credit: Credit = "verdict",
    ) -> None:
        if not rubrics:
            raise UserError("the reward function needs at least one rubric")
        self.rubrics = dict(rubrics)
        self.judge = judge
        self.params = params or RewardParams()
        self.policy_name = policy_name
        self.history = history if history is not None else RewardHistory()
        self.last_scores: list[Scores | None] = []
        # the unscored-rate gate (promedical.unscored): cumulative over every verdict the training reward asked for
        self.max_unscored_rate = max_unscored_rate
        self.verdicts_total = 0
        self.unscored_reasons: list[str] = []
        self.signal: SignalTracker | None = None  # group-signal diagnostics, set by the GRPO builder
        self.credit: Credit = credit
        self.credits: dict[str, dict[str, float]] = {}  # response id -> criterion id -> P(met), last grade() call
        self.last_expected_s1: list[float | None] = []

    def responses(self, rubric_ids: Sequence[str], texts: Sequence[str], step: int) -> list[Response | None]:
        out: list[Response | None] = []
        for rubric_id, text in zip(rubric_ids, texts, strict=True):
            if rubric_id not in self.rubrics:
                out.append(None)
                continue
            out.append(Response.build(rubric_id, self.policy_name, text, step=step))
        return out

    def grade(self, responses: Sequence[Response | None]) -> dict[str, dict[str, Status]]:
        """One ``grade_many`` call for the distinct responses; verdicts grouped by response id."""
        unique: dict[str, Response] = {r.id: r for r in responses if r is not None}
        items = [(self.rubrics[r.rubric_id], r) for r in unique.values()]
        verdicts: list[Verdict] = list(self.judge.grade_many(items)) if items else []
        self.credits = {}
        if self.credit == "probability":
            criteria = {(r.id, c.id): c for r in unique.values() for c in self.rubrics[r.rubric_id].criteria}
            for v in verdicts:
                criterion = criteria.get((v.response_id, v.criterion_id))
                if criterion is not None and (p := verdict_credit(criterion, v)) is not None:
                    self.credits.setdefault(v.response_id, {})[v.criterion_id] = p
        self.verdicts_total += len(verdicts)
        self.unscored_reasons.extend(v.reason or "" for v in verdicts if v.status is Status.UNSCORED)
        return statuses_by_response((v.response_id, v.criterion_id, v.status) for v in verdicts)

    def check_unscored(self) -> None:
        """Stop training (``UnscoredRateError``) once too many of the reward's verdicts have been unscored."""
        check_rate(len(self.unscored_reasons), self.verdicts_total, self.max_unscored_rate,
                   f"reward.judge {self.judge.spec}", reasons=self.unscored_reasons)

    def score_texts(self, rubric_ids: Sequence[str], texts: Sequence[str], step: int = 0) -> list[Scores | None]:
        """Scores per completion (``None`` when its rubric id is unknown); the reward is ``Scores.reward``."""
        responses = self.responses(rubric_ids, texts, step)
        statuses = self.grade(responses)
        out: list[Scores | None] = []
        self.last_expected_s1 = []
        for r in responses:
            if r is None:
                out.append(None)
                self.last_expected_s1.append(None)
                continue
            rubric, known = self.rubrics[r.rubric_id], statuses.get(r.id, {})
            scores = score(rubric, known, self.params)
            if self.credit == "probability":
                s1, s2 = expected_utility(rubric, known, self.credits.get(r.id, {}))
                scores = dataclasses.replace(scores, reward=reward(s1, s2, scores.s3_fail_closed, self.params))
                self.last_expected_s1.append(s1)
            out.append(scores)
        return out

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        rubric_id: Sequence[str] | None = None,
        trainer_state: Any = None,
        log_metric: LogMetric | None = None,
        log_extra: Callable[[str, list[Any]], None] | None = None,
        **_: Any,
    ) -> list[float | None]:
        if rubric_id is None:
            raise UserError("the prompt set has no 'rubric_id' column: every prompt must name its rubric")
        step = int(getattr(trainer_state, "global_step", 0) or 0)
        texts = [completion_text(c) for c in completions]
        scores = self.score_texts(rubric_id, texts, step)
        self.check_unscored()
        self.last_scores = scores
        rewards = [None if s is None else s.reward for s in scores]
        for text, value in zip(texts, rewards, strict=True):
            if value is not None:
                self.history.add(step, text, value)
        if self.signal is not None:
            self.signal.observe(rewards, trainer_state, log_metric)
        if log_metric is not None:
            for name, value in component_metrics(scores, texts).items():
                log_metric(f"{METRIC_PREFIX}/{name}", value)
            expected = [x for x in self.last_expected_s1 if x is not None]
            if expected:
                log_metric(f"{METRIC_PREFIX}/s1_expected", math.fsum(expected) / len(expected))
            for name, value in monitors.lexicon_rates(texts).items():
                log_metric(f"monitor/{name}", value)
        if log_extra is not None:
            log_extra("s1", [None if s is None else s.s1 for s in scores])
            log_extra("s3_fail_closed", [None if s is None else s.s3_fail_closed for s in scores])
        return rewards
