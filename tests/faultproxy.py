"""TEST DOUBLE for fault injection: a real HTTP proxy on loopback in front of a real OpenAI-compatible server.

It forwards ``POST .../chat/completions`` to the upstream server and, by a seeded schedule, injects the failures a
judge meets in production instead of forwarding cleanly:

* ``http500`` / ``http503``: an error status with a short body (upstream not called);
* ``timeout``: holds the connection longer than the client's timeout, then closes it (upstream not called);
* ``truncated_body``: forwards, then sends the upstream body cut in half under the full ``Content-Length``;
* ``malformed_content``: forwards, then replaces the model's text with a cut-off or non-JSON answer (HTTP 200);
* ``bad_body``: HTTP 200 whose body is not JSON.

Every request is logged (``log``: kind per request) so tests can check the client's accounting and that only
clean deliveries turned into verdicts. Not a mock of the server: the clean path is the real model.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

FAULTS = ("http500", "http503", "timeout", "truncated_body", "malformed_content", "bad_body")


class FaultProxy:
    """``FaultProxy(upstream, rates={"http500": 0.1, ...}, seed=0)``; use as a context manager; ``.base_url``."""

    def __init__(self, upstream: str, rates: dict[str, float] | None = None, seed: int = 0,
                 schedule: Sequence[str] | None = None, hold_seconds: float = 4.0) -> None:
        unknown = set(rates or {}) | set(schedule or ()) - {"ok"}
        unknown -= set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        self.upstream = upstream.rstrip("/")
        self.rates = dict(rates or {})
        self.schedule = list(schedule or [])
        self.hold_seconds = hold_seconds
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.log: list[str] = []
        self._client = httpx.Client(timeout=600)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = False  # closing waits for handlers in flight (no use of a closed client)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self.log)

    def _next_kind(self) -> str:
        with self._lock:
            index = len(self.log)
            if index < len(self.schedule):
                kind = self.schedule[index]
            else:
                draw, kind = self._rng.random(), "ok"
                for name, rate in sorted(self.rates.items()):
                    if draw < rate:
                        kind = name
                        break
                    draw -= rate
            self.log.append(kind)
            return kind

    def _forward(self, path: str, body: bytes) -> httpx.Response:
        return self._client.post(self.upstream + path.removeprefix("/v1"), content=body,
                                 headers={"content-type": "application/json"})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def do_GET(self) -> None:
                upstream = proxy._client.get(proxy.upstream + self.path.removeprefix("/v1"))
                self._send(upstream.status_code, upstream.content)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                kind = proxy._next_kind()
                if kind in ("http500", "http503"):
                    self._send(int(kind[4:]), b'{"error": "injected fault"}')
                elif kind == "timeout":
                    time.sleep(proxy.hold_seconds)
                    self.close_connection = True
                elif kind == "bad_body":
                    self._send(200, b"<html>upstream exploded</html>")
                else:
                    upstream = proxy._forward(self.path, body)
                    content = upstream.content
                    if kind == "truncated_body":
                        self._send(upstream.status_code, content[: len(content) // 2], length=len(content))
                        self.close_connection = True
                        return
                    if kind == "malformed_content" and upstream.status_code == 200:
                        data = json.loads(content)
                        text = data["choices"][0]["message"]["content"] or ""
                        data["choices"][0]["message"]["content"] = text[: len(text) // 2] or "I cannot answer"
                        content = json.dumps(data).encode()
                    self._send(upstream.status_code, content)

        return Handler

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()
