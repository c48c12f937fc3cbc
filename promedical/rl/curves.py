"""Training curves of a GRPO (or DPO) run from its logs: ``promedical grpo curves RUN_DIR -o curves.html``.

The log is the trainer's ``log_history``: ``<run>/grpo.log_history.json`` (or ``dpo.``, written at the end of a
run), else the ``trainer_state.json`` of the run's latest checkpoint (a run still going, or one that stopped).
``extract`` (pure) turns it into named series ``{name: [(step, value), ...]}``; ``figure`` draws one figure of
small multiples (reward components, group signal, veto/unscored rates, KL, completion length, loss), and
``render`` writes it as PNG or as a self-contained HTML page with the PNG embedded like the bench report's.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from promedical.io import UserError

# panel title -> logged keys drawn in it (a key absent from the log is simply not drawn)
PANELS: dict[str, tuple[str, ...]] = {
    "reward": ("reward", "rubric/reward", "scalar/reward"),
    "reward components": ("rubric/s1", "rubric/s2", "rubric/s3"),
    "groups with zero reward std": ("signal/zero_std_share", "frac_reward_zero_std"),
    "within-group reward std": ("signal/group_std",),
    "veto and unscored rates": ("rubric/veto_rate", "rubric/unscored_rate", "scalar/unscored_rate"),
    "KL to the reference": ("kl",),
    "completion length (tokens)": ("completions/mean_length",),
    "loss": ("loss",),
}
SERIES = tuple(key for keys in PANELS.values() for key in keys)
LOG_NAMES = ("grpo.log_history.json", "dpo.log_history.json")


def read_log_history(run_dir: str | Path) -> tuple[list[dict[str, Any]], Path]:
    """The run's log history and the file it came from; ``UserError`` when the folder has none."""
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"{root}: -: -: no such run directory")
    for name in LOG_NAMES:
        if (root / name).is_file():
            return _load(root / name), root / name
    states = [p for p in root.glob("**/checkpoint-*/trainer_state.json")]
    if not states:
        raise UserError(f"{root}: -: log_history: no {' or '.join(LOG_NAMES)} and no checkpoint-*/trainer_state.json")
    latest = max(states, key=lambda p: int(p.parent.name.rsplit("-", 1)[-1]) if p.parent.name[11:].isdigit() else -1)
    state = _load(latest)
    return state.get("log_history", []) if isinstance(state, dict) else [], latest


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: -: -: unreadable ({exc})") from exc


def extract(log_history: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """``{key: [(step, value), ...]}`` for every plotted key the log holds (finite numbers only, in step order)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for entry in log_history:
        step = entry.get("step")
        if not isinstance(step, int):
            continue
        for key in SERIES:
            value = entry.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                out.setdefault(key, []).append((step, float(value)))
    return {key: sorted(points) for key, points in out.items()}


def figure(series: dict[str, list[tuple[int, float]]], title: str = "") -> Any:
    """One matplotlib figure: a small multiple per panel with data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(name, [k for k in keys if k in series]) for name, keys in PANELS.items()]
    panels = [(name, keys) for name, keys in panels if keys]
    if not panels:
        raise UserError(f"{title or 'run'}: -: log_history: none of the plotted series was logged")
    cols = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 2.6 * rows), squeeze=False)
    for ax, (name, keys) in zip(axes.flat, panels, strict=False):
        for key in keys:
            steps, values = zip(*series[key], strict=True)
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=key)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def render(run_dir: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the curves of the run in ``run_dir`` to ``out`` (``.png``, or ``.html`` with the PNG embedded)."""
    import base64
    import io

    import matplotlib.pyplot as plt

    target = Path(out)
    if target.suffix.lower() not in (".png", ".html", ".htm"):
        raise UserError(f"{target}: -: -o: must end in .png or .html")
    log_history, source = read_log_history(run_dir)
    series = extract(log_history)
    fig = figure(series, title=str(run_dir))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".png":
        target.write_bytes(buffer.getvalue())
    else:
        src = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        target.write_text(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>training curves: {html.escape(str(run_dir))}</title></head><body style='font-family:sans-serif'>"
            f"<h1>Training curves</h1><p>{html.escape(str(source))}</p>"
            f"<img src='{src}' alt='training curves' style='max-width:100%'></body></html>", encoding="utf-8")
    return {"output": str(target), "source": str(source),
            "series": {key: len(points) for key, points in series.items()}}
