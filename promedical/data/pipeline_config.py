"""The pipeline's YAML config as a pydantic model: one section per stage, every threshold stated in one place.

``load_config(path)`` validates the file and turns any defect into one ``UserError`` line naming the file and field.
Each section's canonical JSON (plus its inputs' hashes) is the stage key that decides whether a re-run can skip it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from promedical.config import read_yaml, validate_settings
from promedical.data.dedup import DEFAULT_THRESHOLD
from promedical.data.sources import SourceSpec
from promedical.data.splits import DEFAULT_FRACTIONS
from promedical.judge.prompts import DEFAULT_GROUPED, GROUPED_TEMPLATES
from promedical.rubrics.scoring import DEFAULT_S1_EPSILON


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DedupConfig(_Section):
    threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0, le=1)
    encoder: str = "minilm"


class DifficultyConfig(_Section):
    enabled: bool = True
    rater: str = "hf:smollm2"
    band: tuple[int, int] = (5, 9)  # the paper's keep band
    keep_unscored: bool = False
    max_tokens: int = Field(default=16, ge=1)

    @field_validator("band")
    @classmethod
    def _band(cls, band: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= band[0] <= band[1] <= 10:
            raise ValueError("band must satisfy 0 <= low <= high <= 10")
        return band


class DraftConfig(_Section):
    drafter: str = "hf:smollm2"
    limit: int | None = Field(default=None, ge=1)  # draft this many instructions; None: all
    # Which instructions ``limit`` takes: "hash" (stable content-hash order) or "physician_first" (those with an
    # imported physician rubric first, so failed drafts have a stand-in; then hash order).
    select: Literal["hash", "physician_first"] = "hash"
    shots: int = Field(default=2, ge=0)
    max_attempts: int = Field(default=3, ge=1)
    max_tokens: int = Field(default=384, ge=16)
    retry_temperature: float = Field(default=0.7, ge=0)
    min_proficiency: int = Field(default=2, ge=1)
    physician_stand_in: bool = True  # a failed draft of a K-QA/HealthBench instruction uses the physician rubric
    pool_size: int = Field(default=32, ge=0)  # physician rubrics seeding the few-shot pool


class ReviewConfig(_Section):
    decisions: list[str] = Field(default_factory=list)  # one ReviewDecision JSONL per round, in round order
    batch_size: int = Field(default=500, ge=1)


class CandidateConfig(_Section):
    models: list[str] = Field(default_factory=lambda: ["hf:smollm2"], min_length=1)
    per_model: int = Field(default=2, ge=1)
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.8, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)


class JudgeConfig(_Section):
    spec: str = "hf:smollm2"
    mode: Literal["grouped", "single"] = "grouped"
    # grouped prompt (promedical.judge.prompts.GROUPED_TEMPLATES); terse = a boolean per criterion, no explanation.
    # The default and the /3 and terse/2 versions put the untrusted text in escaped, delimited blocks.
    template: str = DEFAULT_GROUPED.version
    max_tokens: int = Field(default=512, ge=16)
    reasks: int = Field(default=1, ge=0)

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str) -> str:
        if value not in GROUPED_TEMPLATES:
            raise ValueError(f"{value!r} is not one of {', '.join(GROUPED_TEMPLATES)}")
        return value


class PairsConfig(_Section):
    s1_epsilon: float = Field(default=DEFAULT_S1_EPSILON, ge=0)
    max_pairs_per_rubric: int | None = Field(default=None, ge=1)
    seed: int = 0


class SplitConfig(_Section):
    fractions: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_FRACTIONS))
    salt: str = "promedical-split/v1"
    audit_train: str = "train"
    audit_against: list[str] = Field(default_factory=lambda: ["validation", "test"])


class PipelineConfig(_Section):
    name: str = "pipeline"
    run_dir: str = "runs/pipeline"
    data_root: str | None = None  # default: $PROMEDICAL_SHARED_DATA or ../shared/data
    sources: list[SourceSpec] = Field(min_length=1)
    dedup: DedupConfig = DedupConfig()
    difficulty: DifficultyConfig = DifficultyConfig()
    labels: bool = True
    drafting: DraftConfig = DraftConfig()
    review: ReviewConfig = ReviewConfig()
    candidates: CandidateConfig = CandidateConfig()
    judge: JudgeConfig = JudgeConfig()
    pairs: PairsConfig = PairsConfig()
    splits: SplitConfig = SplitConfig()
    timeout: float = Field(default=120.0, gt=0)  # per LLM call (remote backends)

    def section(self, stage: str) -> dict[str, Any]:
        """The part of the config a stage depends on (its key ignores everything else)."""
        parts: dict[str, list[str]] = {
            "sources": ["sources", "data_root"], "dedup": ["dedup"], "difficulty": ["difficulty"],
            "labels": ["labels"], "draft": ["drafting"], "review": ["review"], "candidates": ["candidates"],
            "label": ["judge"], "pairs": ["pairs"], "split": ["splits"], "export": [], "audit": ["splits"],
        }
        dumped = self.model_dump(mode="json")
        return {k: dumped[k] for k in parts[stage]}


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    raw = read_yaml(path)
    raw.update(overrides or {})  # top-level keys only (the CLI's --run-dir)
    return validate_settings(PipelineConfig, raw, str(path))
