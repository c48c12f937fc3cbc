"""Independence audit: exact, 8-gram, embedding and rubric-text overlap on constructed sides, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from promedical.data.audit import Side, audit, exact_matches, ngram_matches, ngrams
from promedical.io import write_jsonl
from promedical.rubrics.schema import Criterion, Message, Rubric, Tier

TRAIN = [("t1", "What are the side effects of metformin in elderly patients with kidney disease?"),
         ("t2", "How long does a common cold usually last in adults?"),
         ("t3", "My child swallowed a button battery, what should I do right now?")]
BENCH = [("b1", "what are the side effects of METFORMIN in elderly patients with kidney disease?"),  # exact
         ("b2", "Please tell me: how long does a common cold usually last in adults and children?"),  # 8-gram
         ("b3", "My kid swallowed a button battery. What should I do now?"),  # paraphrase
         ("b4", "Is it safe to take melatonin every night for years?")]  # new


def test_pure_checks() -> None:
    assert exact_matches(TRAIN, BENCH) == [(0, 0)]
    hits = {j: (i, round(s, 3)) for j, i, s in ngram_matches(TRAIN, BENCH)}
    assert hits[1] == (1, 1.0)  # all 3 of t2's 8-grams appear in b2 (containment over the smaller set)
    assert 0 in hits and 2 not in hits and 3 not in hits
    assert ngrams("one two three") == set()  # shorter than 8 words: left to the other checks


@pytest.mark.slow
def test_audit_report_with_minilm() -> None:
    report = audit(Side("train", TRAIN, [("r1/p1", "Advises calling poison control")]),
                   Side("bench", BENCH, [("r2/p1", "advises calling  poison control"), ("r2/p2", "Mentions dosing")]))
    assert report["exact"]["flagged"] == 1 and report["ngram"]["flagged"] == 2
    assert report["embedding"]["flagged"] >= 3  # b1, b2 and the paraphrase b3
    assert report["embedding"]["examples"][0]["bench_id"] in {"b1", "b2", "b3"}
    assert report["any"]["flagged"] == report["embedding"]["flagged"] and report["any"]["flagged"] < 4
    assert report["rubric_text"]["exact"]["flagged"] == 1
    assert report["rubric_text"]["exact"]["examples"][0]["train_id"] == "r1/p1"


def _rubric(rid: str, question: str, criterion: str) -> Rubric:
    return Rubric(id=rid, prompt=(Message(role="user", content=question),),
                  criteria=(Criterion(id="p1", tier=Tier.PROFICIENCY, text=criterion, weight=1.0),))


@pytest.mark.slow
def test_audit_cli_json_and_errors(tmp_path: Path) -> None:
    train, bench = tmp_path / "train.jsonl", tmp_path / "bench.jsonl"
    write_jsonl(train, [_rubric("r1", TRAIN[0][1], "Mentions lactic acidosis")])
    write_jsonl(bench, [_rubric("r2", BENCH[0][1], "Mentions lactic acidosis"), _rubric("r3", BENCH[3][1], "x y z")])
    run = subprocess.run([sys.executable, "-m", "promedical", "data", "audit", "--train", str(train), "--bench",
                          str(bench), "--json", "--out", str(tmp_path / "a.json")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["exact"]["flagged"] == 1 and summary["rubric_text"]["exact"]["flagged"] == 1
    assert json.loads((tmp_path / "a.json").read_text())["bench"]["items"] == 2
    bad = subprocess.run([sys.executable, "-m", "promedical", "data", "audit", "--train", str(tmp_path / "no.jsonl"),
                          "--bench", str(bench)], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "no such file" in bad.stderr
