"""One held-out split everywhere: keyed by the instruction's normalised text, never by a rubric id."""

from __future__ import annotations

from promedical.data.splits import rubric_key, split_of, split_rubrics
from promedical.reward.data import LabelledData, PairRow, PointRow
from promedical.reward.data import split_rubrics as split_labelled
from promedical.rubrics.schema import Rubric


def _rubric(rubric_id: str, question: str) -> Rubric:
    return Rubric.model_validate({
        "id": rubric_id,
        "prompt": [{"role": "user", "content": question}],
        "criteria": [{"id": "c1", "text": "Names the dose", "tier": "proficiency", "weight": 1.0}],
    })


HELD_OUT_FRACTIONS = {"train": 0.55, "val": 0.15, "test": 0.30}  # the benchmarks' held-out split
QUESTIONS = [f"Question {i}: what should I do about symptom {i * 7 % 13} lasting {i} days?" for i in range(200)]


def test_two_rubrics_of_one_instruction_share_a_split() -> None:
    # a drafted and a physician rubric for the same question: different ids, same prompt up to case and spacing
    rubrics = [r for i, q in enumerate(QUESTIONS)
               for r in (_rubric(f"draft-{i}", q), _rubric(f"physician-{i}-x", "  " + q.upper().replace(" ", "\n ")))]
    where = {r.id: name for name, items in split_rubrics(rubrics, HELD_OUT_FRACTIONS).items() for r in items}
    for i in range(len(QUESTIONS)):
        assert where[f"draft-{i}"] == where[f"physician-{i}-x"], QUESTIONS[i]
    # and the split is not degenerate: every part of the held-out fractions is used
    assert set(where.values()) == set(HELD_OUT_FRACTIONS)
    assert all(split_of(rubric_key(r), HELD_OUT_FRACTIONS) == where[r.id] for r in rubrics)


def test_reward_model_rows_follow_their_instruction_not_their_rubric_id() -> None:
    """The reward model's labelled rows (points and pairs) split exactly as the rubrics they came from."""
    data = LabelledData()
    for i, q in enumerate(QUESTIONS):
        for rid in (f"kqa-{i}", f"drafted-{i}-v2"):
            data.points.append(PointRow(rid, "c1", f"{rid}-resp", q, "Take 500 mg.", "Names the dose",
                                        "proficiency", "required", True))
            data.pairs.append(PairRow(rid, "c1", q, "Names the dose", "proficiency", "required", "500 mg", "rest"))
    parts = split_labelled(data)
    assert set(parts) == set(HELD_OUT_FRACTIONS)
    for kind in ("points", "pairs"):
        seen: dict[str, set[str]] = {}
        for name, part in parts.items():
            for row in getattr(part, kind):
                seen.setdefault(row.instruction, set()).add(name)
        split_apart = [q for q, names in seen.items() if len(names) > 1]
        assert split_apart == [], f"{len(split_apart)} instructions have {kind} in two splits"
    expected = {q: split_of(rubric_key(_rubric("x", q)), HELD_OUT_FRACTIONS) for q in QUESTIONS}
    assert all(expected[p.instruction] == name for name, part in parts.items() for p in part.points)
