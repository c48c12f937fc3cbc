"""The project's own small sample set: 20 authored medical instructions with rubrics, responses and labels.

Written for ProMedical from scratch (Apache-2.0, like the rest of the project) and shipped as package data so the
quickstart and the tests have real, validated records to work on without any download. ``README.md`` beside this
module describes the content and how the labels were made.
"""

from __future__ import annotations

from pathlib import Path

from promedical.io import read_responses, read_rubrics, read_verdicts
from promedical.rubrics.records import Response, Verdict
from promedical.rubrics.schema import Rubric

SAMPLES_DIR = Path(__file__).resolve().parent


def rubrics_path() -> Path:
    """The sample rubric file (one ``promedical.rubric/1`` record per line)."""
    return SAMPLES_DIR / "rubrics.jsonl"


def responses_path() -> Path:
    """The sample response file (authored responses of deliberately different quality)."""
    return SAMPLES_DIR / "responses.jsonl"


def verdicts_path() -> Path:
    """The sample verdict file (one human label per response and criterion)."""
    return SAMPLES_DIR / "verdicts.jsonl"


def load_rubrics() -> list[Rubric]:
    """The sample rubrics, validated through the project's JSONL reader."""
    return read_rubrics([rubrics_path()])


def load_responses() -> list[Response]:
    """The sample responses, validated through the project's JSONL reader."""
    return read_responses(responses_path())


def load_verdicts() -> list[Verdict]:
    """The sample verdicts, validated through the project's JSONL reader."""
    return read_verdicts(verdicts_path())


__all__ = [
    "SAMPLES_DIR",
    "load_responses",
    "load_rubrics",
    "load_verdicts",
    "responses_path",
    "rubrics_path",
    "verdicts_path",
]
