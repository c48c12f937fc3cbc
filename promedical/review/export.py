"""Results out of the review database: rubric decisions, round pass rates, adjudication labels, agreement.

The rubric-decision export is what the data pipeline reads back (see docs/formats.md, "Review decisions"):
one ``promedical.review_decision/1`` record (``promedical.rubrics.review.ReviewDecision``) per rubric and reviewer,
also split per round for ``promedical data review-in``; beside it one ``promedical.review-outcome/1`` record per
rubric (the settled outcome with the full edit history), the kept rubrics as plain ``Rubric`` records, and one
``promedical.review-round/1`` summary (pass rates) per round. Pointwise expert labels are exported as ``Verdict``
records (judge ``human:<reviewer>``), pairwise ones as ``promedical.review-pairwise/1`` records in canonical a/b
terms.

Every answer is read against the rubric revision it was given on. ``labels.jsonl`` holds every pointwise label with
that revision, the criterion as the reviewer saw it and what the label meant there (``satisfied``/``violated``);
``verdicts.jsonl`` pairs with ``rubrics.jsonl`` (the latest revision), so it holds only the labels whose criterion
still reads the same there (text, tier, polarity). Agreement counts two answers as answers to the same question only
if the criterion read the same for both (pointwise) or they were given on the same revision (pairwise); the judge's
imported verdicts belong to revision 0.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from promedical import __version__
from promedical.io import write_json, write_jsonl
from promedical.review.agreement import PAIR_VALUES, POINT_VALUES, AgreementRow, Rating, agreement
from promedical.review.answers import rubric_at
from promedical.review.rounds import pass_rate, settle
from promedical.review.store import (
    Assignment,
    JudgeVerdict,
    Label,
    Project,
    ResponseRow,
    ReviewRound,
    RubricDecision,
    RubricItem,
    RubricRevision,
    Submission,
    Task,
    User,
)
from promedical.rubrics.records import Status, Verdict
from promedical.rubrics.review import ReviewDecision
from promedical.rubrics.review import pass_rate as decision_pass_rate
from promedical.rubrics.schema import Criterion, Rubric, Tier
from promedical.rubrics.scoring import Order, compare_responses, is_satisfied

OUTCOME_SCHEMA: Literal["promedical.review-outcome/1"] = "promedical.review-outcome/1"
ROUND_SCHEMA: Literal["promedical.review-round/1"] = "promedical.review-round/1"
PAIRWISE_SCHEMA = "promedical.review-pairwise/1"
LABEL_SCHEMA: Literal["promedical.review-label/1"] = "promedical.review-label/1"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReviewerDecision(_Record):
    reviewer: str
    decision: Literal["accept", "edit", "reject"]
    critique: str | None
    revision: int
    at: str


class RevisionRecord(_Record):
    revision: int
    author: str
    reason: str | None
    changes: list[dict[str, Any]]
    at: str


class RubricOutcome(_Record):
    schema_version: Literal["promedical.review-outcome/1"] = OUTCOME_SCHEMA
    project: str
    review_round: int
    rubric_id: str
    rubric_version: int
    decision: Literal["accept", "edit", "reject"]
    critiques: list[str]
    rubric: Rubric | None  # accept: the original; edit: the edited version; reject: null
    decisions: list[ReviewerDecision]
    edits: list[RevisionRecord]


class RoundSummary(_Record):
    schema_version: Literal["promedical.review-round/1"] = ROUND_SCHEMA
    project: str
    review_round: int
    rubrics: int
    decided: int
    accepted: int
    edited: int
    rejected: int
    pass_rate: float | None  # rubrics accepted unchanged / rubrics decided
    usable_rate: float | None  # rubrics kept (accepted or edited) / rubrics decided
    decision_pass_rate: float | None  # accept decisions / decisions (promedical.rubrics.review.pass_rate)


class CriterionShown(_Record):
    text: str
    tier: str
    polarity: str | None


class ExpertLabel(_Record):
    """One pointwise label as given: on which revision, on which wording, and what it meant there."""

    schema_version: Literal["promedical.review-label/1"] = LABEL_SCHEMA
    project: str
    rubric_id: str
    rubric_revision: int  # the revision the reviewer answered on (0 = the imported rubric)
    latest_revision: int
    response_id: str
    criterion_id: str
    reviewer: str
    value: Literal["met", "unmet"]
    criterion: CriterionShown  # as shown on rubric_revision
    criterion_sha: str  # digest of text, tier and polarity: equal digests = the same question
    outcome: Literal["satisfied", "violated", "unsatisfied"]  # the label read under that polarity and tier
    on_latest: bool  # the criterion reads the same on the latest revision (the label is in verdicts.jsonl)
    at: str


class _History:
    """Rubric revisions read once per export: the rubric an answer was given on, and the latest one."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._rubrics: dict[tuple[int, int | None], Rubric] = {}
        self._latest: dict[int, int] = {}

    def rubric(self, item_id: int, number: int | None = None) -> Rubric:
        if number is None:
            number = self.latest(item_id)
        if (item_id, number) not in self._rubrics:
            self._rubrics[(item_id, number)] = rubric_at(self.session, item_id, number)[0]
        return self._rubrics[(item_id, number)]

    def latest(self, item_id: int) -> int:
        if item_id not in self._latest:
            self._latest[item_id] = rubric_at(self.session, item_id)[1]
        return self._latest[item_id]

    def criterion(self, item_id: int, number: int | None, criterion_id: str) -> Criterion | None:
        return next((c for c in self.rubric(item_id, number).criteria if c.id == criterion_id), None)


def criterion_sha(criterion: Criterion) -> str:
    """What makes two criteria the same question: text, tier and polarity (weights do not change a label)."""
    key = [criterion.text, criterion.tier.value, criterion.polarity.value if criterion.polarity else None]
    return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def outcome(criterion: Criterion, value: str) -> Literal["satisfied", "violated", "unsatisfied"]:
    """A met/unmet label read under the criterion's polarity: a met prohibited veto is a violation."""
    if is_satisfied(value == Status.MET.value, criterion.polarity):
        return "satisfied"
    return "violated" if criterion.tier is Tier.VETO else "unsatisfied"


def _iso(value: dt.datetime) -> str:
    return value.replace(microsecond=0).isoformat() + "Z"


def _latest_per_assignment(session: Session, project: Project, kind: str) -> list[tuple[Task, Assignment, str, int]]:
    """(task, assignment, reviewer, latest submission id) for every answered assignment of ``kind``."""
    rows = session.execute(
        select(Task, Assignment, User.username, Submission.id)
        .join(Assignment, Assignment.task_id == Task.id)
        .join(User, User.id == Assignment.reviewer_id)
        .join(Submission, Submission.assignment_id == Assignment.id)
        .where(Task.project_id == project.id, Task.kind == kind)
        .order_by(Submission.id)
    ).all()
    latest: dict[int, tuple[Task, Assignment, str, int]] = {}
    for task, assignment, username, submission_id in rows:
        latest[assignment.id] = (task, assignment, username, submission_id)
    return list(latest.values())


def outcome_records(session: Session, project: Project) -> list[RubricOutcome]:
    records = []
    per_item: dict[int, list[ReviewerDecision]] = defaultdict(list)
    for task, _assignment, username, submission_id in _latest_per_assignment(session, project, "rubric"):
        row = session.scalar(select(RubricDecision).where(RubricDecision.submission_id == submission_id))
        submission = session.get(Submission, submission_id)
        if row is None or submission is None:
            continue
        per_item[task.item_id].append(ReviewerDecision(reviewer=username, decision=row.decision,
                                                       critique=row.critique, revision=row.revision,
                                                       at=_iso(submission.created_at)))
    items = session.execute(
        select(RubricItem, ReviewRound.number)
        .join(ReviewRound, ReviewRound.id == RubricItem.round_id)
        .where(RubricItem.project_id == project.id)
        .order_by(RubricItem.id)
    ).all()
    for item, round_number in items:
        decisions = per_item.get(item.id, [])
        outcome = settle((d.decision for d in decisions), edited=item.revision > 0)
        if outcome is None:
            continue
        edits = [
            RevisionRecord(revision=rev.number, author=author or "-", reason=rev.reason,
                           changes=json.loads(rev.changes_json), at=_iso(rev.created_at))
            for rev, author in session.execute(
                select(RubricRevision, User.username)
                .outerjoin(User, User.id == RubricRevision.author_id)
                .where(RubricRevision.item_id == item.id, RubricRevision.number > 0)
                .order_by(RubricRevision.number)
            ).all()
        ]
        rubric = None if outcome == "reject" else rubric_at(session, item.id)[0]
        records.append(RubricOutcome(
            project=project.name, review_round=round_number, rubric_id=item.rubric_id,
            rubric_version=item.rubric_version, decision=outcome,
            critiques=[d.critique for d in decisions if d.critique], rubric=rubric, decisions=decisions, edits=edits,
        ))
    return records


def reviewer_decisions(session: Session, project: Project) -> list[ReviewDecision]:
    """Each reviewer's latest decision on each rubric, in the pipeline's ``ReviewDecision`` format."""
    out = []
    for task, _assignment, username, submission_id in _latest_per_assignment(session, project, "rubric"):
        row = session.scalar(select(RubricDecision).where(RubricDecision.submission_id == submission_id))
        submission = session.get(Submission, submission_id)
        item = session.get(RubricItem, task.item_id)
        if row is None or submission is None or item is None or item.round_id is None:
            continue
        number = session.scalar(select(ReviewRound.number).where(ReviewRound.id == item.round_id))
        edited = rubric_at(session, item.id, row.revision)[0] if row.decision == "edit" else None
        out.append(ReviewDecision(rubric_id=item.rubric_id, rubric_version=item.rubric_version, round=number or 0,
                                  reviewer=username, decision=row.decision,
                                  critique=row.critique, edited=edited, decided_at=_iso(submission.created_at)))
    return sorted(out, key=lambda d: (d.round, d.rubric_id, d.rubric_version, d.reviewer))


def round_summaries(session: Session, project: Project) -> list[RoundSummary]:
    by_round: dict[int, list[str | None]] = defaultdict(list)
    decided = {(r.review_round, r.rubric_id, r.rubric_version): r.decision for r in outcome_records(session, project)}
    for item, number in session.execute(
        select(RubricItem, ReviewRound.number).join(ReviewRound, ReviewRound.id == RubricItem.round_id)
        .where(RubricItem.project_id == project.id)
    ).all():
        by_round[number].append(decided.get((number, item.rubric_id, item.rubric_version)))
    by_round_decisions: dict[int, list[ReviewDecision]] = defaultdict(list)
    for decision in reviewer_decisions(session, project):
        by_round_decisions[decision.round].append(decision)
    out = []
    for number in sorted(by_round):
        rate = pass_rate(by_round[number])
        out.append(RoundSummary(project=project.name, review_round=number, rubrics=len(by_round[number]),
                                decided=rate.decided, accepted=rate.accepted, edited=rate.edited,
                                rejected=rate.rejected, pass_rate=rate.pass_rate, usable_rate=rate.usable_rate,
                                decision_pass_rate=decision_pass_rate(by_round_decisions[number])))
    return out


def _labels(session: Session, submission_id: int) -> dict[str, str]:
    labels = session.scalars(select(Label).where(Label.submission_id == submission_id))
    return {label.criterion_id: label.value for label in labels}


def expert_labels(session: Session, project: Project) -> list[ExpertLabel]:
    """Every reviewer's latest pointwise labels, each read on the revision it was given on."""
    history = _History(session)
    out = []
    for task, _assignment, username, submission_id in _latest_per_assignment(session, project, "pointwise"):
        response = session.get(ResponseRow, task.response_a)
        submission = session.get(Submission, submission_id)
        assert response is not None and submission is not None
        number, latest = submission.rubric_revision, history.latest(task.item_id)
        rubric = history.rubric(task.item_id, number)
        for criterion_id, value in _labels(session, submission_id).items():
            criterion = history.criterion(task.item_id, number, criterion_id)
            if criterion is None:
                continue  # cannot happen: labels are checked against the revision's criteria when stored
            now = history.criterion(task.item_id, latest, criterion_id)
            out.append(ExpertLabel(
                project=project.name, rubric_id=rubric.id, rubric_revision=number, latest_revision=latest,
                response_id=response.response_id, criterion_id=criterion_id, reviewer=username,
                value="met" if value == "met" else "unmet",
                criterion=CriterionShown(text=criterion.text, tier=criterion.tier.value,
                                         polarity=criterion.polarity.value if criterion.polarity else None),
                criterion_sha=criterion_sha(criterion), outcome=outcome(criterion, value),
                on_latest=now is not None and criterion_sha(now) == criterion_sha(criterion),
                at=_iso(submission.created_at),
            ))
    return out


def expert_verdicts(session: Session, project: Project, labels: list[ExpertLabel] | None = None) -> list[Verdict]:
    """The labels that are verdicts on the latest revision of their rubric (the one ``rubrics.jsonl`` holds)."""
    tokens = {(username, t.response_a): a.token
              for t, a, username, _ in _latest_per_assignment(session, project, "pointwise")}
    responses = {r.response_id: r.id for r in session.scalars(select(ResponseRow)
                                                              .where(ResponseRow.project_id == project.id))}
    return [
        Verdict(response_id=label.response_id, rubric_id=label.rubric_id, criterion_id=label.criterion_id,
                status=Status(label.value), judge=f"human:{label.reviewer}",
                meta={"assignment": tokens.get((label.reviewer, responses.get(label.response_id)), ""),
                      "project": project.name, "rubric_revision": label.rubric_revision,
                      "criterion_sha": label.criterion_sha})
        for label in (expert_labels(session, project) if labels is None else labels)
        if label.on_latest
    ]


def pairwise_records(session: Session, project: Project) -> list[dict[str, Any]]:
    out = []
    for task, assignment, username, submission_id in _latest_per_assignment(session, project, "pairwise"):
        a, b = session.get(ResponseRow, task.response_a), session.get(ResponseRow, task.response_b)
        submission = session.get(Submission, submission_id)
        assert a is not None and b is not None and submission is not None
        rubric, latest = rubric_at(session, task.item_id)
        out.append({"schema_version": PAIRWISE_SCHEMA, "project": project.name, "rubric_id": rubric.id,
                    "response_a": a.response_id, "response_b": b.response_id, "reviewer": username,
                    "answer": _labels(session, submission_id).get(""), "display_order": assignment.display_order,
                    "rubric_revision": submission.rubric_revision, "latest_revision": latest})
    return out


def _judge_statuses(session: Session, response_pk: int) -> dict[str, dict[str, Status]]:
    by_judge: dict[str, dict[str, Status]] = defaultdict(dict)
    for v in session.scalars(select(JudgeVerdict).where(JudgeVerdict.response_pk == response_pk)):
        by_judge[v.judge][v.criterion_id] = Status(v.status)
    return by_judge


def ratings(session: Session, project: Project) -> list[Rating]:
    """Every reviewer answer and every judge answer on the same units, ready for ``agreement``.

    A pointwise unit is a response and a criterion as worded when answered (``<response>:<criterion>@<sha>``), so
    answers on different wordings or polarities are different units; a pairwise unit is a pair on one revision
    (``pair:<task>@r<revision>``). The judge's imported verdicts were given on revision 0.
    """
    history = _History(session)
    out: list[Rating] = []
    seen_units: set[tuple[int, int | None]] = set()
    for task, _a, username, submission_id in _latest_per_assignment(session, project, "pointwise"):
        submission = session.get(Submission, submission_id)
        assert submission is not None
        for criterion_id, value in _labels(session, submission_id).items():
            criterion = history.criterion(task.item_id, submission.rubric_revision, criterion_id)
            if criterion is not None:
                out.append(Rating(f"pointwise/{criterion.tier.value}",
                                  f"{task.response_a}:{criterion_id}@{criterion_sha(criterion)}", username,
                                  POINT_VALUES[value]))
        if (task.response_a or 0, None) not in seen_units and task.response_a is not None:
            seen_units.add((task.response_a, None))
            for judge, statuses in _judge_statuses(session, task.response_a).items():
                for criterion_id, status in statuses.items():
                    criterion = history.criterion(task.item_id, 0, criterion_id)
                    if criterion is not None and status is not Status.UNSCORED:
                        out.append(Rating(f"pointwise/{criterion.tier.value}",
                                          f"{task.response_a}:{criterion_id}@{criterion_sha(criterion)}",
                                          f"judge:{judge}", POINT_VALUES[status.value]))
    for task, _a, username, submission_id in _latest_per_assignment(session, project, "pairwise"):
        answer = _labels(session, submission_id).get("")
        submission = session.get(Submission, submission_id)
        assert submission is not None
        if answer is not None:
            out.append(Rating("pairwise", f"pair:{task.id}@r{submission.rubric_revision}", username,
                              PAIR_VALUES[answer]))
        if (task.id, -1) in seen_units or task.response_a is None or task.response_b is None:
            continue
        seen_units.add((task.id, -1))
        rubric = history.rubric(task.item_id, 0)
        judged_a, judged_b = _judge_statuses(session, task.response_a), _judge_statuses(session, task.response_b)
        for judge in sorted(set(judged_a) & set(judged_b)):
            order = compare_responses(rubric, judged_a[judge], judged_b[judge]).order
            if order is not None:
                value = {Order.A_BETTER: "a", Order.B_BETTER: "b", Order.TIE: "tie"}[order]
                out.append(Rating("pairwise", f"pair:{task.id}@r0", f"judge:{judge}", PAIR_VALUES[value]))
    return out


def project_agreement(session: Session, project: Project, n_boot: int = 1000, seed: int = 0) -> list[AgreementRow]:
    rows = ratings(session, project)
    all_point = [Rating("pointwise/all", r.unit, r.rater, r.value) for r in rows if r.scope.startswith("pointwise/")]
    return agreement(rows + all_point, n_boot=n_boot, seed=seed)


def export_project(session: Session, project: Project, out_dir: Path, n_boot: int = 1000) -> dict[str, int]:
    """Write every export file into ``out_dir`` (each atomically) plus a manifest; returns counts per file."""
    outcomes = outcome_records(session, project)
    decisions = reviewer_decisions(session, project)
    labels = expert_labels(session, project)
    files: dict[str, list[Any]] = {
        "decisions.jsonl": decisions,
        "outcomes.jsonl": outcomes,
        "rubrics.jsonl": [o.rubric for o in outcomes if o.rubric is not None],
        "rounds.jsonl": round_summaries(session, project),
        "labels.jsonl": labels,
        "verdicts.jsonl": expert_verdicts(session, project, labels),
        "pairwise.jsonl": pairwise_records(session, project),
        "agreement.jsonl": project_agreement(session, project, n_boot=n_boot),
    }
    for number in sorted({d.round for d in decisions}):
        files[f"round-{number}.decisions.jsonl"] = [d for d in decisions if d.round == number]
    counts = {name: write_jsonl(out_dir / name, records) for name, records in files.items()}
    write_json(out_dir / "manifest.json", {"project": project.name, "exported_at": _iso(dt.datetime.now(dt.UTC)
               .replace(tzinfo=None)), "promedical": __version__, "files": counts, "n_boot": n_boot,
               "tiers": [t.value for t in Tier],
               "labels_not_on_latest_revision": sum(not label.on_latest for label in labels)})
    return counts
