"""Stage bodies of the pipeline: read the previous stage's files, call the pure core, write outputs atomically.

Each returns the counts that go into its manifest (and the command's summary). LLM stages open their generator
with the run directory's SQLite cache, so finished calls are free on a re-run.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promedical.data.instruction import Instruction
from promedical.hashing import content_hash
from promedical.io import UserError, load_models, read_responses, read_rubrics, read_verdicts, write_json, write_jsonl
from promedical.rubrics.records import CriterionPair, PreferencePair, Response, Status
from promedical.rubrics.review import ReviewDecision
from promedical.rubrics.schema import Rubric

if TYPE_CHECKING:
    from promedical.data.pipeline import Runner


def read_instructions(path: Path) -> list[Instruction]:
    records, problems = load_models(path, Instruction)
    if problems:
        raise UserError(str(problems[0]))
    return [r for _, r in records]


def _local_note(spec: str) -> str | None:
    if spec.startswith("hf:"):
        return f"{spec} is a small local model: its output is for exercising the pipeline, not for quality"
    return None


def _generator(runner: Runner, spec: str) -> Any:
    from promedical.llm.spec import load_generator

    return runner.track(load_generator(spec, timeout=runner.config.timeout, cache_path=runner.cache_path))


def stage_sources(runner: Runner) -> dict[str, Any]:
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
    write_jsonl(runner.path("instructions.raw.jsonl"), instructions)
    write_jsonl(runner.path("physician_rubrics.jsonl"), physician.values())
    return {"instructions": len(instructions), "physician_rubrics": len(physician), "sources": reports}


def stage_dedup(runner: Runner) -> dict[str, Any]:
    from functools import partial

    from promedical.data.dedup import deduplicate
    from promedical.data.embeddings import embed

    items = read_instructions(runner.path("instructions.raw.jsonl"))
    cfg = runner.config.dedup
    with runner.task("dedup: embedding", len(items)) as advance:
        result = deduplicate(items, cfg.threshold, partial(embed, encoder=cfg.encoder, on_done=advance))
    write_jsonl(runner.path("instructions.dedup.jsonl"), result.kept)
    write_jsonl(runner.path("dedup.dropped.jsonl"), [d.as_dict() for d in result.dropped])
    return {"input": len(items), "threshold": cfg.threshold, **result.counts(),
            "examples": [d.as_dict() for d in result.dropped[:3]]}


def stage_difficulty(runner: Runner) -> dict[str, Any]:
    from promedical.data.difficulty import DIFFICULTY_PROMPT_VERSION, score_difficulty

    items = read_instructions(runner.path("instructions.dedup.jsonl"))
    cfg = runner.config.difficulty
    if not cfg.enabled:
        write_jsonl(runner.path("instructions.rated.jsonl"), items)
        write_jsonl(runner.path("difficulty.dropped.jsonl"), [])
        return {"input": len(items), "kept": len(items), "note": "difficulty filter disabled"}
    generator = _generator(runner, cfg.rater)
    try:
        with runner.task("difficulty", len(items)) as advance:
            result = score_difficulty(items, generator, cfg.band, cfg.keep_unscored, cfg.max_tokens, advance)
    finally:
        generator.close()
    write_jsonl(runner.path("instructions.rated.jsonl"), result.kept)
    write_jsonl(runner.path("difficulty.dropped.jsonl"), result.dropped)
    notes = [n for n in (_local_note(cfg.rater),) if n]
    if items and not result.dropped:
        by_band = result.counts()["by_band"]
        notes.append(f"the filter dropped nothing: {by_band['in_band']['kept']} rated in band "
                     f"{list(cfg.band)}, {by_band['unscored']['kept']} unscored kept (keep_unscored)")
    return {"input": len(items), "rater": cfg.rater, "prompt": DIFFICULTY_PROMPT_VERSION, "band": list(cfg.band),
            "keep_unscored": cfg.keep_unscored, **result.counts(), "notes": notes}


def stage_labels(runner: Runner) -> dict[str, Any]:
    from promedical.data.labels import LABELS_VERSION, label_instructions

    items = read_instructions(runner.path("instructions.rated.jsonl"))
    if not runner.config.labels:
        write_jsonl(runner.path("instructions.jsonl"), items)
        return {"input": len(items), "note": "labels disabled"}
    labelled, counts = label_instructions(items)
    write_jsonl(runner.path("instructions.jsonl"), labelled)
    return {"input": len(items), "labeller": f"MiniLM nearest prototype ({LABELS_VERSION})", **counts}


def stage_draft(runner: Runner) -> dict[str, Any]:
    from promedical.data.drafting import (
        DRAFT_CHECKS_VERSION,
        DRAFT_PROMPT_VERSION,
        DraftSettings,
        draft_rubrics,
        drafting_counts,
    )

    cfg = runner.config.drafting
    items = read_instructions(runner.path("instructions.jsonl"))
    physician = {r.id: r for r in read_rubrics([runner.path("physician_rubrics.jsonl")])}
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
    reviewed = runner.path("review/pool.reviewed.jsonl")
    if reviewed.is_file():
        pool = [*read_rubrics([reviewed]), *pool]
    write_jsonl(runner.path("fewshot_pool.jsonl"), pool)
    settings = DraftSettings(cfg.shots, cfg.max_attempts, cfg.max_tokens, cfg.retry_temperature, cfg.min_proficiency)
    generator = _generator(runner, cfg.drafter)
    try:
        with runner.task("draft", len(chosen) * cfg.max_attempts) as advance:
            outcomes = draft_rubrics(chosen, generator, pool, settings,
                                     physician if cfg.physician_stand_in else None, advance)
    finally:
        generator.close()
    rubrics = [o.rubric for o in outcomes if o.rubric is not None]
    write_jsonl(runner.path("rubrics.drafted.jsonl"), rubrics)
    write_jsonl(runner.path("drafts.report.jsonl"), [o.as_dict() for o in outcomes])
    errors = Counter(e.split(": ", 1)[1].split(":")[0].split(";")[0] for o in outcomes for e in o.errors)
    counts = drafting_counts(outcomes)
    return {"drafter": cfg.drafter, "prompt": DRAFT_PROMPT_VERSION, "checks": DRAFT_CHECKS_VERSION,
            "not_drafted": len(items) - len(chosen_ids),
            "pool": len(pool), **counts, "rubrics_out": len(rubrics), "error_kinds": dict(errors.most_common(8)),
            "cut_at_max_tokens": sum("answer cut at max_tokens" in e for o in outcomes for e in o.errors),
            "note": _local_note(cfg.drafter)}


def stage_review(runner: Runner) -> dict[str, Any]:
    from promedical.data.review_rounds import ingest_decisions

    rubrics = read_rubrics([runner.path("rubrics.drafted.jsonl")])
    pool = read_rubrics([runner.path("fewshot_pool.jsonl")])
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
    write_jsonl(runner.path("rubrics.jsonl"), rubrics)
    write_jsonl(runner.path("review_rounds.jsonl"), rounds)
    if rounds:
        write_jsonl(runner.path("review/pool.reviewed.jsonl"), added)
    write_jsonl(runner.path("fewshot_pool.jsonl"), pool)
    return {"rounds": len(rounds), "pass_rates": [r["pass_rate"] for r in rounds], "rubrics": len(rubrics),
            "pool": len(pool)}


def stage_candidates(runner: Runner) -> dict[str, Any]:
    from promedical.data.candidates import CandidateSettings, generate_candidates

    cfg = runner.config.candidates
    rubrics = read_rubrics([runner.path("rubrics.jsonl")])
    settings = CandidateSettings(cfg.per_model, cfg.max_tokens, cfg.temperature, cfg.top_p)
    generators = [_generator(runner, spec) for spec in cfg.models]
    try:
        with runner.task("candidates", len(rubrics) * cfg.per_model * len(generators)) as advance:
            responses, counts = generate_candidates(rubrics, generators, settings, advance)
    finally:
        for g in generators:
            g.close()
    write_jsonl(runner.path("responses.jsonl"), responses)
    notes = [n for n in (_local_note(s) for s in cfg.models) if n]
    return {**counts, "notes": notes}


def stage_label(runner: Runner) -> dict[str, Any]:
    from promedical.judge.pointwise import PointwiseConfig
    from promedical.judge.protocol import load_judge
    from promedical.judge.summary import summarise_verdicts

    cfg = runner.config.judge
    rubrics = {r.id: r for r in read_rubrics([runner.path("rubrics.jsonl")])}
    responses = read_responses(runner.path("responses.jsonl"))
    judge = load_judge(cfg.spec, config=PointwiseConfig(mode=cfg.mode, max_tokens=cfg.max_tokens,
                                                         reasks=cfg.reasks, grouped_template=cfg.template),
                       timeout=runner.config.timeout, cache_path=runner.cache_path)
    runner.track(getattr(judge, "generator", None))
    verdicts = []
    try:
        with runner.task("judge", len(responses)) as advance:
            for start in range(0, len(responses), 4):  # small chunks: the cache keeps each finished chunk
                chunk = responses[start : start + 4]
                verdicts.extend(judge.grade_many([(rubrics[r.rubric_id], r) for r in chunk]))
                advance(len(chunk))
    finally:
        judge.close()
    write_jsonl(runner.path("verdicts.jsonl"), verdicts)
    return {"judge": cfg.spec, "template_version": getattr(judge, "template_version", None),
            **summarise_verdicts(verdicts), "note": _local_note(cfg.spec)}


def stage_pairs(runner: Runner) -> dict[str, Any]:
    from promedical.data.preferences import PairReport, PairRule, build_pairs, expand_pair
    from promedical.rubrics.scoring import statuses_by_response

    cfg = runner.config.pairs
    rubrics = read_rubrics([runner.path("rubrics.jsonl")])
    responses = read_responses(runner.path("responses.jsonl"))
    verdicts = read_verdicts(runner.path("verdicts.jsonl"))
    statuses = statuses_by_response((v.response_id, v.criterion_id, v.status) for v in verdicts)
    by_rubric: dict[str, list[Response]] = {}
    for response in responses:
        by_rubric.setdefault(response.rubric_id, []).append(response)
    rule = PairRule(cfg.s1_epsilon, cfg.max_pairs_per_rubric, cfg.seed)
    report = PairReport()
    expansion: Counter[str] = Counter()
    pairs: list[PreferencePair] = []
    rows: list[CriterionPair] = []
    judge = runner.config.judge.spec
    for rubric in rubrics:
        made = build_pairs(rubric, by_rubric.get(rubric.id, []), statuses, rule, judge, report)
        pairs.extend(made)
        for pair in made:
            rows.extend(expand_pair(pair, rubric, statuses, expansion))
    write_jsonl(runner.path("pairs.jsonl"), pairs)
    write_jsonl(runner.path("criterion_pairs.jsonl"), rows)
    unscored = sum(v.status is Status.UNSCORED for v in verdicts)
    return {**report.as_dict(), "rule": rule.describe(), "criterion_rows": len(rows),
            "expansion": dict(expansion), "verdicts_unscored": unscored}


def stage_split(runner: Runner) -> dict[str, Any]:
    from promedical.data.splits import split_rubrics

    cfg = runner.config.splits
    rubrics = read_rubrics([runner.path("rubrics.jsonl")])
    pairs = [p for _, p in load_models(runner.path("pairs.jsonl"), PreferencePair)[0]]
    rows = [r for _, r in load_models(runner.path("criterion_pairs.jsonl"), CriterionPair)[0]]
    groups = split_rubrics(rubrics, cfg.fractions, cfg.salt)
    index: dict[str, Any] = {"fractions": cfg.fractions, "salt": cfg.salt, "key": "normalised instruction text",
                             "splits": {}}
    for name, members in groups.items():
        ids = {r.id for r in members}
        folder = runner.path(f"splits/{name}")
        write_jsonl(folder / "rubrics.jsonl", members)
        split_pairs = [p for p in pairs if p.rubric_id in ids]
        split_rows = [r for r in rows if r.rubric_id in ids]
        write_jsonl(folder / "pairs.jsonl", split_pairs)
        write_jsonl(folder / "criterion_pairs.jsonl", split_rows)
        index["splits"][name] = {"rubrics": len(members), "pairs": len(split_pairs), "criterion_pairs": len(split_rows),
                                 "rubric_ids_hash": content_hash(sorted(ids))}
    write_json(runner.path("splits/index.json"), index)
    return index["splits"]


def stage_export(runner: Runner) -> dict[str, Any]:
    from promedical.data.exports import export_all

    index = json.loads(runner.path("splits/index.json").read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for name in index["splits"]:
        folder = runner.path(f"splits/{name}")
        rubrics = read_rubrics([folder / "rubrics.jsonl"])
        pairs = [p for _, p in load_models(folder / "pairs.jsonl", PreferencePair)[0]]
        rows = [r for _, r in load_models(folder / "criterion_pairs.jsonl", CriterionPair)[0]]
        out[name] = export_all(runner.path(f"exports/{name}"), pairs, rubrics, rows)["counts"]
    write_json(runner.path("exports/index.json"), out)
    return out


def stage_audit(runner: Runner) -> dict[str, Any]:
    from promedical.data.audit import audit, load_side

    cfg = runner.config.splits
    train = load_side(str(runner.path(f"splits/{cfg.audit_train}/rubrics.jsonl")))
    reports: dict[str, Any] = {}
    for name in cfg.audit_against:
        path = runner.path(f"splits/{name}/rubrics.jsonl")
        if path.is_file() and path.stat().st_size:
            reports[name] = audit(train, load_side(str(path)))
        else:
            reports[name] = None
    write_json(runner.path("audit.json"), reports)
    return {name: (None if r is None else {"any": r["any"], "items": r["bench"]["items"]})
            for name, r in reports.items()}
