"""The whole pipeline on the tiny config through the CLI: stages, manifests, resume, cache reuse, clean errors.

Uses the random 2-layer "tiny" Llama for every LLM stage (mechanics only), MiniLM and K-QA / HealthBench /
MedQuAD rows from ../shared/data (skipped when absent).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROMEDICAL_SHARED_DATA", ROOT / ".." / "shared" / "data"))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promedical", "data", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=900)


def summary(run: subprocess.CompletedProcess[str]) -> dict:
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def cache_rows(run_dir: Path) -> int:
    with sqlite3.connect(run_dir / "llm_cache.sqlite") as db:
        return int(db.execute("select count(*) from completions").fetchone()[0])


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
def test_tiny_pipeline_runs_resumes_and_reuses_the_cache(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = ROOT / "configs" / "pipeline_tiny.yaml"
    first = summary(cli("run", "-c", str(config), "--run-dir", str(run_dir), "--until", "labels", "--json"))
    assert [s["stage"] for s in first["stages"]] == ["sources", "dedup", "difficulty", "labels"]
    assert not any(s["skipped"] for s in first["stages"])

    # An "interrupted" run picks up after the last finished stage; finished stages are not recomputed.
    full = summary(cli("run", "-c", str(config), "--run-dir", str(run_dir), "--json"))
    skipped = {s["stage"]: s["skipped"] for s in full["stages"]}
    assert all(skipped[s] for s in ("sources", "dedup", "difficulty", "labels"))
    assert not any(skipped[s] for s in ("draft", "candidates", "label", "pairs", "split", "export", "audit"))
    draft = next(s for s in full["stages"] if s["stage"] == "draft")["counts"]
    assert draft["attempts"] >= draft["instructions"] > 0 and draft["yield"] is not None
    assert draft["valid_drafts"] + draft["physician_stand_ins"] + draft["failed"] == draft["instructions"]
    assert "small local model" in draft["note"]

    again = summary(cli("run", "-c", str(config), "--run-dir", str(run_dir), "--json"))
    assert all(s["skipped"] for s in again["stages"])

    # Forcing an LLM stage again makes no new model calls: the run's cache answers them.
    rows, report = cache_rows(run_dir), (run_dir / "drafts.report.jsonl").read_text()
    forced = summary(cli("draft", "-c", str(config), "--run-dir", str(run_dir), "--force", "--json"))
    assert forced["stages"][0]["skipped"] is False
    assert cache_rows(run_dir) == rows and (run_dir / "drafts.report.jsonl").read_text() == report
    assert forced["stages"][0]["counts"]["llm"] == {"cache_hits": draft["llm"]["model_calls"], "model_calls": 0}
    assert draft["llm"]["model_calls"] == draft["attempts"]  # the first run asked the model once per attempt

    manifest = json.loads((run_dir / "dedup.manifest.json").read_text())
    assert manifest["stage_key"] and manifest["counts"]["threshold"] == 0.93
    assert str(run_dir / "instructions.raw.jsonl") in manifest["inputs"] and manifest["versions"]["transformers"]
    assert (run_dir / "pipeline.config.json").is_file()
    for split in json.loads((run_dir / "splits" / "index.json").read_text())["splits"]:
        for name in ("pairs", "grpo_prompts", "criterion_pairs"):
            for suffix in (".jsonl", ".parquet", ".hf"):
                assert (run_dir / "exports" / split / f"{name}{suffix}").exists()
    rubrics = [json.loads(line) for line in (run_dir / "rubrics.jsonl").read_text().splitlines()]
    verdicts = [json.loads(line) for line in (run_dir / "verdicts.jsonl").read_text().splitlines()]
    criteria = sum(len(r["criteria"]) for r in rubrics)
    responses = (run_dir / "responses.jsonl").read_text().count("\n")
    assert len(verdicts) == sum(  # one verdict per (response, criterion), unscored ones included
        len(next(r for r in rubrics if r["id"] == json.loads(line)["rubric_id"])["criteria"])
        for line in (run_dir / "responses.jsonl").read_text().splitlines())
    assert criteria > 0 and responses > 0
    assert all(v["status"] != "unscored" or v["reason"] for v in verdicts)


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
def test_difficulty_manifest_counts_each_rating_and_band(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = ROOT / "configs" / "pipeline_tiny.yaml"
    summary(cli("run", "-c", str(config), "--run-dir", str(run_dir), "--until", "difficulty", "--json"))
    counts = json.loads((run_dir / "difficulty.manifest.json").read_text())["counts"]
    assert counts["band"] == [5, 9] and counts["keep_unscored"] is True
    n = counts["input"]
    assert n == 15 and sum(counts["histogram"].values()) == n == counts["kept"] + counts["dropped"]
    assert set(counts["by_band"]) == {"below_band", "in_band", "above_band", "unscored"}
    assert sum(b["rated"] for b in counts["by_band"].values()) == n
    assert sum(b["kept"] for b in counts["by_band"].values()) == counts["kept"]
    assert all(b["kept"] + b["dropped"] == b["rated"] for b in counts["by_band"].values())
    # The random model writes no rating: every item is unscored, kept by keep_unscored, and the manifest says so.
    assert counts["by_band"]["unscored"] == {"rated": n, "kept": n, "dropped": 0}
    assert any("the filter dropped nothing: 0 rated in band [5, 9], 15 unscored kept" in note
               for note in counts["notes"])
    rated = [json.loads(line) for line in (run_dir / "instructions.rated.jsonl").read_text().splitlines()]
    assert len(rated) == n and all(r["meta"]["difficulty"] is None and r["meta"]["difficulty_reason"] for r in rated)


def test_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"sources": [{"name": "kqa"}], "dedup": {"threshold": 1.5}}))
    run = cli("sources", "-c", str(bad), "--run-dir", str(tmp_path / "r"))
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0
    assert "dedup.threshold" in run.stderr and str(bad) in run.stderr
    missing = cli("pairs", "-c", str(ROOT / "configs" / "pipeline_tiny.yaml"), "--run-dir", str(tmp_path / "r"))
    assert missing.returncode == 2 and "run the earlier stages" in missing.stderr
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump({"sources": [{"name": "nope"}]}))
    run = cli("sources", "-c", str(unknown), "--run-dir", str(tmp_path / "r"))
    assert run.returncode == 2 and "unknown source" in run.stderr


def test_review_rounds_through_the_cli(tmp_path: Path) -> None:
    from promedical.io import write_jsonl
    from promedical.rubrics.review import ReviewDecision
    from promedical.rubrics.schema import Criterion, Message, Provenance, Rubric, Tier

    def drafted(name: str) -> Rubric:
        return Rubric(id=f"rb-{name}", prompt=(Message(role="user", content=f"question {name}"),),
                      criteria=(Criterion(id="p1", tier=Tier.PROFICIENCY, text="States the key fact", weight=1.0),),
                      provenance=Provenance(author="hf:smollm2", author_kind="model", review_round=0))

    run_dir = tmp_path / "run"
    write_jsonl(run_dir / "rubrics.drafted.jsonl", [drafted(n) for n in "abc"])
    write_jsonl(run_dir / "fewshot_pool.jsonl", [])
    config = ROOT / "configs" / "pipeline_tiny.yaml"
    first = cli("review-in", "-c", str(config), "--run-dir", str(run_dir), "--decisions", str(tmp_path / "none"))
    assert first.returncode == 2 and "none" in first.stderr
    early = cli("review-out", "-c", str(config), "--run-dir", str(run_dir))
    assert early.returncode == 2 and "rubrics.jsonl" in early.stderr  # no review stage has run yet
    round1 = tmp_path / "round1.jsonl"
    write_jsonl(round1, [ReviewDecision(rubric_id="rb-a", rubric_version=1, round=1, reviewer="dr", decision="accept"),
                   ReviewDecision(rubric_id="rb-b", rubric_version=1, round=1, reviewer="dr", decision="reject",
                                  critique="criterion not checkable")])
    result = summary(cli("review-in", "-c", str(config), "--run-dir", str(run_dir), "--decisions", str(round1),
                         "--json"))
    assert result["stages"][0]["counts"]["pass_rates"] == [0.5]
    assert [json.loads(x)["id"] for x in (run_dir / "rubrics.jsonl").read_text().splitlines()] == ["rb-a", "rb-c"]
    assert (run_dir / "review" / "pool.reviewed.jsonl").read_text().count("\n") == 1
    batch = summary(cli("review-out", "-c", str(config), "--run-dir", str(run_dir), "--json"))
    assert batch["round"] == 2 and batch["rubrics"] == 1  # rb-a reviewed, rb-b rejected: only rb-c is left
    again = cli("review-in", "-c", str(config), "--run-dir", str(run_dir), "--decisions", str(round1))
    assert again.returncode == 2 and "expected 2" in again.stderr


INTERRUPTED = "interrupted: completed work is kept; run the same command again to resume"


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
@pytest.mark.parametrize(("until", "point"), [
    ("dedup", "after:sources"),  # mid-run: the next stage must not start
    ("dedup", "after:sources@finaliser"),  # ... even when the KeyboardInterrupt is lost in a finaliser
    ("sources", "before:sources"),
    ("sources", "after:sources@finaliser"),  # the last stage's work done, its interrupt swallowed
    ("sources", "reported"),  # the summary already printed
    ("sources", "reported@finaliser"),
    ("sources", "exit"),  # the very end: the exit code about to be decided
    ("sources", "exit@finaliser"),
])
def test_ctrl_c_at_any_point_exits_130_and_the_rerun_keeps_finished_stages(tmp_path: Path, until: str,
                                                                          point: str) -> None:
    """Fault injection: PROMEDICAL_FAULT_SIGINT_AT makes the run send itself SIGINT (what Ctrl-C sends) at a named
    point, so each timing is hit every time; ``@finaliser`` sends it from inside a ``__del__``, where Python prints
    the KeyboardInterrupt as "Exception ignored" and carries on (what a busy machine's garbage collector does)."""
    run_dir = tmp_path / "run"
    config = ROOT / "configs" / "pipeline_tiny.yaml"
    command = [sys.executable, "-m", "promedical", "data", "run", "-c", str(config), "--run-dir", str(run_dir),
               "--until", until, "--json"]
    env = {**os.environ, "PROMEDICAL_FAULT_SIGINT_AT": point}
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 130, run.stderr[-2000:]
    assert INTERRUPTED in run.stderr
    if point.endswith("@finaliser"):
        assert "Exception ignored" in run.stderr and "KeyboardInterrupt" in run.stderr  # the window was hit
    assert not (run_dir / "dedup.manifest.json").exists()  # dedup never started
    if point == "before:sources":
        assert not (run_dir / "sources.manifest.json").exists()
        return
    again = summary(cli("run", "-c", str(config), "--run-dir", str(run_dir), "--until", "sources", "--json"))
    assert again["stages"] == [{"stage": "sources", "skipped": True, "counts": again["stages"][0]["counts"]}]
