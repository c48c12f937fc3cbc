"""Extra supervision for the reward model, built from public data with labels that hold by construction.

``kqa-answers`` (K-QA ``questions_w_answers.jsonl``, MIT): each question comes with a
physician-written answer and the physician's Must_have (proficiency) and Nice_to_have (bonus) statements, which
were written from that answer. Rows, one (response, criterion, satisfied?) each:

* **positive**: the physician's full answer satisfies each of its own statements;
* **ablated** (negative): the same answer with the sentence(s) that support one statement removed, labelled on
  that statement only. The supporting sentence is located by MiniLM cosine and by the statement's *distinctive
  words* (its content words that are not in the question); the deletion is kept only when it clearly removes the
  support (``AblationRule``), so many statements give no ablated row;
* **foreign** (negative, a minority): a statement of a *neighbouring* question (nearest by MiniLM, same split)
  that the answer neither says nor paraphrases (``ForeignRule``).

Because a positive and an ablated row share the criterion and the instruction, ``read_labelled`` derives the pair
(full answer > ablated answer) for that criterion by itself; no separate pairs file is written. List-item deletions
(``item``) and rows where an ablated answer kept another statement's support (``kept``) are described in
docs/supervision.md.

A second construction, ``pubmedqa-conclusions`` (PubMedQA PQA-L, MIT), labels each study's own conclusion on two
stance criteria (answers yes / answers no): the stance of the expert ``final_decision`` is satisfied, the other is
not. The official test ids (the MCQ benchmark's items) and ``maybe`` items are left out.

Blind test: every K-QA question listed in ``blind_test.json`` is dropped by exact text, by normalised key
(``instruction_key``) and by near-duplicate question text (MiniLM cosine >= ``near_blind_cos``); the manifest
counts each (PubMedQA questions are checked against the same list by text and key). Splits: every row takes the
split of its question (``split_of(instruction_key(question))``, with the reward model's ``HELD_OUT_FRACTIONS``, so
nothing built from a question the reward-model benchmarks test on can reach a train split), and a foreign
statement is only borrowed from a question in the same split. ``audit_splits`` re-reads what was written and checks
both rules; a failed audit raises and writes no manifest.

The construction itself (``build_kqa``) is pure given an embedding function; reading the source files and writing
the labelled sets happen at the edges (``build_supervision``).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from promedical.data.blind import BLIND_FILE, BlindList
from promedical.data.splits import HELD_OUT_FRACTIONS, instruction_key, split_of
from promedical.io import UserError, iter_jsonl, read_responses, read_rubrics, read_verdicts, write_jsonl
from promedical.reward.data import RESPONSES_FILE, RUBRICS_FILE, VERDICTS_FILE
from promedical.reward.predict import STOPWORDS, lexical_score
from promedical.rubrics.importers.kqa import LICENSE as KQA_LICENSE
from promedical.rubrics.importers.kqa import PHYSICIAN_MODEL, kqa_rubric_id, parse_row
from promedical.rubrics.importers.result import FieldError, Skip
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Criterion, Message, Provenance, Rubric, RubricMeta, Tier, normalise_weights

KQA_ANSWERS = "kqa-answers"
PUBMEDQA = "pubmedqa-conclusions"
CONSTRUCTIONS = (KQA_ANSWERS, PUBMEDQA)
KQA_FILE = "k-qa/questions_w_answers.jsonl"
PUBMEDQA_FILE = "pubmedqa/ori_pqal.json"
PUBMEDQA_TEST_FILE = "pubmedqa/test_ground_truth.json"  # the MCQ benchmark's items: never used here
PUBMEDQA_MODEL = "pubmedqa-conclusion"
# the two stance criteria every PubMedQA rubric carries; exactly one holds for a yes/no item
STANCES = {"yes": "Answers yes: the findings support what the question asks",
           "no": "Answers no: the findings do not support what the question asks"}
JUDGE = "construction:"  # verdicts' judge is "construction:<construction>/<kind>"
TEMPLATE_VERSION = "supervision/1"
ABLATED_MODEL = PHYSICIAN_MODEL + "/ablated"

EmbedFn = Callable[[Sequence[str]], np.ndarray]
Progress = Callable[[str, int, int], None]  # (stage, done now, stage total)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_WORD = re.compile(r"[a-z0-9]+")
# A sentence opening with one of these leans on the one before; deleting that one would leave it dangling, and
# incoherence would become a cue for "unsatisfied" that real errors do not have.
_ANAPHORA = frozenset(("it", "its", "this", "these", "they", "their", "them", "that", "those", "he", "she", "his",
                       "her", "such", "both"))


@dataclass(frozen=True)
class AblationRule:
    """When deleting sentences of an answer clearly removes its support for one statement.

    Support is read two ways because neither suffices alone: MiniLM scores every sentence of an answer high
    against every statement of the same answer (median cosine of the *second*-best sentence is about 0.65), and
    word overlap misses paraphrase. The best sentence is the one with the largest ``cos + word share``.
    """

    min_top_words: float = 0.5  # the best sentence holds >= half the statement's distinctive words ...
    min_top_cos: float = 0.8  # ... or is a near paraphrase of it; otherwise the support is not located: skip
    max_residual_words: float = 0.5  # after removal, at most half the distinctive words left anywhere
    min_cos_drop: float = 0.1  # and the best remaining sentence is >= 0.1 below the best removed one
    max_residual_cos: float = 0.8  # and no remaining sentence is a near paraphrase
    max_removed: int = 2  # sentences removed at most (the support of a statement is one or two sentences)
    min_kept_chars: float = 0.4  # the ablated answer keeps >= 40% of the characters (not a stub)
    kept_per_ablated: int = 1  # rows where an ablated answer still satisfies another, untouched statement
    max_item_words: int = 5  # a list item that may be deleted on its own (``plan_item``) is this short


@dataclass(frozen=True)
class ForeignRule:
    """Easy negatives: statements of neighbouring questions, kept a minority of the negatives."""

    per_ablated: float = 0.5  # foreign rows per ablated row of the same question (rounded half up)
    neighbours: int = 5  # nearest questions (same split) to borrow from
    max_cos: float = 0.6  # the foreign statement vs every sentence of this answer
    max_words: float = 1 / 3  # share of its distinctive words (minus this question's words) found in this answer
    max_own_cos: float = 0.75  # vs this question's own statements: no restatement of one of them


@dataclass(frozen=True)
class SupervisionConfig:
    fractions: Mapping[str, float] = field(default_factory=lambda: dict(HELD_OUT_FRACTIONS))
    seed: int = 0
    near_blind_cos: float = 0.9  # a question this close to a blind question is dropped as well
    max_satisfied_share: float = 0.55  # label balance: unpaired positives are subsampled down to this share
    ablation: AblationRule = field(default_factory=AblationRule)
    foreign: ForeignRule = field(default_factory=ForeignRule)


@dataclass(frozen=True)
class Unit:
    """One sentence (or bullet) of an answer; ``line`` keeps the answer's line structure when joining."""

    line: int
    text: str


@dataclass(frozen=True)
class KqaItem:
    line: int  # 1-based line in the source file
    question: str
    answer: str
    rubric: Rubric  # as the K-QA importer builds it (criterion ids must-<i> / nice-<i>)


@dataclass
class Built:
    """Records per split, with the counts and the blind-test report for the manifest."""

    rubrics: dict[str, list[Rubric]]
    responses: dict[str, list[Response]]
    verdicts: dict[str, list[Verdict]]
    counts: Counter[str] = field(default_factory=Counter)
    blind: dict[str, Any] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)


# --- text -------------------------------------------------------------------------------------------------------

def split_units(text: str) -> list[Unit]:
    """Sentences of an answer, line by line (a bullet line is one unit)."""
    units = []
    for number, line in enumerate(text.split("\n")):
        for piece in _SENTENCE_END.split(line.strip()):
            if piece.strip():
                units.append(Unit(number, piece.strip()))
    return units


def join_units(units: Sequence[Unit]) -> str:
    lines: dict[int, list[str]] = defaultdict(list)
    for u in units:
        lines[u.line].append(u.text)
    return "\n".join(" ".join(lines[n]) for n in sorted(lines))


def words(text: str) -> set[str]:
    """Content words with a crude plural fold (``causes`` ~ ``cause``), as the lexical baseline reads them."""
    out = set()
    for w in _WORD.findall(text.lower()):
        if len(w) < 3 or w in STOPWORDS:
            continue
        out.add(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return out


def distinctive_words(statement: str, question: str) -> set[str]:
    """The statement's content words that the question does not already contain."""
    return words(statement) - words(question)


def word_share(wanted: set[str], text_words: set[str]) -> float:
    return len(wanted & text_words) / len(wanted) if wanted else 0.0


# --- blind test -------------------------------------------------------------------------------------------------

def read_blind(path: str | Path) -> list[str]:
    """The K-QA questions of the blind test (``kqa_questions``); only the list itself is read."""
    return sorted(BlindList.read(path).questions)


def blind_match(question: str, blind: Sequence[str]) -> str | None:
    """``"exact"``, ``"normalised"`` (same ``instruction_key``, different text) or None."""
    return BlindList(frozenset(blind), frozenset(instruction_key(b) for b in blind), frozenset(), "-").match(question)


# --- K-QA -------------------------------------------------------------------------------------------------------

def read_kqa(path: str | Path) -> list[KqaItem]:
    """Rows with a physician answer, parsed by the K-QA importer (cleaned statements, stable criterion ids)."""
    items = []
    for number, row, problem in iter_jsonl(path):
        if problem is not None:
            raise UserError(str(problem))
        if not isinstance(row, dict):
            raise UserError(f"{path}:{number}: -: -: expected a JSON object")
        try:
            outcome = parse_row(row, {})
        except FieldError as exc:
            raise UserError(f"{path}:{number}: -: {exc.field}: {exc.message}") from None
        if isinstance(outcome, Skip):
            continue
        rubric, response = outcome
        if response is None:
            continue
        items.append(KqaItem(number, str(row["Question"]), response.text, rubric))
    return items


@dataclass(frozen=True)
class Ablation:
    removed: tuple[int, ...]  # unit indices
    top_cos: float
    top_words: float
    residual_cos: float
    residual_words: float


def plan_ablation(cos: np.ndarray, unit_words: Sequence[set[str]], wanted: set[str], unit_chars: Sequence[int],
                  rule: AblationRule, openers: Sequence[str] = ()) -> Ablation | str:
    """Which units to delete so that the answer no longer supports one statement, or why none qualifies.

    ``cos``: the statement's cosine to each unit; ``wanted``: its distinctive words; ``openers``: each unit's first
    word, lower case. Units are removed greedily in order of ``cos + word share`` until the remaining text holds at
    most ``max_residual_words`` of the distinctive words.
    """
    if not wanted:
        return "no_distinctive_words"
    if len(unit_words) < 2:
        return "single_sentence_answer"
    shares = [word_share(wanted, w) for w in unit_words]
    order = sorted(range(len(shares)), key=lambda i: (-(float(cos[i]) + shares[i]), i))
    top = order[0]
    if shares[top] < rule.min_top_words and float(cos[top]) < rule.min_top_cos:
        return "support_not_located"
    removed: list[int] = []
    for index in order[: rule.max_removed]:
        removed.append(index)
        kept = [i for i in range(len(unit_words)) if i not in removed]
        if not kept:
            return "too_little_left"
        left: set[str] = set().union(*(unit_words[i] for i in kept))
        residual_words = word_share(wanted, left)
        if residual_words <= rule.max_residual_words:
            break
    else:
        return "support_spread"  # the distinctive words survive max_removed deletions
    if residual_words >= word_share(wanted, set().union(*unit_words)):
        return "no_word_lost"  # located by cosine alone: no evidence the deletion took the statement's content
    if sum(unit_chars[i] for i in kept) < rule.min_kept_chars * sum(unit_chars):
        return "too_little_left"
    if any(i + 1 in kept and i + 1 < len(openers) and openers[i + 1] in _ANAPHORA for i in removed):
        return "dangling_reference"
    best_removed = max(float(cos[i]) for i in removed)
    residual_cos = max(float(cos[i]) for i in kept)
    if residual_cos > rule.max_residual_cos or best_removed - residual_cos < rule.min_cos_drop:
        return "paraphrase_remains"
    return Ablation(tuple(sorted(removed)), round(float(cos[top]), 4), round(shares[top], 4),
                    round(residual_cos, 4), round(residual_words, 4))


def list_items(sentence: str) -> tuple[list[str], str]:
    """A sentence's comma-separated chunks (commas inside brackets do not count) and its closing punctuation."""
    body = sentence.rstrip()
    end = ""
    while body and body[-1] in ".!?;:":
        end, body = body[-1] + end, body[:-1]
    chunks, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0 and body[i + 1 : i + 2] == " ":
            chunks.append(body[start:i])
            start = i + 2
    chunks.append(body[start:])
    return chunks, end


_CONJUNCTION = re.compile(r"^(and|or)\s+", re.IGNORECASE)
# a chunk opening with one of these qualifies the one before (an apposition or a clause), it is no list item
_NOT_AN_ITEM = frozenset(("such", "that", "which", "who", "including", "like", "as", "especially", "for", "e"))


def plan_item(sentence: str, wanted: set[str], elsewhere: set[str], rule: AblationRule) -> tuple[str, str] | str:
    """Delete the one list item of ``sentence`` that carries the statement, or say why not.

    Returns ``(new sentence, deleted item)``. The item must be short, sit in a list (at least two items after the
    sentence's head, a short neighbour), hold some of the statement's distinctive words (``wanted``), and none of
    those words may appear anywhere else in the answer (``elsewhere``: the other sentences' words) or in the
    sentence's other chunks. The rest of the statement's words stay: these negatives are lexically close misses.
    """
    chunks, end = list_items(sentence)
    if len(chunks) < 3:
        return "no_list"
    bare = [_CONJUNCTION.sub("", c) for c in chunks]
    short = [0 < len(b.split()) <= rule.max_item_words for b in bare]
    for k in range(1, len(chunks)):
        first = (_WORD.findall(bare[k].lower()) or [""])[0]
        carried = words(bare[k]) & wanted
        if not short[k] or not carried or first in _NOT_AN_ITEM:
            continue
        if not ((k > 1 and short[k - 1]) or (k + 1 < len(chunks) and short[k + 1])):
            continue
        if any((_WORD.findall(b.lower()) or [""])[0] in _NOT_AN_ITEM for b in bare[1:]):
            return "not_a_list"
        rest = chunks[:k] + chunks[k + 1 :]
        if carried & (elsewhere | words(", ".join(rest))):
            return "item_restated"
        joiner = _CONJUNCTION.match(chunks[k])
        if k == len(chunks) - 1 and joiner and not _CONJUNCTION.match(rest[-1]):
            rest[-1] = joiner.group(0) + rest[-1]  # the list keeps its "and" before the (new) last item
        return ", ".join(rest) + end, bare[k]
    return "no_item_carries_it"


@dataclass(frozen=True)
class Support:
    """How one answer supports one statement: cosine per unit and the statement's distinctive words."""

    cos: np.ndarray
    wanted: set[str]
    shares: tuple[float, ...]
    best: int  # the unit with the largest cos + word share

    @classmethod
    def of(cls, cos: np.ndarray, unit_words: Sequence[set[str]], wanted: set[str]) -> Support:
        shares = tuple(word_share(wanted, w) for w in unit_words)
        best = min(range(len(shares)), key=lambda i: (-(float(cos[i]) + shares[i]), i))
        return cls(cos, wanted, shares, best)

    def meta(self) -> dict[str, float]:
        return {"support_cos": round(float(self.cos.max()), 4), "support_words": round(max(self.shares), 4)}

    def untouched_by(self, removed: Sequence[int], unit_words: Sequence[set[str]]) -> bool:
        """Deleting ``removed`` leaves this support whole: best unit, best cosine and every distinctive word kept."""
        if not self.wanted or self.best in removed:
            return False
        kept = [i for i in range(len(unit_words)) if i not in removed]
        if max(float(self.cos[i]) for i in kept) < float(self.cos.max()):
            return False
        left: set[str] = set().union(*(unit_words[i] for i in kept))
        return word_share(self.wanted, left) == word_share(self.wanted, set().union(*unit_words))


def _verdict(response: Response, criterion_id: str, satisfied: bool, kind: str, meta: dict[str, Any]) -> Verdict:
    return Verdict(response_id=response.id, rubric_id=response.rubric_id, criterion_id=criterion_id,
                   status=Status.MET if satisfied else Status.UNMET, judge=f"{JUDGE}{KQA_ANSWERS}/{kind}",
                   template_version=TEMPLATE_VERSION, meta={"construction": f"{KQA_ANSWERS}/{kind}", **meta})


def supervision_rubric_id(question: str) -> str:
    """Distinct from the imported rubric's id (``kqa-...``): this rubric also holds borrowed criteria."""
    return "sup-" + kqa_rubric_id(question)


RowSpec = tuple[str, bool, str, dict[str, Any], str | None]  # (criterion id, satisfied, kind, meta, response text)


@dataclass(frozen=True)
class _Answer:
    """A kept question's answer: its sentences, their MiniLM vectors and content words."""

    item: KqaItem
    units: list[Unit]
    vecs: np.ndarray
    unit_words: list[set[str]]

    def without(self, removed: Sequence[int]) -> str:
        return join_units([u for i, u in enumerate(self.units) if i not in removed])

    def edited(self, index: int, sentence: str) -> str:
        return join_units([Unit(u.line, sentence) if i == index else u for i, u in enumerate(self.units)])


def _drop_blind(items: Sequence[KqaItem], blind: Sequence[str], embed_fn: EmbedFn, near_cos: float,
                ) -> tuple[list[KqaItem], dict[str, np.ndarray], dict[str, Any]]:
    """Items left after the blind drop (exact text, normalised key, then near-duplicate by MiniLM), the vectors of
    every text the construction needs, and the blind report for the manifest."""
    reasons: Counter[str] = Counter()
    dropped: list[dict[str, Any]] = []
    kept: list[KqaItem] = []
    for item in items:
        how = blind_match(item.question, blind)
        if how:
            reasons[how] += 1
            dropped.append({"line": item.line, "question_id": kqa_rubric_id(item.question), "match": how})
        else:
            kept.append(item)
    texts = sorted({u.text for item in kept for u in split_units(item.answer)}
                   | {c.text for item in kept for c in item.rubric.criteria} | {item.question for item in kept}
                   | set(blind))
    matrix = embed_fn(texts)
    vectors = {t: matrix[i] for i, t in enumerate(texts)}
    nearest: float | None = None
    if blind and kept:  # a reworded blind question is still the blind question
        near = (np.stack([vectors[i.question] for i in kept]) @ np.stack([vectors[b] for b in blind]).T).max(axis=1)
        for item, value in zip(kept, near, strict=True):
            if value >= near_cos:
                reasons["near_duplicate"] += 1
                dropped.append({"line": item.line, "question_id": kqa_rubric_id(item.question),
                                "match": "near_duplicate", "cosine": round(float(value), 4)})
        kept = [item for item, value in zip(kept, near, strict=True) if value < near_cos]
        nearest = max((float(v) for v in near if v < near_cos), default=None)
    report = {"file": BLIND_FILE, "listed": len(blind), "dropped": sum(reasons.values()),
              "dropped_by": dict(sorted(reasons.items())), "dropped_rows": dropped, "near_duplicate_cosine": near_cos,
              "kept_max_cosine_to_blind": None if nearest is None else round(nearest, 4)}
    return kept, vectors, report


def _deletion_rows(answer: _Answer, vectors: Mapping[str, np.ndarray], rule: AblationRule, seed: int,
                   skipped: Counter[str]) -> tuple[list[RowSpec], set[str], int]:
    """Positive, ablated, item and kept rows of one answer; the statements that got a negative; how many got a
    sentence ablation (the foreign quota is counted from these)."""
    item, units, unit_words = answer.item, answer.units, answer.unit_words
    chars = [len(u.text) for u in units]
    openers = [(_WORD.findall(u.text.lower()) or [""])[0] for u in units]
    support = {c.id: Support.of(answer.vecs @ vectors[c.text], unit_words, distinctive_words(c.text, item.question))
               for c in item.rubric.criteria}
    rows: list[RowSpec] = []
    touched: dict[str, tuple[tuple[int, ...], str]] = {}  # deletion key -> (units touched, resulting text)
    for c in item.rubric.criteria:
        sp = support[c.id]
        rows.append((c.id, True, "positive", sp.meta(), None))
        plan = plan_ablation(sp.cos, unit_words, sp.wanted, chars, rule, openers)
        if isinstance(plan, str):
            skipped[f"ablation/{plan}"] += 1
            continue
        touched[c.id] = (plan.removed, answer.without(plan.removed))
        meta = {"target_criterion": c.id, "removed": [units[i].text for i in plan.removed],
                "top_cos": plan.top_cos, "top_words": plan.top_words, "residual_cos": plan.residual_cos,
                "residual_words": plan.residual_words}
        rows.append((c.id, False, "ablated", meta, touched[c.id][1]))
    n_ablated = len(touched)
    # list-item deletions: the statement's best sentence loses just the item that carries it
    for c in item.rubric.criteria:
        sp = support[c.id]
        elsewhere: set[str] = set().union(set(), *(w for i, w in enumerate(unit_words) if i != sp.best))
        cut = plan_item(units[sp.best].text, sp.wanted, elsewhere, rule)
        if isinstance(cut, str):
            skipped[f"item/{cut}"] += 1
            continue
        sentence, deleted = cut
        touched[f"{c.id}/item"] = ((sp.best,), answer.edited(sp.best, sentence))
        rows.append((c.id, False, "item", {"target_criterion": c.id, "deleted_item": deleted,
                                            "edited": units[sp.best].text}, touched[f"{c.id}/item"][1]))
    # the same deletions, on statements whose support they kept whole: a shorter answer is not by itself a worse
    # one (without these rows, length alone would separate every full/ablated pair)
    rng = random.Random(f"{seed}:kept:{item.rubric.id}")
    for key, (removed, text) in touched.items():
        cid = key.partition("/")[0]
        untouched = [o for o in sorted(support) if o != cid and support[o].untouched_by(removed, unit_words)]
        for other in rng.sample(untouched, min(rule.kept_per_ablated, len(untouched))):
            rows.append((other, True, "kept", {"removed_for": key, **support[other].meta()}, text))
    return rows, {key.partition("/")[0] for key in touched}, n_ablated


def _supervision_rubric(item: KqaItem, borrowed: Sequence[tuple[KqaItem, Criterion]],
                        provenance: dict[str, Any]) -> tuple[Rubric, list[RowSpec]]:
    """The question's own criteria plus the borrowed ones (``other-<k>``), and the borrowed rows."""
    criteria = list(item.rubric.criteria)
    rows: list[RowSpec] = []
    for k, (source, c) in enumerate(borrowed):
        criteria.append(Criterion(id=f"other-{k}", tier=c.tier, text=c.text, tags=("supervision:foreign",),
                                  weight=1.0 if c.tier is Tier.PROFICIENCY else None))
        rows.append((f"other-{k}", False, "foreign", {"borrowed_from_question_id": kqa_rubric_id(source.question),
                                                      "borrowed_criterion": c.id}, None))
    prof = [i for i, c in enumerate(criteria) if c.tier is Tier.PROFICIENCY]
    weights = normalise_weights([1.0] * len(prof))
    criteria = [c.model_copy(update={"weight": weights[prof.index(i)]}) if i in prof else c
                for i, c in enumerate(criteria)]
    rubric = Rubric(id=supervision_rubric_id(item.question), prompt=item.rubric.prompt, criteria=tuple(criteria),
                    meta=RubricMeta(source=f"supervision:{KQA_ANSWERS}", license=KQA_LICENSE,
                                    extra={**item.rubric.meta.extra, "kqa_rubric_id": item.rubric.id, **provenance}),
                    provenance=Provenance(author=f"promedical.supervision/{KQA_ANSWERS}", author_kind="import"))
    return rubric, rows


def build_kqa(items: Sequence[KqaItem], blind: Sequence[str], embed_fn: EmbedFn, config: SupervisionConfig,
              source_file: str = KQA_FILE, on_progress: Progress | None = None) -> Built:
    """The ``kqa-answers`` construction (module docstring); pure given ``embed_fn``."""
    splits = list(config.fractions)
    built = Built({s: [] for s in splits}, {s: [] for s in splits}, {s: [] for s in splits})
    kept, vectors, built.blind = _drop_blind(items, blind, embed_fn, config.near_blind_cos)
    answers = []
    for item in kept:
        units = split_units(item.answer)
        answers.append(_Answer(item, units, np.stack([vectors[u.text] for u in units]), [words(u.text) for u in units]))
    split_by = [split_of(instruction_key(i.rubric.instruction), config.fractions) for i in kept]
    # topic vector of a question: its text and its answer, for choosing neighbours to borrow statements from
    topic = np.stack([vectors[a.item.question] + a.vecs.mean(axis=0) for a in answers])
    topic /= np.linalg.norm(topic, axis=1, keepdims=True)

    pending: list[_Row] = []
    for n, answer in enumerate(answers):
        item, split = answer.item, split_by[n]
        provenance = {"source_file": source_file, "source_line": item.line,
                      "source_question_id": kqa_rubric_id(item.question), "split": split}
        rows, paired, n_ablated = _deletion_rows(answer, vectors, config.ablation, config.seed, built.skipped)
        borrowed = _borrow(n, kept, split_by, topic, answer.vecs, answer.unit_words, vectors, config.foreign,
                           math.floor(config.foreign.per_ablated * n_ablated + 0.5), config.seed)
        rubric, foreign_rows = _supervision_rubric(item, borrowed, provenance)
        rows += foreign_rows
        built.rubrics[split].append(rubric)
        full = Response.build(rubric.id, PHYSICIAN_MODEL, item.answer, construction=KQA_ANSWERS, **provenance)
        # one deletion can serve several statements (one sentence supports both): one response, several rows
        targets: dict[str, list[str]] = defaultdict(list)
        made_by: dict[str, str] = {}
        for cid, _, kind, _, body in rows:
            if body is not None and kind in ("ablated", "item"):
                targets[body].append(cid)
                made_by.setdefault(body, kind)
        edited = {body: Response.build(rubric.id, ABLATED_MODEL, body, construction=f"{KQA_ANSWERS}/{made_by[body]}",
                                       target_criteria=cids, **provenance) for body, cids in targets.items()}
        built.responses[split].extend([full, *edited.values()])
        seen: set[tuple[str, str]] = set()
        tiers = {c.id: c.tier.value for c in rubric.criteria}
        for cid, satisfied, kind, meta, body in rows:
            target = full if body is None else edited[body]
            if (target.id, cid) in seen:  # two statements' deletions gave the same text
                continue
            seen.add((target.id, cid))
            pending.append(_Row(split, tiers[cid], kind, kind != "positive" or cid in paired,
                                _verdict(target, cid, satisfied, kind, {**provenance, **meta})))
        if on_progress:
            on_progress("questions", 1, len(kept))
    for row in _balance(pending, config.max_satisfied_share, config.seed, built.skipped):
        built.verdicts[row.split].append(row.verdict)
        label = "satisfied" if row.verdict.status is Status.MET else "unsatisfied"
        built.counts[f"{KQA_ANSWERS}/{row.split}/{row.tier}/{row.kind}/{label}"] += 1
    built.counts[f"{KQA_ANSWERS}/questions"] = len(kept)
    return built


@dataclass(frozen=True)
class _Row:
    split: str
    tier: str
    kind: str
    paired: bool  # False: a full-answer positive whose statement got no ablated counterpart
    verdict: Verdict


def _balance(rows: Sequence[_Row], max_share: float, seed: int, skipped: Counter[str]) -> list[_Row]:
    """Drop unpaired full-answer positives (seeded) until satisfied rows are at most ``max_share`` of each split.

    Positives are free (every statement of every answer) while negatives need a clean deletion, so without this
    about two thirds of the rows would be satisfied. Where that is not enough, kept rows go next (seeded); paired
    positives and negatives are never dropped.
    """
    drop: set[int] = set()
    for split in sorted({r.split for r in rows}):  # each split balanced on its own
        mine = [i for i, r in enumerate(rows) if r.split == split]
        met = sum(rows[i].verdict.status is Status.MET for i in mine)
        excess = math.ceil((met - max_share * len(mine)) / (1 - max_share)) if met > max_share * len(mine) else 0
        rng = random.Random(f"{seed}:balance:{split}")
        pools = {"unpaired_positive": [i for i in mine if not rows[i].paired],
                 "kept": [i for i in mine if rows[i].kind == "kept"]}
        for kind, pool in pools.items():
            chosen = rng.sample(pool, min(excess, len(pool)))
            drop.update(chosen)
            excess -= len(chosen)
            skipped[f"balance/{kind}_dropped"] += len(chosen)
    return [r for i, r in enumerate(rows) if i not in drop]


def _borrow(n: int, kept: Sequence[KqaItem], split_by: Sequence[str], topic: np.ndarray, unit_vecs: np.ndarray,
            unit_words: Sequence[set[str]], vectors: Mapping[str, np.ndarray], rule: ForeignRule, want: int,
            seed: int) -> list[tuple[KqaItem, Criterion]]:
    """Statements of the nearest same-split questions that this answer does not support (see ``ForeignRule``)."""
    if want <= 0:
        return []
    item = kept[n]
    answer_words: set[str] = set().union(*unit_words)
    own = np.stack([vectors[c.text] for c in item.rubric.criteria])
    same = [j for j in range(len(kept)) if j != n and split_by[j] == split_by[n]]
    near = sorted(same, key=lambda j: (-float(topic[n] @ topic[j]), kept[j].rubric.id))[: rule.neighbours]
    rng = random.Random(f"{seed}:{item.rubric.id}")
    chosen: list[tuple[KqaItem, Criterion]] = []
    seen: set[str] = set()
    for j in near:
        candidates = list(kept[j].rubric.criteria)
        rng.shuffle(candidates)
        for c in candidates:
            vec = vectors[c.text]
            key = instruction_key(c.text)
            if key in seen:
                continue
            if float((unit_vecs @ vec).max()) >= rule.max_cos or float((own @ vec).max()) >= rule.max_own_cos:
                continue
            if word_share(distinctive_words(c.text, item.question), answer_words) > rule.max_words:
                continue
            seen.add(key)
            chosen.append((kept[j], c))
            break  # one statement per neighbour: spread over topics
        if len(chosen) >= want:
            break
    return chosen


# --- PubMedQA -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PubmedItem:
    pmid: str
    question: str
    conclusion: str  # LONG_ANSWER: the abstract's own conclusion
    decision: str  # final_decision: yes / no (maybe is dropped)


def read_pubmedqa(path: str | Path, test_path: str | Path, skipped: Counter[str]) -> list[PubmedItem]:
    """PQA-L rows that are not in the official test ids (those are the MCQ benchmark's items), yes/no only."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        test = json.loads(Path(test_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: -: -: cannot read PubMedQA ({exc})") from None
    if not isinstance(data, dict) or not isinstance(test, dict):
        raise UserError(f"{path}: -: -: expected a JSON object of PMID -> row (and {test_path} PMID -> label)")
    items = []
    for pmid, row in sorted(data.items()):
        if pmid in test:
            skipped["pubmedqa/benchmark_test_id"] += 1
            continue
        fields = [row.get(k) if isinstance(row, dict) else None for k in ("QUESTION", "LONG_ANSWER", "final_decision")]
        if not all(isinstance(f, str) and f.strip() for f in fields):
            raise UserError(f"{path}: -: {pmid}: QUESTION/LONG_ANSWER/final_decision: missing or empty")
        question, conclusion, decision = (str(f).strip() for f in fields)
        if decision not in STANCES:
            skipped[f"pubmedqa/decision_{decision}"] += 1  # "maybe": no stance holds cleanly
            continue
        items.append(PubmedItem(pmid, question, conclusion, decision))
    return items


def build_pubmedqa(items: Sequence[PubmedItem], blind: Sequence[str], config: SupervisionConfig,
                   source_file: str = PUBMEDQA_FILE) -> Built:
    """The ``pubmedqa-conclusions`` construction: the study's conclusion, on the stance it takes (satisfied) and on
    the opposite stance (unsatisfied). Every rubric gives one row of each label; no pairs (one response each)."""
    splits = list(config.fractions)
    built = Built({s: [] for s in splits}, {s: [] for s in splits}, {s: [] for s in splits})
    reasons: Counter[str] = Counter()
    for item in items:
        how = blind_match(item.question, blind)
        if how:
            reasons[how] += 1
            continue
        split = split_of(instruction_key(item.question), config.fractions)
        provenance = {"source_file": source_file, "source_question_id": f"pubmedqa-{item.pmid}", "split": split}
        criteria = tuple(Criterion(id=f"answers-{stance}", tier=Tier.PROFICIENCY, text=text, weight=0.5)
                         for stance, text in STANCES.items())
        rubric = Rubric(id=f"sup-pubmedqa-{item.pmid}", prompt=(Message(role="user", content=item.question),),
                        criteria=criteria, meta=RubricMeta(source=f"supervision:{PUBMEDQA}", license="MIT",
                                                           extra={"pmid": item.pmid, **provenance}),
                        provenance=Provenance(author=f"promedical.supervision/{PUBMEDQA}", author_kind="import"))
        response = Response.build(rubric.id, PUBMEDQA_MODEL, item.conclusion, construction=PUBMEDQA, **provenance)
        built.rubrics[split].append(rubric)
        built.responses[split].append(response)
        for stance in STANCES:
            satisfied = stance == item.decision
            kind = "agrees" if satisfied else "opposite"
            built.verdicts[split].append(Verdict(
                response_id=response.id, rubric_id=rubric.id, criterion_id=f"answers-{stance}",
                status=Status.MET if satisfied else Status.UNMET, judge=f"{JUDGE}{PUBMEDQA}/{kind}",
                template_version=TEMPLATE_VERSION,
                meta={"construction": f"{PUBMEDQA}/{kind}", "decision": item.decision, **provenance}))
            built.counts[f"{PUBMEDQA}/{split}/proficiency/{kind}/{'satisfied' if satisfied else 'unsatisfied'}"] += 1
    built.counts[f"{PUBMEDQA}/questions"] = sum(len(r) for r in built.rubrics.values())
    built.blind = {"file": BLIND_FILE, "dropped": sum(reasons.values()), "dropped_by": dict(sorted(reasons.items()))}
    return built


# --- audit and sanity -------------------------------------------------------------------------------------------

def audit_splits(rubrics_by_split: Mapping[str, Sequence[Rubric]], blind: Sequence[str],
                 fractions: Mapping[str, float], borrowed: Mapping[str, Iterable[str]] | None = None) -> dict[str, Any]:
    """No instruction (exact text or normalised key) in two splits or in the blind list; every rubric in the split
    its key hashes to; borrowed criteria only from questions of the same split. ``ok`` says all hold."""
    exact: dict[str, set[str]] = defaultdict(set)
    keyed: dict[str, set[str]] = defaultdict(set)
    wrong_split = 0
    for split, rubrics in rubrics_by_split.items():
        for r in rubrics:
            exact[r.instruction].add(split)
            keyed[instruction_key(r.instruction)].add(split)
            wrong_split += split_of(instruction_key(r.instruction), fractions) != split
    blind_keys = {instruction_key(b) for b in blind}
    ids_by_split = {s: {str(r.meta.extra.get("source_question_id")) for r in rs} for s, rs in rubrics_by_split.items()}
    cross = 0
    for split, sources in (borrowed or {}).items():
        cross += sum(1 for s in sources if s not in ids_by_split.get(split, set()))
    report = {
        "instructions": len(keyed),
        "exact_text_in_two_splits": sum(len(v) > 1 for v in exact.values()),
        "normalised_key_in_two_splits": sum(len(v) > 1 for v in keyed.values()),
        "blind_exact_text_present": sum(t in blind for t in exact),
        "blind_normalised_key_present": sum(k in blind_keys for k in keyed),
        "rubrics_in_wrong_split": wrong_split,
        "borrowed_from_other_split": cross,
    }
    report["ok"] = not any(v for k, v in report.items() if k != "instructions")
    return report


def lexical_sanity(responses: Sequence[Response], verdicts: Sequence[Verdict], rubrics: Sequence[Rubric],
                   threshold: float = 0.5) -> dict[str, Any]:
    """Pointwise accuracy of the lexical baseline (``lexical:<threshold>``) per construction and row kind
    (``kqa-answers/item``, ...): how easy the rows are."""
    texts = {r.id: r.text for r in responses}
    criteria = {(r.id, c.id): c.text for r in rubrics for c in r.criteria}
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for v in verdicts:
        predicted = lexical_score(texts[v.response_id], criteria[(v.rubric_id, v.criterion_id)]) >= threshold
        for key in ("all", str(v.meta.get("construction", ""))):
            totals[key] += 1
            hits[key] += predicted == (v.status is Status.MET)
    return {k: {"accuracy": round(hits[k] / totals[k], 4), "n": totals[k]} for k in sorted(totals)}


# --- IO edges ---------------------------------------------------------------------------------------------------

def read_split_dir(folder: Path) -> tuple[list[Rubric], list[Response], list[Verdict]]:
    return (read_rubrics([folder / RUBRICS_FILE]), read_responses(folder / RESPONSES_FILE),
            read_verdicts(folder / VERDICTS_FILE))


def build_supervision(shared: str | Path, out: str | Path, constructions: Sequence[str] = CONSTRUCTIONS,
                      config: SupervisionConfig | None = None, embed_fn: EmbedFn | None = None,
                      on_progress: Progress | None = None) -> dict[str, Any]:
    """Build the constructions from ``shared`` (the data folder) into ``out/<split>/`` labelled sets, audit what
    was written, and write ``out/supervision.manifest.json``. Returns the manifest's summary."""
    from promedical.runs import write_manifest

    config = config or SupervisionConfig()
    unknown = [c for c in constructions if c not in CONSTRUCTIONS]
    if unknown or not constructions:
        raise UserError(f"--constructions: unknown {unknown or constructions}; known: {', '.join(CONSTRUCTIONS)}")
    root, target = Path(shared), Path(out)
    blind_path = root / BLIND_FILE
    needed = {KQA_ANSWERS: [root / KQA_FILE], PUBMEDQA: [root / PUBMEDQA_FILE, root / PUBMEDQA_TEST_FILE]}
    inputs = [blind_path, *(p for c in constructions for p in needed[c])]
    for path in inputs:
        if not path.is_file():
            raise UserError(f"{path}: -: -: missing from the shared data folder (the blind-test list and each "
                            "construction's source are needed)")
    if embed_fn is None:
        from promedical.data.embeddings import embed

        def embed_fn(texts: Sequence[str]) -> np.ndarray:
            def done(n: int) -> None:
                if on_progress:
                    on_progress("embedding", n, len(texts))
            return embed(texts, on_done=done)

    blind = read_blind(blind_path)
    parts: dict[str, Built] = {}
    if KQA_ANSWERS in constructions:
        parts[KQA_ANSWERS] = build_kqa(read_kqa(root / KQA_FILE), blind, embed_fn, config, KQA_FILE, on_progress)
    if PUBMEDQA in constructions:
        skipped: Counter[str] = Counter()
        parts[PUBMEDQA] = build_pubmedqa(read_pubmedqa(root / PUBMEDQA_FILE, root / PUBMEDQA_TEST_FILE, skipped),
                                         blind, config)
        parts[PUBMEDQA].skipped.update(skipped)
    for split in config.fractions:
        folder = target / split
        write_jsonl(folder / RUBRICS_FILE, [r for b in parts.values() for r in b.rubrics[split]])
        write_jsonl(folder / RESPONSES_FILE, [r for b in parts.values() for r in b.responses[split]])
        write_jsonl(folder / VERDICTS_FILE, [v for b in parts.values() for v in b.verdicts[split]])
    # audit and sanity read back what was written: the files are what training will see
    written = {split: read_split_dir(target / split) for split in config.fractions}
    borrowed = {split: [str(v.meta["borrowed_from_question_id"]) for v in verdicts
                        if "borrowed_from_question_id" in v.meta]
                for split, (_, _, verdicts) in written.items()}
    audit = audit_splits({s: w[0] for s, w in written.items()}, blind, config.fractions, borrowed)
    if not audit["ok"]:
        raise UserError(f"{target}: -: -: split audit failed, no manifest written: {audit}")
    sanity = {split: lexical_sanity(w[1], w[2], w[0]) for split, w in written.items()}
    counts = dict(sorted(Counter(k for b in parts.values() for k in b.counts.elements()).items()))
    totals = {split: {"rubrics": len(w[0]), "responses": len(w[1]), "verdicts": len(w[2]),
                      "satisfied": sum(v.status is Status.MET for v in w[2])} for split, w in written.items()}
    config_json = {"constructions": list(constructions), "shared": str(root), "out": str(target),
                   "fractions": dict(config.fractions), "seed": config.seed, "near_blind_cos": config.near_blind_cos,
                   "max_satisfied_share": config.max_satisfied_share,
                   "ablation": vars(config.ablation), "foreign": vars(config.foreign)}
    licenses = {KQA_ANSWERS: {"source": "K-QA (github Itaymanes/K-QA)", "license": KQA_LICENSE},
                PUBMEDQA: {"source": "PubMedQA PQA-L (github pubmedqa/pubmedqa)", "license": "MIT"}}
    blind_report = {c: b.blind for c, b in parts.items()}
    skipped_all = {c: dict(sorted(b.skipped.items())) for c, b in parts.items()}
    manifest = write_manifest(target, "supervision", config_json, inputs=inputs, counts=counts, seed=config.seed,
                              extra={"splits": totals, "blind": blind_report, "audit": audit,
                                     "skipped": skipped_all, "lexical_0.5": sanity,
                                     "licenses": {c: licenses[c] for c in parts}})
    return {"out": str(target), "manifest": str(manifest), "splits": totals,
            "blind_dropped": sum(b.blind["dropped"] for b in parts.values()),
            "blind_dropped_by": {c: b.blind["dropped_by"] for c, b in parts.items()}, "audit_ok": audit["ok"],
            "lexical_0.5_test": sanity.get("test", {}).get("all")}
