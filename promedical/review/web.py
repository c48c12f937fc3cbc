"""What every route shares: the database, the current user, CSRF checks, templates and error responses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from promedical.review import auth, security
from promedical.review.commits import GroupCommit
from promedical.review.errors import ReviewError
from promedical.review.store import Database

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
TEMPLATES.env.autoescape = True
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class LoginRequired(Exception):
    """Raised for an anonymous request: HTML pages redirect to the login form, the API answers 401."""


def db_of(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


def commits_of(request: Request) -> GroupCommit:
    """The app's group commit: where answers are written (``commits.py``)."""
    commits: GroupCommit = request.app.state.commits
    return commits


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def current_user(request: Request) -> auth.CurrentUser:
    token = request.cookies.get(auth.SESSION_COOKIE)
    database = db_of(request)

    def _lookup() -> auth.CurrentUser | None:
        with database.read() as session:
            return auth.lookup(session, token)

    user = await run_in_threadpool(_lookup) if token else None
    if user is None:
        raise LoginRequired()
    if request.method not in SAFE_METHODS:
        given = request.headers.get("x-csrf-token")
        if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf_token")
            given = value if isinstance(value, str) else None
        if not auth.csrf_matches(user.csrf_token, given):
            raise ReviewError(403, "missing or wrong CSRF token; reload the page and try again")
    return user


async def admin_user(request: Request) -> auth.CurrentUser:
    user = await current_user(request)
    if not user.is_admin:
        raise ReviewError(403, "admins only")
    return user


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page whose inline style and script carry a fresh nonce that its Content-Security-Policy allows."""
    nonce = security.new_nonce()
    response = TEMPLATES.TemplateResponse(request, name, {**context, "csp_nonce": nonce}, status_code=status)
    response.headers["Content-Security-Policy"] = security.page_csp(nonce)
    return response


def error_response(request: Request, status: int, message: str) -> Response:
    if is_api(request):
        return JSONResponse({"ok": False, "error": message}, status_code=status)
    return render(request, "error.html", {"status": status, "message": message, "user": None}, status)


async def form_dict(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}
