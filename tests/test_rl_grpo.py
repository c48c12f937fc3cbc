"""The reward function inside a real TRL GRPOTrainer on the tiny random Llama: contract, logging, None, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from promedical.io import read_rubrics, write_jsonl
from promedical.rl.grpo import build_trainer, run
from promedical.rl.rewards import RubricReward
from promedical.rubrics.schema import Tier
from tests.helpers_rl import SAMPLE_RUBRICS, FaultInjectingJudge, logged_keys, tiny_settings

pytest.importorskip("trl")

COMPONENTS = {"rubric/s1", "rubric/s2", "rubric/s3", "rubric/veto_rate", "rubric/unscored_rate",
              "rubric/completion_words", "rubric/veto_unscored", "monitor/self_praise_rate",
              "monitor/credential_claim_rate", "monitor/disclaimer_stuffing_rate"}


@pytest.mark.slow
def test_grpo_run_logs_components_writes_run_dir_and_resumes(tmp_path: Path) -> None:
    probe = [f"monitors.probe_rubrics=[{SAMPLE_RUBRICS}]", "monitors.probe_judge=lexical:0.5", "monitors.probe_n=2",
             "monitors.probe_every=1", "monitors.probe_max_new_tokens=8"]
    settings = tiny_settings(tmp_path, *probe)
    summary = run(settings)
    run_dir = Path(settings.output_dir)
    assert summary["global_step"] == 2 and summary["resumed_from"] is None
    state = json.loads((run_dir / "checkpoint-2" / "trainer_state.json").read_text())
    history = state["log_history"]
    assert logged_keys(history) >= COMPONENTS
    assert "rewards/rubric_reward/mean" in logged_keys(history)
    steps = [e for e in history if "rubric/s1" in e]
    assert len(steps) == 2 and all(0.0 <= e["rubric/s1"] <= 1.0 for e in steps)
    assert all(e["rubric/unscored_rate"] == 0.0 for e in steps)  # the lexical judge never fails
    # the paper's values reached TRL explicitly (its own defaults differ)
    args = json.loads((run_dir / "grpo.config.json").read_text())
    assert args["kl_coef"] == 0.04 and args["loss_type"] == "grpo"
    manifest = json.loads((run_dir / "grpo.manifest.json").read_text())
    assert manifest["counts"]["scored_completions"] == 8  # 2 steps x 4 completions, every one scored
    assert (run_dir / "final" / "config.json").is_file()
    monitors = json.loads((run_dir / "monitors_summary.json").read_text())
    assert monitors["scored_completions"] == 8 and monitors["length_reward"]["n"] == 8.0
    # the held-out probe: before any update, after each step; training reward vs a second judge on the same answers
    probes = [json.loads(line) for line in (run_dir / "monitors.jsonl").read_text().splitlines()]
    assert [p["step"] for p in probes] == [0, 1, 2]
    assert all(p["probe/n"] == 2 and len(p["probe/train_rewards"]) == 2 for p in probes)
    assert all(p["probe/gap"] == pytest.approx(p["probe/train"] - p["probe/heldout"]) for p in probes)
    assert "probe/gap" in logged_keys(history)
    assert [p["step"] for p in monitors["probe"]["series"]] == [0, 1, 2]

    resumed = run(tiny_settings(tmp_path, "max_steps=3"))
    assert resumed["resumed_from"] is not None and resumed["resumed_from"].endswith("checkpoint-2")
    assert resumed["global_step"] == 3


def test_trainer_gets_the_paper_values(tmp_path: Path) -> None:
    trainer, reward, _ = build_trainer(tiny_settings(tmp_path))
    assert trainer.args.beta == 0.04 and trainer.args.loss_type == "grpo"
    assert trainer.args.num_generations == 2
    assert isinstance(reward, RubricReward)
    assert trainer.reward_func_names == ["rubric_reward"]


def _rubrics_without_vetoes(tmp_path: Path) -> str:
    """The sample rubrics less their veto criteria. A violated or unscored veto fails closed and gives a numeric
    reward whatever S1 is, so only a completion with no veto to answer for is unscorable when S1 is unknown."""
    path = tmp_path / "no_veto.jsonl"
    write_jsonl(path, [r.model_copy(update={"criteria": tuple(c for c in r.criteria if c.tier is not Tier.VETO)})
                       for r in read_rubrics([SAMPLE_RUBRICS])])
    return f"rubrics=[{path}]"


@pytest.mark.slow
def test_unscorable_completions_are_excluded_not_zero(tmp_path: Path) -> None:
    """Every proficiency criterion unscored -> reward None -> TRL excludes it (NaN reward, zero advantage)."""
    trainer, reward, _ = build_trainer(tiny_settings(tmp_path, "max_steps=1", _rubrics_without_vetoes(tmp_path)))
    reward.judge = FaultInjectingJudge({Tier.PROFICIENCY})
    reward.max_unscored_rate = 1.0  # the unscored-rate gate would stop this run; here the point is the exclusion
    trainer.train()
    entry = next(e for e in trainer.state.log_history if "rubric/unscored_rate" in e)
    assert entry["rubric/unscored_rate"] == 1.0
    assert "rubric/s1" not in entry  # nothing scored: no S1 mean is invented
    # TRL's logged reward excludes the None rows instead of counting them 0 (NaN, stored as null)
    assert entry["reward"] is None or math.isnan(entry["reward"])
    assert entry["loss"] == 0.0  # no learning signal from unscorable completions


@pytest.mark.slow
def test_a_partly_unscorable_batch_averages_the_scored_completions_only(tmp_path: Path) -> None:
    """Half the distinct completions unscorable (fault injection), the rest scored by the real lexical judge: the
    logged reward is the mean over the scored ones; an unscorable completion never counts as a reward of 0 (or any
    other stand-in value) beside them."""
    trainer, reward, _ = build_trainer(tiny_settings(tmp_path, "max_steps=1", _rubrics_without_vetoes(tmp_path)))
    judge = FaultInjectingJudge({Tier.PROFICIENCY}, alternate=True)
    reward.judge = judge
    reward.max_unscored_rate = 1.0  # the unscored-rate gate would stop this run; here the point is the averaging
    trainer.train()
    assert judge.calls == 1  # one batch: the logged numbers below are that batch's
    entry = next(e for e in trainer.state.log_history if "rubric/unscored_rate" in e)
    rewards = [None if s is None else s.reward for s in reward.last_scores]
    scored = [r for r in rewards if r is not None]
    assert scored and len(scored) < len(rewards)  # a mixed batch
    assert entry["rubric/unscored_rate"] == pytest.approx(1 - len(scored) / len(rewards))
    assert entry["reward"] == pytest.approx(math.fsum(scored) / len(scored), abs=1e-6)
    # per completion, what TRL received and the advantage its loss used (its own completion log, in batch order):
    # no reward (NaN) and no advantage exactly where the rubric reward is None, whatever the others were
    received = list(trainer._logs["rewards"]["rubric_reward"])
    advantages = list(trainer._logs["advantages"])
    assert len(received) == len(advantages) == len(rewards)
    assert [math.isnan(x) for x in received] == [r is None for r in rewards]
    assert all(a == 0.0 for a, r in zip(advantages, rewards, strict=True) if r is None)
    assert [x for x in received if not math.isnan(x)] == pytest.approx(scored)
