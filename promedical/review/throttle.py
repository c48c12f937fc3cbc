"""Login throttling: exponential backoff per account and per client address, and a global budget for hashing.

Checking a password costs an Argon2 computation (tens of milliseconds of CPU and 64 MiB of memory, on purpose), so
an anonymous flood of logins is a flood of CPU work. Three things bound it:

- ``Backoff`` per client address and per account name (known or not, so a refusal says nothing about which names
  exist): past a few free failures every further failure doubles the wait before the next attempt is even
  considered, up to a cap (for an account, the cap is a lock of several minutes). A refused attempt is answered
  429 with ``Retry-After`` and costs no hashing at all. A successful login clears its account's record.
- ``HashGate``: at most ``concurrency`` password checks at once and at most ``rate`` per second across the whole
  server, so that even a flood from many addresses with many names can take only that much CPU; beyond what fits
  in ``max_wait`` seconds the attempt is answered 429 at once. Waiting happens in the event loop, never in a worker
  thread, so reviewers' requests keep their threads; the checks themselves run in the gate's own threads, which on
  Linux run at the lowest CPU priority, so a reviewer's request wins the CPU over a login.

The records live in the server process (a restart forgets them); they are bounded to ``max_keys`` entries each.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class Busy(Exception):
    """A login attempt refused before any password work; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: float, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.message = message


@dataclass(slots=True)
class _Record:
    failures: int
    last: float
    blocked_until: float


class Backoff:
    """Consecutive failures per key; from the ``free``-th on, each makes the next attempt wait ``base * 2**k`` s
    (k = 0, 1, 2, ...; at most ``cap``).

    A key with no failure for ``forget`` seconds starts afresh.
    """

    def __init__(self, *, free: int, base: float, cap: float, forget: float, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.base, self.cap, self.forget, self.max_keys = free, base, cap, forget, max_keys
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        now = self._clock()
        with self._lock:
            record = self._records.get(key)
            if record is None:
                return 0.0
            if now - record.last > self.forget:
                del self._records[key]
                return 0.0
            return max(0.0, record.blocked_until - now)

    def fail(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            record = self._records.pop(key, None)
            if record is None or now - record.last > self.forget:
                record = _Record(0, now, 0.0)
            record.failures += 1
            record.last = now
            over = record.failures - self.free + 1  # the attempt after the ``free``-th failure already waits
            if over > 0:
                record.blocked_until = now + min(self.cap, self.base * 2 ** min(over - 1, 40))
            self._records[key] = record
            while len(self._records) > self.max_keys:
                self._records.popitem(last=False)  # the longest-quiet key goes first

    def reset(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)


class LoginThrottle:
    """Backoff per client address and per account name; see the module docstring.

    A browser that holds a device cookie for the account (``DeviceCookies``: issued at a successful login) is
    counted apart: neither the address's nor the account's record stops it, only its own failures, so an attacker
    who locks an account by guessing does not lock its owner out of the browser they use.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.addresses = Backoff(free=10, base=1.0, cap=300.0, forget=900.0, clock=clock)
        self.accounts = Backoff(free=5, base=2.0, cap=900.0, forget=3600.0, clock=clock)
        self.devices = Backoff(free=5, base=2.0, cap=900.0, forget=3600.0, clock=clock)

    @staticmethod
    def _account(username: str) -> str:
        return username.strip().lower()[:64]

    def check(self, address: str, username: str, device: str | None = None) -> None:
        """Raise ``Busy`` if this address or this account (or this trusted device) must wait."""
        if device is not None:
            wait = self.devices.wait(device)
        else:
            wait = max(self.addresses.wait(address), self.accounts.wait(self._account(username)))
        if wait > 0:
            raise Busy(wait, f"too many failed logins; try again in {int(wait) + 1} s")

    def failed(self, address: str, username: str, device: str | None = None) -> None:
        if device is not None:
            self.devices.fail(device)
            return
        self.addresses.fail(address)
        self.accounts.fail(self._account(username))

    def succeeded(self, username: str, device: str | None = None) -> None:
        # A success through a trusted device clears only that device: whoever is guessing elsewhere stays locked.
        if device is not None:
            self.devices.reset(device)
        else:
            self.accounts.reset(self._account(username))


class DeviceCookies:
    """Device cookies: ``nonce.mac`` where mac = HMAC(server key, nonce + account name); valid only for that name.

    The key lives in the server process, so a restart makes every device cookie plain again (logins then count
    as from an unknown browser until the next success).
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _mac(self, nonce: str, username: str) -> str:
        message = f"{nonce}\0{username.strip().lower()}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def issue(self, username: str) -> str:
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{self._mac(nonce, username)}"

    def device(self, cookie: str | None, username: str) -> str | None:
        """The device's key for the throttle if ``cookie`` was issued for ``username``, else ``None``."""
        if not cookie or "." not in cookie or len(cookie) > 200:
            return None
        nonce, mac = cookie.split(".", 1)
        return f"{username.strip().lower()}|{nonce}" if hmac.compare_digest(mac, self._mac(nonce, username)) else None


class HashGate:
    """At most ``concurrency`` password checks at a time and ``rate`` per second (token bucket of ``burst``)."""

    def __init__(self, *, concurrency: int = 1, rate: float = 2.0, burst: int = 4, max_wait: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.concurrency, self.rate, self.burst, self.max_wait = concurrency, rate, burst, max_wait
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._waiting = 0
        self._mean = 0.1  # seconds one check holds its slot (moving average)
        self._check_mean = 0.1  # seconds one password check takes (moving average)
        self._executor: ThreadPoolExecutor | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _take_token(self) -> float:
        """Reserve the next token; return how long to wait for it (the bucket may go negative: a queue)."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one password check; raise ``Busy`` when it could not start within ``max_wait`` seconds."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:  # a semaphore belongs to one event loop
            self._semaphore, self._loop = asyncio.Semaphore(self.concurrency), loop
        semaphore = self._semaphore
        delay = self._take_token()
        backlog = self._waiting * self._mean / self.concurrency  # checks queued ahead of this one
        expected = max(delay, backlog)
        if expected > self.max_wait:
            self._tokens += 1.0  # give the reservation back
            raise Busy(expected, "the server is busy checking logins; try again in a few seconds")
        self._waiting += 1
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            await semaphore.acquire()
        finally:
            self._waiting -= 1
        started = self._clock()
        try:
            yield
        finally:
            self._mean = 0.8 * self._mean + 0.2 * (self._clock() - started)
            semaphore.release()

    async def run(self, work: Callable[[], T]) -> T:
        """Run one password check in the gate's own low-priority threads (call it inside ``slot()``)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="password-check",
                                                initializer=_lowest_priority)
        started = self._clock()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        finally:
            self._check_mean = 0.8 * self._check_mean + 0.2 * (self._clock() - started)

    async def imitate(self) -> None:
        """Hold the slot about as long as a real check takes, without doing one (for a name that does not exist)."""
        await asyncio.sleep(self._check_mean)


def _lowest_priority() -> None:
    # On Linux a nice value belongs to a thread, so this lowers only the password-check thread.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
