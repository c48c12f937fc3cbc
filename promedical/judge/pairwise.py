"""Pairwise adjudication under the injected criteria, asked in both orders to expose position bias.

The prompt is ``pairwise/2`` (``promedical.judge.prompts``): both responses, the conversation and the criteria in
escaped, tagged blocks that the judge is told hold data only. For each pair of responses to the same rubric the
judge is asked twice, with (A, B) = (first, second) and then (second, first). Mapped back to response ids:

* both orders name the same response -> that response wins; both say tie -> ``tie``;
* the orders disagree (the verdict flips with position) -> ``inconsistent``, counted as a tie;
* either order has no usable answer after bounded re-asks -> ``unscored`` with the reason (never a loss).

``position_bias_rate`` = inconsistent pairs / pairs with both orders answered.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from promedical.hashing import content_hash
from promedical.judge.parse import parse_pairwise
from promedical.judge.prompts import DEFAULT_PAIRWISE, PAIRWISE_SCHEMA, reask_note, render_pairwise
from promedical.judge.usage import ProgressHook, Usage
from promedical.llm.protocol import GenerationParams, Generator, Request
from promedical.rubrics.records import Response
from promedical.rubrics.schema import Rubric

PAIRWISE_SCHEMA_VERSION = "promedical.pairwise/1"
OUTCOMES = ("first", "second", "tie", "inconsistent", "unscored")


@dataclass(frozen=True, slots=True)
class PairwiseConfig:
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    reasks: int = 2
    use_schema: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature, "seed": self.seed,
                "reasks": self.reasks, "use_schema": self.use_schema, "template_version": DEFAULT_PAIRWISE.version}


@dataclass
class _Order:
    rubric: Rubric
    shown_a: Response
    shown_b: Response
    winner: str | None = None  # "A" | "B" | "tie" as shown
    explanation: str | None = None
    raw: str | None = None
    problem: str = "not asked"
    attempts: int = 0
    calls: int = 0
    cached: bool = False

    def record(self) -> dict[str, Any]:
        return {"a": self.shown_a.id, "b": self.shown_b.id, "winner": self.winner, "explanation": self.explanation,
                "raw": self.raw, "problem": None if self.winner else self.problem, "attempts": self.attempts,
                "calls": self.calls, "cached": self.cached}

    def winner_id(self) -> str | None:
        return {"A": self.shown_a.id, "B": self.shown_b.id, "tie": "tie"}.get(self.winner or "")


def make_pairs(rubrics: dict[str, Rubric], responses: Sequence[Response]) -> list[tuple[Rubric, Response, Response]]:
    """Every unordered pair of responses to the same rubric, in a stable order (by response id)."""
    by_rubric: dict[str, list[Response]] = {}
    for response in responses:
        by_rubric.setdefault(response.rubric_id, []).append(response)
    pairs = []
    for rubric_id in sorted(by_rubric):
        group = sorted(by_rubric[rubric_id], key=lambda r: r.id)
        pairs += [(rubrics[rubric_id], a, b) for a, b in itertools.combinations(group, 2)]
    return pairs


class PairwiseJudge:
    def __init__(self, generator: Generator, config: PairwiseConfig | None = None) -> None:
        self.generator = generator
        self.config = config or PairwiseConfig()
        self.usage = Usage()

    @property
    def spec(self) -> str:
        return self.generator.spec

    def _request(self, order: _Order, attempt: int) -> Request:
        c = self.config
        note = reask_note(DEFAULT_PAIRWISE, order.problem[:300]) if attempt else None
        messages = render_pairwise(DEFAULT_PAIRWISE, order.rubric, order.shown_a.text, order.shown_b.text, reask=note)
        params = GenerationParams(temperature=c.temperature, max_tokens=c.max_tokens, seed=c.seed,
                                  json_schema=PAIRWISE_SCHEMA if c.use_schema else None)
        audit = {"template_version": DEFAULT_PAIRWISE.version, "rubric_id": order.rubric.id,
                 "response_ids": [order.shown_a.id, order.shown_b.id]}
        return Request(messages, params, audit=audit)

    def compare(
        self, pairs: Sequence[tuple[Rubric, Response, Response]], progress: ProgressHook | None = None
    ) -> list[dict[str, Any]]:
        """One outcome record per pair (see the module docstring)."""
        hook = progress or ProgressHook()
        orders = [(_Order(r, a, b), _Order(r, b, a)) for r, a, b in pairs]
        flat = [o for both in orders for o in both]
        for attempt in range(self.config.reasks + 1):
            todo = [o for o in flat if o.winner is None]
            if not todo:
                break
            hook.add_total(len(todo))
            completions = self.generator.generate([self._request(o, attempt) for o in todo], on_done=hook.advance)
            for order, completion in zip(todo, completions, strict=True):
                self.usage.add(completion)
                order.attempts += 1
                order.calls += completion.calls
                order.cached = completion.cached
                if not completion.ok:
                    order.problem = f"judge call failed: {completion.error}"
                    continue
                order.raw = completion.text
                winner, explanation, problem = parse_pairwise(completion.text)
                if winner is None:
                    cut = "; answer cut at max_tokens" if completion.finish_reason == "length" else ""
                    order.problem = (problem or "unusable answer") + cut
                else:
                    order.winner, order.explanation = winner, explanation
        return [self._outcome(r, a, b, ab, ba) for (r, a, b), (ab, ba) in zip(pairs, orders, strict=True)]

    def _outcome(self, rubric: Rubric, first: Response, second: Response, ab: _Order, ba: _Order) -> dict[str, Any]:
        reason = None
        winner_id: str | None = None
        if ab.winner is None or ba.winner is None:
            outcome = "unscored"
            failed = ab if ab.winner is None else ba
            reason = (f"order {failed.shown_a.id} vs {failed.shown_b.id}: {failed.problem} "
                      f"(after {failed.attempts} attempt(s))")
        elif ab.winner_id() == ba.winner_id():
            winner_id = ab.winner_id()
            outcome = {first.id: "first", second.id: "second"}.get(winner_id or "", "tie")
            winner_id = None if outcome == "tie" else winner_id
        else:
            outcome = "inconsistent"
        return {
            "schema_version": PAIRWISE_SCHEMA_VERSION,
            "id": "pw-" + content_hash([rubric.id, rubric.version, first.id, second.id]),
            "rubric_id": rubric.id,
            "first_id": first.id,
            "second_id": second.id,
            "outcome": outcome,
            "winner_id": winner_id,
            "reason": reason,
            "orders": [ab.record(), ba.record()],
            "judge": self.spec,
            "template_version": DEFAULT_PAIRWISE.version,
        }

    def close(self) -> None:
        self.generator.close()


def summarise_pairs(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    counts = Counter(r["outcome"] for r in records)
    answered = sum(counts[o] for o in ("first", "second", "tie", "inconsistent"))
    first_shown_wins = sum(1 for r in records for o in r["orders"] if o["winner"] == "A")
    shown = sum(1 for r in records for o in r["orders"] if o["winner"] is not None)
    return {
        "pairs": len(records),
        **{o: counts[o] for o in OUTCOMES},
        "ties_total": counts["tie"] + counts["inconsistent"],
        "position_bias_rate": counts["inconsistent"] / answered if answered else None,
        "first_position_win_rate": first_shown_wins / shown if shown else None,
    }
