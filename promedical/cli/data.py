"""``promedical data``: one command per pipeline stage, ``run`` for the whole chain, and the independence audit.

Every stage command takes the pipeline YAML (``--config``), works in the config's run directory (``--run-dir``
overrides it), skips itself when its manifest matches (``--force`` re-runs it) and prints a summary
(``--json``: one JSON object as the last stdout line).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from promedical import interrupt
from promedical.cli.common import JSON_HELP, emit_json, progress, stderr
from promedical.data import run_files as files
from promedical.io import UserError, load_models, write_json, write_jsonl

app = typer.Typer(help="Data pipeline: sources -> curated instructions -> rubrics -> candidates -> pairs -> exports.",
                  no_args_is_help=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Pipeline YAML (see configs/pipeline_small.yaml).")]
RunDirOpt = Annotated[Path | None, typer.Option("--run-dir", help="Override the config's run_dir.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Re-run even when the stage's manifest matches.")]
JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


def _runner(config: Path, run_dir: Path | None, force: bool, bar: Any) -> Any:
    from promedical.data.pipeline import Runner
    from promedical.data.pipeline_config import load_config

    cfg = load_config(config, {"run_dir": str(run_dir)} if run_dir else None)
    return Runner(cfg, str(config), bar, force)


def _print(result: dict[str, Any]) -> None:
    counts = result.get("counts", {})
    state = "skipped (manifest matches)" if result.get("skipped") else "done"
    stderr.print(f"[bold]{result['stage']}[/bold]: {state}")
    for key in ("note", "notes"):
        notes = counts.get(key)
        for note in [notes] if isinstance(notes, str) else (notes or []):
            stderr.print(f"  note: {note}")
    flat = {k: v for k, v in counts.items() if isinstance(v, int | float | str) and k not in ("note",)}
    if flat:
        stderr.print("  " + ", ".join(f"{k}={v}" for k, v in flat.items()))


def _quiet_libraries() -> None:
    """Our own progress bars only: the libraries' per-load and per-save bars would bury them."""
    from datasets.utils.logging import disable_progress_bar as datasets_quiet
    from transformers.utils.logging import disable_progress_bar as transformers_quiet

    datasets_quiet()
    transformers_quiet()


def _stages(names: list[str], config: Path, run_dir: Path | None, force: bool, as_json: bool) -> None:
    _quiet_libraries()
    with progress() as bar:
        runner = _runner(config, run_dir, force, bar)
        results = runner.run(names)
    for result in results:
        _print(result)
    if as_json:
        emit_json({"run_dir": str(runner.run_dir), "stages": results})
    interrupt.fault_point("reported")


def _stage_command(stage: str, help_text: str, name: str | None = None) -> None:
    """A command that runs one stage. ``name`` differs from the stage's id where the id reads badly on the command
    line (the id stays what the config section, the run directory and ``data run --until`` use); the id is then
    kept as a hidden alias for one release."""
    def command(
        config: ConfigOpt, run_dir: RunDirOpt = None, force: ForceOpt = False, as_json: JsonOpt = False
    ) -> None:
        _stages([stage], config, run_dir, force, as_json)

    command.__doc__ = help_text
    app.command(name or stage)(command)
    if name is not None and name != stage:
        app.command(stage, hidden=True, help=f"Old name of `data {name}` (kept for one release).")(command)


_stage_command("sources", "Load the configured sources into instructions (source and license kept).")
_stage_command("dedup", "Drop exact and MiniLM near-duplicate instructions (threshold in the config).")
_stage_command("difficulty", "Rate difficulty 0-10 with an LLM and keep the configured band.")
# "labels" and "label" differed by one letter and neither said what it does: the commands are named for the work
# (classify instructions by category and specialty; judge every response), the stage ids stay.
_stage_command("labels", "Classify instructions by category and specialty (MiniLM nearest prototype); stage "
               "`labels`.", name="classify")
_stage_command("draft", "Draft three-tier rubrics with an LLM; report the drafting yield.")
_stage_command("candidates", "Generate K candidate responses per rubric from each configured model.")
_stage_command("label", "Judge every (response, criterion) with the configured judge; stage `label`.",
               name="judge")
_stage_command("pairs", "Build lexicographic preference pairs and criterion-expanded rows.")
_stage_command("split", "Split rubrics, pairs and rows deterministically by content hash.")
_stage_command("export", "Write TRL exports (pairs, GRPO prompts, criterion rows) as JSONL, Parquet, datasets.")


@app.command("run")
def run(config: ConfigOpt, run_dir: RunDirOpt = None, force: ForceOpt = False, as_json: JsonOpt = False,
        until: Annotated[str | None, typer.Option(help="Stop after this stage.")] = None) -> None:
    """Run every stage in order (finished stages are skipped; an interrupted run resumes)."""
    from promedical.data.pipeline import STAGES

    names = list(STAGES)
    if until is not None:
        if until not in names:
            raise UserError(f"--until: unknown stage {until!r}; stages: {', '.join(names)}")
        names = names[: names.index(until) + 1]
    _stages(names, config, run_dir, force, as_json)


@app.command("review-out")
def review_out(config: ConfigOpt, run_dir: RunDirOpt = None, as_json: JsonOpt = False,
               size: Annotated[int | None, typer.Option(help="Batch size (default: the config's).")] = None) -> None:
    """Write the next batch of drafted rubrics for expert review (review/round-N.batch.jsonl)."""
    from promedical.data.review_rounds import select_batch
    from promedical.io import read_rubrics
    from promedical.rubrics.review import ReviewDecision

    runner = _runner(config, run_dir, False, None)
    source = runner.path(files.RUBRICS)
    if not source.is_file():
        raise UserError(f"{source}: missing: run the stages up to 'review' first")
    reviewed: set[str] = set()
    for path in runner.decision_files():
        reviewed.update(f"{d.rubric_id}@{d.rubric_version}" for _, d in load_models(path, ReviewDecision,
                                                                                   id_field="rubric_id")[0])
    number = len(runner.decision_files()) + 1
    batch = select_batch(read_rubrics([source]), size or runner.config.review.batch_size, reviewed)
    out = runner.path(files.review_batch(number))
    write_jsonl(out, batch)
    stderr.print(f"round {number}: {len(batch)} drafted rubrics for review -> {out}")
    if as_json:
        emit_json({"round": number, "rubrics": len(batch), "batch": str(out)})


@app.command("review-in")
def review_in(config: ConfigOpt,
              decisions: Annotated[Path, typer.Option(help="ReviewDecision JSONL exported by the review app.")],
              run_dir: RunDirOpt = None, as_json: JsonOpt = False) -> None:
    """Add one round of expert decisions and re-run the review stage (pass rate recorded per round)."""
    from promedical.rubrics.review import ReviewDecision

    records, problems = load_models(decisions, ReviewDecision, id_field="rubric_id")
    if problems:
        raise UserError(str(problems[0]))
    if not records:
        raise UserError(f"{decisions}: no decisions")
    runner = _runner(config, run_dir, False, None)
    number = len(runner.decision_files()) + 1
    wrong = [d for _, d in records if d.round != number]
    if wrong:
        raise UserError(f"{decisions}: {wrong[0].rubric_id}: round: expected {number} (the next round), "
                        f"got {wrong[0].round}")
    target = runner.path(files.review_decisions(number))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(decisions, target)
    _stages(["review"], config, run_dir, False, as_json)


@app.command("audit")
def audit(
    train: Annotated[str, typer.Option(help="Training pool: rubric/instruction JSONL or source:<loader>[=path].")],
    bench: Annotated[str, typer.Option(help="Bench: rubric/instruction JSONL or source:<loader>[=path].")],
    out: Annotated[Path | None, typer.Option(help="Also write the full report here (JSON).")] = None,
    ngram_threshold: Annotated[float, typer.Option(help="8-gram containment threshold.")] = 0.5,
    embed_threshold: Annotated[float, typer.Option(help="MiniLM cosine threshold.")] = 0.9,
    examples: Annotated[int, typer.Option(help="Examples per check.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Exact, 8-gram and embedding near-duplicates between a training pool and a bench, and rubric-text overlap."""
    from promedical.data.audit import audit as run_audit
    from promedical.data.audit import load_side

    _quiet_libraries()
    report = run_audit(load_side(train), load_side(bench), ngram_threshold=ngram_threshold,
                       embed_threshold=embed_threshold, examples=examples)
    if out is not None:
        write_json(out, report)
    b = report["bench"]["items"]
    stderr.print(f"bench {report['bench']['name']} ({b} items) vs train {report['train']['name']} "
                 f"({report['train']['items']} items)")
    for key in ("exact", "ngram", "embedding", "any"):
        stderr.print(f"  {key}: {report[key]['flagged']} flagged (share {report[key]['share']})")
    if report["rubric_text"]:
        for key in ("exact", "embedding"):
            section = report["rubric_text"][key]
            stderr.print(f"  rubric text {key}: {section['flagged']} of {report['bench']['criteria']} criteria")
    if as_json:
        emit_json(report)
    else:
        typer.echo(json.dumps({k: report[k]["flagged"] for k in ("exact", "ngram", "embedding", "any")}))
