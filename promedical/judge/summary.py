"""Run summaries: verdict counts, the most common reasons for ``unscored``, and spending."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from promedical.judge.usage import Usage
from promedical.rubrics.records import Status, Verdict


def _reason_kind(reason: str) -> str:
    """The reason without its per-item details (for grouping): up to the first colon or parenthesis."""
    for stop in (":", "("):
        head, sep, _ = reason.partition(stop)
        if sep:
            reason = head
    return reason.strip()


def summarise_verdicts(verdicts: Sequence[Verdict], usage: Usage | None = None) -> dict[str, Any]:
    counts = Counter(v.status for v in verdicts)
    reasons = Counter(_reason_kind(v.reason or "") for v in verdicts if v.status is Status.UNSCORED)
    return {
        "verdicts": len(verdicts),
        "responses": len({v.response_id for v in verdicts}),
        "met": counts[Status.MET],
        "unmet": counts[Status.UNMET],
        "unscored": counts[Status.UNSCORED],
        "unscored_reasons": dict(reasons.most_common(5)),
        **(usage.as_dict() if usage is not None else {}),
    }
