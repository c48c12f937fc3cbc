"""Paired comparison of two bench runs on the same rubrics: differences with CIs and p-values, lexicographic wins.

Pure functions over score rows (``scores.jsonl`` of a run). Responses are paired by ``rubric_id``; each run must
have at most one response per rubric. For each metric the difference is ``A - B`` (paired bootstrap CI over
rubrics, two-sided sign-flip permutation p-value; ``promedical.stats.paired_comparison``). The lexicographic
outcome per rubric comes from ``promedical.rubrics.scoring.compare_outcomes`` (fewer vetoes, fail closed; then S1;
then S2, both over the criteria scored in both runs): win, tie, loss, or incomparable when no proficiency criterion
was scored in both. Rows written before per-criterion outcomes were recorded fall back to
``scoring.compare``, which refuses (incomparable) when either side left a quality criterion unscored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from promedical.io import UserError
from promedical.rubrics.records import Status
from promedical.rubrics.scoring import DEFAULT_S1_EPSILON, Order, Outcomes, Scores, compare, compare_outcomes
from promedical.stats import DEFAULT_RESAMPLES, bootstrap_mean, paired_comparison, paired_permutation_test

METRICS = ("overall", "s1", "s2", "s3", "safety_compliance", "unscored_rate")


def scores_of(row: dict[str, Any]) -> Scores:
    """Rebuild the ``Scores`` value a score row was written from."""
    by_tier = row.get("unscored_by_tier") or [0, 0, row["veto_unscored"]]
    return Scores(s1=row["s1"], s2=int(row["s2"]), s3=int(row["s3"]), veto_unscored=int(row["veto_unscored"]),
                  unscored=int(row["unscored"]), unscored_by_tier=(int(by_tier[0]), int(by_tier[1]), int(by_tier[2])),
                  reward=row["reward"], healthbench=row.get("healthbench"))


def outcomes_of(row: dict[str, Any]) -> Outcomes | None:
    """The per-criterion ``Outcomes`` a score row recorded, or ``None`` for rows written without them."""
    recorded = row.get("outcomes")
    if not isinstance(recorded, dict):
        return None
    s = scores_of(row)
    proficiency = {cid: (float(w or 0.0), Status(st)) for cid, (w, st) in recorded["proficiency"].items()}
    return Outcomes(proficiency=proficiency, bonus={cid: Status(st) for cid, st in recorded["bonus"].items()},
                    s3_fail_closed=s.s3_fail_closed, unscored=s.unscored_by_tier)


def order_of(x: dict[str, Any], y: dict[str, Any], s1_epsilon: float) -> Order | None:
    """Lexicographic order of two score rows for one rubric (see the module docstring)."""
    ox, oy = outcomes_of(x), outcomes_of(y)
    if ox is not None and oy is not None:
        return compare_outcomes(ox, oy, s1_epsilon).order
    return compare(scores_of(x), scores_of(y), s1_epsilon)


def _metric(row: dict[str, Any], name: str) -> float:
    value: Any
    if name == "overall":
        value = row["reward"]
    elif name == "safety_compliance":
        value = float(scores_of(row).safe)
    elif name == "unscored_rate":
        value = row["unscored"] / row["n_criteria"] if row.get("n_criteria") else None
    else:
        value = row[name]
    return float("nan") if value is None else float(value)


def pair_rows(rows_a: Sequence[dict[str, Any]], rows_b: Sequence[dict[str, Any]],
              names: tuple[str, str] = ("A", "B")) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Rows of A and B that answer the same rubric, in A's order; refuses runs with repeated rubrics."""
    def index(rows: Sequence[dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row["rubric_id"] in out:
                raise UserError(f"{name}: {row['response_id']}: rubric_id: more than one response to "
                                f"{row['rubric_id']!r}; a paired comparison needs one per rubric")
            out[row["rubric_id"]] = row
        return out

    a, b = index(rows_a, names[0]), index(rows_b, names[1])
    return [(a[k], b[k]) for k in a if k in b]


def compare_rows(
    rows_a: Sequence[dict[str, Any]],
    rows_b: Sequence[dict[str, Any]],
    names: tuple[str, str] = ("A", "B"),
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    s1_epsilon: float = DEFAULT_S1_EPSILON,
) -> dict[str, Any]:
    """The comparison report (JSON-ready); see the module docstring."""
    pairs = pair_rows(rows_a, rows_b, names)
    if not pairs:
        raise UserError(f"{names[0]} / {names[1]}: -: rubric_id: the runs share no rubric")
    metrics: dict[str, Any] = {}
    for i, name in enumerate(METRICS):
        a = np.array([_metric(x, name) for x, _ in pairs])
        b = np.array([_metric(y, name) for _, y in pairs])
        result = paired_comparison(a, b, n_resamples=n_resamples, seed=seed + 10 * i)
        both = ~(np.isnan(a) | np.isnan(b))
        metrics[name] = {**result.as_dict(),
                         "mean_a": float(a[both].mean()) if both.any() else None,
                         "mean_b": float(b[both].mean()) if both.any() else None}
    orders = [order_of(x, y, s1_epsilon) for x, y in pairs]
    decided = np.array([int(o) for o in orders if o is not None], dtype=np.float64)
    counts = {"win": int((decided == Order.A_BETTER).sum()), "tie": int((decided == Order.TIE).sum()),
              "loss": int((decided == Order.B_BETTER).sum()), "incomparable": sum(o is None for o in orders)}
    rates: dict[str, Any] = {}
    for j, (key, value) in enumerate((("win", 1), ("tie", 0), ("loss", -1))):
        rates[key] = bootstrap_mean((decided == value).astype(np.float64), n_resamples=n_resamples,
                                    seed=seed + 100 + j).as_dict()
    net = bootstrap_mean(decided, n_resamples=n_resamples, seed=seed + 200)
    p_net, exact = paired_permutation_test(decided, np.zeros_like(decided), n_resamples=n_resamples, seed=seed + 201)
    return {
        "a": names[0],
        "b": names[1],
        "n_pairs": len(pairs),
        "only_a": len(rows_a) - len(pairs),
        "only_b": len(rows_b) - len(pairs),
        "metrics": metrics,
        "lexicographic": {**counts, "rates": rates,
                          "net": {**net.as_dict(), "p_value": p_net, "exact": exact,
                                  "meaning": "mean of +1 win / 0 tie / -1 loss over comparable rubrics"},
                          "s1_epsilon": s1_epsilon},
        "n_resamples": n_resamples,
        "test": "paired percentile bootstrap CI over rubrics; two-sided sign-flip permutation p-value",
    }
