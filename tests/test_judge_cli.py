"""``promedical judge``: bad input fails cleanly; a run killed midway resumes from the cache and loses nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promedical.io import read_verdicts, write_jsonl
from promedical.rubrics.records import Response
from tests.helpers_judge import items, write_inputs


def _cli(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promedical", "judge", *args], capture_output=True, text=True,
                          timeout=600, **kwargs)  # type: ignore[call-overload]


def test_response_to_unknown_rubric_is_one_line_error(tmp_path: Path) -> None:
    rubrics, _ = write_inputs(tmp_path)
    stray = tmp_path / "stray.jsonl"
    write_jsonl(stray, [Response.build("rb-nowhere", "m", "text")])
    result = _cli("run", "-r", str(rubrics), "-x", str(stray), "--judge", "openai:m@http://127.0.0.1:9/v1",
                  "-o", str(tmp_path / "v.jsonl"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and f"{stray}:1:" in line and "rubric_id" in line and "rb-nowhere" in line
    assert not (tmp_path / "v.jsonl").exists()


@pytest.mark.parametrize(("extra", "needle"), [
    (["--judge", "nonsense"], "spec"),
    (["--judge", "openai:m@http://127.0.0.1:9/v1", "--mode", "both"], "--mode"),
    (["--judge", "openai:m@http://127.0.0.1:9/v1", "--concurrency", "0"], "--concurrency"),
    (["--judge", "openai:m@http://127.0.0.1:9/v1", "--template", "pointwise-single/1"], "--template"),
])
def test_bad_options_exit_2(tmp_path: Path, extra: list[str], needle: str) -> None:
    rubrics, responses = write_inputs(tmp_path)
    result = _cli("run", "-r", str(rubrics), "-x", str(responses), "-o", str(tmp_path / "v.jsonl"), *extra)
    assert result.returncode == 2 and needle in result.stderr and "Traceback" not in result.stderr


def test_model_free_judge_reports_no_cache_mode_or_prompt(tmp_path: Path) -> None:
    rubrics, responses = write_inputs(tmp_path)
    out = tmp_path / "run" / "v.jsonl"
    result = _cli("run", "-r", str(rubrics), "-x", str(responses), "--judge", "lexical:0.5", "-o", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["cache"] is None and summary["mode"] is None and summary["calls"] == 0
    assert summary["template_version"] == "lexical-overlap/1" and summary["verdicts"] == len(read_verdicts(out)) > 0
    config = json.loads((out.parent / "judge.config.json").read_text())
    assert "max_tokens" not in json.dumps(config) and not (out.parent / "judge-cache.sqlite").exists()


def _cached_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])
    except sqlite3.OperationalError:  # table not created yet
        return 0


@pytest.mark.server
@pytest.mark.slow
def test_killed_run_resumes_with_only_the_missing_calls(llama_spec: str, tmp_path: Path) -> None:
    rubrics, responses = write_inputs(tmp_path)
    out, cache = tmp_path / "run" / "verdicts.jsonl", tmp_path / "run" / "judge-cache.sqlite"
    args = ["run", "-r", str(rubrics), "-x", str(responses), "--judge", llama_spec, "-o", str(out),
            "--mode", "single", "--concurrency", "1", "--max-tokens", "96"]
    proc = subprocess.Popen([sys.executable, "-m", "promedical", "judge", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while _cached_rows(cache) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    kept = _cached_rows(cache)
    assert kept >= 3
    assert not out.exists()  # nothing half-written

    result = _cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["cache_hits"] >= kept
    assert summary["calls"] == summary["requests"] - summary["cache_hits"]  # calls only for what was missing
    criteria = sum(len(r.criteria) for r, _ in items())
    assert summary["verdicts"] == criteria == summary["met"] + summary["unmet"] + summary["unscored"]
    assert sorted(v.key for v in read_verdicts(out)) == sorted((x.id, c.id) for r, x in items() for c in r.criteria)
    assert (out.parent / "judge.config.json").exists() and (out.parent / "judge.manifest.json").exists()

    again = json.loads(_cli(*args, "--json").stdout.strip().splitlines()[-1])
    assert again["calls"] == 0 and again["cache_hits"] == again["requests"]
