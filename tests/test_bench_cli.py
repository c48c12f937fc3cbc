"""The bench commands end to end on hand-made run directories: compare, report, judge-eval, clean refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers_bench import run_dir, score_row

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "promedical" / "samples"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promedical", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_compare_command_writes_json_and_report(tmp_path: Path) -> None:
    a = run_dir(tmp_path / "a", [score_row("k1", 0.9, reward=0.9), score_row("k2", 0.4, reward=0.4)], "A")
    b = run_dir(tmp_path / "b", [score_row("k1", 0.5, reward=0.5), score_row("k2", 0.4, s3=1, reward=-1.1)], "B")
    done = _cli("bench", "compare", str(a), str(b), "-o", str(tmp_path / "cmp"), "--resamples", "500", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["lexicographic"]["win"] == 2 and result["metrics"]["overall"]["value"] == 0.95
    assert (tmp_path / "cmp" / "compare.json").exists()
    assert "data:image/png;base64," in (tmp_path / "cmp" / "report.html").read_text(encoding="utf-8")


def test_bad_inputs_are_one_line_exit_2(tmp_path: Path) -> None:
    done = _cli("bench", "compare", str(tmp_path), str(tmp_path))
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "not a bench run directory" in done.stderr
    assert "Traceback" not in done.stderr
    done = _cli("bench", "mcq", "--dataset", "nope", "--policy", "hf:tiny", "-o", str(tmp_path / "m"))
    assert done.returncode == 2 and "--dataset" in done.stderr
    bad = run_dir(tmp_path / "bad", [{"x": 1}], "bad")
    done = _cli("bench", "report", str(bad))
    assert done.returncode == 2 and "scores.jsonl:1" in done.stderr


def test_judge_eval_command_on_the_sample_labels(tmp_path: Path) -> None:
    done = _cli("bench", "judge-eval", "-r", str(SAMPLES / "rubrics.jsonl"), "-l", str(SAMPLES / "verdicts.jsonl"),
                "-v", str(SAMPLES / "verdicts.jsonl"), "-o", str(tmp_path), "--resamples", "200", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["overall_accuracy"]["value"] == 1.0 and report["coverage"] == 1.0
    assert set(report["per_tier"]) == {"proficiency", "excellence", "safety"}
    assert (tmp_path / "judge_eval.json").exists()
