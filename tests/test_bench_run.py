"""``promedical.bench``: the bench runs are library calls; the CLI adds only option parsing and printing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promedical import samples
from promedical.bench.run import BenchConfig, run_bench
from promedical.bench.run_dir import compare_runs
from promedical.files import UserError
from promedical.judge.run import Transport
from tests.helpers_bench import run_dir, score_row
from tests.helpers_cli import last_json, run_cli

PATHS = ("out", "dir")  # where the two runs differ: their own directories


def _strip(value: object) -> object:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in PATHS}
    return value


def _config(**changes: object) -> BenchConfig:
    values: dict[str, object] = {"bench": str(samples.rubrics_path()), "policy": "hf:tiny-llama",
                                 "judge": "lexical:0.3", "limit": 3, "max_tokens": 8, "n_resamples": 200,
                                 "max_unscored_rate": 1.0}
    return BenchConfig(**{**values, **changes})  # type: ignore[arg-type]


@pytest.mark.slow
def test_run_bench_writes_what_the_cli_writes(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    summary = run_bench(_config(), lib, also_judge=["lexical:0.7"], transport=Transport())
    for name in ("rubrics.jsonl", "responses.jsonl", "verdicts.jsonl", "scores.jsonl", "summary.json",
                 "report.html", "bench.manifest.json"):
        assert (lib / name).is_file(), name
    assert summary["independent"]["lexical:0.7"]["n"] == 3 and summary["monitors"]["n"] <= 3
    cli = tmp_path / "cli"
    printed = last_json(run_cli("bench", "run", "-b", str(samples.rubrics_path()), "-p", "hf:tiny-llama", "-j",
                                "lexical:0.3", "--also-judge", "lexical:0.7", "--limit", "3", "--max-tokens", "8",
                                "--resamples", "200", "--max-unscored-rate", "1", "-o", str(cli), "--json"))
    assert _strip(printed) == _strip({k: v for k, v in summary.items() if not k.startswith("by_")})
    for name in ("scores.jsonl", "verdicts.jsonl", "responses.jsonl"):
        assert (cli / name).read_text(encoding="utf-8") == (lib / name).read_text(encoding="utf-8")
    assert _strip(json.loads((cli / "summary.json").read_text())) == _strip(summary)


@pytest.mark.parametrize(("changes", "also", "message"), [
    ({}, ["lexical:0.3"], "is the main judge already"),
    ({"lam": 1.0}, [], "reward parameters"),
    ({"max_tokens": 0}, [], "--max-tokens must be >= 1"),
    ({"max_unscored_rate": 2.0}, [], "--max-unscored-rate"),
])
def test_run_bench_refuses_bad_inputs_before_any_output(tmp_path: Path, changes: dict[str, object],
                                                       also: list[str], message: str) -> None:
    out = tmp_path / "run"
    with pytest.raises(UserError, match=message):
        run_bench(_config(**changes), out, also_judge=also)
    assert not out.exists()


def test_run_bench_refuses_an_empty_bench(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(UserError, match="no rubrics"):
        run_bench(_config(bench=str(empty)), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_compare_runs_returns_what_the_cli_prints(tmp_path: Path) -> None:
    a = run_dir(tmp_path / "a", [score_row("k1", 0.9, reward=0.9), score_row("k2", 0.4, reward=0.4)], "A")
    b = run_dir(tmp_path / "b", [score_row("k1", 0.5, reward=0.5), score_row("k2", 0.4, s3=1, reward=-1.1)], "B")
    result = compare_runs(a, b, n_resamples=500, seed=0, out=tmp_path / "lib")
    assert (tmp_path / "lib" / "compare.json").is_file() and (tmp_path / "lib" / "report.html").is_file()
    printed = last_json(run_cli("bench", "compare", str(a), str(b), "--resamples", "500", "--json"))
    assert printed == result
    with pytest.raises(UserError, match="not a bench run directory"):
        compare_runs(tmp_path, a)
