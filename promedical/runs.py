"""Run directories: every long job writes its resolved config and a manifest (inputs' hashes, versions, counts).

A run directory is also the unit of resumption: stages record what they finished in their own outputs or caches,
and a re-run with the same config picks up where the last one stopped.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from promedical import __version__
from promedical.files import write_json
from promedical.hashing import file_sha256

_TRACKED_PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "pydantic", "numpy")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"promedical": __version__, "python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def code_revision() -> str | None:
    """The git commit of the source tree when running from a checkout (None otherwise)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def input_hashes(paths: Iterable[str | Path]) -> dict[str, str]:
    return {str(p): file_sha256(str(p)) for p in paths if Path(p).is_file()}


def write_manifest(
    run_dir: str | Path,
    stage: str,
    config: dict[str, Any],
    inputs: Iterable[str | Path] = (),
    counts: dict[str, Any] | None = None,
    seed: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``<stage>.config.json`` (resolved config) and ``<stage>.manifest.json`` into ``run_dir``."""
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    write_json(run / f"{stage}.config.json", config)
    manifest = {
        "stage": stage,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": sys.argv,
        "inputs": input_hashes(inputs),
        "versions": package_versions(),
        "code_revision": code_revision(),
        "seed": seed,
        "counts": counts or {},
        **(extra or {}),
    }
    path = run / f"{stage}.manifest.json"
    write_json(path, manifest)
    return path
