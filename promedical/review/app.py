"""The review web app: FastAPI with server-rendered pages and a JSON API over the same operations.

``create_app(url)`` migrates the database to the latest schema and returns the app; ``promedical review serve``
runs it under uvicorn. Every write is committed before the response is sent, so an acknowledged answer survives
a crash of the server.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from promedical.review import auth, migrate
from promedical.review.admin_routes import router as admin_router
from promedical.review.errors import ReviewError
from promedical.review.reviewer_routes import router as reviewer_router
from promedical.review.store import Database
from promedical.review.web import LoginRequired, db_of, error_response, form_dict, is_api, render


def create_app(url: str, *, run_migrations: bool = True, secure_cookies: bool = False) -> FastAPI:
    database = Database(url)
    if run_migrations:
        migrate.upgrade(database.engine)
    app = FastAPI(title="ProMedical review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.db = database
    app.state.secure_cookies = secure_cookies

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        if is_api(request) or request.method != "GET":
            return error_response(request, 401, "log in first")
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(ReviewError)
    async def _review_error(request: Request, exc: ReviewError) -> Response:
        return error_response(request, exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(request, 422, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(IntegrityError)
    async def _conflict(request: Request, _exc: IntegrityError) -> Response:
        # Two writers raced (e.g. the same uid sent twice at once on PostgreSQL): nothing was stored by this one.
        return error_response(request, 409, "conflicting concurrent write; nothing was saved, retry the request")

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, _exc: OperationalError) -> Response:
        return error_response(request, 503, "the database is busy or unavailable; nothing was saved, retry")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail))

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        with database.read() as session:
            session.execute(text("SELECT 1"))
        return {"ok": True}

    @app.get("/login")
    def login_form(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        response = render(request, "login.html", {"csrf_token": token, "user": None, "error": None})
        response.set_cookie(auth.LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=secure_cookies, path="/login")
        return response

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await form_dict(request)
        if not auth.csrf_matches(request.cookies.get(auth.LOGIN_CSRF_COOKIE), form.get("csrf_token")):
            raise ReviewError(403, "missing or wrong CSRF token; reload the login page and try again")
        token = await _login_user(request, form.get("username", ""), form.get("password", ""))
        if token is None:
            return render(request, "login.html", {"csrf_token": form.get("csrf_token"), "user": None,
                                                  "error": "wrong username or password"}, 401)
        redirect = RedirectResponse("/", status_code=303)
        redirect.set_cookie(auth.SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure_cookies,
                            max_age=auth.SESSION_HOURS * 3600)
        redirect.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/login")
        return redirect

    app.include_router(reviewer_router)
    app.include_router(admin_router)
    return app


async def _login_user(request: Request, username: str, password: str) -> str | None:
    database = db_of(request)

    def _run() -> str | None:
        with database.write() as session:
            user = auth.authenticate(session, username, password)
            return None if user is None else auth.open_session(session, user)

    return await run_in_threadpool(_run)
