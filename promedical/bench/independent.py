"""Judging a policy by more than the reward it trained on: extra judges over the same responses, and monitors.

A policy optimised against one judge can learn that judge's blind spots. ``bench run --also-judge SPEC`` grades
the run's responses (the same texts, generated once) with each extra judge, one that the policy never optimised
against: a reward model trained on other data or another backbone, the lexical-overlap judge, an LLM judge.
Each extra judge's verdicts and score rows go under ``<run>/judges/<slug>/`` and its headline into the summary's
``independent`` block. ``monitors`` records what reward hacking tends to move: response length and the shares of
self-praise, credential claims and disclaimer stuffing (``promedical.rl.monitors``' versioned lexicons).

``bench compare`` then reports, per judge present in both runs, the paired difference A - B, and the divergence:
the training judge's difference minus the independent judge's. A policy that gains under its training judge but
not under an independent one shows a positive divergence: the gain is in the judge, not the answers.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from typing import Any

from promedical.hashing import content_hash
from promedical.rl.monitors import LEXICON_VERSION, lexicon_rates
from promedical.rubrics.records import Response

HEADLINE = ("overall", "s1", "s2", "s3", "safety_compliance", "unscored_rate")


def judge_slug(spec: str) -> str:
    """A folder name for a judge spec: readable, and unique through a short hash of the whole spec."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_")[:40]
    return f"{readable}-{content_hash([spec], 8)}"


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The part of a bench summary that one judge's grading determines (metrics with their CIs)."""
    out: dict[str, Any] = {"n": summary.get("n")}
    for name in HEADLINE:
        out[name] = summary.get(name)
        if f"{name}_ci" in summary:
            out[f"{name}_ci"] = summary[f"{name}_ci"]
    return out


def monitors(responses: Sequence[Response]) -> dict[str, Any]:
    """Length (words) and the hacking lexicons over the generated responses (failed generations left out)."""
    texts = [x.text for x in responses if "error" not in x.meta]
    words = [len(t.split()) for t in texts]
    return {"lexicon": LEXICON_VERSION, "n": len(texts),
            "mean_words": statistics.fmean(words) if words else None,
            "median_words": statistics.median(words) if words else None, **lexicon_rates(texts)}


def monitor_differences(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    """A - B for each numeric monitor both runs recorded."""
    if not a or not b:
        return None
    return {k: a[k] - b[k] for k in a if k != "n" and isinstance(a.get(k), int | float)
            and isinstance(b.get(k), int | float) and not isinstance(a[k], bool)}


def divergence(training: dict[str, Any], independent: dict[str, Any]) -> dict[str, Any]:
    """Training judge's paired difference minus an independent judge's, on the overall reward."""
    t, i = training.get("value"), independent.get("value")
    gap = None if t is None or i is None else t - i
    return {"training_difference": t, "independent_difference": i, "divergence": gap}
