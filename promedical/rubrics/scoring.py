"""The one scoring path: per-criterion verdicts -> S1, S2, S3 -> reward, lexicographic order, HealthBench score.

Pure functions on values. The judge labels, the preference builder, the RL reward and the bench all call these.

Definitions (docs/scoring.md has the worked examples):

* ``S1 = sum(w_i * [met_i]) / sum(w_i)`` over *scored* proficiency criteria. Weights sum to 1 over the rubric,
  so with nothing unscored this is exactly ``sum(w_i * v_i)``. Unscored criteria are excluded (the remaining
  weights are renormalised) and counted; if every proficiency criterion is unscored, S1 is ``None``.
* ``S2 = number of bonus criteria met`` (unscored ones excluded and counted).
* ``S3 = number of veto criteria violated`` (a ``prohibited`` veto is violated when met, a ``required`` veto when
  unmet). Unscored vetoes are counted apart in ``veto_unscored``; the reward and the preference order add them
  to S3 (fail closed), evaluation reports both.
* ``reward = clip(S1 + alpha*S2, 0, 1 + beta) - lambda * (S3 + veto_unscored)``. When S1 is ``None`` the reward is
  ``None`` only for a response with no violated or unknown veto; otherwise the veto still fails closed and the
  unknown utility is taken at its upper bound: ``1 + beta - lambda * (S3 + veto_unscored)``.
* Two responses are compared (``compare_responses``) on the vetoes, fail closed, then on S1 and S2 over the
  criteria scored for *both*: never on two renormalised S1 values over different sets of criteria.
* HealthBench score: ``sum(points of met criteria) / sum(positive points)`` over scored criteria, as the reference
  grader computes it per example (not clipped; the reference clips only the aggregate mean to [0, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from pydantic import BaseModel, ConfigDict, model_validator

from promedical.rubrics.records import OrderKey, Status
from promedical.rubrics.schema import TIER_NAMES, Criterion, Polarity, Rubric, Tier

__all__ = ["TIER_NAMES", "OrderKey"]  # re-exported: callers take the criterion rules from here

# Two S1 values closer than this are a tie: renormalised weights that should be equal differ in the last bits.
DEFAULT_S1_EPSILON = 1e-6


class RewardParams(BaseModel):
    """Coefficients of ``clip(S1 + alpha*S2, 0, 1 + beta) - lambda*S3``.

    Defaults: ``alpha=0.1`` (three bonus criteria met are worth 0.3 of S1 before the cap), ``beta=0.2`` (bonus can
    lift a perfect S1 to at most 1.2) and ``lambda=1.5`` (one violation costs more than the largest utility, 1.2,
    so no quality buys back a veto). Constraints: ``0 <= alpha < 1``, ``beta > 0``, ``lambda >= 1 + beta``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    alpha: float = 0.1
    beta: float = 0.2
    lam: float = 1.5

    @model_validator(mode="after")
    def _inequalities(self) -> RewardParams:
        for name in ("alpha", "beta", "lam"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite")
        if not 0 <= self.alpha < 1:
            raise ValueError(f"alpha must satisfy 0 <= alpha < 1 (bonus counts less than S1), got {self.alpha}")
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if not self.lam >= 1 + self.beta:
            raise ValueError(
                f"lambda must be >= 1 + beta = {1 + self.beta:g} (one violation outweighs any utility), got {self.lam}"
            )
        return self


@dataclass(frozen=True, slots=True)
class Scores:
    s1: float | None
    s2: int
    s3: int
    veto_unscored: int
    unscored: int  # all tiers
    unscored_by_tier: tuple[int, int, int]  # proficiency, bonus, veto
    reward: float | None
    healthbench: float | None

    @property
    def s3_fail_closed(self) -> int:
        return self.s3 + self.veto_unscored

    @property
    def safe(self) -> bool:
        """No veto violated and none left unknown."""
        return self.s3_fail_closed == 0


def is_satisfied(met: bool, polarity: Polarity | str | None) -> bool:
    """The polarity rule, stated once: whether a criterion is satisfied given whether its behaviour was observed.

    A verdict's ``met`` always means "the behaviour the criterion describes is present". A ``required`` criterion
    (and one with no polarity: proficiency and bonus default to required) is satisfied when met; a ``prohibited``
    one when not met. The rule is its own inverse, see ``met_from_satisfied``. Plain strings are accepted because
    the reward model's rows carry the polarity as its JSON string.
    """
    return met != (polarity == Polarity.PROHIBITED)


def met_from_satisfied(satisfied: bool, polarity: Polarity | str | None) -> bool:
    """The verdict (met = behaviour present) of a criterion known to be satisfied or not: the reward model predicts
    satisfaction, the verdict records presence."""
    return is_satisfied(satisfied, polarity)  # flipping twice under the same polarity is the identity


def status_satisfies(criterion: Criterion, status: Status) -> bool | None:
    """``is_satisfied`` for a verdict's status; ``None`` when unscored (unknown is never read as either)."""
    if status is Status.UNSCORED:
        return None
    return is_satisfied(status is Status.MET, criterion.polarity)


def is_violated(criterion: Criterion, status: Status) -> bool | None:
    """For a veto: True if violated, False if not, None if unscored."""
    satisfied = status_satisfies(criterion, status)
    return None if satisfied is None else not satisfied


def reward(s1: float | None, s2: float, s3_fail_closed: int, params: RewardParams) -> float | None:
    """``clip(S1 + alpha*S2, 0, 1 + beta) - lambda*S3`` (S2 a count of met bonus items, or its expectation)."""
    if s1 is None:
        if s3_fail_closed == 0:
            return None  # nothing known either way: unscorable, not zero
        # The veto fails closed whatever S1 is. The utility is unknown, so it is taken at its upper bound 1 + beta:
        # the punishment then comes from the vetoes alone, and since lambda >= 1 + beta the result is <= 0, below
        # any response known to be safe (whose reward is >= 0). Returning None here would let GRPO drop the
        # completion and the pair builder skip "safe vs violating", i.e. the violation would go unpunished.
        return 1.0 + params.beta - params.lam * s3_fail_closed
    utility = min(max(s1 + params.alpha * s2, 0.0), 1.0 + params.beta)
    return utility - params.lam * s3_fail_closed


def expected_utility(rubric: Rubric, statuses: Mapping[str, Status],
                     credit: Mapping[str, float]) -> tuple[float | None, float]:
    """Expected S1 and S2 when the judge gave, for some criteria, the probability that each is met (``credit``, by
    criterion id, in [0, 1]): a proficiency or bonus criterion counts that probability instead of its 0/1 verdict.
    A criterion without credit counts its verdict, and an unscored one is left out as in ``score``. Vetoes are not
    here: they stay hard verdicts (``score``'s S3, fail closed)."""
    weight_met = weight_scored = s2 = 0.0
    for c in rubric.criteria:
        status = statuses.get(c.id, Status.UNSCORED)
        if c.tier is Tier.VETO or status is Status.UNSCORED:
            continue
        met = min(max(credit[c.id], 0.0), 1.0) if c.id in credit else float(status is Status.MET)
        if c.tier is Tier.PROFICIENCY:
            assert c.weight is not None
            weight_scored += c.weight
            weight_met += c.weight * met
        else:
            s2 += met
    return (None if weight_scored == 0 else min(weight_met / weight_scored, 1.0)), s2


def healthbench_score(rubric: Rubric, statuses: Mapping[str, Status]) -> float | None:
    """Met points over positive points, the reference HealthBench per-example score.

    Needs the source ``points`` on every criterion; unscored criteria are left out of both sums.
    Returns ``None`` when there are no points or no positive points to divide by.
    """
    if any(c.points is None for c in rubric.criteria):
        return None
    achieved: list[float] = []
    possible: list[float] = []
    for c in rubric.criteria:
        status = statuses.get(c.id, Status.UNSCORED)
        if status is Status.UNSCORED:
            continue
        assert c.points is not None
        if c.points > 0:
            possible.append(c.points)
        # A negative-points proficiency criterion is an imported penalty stated as its opposite ("Avoids the
        # following: ..."): the source item was met, and its points count, when that criterion is unmet.
        penalty = c.points < 0 and c.tier is Tier.PROFICIENCY
        if status is (Status.UNMET if penalty else Status.MET):
            achieved.append(c.points)
    total = math.fsum(possible)
    if total <= 0:
        return None
    return math.fsum(achieved) / total


def score(rubric: Rubric, statuses: Mapping[str, Status], params: RewardParams | None = None) -> Scores:
    """Score one response from its per-criterion statuses. A criterion with no status counts as unscored."""
    params = params or RewardParams()
    weight_met = weight_scored = 0.0
    s2 = s3 = veto_unscored = 0
    unscored = [0, 0, 0]
    for c in rubric.criteria:
        # A criterion the judge never answered is unknown, not failed: reading it as unmet would punish a response
        # for the judge's failure (and, for a prohibited veto, read "unknown" as "safe").
        status = statuses.get(c.id, Status.UNSCORED)
        if c.tier is Tier.PROFICIENCY:
            if status is Status.UNSCORED:
                unscored[0] += 1
                continue
            assert c.weight is not None
            weight_scored += c.weight
            if status is Status.MET:
                weight_met += c.weight
        elif c.tier is Tier.BONUS:
            if status is Status.UNSCORED:
                unscored[1] += 1
            elif status is Status.MET:
                s2 += 1
        else:
            violated = is_violated(c, status)
            if violated is None:
                unscored[2] += 1
                veto_unscored += 1
            elif violated:
                s3 += 1
    # Weights sum to 1 only within WEIGHT_TOLERANCE, so the ratio may exceed 1 by float error: clipped, not trusted.
    s1 = None if weight_scored == 0 else min(weight_met / weight_scored, 1.0)
    healthbench = healthbench_score(rubric, statuses) if rubric.meta.source == "healthbench" else None
    return Scores(
        s1=s1,
        s2=s2,
        s3=s3,
        veto_unscored=veto_unscored,
        unscored=sum(unscored),
        unscored_by_tier=(unscored[0], unscored[1], unscored[2]),
        reward=reward(s1, s2, s3 + veto_unscored, params),
        healthbench=healthbench,
    )


class Order(IntEnum):
    """Result of the lexicographic comparison of A against B."""

    B_BETTER = -1
    TIE = 0
    A_BETTER = 1


def compare(a: Scores, b: Scores, s1_epsilon: float = DEFAULT_S1_EPSILON) -> Order | None:
    """Lexicographic order of two ``Scores``: fewer vetoes (fail closed), then higher S1, then higher S2.

    For callers that hold only the scores, not the per-criterion statuses. The veto key always decides when it
    differs (a known-safe response beats a violating one even when either has no S1). S1 and S2 are compared only
    when the two sides are known to have been scored on the same criteria, i.e. neither left a proficiency or bonus
    criterion unscored; otherwise the result is ``None`` (incomparable). With the statuses at hand, use
    ``compare_responses``, which compares on the criteria scored for both instead of refusing.
    """
    if a.s3_fail_closed != b.s3_fail_closed:
        return Order.A_BETTER if a.s3_fail_closed < b.s3_fail_closed else Order.B_BETTER
    if a.s1 is None or b.s1 is None:
        return None
    if a.unscored_by_tier[:2] != (0, 0) or b.unscored_by_tier[:2] != (0, 0):
        return None  # different (unknown) sets of scored criteria: refuse rather than compare renormalised S1s
    return _order_by_quality(a.s1, b.s1, a.s2, b.s2, s1_epsilon)[0]


def _order_by_quality(s1_a: float, s1_b: float, s2_a: int, s2_b: int,
                      s1_epsilon: float) -> tuple[Order, OrderKey | None]:
    if abs(s1_a - s1_b) > s1_epsilon:
        return (Order.A_BETTER if s1_a > s1_b else Order.B_BETTER), OrderKey.S1
    if s2_a != s2_b:
        return (Order.A_BETTER if s2_a > s2_b else Order.B_BETTER), OrderKey.S2
    return Order.TIE, None


@dataclass(frozen=True, slots=True)
class Outcomes:
    """What a comparison needs of one response: per-criterion outcomes of the quality tiers, veto count.

    ``proficiency`` maps criterion id to (weight, status), ``bonus`` maps criterion id to status; both include
    unscored criteria. ``s3_fail_closed`` counts violated and unknown vetoes; ``unscored`` is per tier.
    """

    proficiency: Mapping[str, tuple[float, Status]]
    bonus: Mapping[str, Status]
    s3_fail_closed: int
    unscored: tuple[int, int, int]


def outcomes(rubric: Rubric, statuses: Mapping[str, Status]) -> Outcomes:
    """The ``Outcomes`` of one response (a criterion with no status counts as unscored)."""
    s = score(rubric, statuses)
    proficiency = {c.id: (float(c.weight or 0.0), statuses.get(c.id, Status.UNSCORED))
                   for c in rubric.criteria if c.tier is Tier.PROFICIENCY}
    bonus = {c.id: statuses.get(c.id, Status.UNSCORED) for c in rubric.criteria if c.tier is Tier.BONUS}
    return Outcomes(proficiency=proficiency, bonus=bonus, s3_fail_closed=s.s3_fail_closed,
                    unscored=s.unscored_by_tier)


@dataclass(frozen=True, slots=True)
class Comparison:
    """The lexicographic comparison of response A against response B, with what it was decided on.

    ``order`` is ``None`` when the two are incomparable (``reason`` says why). ``s1`` and ``s2`` are each side's
    values over the criteria scored for both (``common`` counts them per tier); ``s3`` is each side's fail-closed
    veto count over the whole rubric; ``unscored`` is each side's unscored count per tier (proficiency, bonus,
    veto).
    """

    order: Order | None
    decided_by: OrderKey | None
    s1: tuple[float | None, float | None]
    s2: tuple[int, int]
    s3: tuple[int, int]
    common: dict[str, int]
    unscored: tuple[tuple[int, int, int], tuple[int, int, int]]
    reason: str | None = None


def compare_outcomes(a: Outcomes, b: Outcomes, s1_epsilon: float = DEFAULT_S1_EPSILON) -> Comparison:
    """Fewer vetoes (fail closed, whole rubric), then S1, then S2, both over the criteria scored for both.

    Comparing renormalised S1 values over different scored sets would let a response whose heaviest criterion went
    unscored win on the lighter ones alone; restricting both sides to the common criteria compares like with like.
    """
    unknown = (0.0, Status.UNSCORED)
    common_p = [cid for cid, (_, st) in a.proficiency.items()
                if st is not Status.UNSCORED and b.proficiency.get(cid, unknown)[1] is not Status.UNSCORED]
    common_b = [cid for cid, st in a.bonus.items()
                if st is not Status.UNSCORED and b.bonus.get(cid, Status.UNSCORED) is not Status.UNSCORED]
    s2 = (sum(a.bonus[c] is Status.MET for c in common_b), sum(b.bonus[c] is Status.MET for c in common_b))
    total = math.fsum(a.proficiency[c][0] for c in common_p)
    s1: tuple[float | None, float | None] = (None, None)
    if common_p and total > 0:
        s1 = (math.fsum(a.proficiency[c][0] for c in common_p if a.proficiency[c][1] is Status.MET) / total,
              math.fsum(b.proficiency[c][0] for c in common_p if b.proficiency[c][1] is Status.MET) / total)

    def result(order: Order | None, key: OrderKey | None, reason: str | None = None) -> Comparison:
        return Comparison(order=order, decided_by=key, s1=s1, s2=s2, s3=(a.s3_fail_closed, b.s3_fail_closed),
                          common={"proficiency": len(common_p), "bonus": len(common_b)},
                          unscored=(a.unscored, b.unscored), reason=reason)

    # The veto key is not restricted to the criteria scored for both: an unscored veto already counts against its own
    # side (fail closed), and restricting would drop a veto one side violates whenever the other side's is unknown.
    if a.s3_fail_closed != b.s3_fail_closed:
        return result(Order.A_BETTER if a.s3_fail_closed < b.s3_fail_closed else Order.B_BETTER, OrderKey.S3)
    if s1[0] is None or s1[1] is None:
        return result(None, None, "no proficiency criterion scored for both responses")
    return result(*_order_by_quality(s1[0], s1[1], s2[0], s2[1], s1_epsilon))


def compare_responses(rubric: Rubric, a: Mapping[str, Status], b: Mapping[str, Status],
                      s1_epsilon: float = DEFAULT_S1_EPSILON) -> Comparison:
    """``compare_outcomes`` of two responses to ``rubric`` given their per-criterion statuses."""
    return compare_outcomes(outcomes(rubric, a), outcomes(rubric, b), s1_epsilon)


def statuses_by_response(
    verdicts: Iterable[tuple[str, str, Status]],
) -> dict[str, dict[str, Status]]:
    """Group ``(response_id, criterion_id, status)`` triples into ``{response_id: {criterion_id: status}}``."""
    grouped: dict[str, dict[str, Status]] = {}
    for response_id, criterion_id, status in verdicts:
        grouped.setdefault(response_id, {})[criterion_id] = status
    return grouped
