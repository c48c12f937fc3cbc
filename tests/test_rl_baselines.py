"""Baselines on the tiny random Llama: implicit-RM GRPO through the same builder, and DPO on lexicographic pairs."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest

from promedical.data.exports import pair_rows
from promedical.data.preferences import build_pairs
from promedical.io import UserError, write_jsonl
from promedical.rl.baselines import ScalarRMReward
from promedical.rl.config import DPOSettings
from promedical.rl.dpo import read_pairs, run_dpo
from promedical.rl.grpo import run
from promedical.rubrics.scoring import statuses_by_response
from promedical.samples import load_responses, load_rubrics, load_verdicts
from tests.helpers_rl import logged_keys, tiny_settings

pytest.importorskip("trl")


def _implicit_rm(path: Path, template: str = "implicit/1") -> Path:
    """An untrained tiny reward-model checkpoint (mechanics only: its scores mean nothing)."""
    from promedical.reward.model import fresh_rm, write_card

    rm = fresh_rm("tiny-llama", template, 128)
    rm.model.save_pretrained(path)
    rm.tokenizer.save_pretrained(path)
    write_card(path, rm.card)
    return path


def _sample_pairs(path: Path) -> Path:
    rubrics = {r.id: r for r in load_rubrics()}
    statuses = statuses_by_response((v.response_id, v.criterion_id, v.status) for v in load_verdicts())
    by_rubric: dict[str, list] = {}
    for response in load_responses():
        by_rubric.setdefault(response.rubric_id, []).append(response)
    pairs = [p for rid, rs in sorted(by_rubric.items()) for p in build_pairs(rubrics[rid], rs, statuses,
                                                                           judge="human")]
    write_jsonl(path, pair_rows(pairs))
    return path


@pytest.mark.slow
def test_implicit_rm_grpo_runs_through_the_same_builder(tmp_path: Path) -> None:
    rm = _implicit_rm(tmp_path / "rm")
    summary = run(tiny_settings(tmp_path, "reward.mode=scalar", f"reward.judge=rm:{rm}", "max_steps=1"))
    assert summary["global_step"] == 1
    state = json.loads((tmp_path / "run" / "checkpoint-1" / "trainer_state.json").read_text())
    keys = logged_keys(state["log_history"])
    assert {"scalar/reward", "rewards/implicit_rm_reward/mean", "monitor/self_praise_rate"} <= keys
    # group signal for the scalar reward too: the (untrained) RM's scores differ between completions of a prompt
    assert {"signal/zero_std_share", "signal/group_std"} <= keys
    step = summary["signal"]["steps"][0]
    assert step["groups"] == 2 and step["zero_std_share"] < 1 and step["group_std"] > 0
    assert step["unscored_rate"] == 0.0 and "veto_rate" not in step  # scalar/unscored_rate reused; no veto here


def test_scalar_baseline_refuses_an_explicit_rm(tmp_path: Path) -> None:
    rm = _implicit_rm(tmp_path / "rm", template="explicit/1")
    with pytest.raises(UserError, match="implicit/1"):
        ScalarRMReward.from_spec(f"rm:{rm}", {})
    with pytest.raises(UserError, match="rm:<checkpoint"):
        ScalarRMReward.from_spec("lexical", {})


def test_scalar_reward_scores_every_completion(tmp_path: Path) -> None:
    from promedical.reward.model import load_rm

    reward = ScalarRMReward(load_rm(_implicit_rm(tmp_path / "rm")), {})
    logged: dict[str, float] = {}
    values = reward(prompts=[[{"role": "user", "content": "q"}]] * 2, completions=["short", "a longer answer"],
                    log_metric=logged.__setitem__)
    assert len(values) == 2 and all(isinstance(v, float) for v in values)
    assert logged["scalar/reward"] == pytest.approx(sum(v for v in values if v is not None) / 2)


def test_read_pairs_accepts_exports_and_rejects_defects(tmp_path: Path) -> None:
    rows = read_pairs([str(_sample_pairs(tmp_path / "pairs.jsonl"))])
    assert rows and set(rows[0]) == {"prompt", "chosen", "rejected"}
    assert rows[0]["chosen"][0]["role"] == "assistant"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "p1", "prompt": "q", "chosen": "a"}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:1: p1: rejected"):
        read_pairs([str(bad)])


@pytest.mark.slow
def test_dpo_on_lexicographic_pairs(tmp_path: Path) -> None:
    pairs = _sample_pairs(tmp_path / "pairs.jsonl")
    settings = DPOSettings(policy="tiny-llama", pairs=[str(pairs)], output_dir=str(tmp_path / "dpo"), max_steps=2,
                           per_device_train_batch_size=2, max_length=128, learning_rate=1e-4, save_steps=2,
                           report_to="tensorboard" if find_spec("tensorboard") else "none")
    summary = run_dpo(settings)
    assert summary["global_step"] == 2 and summary["last_loss"] is not None
    assert (tmp_path / "dpo" / "dpo.manifest.json").is_file()
    assert (tmp_path / "dpo" / "final" / "config.json").is_file()
    assert (tmp_path / "dpo" / "dpo.log_history.json").is_file()  # what `grpo curves` reads
    if find_spec("tensorboard"):  # report_to reached DPOTrainer
        assert list((tmp_path / "dpo").glob("**/events.out.tfevents.*"))
