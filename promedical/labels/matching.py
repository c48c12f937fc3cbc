"""Find the rubric and the criterion an expert-labelled claim refers to.

Expert label files (K-QA's physician NLI annotations) name the question and the statement by their text, not by
our ids, and the texts drift: whitespace, bullets, stray quotes, two statements glued into one. Matching is done
in this order and the first rule that applies wins; the method is recorded on every match:

* question: whitespace-collapsed, case-folded exact match against the rubrics' user turn; then a fuzzy match
  (``difflib`` ratio >= ``QUESTION_THRESHOLD``, and the best clearly ahead of the runner-up);
* claim, within that rubric:

  1. ``exact``: the cleaned claim equals a criterion text (``statement_key``: case, spacing, end punctuation);
  2. ``source``: the cleaned claim equals the source statement a criterion was imported from
     (``rubric.meta.extra["statements"]``); a statement the importer split gives all its parts;
  3. ``split``: the claim holds several sentences (``split_statements``) and every part matches exactly;
  4. ``fuzzy``: the best ``difflib`` ratio on the statement keys is >= ``CLAIM_THRESHOLD`` and at least
     ``MARGIN`` above the second best (so a near-tie between two criteria is never guessed).

A claim that matches nothing is returned as ``Unmatched`` with a stable ``reason`` code and a readable detail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from promedical.rubrics.importers.normalise import (
    normalise_statement,
    normalise_whitespace,
    split_statements,
    statement_key,
)
from promedical.rubrics.schema import Criterion, Rubric

QUESTION_THRESHOLD = 0.95
CLAIM_THRESHOLD = 0.90
MARGIN = 0.05


@dataclass(frozen=True, slots=True)
class Match:
    rubric: Rubric
    criteria: tuple[Criterion, ...]  # one, or several when the claim spans statements the importer split
    method: str  # exact | source | split | fuzzy
    score: float  # 1.0 for the exact rules, the similarity ratio for fuzzy
    question_method: str  # exact | fuzzy
    question_score: float


@dataclass(frozen=True, slots=True)
class Unmatched:
    reason: str  # stable code: question_not_found | claim_not_found | claim_ambiguous | empty_claim
    detail: str


def text_key(text: str) -> str:
    """Key for free text compared as a whole (questions): whitespace collapsed and case-folded."""
    return normalise_whitespace(text).casefold()


def claim_key(text: str) -> str:
    return statement_key(normalise_statement(text))


def similarity(a: str, b: str) -> float:
    """``difflib`` ratio in [0, 1] on already-normalised keys."""
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def _best_two(query: str, keys: Iterable[tuple[str, str]]) -> list[tuple[float, str]]:
    """The two highest ``(ratio, id)`` among ``(id, key)``; cheap upper bounds skip hopeless candidates."""
    scored: list[tuple[float, str]] = []
    for ident, key in keys:
        matcher = SequenceMatcher(None, query, key, autojunk=False)
        floor = scored[1][0] if len(scored) > 1 else 0.0
        if matcher.real_quick_ratio() < floor or matcher.quick_ratio() < floor:
            continue
        scored.append((matcher.ratio(), ident))
        scored.sort(key=lambda item: -item[0])
        del scored[2:]
    return scored


class RubricIndex:
    """Rubrics indexed by their question, for claim matching."""

    def __init__(self, rubrics: Iterable[Rubric]) -> None:
        self.by_key: dict[str, Rubric] = {}
        self.duplicates: set[str] = set()
        for rubric in rubrics:
            key = text_key(rubric.instruction)
            if key in self.by_key and self.by_key[key].id != rubric.id:
                self.duplicates.add(key)
            self.by_key.setdefault(key, rubric)

    def __len__(self) -> int:
        return len(self.by_key)

    def find(self, question: str) -> tuple[Rubric, str, float] | Unmatched:
        key = text_key(question)
        if not key:
            return Unmatched("question_not_found", "the question is empty")
        if key in self.duplicates:
            return Unmatched("question_ambiguous", "several rubrics with different ids have this question")
        if key in self.by_key:
            return self.by_key[key], "exact", 1.0
        best = _best_two(key, ((k, k) for k in self.by_key))
        if not best:
            return Unmatched("question_not_found", "no rubrics to match against")
        score, found = best[0]
        runner_up = best[1][0] if len(best) > 1 else 0.0
        if score >= QUESTION_THRESHOLD and score - runner_up >= MARGIN and found not in self.duplicates:
            return self.by_key[found], "fuzzy", score
        return Unmatched(
            "question_not_found",
            f"no rubric has this question (closest similarity {score:.2f} < {QUESTION_THRESHOLD})",
        )


def _exact(rubric: Rubric, key: str) -> Criterion | None:
    for criterion in rubric.criteria:
        if statement_key(criterion.text) == key:
            return criterion
    return None


def _from_source(rubric: Rubric, key: str) -> tuple[Criterion, ...]:
    statements = rubric.meta.extra.get("statements")
    if not isinstance(statements, dict):
        return ()
    ids = [cid for cid, source in statements.items() if isinstance(source, str) and claim_key(source) == key]
    found = []
    for criterion in rubric.criteria:
        if criterion.id in ids:
            found.append(criterion)
    return tuple(found)


def match_claim(rubric: Rubric, claim: str) -> tuple[tuple[Criterion, ...], str, float] | Unmatched:
    """The criteria of ``rubric`` that ``claim`` states, how they were found and the match score."""
    key = claim_key(claim)
    if not key:
        return Unmatched("empty_claim", "the claim is empty")
    exact = _exact(rubric, key)
    if exact is not None:
        return (exact,), "exact", 1.0
    source = _from_source(rubric, key)
    if source:
        return source, "source", 1.0
    parts = [claim_key(p) for p in split_statements(normalise_statement(claim))]
    if len(parts) > 1:
        found = [_exact(rubric, p) for p in parts]
        if all(c is not None for c in found):
            unique = tuple(dict.fromkeys(c for c in found if c is not None))
            return unique, "split", 1.0
    best = _best_two(key, ((c.id, statement_key(c.text)) for c in rubric.criteria))
    score, found_id = best[0]
    runner_up = best[1][0] if len(best) > 1 else 0.0
    if score >= CLAIM_THRESHOLD and score - runner_up >= MARGIN:
        return (rubric.criterion(found_id),), "fuzzy", score
    if score >= CLAIM_THRESHOLD:
        return Unmatched(
            "claim_ambiguous",
            f"criteria {found_id!r} ({score:.2f}) and {best[1][1]!r} ({runner_up:.2f}) match about equally",
        )
    return Unmatched(
        "claim_not_found",
        f"no criterion of {rubric.id} states this claim (closest {found_id!r} at {score:.2f} < {CLAIM_THRESHOLD})",
    )


def match(index: RubricIndex, question: str, claim: str) -> Match | Unmatched:
    found = index.find(question)
    if isinstance(found, Unmatched):
        return found
    rubric, question_method, question_score = found
    claimed = match_claim(rubric, claim)
    if isinstance(claimed, Unmatched):
        return claimed
    criteria, method, score = claimed
    return Match(rubric, criteria, method, score, question_method, question_score)
