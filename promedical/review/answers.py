"""Reviewer operations: list my assignments, show one (blinded), submit labels or a rubric decision.

A reviewer reaches an assignment only through its token and only if it is theirs; any other token is "not found",
so tokens cannot be probed. Every answer is a new ``Submission`` keyed by a client-chosen ``uid``, unique per
reviewer (another reviewer's ids are invisible): sending the same uid with the same answer stores it once and
returns the first acknowledgement, so retries after a lost response are safe; the same uid with a different answer
is refused with 409. Every answer records the rubric revision it was given on. A rubric edit names the revision
it was made on, and so may labels (``revision``): if the rubric changed meanwhile the answer is refused with 409
instead of being read against criteria the reviewer never saw.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from promedical.review import blind
from promedical.review.auth import CurrentUser
from promedical.review.errors import ReviewError
from promedical.review.rounds import DECISIONS, EditError, apply_edits
from promedical.review.store import (
    Assignment,
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
    utcnow,
)
from promedical.rubrics.schema import Rubric

UID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

# The statements every answer runs, built once: constructing a statement and its cache key cost more CPU than
# SQLite spends executing it. They run on the session's connection (Core), so no ORM objects are built.
_MINE = (select(Assignment.id, Assignment.display_order, Task.kind, Task.item_id)
         .join(Task, Task.id == Assignment.task_id)
         .where(Assignment.token == bindparam("token"), Assignment.reviewer_id == bindparam("reviewer")))
_EXISTING = select(Submission.id, Submission.assignment_id, Submission.answer_sha256).where(
    Submission.reviewer_id == bindparam("reviewer"), Submission.uid == bindparam("uid"))
_LATEST = (select(RubricRevision.rubric_json, RubricRevision.number)
           .where(RubricRevision.item_id == bindparam("item")).order_by(RubricRevision.number.desc()).limit(1))
_AT = (select(RubricRevision.rubric_json, RubricRevision.number)
       .where(RubricRevision.item_id == bindparam("item"), RubricRevision.number == bindparam("number")))
_ADD_SUBMISSION = insert(Submission).returning(Submission.id)
_ADD_LABEL = insert(Label)
_COMPLETED = (update(Assignment).where(Assignment.id == bindparam("assignment"))
              .values(completed_at=bindparam("at")))
_LABELS = select(Label.criterion_id, Label.value).where(Label.submission_id == bindparam("submission"))


@dataclass(frozen=True, slots=True)
class Ack:
    uid: str
    duplicate: bool

    def as_dict(self) -> dict[str, Any]:
        return {"ok": True, "uid": self.uid, "duplicate": self.duplicate}


def rubric_at(session: Session, item_id: int, number: int | None = None) -> tuple[Rubric, int]:
    """The rubric of an item at revision ``number`` (default: its latest) and that revision's number."""
    query, params = (_LATEST, {"item": item_id}) if number is None else (_AT, {"item": item_id, "number": number})
    revision = session.connection().execute(query, params).first()
    if revision is None:
        raise ReviewError(404, "no such rubric revision")
    return _parsed(revision.rubric_json), revision.number


@functools.lru_cache(maxsize=512)
def _parsed(rubric_json: str) -> Rubric:
    """A stored rubric, parsed once per distinct text (revisions are never changed, and a ``Rubric`` is frozen):
    every answer checks its criteria against the rubric, and validating it each time cost more than the query."""
    return Rubric.model_validate_json(rubric_json)


def project_models(session: Session, project_id: int) -> list[str]:
    return list(session.scalars(select(ResponseRow.model).where(ResponseRow.project_id == project_id).distinct()))


def project_masker(session: Session, project_id: int) -> blind.Masker:
    """The masker for one project: the shipped names, its responses' model ids and the admin's extra terms."""
    project = session.get(Project, project_id)
    extra = blind.project_terms(project.blind_terms if project is not None else None)
    return blind.masker([*blind.name_variants(project_models(session, project_id)), *extra])


def my_assignments(session: Session, user: CurrentUser) -> list[dict[str, Any]]:
    """The reviewer's own assignments, ordered by token (random), with a masked one-line title each."""
    rows = session.execute(
        select(Assignment, Task).join(Task, Task.id == Assignment.task_id).where(Assignment.reviewer_id == user.id)
    ).all()
    maskers: dict[int, blind.Masker] = {}
    out = []
    for assignment, task in sorted(rows, key=lambda row: row[0].token):
        rubric, _ = rubric_at(session, task.item_id)
        if task.project_id not in maskers:
            maskers[task.project_id] = project_masker(session, task.project_id)
        title = maskers[task.project_id].mask(" ".join(rubric.instruction.split()))[:90]
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
    masker = project_masker(session, task.project_id)
    if task.kind == "rubric":
        return _rubric_payload(session, assignment, task, rubric, number, latest, masker)
    # The reviewer's own last answer is shown only if it was given on the revision they see now.
    labels = {} if latest is None or latest.rubric_revision != number else {
        label.criterion_id: label.value
        for label in session.scalars(select(Label).where(Label.submission_id == latest.id))
    }
    response_a = session.get(ResponseRow, task.response_a)
    assert response_a is not None
    if task.kind == "pointwise":
        return {**blind.pointwise_payload(token, rubric, response_a.text, masker, labels), "revision": number}
    response_b = session.get(ResponseRow, task.response_b)
    assert response_b is not None
    texts = {"a": response_a.text, "b": response_b.text}
    shown = blind.pairwise_payload(token, rubric, texts, assignment.display_order, masker, labels.get(""))
    return {**shown, "revision": number}


def _rubric_payload(
    session: Session, assignment: Assignment, task: Task, rubric: Rubric, number: int, latest: Submission | None,
    masker: blind.Masker,
) -> dict[str, Any]:
    decision = None
    if latest is not None:
        row = session.scalar(select(RubricDecision).where(RubricDecision.submission_id == latest.id))
        if row is not None:
            decision = {"decision": row.decision, "critique": row.critique, "revision": row.revision}
    history = [
        {"revision": rev.number, "author": author or "import", "reason": masker.mask(rev.reason or "") or None,
         "changes": [blind.mask_change(change, masker) for change in json.loads(rev.changes_json)],
         "at": rev.created_at.isoformat()}
        for rev, author in session.execute(
            select(RubricRevision, User.username)
            .outerjoin(User, User.id == RubricRevision.author_id)
            .where(RubricRevision.item_id == task.item_id)
            .order_by(RubricRevision.number)
        ).all()
    ]
    shown = blind.masked_rubric(rubric, masker)  # the drafting model (provenance) stays hidden too
    return {"token": assignment.token, "kind": "rubric", "rubric": shown,
            "revision": number, "history": history, "decision": decision, "choices": list(DECISIONS)}


def _digest(answer: Mapping[str, Any]) -> str:
    """A stable digest of an answer as the client sent it (key order and JSON spacing do not matter)."""
    text = json.dumps(answer, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _replayed(
    session: Session, user: CurrentUser, assignment_id: int, uid: str, digest: str,
    same_as_stored: Callable[[int], bool],
) -> bool:
    """True if ``uid`` already carries this very answer (a retry); raise 409 if it carries another one.

    Ids are looked up among the reviewer's own submissions only, so the answer never depends on what other
    reviewers sent. ``same_as_stored`` compares with a submission stored before answers had digests.
    """
    if not UID.match(uid or ""):
        raise ReviewError(422, "submission uid must be 8-64 characters of letters, digits, '_' or '-'")
    existing = session.connection().execute(_EXISTING, {"reviewer": user.id, "uid": uid}).first()
    if existing is None:
        return False
    if existing.assignment_id != assignment_id:
        raise ReviewError(409, f"submission uid {uid} was already used for another of your assignments; "
                               "send each new answer with a new uid")
    same = existing.answer_sha256 == digest if existing.answer_sha256 else same_as_stored(existing.id)
    if not same:
        raise ReviewError(409, f"submission uid {uid} was already used with a different answer; the first answer "
                               "is kept: send a changed answer with a new uid")
    return True


def _stored_labels(session: Session, submission_id: int) -> dict[str, str]:
    return {row.criterion_id: row.value for row in session.connection().execute(_LABELS, {"submission": submission_id})}


def _check_revision(given: int | None, current: int) -> int:
    """The revision an answer is recorded against: the one the client names, which must still be current."""
    if given is not None and given != current:
        raise ReviewError(409, f"the rubric changed since you opened it (revision {current}, yours {given}); "
                               "reload, read the criteria again and answer again")
    return current


def submit_labels(
    session: Session, user: CurrentUser, token: str, uid: str, answers: Mapping[str, str],
    revision: int | None = None,
) -> Ack:
    """Store a pointwise (criterion id -> met/unmet, every criterion) or pairwise (``answer``: 1/2/tie) answer.

    ``revision`` is the rubric revision the reviewer saw; without it the answer is recorded against the current
    revision.
    """
    # Columns and Core statements, not ORM objects: this is the path every answer takes.
    conn = session.connection()
    mine = conn.execute(_MINE, {"token": token, "reviewer": user.id}).first()
    if mine is None:
        raise ReviewError(404, "no such assignment")
    if mine.kind == "rubric":
        raise ReviewError(422, "this assignment takes a rubric decision, not labels")
    digest = _digest({"kind": "labels", "answers": dict(answers), "revision": revision})

    def same_as_stored(stored: int) -> bool:
        if mine.kind == "pointwise":
            return _stored_labels(session, stored) == dict(answers)
        try:
            given = blind.canonical_pair_answer(mine.display_order, str(answers.get("answer", "")))
        except ValueError:
            return False
        return _stored_labels(session, stored) == {"": given}

    if _replayed(session, user, mine.id, uid, digest, same_as_stored):
        return Ack(uid, duplicate=True)
    rubric, current = rubric_at(session, mine.item_id)
    number = _check_revision(revision, current)
    if mine.kind == "pointwise":
        ids = [c.id for c in rubric.criteria]
        missing = [i for i in ids if i not in answers]
        extra = sorted(set(answers) - set(ids))
        if extra:
            # never repeat what the client invented (ids, values): name only what the rubric itself holds
            raise ReviewError(422, f"unknown criterion id(s): {len(extra)} answer(s) name no criterion of this rubric")
        if missing:
            raise ReviewError(422, f"missing answer for criterion {missing[0]} ({len(missing)} unanswered)")
        bad = [i for i in ids if answers[i] not in blind.POINT_ANSWERS]
        if bad:
            raise ReviewError(422, f"criterion {bad[0]}: answer must be met or unmet")
        values = {i: answers[i] for i in ids}
    else:
        try:
            values = {"": blind.canonical_pair_answer(mine.display_order, str(answers.get("answer", "")))}
        except ValueError as exc:
            raise ReviewError(422, str(exc)) from None
    now = utcnow()
    submission_id = conn.execute(_ADD_SUBMISSION, {
        "uid": uid, "assignment_id": mine.id, "reviewer_id": user.id, "rubric_revision": number,
        "answer_sha256": digest, "created_at": now}).scalar_one()
    conn.execute(_ADD_LABEL, [{"submission_id": submission_id, "criterion_id": k, "value": v}
                              for k, v in values.items()])
    conn.execute(_COMPLETED, {"assignment": mine.id, "at": now})
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
        raise ReviewError(422, f"decision must be one of {', '.join(DECISIONS)}")
    digest = _digest({"kind": "decision", "decision": decision, "base_revision": base_revision,
                      "critique": critique.strip(), "reason": reason.strip(),
                      "edits": {k: dict(v) for k, v in (edits or {}).items()} if decision == "edit" else {}})

    def same_as_stored(stored: int) -> bool:
        row = session.scalar(select(RubricDecision).where(RubricDecision.submission_id == stored))
        return row is not None and (row.decision, row.critique) == (decision, critique.strip() or None)

    if _replayed(session, user, assignment.id, uid, digest, same_as_stored):
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
        shown = project_masker(session, task.project_id)
        revision = _save_edit(session, user, item, base_revision, edits or {}, reason, shown)
    submission = Submission(uid=uid, assignment_id=assignment.id, reviewer_id=user.id, rubric_revision=base_revision,
                            answer_sha256=digest)
    session.add(submission)
    session.flush()
    session.add(RubricDecision(submission_id=submission.id, decision=decision, critique=critique.strip() or None,
                               revision=revision))
    assignment.completed_at = utcnow()
    return Ack(uid, duplicate=False)


def _unmasked(edits: Mapping[str, Mapping[str, Any]], current: Rubric, masker: blind.Masker
              ) -> dict[str, dict[str, Any]]:
    """Edits with every text the reviewer sent back exactly as it was shown (masked) replaced by the stored text.

    The edit form shows criterion texts masked; sending one back unchanged must not write ``[model]`` into it.
    """
    stored = {c.id: c.text for c in current.criteria}
    out: dict[str, dict[str, Any]] = {}
    for cid, fields in edits.items():
        out[cid] = dict(fields)
        text = fields.get("text")
        if cid in stored and isinstance(text, str) and text.strip() == masker.mask(stored[cid]).strip():
            out[cid]["text"] = stored[cid]
    return out


def _save_edit(
    session: Session, user: CurrentUser, item: RubricItem, base: int, edits: Mapping[str, Mapping[str, Any]],
    reason: str, masker: blind.Masker,
) -> int:
    original, _ = rubric_at(session, item.id, 0)
    current, _ = rubric_at(session, item.id, base)
    edits = _unmasked(edits, current, masker)
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
