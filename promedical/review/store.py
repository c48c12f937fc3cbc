"""The review database: SQLAlchemy models and the engine (SQLite in WAL mode by default, PostgreSQL by URL).

Everything a reviewer submits is appended, never updated in place: rubric revisions, submissions, labels and
decisions are new rows with author and time; the imported original is revision 0. The only mutable counters are
``RubricItem.revision`` (the optimistic-concurrency version of a rubric under review) and
``Assignment.completed_at``. The code is dialect-neutral; SQLite gets ``journal_mode=WAL``, ``synchronous=FULL``
and ``BEGIN IMMEDIATE`` for writing transactions so that concurrent writers queue instead of failing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

ROLES = ("admin", "reviewer")
TASK_KINDS = ("rubric", "pointwise", "pairwise")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SessionRow(Base):
    """A login session: the cookie carries a random token, the table keeps only its SHA-256."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    blind_terms: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list of extra names to mask


class ReviewRound(Base):
    __tablename__ = "review_rounds"
    __table_args__ = (UniqueConstraint("project_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RubricItem(Base):
    """One imported rubric in a project; ``revision`` is the number of its current revision (0 = original)."""

    __tablename__ = "rubric_items"
    __table_args__ = (UniqueConstraint("project_id", "rubric_id", "rubric_version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    round_id: Mapped[int | None] = mapped_column(ForeignKey("review_rounds.id"), index=True, nullable=True)
    rubric_id: Mapped[str] = mapped_column(String(256))
    rubric_version: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, default=0)


class RubricRevision(Base):
    """Append-only history of a rubric under review; revision 0 is the imported original."""

    __tablename__ = "rubric_revisions"
    __table_args__ = (UniqueConstraint("item_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("rubric_items.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    rubric_json: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    changes_json: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ResponseRow(Base):
    __tablename__ = "responses"
    __table_args__ = (UniqueConstraint("project_id", "response_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    response_id: Mapped[str] = mapped_column(String(256))
    item_id: Mapped[int] = mapped_column(ForeignKey("rubric_items.id"), index=True)
    model: Mapped[str] = mapped_column(String(256))
    text: Mapped[str] = mapped_column(Text)


class JudgeVerdict(Base):
    __tablename__ = "judge_verdicts"
    __table_args__ = (UniqueConstraint("response_pk", "criterion_id", "judge"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    response_pk: Mapped[int] = mapped_column(ForeignKey("responses.id"), index=True)
    criterion_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    judge: Mapped[str] = mapped_column(String(256))


class Task(Base):
    """A unit of work: review a rubric, label one response per criterion, or compare two responses."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int] = mapped_column(ForeignKey("rubric_items.id"), index=True)
    response_a: Mapped[int | None] = mapped_column(ForeignKey("responses.id"), nullable=True)
    response_b: Mapped[int | None] = mapped_column(ForeignKey("responses.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Assignment(Base):
    """A task given to one reviewer under an opaque token; ``display_order`` records the order they see."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("task_id", "reviewer_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    display_order: Mapped[str] = mapped_column(String(16), default="ab")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Submission(Base):
    """One acknowledged answer; ``uid`` is chosen by the client so a retried request is stored once.

    ``uid`` is unique per reviewer only, so it reveals nothing about other reviewers. ``rubric_revision`` is the
    revision of the rubric the answer was given on (with ``RubricRevision`` it recovers every criterion as shown);
    ``answer_sha256`` is a digest of the answer, so a reused uid with a different answer can be refused.
    """

    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("reviewer_id", "uid", name="uq_submissions_reviewer_uid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(64))
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    rubric_revision: Mapped[int] = mapped_column(Integer)
    answer_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Label(Base):
    """A canonical answer: per criterion ``met``/``unmet`` (pointwise) or ``a``/``b``/``tie`` (pairwise)."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("submission_id", "criterion_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    criterion_id: Mapped[str] = mapped_column(String(128), default="")
    value: Mapped[str] = mapped_column(String(16))


class RubricDecision(Base):
    __tablename__ = "rubric_decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), unique=True)
    decision: Mapped[str] = mapped_column(String(16))
    critique: Mapped[str | None] = mapped_column(Text, nullable=True)
    revision: Mapped[int] = mapped_column(Integer)


def default_url(path: str | Path = "promedical-review.sqlite") -> str:
    return f"sqlite:///{Path(path).resolve()}"


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL, synchronous=FULL, a busy timeout and immediate write transactions."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The engine plus two session factories: ``read()`` and ``write()`` (immediate on SQLite, commits on exit)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that is committed (durably, before the caller acknowledges) or rolled back."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(immediate=True)
            with Session(bind=conn, expire_on_commit=False) as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise

    def dispose(self) -> None:
        self.engine.dispose()
