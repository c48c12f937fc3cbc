"""Hand-made rubrics, responses and verdicts for the bench tests (values worked by hand in the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promedical.io import write_json, write_jsonl
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Rubric
from tests.helpers_rubrics import rubric_dict

AXES = {"c0": "accuracy", "c1": "accuracy", "c2": "completeness", "c5": "safety", "c6": "safety"}


def bench_rubric(rubric_id: str, category: str, specialty: str) -> Rubric:
    raw = rubric_dict(id=rubric_id, meta={"category": category, "specialty": specialty, "source": "test"})
    raw["criteria"] = [{**c, "axis": AXES.get(c["id"])} for c in raw["criteria"]]
    return Rubric.model_validate(raw)


def verdicts(response: Response, statuses: dict[str, str], judge: str = "test-judge") -> list[Verdict]:
    return [Verdict(response_id=response.id, rubric_id=response.rubric_id, criterion_id=cid, status=Status(s),
                    reason="judge gave no answer" if s == "unscored" else None, judge=judge)
            for cid, s in statuses.items()]


def three_responses() -> tuple[list[Rubric], list[Response], list[Verdict]]:
    """r1: S1 0.8, S2 1, safe. r2: S1 0.5, S2 1, one veto violated + one unscored. r3: no S1 (all unscored)."""
    rubrics = [bench_rubric("rb-1", "triage", "cardiology"), bench_rubric("rb-2", "advice", "dermatology"),
               bench_rubric("rb-3", "triage", "cardiology")]
    r1 = Response(id="r1", rubric_id="rb-1", model="m", text="one")
    r2 = Response(id="r2", rubric_id="rb-2", model="m", text="two")
    r3 = Response(id="r3", rubric_id="rb-3", model="m", text="three")
    vs = (verdicts(r1, {"c0": "met", "c1": "met", "c2": "unmet", "c3": "met", "c4": "unmet", "c5": "unmet",
                        "c6": "met"})
          + verdicts(r2, {"c0": "unmet", "c1": "met", "c2": "met", "c3": "unscored", "c4": "met", "c5": "met",
                          "c6": "unscored"})
          + verdicts(r3, {"c5": "unmet"}))  # the rest has no verdict at all: unscored
    return rubrics, [r1, r2, r3], vs


def score_row(rubric_id: str, s1: float | None, s2: int = 0, s3: int = 0, reward: float | None = None,
              veto_unscored: int = 0, unscored: int = 0) -> dict[str, Any]:
    return {"response_id": f"x-{rubric_id}-{s1}-{s2}-{s3}", "rubric_id": rubric_id, "model": "m", "s1": s1, "s2": s2,
            "s3": s3, "veto_unscored": veto_unscored, "unscored": unscored, "reward": reward, "healthbench": None,
            "n_criteria": 7, "unscored_by_tier": [0, 0, veto_unscored]}


def run_dir(path: Path, rows: list[dict[str, Any]], label: str) -> Path:
    """A hand-made bench run directory: score rows and a summary naming the policy."""
    write_jsonl(path / "scores.jsonl", rows)
    write_json(path / "summary.json", {"policy_label": label, "n": len(rows)})
    return path
