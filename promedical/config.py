"""YAML run configs with ``key=value`` command-line overrides, validated into pydantic models.

``load_settings(Model, "configs/x.yaml", ["lr=1e-5", "reward.alpha=0.2"])`` reads the YAML, applies each override
(dotted keys reach nested fields; values are parsed as YAML scalars, so ``2`` is an int and ``[a, b]`` a list) and
validates the result. Any defect is one ``UserError`` line naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from promedical.files import UserError

C = TypeVar("C", bound=BaseModel)


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path`` (empty file: ``{}``); ``UserError`` when unreadable or not a mapping."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: -: -: cannot read config: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: -: -: not valid YAML: {' '.join(str(exc).split())[:200]}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserError(f"{path}: -: -: the config must be a mapping")
    return loaded


def load_settings(model: type[C], path: str | Path | None, overrides: list[str]) -> C:
    """YAML file + ``key=value`` overrides -> validated ``model``; ``UserError`` (one line) on any defect."""
    raw: dict[str, Any] = read_yaml(path) if path is not None else {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"override {item!r}: -: -: expected key=value")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            parsed = value
        set_dotted(raw, key.strip(), parsed)
    return validate_settings(model, raw, f"{path or '<overrides>'}: -: -")


def validate_settings(model: type[C], raw: dict[str, Any], source: str) -> C:
    """``raw`` validated into ``model``; the first defect as one ``UserError`` line ``<source>: <field>: <message>``.

    The one validation step of every config (the RM, GRPO and DPO settings through ``load_settings``, the data
    pipeline's through ``data.pipeline_config.load_config``). Only the first error is shown: a config with a typo
    usually has one, and a single line is what the command-line error convention allows.
    """
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "-"
        message = " ".join(str(err["msg"]).removeprefix("Value error, ").split())
        raise UserError(f"{source}: {where}: {message}") from None
