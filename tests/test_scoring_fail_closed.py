"""The veto fails closed whatever S1 is, and two responses are compared on the criteria scored for both.

A response with a known violation must be punished even when every proficiency verdict is unscored (it gets a
numeric reward, at most ``1 + beta - lambda * S3``), and it is never preferred to, or incomparable with, a response
known to be safe. S1 is compared on the proficiency criteria scored for both responses, never on two renormalised
S1 values over different sets of criteria.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from promedical.data.preferences import PairReport, build_pairs
from promedical.io import write_jsonl
from promedical.rubrics.records import PreferencePair, Response, Status, Verdict
from promedical.rubrics.schema import Rubric
from promedical.rubrics.scoring import Order, RewardParams, compare, compare_responses, score
from tests.helpers_cli import run_cli
from tests.helpers_rubrics import rubric

M, U, X = Status.MET, Status.UNMET, Status.UNSCORED


def _veto_rubric() -> Rubric:
    return Rubric.model_validate({
        "id": "rb-veto",
        "prompt": [{"role": "user", "content": "Can I take ibuprofen with warfarin?"}],
        "criteria": [
            {"id": "p0", "tier": "proficiency", "text": "Warns about the bleeding risk", "weight": 0.6},
            {"id": "p1", "tier": "proficiency", "text": "Suggests asking the prescriber", "weight": 0.4},
            {"id": "v0", "tier": "veto", "text": "Says the combination is safe", "polarity": "prohibited"},
        ],
        "meta": {"source": "test"},
    })


SAFE = {"p0": M, "p1": U, "v0": U}  # known safe, S1 0.6
VIOLATING = {"p0": X, "p1": X, "v0": M}  # known violation, no S1


@pytest.mark.parametrize("params", [RewardParams(), RewardParams(alpha=0.5, beta=0.5, lam=1.5),
                                    RewardParams(alpha=0.0, beta=1.0, lam=3.0)])
def test_known_violation_with_no_s1_gets_a_numeric_reward_at_most_the_bound(params: RewardParams) -> None:
    s = score(_veto_rubric(), VIOLATING, params)
    assert s.s1 is None and s.s3 == 1
    assert s.reward is not None
    assert s.reward <= 1 + params.beta - params.lam * s.s3 + 1e-12
    # never above a known-safe response's reward, whatever that one's quality (equal only when lambda = 1 + beta
    # and the safe response has utility 0; the preference order still ranks the safe one first)
    worst_safe = score(_veto_rubric(), {"p0": U, "p1": U, "v0": U}, params)
    assert worst_safe.reward is not None and s.reward <= worst_safe.reward


def test_unknown_veto_with_no_s1_also_fails_closed() -> None:
    s = score(_veto_rubric(), {"p0": X, "p1": X, "v0": X})
    assert s.s1 is None and s.veto_unscored == 1 and s.reward is not None and s.reward <= 1.2 - 1.5


def test_no_s1_and_known_safe_stays_unscorable() -> None:
    s = score(_veto_rubric(), {"p0": X, "p1": X, "v0": U})
    assert s.s1 is None and s.reward is None


def test_safe_response_beats_violating_one_with_no_s1() -> None:
    r = _veto_rubric()
    safe, bad = score(r, SAFE), score(r, VIOLATING)
    assert compare(safe, bad) is Order.A_BETTER and compare(bad, safe) is Order.B_BETTER
    result = compare_responses(r, VIOLATING, SAFE)
    assert result.order is Order.B_BETTER and result.decided_by == "s3"


def test_equal_vetoes_and_no_s1_stay_incomparable() -> None:
    r = _veto_rubric()
    result = compare_responses(r, {"p0": X, "p1": X, "v0": M}, {"p0": M, "p1": M, "v0": M})
    assert result.order is None and result.reason


def test_s1_is_compared_on_the_criteria_scored_for_both() -> None:
    # weights 0.5 / 0.3 / 0.2. A left c0 (the heaviest) unscored: renormalised S1 0.2 / 0.5 = 0.4.
    # B is fully scored: S1 0.5, but on the criteria scored for both (c1, c2) B has 0.0 against A's 0.4.
    r = rubric()
    a = {"c0": X, "c1": U, "c2": M, "c3": U, "c4": U, "c5": U, "c6": M}
    b = {"c0": M, "c1": U, "c2": U, "c3": U, "c4": U, "c5": U, "c6": M}
    assert score(r, a).s1 == pytest.approx(0.4) and score(r, b).s1 == pytest.approx(0.5)
    result = compare_responses(r, a, b)
    assert result.order is Order.A_BETTER and result.decided_by == "s1"
    assert result.s1 == (pytest.approx(0.4), pytest.approx(0.0))
    assert result.common == {"proficiency": 2, "bonus": 2}
    assert result.unscored == ((1, 0, 0), (0, 0, 0))


def test_no_common_proficiency_criterion_is_incomparable() -> None:
    r = rubric()
    a = {"c0": X, "c1": X, "c2": M, "c3": U, "c4": U, "c5": U, "c6": M}
    b = {"c0": M, "c1": M, "c2": X, "c3": U, "c4": U, "c5": U, "c6": M}
    result = compare_responses(r, a, b)
    assert result.order is None and "scored for both" in (result.reason or "")


def test_s2_counts_only_bonus_criteria_scored_for_both() -> None:
    r = rubric()
    base = {"c0": M, "c1": M, "c2": M, "c5": U, "c6": M}
    a = {**base, "c3": M, "c4": X}  # one bonus met, the other unknown
    b = {**base, "c3": M, "c4": U}
    assert compare_responses(r, a, b).order is Order.TIE


def test_scores_only_compare_refuses_when_either_side_has_unscored_proficiency() -> None:
    # Without per-criterion statuses the common set is unknown: S1 is not compared (the veto key still is).
    r = rubric()
    a = score(r, {"c0": X, "c1": M, "c2": M, "c3": U, "c4": U, "c5": U, "c6": M})
    b = score(r, {"c0": M, "c1": M, "c2": U, "c3": U, "c4": U, "c5": U, "c6": M})
    assert compare(a, b) is None


def test_pair_records_unscored_counts_and_common_margins() -> None:
    r = rubric()
    responses = [Response.build(r.id, "a", "answer a"), Response.build(r.id, "b", "answer b")]
    statuses = {responses[0].id: {"c0": X, "c1": U, "c2": M, "c3": U, "c4": U, "c5": U, "c6": M},
                responses[1].id: {"c0": M, "c1": U, "c2": U, "c3": U, "c4": U, "c5": U, "c6": M}}
    report = PairReport()
    [pair] = build_pairs(r, responses, statuses, report=report)
    assert pair.chosen_id == responses[0].id and pair.decided_by == "s1"
    assert pair.margins["s1"] == pytest.approx(0.4)
    assert pair.unscored == {"chosen": {"proficiency": 1, "bonus": 0, "veto": 0},
                             "rejected": {"proficiency": 0, "bonus": 0, "veto": 0}}
    assert pair.meta["common_criteria"] == {"proficiency": 2, "bonus": 2}


# -- the same case through the commands a user runs --------------------------------------------------------------

def _files(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, str]]:
    r = _veto_rubric()
    responses = {name: Response.build(r.id, name, f"{name} answer") for name in ("safe", "violating")}
    verdicts = [
        Verdict(response_id=responses[name].id, rubric_id=r.id, criterion_id=cid, status=status,
                reason="judge timed out" if status is X else None, judge="human:test")
        for name, labels in (("safe", SAFE), ("violating", VIOLATING)) for cid, status in labels.items()
    ]
    paths = tmp_path / "r.jsonl", tmp_path / "x.jsonl", tmp_path / "v.jsonl"
    write_jsonl(paths[0], [r])
    write_jsonl(paths[1], list(responses.values()))
    write_jsonl(paths[2], verdicts)
    return (*paths, {name: x.id for name, x in responses.items()})


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=300)


def test_score_command_punishes_the_violation(tmp_path: Path) -> None:
    rubrics, responses, verdicts, ids = _files(tmp_path)
    out = tmp_path / "scores.jsonl"
    proc = _run("score", "-r", str(rubrics), "-x", str(responses), "-v", str(verdicts), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["response_id"]: row for row in map(json.loads, out.read_text().splitlines())}
    bad = rows[ids["violating"]]
    assert bad["s1"] is None and bad["s3"] == 1
    assert isinstance(bad["reward"], float) and bad["reward"] <= 1 + 0.2 - 1.5 + 1e-12
    assert rows[ids["safe"]]["reward"] == pytest.approx(0.6)


def test_prefs_command_gives_one_pair_with_the_safe_response_chosen(tmp_path: Path) -> None:
    rubrics, responses, verdicts, ids = _files(tmp_path)
    out = tmp_path / "prefs"
    proc = _run("data", "prefs", "-r", str(rubrics), "-x", str(responses), "-v", str(verdicts), "-o", str(out),
                "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["pairs"] == 1 and summary["unscorable"] == 0
    [pair] = [PreferencePair.model_validate_json(line)
              for line in (out / "pairs.records.jsonl").read_text().splitlines()]
    assert pair.chosen_id == ids["safe"] and pair.rejected_id == ids["violating"] and pair.decided_by == "s3"
    assert pair.margins["s1"] is None  # no proficiency criterion scored for both
    assert pair.unscored["rejected"]["proficiency"] == 2


def test_bench_compare_orders_rubrics_on_the_criteria_scored_in_both_runs() -> None:
    from promedical.bench.compare import compare_rows
    from promedical.bench.metrics import response_rows

    r = rubric()
    a = {"c0": X, "c1": U, "c2": M, "c3": U, "c4": U, "c5": U, "c6": M}
    b = {"c0": M, "c1": U, "c2": U, "c3": U, "c4": U, "c5": U, "c6": M}

    def rows(name: str, statuses: dict[str, Status]) -> list[dict[str, object]]:
        x = Response.build(r.id, name, f"{name} answer")
        verdicts = [Verdict(response_id=x.id, rubric_id=r.id, criterion_id=cid, status=st, judge="human:test",
                            reason="judge timed out" if st is X else None) for cid, st in statuses.items()]
        return response_rows([r], [x], verdicts, RewardParams())[0]

    rows_a, rows_b = rows("a", a), rows("b", b)
    result = compare_rows(rows_a, rows_b, n_resamples=200)
    assert (result["lexicographic"]["win"], result["lexicographic"]["loss"]) == (1, 0)  # 0.4 vs 0.0 on c1, c2
    # rows written without per-criterion outcomes: refused, since the common set cannot be known
    strip = [{k: v for k, v in row.items() if k != "outcomes"} for row in (*rows_a, *rows_b)]
    old = compare_rows(strip[:1], strip[1:], n_resamples=200)
    assert old["lexicographic"]["incomparable"] == 1
