"""Preference pairs from judged candidates, and their criterion-level expansion. Pure functions on values.

Pair rule (docs/data_pipeline.md): every unordered pair of a rubric's scored candidates (visited in response-id
order) goes through ``promedical.rubrics.scoring.compare_responses`` with ``s1_epsilon`` -- fewer vetoes (fail
closed: an unscored veto counts as violated), then higher S1 beyond epsilon, then more bonus criteria met, S1 and
S2 taken over the criteria scored for *both* responses. ``TIE`` gives no pair; incomparable (equal vetoes and no
proficiency criterion scored for both) gives no pair and is counted as ``unscorable``. A known-safe response always
beats a violating one, even when the violating one has no S1. Every pair records both sides' unscored counts.
Optional sampling keeps at most ``max_pairs_per_rubric`` pairs per rubric, chosen by a seeded hash of the pair id
(stable).

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

from promedical.files import UserError
from promedical.hashing import content_hash
from promedical.rubrics.aggregate import index_verdicts
from promedical.rubrics.records import CriterionPair, PreferencePair, Response, Status, Verdict
from promedical.rubrics.schema import Criterion, Polarity, Rubric
from promedical.rubrics.scoring import DEFAULT_S1_EPSILON, TIER_NAMES, Order, compare_responses, status_satisfies


@dataclass(frozen=True, slots=True)
class PairRule:
    s1_epsilon: float = DEFAULT_S1_EPSILON
    max_pairs_per_rubric: int | None = None  # None: all pairs
    seed: int = 0

    def describe(self) -> dict[str, Any]:
        return {"rule": "lexicographic s3>s1>s2 on commonly scored criteria via scoring.compare_responses",
                "s1_epsilon": self.s1_epsilon,
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


def _side(values: tuple[Any, Any], a_first: bool) -> tuple[Any, Any]:
    """A comparison's (A, B) values as (chosen's, rejected's)."""
    return values if a_first else (values[1], values[0])


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
    prompt = [m.model_dump() for m in rubric.prompt]
    pairs: list[PreferencePair] = []
    for a, b in combinations(ordered, 2):
        report.considered += 1
        result = compare_responses(rubric, statuses.get(a.id, {}), statuses.get(b.id, {}), rule.s1_epsilon)
        if result.order is None:
            report.unscorable += 1
            continue
        if result.order is Order.TIE or result.decided_by is None:
            report.ties += 1
            continue
        a_first = result.order is Order.A_BETTER
        chosen, rejected = (a, b) if a_first else (b, a)
        (s1c, s1r), (s2c, s2r), (s3c, s3r), (uc, ur) = (_side(v, a_first) for v in (
            result.s1, result.s2, result.s3, result.unscored))
        pairs.append(PreferencePair(
            id="pp-" + content_hash([rubric.id, rubric.version, chosen.id, rejected.id]),
            rubric_id=rubric.id, prompt=prompt, chosen_id=chosen.id, rejected_id=rejected.id,
            chosen=chosen.text, rejected=rejected.text, decided_by=result.decided_by,
            margins={"s3": float(s3r - s3c), "s1": None if s1c is None or s1r is None else s1c - s1r,
                     "s2": float(s2c - s2r)},
            unscored={"chosen": dict(zip(TIER_NAMES, uc, strict=True)),
                      "rejected": dict(zip(TIER_NAMES, ur, strict=True))},
            meta={"judge": judge, "rubric_version": rubric.version, "chosen_model": chosen.model,
                  "rejected_model": rejected.model, "common_criteria": result.common, **rule.describe()},
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
    return status_satisfies(criterion, status)


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


@dataclass
class PairSet:
    """What the pair stage makes of a labelled set: the pairs, their criterion rows, and the counts behind them."""

    pairs: list[PreferencePair]
    rows: list[CriterionPair]
    rubrics: list[Rubric]  # the rubrics that had responses, in the order their pairs were built
    report: PairReport
    expansion: Counter[str]


def build_pair_set(
    rubrics: Sequence[Rubric], responses: Sequence[Response], verdicts: Sequence[Verdict], rule: PairRule,
    judge: str, responses_path: str = "responses", verdicts_path: str = "verdicts",
) -> PairSet:
    """Pairs and criterion rows of a whole labelled set: the one builder behind the pipeline's ``pairs`` stage and
    ``promedical data prefs``.

    References are checked first, each defect one ``UserError`` line naming the file: every response answers one
    of ``rubrics`` and every verdict one of the responses and a criterion of its rubric, at most once. A verdict
    that pointed nowhere would otherwise be dropped silently and the pair decided as if it were unscored. Rubrics
    are taken in the order given (the last of a repeated id wins) and those without responses give nothing.
    """
    by_rubric = {r.id: r for r in rubrics}
    by_response: dict[str, Response] = {}
    grouped: dict[str, list[Response]] = {}
    for response in responses:
        if response.rubric_id not in by_rubric:
            raise UserError(f"{responses_path}: {response.id}: rubric_id: no rubric {response.rubric_id!r}")
        by_response[response.id] = response
        grouped.setdefault(response.rubric_id, []).append(response)
    statuses = index_verdicts(by_rubric, by_response, verdicts, verdicts_path)
    result = PairSet(pairs=[], rows=[], rubrics=[], report=PairReport(), expansion=Counter())
    for rubric_id in dict.fromkeys(r.id for r in rubrics):
        if rubric_id not in grouped:
            continue
        rubric = by_rubric[rubric_id]
        result.rubrics.append(rubric)
        made = build_pairs(rubric, grouped[rubric_id], statuses, rule, judge, result.report)
        result.pairs.extend(made)
        for pair in made:
            result.rows.extend(expand_pair(pair, rubric, statuses, result.expansion))
    return result
