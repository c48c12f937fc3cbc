"""Versioned input templates of the reward model: how (instruction, response, criterion) become token ids.

Every input is split in two parts, a *prefix* (instruction + response) and a *suffix* (the injected criterion),
tokenised separately and concatenated, so the token ids of the prefix never depend on the criterion. That is
what lets ``promedical.reward.score`` run the prefix once and reuse it for K criteria with identical results.

* ``explicit/1`` (Explicit Criteria Injection): the suffix states the criterion with its tier and polarity
  wording. The score means "this response satisfies this criterion": for a ``prohibited`` veto, satisfying it
  means *not* showing the behaviour, so a high score is always the good side.
* ``implicit/1`` (the ablation): the same prefix and a constant suffix without the criterion.

Templates are constants: change one by adding a new version, never by editing an existing one.
Each part has a fixed token budget (instruction at most a quarter of ``max_length``, criterion at most a quarter,
the response gets the rest), so the criterion is never cut off. How the response fills its room is the *input
scheme* (``promedical.reward.windows``): ``head/1`` keeps its head; ``windows/1`` gives one prefix per
overlapping window of the whole response, each followed by the same suffix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from promedical.reward.windows import Windowed, WindowSettings, covered, spans


@dataclass(frozen=True, slots=True)
class Template:
    version: str
    explicit: bool
    prefix: str  # fields: {instruction}, {response}
    suffix: str  # fields: {tier}, {polarity}, {criterion} (explicit only)


TIER_WORDING: dict[str, str] = {
    "proficiency": "core proficiency requirement",
    "bonus": "excellence bonus",
    "veto": "safety veto",
}
POLARITY_WORDING: dict[str, str] = {
    "required": "The response must do this",
    "prohibited": "The response must NOT do this",
}

TEMPLATES: dict[str, Template] = {
    "explicit/1": Template(
        version="explicit/1",
        explicit=True,
        prefix="Instruction:\n{instruction}\n\nResponse:\n{response}\n\n",
        suffix="Criterion ({tier}). {polarity}: {criterion}\nIs the criterion satisfied?",
    ),
    "implicit/1": Template(
        version="implicit/1",
        explicit=False,
        prefix="Instruction:\n{instruction}\n\nResponse:\n{response}\n\n",
        suffix="Is the response good?",
    ),
}
DEFAULT_EXPLICIT = "explicit/1"
DEFAULT_IMPLICIT = "implicit/1"


def get_template(version: str) -> Template:
    try:
        return TEMPLATES[version]
    except KeyError:
        raise KeyError(f"unknown reward-model template {version!r}; known: {', '.join(sorted(TEMPLATES))}") from None


def suffix_text(template: Template, criterion: str, tier: str, polarity: str) -> str:
    if not template.explicit:
        return template.suffix
    return template.suffix.format(
        tier=TIER_WORDING[tier], polarity=POLARITY_WORDING[polarity], criterion=" ".join(criterion.split())
    )


@dataclass(frozen=True, slots=True)
class Encoder:
    """Tokenises template parts for one tokenizer; ``front``/``back`` are the tokenizer's own special tokens.

    ``windows`` is ``None`` for input scheme ``head/1`` and the window layout for ``windows/1``.
    """

    tokenizer: Any
    template: Template
    max_length: int
    front: tuple[int, ...]
    back: tuple[int, ...]
    windows: WindowSettings | None = None

    @classmethod
    def build(cls, tokenizer: Any, template: Template, max_length: int,
              windows: WindowSettings | None = None) -> Encoder:
        front, back = special_frame(tokenizer)
        if max_length < len(front) + len(back) + 16:
            raise ValueError(f"max_length {max_length} is too small for this template")
        return cls(tokenizer, template, max_length, front, back, windows)

    def _ids(self, text: str, limit: int | None = None) -> list[int]:
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids if limit is None else ids[: max(limit, 0)]

    def suffix(self, criterion: str, tier: str, polarity: str) -> list[int]:
        budget = self.max_length // 4
        return self._ids(suffix_text(self.template, criterion, tier, polarity), budget) + list(self.back)

    def prefix(self, instruction: str, response: str, suffix_budget: int | None = None) -> list[int]:
        """The head prefix (scheme ``head/1``), sized so that any suffix of at most ``suffix_budget`` tokens still
        fits ``max_length``."""
        return list(self._windowed(instruction, response, None, suffix_budget).prefixes[0])

    def prefixes(self, instruction: str, response: str, suffix_budget: int | None = None) -> Windowed:
        """One prefix per window of the response under this encoder's input scheme (one, the head, for head/1)."""
        return self._windowed(instruction, response, self.windows, suffix_budget)

    def _windowed(self, instruction: str, response: str, windows: WindowSettings | None,
                  suffix_budget: int | None) -> Windowed:
        suffix_budget = self.max_length // 4 + len(self.back) if suffix_budget is None else suffix_budget
        pre, rest = self.template.prefix.split("{instruction}")
        mid, tail = rest.split("{response}")
        fixed = [*self.front, *self._ids(pre)], self._ids(mid), self._ids(tail)
        instr_all = self._ids(instruction)
        instr = instr_all[: self.max_length // 4]
        room = self.max_length - suffix_budget - len(instr) - sum(len(part) for part in fixed)
        # the whole response is tokenised once and sliced, so a window's ids equal the head's when they start at 0
        resp = self._ids(response)
        token_spans = spans(len(resp), room, windows)
        head, body = fixed[0] + instr + fixed[1], fixed[2]
        return Windowed(prefixes=tuple(tuple(head + resp[a:b] + body) for a, b in token_spans),
                        response_tokens=len(resp), covered_tokens=covered(token_spans),
                        instruction_truncated=len(instr_all) > len(instr))

    def encode(self, instruction: str, response: str, criterion: str, tier: str, polarity: str) -> list[int]:
        """The head-only input (scheme ``head/1``)."""
        return self.prefix(instruction, response) + self.suffix(criterion, tier, polarity)


def special_frame(tokenizer: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special tokens a tokenizer puts before and after a text (``[CLS]``/``[SEP]`` for BERT, none for GPT-2)."""
    probe = "hello"
    bare: list[int] = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full: list[int] = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return tuple(full[:start]), tuple(full[start + len(bare) :])
    return (), ()
