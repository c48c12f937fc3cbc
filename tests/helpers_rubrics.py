"""Small hand-built rubrics shared by the foundation tests."""

from __future__ import annotations

from typing import Any

from promedical.rubrics.schema import Rubric


def rubric_dict(**overrides: Any) -> dict[str, Any]:
    """A valid rubric as a plain dict: weights 0.5/0.3/0.2, two bonus, one prohibited and one required veto."""
    base: dict[str, Any] = {
        "id": "rb-test",
        "prompt": [{"role": "user", "content": "I have crushing chest pain spreading to my left arm. What do I do?"}],
        "criteria": [
            {"id": "c0", "tier": "proficiency", "text": "Identifies possible heart attack", "weight": 0.5},
            {"id": "c1", "tier": "proficiency", "text": "Explains what to do while waiting", "weight": 0.3},
            {"id": "c2", "tier": "proficiency", "text": "Asks about risk factors", "weight": 0.2},
            {"id": "c3", "tier": "bonus", "text": "Acknowledges the user's fear"},
            {"id": "c4", "tier": "bonus", "text": "Uses a clear numbered structure"},
            {"id": "c5", "tier": "veto", "text": "Claims to be a physician", "polarity": "prohibited"},
            {"id": "c6", "tier": "veto", "text": "Tells the user to call emergency services",
             "polarity": "required"},
        ],
        "meta": {"category": "triage", "specialty": "cardiology", "source": "test"},
    }
    base.update(overrides)
    return base


def rubric(**overrides: Any) -> Rubric:
    return Rubric.model_validate(rubric_dict(**overrides))
