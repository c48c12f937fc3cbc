"""docs/cli.md lists every command the CLI has, so the one-page reference cannot silently go stale."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from promedical.cli.main import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _commands(command: Any, prefix: list[str]) -> Iterator[str]:
    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _commands(sub, [*prefix, name])
    else:
        yield " ".join(prefix)


def test_every_command_is_in_the_reference() -> None:
    text = DOC.read_text()
    commands = list(_commands(typer.main.get_command(app), []))
    assert len(commands) > 30
    missing = [c for c in commands if f"`promedical {c}`" not in text]
    assert not missing, f"add to docs/cli.md: {missing}"
