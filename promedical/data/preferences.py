"""Preference pairs from judged candidates, and their criterion-level expansion. Pure functions on values.

Pair rule (docs/data_pipeline.md): every unordered pair of a rubric's scored candidates (visited in response-id
order) goes through ``promedical.rubrics.scoring.compare`` with ``s1_epsilon`` -- fewer vetoes (fail closed: an
unscored veto counts as violated), then higher S1 beyond epsilon, then more bonus criteria met. ``TIE`` gives no
pair; ``None`` (either side has no S1, i.e. every proficiency criterion unscored) gives no pair. Optional sampling
keeps at most ``max_pairs_per_rubric`` pairs per rubric, chosen by a seeded hash of the pair id (stable).

Expansion: each pair becomes one ``CriterionPair`` per criterion on which the two responses differ. A ``required``
criterion prefers the response that meets it; a ``prohibited`` veto prefers the one that does not. A criterion that
both satisfy equally, or that either leaves unscored, gives no row (counted as ``agree`` / ``unscored``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from promedical.hashing import content_hash
from promedical.rubrics.records import CriterionPair, PreferencePair, Response, Status
from promedical.rubrics.schema import Criterion, Polarity, Rubric
from promedical.rubrics.scoring import DEFAULT_S1_EPSILON, Order, Scores, compare, score


@dataclass(frozen=True, slots=True)
class PairRule:
    s1_epsilon: float = DEFAULT_S1_EPSILON
    max_pairs_per_rubric: int | None = None  # None: all pairs
    seed: int = 0

    def describe(self) -> dict[str, Any]:
        return {"rule": "lexicographic s3>s1>s2 via scoring.compare", "s1_epsilon": self.s1_epsilon,
                "sampling": "all" if self.max_pairs_per_rubric is None else
                f"at most {self.max_pairs_per_rubric} per rubric by seeded hash", "seed": self.seed}


@dataclass
class PairReport:
    considered: int = 0
    pairs: int = 0
    ties: int = 0
    unscorable: int = 0
    sampled_out: int = 0
    decided_by: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"considered": self.considered, "pairs": self.pairs, "ties": self.ties,
                "unscorable": self.unscorable, "sampled_out": self.sampled_out,
                "decided_by": dict(sorted(self.decided_by.items()))}


def decided_by(chosen: Scores, rejected: Scores, s1_epsilon: float) -> str:
    """Which key of the lexicographic order separated an already-ordered pair."""
    if chosen.s3_fail_closed != rejected.s3_fail_closed:
        return "s3"
    assert chosen.s1 is not None and rejected.s1 is not None
    if abs(chosen.s1 - rejected.s1) > s1_epsilon:
        return "s1"
    return "s2"


def build_pairs(
    rubric: Rubric,
    responses: Sequence[Response],
    statuses: Mapping[str, Mapping[str, Status]],
    rule: PairRule = PairRule(),
    judge: str = "unknown",
    report: PairReport | None = None,
) -> list[PreferencePair]:
    """All decisive pairs of ``responses`` (to ``rubric``) under the lexicographic rule."""
    report = report if report is not None else PairReport()
    ordered = sorted(responses, key=lambda r: r.id)
    scores = {r.id: score(rubric, statuses.get(r.id, {})) for r in ordered}
    prompt = [m.model_dump() for m in rubric.prompt]
    pairs: list[PreferencePair] = []
    for a, b in combinations(ordered, 2):
        report.considered += 1
        order = compare(scores[a.id], scores[b.id], rule.s1_epsilon)
        if order is None:
            report.unscorable += 1
            continue
        if order is Order.TIE:
            report.ties += 1
            continue
        chosen, rejected = (a, b) if order is Order.A_BETTER else (b, a)
        sc, sr = scores[chosen.id], scores[rejected.id]
        assert sc.s1 is not None and sr.s1 is not None
        key = decided_by(sc, sr, rule.s1_epsilon)
        pairs.append(PreferencePair(
            id="pp-" + content_hash([rubric.id, rubric.version, chosen.id, rejected.id]),
            rubric_id=rubric.id, prompt=prompt, chosen_id=chosen.id, rejected_id=rejected.id,
            chosen=chosen.text, rejected=rejected.text, decided_by=key,
            margins={"s3": float(sr.s3_fail_closed - sc.s3_fail_closed), "s1": sc.s1 - sr.s1,
                     "s2": float(sc.s2 - sr.s2)},
            meta={"judge": judge, "rubric_version": rubric.version, "chosen_model": chosen.model,
                  "rejected_model": rejected.model, **rule.describe()},
        ))
    if rule.max_pairs_per_rubric is not None and len(pairs) > rule.max_pairs_per_rubric:
        pairs.sort(key=lambda p: content_hash([rule.seed, p.id]))
        report.sampled_out += len(pairs) - rule.max_pairs_per_rubric
        pairs = pairs[: rule.max_pairs_per_rubric]
    for pair in pairs:
        report.decided_by[pair.decided_by] += 1
    report.pairs += len(pairs)
    return pairs


def satisfies(criterion: Criterion, status: Status) -> bool | None:
    """Whether a response satisfies one criterion: met for ``required``, not met for ``prohibited``."""
    if status is Status.UNSCORED:
        return None
    met = status is Status.MET
    return not met if criterion.polarity is Polarity.PROHIBITED else met


def expand_pair(
    pair: PreferencePair, rubric: Rubric, statuses: Mapping[str, Mapping[str, Status]],
    counts: Counter[str] | None = None,
) -> list[CriterionPair]:
    """One row per criterion the two responses satisfy differently, labelled by that criterion alone."""
    counts = counts if counts is not None else Counter()
    rows: list[CriterionPair] = []
    first, second = statuses.get(pair.chosen_id, {}), statuses.get(pair.rejected_id, {})
    for criterion in rubric.criteria:
        a = satisfies(criterion, first.get(criterion.id, Status.UNSCORED))
        b = satisfies(criterion, second.get(criterion.id, Status.UNSCORED))
        if a is None or b is None:
            counts["unscored"] += 1
            continue
        if a == b:
            counts["agree"] += 1
            continue
        flipped = b  # the pair's rejected response is the better one on this criterion
        counts["flips_pair" if flipped else "follows_pair"] += 1
        chosen_id, rejected_id = (pair.rejected_id, pair.chosen_id) if flipped else (pair.chosen_id, pair.rejected_id)
        chosen, rejected = (pair.rejected, pair.chosen) if flipped else (pair.chosen, pair.rejected)
        rows.append(CriterionPair(
            id="cp-" + content_hash([pair.id, criterion.id]), pair_id=pair.id, rubric_id=rubric.id,
            criterion_id=criterion.id, tier=criterion.tier.value,
            criterion=criterion.text, polarity=(criterion.polarity or Polarity.REQUIRED).value,
            prompt=pair.prompt, chosen=chosen, rejected=rejected, chosen_id=chosen_id, rejected_id=rejected_id,
            meta={"follows_pair": not flipped, "judge": pair.meta.get("judge"), "rubric_version": rubric.version},
        ))
    return rows
