"""The pipeline runner: stages in order, each writing into the run directory with a manifest, skipped on re-run
when its key (config section + inputs' hashes + stage version) matches the manifest and its outputs exist.

Within the LLM stages, every generator shares one SQLite completion cache in the run directory
(``llm_cache.sqlite``), so an interrupted stage re-runs without recomputing the calls it had finished.
The stages (body, input and output files) are the table ``stages.STAGE_TABLE``; this module only sequences, keys
and records them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from rich.progress import Progress

from promedical import interrupt
from promedical.data import run_files as files
from promedical.data.pipeline_config import PipelineConfig
from promedical.data.stages import STAGE_TABLE, Stage
from promedical.hashing import content_hash, file_sha256
from promedical.io import UserError, write_json
from promedical.llm.cache import CachedGenerator
from promedical.runs import write_manifest

T = TypeVar("T")
STAGE_VERSION = "data-stages/v1"
STAGES: tuple[str, ...] = tuple(stage.name for stage in STAGE_TABLE)
_BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGE_TABLE}


def code_versions() -> dict[str, str]:
    """Versioned prompts and label sets: a new version invalidates the stage that uses it."""
    from promedical.data.difficulty import DIFFICULTY_PARSER_VERSION, DIFFICULTY_PROMPT_VERSION
    from promedical.data.drafting import DRAFT_CHECKS_VERSION, DRAFT_PROMPT_VERSION
    from promedical.data.labels import LABELS_VERSION

    return {"difficulty": f"{DIFFICULTY_PROMPT_VERSION}+{DIFFICULTY_PARSER_VERSION}", "labels": LABELS_VERSION,
            "draft": f"{DRAFT_PROMPT_VERSION}+{DRAFT_CHECKS_VERSION}"}


class Runner:
    """Runs stages of one config in one run directory."""

    def __init__(self, config: PipelineConfig, config_path: str | None = None, progress: Progress | None = None,
                 force: bool = False) -> None:
        self.config = config
        self.config_path = config_path
        self.run_dir = Path(config.run_dir)
        self.progress = progress
        self.force = force
        self._generators: list[Any] = []

    def path(self, name: str) -> Path:
        return self.run_dir / name

    @property
    def cache_path(self) -> Path:
        return self.run_dir / files.LLM_CACHE

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        if self.progress is None:
            yield lambda n: None
            return
        task_id = self.progress.add_task(description, total=total)
        try:
            yield lambda n: self.progress.advance(task_id, n) if self.progress else None
        finally:
            self.progress.update(task_id, completed=total)

    def extra_inputs(self, stage: str) -> list[Path]:
        if stage == "sources":
            from promedical.data.sources import resolve_path

            root = Path(self.config.data_root) if self.config.data_root else None
            return [resolve_path(s, root) for s in self.config.sources]
        if stage == "review":
            return self.decision_files()
        return []

    def decision_files(self) -> list[Path]:
        """Review decisions in round order: the config's files, then rounds added with ``data review-in``."""
        added = sorted(self.path(files.REVIEW_DIR).glob(files.DECISIONS_PATTERN),
                       key=lambda p: int(p.name.split("-")[1].split(".")[0]))
        return [Path(p) for p in self.config.review.decisions] + added

    def stage_key(self, stage: str) -> str:
        inputs = {name: self._hash(self.path(name)) for name in _BY_NAME[stage].inputs}
        extra = {str(p): self._hash(p) for p in self.extra_inputs(stage)}
        return content_hash({"stage": stage, "version": STAGE_VERSION, "code": code_versions().get(stage),
                             "config": self.config.section(stage), "inputs": inputs, "extra": extra})

    @staticmethod
    def _hash(path: Path) -> str | None:
        if path.is_dir():
            return content_hash(sorted((str(p.relative_to(path)), file_sha256(str(p)))
                                       for p in path.rglob("*") if p.is_file()))
        return file_sha256(str(path)) if path.is_file() else None

    def done(self, stage: str, key: str) -> dict[str, Any] | None:
        manifest = self.path(f"{stage}.manifest.json")  # as promedical.runs.write_manifest names it
        if self.force or not manifest.is_file():
            return None
        try:
            record = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if record.get("stage_key") != key or not all(self.path(o).exists() for o in _BY_NAME[stage].outputs):
            return None
        return record

    def run_stage(self, stage: str) -> dict[str, Any]:
        if stage not in _BY_NAME:
            raise UserError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
        step = _BY_NAME[stage]
        missing = [name for name in step.inputs if not self.path(name).exists()]
        if missing:
            raise UserError(f"{self.run_dir}: stage {stage!r} needs {', '.join(missing)}: run the earlier stages")
        interrupt.check()  # a Ctrl-C whose KeyboardInterrupt was swallowed still stops the run here
        interrupt.fault_point(f"before:{stage}")
        key = self.stage_key(stage)
        previous = self.done(stage, key)
        if previous is not None:
            return {"stage": stage, "skipped": True, "counts": previous.get("counts", {})}
        self._generators = []
        counts = step.run(self)
        llm = self._llm_usage()
        if llm:
            counts = {**counts, "llm": llm}
        inputs = [self.path(n) for n in step.inputs if self.path(n).is_file()] + self.extra_inputs(stage)
        write_manifest(self.run_dir, stage, {"config_file": self.config_path, **self.config.section(stage)},
                       inputs=inputs, counts=counts,
                       extra={"stage_key": key, "stage_version": STAGE_VERSION, "outputs": list(step.outputs)})
        interrupt.fault_point(f"after:{stage}")
        return {"stage": stage, "skipped": False, "counts": counts}

    def track(self, generator: T) -> T:
        """Count the model calls and cache hits of a generator the running stage uses (written to its manifest)."""
        self._generators.append(generator)
        return generator

    def _llm_usage(self) -> dict[str, int]:
        cached = [g for g in self._generators if isinstance(g, CachedGenerator)]
        if not cached:
            return {}
        return {"cache_hits": sum(g.hits for g in cached), "model_calls": sum(g.misses for g in cached)}

    def write_config(self) -> None:
        """The resolved config of the latest invocation, beside the outputs (each stage also keeps its section)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.run_dir / files.CONFIG,
                   {"config_file": self.config_path, **self.config.model_dump(mode="json")})

    def run(self, stages: Sequence[str] = STAGES) -> list[dict[str, Any]]:
        self.write_config()
        results = [self.run_stage(stage) for stage in stages]
        interrupt.check()  # nor does a run whose last stage swallowed one report success
        return results
