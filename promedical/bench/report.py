"""Self-contained HTML reports of a bench run or a comparison: tables plus matplotlib plots embedded as base64 PNG.

No external assets (no scripts, fonts or links), so a report opens offline and can be attached anywhere. Plots:
per-axis satisfied share with CIs, per-tier rates, veto violation by category, score distributions, and for a
comparison a forest plot of paired differences with CIs.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from promedical.rubrics.schema import TIER_NAMES

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}td,th{border:1px solid #ddd;padding:.25rem .6rem;
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1rem}
img{max-width:100%;border:1px solid #eee}.muted{color:#777;font-size:.85rem}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.8rem}
"""


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(src: str, alt: str) -> str:
    return f'<figure><img src="{src}" alt="{html.escape(alt)}"><figcaption class="muted">{html.escape(alt)}' \
           "</figcaption></figure>"


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{100 * value:.1f}%" if pct else f"{value:.3f}"
    return html.escape(str(value))


def _ci(ci: Sequence[Any] | None, pct: bool = False) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "n/a"
    return f"[{_fmt(float(ci[0]), pct)}, {_fmt(float(ci[1]), pct)}]"


def _bars(labels: list[str], values: list[float | None], lows: list[float | None], highs: list[float | None],
          title: str, xlabel: str, color: str = "#4c72b0") -> str:
    fig, ax = plt.subplots(figsize=(6.2, 0.45 * max(len(labels), 2) + 1.2))
    ys = list(range(len(labels)))
    vals = [v if v is not None else 0.0 for v in values]
    err_lo = [max(0.0, (v or 0.0) - lo) if lo is not None and v is not None else 0.0 for v, lo in zip(values, lows,
                                                                                                    strict=True)]
    err_hi = [max(0.0, hi - (v or 0.0)) if hi is not None and v is not None else 0.0 for v, hi in zip(values, highs,
                                                                                                     strict=True)]
    ax.barh(ys, vals, xerr=[err_lo, err_hi], color=color, capsize=3, ecolor="#333")
    ax.set_yticks(ys, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def axis_plot(summary: dict[str, Any]) -> str | None:
    axes = summary.get("by_axis") or {}
    if not axes:
        return None
    names = sorted(axes)
    return _bars(names, [axes[a]["value"] for a in names], [axes[a]["ci_low"] for a in names],
                 [axes[a]["ci_high"] for a in names], "Criteria satisfied per axis (95% CI)", "share satisfied")


def tier_plot(summary: dict[str, Any]) -> str | None:
    tiers = summary.get("by_tier") or {}
    if not tiers:
        return None
    names = [t for t in TIER_NAMES if t in tiers]
    labels = [f"{t} ({tiers[t]['rate']})" for t in names]
    return _bars(labels, [tiers[t]["value"] for t in names], [tiers[t]["ci_low"] for t in names],
                 [tiers[t]["ci_high"] for t in names], "Criterion rates per tier (95% CI)", "share of criteria",
                 color="#55a868")


def veto_plot(summary: dict[str, Any]) -> str | None:
    groups = summary.get("by_category") or {}
    if not groups:
        return None
    names = sorted(groups)
    values, lows, highs = [], [], []
    for g in names:
        safe, ci = groups[g]["safety_compliance"], groups[g]["safety_compliance_ci"]
        values.append(None if safe is None else 1 - safe)
        lows.append(None if ci[1] is None else 1 - ci[1])
        highs.append(None if ci[0] is None else 1 - ci[0])
    return _bars(names, values, lows, highs, "Responses with a veto violated or unscored, by category (95% CI)",
                 "share of responses", color="#c44e52")


def distribution_plot(rows: Sequence[dict[str, Any]]) -> str | None:
    rewards = [r["reward"] for r in rows if r.get("reward") is not None]
    s1 = [r["s1"] for r in rows if r.get("s1") is not None]
    if not rewards and not s1:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.hist(rewards, bins=20, color="#8172b2")
    left.set_title(f"reward (n={len(rewards)})")
    left.set_xlabel("clip(S1 + alpha*S2, 0, 1+beta) - lambda*S3")
    right.hist(s1, bins=20, range=(0, 1), color="#4c72b0")
    right.set_title(f"S1 (n={len(s1)})")
    right.set_xlabel("weighted proficiency met")
    for ax in (left, right):
        ax.set_ylabel("responses")
        ax.grid(alpha=0.3)
    return _png(fig)


def forest_plot(result: dict[str, Any]) -> str:
    metrics = result["metrics"]
    names = list(metrics)
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.4))
    for y, name in enumerate(names):
        m = metrics[name]
        if m["value"] is None:
            continue
        lo = m["ci_low"] if m["ci_low"] is not None else m["value"]
        hi = m["ci_high"] if m["ci_high"] is not None else m["value"]
        ax.errorbar(m["value"], y, xerr=[[m["value"] - lo], [hi - m["value"]]], fmt="o", color="#333", capsize=4)
        p = m.get("p_value")
        ax.annotate(f"p={p:.3g}" if p is not None else "p=n/a", (hi, y), xytext=(6, -3), textcoords="offset points",
                    fontsize=8)
    ax.axvline(0, color="#c44e52", lw=1)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("difference A - B (paired, 95% bootstrap CI)")
    ax.set_title("Paired differences per metric")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


HEADLINE = (("overall", "overall (mean reward)", False), ("s1", "S1 (proficiency)", True), ("s2", "S2 (bonus met)",
            False), ("s3", "S3 (vetoes violated)", False), ("safety_compliance", "safety compliance (fail closed)",
            True), ("safety_compliance_observed", "safety compliance (scored vetoes)", True),
            ("unscored_rate", "unscored criteria", True), ("unscorable_rate", "unscorable responses", True),
            ("healthbench", "HealthBench score", True))


def _headline_table(summary: dict[str, Any]) -> str:
    body = "".join(f"<tr><td>{label}</td><td>{_fmt(summary.get(key), pct)}</td><td>{_ci(summary.get(key + '_ci'), pct)}"
                   "</td></tr>" for key, label, pct in HEADLINE if key in summary)
    return f"<table><tr><th>metric</th><th>value</th><th>95% CI</th></tr>{body}</table>"


def _group_table(groups: dict[str, Any], title: str) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{g['n']}</td><td>{_fmt(g['overall'])} {_ci(g['overall_ci'])}</td>"
        f"<td>{_fmt(g['s1'], True)} {_ci(g['s1_ci'], True)}</td><td>{_fmt(g['safety_compliance'], True)} "
        f"{_ci(g['safety_compliance_ci'], True)}</td></tr>" for name, g in groups.items())
    return (f"<table><tr><th>{title}</th><th>n</th><th>overall</th><th>S1</th><th>safety compliance</th></tr>"
            f"{rows}</table>")


def _audit_section(audit: dict[str, Any] | None) -> str:
    if not audit:
        return "<p class='muted'>No training pool was given (<code>--train</code>): independence not audited.</p>"
    parts = []
    for key in ("exact", "ngram", "embedding"):
        section = audit.get(key) or {}
        parts.append(f"<tr><td>{key}</td><td>{section.get('flagged')}</td><td>{_fmt(section.get('share'), True)}"
                     "</td></tr>")
    any_ = audit.get("any") or {}
    parts.append(f"<tr><td><b>any</b></td><td>{any_.get('flagged')}</td><td>{_fmt(any_.get('share'), True)}</td></tr>")
    train = html.escape(str((audit.get("train") or {}).get("name")))
    return (f"<p>Training pool: <code>{train}</code></p><table><tr><th>check</th><th>bench items flagged</th>"
            f"<th>share</th></tr>{''.join(parts)}</table>")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")


def render_run(summary: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    """The HTML report of one bench run."""
    plots = [(axis_plot(summary), "per-axis satisfied share with 95% CIs"),
             (tier_plot(summary), "per-tier criterion rates with 95% CIs"),
             (veto_plot(summary), "veto rate by category with 95% CIs"),
             (distribution_plot(rows), "score distributions")]
    figures = "".join(_img(src, alt) for src, alt in plots if src)
    meta = {k: summary.get(k) for k in ("policy_label", "judge", "judges_seen", "judge_templates", "bench", "params",
                                         "generation_failures", "truncated", "n_resamples", "ci_method")}
    body = (
        f"<h1>ProMedical-Bench run</h1><p>Policy <code>{html.escape(str(summary.get('policy_label')))}</code>, judge "
        f"<code>{html.escape(str(summary.get('judge')))}</code>, {summary.get('n')} responses.</p>"
        f"<h2>Headline</h2>{_headline_table(summary)}<h2>Plots</h2><div class='grid'>{figures}</div>"
        f"<h2>By category</h2>{_group_table(summary.get('by_category') or {}, 'category')}"
        f"<h2>By specialty</h2>{_group_table(summary.get('by_specialty') or {}, 'specialty')}"
        f"<h2>Independence audit</h2>{_audit_section(summary.get('audit'))}"
        f"<h2>Provenance</h2><pre>{html.escape(json.dumps(meta, indent=2, default=str))}</pre>"
    )
    return _page("ProMedical-Bench run", body)


def render_compare(result: dict[str, Any], summary_a: dict[str, Any], summary_b: dict[str, Any]) -> str:
    """The HTML report of a paired comparison of two runs."""
    rows = "".join(
        f"<tr><td>{name}</td><td>{_fmt(m['mean_a'])}</td><td>{_fmt(m['mean_b'])}</td><td>{_fmt(m['value'])}</td>"
        f"<td>{_ci([m['ci_low'], m['ci_high']])}</td><td>{_fmt(m['p_value'])}</td><td>{m['n']}</td></tr>"
        for name, m in result["metrics"].items())
    lex = result["lexicographic"]
    rates = lex["rates"]
    body = (
        f"<h1>ProMedical-Bench comparison</h1><p>A = <code>{html.escape(result['a'])}</code><br>B = "
        f"<code>{html.escape(result['b'])}</code><br>{result['n_pairs']} rubrics answered by both.</p>"
        f"<h2>Paired differences</h2><table><tr><th>metric</th><th>mean A</th><th>mean B</th><th>A - B</th>"
        f"<th>95% CI</th><th>p</th><th>n</th></tr>{rows}</table><p class='muted'>{html.escape(result['test'])}</p>"
        f"{_img(forest_plot(result), 'forest plot of paired differences')}"
        f"<h2>Lexicographic order (fewer vetoes, then S1, then S2)</h2><table><tr><th>outcome for A</th><th>count</th>"
        f"<th>rate</th><th>95% CI</th></tr>"
        + "".join(f"<tr><td>{k}</td><td>{lex[k]}</td><td>{_fmt(rates[k]['value'], True)}</td><td>"
                  f"{_ci([rates[k]['ci_low'], rates[k]['ci_high']], True)}</td></tr>" for k in ("win", "tie", "loss"))
        + f"</table><p>Incomparable (an S1 missing): {lex['incomparable']}. Net (win - loss): "
        f"{_fmt(lex['net']['value'])} {_ci([lex['net']['ci_low'], lex['net']['ci_high']])}, p = "
        f"{_fmt(lex['net']['p_value'])}.</p>"
        f"<h2>Run A headline</h2>{_headline_table(summary_a)}<h2>Run B headline</h2>{_headline_table(summary_b)}"
    )
    return _page("ProMedical-Bench comparison", body)
