"""Probability credit (``reward.credit: probability``): a reward-model judge's scores make S1 and S2 expectations,
so completions that miss the same criteria are still ranked; vetoes stay hard verdicts, fail closed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from promedical.io import read_responses, read_rubrics  # noqa: E402
from promedical.reward.judge import RMJudge  # noqa: E402
from promedical.reward.model import TierThreshold, fresh_rm  # noqa: E402
from promedical.rl.config import RewardSettings  # noqa: E402
from promedical.rl.rewards import RubricReward, verdict_credit  # noqa: E402
from promedical.rubrics.records import Status  # noqa: E402
from promedical.rubrics.schema import Polarity, Tier  # noqa: E402
from promedical.rubrics.scoring import RewardParams, expected_utility, reward, score  # noqa: E402
from tests.helpers_rl import FaultInjectingJudge  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "promedical" / "samples"
PARAMS = RewardParams(alpha=0.1, beta=0.2, lam=1.5)


def _judge(threshold: float) -> RMJudge:
    """A real reward model (tiny Llama, random score head with spread) with one threshold for every tier."""
    rm = fresh_rm("tiny-llama", "explicit/1", 192, seed=0)
    torch.manual_seed(5)
    torch.nn.init.normal_(rm.model.score.weight, std=1.0)
    card = rm.card.model_copy(update={"thresholds": {
        t: TierThreshold(threshold=threshold, rule="test", n=0) for t in ("proficiency", "bonus", "veto")}})
    return RMJudge(rm.__class__(rm.model, rm.tokenizer, card, rm.path))


def _call(reward_fn: RubricReward, rubric_id: str, texts: list[str]) -> list[float | None]:
    prompts = [[{"role": "user", "content": "q"}]] * len(texts)
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    return reward_fn(prompts=prompts, completions=completions, rubric_id=[rubric_id] * len(texts))


@pytest.fixture(scope="module")
def sample():  # type: ignore[no-untyped-def]
    rubrics = read_rubrics([SAMPLES / "rubrics.jsonl"])
    rubric = next(r for r in rubrics if r.by_tier(Tier.VETO) and r.by_tier(Tier.BONUS))
    texts = [x.text for x in read_responses(SAMPLES / "responses.jsonl")][:4]
    return rubric, texts


def test_probability_credit_is_the_expected_utility_of_the_scores(sample) -> None:  # type: ignore[no-untyped-def]
    rubric, texts = sample
    judge = _judge(threshold=1e6)  # nothing is satisfied: every verdict-credit S1 is 0
    verdict_reward = RubricReward({rubric.id: rubric}, judge, PARAMS)
    soft_reward = RubricReward({rubric.id: rubric}, judge, PARAMS, credit="probability")
    hard, soft = _call(verdict_reward, rubric.id, texts), _call(soft_reward, rubric.id, texts)
    # far below every threshold, each probability underflows to 0: the two credits agree exactly
    assert soft == hard
    judge = _judge(threshold=0.0)
    soft = _call(RubricReward({rubric.id: rubric}, judge, PARAMS, credit="probability"), rubric.id, texts)
    hard = _call(RubricReward({rubric.id: rubric}, judge, PARAMS), rubric.id, texts)
    for text, got, binary in zip(texts, soft, hard, strict=True):
        response_verdicts = judge.grade(rubric, RubricReward({rubric.id: rubric}, judge).responses(
            [rubric.id], [text], 0)[0])  # type: ignore[arg-type]
        statuses = {v.criterion_id: v.status for v in response_verdicts}
        credit = {}
        for v in response_verdicts:
            c = rubric.criterion(v.criterion_id)
            if c.tier is Tier.VETO:
                continue
            p = 1 / (1 + math.exp(-v.meta["score"]))  # threshold 0
            credit[c.id] = p if c.polarity is not Polarity.PROHIBITED else 1 - p
        s1, s2 = expected_utility(rubric, statuses, credit)
        scores = score(rubric, statuses, PARAMS)
        assert got == pytest.approx(reward(s1, s2, scores.s3_fail_closed, PARAMS))
        assert binary == pytest.approx(scores.reward)
        assert 0.0 < s1 < 1.0  # a probability, not a verdict
    assert len(set(soft)) == len(set(texts))  # distinct texts, distinct rewards


def test_vetoes_stay_hard_and_fail_closed_under_probability_credit(sample) -> None:  # type: ignore[no-untyped-def]
    rubric, texts = sample
    # fault injection (a test double by design): every veto verdict comes back unscored
    faulty = RubricReward({rubric.id: rubric}, FaultInjectingJudge({Tier.VETO}), PARAMS, credit="probability")
    values = _call(faulty, rubric.id, texts[:1])
    n_vetoes = len(rubric.by_tier(Tier.VETO))
    assert values[0] is not None and values[0] <= 1 + PARAMS.beta - PARAMS.lam * n_vetoes + 1e-9
    assert faulty.last_scores[0] is not None and faulty.last_scores[0].veto_unscored == n_vetoes


def test_verdict_credit_needs_a_finite_score_and_is_none_for_vetoes(sample) -> None:  # type: ignore[no-untyped-def]
    rubric, texts = sample
    judge = _judge(threshold=0.0)
    response = RubricReward({rubric.id: rubric}, judge).responses([rubric.id], [texts[0]], 0)[0]
    assert response is not None
    for v in judge.grade(rubric, response):
        c = rubric.criterion(v.criterion_id)
        p = verdict_credit(c, v)
        if c.tier is Tier.VETO:
            assert p is None
        else:
            assert p is not None and 0.0 < p < 1.0
            assert (p >= 0.5) == (v.status is Status.MET)  # the credit agrees with the verdict at the threshold
            assert verdict_credit(c, v.model_copy(update={"meta": {**v.meta, "score": float("nan")}})) is None
            assert verdict_credit(c, v.model_copy(update={"meta": {}})) is None


def test_config_takes_the_credit_mode() -> None:
    assert RewardSettings(judge="lexical").credit == "verdict"
    assert RewardSettings(judge="rm:x", credit="probability").credit == "probability"
    with pytest.raises(ValueError):
        RewardSettings(judge="rm:x", credit="soft")  # type: ignore[arg-type]
