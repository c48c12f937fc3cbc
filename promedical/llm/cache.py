"""A content-keyed SQLite cache of completions and the ``CachedGenerator`` that serves from it.

Key: SHA-256 of the canonical JSON of (generator spec, decoding parameters, chat messages). A judge's rendered
messages contain its template version, the criterion, the prompt and the response, so the key covers all of them;
the audit labels of a request (template version, criterion ids, ...) are stored as columns too, for inspection.

Only successful completions are stored. Each one is committed as soon as its request (or its batch, for batched
local models) finishes, in WAL mode, so a run killed midway loses nothing it already paid for and a re-run with
the same inputs makes model calls only for what is missing. A cached completion comes back with ``cached=True``,
``calls=0`` and zero tokens (the original usage is kept in ``meta["cached_usage"]``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from promedical.hashing import canonical_json
from promedical.llm.protocol import Completion, Generator, Request

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    params TEXT NOT NULL,
    messages TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT,
    template_version TEXT,
    criterion_ids TEXT,
    audit TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(spec: str, request: Request) -> str:
    # What can change the answer, and nothing else: the spec (model and endpoint), the decoding fields and the exact
    # messages. Transport settings (timeout, retries, concurrency) are left out so a re-run with other ones still
    # hits; the template version needs no field of its own because a new template renders different messages.
    payload = {"spec": spec, "params": request.params.cache_fields(), "messages": [dict(m) for m in request.messages]}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


class CompletionCache:
    """The SQLite file. Safe to share between threads of one process and between processes (WAL, busy timeout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens, finish_reason FROM completions WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        text, prompt_tokens, completion_tokens, finish = row
        return Completion(
            text=text,
            finish_reason=finish,
            cached=True,
            calls=0,
            meta={"cache_key": key, "cached_usage": {"prompt_tokens": prompt_tokens,
                                                       "completion_tokens": completion_tokens}},
        )

    def put(self, key: str, spec: str, request: Request, completion: Completion) -> None:
        if not completion.ok or completion.text is None:
            return  # failures are never cached: a re-run tries them again
        audit = dict(request.audit)
        criterion_ids = audit.get("criterion_ids")
        row = (
            key, spec, canonical_json(request.params.cache_fields()),
            canonical_json([dict(m) for m in request.messages]), completion.text,
            completion.prompt_tokens, completion.completion_tokens, completion.finish_reason,
            audit.get("template_version"),
            json.dumps(criterion_ids) if criterion_ids is not None else None,
            canonical_json(audit), time.time(),
        )
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO completions VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedGenerator:
    """Wraps any ``Generator``: answers from the cache when it can, commits every new success at once."""

    def __init__(self, inner: Generator, cache: CompletionCache | str | Path) -> None:
        self.inner = inner
        self.cache = cache if isinstance(cache, CompletionCache) else CompletionCache(cache)
        self.hits = 0  # requests answered from the cache, over this object's life
        self.misses = 0  # requests sent to the model

    @property
    def spec(self) -> str:
        return self.inner.spec

    def generate(
        self, requests: Sequence[Request], on_done: Callable[[int], None] | None = None
    ) -> list[Completion]:
        spec = self.inner.spec
        keys = [cache_key(spec, r) for r in requests]
        results: list[Completion | None] = [self.cache.get(k) for k in keys]
        hits = sum(1 for r in results if r is not None)
        if hits and on_done is not None:
            on_done(hits)
        missing = [i for i, r in enumerate(results) if r is None]
        self.hits += hits
        self.misses += len(missing)
        # Split the misses so each finished piece can be committed before the next one returns: one request per
        # piece for concurrent (HTTP) backends, one batch per piece for batched local models.
        size = max(1, int(getattr(self.inner, "batch_size", 1)))
        workers = max(1, int(getattr(self.inner, "concurrency", 1)))
        pieces = [missing[i : i + size] for i in range(0, len(missing), size)]

        def run(piece: list[int]) -> tuple[list[int], list[Completion]]:
            return piece, self.inner.generate([requests[i] for i in piece])

        def store(piece: list[int], done: list[Completion]) -> None:
            for i, completion in zip(piece, done, strict=True):
                completion.meta.setdefault("cache_key", keys[i])
                self.cache.put(keys[i], spec, requests[i], completion)
                results[i] = completion
            if on_done is not None:
                on_done(len(piece))

        if workers == 1 or len(pieces) <= 1:
            for piece in pieces:
                store(*run(piece))
        else:
            with ThreadPoolExecutor(max_workers=min(workers, len(pieces))) as pool:
                pending: set[Future[tuple[list[int], list[Completion]]]] = {pool.submit(run, p) for p in pieces}
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        store(*future.result())
        return [r for r in results if r is not None]

    def close(self) -> None:
        self.inner.close()
        self.cache.close()

