"""Reviewer operations: list my assignments, show one (blinded), submit labels or a rubric decision.

A reviewer reaches an assignment only through its token and only if it is theirs; any other token is "not found",
so tokens cannot be probed. Every answer is a new ``Submission`` keyed by a client-chosen ``uid``: sending the same
uid twice stores it once and returns the first acknowledgement, so retries after a lost response are safe.
A rubric edit names the revision it was made on; if someone else saved a revision meanwhile the edit is refused
with 409 instead of overwriting theirs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from promedical.review import blind
from promedical.review.auth import CurrentUser
from promedical.review.errors import ReviewError
from promedical.review.rounds import DECISIONS, EditError, apply_edits
from promedical.review.store import (
    Assignment,
    Label,
    ResponseRow,
    ReviewRound,
    RubricDecision,
    RubricItem,
    RubricRevision,
    Submission,
    Task,
    User,
    utcnow,
)
from promedical.rubrics.schema import Rubric

UID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True, slots=True)
class Ack:
    uid: str
    duplicate: bool

    def as_dict(self) -> dict[str, Any]:
        return {"ok": True, "uid": self.uid, "duplicate": self.duplicate}


def rubric_at(session: Session, item_id: int, number: int | None = None) -> tuple[Rubric, int]:
    """The rubric of an item at revision ``number`` (default: its latest) and that revision's number."""
    query = select(RubricRevision).where(RubricRevision.item_id == item_id)
    query = query.where(RubricRevision.number == number) if number is not None else query
    revision = session.scalar(query.order_by(RubricRevision.number.desc()).limit(1))
    if revision is None:
        raise ReviewError(404, "no such rubric revision")
    return Rubric.model_validate_json(revision.rubric_json), revision.number


def project_models(session: Session, project_id: int) -> list[str]:
    return list(session.scalars(select(ResponseRow.model).where(ResponseRow.project_id == project_id).distinct()))


def my_assignments(session: Session, user: CurrentUser) -> list[dict[str, Any]]:
    """The reviewer's own assignments, ordered by token (random), with a masked one-line title each."""
    rows = session.execute(
        select(Assignment, Task).join(Task, Task.id == Assignment.task_id).where(Assignment.reviewer_id == user.id)
    ).all()
    masks: dict[int, list[str]] = {}
    out = []
    for assignment, task in sorted(rows, key=lambda row: row[0].token):
        rubric, _ = rubric_at(session, task.item_id)
        if task.project_id not in masks:
            masks[task.project_id] = blind.name_variants(project_models(session, task.project_id))
        title = blind.mask_models(" ".join(rubric.instruction.split())[:90], masks[task.project_id])
        out.append({"token": assignment.token, "kind": task.kind, "title": title,
                    "done": assignment.completed_at is not None})
    return out


def _mine(session: Session, user: CurrentUser, token: str) -> tuple[Assignment, Task]:
    row = session.execute(
        select(Assignment, Task)
        .join(Task, Task.id == Assignment.task_id)
        .where(Assignment.token == token, Assignment.reviewer_id == user.id)
    ).first()
    if row is None:
        raise ReviewError(404, "no such assignment")
    return row[0], row[1]


def _latest_submission(session: Session, assignment_id: int) -> Submission | None:
    return session.scalar(
        select(Submission).where(Submission.assignment_id == assignment_id).order_by(Submission.id.desc()).limit(1)
    )


def payload(session: Session, user: CurrentUser, token: str) -> dict[str, Any]:
    """Everything the reviewer's page or API client receives for one assignment (blinded for adjudication)."""
    assignment, task = _mine(session, user, token)
    rubric, number = rubric_at(session, task.item_id)
    latest = _latest_submission(session, assignment.id)
    if task.kind == "rubric":
        return _rubric_payload(session, assignment, task, rubric, number, latest)
    variants = blind.name_variants(project_models(session, task.project_id))
    labels = {} if latest is None else {
        label.criterion_id: label.value
        for label in session.scalars(select(Label).where(Label.submission_id == latest.id))
    }
    response_a = session.get(ResponseRow, task.response_a)
    assert response_a is not None
    if task.kind == "pointwise":
        return blind.pointwise_payload(token, rubric, response_a.text, variants, labels)
    response_b = session.get(ResponseRow, task.response_b)
    assert response_b is not None
    texts = {"a": response_a.text, "b": response_b.text}
    return blind.pairwise_payload(token, rubric, texts, assignment.display_order, variants, labels.get(""))


def _rubric_payload(
    session: Session, assignment: Assignment, task: Task, rubric: Rubric, number: int, latest: Submission | None
) -> dict[str, Any]:
    decision = None
    if latest is not None:
        row = session.scalar(select(RubricDecision).where(RubricDecision.submission_id == latest.id))
        if row is not None:
            decision = {"decision": row.decision, "critique": row.critique, "revision": row.revision}
    history = [
        {"revision": rev.number, "author": author or "import", "reason": rev.reason,
         "changes": json.loads(rev.changes_json), "at": rev.created_at.isoformat()}
        for rev, author in session.execute(
            select(RubricRevision, User.username)
            .outerjoin(User, User.id == RubricRevision.author_id)
            .where(RubricRevision.item_id == task.item_id)
            .order_by(RubricRevision.number)
        ).all()
    ]
    shown = rubric.model_dump(mode="json", exclude={"provenance"})  # the drafting model stays hidden too
    return {"token": assignment.token, "kind": "rubric", "rubric": shown,
            "revision": number, "history": history, "decision": decision, "choices": list(DECISIONS)}


def _begin_submission(session: Session, assignment: Assignment, uid: str) -> Submission | None:
    """Return the stored submission if ``uid`` was already acknowledged for this assignment, else add it."""
    if not UID.match(uid or ""):
        raise ReviewError(422, "submission uid must be 8-64 characters of letters, digits, '_' or '-'")
    existing = session.scalar(select(Submission).where(Submission.uid == uid))
    if existing is not None:
        if existing.assignment_id != assignment.id:
            raise ReviewError(409, "submission uid already used for another assignment")
        return existing
    return None


def submit_labels(session: Session, user: CurrentUser, token: str, uid: str, answers: Mapping[str, str]) -> Ack:
    """Store a pointwise (criterion id -> met/unmet, every criterion) or pairwise (``answer``: 1/2/tie) answer."""
    assignment, task = _mine(session, user, token)
    if task.kind == "rubric":
        raise ReviewError(422, "this assignment takes a rubric decision, not labels")
    if _begin_submission(session, assignment, uid) is not None:
        return Ack(uid, duplicate=True)
    if task.kind == "pointwise":
        rubric, _ = rubric_at(session, task.item_id)
        ids = [c.id for c in rubric.criteria]
        missing = [i for i in ids if i not in answers]
        extra = sorted(set(answers) - set(ids))
        if extra:
            raise ReviewError(422, f"unknown criterion id(s): {', '.join(extra)}")
        if missing:
            raise ReviewError(422, f"missing answer for criterion {missing[0]} ({len(missing)} unanswered)")
        bad = [i for i in ids if answers[i] not in blind.POINT_ANSWERS]
        if bad:
            raise ReviewError(422, f"criterion {bad[0]}: answer must be met or unmet, got {answers[bad[0]]!r}")
        values = {i: answers[i] for i in ids}
    else:
        try:
            values = {"": blind.canonical_pair_answer(assignment.display_order, str(answers.get("answer", "")))}
        except ValueError as exc:
            raise ReviewError(422, str(exc)) from None
    submission = Submission(uid=uid, assignment_id=assignment.id)
    session.add(submission)
    session.flush()
    session.add_all(Label(submission_id=submission.id, criterion_id=k, value=v) for k, v in values.items())
    assignment.completed_at = utcnow()
    return Ack(uid, duplicate=False)


def submit_decision(
    session: Session, user: CurrentUser, token: str, uid: str, decision: str, *, base_revision: int,
    critique: str = "", reason: str = "", edits: Mapping[str, Mapping[str, Any]] | None = None,
) -> Ack:
    """Accept, edit or reject a rubric; an edit appends a new revision if ``base_revision`` is still current."""
    assignment, task = _mine(session, user, token)
    if task.kind != "rubric":
        raise ReviewError(422, "this assignment takes labels, not a rubric decision")
    if decision not in DECISIONS:
        raise ReviewError(422, f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if _begin_submission(session, assignment, uid) is not None:
        return Ack(uid, duplicate=True)
    item = session.get(RubricItem, task.item_id)
    assert item is not None
    if base_revision != item.revision:
        raise ReviewError(409, f"the rubric changed since you opened it (revision {item.revision}, yours "
                               f"{base_revision}); reload, review the new revision and decide again")
    if decision == "reject" and not critique.strip():
        raise ReviewError(422, "a rejection needs a critique")
    revision = item.revision
    if decision == "edit":
        revision = _save_edit(session, user, item, base_revision, edits or {}, reason)
    submission = Submission(uid=uid, assignment_id=assignment.id)
    session.add(submission)
    session.flush()
    session.add(RubricDecision(submission_id=submission.id, decision=decision, critique=critique.strip() or None,
                               revision=revision))
    assignment.completed_at = utcnow()
    return Ack(uid, duplicate=False)


def _save_edit(
    session: Session, user: CurrentUser, item: RubricItem, base: int, edits: Mapping[str, Mapping[str, Any]],
    reason: str,
) -> int:
    original, _ = rubric_at(session, item.id, 0)
    current, _ = rubric_at(session, item.id, base)
    round_number = session.scalar(select(ReviewRound.number).where(ReviewRound.id == item.round_id))
    try:
        edited, changes = apply_edits(original, current, edits, author=user.username, review_round=round_number,
                                      reason=reason, now=utcnow())
    except EditError as exc:
        raise ReviewError(422, f"edit refused: {exc}") from None
    bumped = session.execute(
        update(RubricItem).where(RubricItem.id == item.id, RubricItem.revision == base).values(revision=base + 1)
    )
    if bumped.rowcount != 1:  # type: ignore[attr-defined]
        raise ReviewError(409, "the rubric changed since you opened it; reload and edit the new revision")
    session.add(RubricRevision(item_id=item.id, number=base + 1, rubric_json=edited.model_dump_json(),
                               author_id=user.id, reason=reason.strip(),
                               changes_json=json.dumps([c.as_dict() for c in changes])))
    return base + 1
