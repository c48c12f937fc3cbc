"""`promedical rubrics validate`: exit 0 on good files, exit 2 and one clear line per problem otherwise."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from promedical.cli.main import app
from tests.helpers_rubrics import rubric_dict

FUZZ_SCALE = int(os.environ.get("PROMEDICAL_FUZZ_SCALE", "1"))  # e.g. 20 for a long local fuzz run
LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): (?P<id>[^:]+): (?P<field>[^:]+): (?P<msg>.+)$")
runner = CliRunner()


def run_validate(*paths: Path) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["rubrics", "validate", *map(str, paths)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"traceback instead of a clean error: {result.exception!r}")
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def write_lines(path: Path, records: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def test_valid_file_exits_zero(tmp_path: Path) -> None:
    code, lines = run_validate(write_lines(tmp_path / "ok.jsonl", [rubric_dict(), rubric_dict(id="rb-2")]))
    assert code == 0
    assert lines == ["ok: 2 rubrics in 1 file(s)"]


def _criteria(**changes: Any) -> list[dict[str, Any]]:
    criteria = rubric_dict()["criteria"]
    index = changes.pop("index")
    criteria[index] = {**criteria[index], **changes}
    return criteria


CASES: list[tuple[str, Any, str, str]] = [
    ("empty text", rubric_dict(criteria=_criteria(index=1, text="   ")), "criteria.1.text", "empty"),
    ("weights", rubric_dict(criteria=_criteria(index=0, weight=0.4)), "criteria", "sum to 0.9"),
    ("unknown tier", rubric_dict(criteria=_criteria(index=3, tier="excellence")), "criteria.3.tier", "'veto'"),
    ("missing polarity", rubric_dict(criteria=_criteria(index=5, polarity=None)), "criteria.5.polarity", "explicit"),
    ("wrong type", rubric_dict(criteria=_criteria(index=0, weight="half")), "criteria.0.weight", "number"),
    ("negative weight", rubric_dict(criteria=_criteria(index=0, weight=-0.5)), "criteria.0.weight", "> 0"),
    ("bonus weight", rubric_dict(criteria=_criteria(index=3, weight=0.2)), "criteria.3.weight", "no weight"),
    ("empty criteria", rubric_dict(criteria=[]), "criteria", "no criteria"),
    ("no proficiency", rubric_dict(criteria=rubric_dict()["criteria"][3:]), "criteria", "no proficiency"),
    ("dup criterion", rubric_dict(criteria=_criteria(index=1, id="c0")), "criteria", "duplicate criterion"),
    ("bad json", '{"id": "x", ', "-", "bad JSON"),
    ("not object", "[1, 2, 3]", "-", "JSON object"),
    ("unknown field", {**rubric_dict(), "colour": "red"}, "colour", "not permitted"),
    ("no prompt", rubric_dict(prompt=[]), "prompt", "empty"),
    ("bad role", rubric_dict(prompt=[{"role": "robot", "content": "x"}]), "prompt.0.role", "'user'"),
]


@pytest.mark.parametrize(("name", "record", "field", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_bad_rubric_gives_one_clear_line(tmp_path: Path, name: str, record: Any, field: str, fragment: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [rubric_dict(id="rb-good"), record])
    code, lines = run_validate(path)
    assert code == 2
    assert len(lines) == 1, lines
    match = LINE.match(lines[0])
    assert match, lines[0]
    assert match["path"] == str(path) and match["line"] == "2"
    assert match["field"] == field
    assert fragment in match["msg"]


def test_duplicate_rubric_ids_across_files(tmp_path: Path) -> None:
    a = write_lines(tmp_path / "a.jsonl", [rubric_dict()])
    b = write_lines(tmp_path / "b.jsonl", ["", rubric_dict()])
    code, lines = run_validate(a, b)
    assert code == 2
    assert lines == [f"{b}:2: rb-test: id: duplicate rubric id (version 1), first at {a}:1"]


def test_invalid_utf8_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(b'{"id": "\xff\xfe"}\n')
    code, lines = run_validate(path, tmp_path / "absent.jsonl")
    assert code == 2
    assert lines[0].startswith(f"{path}:1: -: -: not valid UTF-8")
    assert "absent.jsonl:0: -: -: cannot open" in lines[1]


def test_cli_subprocess_has_no_traceback(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.jsonl", ['{"id": 3}', rubric_dict(criteria=[])])
    proc = subprocess.run([sys.executable, "-m", "promedical", "rubrics", "validate", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert all(LINE.match(line) for line in proc.stdout.splitlines())


# --- fuzzing: whatever the bytes, a clean exit 0 or 2 and only well-formed problem lines -------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _mutate(data: Any, path: list[Any], value: Any) -> Any:
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


MUTABLE_PATHS = [["id"], ["version"], ["prompt"], ["prompt", 0, "role"], ["prompt", 0, "content"], ["criteria"],
                 ["criteria", 0, "weight"], ["criteria", 0, "tier"], ["criteria", 1, "text"],
                 ["criteria", 5, "polarity"], ["criteria", 3, "weight"], ["meta"], ["provenance"],
                 ["criteria", 2, "tags"], ["criteria", 4]]


def _check(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(content)
    code, lines = run_validate(path)
    assert code in (0, 2)
    if code == 2:
        assert lines and all(LINE.match(line) for line in lines), lines
    else:
        assert lines[-1].startswith("ok:")


@settings(max_examples=150 * FUZZ_SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_fuzz_random_bytes(tmp_path: Path, raw: bytes) -> None:
    _check(tmp_path, raw)


@settings(max_examples=200 * FUZZ_SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(MUTABLE_PATHS), value=json_values)
def test_fuzz_structured_mutations(tmp_path: Path, path: list[Any], value: Any) -> None:
    record = _mutate(rubric_dict(), path, value)
    _check(tmp_path, (json.dumps(record) + "\n").encode())


@settings(max_examples=60 * FUZZ_SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=400), junk=st.binary(max_size=5))
def test_fuzz_truncated_and_spliced(tmp_path: Path, cut: int, junk: bytes) -> None:
    good = json.dumps(rubric_dict()).encode()
    _check(tmp_path, good[:cut] + junk + good[cut:] + b"\n")


def test_deeply_nested_json_is_a_clean_problem(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    code, lines = run_validate(path)
    assert code == 2 and len(lines) == 1 and LINE.match(lines[0])
