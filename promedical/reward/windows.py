"""How a long response reaches the reward model: overlapping windows, pooled per criterion (input ``windows/1``).

The model reads ``max_length`` tokens; after the instruction (at most a quarter) and the criterion (at most a
quarter) the response has about half of them. Input scheme ``head/1`` (the first trained models) kept the
response's head and dropped the rest, so evidence in the tail was never seen. Scheme ``windows/1`` cuts the
response's tokens into windows of that room, overlapping by ``overlap`` of a window; every window becomes its own
input (same instruction, same criterion suffix) and the window scores are pooled per criterion:

* explicit templates pool *met-type evidence* with a max: for a ``required`` criterion the score means "satisfied
  = the behaviour is present", which one window showing it proves, so the pooled score is the **max** over
  windows; for a ``prohibited`` veto, satisfied means the behaviour is *absent*, and one window showing it is a
  violation, so the pooled score is the **min** (the max of the violation evidence). A veto therefore fails
  closed: a violation anywhere in the response counts.
* the implicit template (no criterion in the input) asks "is the response good?" of the whole response, with no
  evidence to look for, so it pools with the **mean**.

Known limits of max pooling: a criterion whose parts sit in different windows ("names X and Y") is judged per
window, and a whole-response property ("is concise") is read from the best window. Training pools the same way
(``promedical.reward.train``), so the model learns the pooled reading it is scored with.

A response longer than ``max_windows`` windows with the chosen overlap still gets ``max_windows`` windows, spread
evenly from head to tail (head and tail always read; the overlap shrinks and, past that, gaps open in the
middle): such a response counts as *truncated*, and every scoring summary reports how many were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

INPUT_HEAD: Literal["head/1"] = "head/1"  # the response's head only (models trained before windows/1)
INPUT_WINDOWS: Literal["windows/1"] = "windows/1"
InputScheme = Literal["head/1", "windows/1"]
Pool = Literal["max", "min", "mean"]


class WindowSettings(BaseModel):
    """Window layout of input scheme ``windows/1`` (recorded in the checkpoint's card)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_windows: int = Field(default=8, ge=1)  # cost grows linearly with it; longer responses are truncated
    overlap: float = Field(default=0.25, ge=0.0, lt=1.0)  # share of a window repeated in the next one


def spans(n_tokens: int, width: int, settings: WindowSettings | None) -> list[tuple[int, int]]:
    """``[start, end)`` token spans of a response of ``n_tokens`` for windows of ``width`` tokens.

    ``settings=None`` is scheme ``head/1``: one span, the head.
    """
    if width <= 0:
        return [(0, 0)]
    if n_tokens <= width or settings is None or settings.max_windows == 1:
        return [(0, min(n_tokens, width))]
    stride = max(1, int(width * (1.0 - settings.overlap)))
    needed = math.ceil((n_tokens - width) / stride) + 1
    last = n_tokens - width
    if needed <= settings.max_windows:
        starts = sorted({min(i * stride, last) for i in range(needed)})  # the last window ends at the end
    else:  # evenly spread: head and tail always covered
        k = settings.max_windows
        starts = sorted({round(i * last / (k - 1)) for i in range(k)})
    return [(s, s + width) for s in starts]


def covered(token_spans: Sequence[tuple[int, int]]) -> int:
    """Tokens inside at least one span."""
    total, reach = 0, 0
    for start, end in sorted(token_spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def pool_kind(polarity: str, explicit: bool) -> Pool:
    """How window scores combine for one criterion (see the module docstring for why)."""
    if not explicit:
        return "mean"
    return "min" if polarity == "prohibited" else "max"


def pool(values: Sequence[float], kind: Pool) -> float:
    if kind == "max":
        return max(values)
    if kind == "min":
        return min(values)
    return sum(values) / len(values)


@dataclass(frozen=True, slots=True)
class Windowed:
    """A response's model inputs (one prefix per window) and how much of it they cover."""

    prefixes: tuple[tuple[int, ...], ...]
    response_tokens: int
    covered_tokens: int
    instruction_truncated: bool

    @property
    def truncated(self) -> bool:
        return self.covered_tokens < self.response_tokens


@dataclass
class TruncationStats:
    """Running counts over scored responses, for the summaries of ``rm eval`` / ``rm score`` and the judge."""

    responses: int = 0
    truncated: int = 0  # response tokens left out of every window
    instruction_truncated: int = 0
    windows: int = 0
    response_tokens: int = 0
    covered_tokens: int = 0

    def reset(self) -> None:
        self.responses = self.truncated = self.instruction_truncated = 0
        self.windows = self.response_tokens = self.covered_tokens = 0

    def add(self, w: Windowed) -> None:
        self.responses += 1
        self.truncated += int(w.truncated)
        self.instruction_truncated += int(w.instruction_truncated)
        self.windows += len(w.prefixes)
        self.response_tokens += w.response_tokens
        self.covered_tokens += w.covered_tokens

    def as_dict(self, scheme: str) -> dict[str, Any]:
        n = self.responses
        return {
            "input": scheme,
            "responses": n,
            "truncated": self.truncated,
            "truncated_rate": self.truncated / n if n else None,
            "instruction_truncated": self.instruction_truncated,
            "windows_per_response": self.windows / n if n else None,
            "response_tokens_covered": self.covered_tokens / self.response_tokens if self.response_tokens else None,
        }
