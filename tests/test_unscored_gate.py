"""Failures that look like values: a NaN score is unscored, programming errors raise, and a run whose verdicts are
mostly unscored stops with one clear line (exit 2) instead of reporting numbers that measure nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from promedical import samples
from promedical.io import write_jsonl
from promedical.judge.lexical import LexicalJudge
from promedical.llm.protocol import GenerationParams, Request
from promedical.rl.config import RewardSettings
from promedical.rl.rewards import RubricReward
from promedical.rubrics.records import Response, Status
from promedical.rubrics.schema import Rubric
from promedical.unscored import UnscoredRateError, check_rate
from tests.helpers_cli import run_cli

DEAD = "http://127.0.0.1:9/v1"  # the discard port: nothing listens, every request fails to connect


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=300)


def test_check_rate_boundaries() -> None:
    check_rate(5, 10, 0.5, "x")  # exactly at the limit passes
    check_rate(10, 10, 1.0, "x")  # 1 turns the check off
    check_rate(0, 0, 0.0, "x")  # nothing to check
    with pytest.raises(UnscoredRateError, match=r"x: -: status: 6 of 10 verdicts unscored .*'timeout'"):
        check_rate(6, 10, 0.5, "x", reasons=["timeout"] * 6)


# -- the commands ---------------------------------------------------------------------------------------------------

def test_judge_run_against_a_dead_server_fails_cleanly_and_keeps_the_verdicts(tmp_path: Path) -> None:
    out = tmp_path / "v.jsonl"
    args = ["judge", "run", "-r", str(samples.rubrics_path()), "-x", str(samples.responses_path()),
            "--judge", f"openai:m@{DEAD}", "--retries", "0", "--timeout", "5", "--limit", "2", "--no-cache",
            "-o", str(out)]
    proc = _run(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = [x for x in proc.stderr.strip().splitlines() if x.strip()]
    assert str(out) in line and "unscored (100.0%, limit 50%)" in line and "connection error" in line
    assert "Traceback" not in proc.stderr
    verdicts = [json.loads(x) for x in out.read_text().splitlines()]
    assert verdicts and all(v["status"] == "unscored" for v in verdicts)
    # the limit can be lifted explicitly
    accepted = _run(*args, "--max-unscored-rate", "1")
    assert accepted.returncode == 0, accepted.stderr
    bad = _run(*args, "--max-unscored-rate", "1.5")
    assert bad.returncode == 2 and "--max-unscored-rate: must be between 0 and 1" in bad.stderr


def test_bench_run_with_a_dead_policy_server_writes_no_summary(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _run("bench", "run", "-b", str(samples.rubrics_path()), "-p", f"openai:m@{DEAD}", "-j", "lexical",
                "--limit", "2", "--timeout", "5", "--resamples", "200", "-o", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "verdicts.jsonl: -: status:" in proc.stderr and "unscored (100.0%" in proc.stderr
    assert (out / "verdicts.jsonl").exists() and not (out / "summary.json").exists()


# -- GRPO: the training reward stops the run --------------------------------------------------------------------------

def _wordless_rubric() -> Rubric:
    # The lexical judge leaves a criterion with no content words unscored (a real judge, not a double).
    return Rubric.model_validate({
        "id": "rb-wordless", "prompt": [{"role": "user", "content": "Is it serious?"}],
        "criteria": [{"id": "p0", "tier": "proficiency", "text": "It is what it is.", "weight": 1.0}],
        "meta": {"source": "test"}})


def test_grpo_reward_stops_when_the_judge_cannot_score() -> None:
    rubric = _wordless_rubric()
    assert LexicalJudge().grade(rubric, Response.build(rubric.id, "p", "x"))[0].status is Status.UNSCORED
    settings = RewardSettings(judge="lexical")
    assert settings.max_unscored_rate == 0.5  # on by default
    reward = RubricReward({rubric.id: rubric}, LexicalJudge(), max_unscored_rate=settings.max_unscored_rate)
    with pytest.raises(UnscoredRateError, match=r"reward\.judge lexical"):
        reward(prompts=["q", "q"], completions=["an answer", "another"], rubric_id=[rubric.id, rubric.id])
    off = RubricReward({rubric.id: rubric}, LexicalJudge(), max_unscored_rate=1.0)
    assert off(prompts=["q"], completions=["an answer"], rubric_id=[rubric.id]) == [None]


def test_grpo_config_rejects_an_out_of_range_limit() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        RewardSettings(judge="lexical", max_unscored_rate=2.0)


# -- generators: programming errors propagate, model failures are values -------------------------------------------

def _request() -> Request:
    return Request([{"role": "user", "content": "hi"}], GenerationParams(max_tokens=4))


def test_openai_generator_lets_programming_errors_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    from promedical.llm.openai_compat import OpenAICompatGenerator

    gen = OpenAICompatGenerator("m", DEAD, retries=0, timeout=2)
    try:
        failed = gen.generate([_request()])[0]  # a real connection failure: a value
        assert not failed.ok and "connection error" in (failed.error or "")

        def broken(request: Request) -> None:  # fault injection: a bug inside the client code path
            raise AttributeError("'NoneType' object has no attribute 'json'")

        monkeypatch.setattr(gen, "_one", broken)
        with pytest.raises(AttributeError):
            gen.generate([_request()])
        gen.concurrency = 2
        with pytest.raises(AttributeError):
            gen.generate([_request(), _request()])
    finally:
        gen.close()


def test_hf_generator_lets_programming_errors_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from promedical.llm.hf_local import HFLocalGenerator

    gen = HFLocalGenerator("tiny-llama", batch_size=2)

    def oom(requests: object) -> None:  # fault injection: the model runs out of memory
        raise RuntimeError("CUDA out of memory")

    def bug(requests: object) -> None:  # fault injection: a bug in the batching code
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(gen, "_batch", oom)
    [completion] = gen.generate([_request()])
    assert not completion.ok and "out of memory" in (completion.error or "")
    monkeypatch.setattr(gen, "_batch", bug)
    with pytest.raises(TypeError):
        gen.generate([_request()])


# -- reward model: a NaN score is unscored, never unmet or violated --------------------------------------------------

@pytest.fixture(scope="module")
def nan_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    from promedical.reward.model import TierThreshold, fresh_rm, write_card

    rm = fresh_rm("tiny-llama", "explicit/1", 192)
    with torch.no_grad():  # fault injection: corrupted weights make every score NaN
        rm.model.score.weight.fill_(float("nan"))
    path = tmp_path_factory.mktemp("rm-nan") / "model"
    rm.model.save_pretrained(path)
    rm.tokenizer.save_pretrained(path)
    card = rm.card.model_copy(update={"thresholds": {
        t: TierThreshold(threshold=0.0, rule="test", n=0) for t in ("proficiency", "bonus", "veto")}})
    write_card(path, card)
    return path


def test_nan_reward_model_score_is_unscored(nan_checkpoint: Path) -> None:
    from promedical.reward.judge import load_rm_judge

    rubrics = samples.load_rubrics()
    rubric = next(r for r in rubrics if any(c.polarity is not None and c.polarity.value == "prohibited"
                                            for c in r.criteria))
    verdicts = load_rm_judge(nan_checkpoint).grade(rubric, Response.build(rubric.id, "p", "Some answer."))
    assert verdicts and all(v.status is Status.UNSCORED for v in verdicts)
    assert all("non-finite" in (v.reason or "") for v in verdicts)


def test_rm_score_command_stops_on_nan_scores(nan_checkpoint: Path, tmp_path: Path) -> None:
    responses = tmp_path / "x.jsonl"
    rubric = samples.load_rubrics()[0]
    write_jsonl(responses, [Response.build(rubric.id, "p", "Some answer.")])
    out = tmp_path / "v.jsonl"
    proc = _run("rm", "score", "-m", str(nan_checkpoint), "-r", str(samples.rubrics_path()), "-x", str(responses),
                "-o", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{out}: -: status:" in proc.stderr and "non-finite" in proc.stderr


def test_scalar_reward_turns_nan_into_none(nan_checkpoint: Path) -> None:
    from promedical.reward.model import load_rm
    from promedical.rl.baselines import ScalarRMReward

    rubric = samples.load_rubrics()[0]
    reward = ScalarRMReward(load_rm(nan_checkpoint), {rubric.id: rubric}, max_unscored_rate=1.0)
    assert reward(prompts=["q"], completions=["an answer"], rubric_id=[rubric.id]) == [None]
    gated = ScalarRMReward(load_rm(nan_checkpoint), {rubric.id: rubric}, max_unscored_rate=0.5)
    with pytest.raises(UnscoredRateError):
        gated(prompts=["q"], completions=["an answer"], rubric_id=[rubric.id])
