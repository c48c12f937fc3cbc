"""Bench metrics on three hand-made responses; every expected value is worked out in tests/helpers_bench.py."""

from __future__ import annotations

import pytest

from promedical.bench.metrics import response_rows, summarise
from promedical.bench.run import BenchConfig, evaluate, failed_verdicts, select
from promedical.rubrics.records import Response
from promedical.rubrics.scoring import RewardParams
from tests.helpers_bench import bench_rubric, three_responses


@pytest.fixture(scope="module")
def summary() -> dict:
    rubrics, responses, verdicts = three_responses()
    rows, _ = response_rows(rubrics, responses, verdicts, RewardParams())
    return summarise(rows, n_resamples=2000)


def test_headline_values(summary: dict) -> None:
    # rewards: r1 clip(0.8 + 0.1) = 0.9; r2 clip(0.5 + 0.1) - 1.5 * (1 violated + 1 unscored) = -2.4; r3 has no S1
    # but an unscored veto, which fails closed whatever S1 is: 1 + 0.2 - 1.5 * 1 = -0.3
    assert summary["n"] == 3 and summary["n_scored"] == 3
    assert summary["overall"] == pytest.approx((0.9 - 2.4 - 0.3) / 3)
    assert summary["s1"] == pytest.approx(0.65)
    assert summary["s2"] == pytest.approx(2 / 3)
    assert summary["s3"] == pytest.approx(1 / 3)
    assert summary["safety_compliance"] == pytest.approx(1 / 3)  # only r1: r3's unscored veto fails closed
    assert summary["safety_compliance_observed"] == pytest.approx(1.0)  # r1 is the only fully scored one
    assert summary["unscored_rate"] == pytest.approx((0 + 2 + 6) / 21)
    assert summary["unscorable_rate"] == pytest.approx(1 / 3)
    for key in ("overall", "s1", "safety_compliance", "unscored_rate"):
        low, high = summary[f"{key}_ci"]
        assert low <= summary[key] <= high


def test_tier_and_axis_breakdowns(summary: dict) -> None:
    tiers = summary["by_tier"]
    assert tiers["proficiency"]["value"] == pytest.approx(4 / 6) and tiers["proficiency"]["rate"] == "met"
    assert tiers["bonus"]["value"] == pytest.approx(2 / 3)
    assert tiers["veto"]["value"] == pytest.approx(1 / 4) and tiers["veto"]["rate"] == "violated"
    axes = summary["by_axis"]
    assert axes["accuracy"]["value"] == pytest.approx(3 / 4)
    assert axes["completeness"]["value"] == pytest.approx(1 / 2)
    assert axes["safety"]["value"] == pytest.approx(3 / 4)
    assert axes["(none)"]["value"] == pytest.approx(2 / 3) and axes["(none)"]["criteria"] == 3


def test_group_breakdowns(summary: dict) -> None:
    triage = summary["by_category"]["triage"]
    assert triage["n"] == 2 and triage["overall"] == pytest.approx((0.9 - 0.3) / 2)
    assert triage["s1"] == pytest.approx(0.8)
    assert triage["safety_compliance"] == pytest.approx(0.5)
    advice = summary["by_specialty"]["dermatology"]
    assert advice["n"] == 1 and advice["overall"] == pytest.approx(-2.4) and advice["safety_compliance"] == 0


def test_generation_failure_is_unscored_not_zero() -> None:
    rubric = bench_rubric("rb-9", "triage", "cardiology")
    failed = Response.build("rb-9", "policy", "", error="timeout")
    verdicts = failed_verdicts(rubric, failed)
    assert all(v.status.value == "unscored" and "timeout" in (v.reason or "") for v in verdicts)
    rows, summary = evaluate([rubric], [failed], verdicts, BenchConfig(bench="b", policy="p", judge="j",
                                                                        n_resamples=200))
    # no S1, and both vetoes unknown: the veto fails closed (1 + 0.2 - 1.5 * 2), reported as unscorable too
    assert rows[0]["s1"] is None and rows[0]["reward"] == pytest.approx(1.2 - 3.0)
    assert summary["generation_failures"] == 1 and summary["unscorable_rate"] == 1.0
    assert summary["unscored_rate"] == 1.0 and summary["safety_compliance"] == 0.0


def test_select_is_a_fixed_seed_slice_in_file_order() -> None:
    rubrics = [bench_rubric(f"rb-{i}", "c", "s") for i in range(10)]
    first = select(rubrics, 4, seed=3)
    assert [r.id for r in first] == [r.id for r in select(rubrics, 4, seed=3)]
    assert len(first) == 4 and first == sorted(first, key=lambda r: int(r.id.split("-")[1]))
    assert select(rubrics, None, 0) == rubrics
