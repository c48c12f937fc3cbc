"""One validation step for every config: the data pipeline's YAML and the training settings report a defect as the
same one-line ``<file>: <field>: <message>`` (the training configs with ``-: -:`` for line and record)."""

from __future__ import annotations

from pathlib import Path

import pytest

from promedical.config import load_settings, validate_settings
from promedical.data.pipeline_config import PipelineConfig, load_config
from promedical.files import UserError


def _message(call: object) -> str:
    with pytest.raises(UserError) as info:
        call()  # type: ignore[operator]
    return str(info.value)


def test_pipeline_and_training_configs_share_the_validation(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    tiny = Path(__file__).resolve().parents[1] / "configs" / "pipeline_tiny.yaml"
    config.write_text(tiny.read_text(encoding="utf-8") + "\nno_such_key: 1\n", encoding="utf-8")
    pipeline = _message(lambda: load_config(config))
    generic = _message(lambda: load_settings(PipelineConfig, config, []))
    assert pipeline.startswith(f"{config}: ") and generic.startswith(f"{config}: -: -: ")
    assert pipeline.removeprefix(f"{config}: ") == generic.removeprefix(f"{config}: -: -: ")
    assert "no_such_key" in pipeline and "\n" not in pipeline
    direct = _message(lambda: validate_settings(PipelineConfig, {"run_dir": "out"}, "x.yaml"))
    assert direct == "x.yaml: sources: Field required"
