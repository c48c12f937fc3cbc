"""The shipped sample set: it validates, its ids are content hashes, its labels are complete and consistent."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from promedical import samples
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Polarity, Rubric, Tier, rubric_content_id
from promedical.rubrics.scoring import Order, Scores, compare, score

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rubrics() -> list[Rubric]:
    return samples.load_rubrics()


@pytest.fixture(scope="module")
def responses() -> list[Response]:
    return samples.load_responses()


@pytest.fixture(scope="module")
def verdicts() -> list[Verdict]:
    return samples.load_verdicts()


@pytest.fixture(scope="module")
def scored(rubrics: list[Rubric], responses: list[Response], verdicts: list[Verdict]) -> dict[str, Scores]:
    by_id = {r.id: r for r in rubrics}
    statuses: dict[str, dict[str, Status]] = {}
    for v in verdicts:
        statuses.setdefault(v.response_id, {})[v.criterion_id] = v.status
    return {x.id: score(by_id[x.rubric_id], statuses.get(x.id, {})) for x in responses}


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promedical", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120, check=False)


def test_paths_point_inside_the_package() -> None:
    for path in (samples.rubrics_path(), samples.responses_path(), samples.verdicts_path()):
        assert path.parent == samples.SAMPLES_DIR
        assert path.is_file()
    assert (samples.SAMPLES_DIR / "README.md").is_file()


def test_files_load_and_have_the_documented_size(
    rubrics: list[Rubric], responses: list[Response], verdicts: list[Verdict]
) -> None:
    assert len(rubrics) == 20
    assert 60 <= len(responses) <= 80
    assert len(verdicts) == sum(len(r.criteria) for r in rubrics for x in responses if x.rubric_id == r.id)


def test_rubric_shape_and_metadata(rubrics: list[Rubric]) -> None:
    categories = Counter(r.meta.category for r in rubrics)
    specialties = Counter(r.meta.specialty for r in rubrics)
    assert len(categories) == 5 and set(categories.values()) == {4}
    assert len(specialties) == 10 and set(specialties.values()) == {2}
    axes = {"accuracy", "completeness", "context_awareness", "communication_quality", "instruction_following",
            "safety"}
    required_vetoes = 0
    for r in rubrics:
        assert r.meta.source == "promedical-sample" and r.meta.license == "Apache-2.0"
        assert r.provenance.author == "promedical-maintainers"
        assert r.provenance.author_kind == "human" and r.provenance.review_round == 1
        assert [c.id for c in r.criteria] == [f"c{i}" for i in range(len(r.criteria))]
        assert all(c.axis in axes for c in r.criteria)
        proficiency, bonus, veto = (r.by_tier(t) for t in (Tier.PROFICIENCY, Tier.BONUS, Tier.VETO))
        assert 3 <= len(proficiency) <= 6 and 1 <= len(bonus) <= 3 and 1 <= len(veto) <= 3
        assert math.isclose(math.fsum(c.weight or 0.0 for c in proficiency), 1.0, abs_tol=1e-12)
        assert all(c.polarity is not None for c in veto)
        required_vetoes += sum(c.polarity is Polarity.REQUIRED for c in veto)
    assert required_vetoes >= 3


def test_ids_are_content_hashes(rubrics: list[Rubric], responses: list[Response]) -> None:
    for r in rubrics:
        assert r.id == rubric_content_id(r.prompt, r.criteria)
    for x in responses:
        assert x.id == Response.make_id(x.rubric_id, x.model, x.text)
    assert len({x.id for x in responses}) == len(responses)


def test_every_response_criterion_pair_has_exactly_one_verdict(
    rubrics: list[Rubric], responses: list[Response], verdicts: list[Verdict]
) -> None:
    by_id = {r.id: r for r in rubrics}
    expected = {(x.id, c.id) for x in responses for c in by_id[x.rubric_id].criteria}
    seen = Counter(v.key for v in verdicts)
    assert set(seen) == expected
    assert set(seen.values()) == {1}
    rubric_of = {x.id: x.rubric_id for x in responses}
    assert all(v.rubric_id == rubric_of[v.response_id] for v in verdicts)
    assert all(v.judge == "human:promedical-maintainers" and v.template_version is None for v in verdicts)
    assert all(v.explanation or v.reason for v in verdicts)


def test_unscored_verdicts_are_few_and_include_a_veto(rubrics: list[Rubric], verdicts: list[Verdict]) -> None:
    by_id = {r.id: r for r in rubrics}
    unscored = [v for v in verdicts if v.status is Status.UNSCORED]
    assert 3 <= len(unscored) <= 5
    assert all(v.reason and v.reason.startswith("annotator unsure") for v in unscored)
    assert any(by_id[v.rubric_id].criterion(v.criterion_id).tier is Tier.VETO for v in unscored)


def test_every_instruction_has_strong_mediocre_and_unsafe(rubrics: list[Rubric], responses: list[Response]) -> None:
    for r in rubrics:
        models = [x.model for x in responses if x.rubric_id == r.id]
        assert 3 <= len(models) <= 4
        assert "sample-strong" in models and "sample-mediocre" in models
        assert any("unsafe" in m for m in models)


def test_unsafe_responses_violate_a_veto(responses: list[Response], scored: dict[str, Scores]) -> None:
    unsafe = [x for x in responses if "unsafe" in x.model]
    assert unsafe
    for x in unsafe:
        assert scored[x.id].s3_fail_closed >= 1, x.id


def test_strong_responses_are_safe_and_proficient(responses: list[Response], scored: dict[str, Scores]) -> None:
    strong = [x for x in responses if "strong" in x.model]
    assert len(strong) == 20
    for x in strong:
        s = scored[x.id]
        assert s.s3 == 0 and s.veto_unscored == 0, x.id
        assert s.s1 is not None and s.s1 >= 0.8, x.id


def test_strong_ranks_above_unsafe_for_every_instruction(
    rubrics: list[Rubric], responses: list[Response], scored: dict[str, Scores]
) -> None:
    for r in rubrics:
        mine = [x for x in responses if x.rubric_id == r.id]
        strong = next(x for x in mine if x.model == "sample-strong")
        for unsafe in (x for x in mine if "unsafe" in x.model):
            assert compare(scored[strong.id], scored[unsafe.id]) is Order.A_BETTER, (r.id, unsafe.id)
            assert compare(scored[unsafe.id], scored[strong.id]) is Order.B_BETTER


def test_credential_claims_are_labelled_as_violations(
    rubrics: list[Rubric], responses: list[Response], verdicts: list[Verdict]
) -> None:
    """A response that claims clinical experience must violate that rubric's credential veto, and vice versa."""
    by_id = {r.id: r for r in rubrics}
    status = {v.key: v.status for v in verdicts}
    markers = ("as a cardiologist", "i'm a gastroenterologist", "as a gp", "one of my patients")
    checked = 0
    for x in responses:
        for c in by_id[x.rubric_id].by_tier(Tier.VETO):
            if "credentials" not in c.tags:
                continue
            claims = any(m in x.text.lower() for m in markers)
            assert (status[(x.id, c.id)] is Status.MET) == claims, (x.id, c.id)
            checked += 1
    assert checked >= 9


def test_cli_validates_the_rubric_file() -> None:
    result = _run_cli("rubrics", "validate", str(samples.rubrics_path()), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {"files": 1, "rubrics": 20, "problems": 0, "ok": True}


def test_cli_scores_the_sample_set(tmp_path: Path, responses: list[Response], scored: dict[str, Scores]) -> None:
    out = tmp_path / "scores.jsonl"
    result = _run_cli("score", "--rubrics", str(samples.rubrics_path()), "--responses", str(samples.responses_path()),
                      "--verdicts", str(samples.verdicts_path()), "-o", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"n", "mean_s1", "mean_s2", "mean_s3", "mean_reward", "safety_compliance", "unscored", "veto_unscored",
            "unscorable_responses", "params", "out"} <= set(summary)
    assert summary["n"] == len(responses)
    assert summary["unscored"] == sum(s.unscored for s in scored.values())
    assert summary["safety_compliance"] == pytest.approx(sum(s.safe for s in scored.values()) / len(scored))
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["response_id"] for row in rows] == [x.id for x in responses]
    for row in rows:
        assert row["s3"] == scored[row["response_id"]].s3


def test_readme_counts_match_the_files(
    rubrics: list[Rubric], responses: list[Response], verdicts: list[Verdict]
) -> None:
    readme = (samples.SAMPLES_DIR / "README.md").read_text(encoding="utf-8")
    n_criteria = sum(len(r.criteria) for r in rubrics)
    assert f"{len(rubrics)} rubrics ({n_criteria} criteria)" in readme
    assert f"{len(responses)} responses" in readme
    assert f"{len(verdicts)} verdicts" in readme
    unscored = sum(v.status is Status.UNSCORED for v in verdicts)
    assert f"{['Zero', 'One', 'Two', 'Three', 'Four', 'Five'][unscored]} verdicts are deliberately `unscored`" in readme
