"""The instruction record every pipeline stage reads: one medical request with its source, license and lineage.

The id is a content hash of the normalised text (``in-<16 hex>``), so the same request from two sources has one id
and de-duplication by exact text is free. ``source_id`` keeps the row's own id in its source for provenance.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from promedical.hashing import content_hash

INSTRUCTION_SCHEMA: Literal["promedical.instruction/1"] = "promedical.instruction/1"
_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """NFKC, lower case, whitespace collapsed: the form exact-duplicate checks and ids compare."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


def instruction_id(text: str) -> str:
    return "in-" + content_hash(normalise_text(text))


class Instruction(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["promedical.instruction/1"] = INSTRUCTION_SCHEMA
    id: str = Field(min_length=1)
    text: str
    source: str = Field(min_length=1)  # loader name, e.g. "kqa", "medquad"
    license: str = "unknown"
    source_id: str | None = None  # the row's id (or line number) in its source file
    reference: str | None = None  # a reference answer when the source has one (never used as a rubric)
    meta: dict[str, Any] = Field(default_factory=dict)  # category, specialty, difficulty, rubric_id, ...

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("instruction text is empty")
        return value.strip()

    @classmethod
    def build(
        cls,
        text: str,
        source: str,
        license: str = "unknown",
        source_id: str | None = None,
        reference: str | None = None,
        **meta: Any,
    ) -> Instruction:
        return cls(
            id=instruction_id(text),
            text=text,
            source=source,
            license=license,
            source_id=source_id,
            reference=reference,
            meta={k: v for k, v in meta.items() if v is not None},
        )

    def with_meta(self, **updates: Any) -> Instruction:
        return self.model_copy(update={"meta": {**self.meta, **updates}})

    def messages(self) -> list[dict[str, str]]:
        """The instruction as a chat prompt (a HealthBench conversation keeps its earlier turns)."""
        turns = self.meta.get("conversation")
        if isinstance(turns, list) and turns:
            return [{"role": str(t["role"]), "content": str(t["content"])} for t in turns]
        return [{"role": "user", "content": self.text}]
