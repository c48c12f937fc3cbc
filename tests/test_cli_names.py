"""Renamed commands: the new names are listed, the old ones still run the same code as hidden aliases."""

from __future__ import annotations

from typing import Any

import typer

from promedical.cli.main import app

RENAMED = {("grpo", "dpo"): ("dpo", "train"), ("data", "labels"): ("data", "classify"),
           ("data", "label"): ("data", "judge")}


def _command(path: tuple[str, ...]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def test_new_names_are_shown_and_old_names_are_hidden_aliases() -> None:
    for old, new in RENAMED.items():
        shown, alias = _command(new), _command(old)
        assert not shown.hidden and alias.hidden
        assert [p.name for p in alias.params] == [p.name for p in shown.params]
        assert "old name" in (alias.help or "").lower()


def test_the_reward_model_group_says_which_package_it_fronts() -> None:
    assert "promedical.reward" in (_command(("rm",)).help or "")
