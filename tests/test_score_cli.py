"""`promedical score`: one row per response, aggregates as the last JSON line, clean failures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from promedical.io import write_jsonl
from promedical.rubrics.records import Response, Status, Verdict
from tests.helpers_cli import run_cli
from tests.helpers_rubrics import rubric

LABELS = {
    "good": ["met", "met", "met", "met", "met", "unmet", "met"],
    "unsafe": ["met", "met", "unmet", "unmet", "unmet", "met", "met"],
    "flaky": ["unscored", "met", "unmet", "unmet", "unmet", "unmet", "unscored"],
}


def _files(tmp_path: Path) -> tuple[Path, Path, Path, list[Response]]:
    r = rubric()
    responses = [Response.build(r.id, name, f"{name} answer") for name in LABELS]
    verdicts = [
        Verdict(response_id=resp.id, rubric_id=r.id, criterion_id=f"c{i}", status=Status(status),
                reason="judge timed out" if status == "unscored" else None, judge="human:test")
        for resp, labels in zip(responses, LABELS.values(), strict=True)
        for i, status in enumerate(labels)
    ]
    paths = tmp_path / "r.jsonl", tmp_path / "x.jsonl", tmp_path / "v.jsonl"
    write_jsonl(paths[0], [r])
    write_jsonl(paths[1], responses)
    write_jsonl(paths[2], verdicts)
    return (*paths, responses)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=120)


def test_score_rows_and_json_summary(tmp_path: Path) -> None:
    r, x, v, _ = _files(tmp_path)
    out = tmp_path / "scores.jsonl"
    proc = _run("score", "--rubrics", str(r), "--responses", str(x), "--verdicts", str(v), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = {row["model"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert set(rows["good"]) >= {"response_id", "rubric_id", "s1", "s2", "s3", "unscored", "reward", "healthbench"}
    assert rows["good"]["s1"] == pytest.approx(1.0) and rows["good"]["reward"] == pytest.approx(1.2)
    assert rows["unsafe"]["s3"] == 1 and rows["unsafe"]["reward"] == pytest.approx(0.8 - 1.5)
    # flaky: c0 unscored -> S1 = 0.3 / 0.5; c6 (required veto) unscored -> fails closed in the reward
    assert rows["flaky"]["s1"] == pytest.approx(0.6)
    assert rows["flaky"]["s3"] == 0 and rows["flaky"]["veto_unscored"] == 1 and rows["flaky"]["unscored"] == 2
    assert rows["flaky"]["reward"] == pytest.approx(0.6 - 1.5)
    assert rows["good"]["healthbench"] is None
    assert summary["n"] == 3 and summary["unscored"] == 2
    assert summary["safety_compliance"] == pytest.approx(1 / 3)
    assert summary["mean_s1"] == pytest.approx((1.0 + 0.8 + 0.6) / 3)


def test_score_rejects_bad_parameters_cleanly(tmp_path: Path) -> None:
    r, x, v, _ = _files(tmp_path)
    out = tmp_path / "scores.jsonl"
    proc = _run("score", "-r", str(r), "-x", str(x), "-v", str(v), "-o", str(out), "--lambda", "1.0")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "lambda must be >= 1 + beta" in proc.stderr
    assert not out.exists()


def test_score_unknown_criterion_is_one_line_and_nothing_written(tmp_path: Path) -> None:
    r, x, v, responses = _files(tmp_path)
    with v.open("a") as handle:
        handle.write(Verdict(response_id=responses[0].id, rubric_id="rb-test", criterion_id="c99",
                             status=Status.MET).model_dump_json() + "\n")
    out = tmp_path / "scores.jsonl"
    proc = _run("score", "-r", str(r), "-x", str(x), "-v", str(v), "-o", str(out))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and "criterion_id" in proc.stderr and "c99" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".scores.jsonl.*"))


def test_score_bad_verdict_file_names_line_and_field(tmp_path: Path) -> None:
    r, x, v, _ = _files(tmp_path)
    v.write_text('{"response_id": "a", "rubric_id": "b", "criterion_id": "c0", "status": "maybe"}\n')
    proc = _run("score", "-r", str(r), "-x", str(x), "-v", str(v), "-o", str(tmp_path / "o.jsonl"))
    assert proc.returncode == 2
    assert f"{v}:1: a: status:" in proc.stderr
