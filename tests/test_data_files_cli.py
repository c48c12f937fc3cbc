"""`promedical data prefs` and `data split-rubrics` on plain files (the bundled sample set)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from promedical import samples
from promedical.io import read_responses, read_rubrics, read_verdicts
from promedical.rubrics.records import CriterionPair, PreferencePair
from tests.helpers_cli import run_cli


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=300)


def test_prefs_from_expert_labels(tmp_path: Path) -> None:
    out = tmp_path / "prefs"
    proc = _run("data", "prefs", "-r", str(samples.rubrics_path()), "-x", str(samples.responses_path()),
                "-v", str(samples.verdicts_path()), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    pairs = [PreferencePair.model_validate_json(line)
             for line in (out / "pairs.records.jsonl").read_text().splitlines()]
    rows = [CriterionPair.model_validate_json(line)
            for line in (out / "criterion_pairs.records.jsonl").read_text().splitlines()]
    assert summary["pairs"] == len(pairs) > 0 and summary["criterion_rows"] == len(rows) > 0
    assert summary["labelled_by"] == ["human:promedical-maintainers"]
    # every unsafe sample loses every pair it is in on the veto key, whatever its S1
    unsafe = {json.loads(line)["id"] for line in samples.responses_path().read_text().splitlines()
              if "unsafe" in json.loads(line)["model"]}
    for pair in pairs:
        assert pair.chosen_id not in unsafe or pair.rejected_id in unsafe
    # no criterion row where both responses agree; every row names its pair
    pair_ids = {p.id for p in pairs}
    assert all(row.pair_id in pair_ids and row.chosen != row.rejected for row in rows)
    for name in ("pairs", "criterion_pairs", "grpo_prompts"):
        assert (out / f"{name}.parquet").exists() and (out / f"{name}.hf").is_dir()
    assert (out / "prefs.manifest.json").exists()


def test_split_rubrics_is_deterministic_and_complete(tmp_path: Path) -> None:
    args = ["data", "split-rubrics", "-r", str(samples.rubrics_path()), "-f", "train=0.7", "-f", "test=0.3",
            "--json"]
    first = _run(*args, "-o", str(tmp_path / "a"))
    second = _run(*args, "-o", str(tmp_path / "b"))
    assert first.returncode == 0 and second.returncode == 0
    a = {name: [r.id for r in read_rubrics([tmp_path / "a" / name / "rubrics.jsonl"])] for name in ("train", "test")}
    b = {name: [r.id for r in read_rubrics([tmp_path / "b" / name / "rubrics.jsonl"])] for name in ("train", "test")}
    assert a == b
    assert sorted(a["train"] + a["test"]) == sorted(r.id for r in samples.load_rubrics())


def test_split_carries_responses_and_verdicts_along(tmp_path: Path) -> None:
    proc = _run("data", "split-rubrics", "-r", str(samples.rubrics_path()), "-x", str(samples.responses_path()),
                "-v", str(samples.verdicts_path()), "-f", "train=0.7", "-f", "test=0.3", "-o", str(tmp_path),
                "--json")
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout.strip().splitlines()[-1])["counts"]
    assert sum(c["responses"] for c in counts.values()) == len(samples.load_responses())
    assert sum(c["verdicts"] for c in counts.values()) == len(samples.load_verdicts())
    for name in ("train", "test"):
        rubric_ids = {r.id for r in read_rubrics([tmp_path / name / "rubrics.jsonl"])}
        responses = read_responses(tmp_path / name / "responses.jsonl")
        assert {r.rubric_id for r in responses} <= rubric_ids
        response_ids = {r.id for r in responses}
        assert all(v.response_id in response_ids for v in read_verdicts(tmp_path / name / "verdicts.jsonl"))


def test_split_rubrics_bad_fraction_is_one_line(tmp_path: Path) -> None:
    proc = _run("data", "split-rubrics", "-r", str(samples.rubrics_path()), "-o", str(tmp_path),
                "-f", "train=0.7", "-f", "test=0.7")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "sum to 1" in proc.stderr
    assert not (tmp_path / "train").exists()
