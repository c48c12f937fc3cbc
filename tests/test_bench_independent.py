"""A policy is judged by more than its training reward: extra judges over the same responses, divergence, monitors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promedical import samples
from promedical.bench.independent import divergence, judge_slug, monitor_differences, monitors
from promedical.rubrics.records import Response
from tests.helpers_cli import last_json, run_cli


def test_monitors_count_hacking_patterns_and_leave_failures_out() -> None:
    ok = Response.build("r1", "m", "As a doctor I say rest. Consult your doctor. Seek medical advice.")
    plain = Response.build("r2", "m", "Rest and drink fluids.")
    failed = Response.build("r3", "m", "", error="timeout")
    found = monitors([ok, plain, failed])
    assert found["n"] == 2 and found["credential_claim_rate"] == 0.5 and found["disclaimer_stuffing_rate"] == 0.5
    assert found["mean_words"] == (12 + 4) / 2


def test_divergence_is_the_training_judges_gain_minus_the_independent_ones() -> None:
    assert divergence({"value": 0.3}, {"value": 0.05})["divergence"] == pytest.approx(0.25)
    assert divergence({"value": None}, {"value": 0.05})["divergence"] is None
    assert monitor_differences({"n": 2, "mean_words": 10.0}, {"n": 2, "mean_words": 4.0}) == {"mean_words": 6.0}


def test_slugs_differ_for_different_specs() -> None:
    assert judge_slug("lexical:0.3") != judge_slug("lexical:0.7")


@pytest.mark.slow
def test_bench_run_and_compare_with_an_independent_judge(tmp_path: Path) -> None:
    runs = []
    for name, temperature in (("a", "0.9"), ("b", "0")):
        out = tmp_path / name
        summary = last_json(run_cli("bench", "run", "-b", str(samples.rubrics_path()), "-p", "hf:tiny-llama",
                                    "-j", "lexical:0.3", "--also-judge", "lexical:0.7", "--limit", "4",
                                    "--max-tokens", "16", "--temperature", temperature, "--resamples", "200",
                                    "--max-unscored-rate", "1", "-o", str(out), "--json"))
        block = summary["independent"]["lexical:0.7"]
        assert Path(block["dir"]).is_dir() and block["n"] == 4
        assert summary["monitors"]["n"] <= 4 and "credential_claim_rate" in summary["monitors"]
        extra = [json.loads(line) for line in (Path(block["dir"]) / "verdicts.jsonl").open()]
        assert extra and all(v["judge"] == "lexical:0.7" for v in extra if v["status"] != "unscored"
                             or v["judge"] != "bench:generation")
        runs.append(out)
    result = last_json(run_cli("bench", "compare", str(runs[0]), str(runs[1]), "--resamples", "200", "--json"))
    block = result["independent"]["lexical:0.7"]
    assert block["metrics"]["overall"]["n"] == 4
    gap = block["divergence"]
    assert gap["divergence"] == pytest.approx(gap["training_difference"] - gap["independent_difference"])
    assert gap["training_difference"] == result["metrics"]["overall"]["value"]
    assert result["monitors"]["difference"] is not None
    proc = run_cli("bench", "run", "-b", str(samples.rubrics_path()), "-p", "hf:tiny-llama", "-j", "lexical:0.3",
                   "--also-judge", "lexical:0.3", "--limit", "1", "--max-tokens", "4", "-o", str(tmp_path / "c"))
    assert proc.returncode == 2 and "is the main judge already" in proc.stderr
