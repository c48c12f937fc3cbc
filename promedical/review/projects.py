"""Admin operations: projects, imports of rubrics, responses and judge verdicts, rounds, tasks and assignment.

Imports are idempotent (a record already present is skipped) so an interrupted import can simply be re-run.
Assignment gives each task to ``overlap`` distinct reviewers, always choosing the least-loaded ones, and draws a
per-reviewer display order and an opaque token for each assignment.
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from promedical.review import blind
from promedical.review.errors import ReviewError
from promedical.review.store import (
    TASK_KINDS,
    Assignment,
    JudgeVerdict,
    Project,
    ResponseRow,
    ReviewRound,
    RubricItem,
    RubricRevision,
    Task,
    User,
)
from promedical.rubrics.records import Response, Verdict
from promedical.rubrics.schema import Rubric

# Letters (any script), digits, '_', '.', '-' and inner spaces: safe in a URL path, a header and a file name.
PROJECT_NAME = re.compile(r"^\w(?:[\w.-]| (?! ))*$")
MAX_PROJECT_NAME = 128
MAX_BATCH = 1_000_000


def check_project_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_PROJECT_NAME or not PROJECT_NAME.match(name) or name.endswith(" "):
        raise ReviewError(422, f"project name must have 1-{MAX_PROJECT_NAME} characters: letters, digits, '_', "
                               "'.', '-' or single spaces, starting with a letter or digit")
    return name


def create_project(session: Session, name: str) -> Project:
    name = check_project_name(name)
    if session.scalar(select(Project).where(Project.name == name)) is not None:
        raise ReviewError(409, f"project {name!r} already exists")
    project = Project(name=name)
    session.add(project)
    session.flush()
    return project


def project_by_name(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise ReviewError(404, f"no project named {name!r}")
    return project


def import_rubrics(session: Session, project: Project, rubrics: Iterable[Rubric]) -> int:
    added = 0
    for rubric in rubrics:
        exists = session.scalar(
            select(RubricItem.id).where(
                RubricItem.project_id == project.id,
                RubricItem.rubric_id == rubric.id,
                RubricItem.rubric_version == rubric.version,
            )
        )
        if exists is not None:
            continue
        item = RubricItem(project_id=project.id, rubric_id=rubric.id, rubric_version=rubric.version, revision=0)
        session.add(item)
        session.flush()
        session.add(RubricRevision(item_id=item.id, number=0, rubric_json=rubric.model_dump_json(), changes_json="[]"))
        added += 1
    session.flush()
    return added


def _item_for(session: Session, project: Project, rubric_id: str) -> RubricItem | None:
    return session.scalar(
        select(RubricItem)
        .where(RubricItem.project_id == project.id, RubricItem.rubric_id == rubric_id)
        .order_by(RubricItem.rubric_version.desc())
        .limit(1)
    )


def import_responses(session: Session, project: Project, responses: Iterable[Response]) -> int:
    added = 0
    for response in responses:
        item = _item_for(session, project, response.rubric_id)
        if item is None:
            raise ReviewError(422, f"response {response.id}: rubric_id: no rubric {response.rubric_id!r} in project")
        exists = session.scalar(
            select(ResponseRow.id).where(ResponseRow.project_id == project.id, ResponseRow.response_id == response.id)
        )
        if exists is None:
            session.add(ResponseRow(project_id=project.id, response_id=response.id, item_id=item.id,
                                    model=response.model, text=response.text))
            added += 1
    session.flush()
    return added


def import_verdicts(session: Session, project: Project, verdicts: Iterable[Verdict]) -> int:
    rows = session.scalars(select(ResponseRow).where(ResponseRow.project_id == project.id))
    by_id = {r.response_id: r.id for r in rows}
    added = 0
    for verdict in verdicts:
        if verdict.response_id not in by_id:
            raise ReviewError(422, f"verdict {verdict.response_id}: response_id: no such response in project")
        key = (by_id[verdict.response_id], verdict.criterion_id, verdict.judge)
        exists = session.scalar(
            select(JudgeVerdict.id).where(
                JudgeVerdict.response_pk == key[0], JudgeVerdict.criterion_id == key[1], JudgeVerdict.judge == key[2]
            )
        )
        if exists is None:
            session.add(JudgeVerdict(response_pk=key[0], criterion_id=key[1], status=verdict.status.value,
                                     judge=verdict.judge))
            added += 1
    session.flush()
    return added


def open_round(session: Session, project: Project, batch: int | None = None) -> ReviewRound | None:
    """Put the next ``batch`` rubrics not yet in a round into a new round, with one review task each."""
    if batch is not None and not 0 < batch <= MAX_BATCH:
        raise ReviewError(422, f"batch must be between 1 and {MAX_BATCH:,} (or 0 for all remaining rubrics)")
    query = (
        select(RubricItem)
        .where(RubricItem.project_id == project.id, RubricItem.round_id.is_(None))
        .order_by(RubricItem.id)
    )
    items = list(session.scalars(query.limit(batch) if batch else query))
    if not items:
        return None
    last = session.scalar(select(func.max(ReviewRound.number)).where(ReviewRound.project_id == project.id))
    review_round = ReviewRound(project_id=project.id, number=(last or 0) + 1)
    session.add(review_round)
    session.flush()
    for item in items:
        item.round_id = review_round.id
        session.add(Task(project_id=project.id, kind="rubric", item_id=item.id))
    session.flush()
    return review_round


def create_adjudication_tasks(session: Session, project: Project, kind: str) -> int:
    """One pointwise task per response, or one pairwise task per pair of responses to the same rubric."""
    if kind not in ("pointwise", "pairwise"):
        raise ReviewError(422, f"kind must be pointwise or pairwise, got {kind!r}")
    existing = {
        (t.response_a, t.response_b)
        for t in session.scalars(select(Task).where(Task.project_id == project.id, Task.kind == kind))
    }
    responses = list(
        session.scalars(
            select(ResponseRow).where(ResponseRow.project_id == project.id).order_by(ResponseRow.response_id)
        )
    )
    added = 0
    if kind == "pointwise":
        for response in responses:
            if (response.id, None) not in existing:
                session.add(Task(project_id=project.id, kind=kind, item_id=response.item_id, response_a=response.id))
                added += 1
    else:
        by_item: dict[int, list[ResponseRow]] = {}
        for response in responses:
            by_item.setdefault(response.item_id, []).append(response)
        for item_id, group in by_item.items():
            for a, b in itertools.combinations(group, 2):
                if (a.id, b.id) not in existing:
                    session.add(Task(project_id=project.id, kind=kind, item_id=item_id, response_a=a.id,
                                     response_b=b.id))
                    added += 1
    session.flush()
    return added


def reviewers_named(session: Session, names: Sequence[str]) -> list[User]:
    """The reviewer accounts named; admins cannot take review work (they can read every answer), nor can inactive
    accounts."""
    users = list(session.scalars(select(User).where(User.username.in_(names))))
    missing = sorted(set(names) - {u.username for u in users})
    if missing:
        raise ReviewError(422, f"unknown reviewer(s): {', '.join(missing)}")
    admins = sorted(u.username for u in users if u.role == "admin")
    if admins:
        raise ReviewError(422, f"admin account(s) cannot take review work: {', '.join(admins)} (admins see every "
                               "answer, so their own would not be blind); use a reviewer account")
    inactive = sorted(u.username for u in users if not u.active)
    if inactive:
        raise ReviewError(422, f"deactivated account(s): {', '.join(inactive)}")
    return users


def assign(
    session: Session, project: Project, kind: str, reviewers: Sequence[User], overlap: int,
    rng: random.Random | None = None,
) -> int:
    """Give every ``kind`` task of the project to ``overlap`` distinct reviewers (least loaded first)."""
    if kind not in TASK_KINDS:
        raise ReviewError(422, f"kind must be one of {', '.join(TASK_KINDS)}")
    if overlap < 1 or overlap > len(reviewers):
        raise ReviewError(422, f"overlap must be between 1 and the number of reviewers ({len(reviewers)})")
    rng = rng or random.SystemRandom()
    ids = [u.id for u in reviewers]
    load = Counter(
        dict(
            session.execute(
                select(Assignment.reviewer_id, func.count())
                .join(Task, Task.id == Assignment.task_id)
                .where(Task.project_id == project.id, Assignment.reviewer_id.in_(ids))
                .group_by(Assignment.reviewer_id)
            ).all()
        )
    )
    query = select(Task).where(Task.project_id == project.id, Task.kind == kind).order_by(Task.id)
    tasks = list(session.scalars(query))
    added = 0
    for task in tasks:
        have = set(session.scalars(select(Assignment.reviewer_id).where(Assignment.task_id == task.id)))
        candidates = [i for i in ids if i not in have]
        rng.shuffle(candidates)
        candidates.sort(key=lambda i: load[i])
        for reviewer_id in candidates[: max(0, overlap - len(have & set(ids)))]:
            session.add(Assignment(task_id=task.id, reviewer_id=reviewer_id, token=blind.new_token(),
                                   display_order=blind.draw_order(rng, kind)))
            load[reviewer_id] += 1
            added += 1
    session.flush()
    return added
