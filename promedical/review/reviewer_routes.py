"""Reviewer routes: my assignments, one assignment page, submitting answers (HTML forms and JSON API).

JSON bodies are parsed only after the session is checked (a route that declared its body as a parameter would
have FastAPI parse it first), and every free-text field has a cap (``security.py``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from promedical.review import answers, auth
from promedical.review.errors import ReviewError
from promedical.review.rounds import EDITABLE
from promedical.review.security import MAX_ANSWERS, MAX_KEY, MAX_NOTE, MAX_VALUE
from promedical.review.web import commits_of, current_user, db_of, form_dict, render

router = APIRouter()
Key = Annotated[str, StringConstraints(max_length=MAX_KEY)]
Value = Annotated[str, StringConstraints(max_length=MAX_VALUE)]
Note = Annotated[str, StringConstraints(max_length=MAX_NOTE)]
Model = TypeVar("Model", bound=BaseModel)
# What a reviewer may see of a rubric's metadata; the rest (sources, ids, drafting details) stays on the server.
SHOWN_META = ("category", "specialty", "language")


class LabelsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uid: str = Field(min_length=8, max_length=64)
    answers: dict[Key, Value] = Field(max_length=MAX_ANSWERS)
    revision: int | None = Field(default=None, ge=0, le=2**31 - 1)  # the rubric revision the reviewer saw


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uid: str = Field(min_length=8, max_length=64)
    decision: str = Field(max_length=16)
    base_revision: int = Field(ge=0, le=2**31 - 1)
    critique: Note = ""
    reason: Note = ""
    edits: dict[Key, dict[Key, Any]] = Field(default_factory=dict, max_length=MAX_ANSWERS)


async def _body(request: Request, model: type[Model]) -> Model:
    """Parse the JSON body into ``model`` (called after authentication; the size is capped before)."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        raise RequestValidationError(errors) from None


def _check_notes(critique: str, reason: str) -> None:
    for name, value in (("critique", critique), ("reason", reason)):
        if len(value) > MAX_NOTE:
            raise ReviewError(422, f"{name}: at most {MAX_NOTE} characters")


def reviewer_view(data: dict[str, Any]) -> dict[str, Any]:
    """Drop rubric metadata a reviewer has no need for (it can name sources, models or datasets)."""
    rubric = data.get("rubric")
    if isinstance(rubric, dict) and isinstance(rubric.get("meta"), dict):
        rubric["meta"] = {k: v for k, v in rubric["meta"].items() if k in SHOWN_META and isinstance(v, str)}
    return data


@router.get("/")
def home(request: Request, user: auth.CurrentUser = Depends(current_user)) -> Response:
    with db_of(request).read() as session:
        items = answers.my_assignments(session, user)
    return render(request, "home.html", {"user": user, "items": items})


@router.get("/a/{token}")
def assignment_page(request: Request, token: str, user: auth.CurrentUser = Depends(current_user)) -> Response:
    with db_of(request).read() as session:
        data = reviewer_view(answers.payload(session, user, token))
    template = {"rubric": "rubric.html", "pointwise": "pointwise.html", "pairwise": "pairwise.html"}[data["kind"]]
    return render(request, template, {"user": user, "p": data, "uid": uuid.uuid4().hex, "editable": EDITABLE})


def _form_edits(form: dict[str, str], criteria: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    edits: dict[str, dict[str, Any]] = {}
    for i, criterion in enumerate(criteria):
        fields = {f: form[f"{f}_{i}"] for f in EDITABLE if f"{f}_{i}" in form}
        if fields:
            edits[criterion["id"]] = fields
    return edits


def _form_revision(form: dict[str, str]) -> int | None:
    """The rubric revision the page was rendered on (its criteria were numbered for that revision)."""
    raw = form.get("revision", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise ReviewError(422, "revision must be a whole number")
    return int(raw)


@router.post("/a/{token}")
async def submit_form(request: Request, token: str, user: auth.CurrentUser = Depends(current_user)) -> Response:
    form = await form_dict(request)
    _check_notes(form.get("critique", ""), form.get("reason", ""))
    database = db_of(request)

    def _read() -> dict[str, Any]:
        with database.read() as session:
            return answers.payload(session, user, token)

    data = await run_in_threadpool(_read)

    def _run(session: Session) -> None:
        if data["kind"] == "rubric":
            try:
                base = int(form.get("base_revision", ""))
            except ValueError:
                raise ReviewError(422, "base_revision must be a whole number") from None
            decision = form.get("decision", "")
            edits = _form_edits(form, data["rubric"]["criteria"]) if decision == "edit" else {}
            answers.submit_decision(session, user, token, form.get("uid", ""), decision, base_revision=base,
                                    critique=form.get("critique", ""), reason=form.get("reason", ""),
                                    edits=edits)
        elif data["kind"] == "pointwise":
            given = {c["id"]: form[f"crit_{i}"] for i, c in enumerate(data["criteria"]) if f"crit_{i}" in form}
            answers.submit_labels(session, user, token, form.get("uid", ""), given, _form_revision(form))
        else:
            answers.submit_labels(session, user, token, form.get("uid", ""), {"answer": form.get("answer", "")},
                                  _form_revision(form))

    await commits_of(request).run(_run)
    return RedirectResponse("/?saved=1", status_code=303)


@router.get("/api/me")
def me(user: auth.CurrentUser = Depends(current_user)) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "csrf_token": user.csrf_token}


@router.get("/api/assignments")
def api_list(request: Request, user: auth.CurrentUser = Depends(current_user)) -> dict[str, Any]:
    with db_of(request).read() as session:
        return {"assignments": answers.my_assignments(session, user)}


@router.get("/api/assignments/{token}")
def api_get(request: Request, token: str, user: auth.CurrentUser = Depends(current_user)) -> dict[str, Any]:
    with db_of(request).read() as session:
        return reviewer_view(answers.payload(session, user, token))


@router.post("/api/assignments/{token}/labels")
async def api_labels(request: Request, token: str, user: auth.CurrentUser = Depends(current_user)) -> dict[str, Any]:
    body = await _body(request, LabelsIn)

    def _run(session: Session) -> dict[str, Any]:
        return answers.submit_labels(session, user, token, body.uid, body.answers, body.revision).as_dict()

    return await commits_of(request).run(_run)


@router.post("/api/assignments/{token}/decision")
async def api_decision(request: Request, token: str,
                       user: auth.CurrentUser = Depends(current_user)) -> dict[str, Any]:
    body = await _body(request, DecisionIn)

    def _run(session: Session) -> dict[str, Any]:
        return answers.submit_decision(session, user, token, body.uid, body.decision,
                                       base_revision=body.base_revision, critique=body.critique,
                                       reason=body.reason, edits=body.edits).as_dict()

    return await commits_of(request).run(_run)


@router.post("/logout")
def logout(request: Request, user: auth.CurrentUser = Depends(current_user)) -> Response:
    token = request.cookies.get(auth.SESSION_COOKIE, "")
    with db_of(request).write() as session:
        auth.close_session(session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response
