"""The blind-test list: questions and prompt ids kept back from every training set the project builds.

A data folder may carry ``blind_test.json`` with ``kqa_questions`` (question texts) and ``healthbench_prompt_ids``
(HealthBench ``prompt_id`` values, which the HealthBench importer keeps as rubric ids). Results are checked later on
the labels of those items, so nothing derived from them may reach training: ``BlindList.matches`` tells whether an
instruction or rubric is one of them, by exact text, by normalised text (``instruction_key``: NFKC, case and
whitespace folded) or by rubric id. Only the list itself is ever read, never the held-back labels.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from promedical.data.splits import instruction_key
from promedical.io import UserError

BLIND_FILE = "blind_test.json"


def shared_data_dir() -> Path:
    """The shared data folder: ``$PROMEDICAL_SHARED_DATA``, else ``../shared/data`` beside the checkout."""
    default = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    return Path(os.environ.get("PROMEDICAL_SHARED_DATA", str(default)))


@dataclass(frozen=True)
class BlindList:
    questions: frozenset[str]
    keys: frozenset[str]  # their instruction_key
    prompt_ids: frozenset[str]
    source: str

    @classmethod
    def read(cls, path: str | Path) -> BlindList:
        try:
            value = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: -: -: cannot read the blind-test list ({exc})") from None
        questions = value.get("kqa_questions", []) if isinstance(value, dict) else None
        ids = value.get("healthbench_prompt_ids", []) if isinstance(value, dict) else None
        if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
            raise UserError(f"{path}: -: -: kqa_questions: expected a list of question texts")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise UserError(f"{path}: -: -: healthbench_prompt_ids: expected a list of prompt ids")
        return cls(frozenset(questions), frozenset(instruction_key(q) for q in questions), frozenset(ids), str(path))

    def match(self, instruction: str, rubric_id: str | None = None) -> str | None:
        """``"exact"``, ``"normalised"``, ``"prompt_id"`` or ``None``."""
        if instruction in self.questions:
            return "exact"
        if instruction_key(instruction) in self.keys:
            return "normalised"
        if rubric_id is not None and rubric_id in self.prompt_ids:
            return "prompt_id"
        return None


def find_blind_list(setting: str | None) -> BlindList | None:
    """``setting``: a path, ``"auto"`` (``blind_test.json`` in the shared data folder, when there is one) or
    ``None``/``"none"`` (no list). A named path that does not exist is an error; ``auto`` finding none is not."""
    if setting is None or setting == "none":
        return None
    if setting == "auto":
        path = shared_data_dir() / BLIND_FILE
        return BlindList.read(path) if path.is_file() else None
    if not Path(setting).is_file():
        raise UserError(f"{setting}: -: -: blind_test: no such blind-test list")
    return BlindList.read(setting)
