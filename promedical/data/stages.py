"""Stage bodies of the pipeline and ``STAGE_TABLE``: which function each stage runs, what it reads, what it writes.

A body reads the previous stages' files, calls the pure core, writes its outputs atomically and returns the counts
that go into its manifest (and the command's summary). LLM stages open their generator with the run directory's
SQLite cache, so finished calls are free on a re-run. The runner (``promedical.data.pipeline``) sequences, keys and
records the stages from the table alone; it is the only caller, and nothing here imports it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from promedical.data import run_files as files
from promedical.data.instruction import Instruction
from promedical.data.pipeline_config import PipelineConfig
from promedical.hashing import content_hash
from promedical.io import UserError, load_models, read_responses, read_rubrics, read_verdicts, write_json, write_jsonl
from promedical.rubrics.records import CriterionPair, PreferencePair, Status
from promedical.rubrics.review import ReviewDecision
from promedical.rubrics.schema import Rubric

T = TypeVar("T")


class StageRun(Protocol):
    """What a stage body needs from the run it is part of (``promedical.data.pipeline.Runner`` provides it)."""

    config: PipelineConfig

    def path(self, name: str) -> Path: ...

    @property
    def cache_path(self) -> Path: ...

    def task(self, description: str, total: int) -> AbstractContextManager[Callable[[int], None]]: ...

    def track(self, generator: T) -> T: ...

    def decision_files(self) -> list[Path]: ...


def read_instructions(path: Path) -> list[Instruction]:
    records, problems = load_models(path, Instruction)
    if problems:
        raise UserError(str(problems[0]))
    return [r for _, r in records]


def _local_note(spec: str) -> str | None:
    from promedical.llm.spec import parse_spec

    if parse_spec(spec).backend == "hf":
        return f"{spec} is a small local model: its output is for exercising the pipeline, not for quality"
    return None


def _generator(runner: StageRun, spec: str) -> Any:
    from promedical.llm.spec import load_generator

    return runner.track(load_generator(spec, timeout=runner.config.timeout, cache_path=runner.cache_path))


def stage_sources(runner: StageRun) -> dict[str, Any]:
    from promedical.data.sources import load_source, resolve_path
    from promedical.rubrics.importers import import_file

    root = Path(runner.config.data_root) if runner.config.data_root else None
    instructions: list[Instruction] = []
    physician: dict[str, Rubric] = {}
    reports = []
    for spec in runner.config.sources:
        records, report = load_source(spec, root)
        instructions.extend(records)
        reports.append(report.as_dict())
        if spec.name in ("kqa", "healthbench"):
            wanted = {r.meta.get("rubric_id") for r in records}
            for rubric in import_file(spec.name, resolve_path(spec, root)).rubrics:
                if rubric.id in wanted:
                    physician[rubric.id] = rubric
    write_jsonl(runner.path(files.INSTRUCTIONS_RAW), instructions)
    write_jsonl(runner.path(files.PHYSICIAN_RUBRICS), physician.values())
    return {"instructions": len(instructions), "physician_rubrics": len(physician), "sources": reports}


def stage_dedup(runner: StageRun) -> dict[str, Any]:
    from functools import partial

    from promedical.data.dedup import deduplicate
    from promedical.data.embeddings import embed

    items = read_instructions(runner.path(files.INSTRUCTIONS_RAW))
    cfg = runner.config.dedup
    with runner.task("dedup: embedding", len(items)) as advance:
        result = deduplicate(items, cfg.threshold, partial(embed, encoder=cfg.encoder, on_done=advance))
    write_jsonl(runner.path(files.INSTRUCTIONS_DEDUP), result.kept)
    write_jsonl(runner.path(files.DEDUP_DROPPED), [d.as_dict() for d in result.dropped])
    return {"input": len(items), "threshold": cfg.threshold, **result.counts(),
            "examples": [d.as_dict() for d in result.dropped[:3]]}


def stage_difficulty(runner: StageRun) -> dict[str, Any]:
    from promedical.data.difficulty import DIFFICULTY_PROMPT_VERSION, score_difficulty

    items = read_instructions(runner.path(files.INSTRUCTIONS_DEDUP))
    cfg = runner.config.difficulty
    if not cfg.enabled:
        write_jsonl(runner.path(files.INSTRUCTIONS_RATED), items)
        write_jsonl(runner.path(files.DIFFICULTY_DROPPED), [])
        return {"input": len(items), "kept": len(items), "note": "difficulty filter disabled"}
    generator = _generator(runner, cfg.rater)
    try:
        with runner.task("difficulty", len(items)) as advance:
            result = score_difficulty(items, generator, cfg.band, cfg.keep_unscored, cfg.max_tokens, advance)
    finally:
        generator.close()
    write_jsonl(runner.path(files.INSTRUCTIONS_RATED), result.kept)
    write_jsonl(runner.path(files.DIFFICULTY_DROPPED), result.dropped)
    notes = [n for n in (_local_note(cfg.rater),) if n]
    if items and not result.dropped:
        by_band = result.counts()["by_band"]
        notes.append(f"the filter dropped nothing: {by_band['in_band']['kept']} rated in band "
                     f"{list(cfg.band)}, {by_band['unscored']['kept']} unscored kept (keep_unscored)")
    return {"input": len(items), "rater": cfg.rater, "prompt": DIFFICULTY_PROMPT_VERSION, "band": list(cfg.band),
            "keep_unscored": cfg.keep_unscored, **result.counts(), "notes": notes}


def stage_labels(runner: StageRun) -> dict[str, Any]:
    from promedical.data.labels import LABELS_VERSION, label_instructions

    items = read_instructions(runner.path(files.INSTRUCTIONS_RATED))
    if not runner.config.labels:
        write_jsonl(runner.path(files.INSTRUCTIONS), items)
        return {"input": len(items), "note": "labels disabled"}
    labelled, counts = label_instructions(items)
    write_jsonl(runner.path(files.INSTRUCTIONS), labelled)
    return {"input": len(items), "labeller": f"MiniLM nearest prototype ({LABELS_VERSION})", **counts}


def stage_draft(runner: StageRun) -> dict[str, Any]:
    from promedical.data.drafting import (
        DRAFT_CHECKS_VERSION,
        DRAFT_PROMPT_VERSION,
        DraftSettings,
        draft_rubrics,
        drafting_counts,
    )

    cfg = runner.config.drafting
    items = read_instructions(runner.path(files.INSTRUCTIONS))
    physician = {r.id: r for r in read_rubrics([runner.path(files.PHYSICIAN_RUBRICS)])}
    if cfg.select == "physician_first":
        ranked = sorted(items, key=lambda i: (str(i.meta.get("rubric_id")) not in physician, i.id))
    else:
        ranked = sorted(items, key=lambda i: i.id)
    chosen = ranked[: cfg.limit] if cfg.limit else items
    chosen_ids = {i.id for i in chosen}
    # The pool holds physician rubrics of instructions not being drafted here (no answer key in the prompt).
    drafted_rubric_ids = {i.meta.get("rubric_id") for i in chosen}
    pool = sorted((r for r in physician.values() if r.id not in drafted_rubric_ids), key=lambda r: r.id)
    pool = pool[: cfg.pool_size]
    # Expert-accepted and corrected rubrics from earlier review rounds join the pool. They are deliberately not
    # part of this stage's key: a new round must not re-draft (and orphan the decisions on) existing drafts; they
    # shape the next drafts (new instructions, or ``data draft --force``).
    reviewed = runner.path(files.REVIEWED_POOL)
    if reviewed.is_file():
        pool = [*read_rubrics([reviewed]), *pool]
    write_jsonl(runner.path(files.FEWSHOT_POOL), pool)
    settings = DraftSettings(cfg.shots, cfg.max_attempts, cfg.max_tokens, cfg.retry_temperature, cfg.min_proficiency)
    generator = _generator(runner, cfg.drafter)
    try:
        with runner.task("draft", len(chosen) * cfg.max_attempts) as advance:
            outcomes = draft_rubrics(chosen, generator, pool, settings,
                                     physician if cfg.physician_stand_in else None, advance)
    finally:
        generator.close()
    rubrics = [o.rubric for o in outcomes if o.rubric is not None]
    write_jsonl(runner.path(files.RUBRICS_DRAFTED), rubrics)
    write_jsonl(runner.path(files.DRAFTS_REPORT), [o.as_dict() for o in outcomes])
    errors = Counter(e.split(": ", 1)[1].split(":")[0].split(";")[0] for o in outcomes for e in o.errors)
    counts = drafting_counts(outcomes)
    return {"drafter": cfg.drafter, "prompt": DRAFT_PROMPT_VERSION, "checks": DRAFT_CHECKS_VERSION,
            "not_drafted": len(items) - len(chosen_ids),
            "pool": len(pool), **counts, "rubrics_out": len(rubrics), "error_kinds": dict(errors.most_common(8)),
            "cut_at_max_tokens": sum("answer cut at max_tokens" in e for o in outcomes for e in o.errors),
            "note": _local_note(cfg.drafter)}


def stage_review(runner: StageRun) -> dict[str, Any]:
    from promedical.data.review_rounds import ingest_decisions

    rubrics = read_rubrics([runner.path(files.RUBRICS_DRAFTED)])
    pool = read_rubrics([runner.path(files.FEWSHOT_POOL)])
    rounds = []
    added: list[Rubric] = []
    for number, path in enumerate(runner.decision_files(), start=1):
        records, problems = load_models(path, ReviewDecision, id_field="rubric_id")
        if problems:
            raise UserError(str(problems[0]))
        result = ingest_decisions(rubrics, [d for _, d in records], number)
        rubrics = result.rubrics
        known = {(r.id, r.version) for r in pool}
        fresh = [r for r in result.pool_additions if (r.id, r.version) not in known]
        pool.extend(fresh)
        added.extend(fresh)
        rounds.append({**result.record(), "decisions_file": str(path)})
    write_jsonl(runner.path(files.RUBRICS), rubrics)
    write_jsonl(runner.path(files.REVIEW_ROUNDS), rounds)
    if rounds:
        write_jsonl(runner.path(files.REVIEWED_POOL), added)
    write_jsonl(runner.path(files.FEWSHOT_POOL), pool)
    return {"rounds": len(rounds), "pass_rates": [r["pass_rate"] for r in rounds], "rubrics": len(rubrics),
            "pool": len(pool)}


def stage_candidates(runner: StageRun) -> dict[str, Any]:
    from promedical.data.candidates import CandidateSettings, generate_candidates

    cfg = runner.config.candidates
    rubrics = read_rubrics([runner.path(files.RUBRICS)])
    settings = CandidateSettings(cfg.per_model, cfg.max_tokens, cfg.temperature, cfg.top_p)
    generators = [_generator(runner, spec) for spec in cfg.models]
    try:
        with runner.task("candidates", len(rubrics) * cfg.per_model * len(generators)) as advance:
            responses, counts = generate_candidates(rubrics, generators, settings, advance)
    finally:
        for g in generators:
            g.close()
    write_jsonl(runner.path(files.RESPONSES), responses)
    notes = [n for n in (_local_note(s) for s in cfg.models) if n]
    return {**counts, "notes": notes}


def stage_label(runner: StageRun) -> dict[str, Any]:
    from promedical.judge.pointwise import PointwiseConfig
    from promedical.judge.protocol import load_judge
    from promedical.judge.summary import summarise_verdicts

    cfg = runner.config.judge
    rubrics = {r.id: r for r in read_rubrics([runner.path(files.RUBRICS)])}
    responses = read_responses(runner.path(files.RESPONSES))
    judge = load_judge(cfg.spec, config=PointwiseConfig(mode=cfg.mode, max_tokens=cfg.max_tokens,
                                                         reasks=cfg.reasks, grouped_template=cfg.template),
                       timeout=runner.config.timeout, cache_path=runner.cache_path)
    if judge.generator is not None:
        runner.track(judge.generator)
    verdicts = []
    try:
        with runner.task("judge", len(responses)) as advance:
            for start in range(0, len(responses), 4):  # small chunks: the cache keeps each finished chunk
                chunk = responses[start : start + 4]
                verdicts.extend(judge.grade_many([(rubrics[r.rubric_id], r) for r in chunk]))
                advance(len(chunk))
    finally:
        judge.close()
    write_jsonl(runner.path(files.VERDICTS), verdicts)
    return {"judge": cfg.spec, "template_version": judge.template_version,
            **summarise_verdicts(verdicts), "note": _local_note(cfg.spec)}


def stage_pairs(runner: StageRun) -> dict[str, Any]:
    from promedical.data.preferences import PairRule, build_pair_set

    cfg = runner.config.pairs
    verdicts = read_verdicts(runner.path(files.VERDICTS))
    rule = PairRule(cfg.s1_epsilon, cfg.max_pairs_per_rubric, cfg.seed)
    built = build_pair_set(read_rubrics([runner.path(files.RUBRICS)]), read_responses(runner.path(files.RESPONSES)),
                           verdicts, rule, runner.config.judge.spec, responses_path=str(runner.path(files.RESPONSES)),
                           verdicts_path=str(runner.path(files.VERDICTS)))
    write_jsonl(runner.path(files.PAIRS), built.pairs)
    write_jsonl(runner.path(files.CRITERION_PAIRS), built.rows)
    unscored = sum(v.status is Status.UNSCORED for v in verdicts)
    return {**built.report.as_dict(), "rule": rule.describe(), "criterion_rows": len(built.rows),
            "expansion": dict(built.expansion), "verdicts_unscored": unscored}


def stage_split(runner: StageRun) -> dict[str, Any]:
    from promedical.data.splits import split_rubrics

    cfg = runner.config.splits
    rubrics = read_rubrics([runner.path(files.RUBRICS)])
    pairs = [p for _, p in load_models(runner.path(files.PAIRS), PreferencePair)[0]]
    rows = [r for _, r in load_models(runner.path(files.CRITERION_PAIRS), CriterionPair)[0]]
    groups = split_rubrics(rubrics, cfg.fractions, cfg.salt)
    index: dict[str, Any] = {"fractions": cfg.fractions, "salt": cfg.salt, "key": "normalised instruction text",
                             "splits": {}}
    for name, members in groups.items():
        ids = {r.id for r in members}
        folder = runner.path(files.split_dir(name))
        write_jsonl(folder / files.RUBRICS, members)
        split_pairs = [p for p in pairs if p.rubric_id in ids]
        split_rows = [r for r in rows if r.rubric_id in ids]
        write_jsonl(folder / files.PAIRS, split_pairs)
        write_jsonl(folder / files.CRITERION_PAIRS, split_rows)
        index["splits"][name] = {"rubrics": len(members), "pairs": len(split_pairs), "criterion_pairs": len(split_rows),
                                 "rubric_ids_hash": content_hash(sorted(ids))}
    write_json(runner.path(files.SPLITS_INDEX), index)
    return index["splits"]


def stage_export(runner: StageRun) -> dict[str, Any]:
    from promedical.data.exports import export_all

    index = json.loads(runner.path(files.SPLITS_INDEX).read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for name in index["splits"]:
        folder = runner.path(files.split_dir(name))
        rubrics = read_rubrics([folder / files.RUBRICS])
        pairs = [p for _, p in load_models(folder / files.PAIRS, PreferencePair)[0]]
        rows = [r for _, r in load_models(folder / files.CRITERION_PAIRS, CriterionPair)[0]]
        out[name] = export_all(runner.path(files.export_dir(name)), pairs, rubrics, rows)["counts"]
    write_json(runner.path(files.EXPORTS_INDEX), out)
    return out


def stage_audit(runner: StageRun) -> dict[str, Any]:
    from promedical.data.audit import audit, load_side

    cfg = runner.config.splits
    train = load_side(str(runner.path(files.split_dir(cfg.audit_train)) / files.RUBRICS))
    reports: dict[str, Any] = {}
    for name in cfg.audit_against:
        path = runner.path(files.split_dir(name)) / files.RUBRICS
        if path.is_file() and path.stat().st_size:
            reports[name] = audit(train, load_side(str(path)))
        else:
            reports[name] = None
    write_json(runner.path(files.AUDIT), reports)
    return {name: (None if r is None else {"any": r["any"], "items": r["bench"]["items"]})
            for name, r in reports.items()}


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of the pipeline: its body and the run-directory files it reads and writes.

    ``inputs`` must exist before it runs and are hashed into its key; ``outputs`` must all exist for a re-run to be
    skipped. Files a body reads beyond these (the config's sources, review decisions, the reviewed pool) are
    either in the runner's extra inputs or, for the reviewed pool, deliberately outside the key (see ``draft``).
    """

    name: str
    run: Callable[[StageRun], dict[str, Any]]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


STAGE_TABLE: tuple[Stage, ...] = (
    Stage("sources", stage_sources, (), (files.INSTRUCTIONS_RAW, files.PHYSICIAN_RUBRICS)),
    Stage("dedup", stage_dedup, (files.INSTRUCTIONS_RAW,), (files.INSTRUCTIONS_DEDUP, files.DEDUP_DROPPED)),
    Stage("difficulty", stage_difficulty, (files.INSTRUCTIONS_DEDUP,),
          (files.INSTRUCTIONS_RATED, files.DIFFICULTY_DROPPED)),
    Stage("labels", stage_labels, (files.INSTRUCTIONS_RATED,), (files.INSTRUCTIONS,)),
    Stage("draft", stage_draft, (files.INSTRUCTIONS, files.PHYSICIAN_RUBRICS),
          (files.RUBRICS_DRAFTED, files.DRAFTS_REPORT, files.FEWSHOT_POOL)),
    Stage("review", stage_review, (files.RUBRICS_DRAFTED, files.FEWSHOT_POOL), (files.RUBRICS, files.REVIEW_ROUNDS)),
    Stage("candidates", stage_candidates, (files.RUBRICS,), (files.RESPONSES,)),
    Stage("label", stage_label, (files.RUBRICS, files.RESPONSES), (files.VERDICTS,)),
    Stage("pairs", stage_pairs, (files.RUBRICS, files.RESPONSES, files.VERDICTS),
          (files.PAIRS, files.CRITERION_PAIRS)),
    Stage("split", stage_split, (files.RUBRICS, files.PAIRS, files.CRITERION_PAIRS), (files.SPLITS_INDEX,)),
    Stage("export", stage_export, (files.SPLITS_INDEX,), (files.EXPORTS_INDEX,)),
    Stage("audit", stage_audit, (files.SPLITS_INDEX,), (files.AUDIT,)),
)
