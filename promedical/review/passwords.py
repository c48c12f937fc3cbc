"""The password policy for review accounts: long enough, not built on the username, not guessable.

Guessability is judged by ``zxcvbn`` (Dropbox's estimator: it ships frequency lists of common passwords, names and
words and recognises keyboard walks, repeats, sequences, dates and l33t substitutions). A password must reach
score 3 of 4 ("safely unguessable: moderate protection from offline slow-hash attacks") on top of the plain rules.
"""

from __future__ import annotations

from zxcvbn import zxcvbn

MIN_LENGTH = 10
MAX_LENGTH = 256  # Argon2 hashes any length; the cap keeps a login request's work bounded
MIN_SCORE = 3
_ZXCVBN_MAX = 72  # zxcvbn refuses longer input; a prefix that is already strong keeps the whole strong
_CONTEXT = ("promedical", "review", "reviewer", "admin", "physician", "doctor")


def problem(password: str, username: str) -> str | None:
    """Why ``password`` is refused for ``username``, or ``None`` if it meets the policy."""
    if len(password) < MIN_LENGTH:
        return f"must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must have at most {MAX_LENGTH} characters"
    if not password.strip():
        return "must not be only spaces"
    name = username.strip().lower()
    if len(name) >= 3 and (name in password.lower() or password.lower() in name):
        return "must not contain the username"
    verdict = zxcvbn(password[:_ZXCVBN_MAX], user_inputs=[username, *_CONTEXT])
    if verdict["score"] < MIN_SCORE:
        hint = verdict["feedback"].get("warning") or "it is too easy to guess"
        return f"is too easy to guess ({hint.rstrip('.')}); use a longer passphrase of unrelated words"
    return None
