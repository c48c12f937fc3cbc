"""GRPO/DPO settings: paper defaults, overrides, and one-line errors with exit code 2 from the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from promedical.config import load_settings
from promedical.io import UserError
from promedical.rl.config import DPOSettings, GRPOSettings
from tests.helpers_rl import TINY_CONFIG

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promedical", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_paper_defaults_are_explicit() -> None:
    s = GRPOSettings.model_validate({"rubrics": ["r.jsonl"], "output_dir": "x", "reward": {"judge": "lexical"}})
    assert (s.num_generations, s.kl_coef, s.learning_rate, s.loss_type) == (8, 0.04, 1e-6, "grpo")
    assert s.reward.params.alpha == 0.1 and s.reward.params.lam == 1.5


def test_overrides_reach_nested_fields_and_parse_scalars() -> None:
    s = load_settings(GRPOSettings, TINY_CONFIG, ["reward.alpha=0.3", "max_steps=7", "lora.r=4", "reward.lam=2"])
    assert s.reward.alpha == 0.3 and s.max_steps == 7 and s.lora is not None and s.lora.r == 4
    assert s.reward.params.lam == 2.0


@pytest.mark.parametrize(("override", "fragment"), [
    ("reward.alpha=1.0", "alpha must satisfy 0 <= alpha < 1"),
    ("reward.lam=1.1", "lambda must be >= 1 + beta"),
    ("reward.beta=0", "beta must be > 0"),
    ("num_generations=3", "must be a multiple of num_generations"),
    ("generation.backend=vllm", "vllm_server_base_url is required"),
    ("nonsense=1", "nonsense"),
    ("reward.mode=pairwise", "reward.mode"),
])
def test_bad_settings_name_the_field(override: str, fragment: str) -> None:
    with pytest.raises(UserError, match=re.escape(fragment)):
        load_settings(GRPOSettings, TINY_CONFIG, [override])


def test_dpo_settings_need_pairs() -> None:
    with pytest.raises(UserError, match="pairs"):
        load_settings(DPOSettings, None, ["output_dir=x"])


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["grpo", "train", "--config", str(TINY_CONFIG), "reward.alpha=1.5"],
    ["grpo", "train", "--config", "no/such.yaml"],
    ["grpo", "train", "--config", str(TINY_CONFIG), "rubrics=[no/such.jsonl]"],
    ["dpo", "train", "--config", str(TINY_CONFIG)],
    ["grpo", "dpo", "--config", str(TINY_CONFIG)],  # the old name, a hidden alias for one release
])
def test_cli_bad_input_is_one_line_and_exit_2(args: list[str]) -> None:
    proc = _cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_unknown_rubric_id_in_prompt_set_is_a_clean_error(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": [{"role": "user", "content": "hi"}], "rubric_id": "rb-missing"}\n')
    proc = _cli("grpo", "train", "--config", str(TINY_CONFIG), f"prompts={prompts}", f"output_dir={tmp_path / 'o'}")
    assert proc.returncode == 2
    assert f"{prompts}:1: rb-missing: rubric_id" in proc.stderr
