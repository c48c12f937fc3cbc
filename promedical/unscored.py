"""The unscored-rate gate: a run whose judge (LLM, reward model) failed on too many criteria stops with a clear error.

An unscored verdict is a value, never a silent zero, and the scoring path leaves it out of S1 and S2. That is right
for the occasional failure, but a run where most verdicts are unscored measures nothing: its S1 is computed on a
handful of criteria, its vetoes all fail closed, and its numbers look like results. ``judge run``, ``judge
pairwise``, ``rm score``, ``bench run`` and ``grpo train`` therefore check the share of unscored verdicts against
``--max-unscored-rate`` (default ``DEFAULT_MAX_UNSCORED_RATE``; ``1`` turns the check off) and fail with one line
naming the output, the rate and the most common reason. Outputs already written are kept, so the reasons can be read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from promedical.io import UserError
from promedical.rubrics.records import Status, Verdict

DEFAULT_MAX_UNSCORED_RATE = 0.5
MAX_UNSCORED_HELP = ("Fail when more than this share of verdicts is unscored (judge or model failures); "
                     "1 turns the check off.")


class UnscoredRateError(UserError):
    """Too many verdicts unscored for the run's numbers to mean anything."""


def validate_max_rate(value: float, name: str = "--max-unscored-rate") -> float:
    if not 0.0 <= value <= 1.0:
        raise UserError(f"-: -: {name}: must be between 0 and 1, got {value}")
    return float(value)


def check_rate(unscored: int, total: int, max_rate: float, where: str, what: str = "verdicts",
               reasons: Iterable[str] = ()) -> None:
    """Raise ``UnscoredRateError`` when ``unscored / total`` exceeds ``max_rate`` (nothing to check when total is 0)."""
    if total <= 0 or max_rate >= 1.0 or unscored / total <= max_rate:
        return
    common = Counter(r for r in reasons if r).most_common(1)
    reason = f"; most common reason: {' '.join(common[0][0].split())[:160]!r}" if common else ""
    raise UnscoredRateError(
        f"{where}: -: status: {unscored} of {total} {what} unscored ({unscored / total:.1%}, limit "
        f"{max_rate:.0%}){reason}. Fix the judge or model, or raise --max-unscored-rate (1 turns the check off)")


def check_verdicts(verdicts: Iterable[Verdict], max_rate: float, where: str) -> None:
    """``check_rate`` over verdicts, with the most common unscored reason in the message."""
    reasons: list[str] = []
    total = 0
    for v in verdicts:
        total += 1
        if v.status is Status.UNSCORED:
            reasons.append(v.reason or "")
    check_rate(len(reasons), total, max_rate, where, reasons=reasons)
