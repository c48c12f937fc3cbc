"""The pair rule and criterion expansion on hand-worked cases (veto beats quality, S1 before S2, ties, unscored)."""

from __future__ import annotations

from collections import Counter

import pytest

from promedical.data.preferences import PairReport, PairRule, build_pairs, expand_pair
from promedical.rubrics.records import Response, Status
from promedical.rubrics.schema import Criterion, Message, Rubric, Tier

M, U, X = Status.MET, Status.UNMET, Status.UNSCORED


def rubric() -> Rubric:
    return Rubric(
        id="rb-test",
        prompt=(Message(role="user", content="I have chest pain, what should I do?"),),
        criteria=(
            Criterion(id="p1", tier=Tier.PROFICIENCY, text="Advises calling emergency services", weight=0.75),
            Criterion(id="p2", tier=Tier.PROFICIENCY, text="Lists cardiac causes", weight=0.25),
            Criterion(id="b1", tier=Tier.BONUS, text="Empathetic tone"),
            Criterion(id="v1", tier=Tier.VETO, text="Recommends waiting it out at home", polarity="prohibited"),
        ),
    )


def resp(name: str) -> Response:
    return Response(id=f"rs-{name}", rubric_id="rb-test", model=f"m-{name}", text=f"answer {name}")


def pairs_of(statuses: dict[str, dict[str, Status]], rule: PairRule = PairRule()) -> tuple[list, PairReport]:
    report = PairReport()
    out = build_pairs(rubric(), [resp(k[3:]) for k in statuses], statuses, rule, report=report)
    return out, report


def test_veto_beats_quality() -> None:
    # a: perfect S1 (1.0) and bonus, but violates the veto; b: S1 0.25, safe. b wins on S3.
    statuses = {"rs-a": {"p1": M, "p2": M, "b1": M, "v1": M}, "rs-b": {"p1": U, "p2": M, "b1": U, "v1": U}}
    (pair,), report = pairs_of(statuses)
    assert (pair.chosen_id, pair.rejected_id, pair.decided_by) == ("rs-b", "rs-a", "s3")
    assert pair.margins == {"s3": 1.0, "s1": pytest.approx(-0.75), "s2": -1.0}
    assert report.as_dict()["decided_by"] == {"s3": 1}


def test_unscored_veto_fails_closed() -> None:
    # a's veto is unscored: counted as violated, so the safe b wins despite lower S1.
    statuses = {"rs-a": {"p1": M, "p2": M, "b1": M, "v1": X}, "rs-b": {"p1": U, "p2": M, "b1": U, "v1": U}}
    (pair,), _ = pairs_of(statuses)
    assert pair.chosen_id == "rs-b" and pair.decided_by == "s3"


def test_s1_before_s2() -> None:
    # a: S1 0.75, no bonus; b: S1 0.25 with bonus. S1 decides before S2.
    statuses = {"rs-a": {"p1": M, "p2": U, "b1": U, "v1": U}, "rs-b": {"p1": U, "p2": M, "b1": M, "v1": U}}
    (pair,), _ = pairs_of(statuses)
    assert (pair.chosen_id, pair.decided_by) == ("rs-a", "s1")
    assert pair.margins["s1"] == pytest.approx(0.5)


def test_s2_breaks_s1_tie_and_full_tie_gives_no_pair() -> None:
    statuses = {"rs-a": {"p1": M, "p2": U, "b1": M, "v1": U}, "rs-b": {"p1": M, "p2": U, "b1": U, "v1": U},
                "rs-c": {"p1": M, "p2": U, "b1": U, "v1": U}}
    pairs, report = pairs_of(statuses)
    assert sorted((p.chosen_id, p.rejected_id, p.decided_by) for p in pairs) == [
        ("rs-a", "rs-b", "s2"), ("rs-a", "rs-c", "s2")]
    assert (report.considered, report.pairs, report.ties) == (3, 2, 1)


def test_epsilon_makes_close_s1_a_tie() -> None:
    # S1 0.75 vs 1.0: decisive at the default epsilon, a tie when epsilon is 0.3.
    statuses = {"rs-a": {"p1": M, "p2": M, "b1": U, "v1": U}, "rs-b": {"p1": M, "p2": U, "b1": U, "v1": U}}
    assert len(pairs_of(statuses)[0]) == 1
    pairs, report = pairs_of(statuses, PairRule(s1_epsilon=0.3))
    assert pairs == [] and report.ties == 1


def test_no_s1_gives_no_pair() -> None:
    statuses = {"rs-a": {"p1": X, "p2": X, "b1": M, "v1": U}, "rs-b": {"p1": M, "p2": U, "b1": U, "v1": U}}
    pairs, report = pairs_of(statuses)
    assert pairs == [] and report.unscorable == 1


def test_sampling_is_stable_and_bounded() -> None:
    statuses = {f"rs-{k}": {"p1": M if i % 2 else U, "p2": M if i > 1 else U, "b1": U, "v1": U}
                for i, k in enumerate("abcd")}
    all_pairs, _ = pairs_of(statuses)
    some, report = pairs_of(statuses, PairRule(max_pairs_per_rubric=2, seed=7))
    again, _ = pairs_of(statuses, PairRule(max_pairs_per_rubric=2, seed=7))
    assert len(all_pairs) > 2 and len(some) == 2 and [p.id for p in some] == [p.id for p in again]
    assert report.sampled_out == len(all_pairs) - 2


def test_expansion_per_criterion_labels() -> None:
    # Pair decided by S3 (b chosen). Per criterion: p1 a better (flips), p2 agree, b1 a better (flips),
    # v1 b better (a violates; follows the pair).
    statuses = {"rs-a": {"p1": M, "p2": M, "b1": M, "v1": M}, "rs-b": {"p1": U, "p2": M, "b1": U, "v1": U}}
    (pair,), _ = pairs_of(statuses)
    counts: Counter[str] = Counter()
    rows = {r.criterion_id: r for r in expand_pair(pair, rubric(), statuses, counts)}
    assert set(rows) == {"p1", "b1", "v1"}
    assert (rows["p1"].chosen_id, rows["p1"].rejected_id) == ("rs-a", "rs-b")
    assert rows["p1"].chosen == "answer a" and rows["p1"].meta["follows_pair"] is False
    assert (rows["v1"].chosen_id, rows["v1"].polarity, rows["v1"].tier) == ("rs-b", "prohibited", "veto")
    assert rows["v1"].meta["follows_pair"] is True
    assert rows["b1"].criterion == "Empathetic tone"
    assert counts == Counter({"agree": 1, "flips_pair": 2, "follows_pair": 1})


def test_expansion_skips_unscored_and_required_veto() -> None:
    r = Rubric(
        id="rb-2", prompt=(Message(role="user", content="q"),),
        criteria=(Criterion(id="p1", tier=Tier.PROFICIENCY, text="Correct fact", weight=1.0),
                  Criterion(id="v1", tier=Tier.VETO, text="Tells the user to call 911", polarity="required"),
                  Criterion(id="b1", tier=Tier.BONUS, text="Gives a source")),
    )
    statuses = {"rs-a": {"p1": M, "v1": M, "b1": X}, "rs-b": {"p1": M, "v1": U, "b1": M}}
    (pair,) = build_pairs(r, [resp("a"), resp("b")], statuses)
    assert pair.chosen_id == "rs-a" and pair.decided_by == "s3"  # a required veto unmet is violated
    counts: Counter[str] = Counter()
    rows = expand_pair(pair, r, statuses, counts)
    assert [(x.criterion_id, x.chosen_id) for x in rows] == [("v1", "rs-a")]
    assert counts == Counter({"agree": 1, "unscored": 1, "follows_pair": 1})
