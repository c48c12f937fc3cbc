"""``promedical.bench.evals``: the runs behind ``bench mcq`` and ``bench judge-eval`` are library calls; the CLI
adds only option parsing and printing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promedical.bench.evals import run_judge_eval, run_mcq_bench
from promedical.bench.mcq import MCQConfig
from promedical.files import UserError
from promedical.io import write_jsonl
from tests.helpers_cli import last_json, run_cli

SAMPLES = Path(__file__).resolve().parents[1] / "promedical" / "samples"


def test_run_judge_eval_returns_what_the_cli_prints(tmp_path: Path) -> None:
    rubrics, labels = SAMPLES / "rubrics.jsonl", SAMPLES / "verdicts.jsonl"
    report = run_judge_eval([rubrics], labels, verdicts=labels, out=tmp_path / "lib", n_resamples=200)
    assert json.loads((tmp_path / "lib" / "judge_eval.json").read_text()) == report
    printed = last_json(run_cli("bench", "judge-eval", "-r", str(rubrics), "-l", str(labels), "-v", str(labels),
                                "--resamples", "200", "--json"))
    assert printed == report


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "give exactly one of them"),
    ({"verdicts": SAMPLES / "verdicts.jsonl", "judge": "lexical"}, "give exactly one of them"),
    ({"judge": "lexical"}, "--responses: needed with --judge"),
    ({"verdicts": SAMPLES / "verdicts.jsonl", "reference": "nobody"}, "--reference"),
])
def test_run_judge_eval_refuses_bad_options_before_any_output(tmp_path: Path, kwargs: dict[str, object],
                                                              message: str) -> None:
    with pytest.raises(UserError, match=message):
        run_judge_eval([SAMPLES / "rubrics.jsonl"], SAMPLES / "verdicts.jsonl", out=tmp_path / "out",
                       **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def _medqa(folder: Path) -> Path:
    rows = [{"question": f"Question {k}: which option?", "options": {"A": "one", "B": "two", "C": "three", "D": "four"},
             "answer_idx": "ABCD"[k % 4], "meta_info": "step1"} for k in range(3)]
    write_jsonl(folder / "phrases_no_exclude_test.jsonl", rows)
    return folder


@pytest.mark.slow
def test_run_mcq_bench_writes_what_the_cli_writes(tmp_path: Path) -> None:
    data = _medqa(tmp_path / "medqa")
    config = MCQConfig(dataset="medqa", data=str(data), limit=None, max_tokens=4, n_resamples=10_000)
    summary = run_mcq_bench(config, "hf:tiny-llama", tmp_path / "lib")
    assert summary["n"] == 3 and (tmp_path / "lib" / "mcq.manifest.json").is_file()
    printed = last_json(run_cli("bench", "mcq", "-d", "medqa", "-p", "hf:tiny-llama", "--data", str(data), "--limit",
                                "0", "--max-tokens", "4", "-o", str(tmp_path / "cli"), "--json"))
    assert {k: v for k, v in printed.items() if k != "out"} == {k: v for k, v in summary.items() if k != "out"}
    assert ((tmp_path / "cli" / "predictions.jsonl").read_text() ==
            (tmp_path / "lib" / "predictions.jsonl").read_text())


@pytest.mark.parametrize(("changes", "message"), [
    ({"dataset": "nope"}, "--dataset"), ({"mode": "essay"}, "--mode"), ({"max_tokens": 0}, "--max-tokens"),
])
def test_run_mcq_bench_refuses_bad_options_before_any_output(tmp_path: Path, changes: dict[str, object],
                                                             message: str) -> None:
    values: dict[str, object] = {"dataset": "medqa", "data": str(_medqa(tmp_path / "medqa")), **changes}
    with pytest.raises(UserError, match=message):
        run_mcq_bench(MCQConfig(**values), "hf:tiny-llama", tmp_path / "out")  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()
