"""Expert review rounds: send a batch of drafted rubrics out, read the decisions back, grow the few-shot pool.

A round is a batch file (rubric JSONL) the review app serves, and a decision file (``ReviewDecision`` JSONL) it
exports. ``ingest_decisions`` applies them: ``accept`` keeps the draft, ``edit`` replaces it with the expert's
corrected version, ``reject`` drops it (the critique is kept). Accepted and corrected rubrics join the few-shot
pool. Each round appends one record to ``review_rounds.jsonl`` with its expert pass rate (accepted as written /
decided), so convergence across rounds is visible.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from promedical.rubrics.review import ReviewDecision, pass_rate
from promedical.rubrics.schema import Rubric


@dataclass
class RoundResult:
    round: int
    rubrics: list[Rubric]  # the rubrics after the round: accepted, corrected, undecided (rejected ones removed)
    pool_additions: list[Rubric]
    rejected: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    decisions: Counter[str] = field(default_factory=Counter)
    pass_rate: float | None = None
    undecided: int = 0

    def record(self) -> dict[str, Any]:
        return {"round": self.round, "decisions": dict(self.decisions), "pass_rate": self.pass_rate,
                "pool_additions": len(self.pool_additions), "rejected": self.rejected,
                "undecided": self.undecided,
                "problems": self.problems[:20]}


def select_batch(rubrics: Sequence[Rubric], size: int, reviewed: set[str]) -> list[Rubric]:
    """The next review batch: drafted (model-written) rubrics not yet reviewed, in stable id order."""
    todo = [r for r in rubrics if r.provenance.author_kind == "model" and f"{r.id}@{r.version}" not in reviewed]
    return sorted(todo, key=lambda r: r.id)[:size]


def ingest_decisions(
    rubrics: Sequence[Rubric], decisions: Sequence[ReviewDecision], round_number: int
) -> RoundResult:
    """Apply one round's decisions; decisions for other rounds or unknown rubrics are reported, not applied."""
    by_key = {(r.id, r.version): r for r in rubrics}
    applied: dict[tuple[str, int], ReviewDecision] = {}
    result = RoundResult(round_number, [], [])
    for item in decisions:
        decision = item
        key = (decision.rubric_id, decision.rubric_version)
        if decision.round != round_number:
            result.problems.append(f"{decision.rubric_id}: decision is for round {decision.round}, not {round_number}")
            continue
        if key not in by_key:
            result.problems.append(f"{decision.rubric_id}@{decision.rubric_version}: not in this run's rubrics")
            continue
        if key in applied:
            result.problems.append(f"{decision.rubric_id}: more than one decision; the first one is applied")
            continue
        applied[key] = decision
    for key, rubric in by_key.items():
        found = applied.get(key)
        if found is None:
            result.rubrics.append(rubric)
            result.undecided += 1
            continue
        decision = found
        result.decisions[decision.decision] += 1
        if decision.decision == "accept":
            kept = rubric.model_copy(update={"provenance": rubric.provenance.model_copy(
                update={"review_round": round_number, "note": f"accepted by {decision.reviewer}"})})
            result.rubrics.append(kept)
            result.pool_additions.append(kept)
        elif decision.decision == "edit":
            assert decision.edited is not None
            result.rubrics.append(decision.edited)
            result.pool_additions.append(decision.edited)
        else:
            result.rejected.append({"rubric_id": rubric.id, "version": rubric.version,
                                    "reviewer": decision.reviewer, "critique": decision.critique})
    result.pass_rate = pass_rate(applied.values())
    return result
