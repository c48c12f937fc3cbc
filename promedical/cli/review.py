"""``promedical review ...``: run the expert review web app and manage its database from the shell."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from promedical.cli.common import JSON_HELP, emit_json
from promedical.io import UserError, read_responses, read_rubrics, read_verdicts

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from promedical.review.store import Database

app = typer.Typer(help="Expert review app: rubric review rounds, double-blind adjudication, agreement.",
                  no_args_is_help=True)

DB_HELP = "Database URL (sqlite:///path or postgresql+psycopg://...) or a SQLite file path."
DEFAULT_DB = "promedical-review.sqlite"
PASSWORD_ENV = "PROMEDICAL_REVIEW_PASSWORD"


def _url(db: str | None) -> str:
    value = db or os.environ.get("PROMEDICAL_REVIEW_DB") or DEFAULT_DB
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).resolve()}"


def _database(db: str | None) -> Database:
    from promedical.review import migrate
    from promedical.review.store import Database

    database = Database(_url(db))
    migrate.upgrade(database.engine)
    return database


def _user_error(exc: Exception) -> UserError:
    return UserError(getattr(exc, "message", str(exc)))


@contextmanager
def _session(db: str | None, write: bool = True) -> Iterator[Session]:
    """One transaction on the review database (migrated first): a ``ReviewError`` becomes the one-line
    ``UserError``, and the engine is disposed whatever happens."""
    from promedical.review.errors import ReviewError

    database = _database(db)
    try:
        with (database.write() if write else database.read()) as session:
            yield session
    except ReviewError as exc:
        raise _user_error(exc) from None
    finally:
        database.dispose()


def _read_password(username: str, password_file: Path | None) -> str:
    """The new password from a file (first line), the environment or a hidden prompt; never from the command line,
    where other users of the machine can read it in the process list and it stays in shell history."""
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UserError(f"{password_file}: cannot read the password file ({exc.strerror})") from None
        if not lines or not lines[0]:
            raise UserError(f"{password_file}: the first line must hold the password")
        return lines[0]
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    password: str = typer.prompt(f"Password for {username}", hide_input=True, confirmation_prompt=True)
    return password


@app.command("migrate")
def migrate_cmd(db: str = typer.Option(None, "--db", help=DB_HELP),
                json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Create or upgrade the review database schema to the latest revision."""
    from promedical.review import migrate
    from promedical.review.store import make_engine

    engine = make_engine(_url(db))
    before = migrate.current(engine)
    after = migrate.upgrade(engine)
    engine.dispose()
    if json_out:
        emit_json({"from": before, "to": after})
    else:
        typer.echo(f"schema at {after} (was {before})")


@app.command("serve")
def serve(
    db: str = typer.Option(None, "--db", help=DB_HELP),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8765, help="TCP port."),
    secure_cookies: bool = typer.Option(True, "--secure-cookies/--insecure-cookies",
                                        help="Mark cookies Secure and send HSTS (serve behind HTTPS); "
                                             "--insecure-cookies only for plain HTTP on loopback."),
    login_rate: float = typer.Option(2.0, min=0.1, help="Password checks per second, whole server (excess: 429)."),
    login_concurrency: int = typer.Option(1, min=1, help="Password checks at the same time."),
) -> None:
    """Serve the review app (migrates the database first)."""
    import uvicorn

    from promedical.review.app import create_app
    from promedical.review.throttle import HashGate

    gate = HashGate(concurrency=login_concurrency, rate=login_rate, burst=max(1, int(2 * login_rate)))
    uvicorn.run(create_app(_url(db), secure_cookies=secure_cookies, gate=gate), host=host, port=port,
                log_level="warning")


@app.command("create-user")
def create_user(
    username: str = typer.Argument(..., help="Login name."),
    role: str = typer.Option("reviewer", help="admin or reviewer."),
    password_file: Path = typer.Option(None, help="Read the password from the first line of this file "
                                                  f"(else ${PASSWORD_ENV}, else a hidden prompt)."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Create an account (the password is prompted, or read from $PROMEDICAL_REVIEW_PASSWORD or --password-file)."""
    from promedical.review import auth

    password = _read_password(username, password_file)
    with _session(db) as session:
        auth.create_user(session, username, password, role)
    emit_json({"username": username, "role": role}) if json_out else typer.echo(f"created {role} {username}")


def _account_command(username: str, db: str | None, action: str) -> int:
    from promedical.review import auth

    with _session(db) as session:
        if action == "revoke":
            return auth.revoke_sessions(session, username)
        return auth.set_active(session, username, action == "activate")


@app.command("deactivate-user")
def deactivate_user(
    username: str = typer.Argument(..., help="Login name."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Deactivate an account: it cannot log in and every session it has ends now (its answers are kept)."""
    closed = _account_command(username, db, "deactivate")
    summary = {"username": username, "active": False, "sessions_revoked": closed}
    emit_json(summary) if json_out else typer.echo(f"deactivated {username} ({closed} session(s) ended)")


@app.command("activate-user")
def activate_user(
    username: str = typer.Argument(..., help="Login name."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Reactivate a deactivated account."""
    _account_command(username, db, "activate")
    emit_json({"username": username, "active": True}) if json_out else typer.echo(f"activated {username}")


@app.command("revoke-sessions")
def revoke_sessions(
    username: str = typer.Argument(..., help="Login name."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Log an account out everywhere (e.g. after a lost laptop); it can log in again."""
    closed = _account_command(username, db, "revoke")
    summary = {"username": username, "sessions_revoked": closed}
    emit_json(summary) if json_out else typer.echo(f"ended {closed} session(s) of {username}")


@app.command("import")
def import_cmd(
    project: str = typer.Option(..., help="Project name (created if missing)."),
    rubrics: list[Path] = typer.Option([], help="Rubric JSONL file(s)."),
    responses: Path = typer.Option(None, help="Response JSONL file."),
    verdicts: Path = typer.Option(None, help="Judge verdict JSONL file (for reviewer-vs-judge agreement)."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import rubrics, responses and judge verdicts into a project (idempotent: present records are skipped)."""
    from promedical.review import projects
    from promedical.review.errors import ReviewError

    loaded_rubrics = read_rubrics(rubrics) if rubrics else []
    loaded_responses = read_responses(responses) if responses else []
    loaded_verdicts = read_verdicts(verdicts) if verdicts else []
    with _session(db) as session:
        try:
            target = projects.project_by_name(session, project)
        except ReviewError:
            target = projects.create_project(session, project)
        counts = {
            "rubrics": projects.import_rubrics(session, target, loaded_rubrics),
            "responses": projects.import_responses(session, target, loaded_responses),
            "verdicts": projects.import_verdicts(session, target, loaded_verdicts),
        }
    emit_json({"project": project, **counts}) if json_out else typer.echo(f"imported into {project}: {counts}")


@app.command("round")
def round_cmd(
    project: str = typer.Option(..., help="Project name."),
    batch: int = typer.Option(500, help="Rubrics per round (0 = all remaining)."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Open the next rubric review round with up to BATCH rubrics not yet reviewed."""
    from promedical.review import projects

    with _session(db) as session:
        opened = projects.open_round(session, projects.project_by_name(session, project), batch or None)
        if opened is None:
            raise UserError(f"project {project}: every rubric is already in a round")
        number = opened.number
    emit_json({"project": project, "round": number}) if json_out else typer.echo(f"opened round {number}")


@app.command("assign")
def assign_cmd(
    project: str = typer.Option(..., help="Project name."),
    kind: str = typer.Option(..., help="rubric, pointwise or pairwise."),
    reviewers: str = typer.Option(..., help="Comma-separated reviewer usernames."),
    overlap: int = typer.Option(2, help="Reviewers per item."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Create adjudication tasks (for pointwise/pairwise) and assign every task to OVERLAP reviewers."""
    from promedical.review import projects

    names = [n.strip() for n in reviewers.split(",") if n.strip()]
    with _session(db) as session:
        target = projects.project_by_name(session, project)
        tasks = projects.create_adjudication_tasks(session, target, kind) if kind != "rubric" else 0
        added = projects.assign(session, target, kind, projects.reviewers_named(session, names), overlap)
    summary = {"project": project, "kind": kind, "tasks_created": tasks, "assignments_created": added}
    emit_json(summary) if json_out else typer.echo(f"{added} assignments ({tasks} new tasks)")


@app.command("mask-terms")
def mask_terms_cmd(
    project: str = typer.Option(..., help="Project name."),
    add: list[str] = typer.Option([], "--add", help="A name to mask in everything reviewers see (repeatable)."),
    remove: list[str] = typer.Option([], "--remove", help="A name to stop masking (repeatable)."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List, add or remove a project's own names to mask (beside the shipped model and vendor list)."""
    from promedical.review import blind, projects

    with _session(db) as session:
        target = projects.project_by_name(session, project)
        try:
            target.blind_terms = blind.set_project_terms(target.blind_terms, add, remove)
        except ValueError as exc:
            raise UserError(f"project {project}: {exc}") from None
        terms = blind.project_terms(target.blind_terms)
    emit_json({"project": project, "terms": terms}) if json_out else typer.echo(
        f"{project}: {len(terms)} extra name(s) masked" + "".join(f"\n  {t}" for t in terms))


@app.command("export")
def export_cmd(
    project: str = typer.Option(..., help="Project name."),
    out: Path = typer.Option(..., help="Output directory."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples for agreement intervals."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Export decisions, kept rubrics, round pass rates, expert labels and agreement as JSONL files."""
    from promedical.review import export, projects

    with _session(db, write=False) as session:
        counts = export.export_project(session, projects.project_by_name(session, project), out, n_boot=n_boot)
    emit_json({"project": project, "out": str(out), **counts}) if json_out else typer.echo(f"wrote {counts} to {out}")


@app.command("demo")
def demo(
    db: str = typer.Option(None, "--db", help=DB_HELP),
    reviewers: int = typer.Option(2, help="How many reviewer accounts (reviewer1, reviewer2, ...)."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Fill an empty database with a synthetic sample project (every task kind assigned) to try the app.

    Every account gets its own random password, printed once (the JSON summary has them under "passwords").
    """
    from promedical.review.sample import random_passwords, seed_demo

    names = tuple(f"reviewer{i + 1}" for i in range(reviewers))
    if reviewers < 2:
        raise UserError("--reviewers: the demo needs at least 2 reviewers (overlap 2)")
    secrets_by_name = random_passwords(("admin", *names))
    database = _database(db)
    try:
        seed_demo(database, reviewers=names, passwords=secrets_by_name)
    finally:
        database.dispose()
    summary = {"project": "demo", "accounts": ["admin", *names], "passwords": secrets_by_name}
    if json_out:
        emit_json(summary)
    else:
        typer.echo("project 'demo' with these accounts (passwords are shown only now):")
        for name, password in secrets_by_name.items():
            typer.echo(f"  {name}  {password}")
