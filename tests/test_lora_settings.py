"""One ``LoraSettings`` for the reward model and the policy runs, each config keeping its own defaults.

The reward model's LoRA defaults to r=8, alpha=16, no dropout; the policy's (GRPO and DPO) to r=16, alpha=32,
dropout 0.05. A ``lora:`` block that sets only some keys takes the rest from its own config's defaults, read from
a real YAML file through the configs' loaders, as before the two classes became one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from promedical.config import load_settings
from promedical.reward import config as rm_config
from promedical.rl import config as rl_config


def test_one_class_serves_both_configs() -> None:
    assert rl_config.LoraSettings is rm_config.LoraSettings
    assert rl_config.GRPOSettings.model_fields["lora"].annotation == rm_config.RMTrainConfig.model_fields[
        "lora"].annotation


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def _triple(lora: rm_config.LoraSettings | None) -> tuple[int, int, float, object] | None:
    return None if lora is None else (lora.r, lora.alpha, lora.dropout, lora.target_modules)


@pytest.mark.parametrize(("block", "overrides", "rm", "rl"), [
    ("lora:\n  r: 4\n", [], (4, 16, 0.0, "all-linear"), (4, 32, 0.05, "all-linear")),
    ("lora:\n  alpha: 8\n", [], (8, 8, 0.0, "all-linear"), (16, 8, 0.05, "all-linear")),
    ("lora:\n  dropout: 0.1\n  target_modules: [q_proj]\n", [], (8, 16, 0.1, ["q_proj"]), (16, 32, 0.1, ["q_proj"])),
    ("lora: {}\n", [], (8, 16, 0.0, "all-linear"), (16, 32, 0.05, "all-linear")),
    ("lora: null\n", [], None, None),
    ("", [], None, None),
    ("", ["lora.r=2"], (2, 16, 0.0, "all-linear"), (2, 32, 0.05, "all-linear")),
])
def test_a_partial_lora_block_resolves_to_its_configs_defaults(
    tmp_path: Path, block: str, overrides: list[str], rm: tuple[object, ...] | None, rl: tuple[object, ...] | None,
) -> None:
    rm_cfg = rm_config.load_config(_write(tmp_path, f"output_dir: out\ntrain_data: [d]\n{block}"), overrides)
    assert _triple(rm_cfg.lora) == rm
    grpo = load_settings(rl_config.GRPOSettings, _write(
        tmp_path, f"rubrics: [r.jsonl]\noutput_dir: out\nreward:\n  judge: lexical\n{block}"), overrides)
    assert _triple(grpo.lora) == rl
    dpo = load_settings(rl_config.DPOSettings, _write(tmp_path, f"pairs: [p.jsonl]\noutput_dir: out\n{block}"),
                        overrides)
    assert _triple(dpo.lora) == rl


def test_the_shipped_configs_resolve_as_written() -> None:
    root = Path(__file__).resolve().parents[1] / "configs"
    grpo = load_settings(rl_config.GRPOSettings, root / "grpo_smollm2_lora.yaml", [])
    dpo = load_settings(rl_config.DPOSettings, root / "dpo_smollm2_lora.yaml", [])
    assert _triple(grpo.lora) == _triple(dpo.lora) == (16, 32, 0.05, "all-linear")


def test_policy_lora_builds_the_policy_defaults_in_code() -> None:
    assert _triple(rl_config.policy_lora()) == (16, 32, 0.05, "all-linear")
    assert _triple(rl_config.policy_lora(r=4)) == (4, 32, 0.05, "all-linear")
    assert _triple(rm_config.LoraSettings()) == (8, 16, 0.0, "all-linear")
