"""The one error type review operations raise: an HTTP status and a message a reviewer or admin can act on."""

from __future__ import annotations


class ReviewError(Exception):
    """A refused request: ``status`` is the HTTP code (400, 403, 404, 409, 422), ``message`` says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
