"""`promedical rubrics import` on bad input: exit 2, one line naming file, line, record and field, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers_importers import PROBLEM_LINE, last_json, run_cli, write_rows

GOOD_HB = {
    "prompt": [{"role": "user", "content": "My child has a fever of 39C, what should I do?"}],
    "rubrics": [
        {"criterion": "Asks about the child's age", "points": 5, "tags": ["axis:context_awareness"]},
        {"criterion": "Recommends aspirin for the child", "points": -9, "tags": ["axis:accuracy"]},
    ],
    "example_tags": ["theme:global_health"],
    "prompt_id": "hb-good",
}
GOOD_KQA = {"Question": "Can I take ibuprofen for a fever?", "Must_have": ["Ibuprofen can reduce fever"],
            "Nice_to_have": []}


@pytest.mark.parametrize(
    ("fmt", "lines", "where"),
    [
        ("healthbench", [GOOD_HB, "{not json"], ("2", "-", "-")),
        ("healthbench", [GOOD_HB, [1, 2]], ("2", "-", "-")),
        ("healthbench", [GOOD_HB, {**GOOD_HB, "prompt_id": "hb-2", "rubrics": [{"criterion": "x", "points": "3"}]}],
         ("2", "hb-2", "rubrics.0.points")),
        ("healthbench", [{**GOOD_HB, "prompt": "hello"}], ("1", "hb-good", "prompt")),
        ("kqa", [GOOD_KQA, {"Must_have": ["x"]}], ("2", "-", "Question")),
        ("kqa", [{**GOOD_KQA, "Must_have": "Ibuprofen can reduce fever"}], ("1", None, "Must_have")),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, fmt: str, lines: list[object],
                                         where: tuple[str, str | None, str]) -> None:
    source = write_rows(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    out.write_text("previous content\n", encoding="utf-8")
    done = run_cli("rubrics", "import", "--format", fmt, source, "-o", out)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    match = PROBLEM_LINE.match(line)
    assert match, line
    assert match["path"] == str(source) and match["line"] == where[0] and match["field"] == where[2]
    if where[1] is not None:
        assert match["id"] == where[1]
    assert out.read_text(encoding="utf-8") == "previous content\n"  # nothing half-written


def test_missing_input_file_is_a_clean_error(tmp_path: Path) -> None:
    done = run_cli("rubrics", "import", "-f", "kqa", tmp_path / "absent.jsonl", "-o", tmp_path / "o.jsonl")
    assert done.returncode == 2 and "cannot open" in done.stderr and "Traceback" not in done.stderr


def test_skip_bad_reports_and_imports_the_rest(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "in.jsonl", [GOOD_HB, "{oops", {**GOOD_HB, "prompt_id": "hb-3"}])
    out = tmp_path / "out.jsonl"
    done = run_cli("rubrics", "import", "-f", "healthbench", source, "-o", out, "--skip-bad", "--json")
    assert done.returncode == 0, done.stderr
    summary = last_json(done.stdout)
    assert (summary["rows"], summary["rubrics"], summary["bad_rows"]) == (3, 2, 1)
    assert f"bad row: {source}:2: -: -: bad JSON" in done.stderr
    assert [json.loads(x)["id"] for x in out.read_text(encoding="utf-8").splitlines()] == ["hb-good", "hb-3"]


def test_skipped_rows_are_reported_with_reasons(tmp_path: Path) -> None:
    negative = {**GOOD_HB, "prompt_id": "hb-neg", "rubrics": [{"criterion": "Gives aspirin", "points": -9}]}
    source = write_rows(tmp_path / "in.jsonl", [GOOD_HB, negative])
    done = run_cli("rubrics", "import", "-f", "healthbench", source, "-o", tmp_path / "o.jsonl", "--json")
    assert done.returncode == 0
    assert last_json(done.stdout)["skipped_by_reason"] == {"no_positive_points": 1}
    assert f"{source}:2: hb-neg: skipped (no_positive_points)" in done.stderr
    assert "2 rows -> 1 rubrics" in done.stderr


def test_verdicts_need_responses_and_outputs_must_differ(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "in.jsonl", [GOOD_HB])
    done = run_cli("rubrics", "import", "-f", "healthbench", source, "-o", tmp_path / "o.jsonl",
                   "--verdicts-out", tmp_path / "v.jsonl")
    assert done.returncode == 2 and "--verdicts-out" in done.stderr
    done = run_cli("rubrics", "import", "-f", "healthbench", source, "-o", tmp_path / "o.jsonl",
                   "--responses-out", tmp_path / "o.jsonl")
    assert done.returncode == 2 and "different files" in done.stderr


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "in.jsonl", [GOOD_HB])
    done = run_cli("rubrics", "import", "-f", "medqa", source, "-o", tmp_path / "o.jsonl")
    assert done.returncode == 2 and "Traceback" not in done.stderr
