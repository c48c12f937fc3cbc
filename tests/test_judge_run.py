"""``promedical.judge.run``: the judge runs are library calls; the CLI adds only option parsing and printing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from promedical.files import UserError
from promedical.io import read_verdicts, write_jsonl
from promedical.judge.run import Transport, run_pairwise, run_pointwise
from promedical.rubrics.records import Response
from tests.helpers_judge import write_inputs


def test_run_pointwise_writes_what_the_cli_writes(tmp_path: Path) -> None:
    rubrics, responses = write_inputs(tmp_path)
    lib = tmp_path / "lib" / "verdicts.jsonl"
    summary = run_pointwise([rubrics], responses, "lexical:0.5", lib, Transport(), template="pointwise-grouped/3")
    assert summary["verdicts"] == len(read_verdicts(lib)) > 0
    assert (lib.parent / "judge.manifest.json").exists() and (lib.parent / "judge.config.json").exists()
    cli = tmp_path / "cli" / "verdicts.jsonl"
    result = subprocess.run([sys.executable, "-m", "promedical", "judge", "run", "-r", str(rubrics), "-x",
                             str(responses), "--judge", "lexical:0.5", "-o", str(cli), "--json"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert {k: v for k, v in printed.items() if k != "out"} == {k: v for k, v in summary.items() if k != "out"}
    assert cli.read_text(encoding="utf-8") == lib.read_text(encoding="utf-8")


def test_run_refuses_bad_inputs_before_any_output(tmp_path: Path) -> None:
    rubrics, responses = write_inputs(tmp_path)
    stray = tmp_path / "stray.jsonl"
    write_jsonl(stray, [Response.build("rb-nowhere", "m", "text")])
    out = tmp_path / "v.jsonl"
    with pytest.raises(UserError, match="rubric_id"):
        run_pointwise([rubrics], stray, "lexical", out, Transport(), template="pointwise-grouped/3")
    with pytest.raises(UserError, match="--concurrency"):
        run_pointwise([rubrics], responses, "lexical", out, Transport(concurrency=0), template="pointwise-grouped/3")
    with pytest.raises(UserError, match="needs an LLM judge"):
        run_pairwise([rubrics], responses, "lexical", out, Transport())
    assert not out.exists()


def test_transport_cache_defaults_beside_the_output(tmp_path: Path) -> None:
    out = tmp_path / "run" / "v.jsonl"
    assert Transport().cache_path(out) == tmp_path / "run" / "judge-cache.sqlite"
    assert Transport(no_cache=True).cache_path(out) is None
    assert Transport(cache=tmp_path / "c.sqlite").cache_path(out) == tmp_path / "c.sqlite"
