"""Accounts, passwords (Argon2id), server-side sessions and per-session CSRF tokens.

Checking a login is split in two so that the Argon2 work runs outside any transaction: ``credentials`` reads the
stored hash (a short read), ``check_password`` does the hashing with no database connection held, and only a
successful login writes (``open_session``, which also purges expired sessions). Deactivating an account or revoking
its sessions deletes its session rows, so every cookie it had stops working at the next request.

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
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from promedical.io import UserError
from promedical.review import passwords
from promedical.review.store import ROLES, SessionRow, User, utcnow

SESSION_COOKIE = "pm_session"
LOGIN_CSRF_COOKIE = "pm_login_csrf"
SESSION_HOURS = 12
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

# RFC 9106's memory-hard profile (64 MiB, 3 passes) in one lane: a check then keeps to one core, so logins cannot
# occupy every core of a small server at once (argon2 runs one thread per lane). Older hashes are re-hashed with
# these parameters at their next successful login.
_hasher = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=1)
_DUMMY_HASH = _hasher.hash("an account that does not exist")


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
    """Add an account; raises ``UserError`` for a bad name, weak password, unknown role or taken name."""
    if not USERNAME.match(username):
        raise UserError(f"username {username[:64]!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise UserError(f"role {role[:32]!r}: must be one of {', '.join(ROLES)}")
    weakness = passwords.problem(password, username)
    if weakness is not None:
        raise UserError(f"password for {username!r}: {weakness}")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise UserError(f"username {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def credentials(session: Session, username: str) -> tuple[int, str] | None:
    """The id and stored hash of an active account (a short read; no hashing here)."""
    row = session.execute(
        select(User.id, User.password_hash).where(User.username == username, User.active.is_(True))
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def check_password(found: tuple[int, str] | None, password: str) -> int | None:
    """The user id if ``password`` matches; the same Argon2 work whether or not the account exists.

    Call it with no transaction open: it takes tens of milliseconds of CPU.
    """
    if found is None or len(password) > passwords.MAX_LENGTH:
        verify_password(_DUMMY_HASH, password[: passwords.MAX_LENGTH])
        return None
    return found[0] if verify_password(found[1], password) else None


def upgraded_hash(stored_hash: str, password: str) -> str | None:
    """A new hash of a just-verified password if ``stored_hash`` used other parameters, else ``None``."""
    return _hasher.hash(password) if _hasher.check_needs_rehash(stored_hash) else None


def set_password_hash(session: Session, user_id: int, new_hash: str) -> None:
    user = session.get(User, user_id)
    if user is not None:
        user.password_hash = new_hash


def open_session(session: Session, user_id: int) -> str:
    """Create a session row and return the cookie token (shown once, stored hashed); purge expired sessions."""
    purge_expired(session)
    token = secrets.token_urlsafe(32)
    session.add(
        SessionRow(
            token_hash=_token_hash(token),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=utcnow() + dt.timedelta(hours=SESSION_HOURS),
        )
    )
    return token


def close_session(session: Session, token: str) -> None:
    session.execute(delete(SessionRow).where(SessionRow.token_hash == _token_hash(token)))


def purge_expired(session: Session) -> int:
    """Delete sessions past their expiry; returns how many."""
    result = session.execute(delete(SessionRow).where(SessionRow.expires_at < utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _account(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no account named {username[:64]!r}")
    return user


def revoke_sessions(session: Session, username: str) -> int:
    """Log the account out everywhere; returns how many sessions were closed."""
    user = _account(session, username)
    result = session.execute(delete(SessionRow).where(SessionRow.user_id == user.id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def set_active(session: Session, username: str, active: bool) -> int:
    """Activate or deactivate an account; deactivating also revokes its sessions (returns how many).

    The last active admin cannot be deactivated: nobody could manage the app afterwards.
    """
    user = _account(session, username)
    if not active and user.role == "admin" and user.active:
        admins = session.scalar(select(func.count()).select_from(User).where(User.role == "admin",
                                                                          User.active.is_(True)))
        if (admins or 0) <= 1:
            raise UserError(f"{username!r} is the last active admin; create another admin first")
    user.active = active
    session.flush()
    return 0 if active else revoke_sessions(session, username)


# Every request runs this: built once, columns only (building the statement and ORM objects cost more CPU than
# the query itself).
_LOOKUP = (select(User.id, User.username, User.role, SessionRow.csrf_token, SessionRow.expires_at)
           .join(User, User.id == SessionRow.user_id)
           .where(SessionRow.token_hash == bindparam("token_hash"), User.active.is_(True)))


def lookup(session: Session, token: str | None) -> CurrentUser | None:
    if not token:
        return None
    row = session.connection().execute(_LOOKUP, {"token_hash": _token_hash(token)}).first()
    if row is None or row.expires_at < utcnow():
        return None
    return CurrentUser(id=row.id, username=row.username, role=row.role, csrf_token=row.csrf_token)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
