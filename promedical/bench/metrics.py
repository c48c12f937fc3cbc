"""Bench metrics: scored responses -> headline numbers and breakdowns (tier, axis, category, specialty), with CIs.

Pure functions. Scores come only from ``promedical.rubrics.aggregate.score_responses`` (the one scoring path);
this module adds per-response detail (criterion outcomes per tier and axis) and the statistics. Definitions are in
docs/bench.md; in short:

* ``overall``: mean reward over responses that have one (the RL objective, veto penalty included);
* ``s1`` / ``s2`` / ``s3``: means over responses (``s1`` over responses with an S1);
* ``safety_compliance``: share of responses with no veto violated *and* none unscored (fail closed,
  ``Scores.safe``); ``safety_compliance_observed``: share with no violation among responses whose vetoes were all
  scored;
* ``unscored_rate``: unscored criterion verdicts / all criteria (pooled; CI by resampling responses);
  ``unscorable_rate``: share of responses with no S1 at all;
* tier breakdown: proficiency and bonus *met* rates, veto *violation* rate (pooled over scored criteria);
* axis breakdown: share of scored criteria on the axis that are *satisfied* (met, or for a veto not violated);
* category / specialty breakdown: n, overall, s1 and safety compliance per group.

Every number is ``{"value", "ci_low", "ci_high", "n"}`` (95% percentile bootstrap over responses).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from promedical.rubrics.aggregate import index_verdicts, score_responses
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import TIER_NAMES, Rubric, Tier
from promedical.rubrics.scoring import RewardParams, is_violated
from promedical.stats import DEFAULT_RESAMPLES, Estimate, bootstrap_mean, bootstrap_ratio

TIERS = TIER_NAMES
UNLABELLED = "(none)"


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def response_rows(
    rubrics: Sequence[Rubric],
    responses: Sequence[Response],
    verdicts: Sequence[Verdict],
    params: RewardParams,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per response (scores from the one scoring path plus criterion outcomes), and the scoring summary."""
    scored = score_responses(rubrics, responses, verdicts, params)
    by_rubric = {r.id: r for r in rubrics}
    statuses = index_verdicts(by_rubric, {r.id: r for r in responses}, verdicts)
    rows = []
    for row, response in zip(scored.rows, responses, strict=True):
        rubric = by_rubric[response.rubric_id]
        s = scored.scores[response.id]
        per = statuses.get(response.id, {})
        tiers = {t: [0, 0] for t in TIERS}  # [positive outcomes, scored]; met for S1/S2 tiers, violated for veto
        axes: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # [satisfied, scored]
        for c in rubric.criteria:
            status = per.get(c.id, Status.UNSCORED)
            if status is Status.UNSCORED:
                continue
            if c.tier is Tier.VETO:
                violated = bool(is_violated(c, status))
                tiers["veto"][0] += violated
                satisfied = not violated
            else:
                satisfied = status is Status.MET
                tiers[c.tier.value][0] += satisfied
            tiers[c.tier.value][1] += 1
            axis = axes[c.axis or UNLABELLED]
            axis[0] += satisfied
            axis[1] += 1
        rows.append({
            **row,
            "unscored_by_tier": list(s.unscored_by_tier),
            "n_criteria": len(rubric.criteria),
            "safe": s.safe,
            "safe_observed": None if s.veto_unscored else s.s3 == 0,
            "category": rubric.meta.category or UNLABELLED,
            "specialty": rubric.meta.specialty or UNLABELLED,
            "tiers": tiers,
            "axes": dict(axes),
            # per-criterion outcomes of the quality tiers, so that a paired comparison can restrict S1 and S2 to
            # the criteria scored for both runs (``bench.compare``)
            "outcomes": {"proficiency": {c.id: [c.weight, per.get(c.id, Status.UNSCORED).value]
                                         for c in rubric.criteria if c.tier is Tier.PROFICIENCY},
                         "bonus": {c.id: per.get(c.id, Status.UNSCORED).value
                                   for c in rubric.criteria if c.tier is Tier.BONUS}},
        })
    return rows, scored.summary


def _est(e: Estimate) -> dict[str, Any]:
    return e.as_dict()


def headline(rows: Sequence[dict[str, Any]], n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The top-line metrics (flat: ``x`` and ``x_ci`` for each) for a set of response rows."""
    def mean(values: list[float], salt: int) -> Estimate:
        return bootstrap_mean(np.array(values, dtype=np.float64), n_resamples=n_resamples, seed=seed + salt)

    reward = mean([_nan(r["reward"]) for r in rows], 1)
    s1 = mean([_nan(r["s1"]) for r in rows], 2)
    s2 = mean([float(r["s2"]) for r in rows], 3)
    s3 = mean([float(r["s3"]) for r in rows], 4)
    safe = mean([float(r["safe"]) for r in rows], 5)
    observed = mean([_nan(None if r["safe_observed"] is None else float(r["safe_observed"])) for r in rows], 6)
    unscored = bootstrap_ratio([r["unscored"] for r in rows], [r["n_criteria"] for r in rows],
                               n_resamples=n_resamples, seed=seed + 7)
    unscorable = mean([float(r["s1"] is None) for r in rows], 8)
    out: dict[str, Any] = {"n": len(rows)}
    for name, e in (("overall", reward), ("s1", s1), ("s2", s2), ("s3", s3), ("safety_compliance", safe),
                    ("safety_compliance_observed", observed), ("unscored_rate", unscored),
                    ("unscorable_rate", unscorable)):
        out[name] = e.value
        out[f"{name}_ci"] = e.ci
    out["n_scored"] = reward.n
    hb = [r["healthbench"] for r in rows if r.get("healthbench") is not None]
    if hb:
        e = mean([float(v) for v in hb], 9)
        out["healthbench"] = None if e.value is None else min(max(e.value, 0.0), 1.0)
        out["healthbench_ci"] = [None if v is None else min(max(v, 0.0), 1.0) for v in e.ci]
        out["healthbench_n"] = e.n
    return out


def by_tier(rows: Sequence[dict[str, Any]], n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """Pooled criterion rates per tier: met (proficiency, bonus) and violated (veto)."""
    out = {}
    for i, tier in enumerate(TIERS):
        e = bootstrap_ratio([r["tiers"][tier][0] for r in rows], [r["tiers"][tier][1] for r in rows],
                            n_resamples=n_resamples, seed=seed + i)
        out[tier] = {**_est(e), "rate": "violated" if tier == "veto" else "met",
                     "criteria": int(sum(r["tiers"][tier][1] for r in rows))}
    return out


def by_axis(rows: Sequence[dict[str, Any]], n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """Pooled share of scored criteria satisfied, per axis (``(none)`` for criteria without one)."""
    axes = sorted({a for r in rows for a in r["axes"]})
    out = {}
    for i, axis in enumerate(axes):
        num = [r["axes"].get(axis, [0, 0])[0] for r in rows]
        den = [r["axes"].get(axis, [0, 0])[1] for r in rows]
        out[axis] = {**_est(bootstrap_ratio(num, den, n_resamples=n_resamples, seed=seed + i)),
                     "criteria": int(sum(den))}
    return out


def by_group(rows: Sequence[dict[str, Any]], key: str, n_resamples: int = DEFAULT_RESAMPLES,
             seed: int = 0) -> dict[str, Any]:
    """Overall, S1 and safety compliance with CIs within each value of ``key`` (category, specialty)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[str(r[key])].append(r)
    out = {}
    for name in sorted(groups):
        h = headline(groups[name], n_resamples=n_resamples, seed=seed)
        out[name] = {k: h[k] for k in ("n", "overall", "overall_ci", "s1", "s1_ci", "safety_compliance",
                                       "safety_compliance_ci", "unscored_rate")}
    return out


def summarise(rows: Sequence[dict[str, Any]], n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """Headline metrics plus every breakdown (JSON-ready)."""
    return {
        **headline(rows, n_resamples, seed),
        "by_tier": by_tier(rows, n_resamples, seed),
        "by_axis": by_axis(rows, n_resamples, seed),
        "by_category": by_group(rows, "category", n_resamples, seed),
        "by_specialty": by_group(rows, "specialty", n_resamples, seed),
        "n_resamples": n_resamples,
        "ci_method": "95% percentile bootstrap over responses",
    }
