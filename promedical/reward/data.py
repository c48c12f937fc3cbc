"""Training and evaluation rows for the reward model, built from the project's records.

Two kinds of labelled data feed the reward model:

* **pairs** (``PairRow``): criterion-expanded preference rows, read from ``CriterionPair`` JSONL as the data
  pipeline writes it, or derived from pointwise labels (below);
* **points** (``PointRow``): one (response, criterion) with a satisfied / not satisfied label, built from
  verdicts + responses + rubrics (K-QA physician labels, HealthBench grader labels, judge output). "Satisfied"
  is ``met`` for a required criterion and ``unmet`` for a prohibited veto (the behaviour is absent).

Where one criterion has a satisfied and an unsatisfied response to the same instruction (K-QA: several LLM
answers per question), ``derive_pairs`` turns them into pair rows (every satisfied x unsatisfied combination,
at most ``max_per_criterion``, chosen deterministically).

A *labelled set* is a directory holding ``rubrics.jsonl``, ``responses.jsonl`` and ``verdicts.jsonl`` (points)
and/or ``pairs.jsonl`` (CriterionPair rows); a single ``.jsonl`` file of CriterionPair rows also works.
Several verdicts on the same (response, criterion) are reduced to one label: a verdict whose judge names a
majority (``...majority...``) wins, otherwise the majority of met/unmet among the rest; ties and unscored-only
items are dropped and counted.

``split_rubrics`` assigns each row to train / val / test with the project's one split scheme
(``promedical.data.splits``: a salted hash of the instruction's normalised text), so two rubrics of one question
(different ids, same prompt) never land in two splits.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promedical.data.blind import BlindList
from promedical.data.splits import HELD_OUT_FRACTIONS, SPLIT_SALT, instruction_key, split_of
from promedical.io import UserError, load_models, read_responses, read_rubrics, read_verdicts
from promedical.rubrics.records import CriterionPair, Status, Verdict
from promedical.rubrics.schema import Polarity, Rubric
from promedical.rubrics.scoring import is_satisfied, met_from_satisfied

PAIRS_FILE = "pairs.jsonl"
RUBRICS_FILE = "rubrics.jsonl"
RESPONSES_FILE = "responses.jsonl"
VERDICTS_FILE = "verdicts.jsonl"


@dataclass(frozen=True, slots=True)
class PairRow:
    rubric_id: str
    criterion_id: str
    instruction: str
    criterion: str
    tier: str
    polarity: str
    chosen: str
    rejected: str
    source: str = "pairs"  # "pairs" (CriterionPair input) or "derived" (from pointwise labels)


@dataclass(frozen=True, slots=True)
class PointRow:
    rubric_id: str
    criterion_id: str
    response_id: str
    instruction: str
    response: str
    criterion: str
    tier: str
    polarity: str
    satisfied: bool

    @property
    def met(self) -> bool:
        """The verdict's own sense: for a prohibited veto, met means the behaviour is present."""
        return met_from_satisfied(self.satisfied, self.polarity)


@dataclass
class LabelledData:
    pairs: list[PairRow] = field(default_factory=list)
    points: list[PointRow] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)

    def extend(self, other: LabelledData) -> None:
        self.pairs.extend(other.pairs)
        self.points.extend(other.points)
        self.notes.update(other.notes)

    def rubric_ids(self) -> set[str]:
        return {r.rubric_id for r in self.pairs} | {r.rubric_id for r in self.points}


def _instruction(prompt: Sequence[dict[str, str]]) -> str:
    users = [m.get("content", "") for m in prompt if m.get("role") == "user"]
    return users[-1] if users else ""


def pairs_from_records(records: Iterable[CriterionPair]) -> list[PairRow]:
    return [
        PairRow(p.rubric_id, p.criterion_id, _instruction(p.prompt), p.criterion, p.tier, p.polarity, p.chosen,
                p.rejected)
        for p in records
    ]


def read_pairs(path: str | Path) -> list[PairRow]:
    records, problems = load_models(path, CriterionPair)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise UserError(f"{problems[0]}{more}")
    return pairs_from_records(r for _, r in records)


def reduce_verdicts(verdicts: Iterable[Verdict], notes: Counter[str]) -> dict[tuple[str, str], bool]:
    """``{(response_id, criterion_id): met}`` with one label per item (see the module docstring)."""
    grouped: dict[tuple[str, str], list[Verdict]] = defaultdict(list)
    for v in verdicts:
        grouped[v.key].append(v)
    out: dict[tuple[str, str], bool] = {}
    for key, items in grouped.items():
        scored = [v for v in items if v.status is not Status.UNSCORED]
        majority = [v for v in scored if "majority" in v.judge.lower()]
        if majority:
            out[key] = majority[0].status is Status.MET
            continue
        met = sum(v.status is Status.MET for v in scored)
        unmet = len(scored) - met
        if met == unmet:
            notes["dropped_unscored" if not scored else "dropped_tied"] += 1
            continue
        out[key] = met > unmet
    return out


def points_from_records(rubrics: Sequence[Rubric], responses: Iterable[Any], verdicts: Iterable[Verdict],
                        notes: Counter[str]) -> list[PointRow]:
    by_rubric = {r.id: r for r in rubrics}
    by_response = {r.id: r for r in responses}
    rows = []
    for (response_id, criterion_id), met in sorted(reduce_verdicts(verdicts, notes).items()):
        response = by_response.get(response_id)
        rubric = by_rubric.get(response.rubric_id) if response is not None else None
        if response is None or rubric is None:
            notes["dropped_no_response_or_rubric"] += 1
            continue
        try:
            c = rubric.criterion(criterion_id)
        except KeyError:
            notes["dropped_unknown_criterion"] += 1
            continue
        polarity = c.polarity or Polarity.REQUIRED
        satisfied = is_satisfied(met, polarity)
        rows.append(PointRow(rubric.id, c.id, response.id, rubric.instruction, response.text, c.text, c.tier.value,
                             polarity.value, satisfied))
    return rows


def derive_pairs(points: Sequence[PointRow], max_per_criterion: int = 6) -> list[PairRow]:
    """Pairs of responses to the same instruction that differ on one criterion."""
    grouped: dict[tuple[str, str], list[PointRow]] = defaultdict(list)
    for p in points:
        grouped[(p.rubric_id, p.criterion_id)].append(p)
    rows = []
    for (_, _), items in sorted(grouped.items()):
        good = sorted((p for p in items if p.satisfied), key=lambda p: p.response_id)
        bad = sorted((p for p in items if not p.satisfied), key=lambda p: p.response_id)
        for g, b in itertools.islice(itertools.product(good, bad), max_per_criterion):
            rows.append(PairRow(g.rubric_id, g.criterion_id, g.instruction, g.criterion, g.tier, g.polarity,
                                g.response, b.response, source="derived"))
    return rows


def read_labelled(path: str | Path, derive: bool = True, max_pairs_per_criterion: int = 6) -> LabelledData:
    """Read a labelled set (directory) or a CriterionPair JSONL file."""
    root = Path(path)
    data = LabelledData()
    if root.is_file():
        data.pairs = read_pairs(root)
        return data
    if not root.is_dir():
        raise UserError(f"{path}: -: -: no such labelled set (a directory or a CriterionPair .jsonl file)")
    if (root / PAIRS_FILE).is_file():
        data.pairs.extend(read_pairs(root / PAIRS_FILE))
    if (root / VERDICTS_FILE).is_file():
        for name in (RUBRICS_FILE, RESPONSES_FILE):
            if not (root / name).is_file():
                raise UserError(f"{root / name}: -: -: missing (verdicts need rubrics and responses beside them)")
        rubrics = read_rubrics([root / RUBRICS_FILE])
        data.points = points_from_records(rubrics, read_responses(root / RESPONSES_FILE),
                                          read_verdicts(root / VERDICTS_FILE), data.notes)
        if derive:
            data.pairs.extend(derive_pairs(data.points, max_pairs_per_criterion))
    if not data.pairs and not data.points:
        raise UserError(f"{path}: -: -: no labelled rows ({PAIRS_FILE} or {VERDICTS_FILE} with rubrics, responses)")
    return data


def read_many(paths: Sequence[str | Path], derive: bool = True, max_pairs_per_criterion: int = 6) -> LabelledData:
    data = LabelledData()
    for p in paths:
        data.extend(read_labelled(p, derive, max_pairs_per_criterion))
    return data


def split_rubrics(data: LabelledData, fractions: Mapping[str, float] = HELD_OUT_FRACTIONS,
                  salt: str = SPLIT_SALT) -> dict[str, LabelledData]:
    """Rows by split, keyed by their instruction text exactly as ``promedical.data.splits.split_rubrics``."""
    out = {name: LabelledData() for name in fractions}
    for pair in data.pairs:
        out[split_of(instruction_key(pair.instruction), fractions, salt)].pairs.append(pair)
    for point in data.points:
        out[split_of(instruction_key(point.instruction), fractions, salt)].points.append(point)
    return out


def drop_blind(data: LabelledData, blind: BlindList) -> tuple[LabelledData, dict[str, Any]]:
    """``data`` without any row whose instruction or rubric is on the blind-test list, and what was dropped.

    Counts: ``points``, ``pairs`` and ``instructions`` dropped, and ``by_match`` (exact text, normalised text or
    HealthBench prompt id). Nothing derived from a blind item may reach training, so every row of such an
    instruction goes, whatever file it came from.
    """
    kept = LabelledData(notes=data.notes)
    counts: Counter[str] = Counter()
    seen: set[str] = set()

    def blind_row(instruction: str, rubric_id: str) -> bool:
        how = blind.match(instruction, rubric_id)
        if how is not None:
            if instruction_key(instruction) not in seen:
                seen.add(instruction_key(instruction))
                counts[f"by_{how}"] += 1
            return True
        return False

    for pair in data.pairs:
        if blind_row(pair.instruction, pair.rubric_id):
            counts["pairs"] += 1
        else:
            kept.pairs.append(pair)
    for point in data.points:
        if blind_row(point.instruction, point.rubric_id):
            counts["points"] += 1
        else:
            kept.points.append(point)
    return kept, {"points": counts["points"], "pairs": counts["pairs"], "instructions": len(seen),
                  "by_match": {k.removeprefix("by_"): v for k, v in counts.items() if k.startswith("by_")}}


def keep_split(data: LabelledData, split: str, fractions: Mapping[str, float] = HELD_OUT_FRACTIONS,
               salt: str = SPLIT_SALT) -> tuple[LabelledData, dict[str, int]]:
    """Only the rows whose instruction falls in ``split``; the counts say how many of each other split went."""
    parts = split_rubrics(data, fractions, salt)
    kept = parts[split]
    kept.notes = data.notes
    dropped = {name: len(part.points) + len(part.pairs) for name, part in parts.items() if name != split}
    return kept, dropped


def audit_split(data: LabelledData, fractions: Mapping[str, float] = HELD_OUT_FRACTIONS,
                salt: str = SPLIT_SALT) -> dict[str, int]:
    """Rows per split of the instruction they belong to (after ``keep_split(s)`` only ``s`` may be non-zero)."""
    instructions = [p.instruction for p in data.pairs] + [p.instruction for p in data.points]
    counts: Counter[str] = Counter(split_of(instruction_key(i), fractions, salt) for i in instructions)
    return {name: counts[name] for name in fractions}
