"""Reviewer routes: my assignments, one assignment page, submitting answers (HTML forms and JSON API)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from promedical.review import answers, auth
from promedical.review.errors import ReviewError
from promedical.review.rounds import EDITABLE
from promedical.review.web import current_user, db_of, form_dict, render

router = APIRouter()


class LabelsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uid: str = Field(min_length=8, max_length=64)
    answers: dict[str, str]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uid: str = Field(min_length=8, max_length=64)
    decision: str
    base_revision: int
    critique: str = ""
    reason: str = ""
    edits: dict[str, dict[str, Any]] = Field(default_factory=dict)


@router.get("/")
def home(request: Request, user: auth.CurrentUser = Depends(current_user)) -> Response:
    with db_of(request).read() as session:
        items = answers.my_assignments(session, user)
    return render(request, "home.html", {"user": user, "items": items})


@router.get("/a/{token}")
def assignment_page(request: Request, token: str, user: auth.CurrentUser = Depends(current_user)) -> Response:
    with db_of(request).read() as session:
        data = answers.payload(session, user, token)
    template = {"rubric": "rubric.html", "pointwise": "pointwise.html", "pairwise": "pairwise.html"}[data["kind"]]
    return render(request, template, {"user": user, "p": data, "uid": uuid.uuid4().hex, "editable": EDITABLE})


def _form_edits(form: dict[str, str], criteria: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    edits: dict[str, dict[str, Any]] = {}
    for i, criterion in enumerate(criteria):
        fields = {f: form[f"{f}_{i}"] for f in EDITABLE if f"{f}_{i}" in form}
        if fields:
            edits[criterion["id"]] = fields
    return edits


@router.post("/a/{token}")
async def submit_form(request: Request, token: str, user: auth.CurrentUser = Depends(current_user)) -> Response:
    form = await form_dict(request)
    database = db_of(request)
    def _run() -> None:
        with database.read() as session:
            data = answers.payload(session, user, token)
        with database.write() as session:
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
                answers.submit_labels(session, user, token, form.get("uid", ""), given)
            else:
                answers.submit_labels(session, user, token, form.get("uid", ""), {"answer": form.get("answer", "")})

    await run_in_threadpool(_run)
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
        return answers.payload(session, user, token)


@router.post("/api/assignments/{token}/labels")
def api_labels(request: Request, token: str, body: LabelsIn,
               user: auth.CurrentUser = Depends(current_user)) -> dict[str, Any]:
    with db_of(request).write() as session:
        ack = answers.submit_labels(session, user, token, body.uid, body.answers)
    return ack.as_dict()


@router.post("/api/assignments/{token}/decision")
def api_decision(request: Request, token: str, body: DecisionIn,
                 user: auth.CurrentUser = Depends(current_user)) -> dict[str, Any]:
    with db_of(request).write() as session:
        ack = answers.submit_decision(session, user, token, body.uid, body.decision, base_revision=body.base_revision,
                                      critique=body.critique, reason=body.reason, edits=body.edits)
    return ack.as_dict()


@router.post("/logout")
def logout(request: Request, user: auth.CurrentUser = Depends(current_user)) -> Response:
    token = request.cookies.get(auth.SESSION_COOKIE, "")
    with db_of(request).write() as session:
        auth.close_session(session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response
