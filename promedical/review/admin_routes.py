"""Admin routes: projects, accounts, imports, rounds, tasks, assignment, agreement and exports."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from promedical.io import UserError, read_responses, read_rubrics, read_verdicts, to_json_line
from promedical.review import auth, export, projects
from promedical.review.errors import ReviewError
from promedical.review.store import Assignment, Project, ResponseRow, RubricItem, Submission, Task, User
from promedical.review.web import admin_user, db_of, render

router = APIRouter(prefix="/admin")
EXPORTS: dict[str, Callable[..., list[Any]]] = {
    "decisions": export.reviewer_decisions,
    "outcomes": export.outcome_records,
    "rubrics": lambda s, p: [d.rubric for d in export.outcome_records(s, p) if d.rubric is not None],
    "rounds": export.round_summaries,
    "verdicts": export.expert_verdicts,
    "pairwise": export.pairwise_records,
    "agreement": export.project_agreement,
}
PAGE_BOOTSTRAP = 500
WHOLE_NUMBER = re.compile(r"^[0-9]{1,9}$")  # ASCII digits only: str.isdigit() also accepts '²'


def _redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def _project_url(name: str) -> str:
    return f"/admin/projects/{quote(name.strip(), safe='')}"


def _whole_number(form: Any, field: str, default: str) -> int:
    raw = str(form.get(field, "") or default).strip()
    if not WHOLE_NUMBER.match(raw):
        raise ReviewError(422, f"{field} must be a whole number from 0 to 999,999,999")
    return int(raw)


@router.get("")
def admin_home(request: Request, user: auth.CurrentUser = Depends(admin_user)) -> Response:
    with db_of(request).read() as session:
        names = list(session.scalars(select(Project.name).order_by(Project.name)))
        users = list(session.execute(select(User.username, User.role, User.active).order_by(User.username)).all())
    return render(request, "admin.html", {"user": user, "projects": names, "users": users})


@router.post("/projects")
async def new_project(request: Request, user: auth.CurrentUser = Depends(admin_user)) -> Response:
    form = await request.form()
    name = str(form.get("name", ""))

    def _run() -> None:
        with db_of(request).write() as session:
            projects.create_project(session, name)

    await run_in_threadpool(_run)
    return _redirect(_project_url(name))


@router.post("/users")
async def new_user(request: Request, user: auth.CurrentUser = Depends(admin_user)) -> Response:
    form = await request.form()

    def _run() -> None:
        with db_of(request).write() as session:
            try:
                auth.create_user(session, str(form.get("username", "")), str(form.get("password", "")),
                                 str(form.get("role", "reviewer")))
            except UserError as exc:
                raise ReviewError(422, str(exc)) from None

    await run_in_threadpool(_run)
    return _redirect("/admin")


@router.post("/users/{username}/{action}")
async def account_action(request: Request, username: str, action: str,
                         user: auth.CurrentUser = Depends(admin_user)) -> Response:
    """Deactivate or reactivate an account, or log it out everywhere (revoke its sessions)."""
    actions = {"deactivate", "activate", "revoke-sessions"}
    if action not in actions:
        raise ReviewError(404, f"no account action with that name; choose one of {', '.join(sorted(actions))}")

    def _run() -> None:
        with db_of(request).write() as session:
            try:
                if action == "revoke-sessions":
                    auth.revoke_sessions(session, username)
                else:
                    auth.set_active(session, username, action == "activate")
            except UserError as exc:
                raise ReviewError(422, str(exc)) from None

    await run_in_threadpool(_run)
    return _redirect("/admin")


def _summary(session: Any, project: Project) -> dict[str, Any]:
    def count(query: Any) -> int:
        return int(session.scalar(query) or 0)

    tasks = {
        kind: count(select(func.count()).select_from(Task).where(Task.project_id == project.id, Task.kind == kind))
        for kind in ("rubric", "pointwise", "pairwise")
    }
    answered = count(
        select(func.count(func.distinct(Submission.assignment_id)))
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .join(Task, Task.id == Assignment.task_id)
        .where(Task.project_id == project.id)
    )
    return {
        "rubrics": count(select(func.count()).select_from(RubricItem).where(RubricItem.project_id == project.id)),
        "responses": count(select(func.count()).select_from(ResponseRow).where(ResponseRow.project_id == project.id)),
        "tasks": tasks,
        "assignments": count(select(func.count()).select_from(Assignment).join(Task, Task.id == Assignment.task_id)
                             .where(Task.project_id == project.id)),
        "answered": answered,
    }


@router.get("/projects/{name}")
def project_page(request: Request, name: str, user: auth.CurrentUser = Depends(admin_user)) -> Response:
    with db_of(request).read() as session:
        project = projects.project_by_name(session, name)
        context = {"user": user, "project": project, "summary": _summary(session, project),
                   "rounds": export.round_summaries(session, project), "exports": sorted(EXPORTS)}
    return render(request, "project.html", context)


async def _upload_to_temp(upload: Any) -> Path:
    if not isinstance(upload, UploadFile):
        raise ReviewError(422, "attach a JSONL file")
    data = await upload.read()
    handle = tempfile.NamedTemporaryFile(prefix="promedical-upload-", suffix=".jsonl", delete=False)  # noqa: SIM115
    with handle:
        handle.write(data)
    return Path(handle.name)


@router.post("/projects/{name}/import/{what}")
async def import_file(request: Request, name: str, what: str, user: auth.CurrentUser = Depends(admin_user)) -> Response:
    readers = {"rubrics": lambda p: read_rubrics([p]), "responses": read_responses, "verdicts": read_verdicts}
    if what not in readers:
        raise ReviewError(404, f"nothing to import as {what!r}")
    form = await request.form()
    path = await _upload_to_temp(form.get("file"))

    def _run() -> None:
        try:
            records = readers[what](path)
        except UserError as exc:
            shown = getattr(form.get("file"), "filename", None) or "upload"
            raise ReviewError(422, str(exc).replace(str(path), shown)) from None
        finally:
            path.unlink(missing_ok=True)
        with db_of(request).write() as session:
            project = projects.project_by_name(session, name)
            importer: dict[str, Callable[..., int]] = {
                "rubrics": projects.import_rubrics, "responses": projects.import_responses,
                "verdicts": projects.import_verdicts,
            }
            importer[what](session, project, records)

    await run_in_threadpool(_run)
    return _redirect(_project_url(name))


@router.post("/projects/{name}/rounds")
async def new_round(request: Request, name: str, user: auth.CurrentUser = Depends(admin_user)) -> Response:
    form = await request.form()
    batch = _whole_number(form, "batch", "0")

    def _run() -> None:
        with db_of(request).write() as session:
            if projects.open_round(session, projects.project_by_name(session, name), batch or None) is None:
                raise ReviewError(409, "every rubric of this project is already in a round")

    await run_in_threadpool(_run)
    return _redirect(_project_url(name))


@router.post("/projects/{name}/assign")
async def assign(request: Request, name: str, user: auth.CurrentUser = Depends(admin_user)) -> Response:
    form = await request.form()
    kind = str(form.get("kind", ""))
    reviewers = [r.strip() for r in str(form.get("reviewers", "")).split(",") if r.strip()]
    overlap = _whole_number(form, "overlap", "1")

    def _run() -> None:
        with db_of(request).write() as session:
            project = projects.project_by_name(session, name)
            if kind in ("pointwise", "pairwise"):
                projects.create_adjudication_tasks(session, project, kind)
            projects.assign(session, project, kind, projects.reviewers_named(session, reviewers), overlap)

    await run_in_threadpool(_run)
    return _redirect(_project_url(name))


@router.get("/projects/{name}/agreement")
def agreement_page(request: Request, name: str, user: auth.CurrentUser = Depends(admin_user)) -> Response:
    with db_of(request).read() as session:
        project = projects.project_by_name(session, name)
        rows = export.project_agreement(session, project, n_boot=PAGE_BOOTSTRAP)
        rounds = export.round_summaries(session, project)
    return render(request, "agreement.html", {"user": user, "project": project, "rows": rows, "rounds": rounds,
                                              "n_boot": PAGE_BOOTSTRAP})


@router.get("/projects/{name}/export/{what}.jsonl")
def export_file(request: Request, name: str, what: str, user: auth.CurrentUser = Depends(admin_user)) -> Response:
    if what not in EXPORTS:
        raise ReviewError(404, f"no export named {what!r}; choose one of {', '.join(sorted(EXPORTS))}")
    with db_of(request).read() as session:
        records = EXPORTS[what](session, projects.project_by_name(session, name))
    body = "".join(to_json_line(r) + "\n" for r in records)
    filename = quote(f"{name}-{what}.jsonl", safe="")
    return PlainTextResponse(body, media_type="application/x-ndjson",
                             headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"})
