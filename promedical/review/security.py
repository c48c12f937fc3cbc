"""What guards every request before a route sees it: body size caps and security headers; and the field caps.

``BodyLimit`` refuses a request body over its cap with 413 before anything parses it: at once when the declared
``Content-Length`` is too big, otherwise as soon as the streamed bytes pass the cap. Only the admin's JSONL
imports get the large cap. ``SecurityHeaders`` adds the same headers to every response (the 500 handler adds
them itself, because Starlette answers an unhandled error outside all middleware).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 256 * 1024  # bytes of any request body except an import upload
MAX_UPLOAD = 64 * 1024 * 1024  # bytes of an admin's JSONL import
MAX_CRITERION_TEXT = 2000  # characters of one criterion's text in an edit
MAX_NOTE = 4000  # characters of a reason or critique
MAX_ANSWERS = 200  # entries in one answer or one edit
MAX_KEY = 128  # characters of a criterion id (as in the rubric schema)
MAX_VALUE = 16  # characters of one label value
UPLOAD_PATH = re.compile(r"^/admin/projects/[^/]+/import/[a-z]+$")

HEADERS = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
# Anything that is not a page (JSON, exports, errors without a template) may load nothing at all.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
HSTS = "max-age=31536000; includeSubDomains"


def page_csp(nonce: str) -> str:
    """The policy of a rendered page: its own inline style and script (by nonce), nothing from elsewhere."""
    return (f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; img-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def add_headers(headers: MutableMapping[str, str], *, hsts: bool) -> None:
    """Set the security headers that are not set yet (a page sets its own CSP)."""
    for name, value in HEADERS.items():
        headers[name] = value
    if "content-security-policy" not in headers:
        headers["content-security-policy"] = DEFAULT_CSP
    if hsts:
        headers["strict-transport-security"] = HSTS


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app, self.hsts = app, hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
                wanted: dict[str, str] = {}
                if "content-security-policy" in present:
                    wanted["content-security-policy"] = present["content-security-policy"]
                add_headers(wanted, hsts=self.hsts)
                kept = [(k, v) for k, v in raw if k.decode("latin-1").lower() not in wanted]
                message["headers"] = kept + [(k.encode(), v.encode()) for k, v in wanted.items()]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body too large (the limit here is {limit // 1024} KiB)")


def body_limit(path: str) -> int:
    return MAX_UPLOAD if UPLOAD_PATH.match(path) else MAX_BODY


class BodyLimit:
    """Refuse bodies over ``body_limit(path)`` with 413 before they are parsed (see the module docstring).

    ``refuse(request, status, message)`` renders the refusal like every other error page (the app passes
    ``web.error_response``; web imports this module, so it cannot be imported here)."""

    def __init__(self, app: ASGIApp, refuse: Callable[[Any, int, str], Any]) -> None:
        self.app = app
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit, self.refuse)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)  # answered 413 by the app's HTTP error handler
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, send: Send, limit: int, error_response: Callable[[Any, int, str], Any]) -> None:
    from starlette.requests import Request

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    request: Any = Request(scope, no_body)
    response = error_response(request, 413, BodyTooLarge(limit).detail)
    response.headers["connection"] = "close"  # the unread body is not drained
    await response(scope, no_body, send)
