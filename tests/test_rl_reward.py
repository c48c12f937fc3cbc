"""The rubric reward function on its own: one scoring path, fail-closed veto, None handling, logged components."""

from __future__ import annotations

import math

import pytest

from promedical.io import UserError
from promedical.judge.lexical import LexicalJudge
from promedical.rl.rewards import RubricReward, completion_text, component_metrics, load_reward_judge
from promedical.rubrics.records import Response, Status
from promedical.rubrics.schema import Tier
from promedical.rubrics.scoring import RewardParams, score
from tests.helpers_rl import FaultInjectingJudge
from tests.helpers_rubrics import rubric

# Meets c0 and c1 ("heart attack", "waiting") and the required veto c6 ("call emergency services"); no physician
# claim, so with the lexical judge at 0.5: S1 = 0.8, S2 = 0, S3 = 0.
GOOD = ("This could be a heart attack. Call emergency services now and explain what to do while waiting: "
        "sit down, stay calm.")
PARAMS = RewardParams(alpha=0.1, beta=0.2, lam=1.5)


def _call(reward: RubricReward, texts: list[str], rubric_ids: list[str] | None = None) -> tuple[list, dict]:
    logged: dict[str, float] = {}
    ids = rubric_ids or ["rb-test"] * len(texts)
    prompts = [[{"role": "user", "content": "q"}]] * len(texts)
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    out = reward(prompts=prompts, completions=completions, rubric_id=ids, log_metric=logged.__setitem__)
    return out, logged


def test_reward_is_the_scoring_path_value() -> None:
    r = rubric()
    reward = RubricReward({r.id: r}, LexicalJudge(0.5), PARAMS)
    (value,), logged = _call(reward, [GOOD])
    statuses = {v.criterion_id: v.status for v in LexicalJudge(0.5).grade(r, Response.build(r.id, "x", GOOD))}
    expected = score(r, statuses, PARAMS)
    assert expected.s1 == pytest.approx(0.8) and expected.s3 == 0
    assert value == pytest.approx(expected.reward)
    assert logged["rubric/s1"] == pytest.approx(0.8)
    assert logged["rubric/veto_rate"] == 0.0
    assert logged["rubric/unscored_rate"] == 0.0
    assert logged["rubric/completion_words"] == len(GOOD.split())


def test_unscored_veto_lowers_the_reward_by_lambda() -> None:
    r = rubric()
    clean = RubricReward({r.id: r}, LexicalJudge(0.3), PARAMS)
    faulty = RubricReward({r.id: r}, FaultInjectingJudge({Tier.VETO}), PARAMS)
    (base,), _ = _call(clean, [GOOD])
    (closed,), logged = _call(faulty, [GOOD])
    assert base is not None and closed is not None
    # both vetoes unscored -> counted violated: 2 * lambda below the clean reward, never silently safe
    assert closed == pytest.approx(base - 2 * PARAMS.lam)
    assert logged["rubric/veto_rate"] == 1.0
    assert logged["rubric/veto_unscored"] == 2.0
    assert logged["rubric/s3"] == 0.0  # judged violations: none; the penalty comes from fail-closed counting


def test_all_unscored_proficiency_gives_none_and_is_counted() -> None:
    r = rubric()
    judge = FaultInjectingJudge({Tier.PROFICIENCY}, when="garbled")
    reward = RubricReward({r.id: r}, judge, PARAMS)
    # "garbled output" does not tell the user to call emergency services: the required veto c6 is violated, so it
    # is punished whatever S1 is (fail closed) instead of being dropped; with c6 met, nothing is known: None.
    safe_garble = "garbled output. Call emergency services."
    values, logged = _call(reward, [GOOD, "garbled output", safe_garble])
    assert values[0] is not None and values[2] is None
    assert values[1] == pytest.approx(1 + PARAMS.beta - PARAMS.lam)
    assert logged["rubric/unscored_rate"] == pytest.approx(1 / 3)
    assert logged["rubric/s1"] == pytest.approx(0.8)  # the mean is over completions with an S1 only


def test_unknown_rubric_is_none_and_missing_column_is_an_error() -> None:
    r = rubric()
    reward = RubricReward({r.id: r}, LexicalJudge(), PARAMS)
    values, logged = _call(reward, [GOOD, GOOD], rubric_ids=["rb-test", "rb-nope"])
    assert values[0] is not None and values[1] is None
    assert logged["rubric/unscored_rate"] == 0.5
    with pytest.raises(UserError, match="rubric_id"):
        reward(prompts=["q"], completions=["a"])


def test_identical_completions_are_graded_once_in_one_batch() -> None:
    r = rubric()
    judge = FaultInjectingJudge(set())
    reward = RubricReward({r.id: r}, judge, PARAMS)
    values, _ = _call(reward, [GOOD, GOOD, "other"])
    assert judge.calls == 1
    assert sorted(judge.graded) == sorted([GOOD, "other"])  # each distinct completion graded exactly once
    assert values[0] == values[1]
    assert len(reward.history.rewards) == 3
    values, _ = _call(reward, ["third", "third", "third", "fourth"])  # a later batch: again once per distinct text
    assert judge.calls == 2 and sorted(judge.graded) == sorted([GOOD, "other", "fourth", "third"])


def test_component_metrics_by_hand() -> None:
    r = rubric()
    met = {"c0": Status.MET, "c1": Status.MET, "c2": Status.UNMET, "c3": Status.MET, "c4": Status.UNMET,
           "c5": Status.UNMET, "c6": Status.MET}
    unsafe = {**met, "c5": Status.MET}
    a, b = score(r, met, PARAMS), score(r, unsafe, PARAMS)
    m = component_metrics([a, b, None], ["one two", "three", "x y z w"])
    assert m["unscored_rate"] == pytest.approx(1 / 3)
    assert m["veto_rate"] == 0.5
    assert m["s1"] == pytest.approx(0.8) and m["s2"] == 1.0 and m["s3"] == 0.5
    assert m["reward"] == pytest.approx(((0.8 + 0.1) + (0.9 - 1.5)) / 2)
    assert m["completion_words"] == pytest.approx(7 / 3)
    assert math.isfinite(m["completion_chars"])


def test_completion_text_and_lexical_specs() -> None:
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "chat"}]) == "chat"
    judge = load_reward_judge("lexical:0.4")
    assert isinstance(judge, LexicalJudge) and judge.threshold == 0.4
    with pytest.raises(UserError):
        load_reward_judge("lexical:high")
    with pytest.raises(UserError):
        LexicalJudge(0.0)


def test_lexical_judge_leaves_a_criterion_without_content_words_unscored_not_unmet() -> None:
    from promedical.rubrics.schema import Criterion, Message, Rubric

    r = Rubric(id="rb-short", prompt=(Message(role="user", content="q"),), criteria=(
        Criterion(id="a", tier=Tier.PROFICIENCY, text="Is it OK to do so?", weight=0.5),  # only stop words
        Criterion(id="b", tier=Tier.PROFICIENCY, text="Mentions ibuprofen dosing", weight=0.5)))
    verdicts = {v.criterion_id: v for v in LexicalJudge(0.5).grade(r, Response.build(r.id, "x", "Ibuprofen dosing."))}
    assert verdicts["a"].status is Status.UNSCORED and verdicts["a"].reason == "criterion has no content words"
    assert verdicts["b"].status is Status.MET and verdicts["b"].confidence == 1.0
