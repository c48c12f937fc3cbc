"""Accounts, passwords (Argon2id), server-side sessions and per-session CSRF tokens.

The session cookie carries a random token; the database keeps only its SHA-256, so a leaked database does not
leak live sessions. Every state-changing request must echo the session's CSRF token (form field ``csrf_token`` or
header ``X-CSRF-Token``); the login form, which has no session yet, uses a double-submit cookie instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from promedical.io import UserError
from promedical.review.store import ROLES, SessionRow, User, utcnow

SESSION_COOKIE = "pm_session"
LOGIN_CSRF_COOKIE = "pm_login_csrf"
SESSION_HOURS = 12
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_PASSWORD = 8

_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: int
    username: str
    role: str
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(session: Session, username: str, password: str, role: str) -> User:
    """Add an account; raises ``UserError`` for a bad name, short password, unknown role or taken name."""
    if not USERNAME.match(username):
        raise UserError(f"username {username!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise UserError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password for {username!r}: must have at least {MIN_PASSWORD} characters")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise UserError(f"username {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None:
        _hasher.hash(password)  # same work whether or not the name exists
        return None
    return user if verify_password(user.password_hash, password) else None


def open_session(session: Session, user: User) -> str:
    """Create a session row and return the cookie token (shown once, stored hashed)."""
    token = secrets.token_urlsafe(32)
    session.add(
        SessionRow(
            token_hash=_token_hash(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=utcnow() + dt.timedelta(hours=SESSION_HOURS),
        )
    )
    return token


def close_session(session: Session, token: str) -> None:
    session.execute(delete(SessionRow).where(SessionRow.token_hash == _token_hash(token)))


def lookup(session: Session, token: str | None) -> CurrentUser | None:
    if not token:
        return None
    row = session.execute(
        select(SessionRow, User)
        .join(User, User.id == SessionRow.user_id)
        .where(SessionRow.token_hash == _token_hash(token), User.active.is_(True))
    ).first()
    if row is None:
        return None
    session_row, user = row
    if session_row.expires_at < utcnow():
        return None
    return CurrentUser(id=user.id, username=user.username, role=user.role, csrf_token=session_row.csrf_token)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
