"""K-QA physician NLI annotations -> expert verdicts (and the annotated answers -> responses).

K-QA's ``NLI_medical_annotator.csv`` holds, per row, a question, the LLM that answered it (``llm_x``), the answer,
one physician statement (``claim``, from the question's Must_have or Nice_to_have list, ``category_x``), and the
NLI label three physicians gave the pair "does the answer entail this statement?" (``label_0..2``) plus their
majority (``majority_label``).

Label mapping (documented in docs/formats.md, "Expert labels"):

* ``Entailment`` -> ``met``: the answer states what the criterion asks for;
* ``Neutral`` -> ``unmet``: the answer does not cover it;
* ``Contradiction`` -> ``unmet`` with ``meta.contradiction = true``: the answer states the opposite. K-QA's own
  metrics count a contradicted statement as a hallucination, never as covered, so it is not met; the flag keeps
  the stronger signal for analyses that want it.

Each row gives one verdict per annotator (``judge = "human:kqa-annotator-<i>"``) and one for the majority
(``judge = "human:kqa-majority"``), for every criterion the claim matched (``promedical.labels.matching``). A
claim that spans several criteria (two statements glued together, which the rubric importer split) is kept only
when every label on it is Entailment: a Neutral or Contradiction label on "A. B." does not say which part fails.
Responses are the LLM answers: ``model = llm_x``, ids from ``Response.build``.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promedical.io import Problem
from promedical.labels.matching import Match, RubricIndex, Unmatched, match
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Rubric, Tier

SOURCE = "kqa-nli"
MAJORITY_JUDGE = "human:kqa-majority"
ANNOTATOR_JUDGE = "human:kqa-annotator-{}"
ANNOTATOR_COLUMNS = ("label_0", "label_1", "label_2")
REQUIRED_COLUMNS = ("Question", "llm_x", "answer", "claim", "category_x", "majority_label")
LABELS = {"entailment": "Entailment", "neutral": "Neutral", "contradiction": "Contradiction"}
STATUS_OF = {"Entailment": Status.MET, "Neutral": Status.UNMET, "Contradiction": Status.UNMET}
TIER_OF = {"must_have": Tier.PROFICIENCY, "nice_to_have": Tier.BONUS}


@dataclass(frozen=True, slots=True)
class UnmatchedRow:
    line: int
    row: str  # the source row's index column, or its position
    reason: str
    detail: str
    claim: str

    def __str__(self) -> str:
        return f"{self.line}: row {self.row}: unmatched ({self.reason}): {self.detail}"


@dataclass
class LabelImport:
    path: str
    rows: int = 0
    matched: int = 0
    verdicts: list[Verdict] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    unmatched: list[UnmatchedRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    methods: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        judges = Counter(v.judge for v in self.verdicts)
        statuses = Counter(v.status.value for v in self.verdicts if v.judge == MAJORITY_JUDGE)
        return {
            "format": "kqa-nli",
            "source": self.path,
            "rows": self.rows,
            "matched": self.matched,
            "unmatched": len(self.unmatched),
            "unmatched_by_reason": dict(sorted(Counter(u.reason for u in self.unmatched).items())),
            "match_methods": dict(sorted(self.methods.items())),
            "bad_rows": len({p.line for p in self.problems}),
            "responses": len(self.responses),
            "verdicts": len(self.verdicts),
            "verdicts_by_judge": dict(sorted(judges.items())),
            "majority_by_status": {s: statuses.get(s, 0) for s in ("met", "unmet")},
            "notes": dict(sorted(self.notes.items())),
        }


class RowError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_label(value: str | None, column: str, required: bool) -> str | None:
    """``Entailment``/``Neutral``/``Contradiction`` (any case, spacing); blank -> None unless required."""
    text = (value or "").strip()
    if not text:
        if required:
            raise RowError(column, "is empty")
        return None
    label = LABELS.get(text.casefold())
    if label is None:
        raise RowError(column, f"expected Entailment, Neutral or Contradiction, got {text[:40]!r}")
    return label


def _text(row: dict[str, str | None], column: str) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise RowError(column, "is empty")
    return value


def read_rows(path: str | Path) -> tuple[list[tuple[int, dict[str, str | None]]], list[Problem]]:
    """The CSV's rows with the line each starts on; a missing column or unreadable file is one problem."""
    shown = str(path)
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        return [], [Problem(shown, 0, "-", "-", f"cannot open: {exc.strerror or exc}")]
    rows: list[tuple[int, dict[str, str | None]]] = []
    with handle:
        reader = csv.DictReader(handle)
        try:
            columns = set(reader.fieldnames or ())
            missing = [c for c in (*REQUIRED_COLUMNS, *ANNOTATOR_COLUMNS) if c not in columns]
            if missing:
                return [], [Problem(shown, 1, "-", missing[0], f"missing column (have: {', '.join(sorted(columns))})")]
            start = reader.line_num + 1
            for row in reader:
                rows.append((start, row))
                start = reader.line_num + 1
        except (csv.Error, UnicodeDecodeError) as exc:
            return rows, [Problem(shown, reader.line_num, "-", "-", f"unreadable CSV: {exc}")]
    return rows, []


def _majority(labels: list[str]) -> str | None:
    if not labels:
        return None
    label, count = Counter(labels).most_common(1)[0]
    return label if count * 2 > len(labels) else None


def _verdicts(
    found: Match, response: Response, labels: dict[str, str], meta: dict[str, Any]
) -> list[Verdict]:
    out = []
    for judge, label in labels.items():
        for criterion in found.criteria:
            out.append(
                Verdict(
                    response_id=response.id,
                    rubric_id=found.rubric.id,
                    criterion_id=criterion.id,
                    status=STATUS_OF[label],
                    judge=judge,
                    explanation=f"K-QA physician NLI label: {label}",
                    meta={**meta, "label": label, "contradiction": label == "Contradiction",
                          "tier": criterion.tier.value},
                )
            )
    return out


def import_kqa_nli(path: str | Path, rubrics: Iterable[Rubric]) -> LabelImport:
    """Read the annotation CSV and turn it into verdicts against ``rubrics``; never raises on content."""
    shown = str(path)
    result = LabelImport(path=shown)
    rows, problems = read_rows(path)
    result.problems.extend(problems)
    index = RubricIndex(rubrics)
    responses: dict[str, Response] = {}
    seen: dict[tuple[str, str, str], tuple[int, Status]] = {}
    for line, row in rows:
        result.rows += 1
        row_id = (row.get("") or row.get("Unnamed: 0") or str(result.rows - 1)).strip()
        try:
            question, model, answer = _text(row, "Question"), _text(row, "llm_x"), _text(row, "answer")
            claim, category = _text(row, "claim"), _text(row, "category_x")
            majority = parse_label(row.get("majority_label"), "majority_label", required=False)
            annotators = {ANNOTATOR_JUDGE.format(i): parse_label(row.get(c), c, required=False)
                          for i, c in enumerate(ANNOTATOR_COLUMNS)}
        except RowError as exc:
            result.problems.append(Problem(shown, line, f"row {row_id}", exc.field, exc.message))
            continue
        given = [label for label in annotators.values() if label is not None]
        if majority is None:
            majority = _majority(given)
            result.notes["majority_derived" if majority else "majority_missing"] += 1
        elif given and _majority(given) not in (None, majority):
            result.notes["majority_disagrees_with_annotators"] += 1
        result.notes["annotator_labels_missing"] += len(annotators) - len(given)
        found = match(index, question, claim)
        labels = {j: lab for j, lab in {**annotators, MAJORITY_JUDGE: majority}.items() if lab is not None}
        if isinstance(found, Match) and len(found.criteria) > 1 and set(labels.values()) != {"Entailment"}:
            found = Unmatched("claim_spans_criteria", f"the claim spans {len(found.criteria)} criteria "
                              f"({', '.join(c.id for c in found.criteria)}) and a non-Entailment label on it does "
                              "not say which part fails")
        if isinstance(found, Unmatched):
            result.unmatched.append(UnmatchedRow(line, row_id, found.reason, found.detail, claim))
            continue
        tier = TIER_OF.get(category.casefold())
        if tier is None:
            result.notes["category_unknown"] += 1
        elif any(c.tier is not tier for c in found.criteria):
            result.notes["category_tier_mismatch"] += 1
        response = responses.get(f"{found.rubric.id}\0{model}\0{answer}")
        if response is None:
            response = Response.build(found.rubric.id, model, answer, source=SOURCE)
            responses[f"{found.rubric.id}\0{model}\0{answer}"] = response
        meta = {"source": SOURCE, "line": line, "row": row_id, "claim": claim, "category": category,
                "match": found.method, "match_score": round(found.score, 4), "question_match": found.question_method}
        new = _verdicts(found, response, labels, meta)
        clash = [v for v in new if seen.get((v.judge, *v.key), (0, v.status))[1] is not v.status]
        if clash:
            first = seen[(clash[0].judge, *clash[0].key)][0]
            result.unmatched.append(UnmatchedRow(line, row_id, "conflicting_duplicate", f"criterion "
                                                 f"{clash[0].criterion_id} already labelled differently at line "
                                                 f"{first}", claim))
            continue
        fresh = [v for v in new if (v.judge, *v.key) not in seen]
        result.notes["duplicate_labels_dropped"] += len(new) - len(fresh)
        for verdict in fresh:
            seen[(verdict.judge, *verdict.key)] = (line, verdict.status)
        result.verdicts.extend(fresh)
        result.matched += 1
        result.methods[found.method] += 1
        if found.question_method != "exact":
            result.notes["question_fuzzy"] += 1
    result.responses = list(responses.values())
    result.notes = Counter({k: v for k, v in result.notes.items() if v})
    return result
