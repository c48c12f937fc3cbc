"""What a reward-model run trains and calibrates on: supervision built, files read, blind items and other splits out.

``prepare(cfg)`` is the one place ``promedical rm train`` (and ``reward.train.run``) gets its rows from:

1. the constructions named in ``cfg.supervision`` are built into ``<output_dir>/supervision`` (reused when its
   manifest is there and the constructions match) and their ``train`` / ``val`` splits join the data;
2. ``train_data`` and ``val_data`` are read (``read_many``);
3. every row of a blind-test question or prompt is dropped (``blind_test``), from both;
4. with ``train_split`` / ``val_split``, only rows whose instruction falls in that split are kept;
5. with an ``evidence`` head, every question it is fitted on leaves the encoder's rows (``reward.fit_head``);
6. an audit counts, after all that, the rows per split and the blind matches left (both must be zero where they
   should), and the whole report goes into the run's manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from promedical.data.blind import find_blind_list, shared_data_dir
from promedical.io import UserError
from promedical.reward.config import RMTrainConfig
from promedical.reward.data import LabelledData, audit_split, drop_blind, keep_split, read_many

SUPERVISION_DIR = "supervision"


def _supervision(cfg: RMTrainConfig) -> tuple[list[str], list[str], dict[str, Any]]:
    """Build (or reuse) the configured supervision; returns (train dirs, val dirs, its summary)."""
    from promedical.reward.supervision import build_supervision

    out = Path(cfg.output_dir) / SUPERVISION_DIR
    manifest = out / "supervision.manifest.json"
    summary: dict[str, Any] | None = None
    if manifest.is_file():
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
        if sorted(recorded.get("config", {}).get("constructions", [])) == sorted(cfg.supervision):
            summary = {"reused": True, "counts": recorded.get("counts", {}).get("splits")}
    if summary is None:
        built = build_supervision(shared_data_dir(), out, cfg.supervision)
        summary = {"reused": False, "counts": built.get("splits"), "blind_dropped": built.get("blind_dropped")}
    return [str(out / "train")], [str(out / "val")], {"dir": str(out), "constructions": cfg.supervision, **summary}


def prepare(cfg: RMTrainConfig) -> tuple[LabelledData, LabelledData | None, dict[str, Any]]:
    """(train rows, val rows or None, report for the manifest); see the module docstring."""
    report: dict[str, Any] = {}
    train_paths, val_paths = list(cfg.train_data), list(cfg.val_data)
    if cfg.supervision:
        extra_train, extra_val, report["supervision"] = _supervision(cfg)
        train_paths += extra_train
        val_paths += extra_val
    train = read_many(train_paths, cfg.derive_pairs, cfg.max_pairs_per_criterion)
    val = read_many(val_paths, cfg.derive_pairs, cfg.max_pairs_per_criterion) if val_paths else None
    blind = find_blind_list(cfg.blind_test)
    report["blind_test"] = {"list": blind.source if blind else None}
    if blind is None and cfg.blind_test == "auto":
        report["blind_test"]["note"] = "no blind_test.json in the shared data folder: nothing to drop"
    if blind is not None:
        train, report["blind_test"]["dropped_train"] = drop_blind(train, blind)
        if val is not None:
            val, report["blind_test"]["dropped_val"] = drop_blind(val, blind)
    for name, split, data in (("train", cfg.train_split, train), ("val", cfg.val_split, val)):
        if split is None or data is None:
            continue
        kept, dropped = keep_split(data, split)
        report[f"{name}_split"] = {"kept": split, "dropped_by_split": dropped}
        if name == "train":
            train = kept
        else:
            val = kept
    if cfg.evidence is not None:
        from promedical.reward.fit_head import drop_questions, head_labels, label_questions

        labels, report["evidence_labels"] = head_labels(cfg)
        keys = label_questions(labels)
        train, report["evidence_labels"]["dropped_train"] = drop_questions(train, keys)
        if val is not None:
            val, report["evidence_labels"]["dropped_val"] = drop_questions(val, keys)
    if not train.points and not train.pairs:
        raise UserError(f"{cfg.output_dir}: -: train_data: no training rows left after the blind and split filters")
    # The audit reads the final rows again: per split of their instruction, and any blind match left.
    left = None
    if blind is not None:
        left = sum(drop_blind(data, blind)[1][kind] for data in (train, val) if data is not None
                   for kind in ("points", "pairs"))
    report["audit"] = {"train_rows_by_split": audit_split(train),
                       "val_rows_by_split": audit_split(val) if val is not None else None,
                       "blind_rows_left": left}
    return train, val, report
