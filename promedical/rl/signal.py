"""Is there anything to learn from? Per-step group-signal diagnostics of a GRPO run, and the dead-signal guard.

GRPO learns only from differences between the completions of one prompt: a group whose completions all got the
same reward has zero advantage everywhere and contributes nothing but the KL term. ``group_stats`` (pure) reads a
batch of rewards in TRL's order -- the ``num_generations`` completions of one prompt are consecutive -- and gives
the share of groups with no signal and the mean within-group reward std. ``None`` rewards (unscored completions,
which TRL excludes from the advantage) are left out of their group: a group with fewer than two scored completions
carries no signal, exactly like a group of equal rewards. (TRL's own ``frac_reward_zero_std`` counts a group whose
rewards are all ``None`` as *having* signal, since the NaN std is not close to zero, and it is a share of
completions, not of groups.)

``SignalTracker`` is the stateful part, fed by the reward function after each call (``RubricReward`` and the
scalar ``ScalarRMReward`` alike). TRL calls the reward function once per generation batch with each process's
slice of it; the tracker gathers the slices across processes in rank order (the order of TRL's own ``gather``
before it splits the rewards into groups) and carries an incomplete group over to the next call. Each step's
record is keyed by the optimiser step the rewards feed (``global_step + 1``, the ``step`` of TRL's log entry).
A step is *dead* when more than ``max_zero_std_share`` of its groups carry no signal; after ``warn_after`` dead
steps in a row the tracker warns once per streak, and with ``stop_after_dead_steps`` it asks the trainer to stop
(``signal_callback``), after which the run ends with a ``UserError`` (exit 2) saying what to change.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

METRIC_PREFIX = "signal"
ZERO_STD_TOL = 1e-6  # rewards of one group closer than this count as equal
Warn = Callable[[str], None]
ADVICE = ("raise num_generations or generation.temperature, or use a judge whose verdicts depend on the response "
          "(a reward that is the same for every completion of a prompt teaches nothing)")


@dataclass(frozen=True)
class GroupStats:
    """Signal of one batch of complete groups."""

    groups: int
    zero_std_groups: int  # fewer than two scored completions, or all scored rewards equal
    unscorable_groups: int  # fewer than two scored completions (counted in zero_std_groups too)
    group_std: float | None  # mean sample std over the groups with at least two scored completions

    @property
    def zero_std_share(self) -> float | None:
        return self.zero_std_groups / self.groups if self.groups else None


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1), the one TRL's ``nanstd`` scales advantages by."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def group_stats(rewards: Sequence[float | None], group_size: int) -> GroupStats:
    """Stats of ``rewards`` split into consecutive groups of ``group_size`` (the length must be a multiple)."""
    if group_size < 1 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    zero = unscorable = 0
    stds: list[float] = []
    for start in range(0, len(rewards), group_size):
        scored = [float(r) for r in rewards[start:start + group_size] if r is not None and math.isfinite(r)]
        if len(scored) < 2:
            zero += 1
            unscorable += 1
            continue
        std = _std(scored)
        stds.append(std)
        if std <= ZERO_STD_TOL:
            zero += 1
    return GroupStats(groups=len(rewards) // group_size, zero_std_groups=zero, unscorable_groups=unscorable,
                      group_std=math.fsum(stds) / len(stds) if stds else None)


@dataclass
class StepSignal:
    """One optimiser step's groups (several reward calls may feed one step)."""

    step: int
    groups: int = 0
    zero_std_groups: int = 0
    unscorable_groups: int = 0
    std_sum: float = 0.0
    std_groups: int = 0

    def add(self, stats: GroupStats) -> None:
        self.groups += stats.groups
        self.zero_std_groups += stats.zero_std_groups
        self.unscorable_groups += stats.unscorable_groups
        if stats.group_std is not None:
            scored = stats.groups - stats.unscorable_groups
            self.std_sum += stats.group_std * scored
            self.std_groups += scored

    @property
    def zero_std_share(self) -> float | None:
        return self.zero_std_groups / self.groups if self.groups else None

    @property
    def group_std(self) -> float | None:
        return self.std_sum / self.std_groups if self.std_groups else None

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "groups": self.groups, "zero_std_groups": self.zero_std_groups,
                "unscorable_groups": self.unscorable_groups, "zero_std_share": self.zero_std_share,
                "group_std": self.group_std}


def _stderr_warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _gather(values: list[float | None]) -> list[float | None]:
    """Every process's rewards in rank order (the order of TRL's own gather); the list itself on one process."""
    from accelerate import PartialState
    from accelerate.utils import gather_object

    if PartialState().num_processes <= 1:
        return values
    return list(gather_object(values))


def _longest(flags: Iterable[bool]) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


@dataclass
class SignalTracker:
    group_size: int
    max_zero_std_share: float = 0.5  # a step is dead when more than this share of its groups has no signal
    warn_after: int = 5  # warn after this many consecutive dead steps (once per streak)
    stop_after_dead_steps: int | None = None  # stop the run after this many consecutive dead steps; None: never
    warn: Warn = _stderr_warn
    steps: list[StepSignal] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    gather: Callable[[list[float | None]], list[float | None]] = _gather
    _pending: list[float | None] = field(default_factory=list)
    _warned: bool = False  # warned in the current streak

    def observe(self, rewards: Sequence[float | None], trainer_state: Any = None,
                log_metric: Callable[[str, float], None] | None = None) -> StepSignal | None:
        """Feed one reward call's rewards (this process's slice); returns the step's record so far."""
        step = int(getattr(trainer_state, "global_step", 0) or 0) + 1
        batch = self._pending + self.gather(list(rewards))
        complete = len(batch) - len(batch) % self.group_size
        self._pending = batch[complete:]
        if not complete:
            return None
        if not self.steps or self.steps[-1].step != step:
            self.steps.append(StepSignal(step))
        record = self.steps[-1]
        record.add(group_stats(batch[:complete], self.group_size))
        if log_metric is not None:
            # the step's value so far; TRL averages a metric logged several times between two log entries
            if record.zero_std_share is not None:
                log_metric(f"{METRIC_PREFIX}/zero_std_share", record.zero_std_share)
            if record.group_std is not None:
                log_metric(f"{METRIC_PREFIX}/group_std", record.group_std)
        self._check(main=bool(getattr(trainer_state, "is_world_process_zero", True)))
        return record

    def dead(self, record: StepSignal) -> bool:
        share = record.zero_std_share
        return share is not None and share > self.max_zero_std_share

    def streak(self) -> int:
        n = 0
        for record in reversed(self.steps):
            if not self.dead(record):
                break
            n += 1
        return n

    def _check(self, main: bool) -> None:
        streak = self.streak()
        if streak == 0:
            self._warned = False
            return
        step = self.steps[-1].step
        if streak >= self.warn_after and not self._warned:
            self._warned = True
            message = (f"no reward signal: more than {self.max_zero_std_share:.0%} of the groups had one reward for "
                       f"all their completions for {streak} consecutive steps (up to step {step}), so the policy "
                       f"is not learning; {ADVICE}")
            self.warnings.append({"step": step, "streak": streak, "message": message})
            if main:
                self.warn(message)
        if self.stop_after_dead_steps is not None and streak >= self.stop_after_dead_steps and not self.stop_reason:
            self.stop_reason = (
                f"signal.stop_after_dead_steps: stopped at step {step}: more than {self.max_zero_std_share:.0%} of "
                f"the groups had zero reward std for {streak} consecutive steps; {ADVICE}")

    def summary(self) -> dict[str, Any]:
        """Per-step series plus the aggregate over the run (what ``--json`` and the manifest hold)."""
        groups = sum(r.groups for r in self.steps)
        zero = sum(r.zero_std_groups for r in self.steps)
        std_groups = sum(r.std_groups for r in self.steps)
        return {
            "group_size": self.group_size,
            "max_zero_std_share": self.max_zero_std_share,
            "warn_after": self.warn_after,
            "stop_after_dead_steps": self.stop_after_dead_steps,
            "steps": [r.as_dict() for r in self.steps],
            "aggregate": {
                "steps": len(self.steps),
                "groups": groups,
                "zero_std_groups": zero,
                "zero_std_share": zero / groups if groups else None,
                "group_std": math.fsum(r.std_sum for r in self.steps) / std_groups if std_groups else None,
                "dead_steps": sum(1 for r in self.steps if self.dead(r)),
                "longest_dead_streak": _longest(self.dead(r) for r in self.steps),
            },
            "warnings": list(self.warnings),
            "stopped": self.stop_reason,
        }


RATE_KEYS = (("rubric/unscored_rate", "unscored_rate"), ("scalar/unscored_rate", "unscored_rate"),
             ("rubric/veto_rate", "veto_rate"), ("frac_reward_zero_std", "trl_frac_reward_zero_std"))


def with_rates(signal: dict[str, Any], log_history: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The per-step series joined with the rates the reward function already logs for the same step (unscored and
    veto rates from ``rubric/*``; ``scalar/unscored_rate`` for the scalar baseline, which has no veto) and TRL's
    ``frac_reward_zero_std`` for comparison. Nothing is recomputed."""
    rates: dict[int, dict[str, float]] = {}
    for entry in log_history:
        step = entry.get("step")
        if not isinstance(step, int):
            continue
        for key, name in RATE_KEYS:
            if isinstance(entry.get(key), int | float):
                rates.setdefault(step, {})[name] = entry[key]
    return {**signal, "steps": [{**record, **rates.get(record["step"], {})} for record in signal["steps"]]}


def signal_callback(tracker: SignalTracker) -> Any:
    """A ``TrainerCallback`` that stops the trainer once ``tracker`` has a stop reason (transformers is imported
    here: the tracker itself needs none)."""
    from transformers import TrainerCallback

    class SignalCallback(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if tracker.stop_reason:
                control.should_training_stop = True

    return SignalCallback()
