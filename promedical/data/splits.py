"""Deterministic splits by content hash: the same item lands in the same split on every machine and run.

An item's bucket is ``int(sha256(salt + key)[:8], 16) / 2**32`` in [0, 1); the split is the first whose
cumulative fraction exceeds it. The key of a rubric is its *instruction* (normalised text of the last user turn:
NFKC, lower case, whitespace collapsed), so every rubric version and every drafted/physician rubric for one
question share a split and cannot leak. The last user turn is also all of the prompt the reward model reads, so
two rubrics whose inputs look the same to it always land together.

This is the project's one split scheme: the data pipeline (``DEFAULT_FRACTIONS``), the reward model's labelled
rows (``promedical.reward.data.split_rubrics``) and the reward-model and GRPO benchmarks (``HELD_OUT_FRACTIONS``)
all call ``split_of(instruction_key(...))``; never split by a rubric id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TypeVar

from promedical.data.instruction import normalise_text
from promedical.rubrics.schema import Rubric

T = TypeVar("T")
DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}
SPLIT_SALT = "promedical-split/v1"
# The reward-model and GRPO benchmarks: a large test part because the public labelled data are small.
HELD_OUT_FRACTIONS: dict[str, float] = {"train": 0.55, "val": 0.15, "test": 0.30}


def bucket(key: str, salt: str = SPLIT_SALT) -> float:
    digest = hashlib.sha256((salt + "\x00" + key).encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 2**32


def split_of(key: str, fractions: Mapping[str, float] = DEFAULT_FRACTIONS, salt: str = SPLIT_SALT) -> str:
    total = sum(fractions.values())
    if not fractions or any(f < 0 for f in fractions.values()) or abs(total - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {dict(fractions)}")
    value, acc = bucket(key, salt), 0.0
    names = list(fractions)
    for name in names:
        acc += fractions[name]
        if value < acc:
            return name
    return names[-1]


def instruction_key(instruction: str) -> str:
    """The split key of an instruction text (the last user turn)."""
    return normalise_text(instruction)


def rubric_key(rubric: Rubric) -> str:
    return instruction_key(rubric.instruction)


def split_rubrics(
    rubrics: Sequence[Rubric], fractions: Mapping[str, float] = DEFAULT_FRACTIONS, salt: str = SPLIT_SALT
) -> dict[str, list[Rubric]]:
    out: dict[str, list[Rubric]] = {name: [] for name in fractions}
    for rubric in rubrics:
        out[split_of(rubric_key(rubric), fractions, salt)].append(rubric)
    return out
