"""Run the review server as a separate process on a free loopback port (for crash tests, browser tests, benchmarks).

The server is the real one (``promedical review serve`` under uvicorn); this module only picks a port, starts the
process, waits until ``/healthz`` answers and stops it again. It serves plain HTTP on loopback, so it passes
``--insecure-cookies`` (a browser or httpx would not send a Secure cookie back over HTTP).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run, exactly like a crash."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def start(db_url: str, port: int | None = None, timeout: float = 60.0, extra: tuple[str, ...] = ()) -> ServerProcess:
    """Start ``promedical review serve`` (plus ``extra`` options) on loopback and wait until it answers."""
    port = port or free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [sys.executable, "-m", "promedical.cli.main", "review", "serve", "--db", db_url, "--host", "127.0.0.1",
         "--port", str(port), "--insecure-cookies", *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=log,
    )
    server = ServerProcess(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"review server exited with {process.returncode}: {err[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.base_url}/healthz", timeout=2.0).status_code == 200:
                return server
        time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"review server did not answer on {server.base_url} within {timeout} s")


@contextlib.contextmanager
def running(db_url: str) -> Iterator[ServerProcess]:
    server = start(db_url)
    try:
        yield server
    finally:
        server.stop()


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(base_url: str, username: str, password: str, timeout: float = 30.0) -> httpx.Client:
    """Log in through the real login form; the client carries the session cookie and the CSRF header."""
    return login_with(httpx.Client(base_url=base_url, timeout=timeout), username, password)


def login_with(client: httpx.Client, username: str, password: str, patience: float = 60.0) -> httpx.Client:
    """Log ``client`` in (any httpx client, including an in-process test client) and set its CSRF header.

    A 429 (the server's login throttle is busy) is retried after its ``Retry-After`` for up to ``patience`` s.
    """
    deadline = time.monotonic() + patience
    while True:
        page = client.get("/login")
        match = CSRF_FIELD.search(page.text)
        if match is None:
            raise RuntimeError("login page has no CSRF field")
        answer = client.post("/login", data={"username": username, "password": password,
                                             "csrf_token": match.group(1)}, follow_redirects=False)
        if answer.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(min(float(answer.headers.get("retry-after", "1")), 5.0))
    if answer.status_code != 303:
        raise RuntimeError(f"login as {username} failed with {answer.status_code}")
    client.headers["X-CSRF-Token"] = client.get("/api/me").json()["csrf_token"]
    return client
