"""TRL-ready exports of pairs, prompts and criterion rows: JSONL, Parquet and a ``datasets`` folder each.

Formats (conversational, as TRL's DPOTrainer / RewardTrainer / GRPOTrainer accept them):

* ``pairs``: ``prompt`` = chat messages, ``chosen`` / ``rejected`` = one assistant message each, plus ``id``,
  ``rubric_id``, ``decided_by`` and the margins;
* ``grpo``: ``prompt`` = chat messages and ``rubric_id`` (the reward function looks the rubric up by it);
* ``criterion_pairs``: the ``CriterionPair`` records (what the criterion-conditioned reward model trains on), with
  ``chosen`` / ``rejected`` as assistant message lists in the Parquet / ``datasets`` copies.

Every file is written atomically (temporary name, then rename).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promedical.io import write_jsonl
from promedical.rubrics.records import CriterionPair, PreferencePair
from promedical.rubrics.schema import Rubric


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def pair_rows(pairs: Sequence[PreferencePair]) -> list[dict[str, Any]]:
    return [{"id": p.id, "rubric_id": p.rubric_id, "prompt": p.prompt, "chosen": _assistant(p.chosen),
             "rejected": _assistant(p.rejected), "decided_by": p.decided_by,
             "margin_s3": p.margins["s3"], "margin_s1": p.margins["s1"], "margin_s2": p.margins["s2"]}
            for p in pairs]


def grpo_rows(rubrics: Sequence[Rubric]) -> list[dict[str, Any]]:
    return [{"rubric_id": r.id, "rubric_version": r.version, "prompt": [m.model_dump() for m in r.prompt]}
            for r in rubrics]


def criterion_rows(rows: Sequence[CriterionPair]) -> list[dict[str, Any]]:
    return [{"id": r.id, "pair_id": r.pair_id, "rubric_id": r.rubric_id, "criterion_id": r.criterion_id,
             "tier": r.tier, "polarity": r.polarity, "criterion": r.criterion, "prompt": r.prompt,
             "chosen": _assistant(r.chosen), "rejected": _assistant(r.rejected),
             "follows_pair": bool(r.meta.get("follows_pair"))} for r in rows]


def write_table(rows: list[dict[str, Any]], base: Path) -> dict[str, str]:
    """``<base>.jsonl``, ``<base>.parquet`` and the ``<base>.hf/`` datasets folder; returns their paths."""
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # the pipeline shows its own progress; datasets' bars would clutter stderr
    base.parent.mkdir(parents=True, exist_ok=True)
    jsonl = base.with_suffix(".jsonl")
    write_jsonl(jsonl, rows)
    dataset = Dataset.from_list(rows) if rows else Dataset.from_dict({"prompt": []})
    parquet = base.with_suffix(".parquet")
    fd, tmp = tempfile.mkstemp(prefix=f".{parquet.name}.", dir=base.parent)
    os.close(fd)
    try:
        dataset.to_parquet(tmp)
        os.replace(tmp, parquet)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    folder = base.with_suffix(".hf")
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=base.parent))
    try:
        dataset.save_to_disk(str(staging / "data"))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging / "data", folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"jsonl": str(jsonl), "parquet": str(parquet), "datasets": str(folder)}


def export_all(
    out_dir: Path, pairs: Sequence[PreferencePair], rubrics: Sequence[Rubric], rows: Sequence[CriterionPair]
) -> dict[str, Any]:
    paths = {
        "pairs": write_table(pair_rows(pairs), out_dir / "pairs"),
        "grpo": write_table(grpo_rows(rubrics), out_dir / "grpo_prompts"),
        "criterion_pairs": write_table(criterion_rows(rows), out_dir / "criterion_pairs"),
    }
    # The reward-model trainer reads CriterionPair records as they are (schema_version, meta and all).
    write_jsonl(out_dir / "criterion_pairs.records.jsonl", rows)
    counts = {"pairs": len(pairs), "grpo_prompts": len(rubrics), "criterion_pairs": len(rows)}
    (out_dir / "README.json").write_text(json.dumps({"counts": counts, "files": paths}, indent=2) + "\n")
    return {"counts": counts, "files": paths}
