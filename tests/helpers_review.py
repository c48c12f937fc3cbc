"""Logged-in test clients on one review app (FastAPI's TestClient: the real app, in process), closed together."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from promedical.review.launch import login_with

DEMO_PASSWORD = "review-pass-1"  # what seed_demo gives every account when no passwords are passed


class Clients:
    """``clients("alice")`` is a client logged in as alice; ``clients(None)`` an anonymous one."""

    def __init__(self, app: FastAPI, password: str = DEMO_PASSWORD, **defaults: Any) -> None:
        self.app, self.password, self.defaults = app, password, defaults
        self.opened: list[TestClient] = []

    def __call__(self, user: str | None, **kwargs: Any) -> TestClient:
        client = TestClient(self.app, base_url="https://testserver", **{**self.defaults, **kwargs})
        self.opened.append(client)
        return client if user is None else login_with(client, user, self.password)  # type: ignore[arg-type,return-value]

    def close(self) -> None:
        for client in self.opened:
            client.close()
        self.app.state.db.dispose()
