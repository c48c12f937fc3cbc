"""The review web app: FastAPI with server-rendered pages and a JSON API over the same operations.

``create_app(url)`` migrates the database to the latest schema and returns the app; ``promedical review serve``
runs it under uvicorn. Every write is committed before the response is sent, so an acknowledged answer survives a
crash of the server; answers that arrive together share one commit (``commits.py``). Cookies are ``Secure`` unless
``secure_cookies=False`` (plain-HTTP use on loopback only); a failed login costs no write and waits for a place in
the login throttle (``throttle.py``), not in a transaction; it is answered ``failed_login_delay`` seconds after it
arrived, whatever the reason, so the time of the answer says nothing about whether the name exists.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from promedical.review import auth, migrate, security
from promedical.review.admin_routes import router as admin_router
from promedical.review.commits import GroupCommit
from promedical.review.errors import ReviewError
from promedical.review.reviewer_routes import router as reviewer_router
from promedical.review.store import Database
from promedical.review.throttle import Busy, DeviceCookies, HashGate, LoginThrottle
from promedical.review.web import LoginRequired, db_of, error_response, form_dict, is_api, render

log = logging.getLogger(__name__)
MAX_USERNAME_INPUT = 64


FAILED_LOGIN_DELAY = 1.0  # seconds before a failed or refused login is answered
DEVICE_COOKIE = "pm_device"  # set at a successful login; sent back only to /login
DEVICE_DAYS = 30


def create_app(url: str, *, run_migrations: bool = True, secure_cookies: bool = True,
               gate: HashGate | None = None, throttle: LoginThrottle | None = None,
               failed_login_delay: float = FAILED_LOGIN_DELAY) -> FastAPI:
    database = Database(url)
    if run_migrations:
        migrate.upgrade(database.engine)
    with database.write() as session:
        auth.purge_expired(session)
    app = FastAPI(title="ProMedical review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.db = database
    app.state.commits = GroupCommit(database)
    app.state.secure_cookies = secure_cookies
    app.state.gate = gate or HashGate()
    # Browsers that logged in here before get their own small budget, so a flood that fills the shared one does
    # not keep their owners out.
    app.state.trusted_gate = HashGate(concurrency=1, rate=1.0, burst=2)
    app.state.throttle = throttle or LoginThrottle()
    app.state.devices = DeviceCookies()
    app.add_middleware(security.BodyLimit, refuse=error_response)
    app.add_middleware(security.SecurityHeaders, hsts=secure_cookies)  # outermost: sees every response

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        # Starlette sends this response outside every middleware, so it sets the security headers itself.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        response = error_response(request, 500, "internal error; nothing was saved by this request")
        security.add_headers(response.headers, hsts=secure_cookies)  # type: ignore[arg-type]
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
        return error_response(request, 422, validation_message(exc.errors()))

    @app.exception_handler(Busy)
    async def _busy_login(request: Request, exc: Busy) -> Response:
        # Answered in bulk during a flood, so kept cheap: no template.
        response = error_response(request, 429, exc.message) if is_api(request) else HTMLResponse(
            f"<!doctype html><title>Too many login attempts</title><p>{html.escape(exc.message)}</p>"
            '<p><a href="/login">Back to the login page</a></p>', status_code=429)
        response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return response

    @app.exception_handler(IntegrityError)
    async def _conflict(request: Request, _exc: IntegrityError) -> Response:
        # Two writers raced (e.g. the same uid sent twice at once on PostgreSQL): nothing was stored by this one.
        return error_response(request, 409, "conflicting concurrent write; nothing was saved, retry the request")

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, _exc: OperationalError) -> Response:
        return error_response(request, 503, "the database is busy or unavailable; nothing was saved, retry")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        response = error_response(request, exc.status_code, str(exc.detail))
        if exc.status_code == 413:
            response.headers["connection"] = "close"  # the rest of the body is not read
        return response

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
        # A tarpit: a failed or refused attempt is answered at a fixed time after it arrived. The wait holds no
        # thread and no database connection, slows a scripted flood to a trickle and hides how long the check took.
        answer_at = time.monotonic() + failed_login_delay
        try:
            user_id = await _check_login(request, form.get("username", ""), form.get("password", ""))
        except Busy:
            await asyncio.sleep(max(0.0, answer_at - time.monotonic()))
            raise
        if user_id is None:
            await asyncio.sleep(max(0.0, answer_at - time.monotonic()))
            return render(request, "login.html", {"csrf_token": form.get("csrf_token"), "user": None,
                                                  "error": "wrong username or password"}, 401)

        def _open() -> str:
            with database.write() as session:
                return auth.open_session(session, user_id)

        token = await run_in_threadpool(_open)
        redirect = RedirectResponse("/", status_code=303)
        redirect.set_cookie(auth.SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure_cookies,
                            max_age=auth.SESSION_HOURS * 3600)
        redirect.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/login")
        redirect.set_cookie(DEVICE_COOKIE, app.state.devices.issue(form.get("username", "")), httponly=True,
                            samesite="strict", secure=secure_cookies, path="/login", max_age=DEVICE_DAYS * 86400)
        return redirect

    app.include_router(reviewer_router)
    app.include_router(admin_router)
    return app


def client_address(request: Request) -> str:
    """The peer address (uvicorn has already applied X-Forwarded-For from trusted proxies only)."""
    return request.client.host if request.client else "unknown"


async def _check_login(request: Request, username: str, password: str) -> int | None:
    """The user id for a right password, else ``None``; raises ``Busy`` (429) while throttled.

    The throttle is asked first, so a refused attempt costs no hashing; the hash is computed with no transaction
    open, so logins never hold the database's write lock.
    """
    database = db_of(request)
    throttle: LoginThrottle = request.app.state.throttle
    address = client_address(request)
    username = username[: MAX_USERNAME_INPUT + 1]
    device = request.app.state.devices.device(request.cookies.get(DEVICE_COOKIE), username)
    gate: HashGate = request.app.state.trusted_gate if device else request.app.state.gate
    throttle.check(address, username, device)

    def _credentials() -> tuple[int, str] | None:
        if not username or len(username) > MAX_USERNAME_INPUT:
            return None
        with database.read() as session:
            return auth.credentials(session, username)

    def _check(found: tuple[int, str]) -> tuple[int | None, str | None]:
        user_id = auth.check_password(found, password)
        return user_id, (auth.upgraded_hash(found[1], password) if user_id is not None else None)

    # A name that does not exist takes the same place in the gate for as long as a real check would, without the
    # hashing: a flood of made-up names then costs no CPU, and the gate answers known and unknown names alike.
    async with gate.slot():
        found = await run_in_threadpool(_credentials)
        if found is None:
            await gate.imitate()
            user_id, new_hash = None, None
        else:
            user_id, new_hash = await gate.run(lambda: _check(found))
    if user_id is None:
        throttle.failed(address, username, device)
        return None
    throttle.succeeded(username, device)
    if new_hash is not None:
        def _store() -> None:
            with database.write() as session:
                auth.set_password_hash(session, user_id, new_hash)

        await run_in_threadpool(_store)
    return user_id


def validation_message(errors: Sequence[Any]) -> str:
    """One line naming the first invalid field; a key the client made up is not echoed back."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "extra_forbidden":
        return "the request has a field this endpoint does not take"
    # Only the top-level name is ours; deeper parts of a location can be keys the client chose.
    where = loc[0] if loc else "request"
    return f"{where}: {first.get('msg', 'invalid')}"
