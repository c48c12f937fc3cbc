"""benchmarks/judge_cost.py on a real llama.cpp server started with its RAM prompt cache: the row reports criteria
judged per second, and the server really ran with ``--cache True`` (the server answers, so the flag is accepted)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from promedical.judge.pointwise import PointwiseConfig
from promedical.llm import llamacpp
from tests.helpers_scripts import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.server,
              pytest.mark.skipif(not llamacpp.available(), reason="llama-cpp-python is not installed")]


def _bench() -> ModuleType:
    return load_benchmark("judge_cost", "judge_cost_bench")


def test_throughput_row_on_a_server_with_prompt_cache(tmp_path: Path) -> None:
    bench = _bench()
    items = bench.load_items(1, 3)
    assert len(items) == 1 and len(items[0][0].criteria) == 3
    server = bench.start_server(tmp_path / "server.log", prompt_cache=True)
    command = server.command
    assert command[command.index("--cache") + 1] == "True"
    with server as base:
        config = PointwiseConfig(mode="grouped", max_tokens=52, grouped_template="pointwise-grouped-terse/2")
        row = bench.measure("terse", f"openai:smollm2@{base}#structured=json_object", items, config,
                            tmp_path / "t.sqlite", concurrency=2)
    assert row["verdicts"] == 3 and row["calls"] >= 1
    assert row["concurrency"] == 2 and row["template"] == "pointwise-grouped-terse/2"
    assert row["criteria_per_second"] == pytest.approx(3 / row["wall_seconds"], rel=0.1)
