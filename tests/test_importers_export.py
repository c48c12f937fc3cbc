"""HealthBench export: kept points round-trip exactly, derived points follow the stated rules, conflicts refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promedical.io import read_rubrics
from promedical.rubrics.importers import FieldError, import_healthbench, import_kqa, to_healthbench
from promedical.rubrics.importers.export import DERIVED_TAG
from promedical.rubrics.schema import Criterion, Polarity, Rubric, Tier
from tests.helpers_importers import HEALTHBENCH, KQA, PROBLEM_LINE, last_json, run_cli, shared, write_rows
from tests.helpers_rubrics import rubric, rubric_dict


def test_derived_points_follow_the_stated_rules() -> None:
    row = to_healthbench(rubric())  # weights 0.5/0.3/0.2, two bonus, a prohibited and a required veto, no points
    assert [item["points"] for item in row["rubrics"]] == [10, 6, 4, 1, 1, -10, 10]
    assert row["rubrics"][3]["tags"] == ["promedical:tier:bonus"]
    assert row["rubrics"][5]["tags"] == ["promedical:veto"]  # a veto whatever the importer's veto rule
    assert row["rubrics"][6]["tags"] == ["promedical:veto-required"]
    assert row["example_tags"] == [DERIVED_TAG]
    assert row["prompt_id"] == "rb-test" and row["prompt"][0]["role"] == "user"


def test_derived_export_reimports_with_the_same_tiers_weights_and_polarity(tmp_path: Path) -> None:
    original = rubric()
    result = import_healthbench(write_rows(tmp_path / "x.jsonl", [to_healthbench(original)]))
    (back,) = result.rubrics
    assert [(c.tier, c.polarity, c.text) for c in back.criteria] == [
        (c.tier, c.polarity, c.text) for c in original.criteria
    ]
    assert [c.weight for c in back.by_tier(Tier.PROFICIENCY)] == pytest.approx([0.5, 0.3, 0.2])
    assert back.by_tier(Tier.VETO)[1].polarity is Polarity.REQUIRED


def test_axis_becomes_a_tag_and_small_weights_keep_positive_points() -> None:
    criteria = [
        Criterion(id="a", tier=Tier.PROFICIENCY, text="Main point", weight=0.9995, axis="accuracy"),
        Criterion(id="b", tier=Tier.PROFICIENCY, text="Tiny point", weight=0.0005),
    ]
    row = to_healthbench(Rubric(id="r", prompt=rubric().prompt, criteria=tuple(criteria)))
    assert row["rubrics"][0] == {"criterion": "Main point", "points": 10, "tags": ["axis:accuracy"]}
    assert row["rubrics"][1]["points"] == 0.01


def test_kept_points_that_contradict_the_tier_are_refused() -> None:
    data = rubric_dict()
    for criterion, points in zip(data["criteria"], [5, 3, 2, 1, 1, -5, 4], strict=True):
        criterion["points"] = points
    assert [i["points"] for i in to_healthbench(Rubric.model_validate(data))["rubrics"]] == [5, 3, 2, 1, 1, -5, 4]
    data["criteria"][5]["points"] = 5  # a prohibited veto with positive points would read as proficiency
    with pytest.raises(FieldError) as info:
        to_healthbench(Rubric.model_validate(data))
    assert info.value.field == "criteria.5.points"


def test_healthbench_round_trip_is_identical(tmp_path: Path) -> None:
    first = import_healthbench(shared(HEALTHBENCH))
    exported = write_rows(tmp_path / "export.jsonl", [to_healthbench(r) for r in first.rubrics])
    again = import_healthbench(exported)
    assert again.rubrics == first.rubrics
    assert not again.problems and not again.skipped


def test_round_trip_through_the_cli_is_byte_identical(tmp_path: Path) -> None:
    imported, exported, again = tmp_path / "a.jsonl", tmp_path / "hb.jsonl", tmp_path / "b.jsonl"
    assert run_cli("rubrics", "import", "-f", "healthbench", shared(HEALTHBENCH), "-o", imported).returncode == 0
    done = run_cli("rubrics", "export", "--format", "healthbench", imported, "-o", exported, "--json")
    assert done.returncode == 0, done.stderr
    assert last_json(done.stdout) | {"out": None} == {"format": "healthbench", "rubrics": 67, "criteria": 750,
                                                      "points_kept": 67, "points_derived": 0, "out": None}
    source_keys = set(json.loads(HEALTHBENCH.read_text(encoding="utf-8").splitlines()[0]))
    first_row = json.loads(exported.read_text(encoding="utf-8").splitlines()[0])
    assert set(first_row) <= source_keys and {"prompt", "rubrics", "prompt_id", "example_tags"} <= set(first_row)
    assert run_cli("rubrics", "import", "-f", "healthbench", exported, "-o", again).returncode == 0
    assert again.read_bytes() == imported.read_bytes()


def test_kqa_export_keeps_tiers_on_reimport(tmp_path: Path) -> None:
    kqa = import_kqa(shared(KQA)).rubrics
    back = import_healthbench(write_rows(tmp_path / "k.jsonl", [to_healthbench(r) for r in kqa])).rubrics
    assert len(back) == len(kqa) == 201
    for before, after in zip(kqa, back, strict=True):
        assert after.id == before.id
        assert [(c.tier, c.text) for c in after.criteria] == [(c.tier, c.text) for c in before.criteria]
        assert [c.weight for c in after.criteria] == pytest.approx([c.weight for c in before.criteria])


def test_cli_export_refuses_contradicting_points_and_duplicate_ids(tmp_path: Path) -> None:
    bad = rubric_dict()
    for criterion, points in zip(bad["criteria"], [5, 3, 2, 1, 1, 5, 4], strict=True):
        criterion["points"] = points
    path = write_rows(tmp_path / "r.jsonl", [rubric_dict(id="ok"), bad])
    done = run_cli("rubrics", "export", "-f", "healthbench", path, "-o", tmp_path / "out.jsonl")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    match = PROBLEM_LINE.match(line)
    assert match and match["line"] == "2" and match["id"] == "rb-test" and match["field"] == "criteria.5.points"
    assert not (tmp_path / "out.jsonl").exists()

    twice = write_rows(tmp_path / "v.jsonl", [rubric_dict(), rubric_dict(version=2)])
    done = run_cli("rubrics", "export", "-f", "healthbench", twice, "-o", tmp_path / "out.jsonl")
    assert done.returncode == 2 and "prompt_id must be unique" in done.stderr
    assert len(read_rubrics([twice])) == 2  # the file itself is valid: only the export cannot hold both versions


def test_penalties_and_vetoes_keep_their_tier_under_any_import_rule(tmp_path: Path) -> None:
    first = import_healthbench(shared(HEALTHBENCH))  # default rule: 48 vetoes, 181 penalties
    rows = [to_healthbench(r) for r in first.rubrics]
    items = [i for row in rows for i in row["rubrics"] if i["points"] < 0]
    assert sum("promedical:veto" in i["tags"] for i in items) == 48
    assert sum("promedical:penalty" in i["tags"] for i in items) == 181
    assert not any(i["criterion"].startswith("Avoids the following: ") for i in items)  # the source's own text
    exported = write_rows(tmp_path / "export.jsonl", rows)
    for rule in ("all", "none"):
        assert import_healthbench(exported, veto_rule=rule).rubrics == first.rubrics


def test_a_penalty_without_its_prefix_is_refused() -> None:
    data = rubric_dict()
    for criterion, points in zip(data["criteria"], [5, 3, 2, 1, 1, -5, 4], strict=True):
        criterion["points"] = points
    data["criteria"][2]["points"] = -2  # a proficiency criterion with negative points reads as a penalty
    with pytest.raises(FieldError) as info:
        to_healthbench(Rubric.model_validate(data))
    assert info.value.field == "criteria.2.text" and "Avoids the following: " in info.value.message
    data["criteria"][2]["text"] = "Avoids the following: " + data["criteria"][2]["text"]
    item = to_healthbench(Rubric.model_validate(data))["rubrics"][2]
    assert item["points"] == -2 and "promedical:penalty" in item["tags"]
    assert not item["criterion"].startswith("Avoids")
