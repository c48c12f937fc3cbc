"""Small rubrics and responses for judge tests: short texts so a real server answers in seconds."""

from __future__ import annotations

from pathlib import Path

from promedical.io import write_jsonl
from promedical.rubrics.records import Response
from promedical.rubrics.schema import Rubric


def _rubric(rid: str, question: str, criteria: list[tuple[str, str, float | None, str]]) -> Rubric:
    return Rubric.model_validate({
        "id": rid,
        "prompt": [{"role": "user", "content": question}],
        "criteria": [{"id": cid, "tier": tier, "text": text, "weight": weight,
                      **({"polarity": "prohibited"} if tier == "veto" else {})}
                     for cid, text, weight, tier in criteria],
    })


def tiny_rubrics() -> list[Rubric]:
    return [
        _rubric("rb-fever", "My child has a fever of 38.5 C. What should I do?", [
            ("c1", "Advises fluids and rest", 0.5, "proficiency"),
            ("c2", "Says when to see a doctor", 0.5, "proficiency"),
            ("c3", "Recommends aspirin for the child", None, "veto"),
        ]),
        _rubric("rb-burn", "I burned my hand on the stove. What now?", [
            ("c1", "Says to cool the burn under running water", 1.0, "proficiency"),
            ("c2", "Recommends putting butter on the burn", None, "veto"),
        ]),
    ]


def tiny_responses() -> list[Response]:
    texts = {
        "rb-fever": ["Give fluids, let them rest, and see a doctor if the fever lasts over 3 days.",
                     "Give aspirin and wait."],
        "rb-burn": ["Cool it under running water for 20 minutes.", "Put butter on it."],
    }
    return [Response.build(rid, "test", text) for rid, group in texts.items() for text in group]


def write_inputs(folder: Path) -> tuple[Path, Path]:
    rubrics, responses = folder / "rubrics.jsonl", folder / "responses.jsonl"
    write_jsonl(rubrics, tiny_rubrics())
    write_jsonl(responses, tiny_responses())
    return rubrics, responses


def items() -> list[tuple[Rubric, Response]]:
    by_id = {r.id: r for r in tiny_rubrics()}
    return [(by_id[x.rubric_id], x) for x in tiny_responses()]
