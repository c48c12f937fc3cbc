"""Pointwise grading with the rubric's criteria injected in the prompt: one verdict per (response, criterion).

Two modes over any ``Generator``:

* ``grouped``: one call per response with every criterion of its rubric, answer constrained to a JSON schema with
  one required key per criterion label (``pointwise-grouped/3``, the default, and ``/2``; ``/1`` asks for a list
  with enumerated ids; ``pointwise-grouped-terse/2`` and ``/1`` ask for a bare boolean per label, no explanation).
  The current versions (``grouped/3``, ``terse/2``, ``single/2``) put the conversation, the response and the
  criteria in escaped, tagged blocks that the judge is told hold data only (``promedical.judge.prompts``); the
  earlier ones stay selectable to reproduce old runs.
  Ids and completeness are checked; only the criteria without a usable answer are asked again (at most ``reasks``
  times, each time with a note naming what was wrong);
* ``single``: one call per criterion with a ``{"explanation", "criteria_met"}`` answer, re-asked the same bounded way
  (``pointwise-single/2``, the default; ``pointwise-single/3`` asks for the same bounded explanation as
  ``pointwise-grouped/4``, to compare the two modes on equal answers).

Whatever cannot be obtained or parsed ends ``unscored`` with the reason, never ``unmet``. Temperature and seed are
pinned by the config; every request carries audit labels (template version, criterion ids) for the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from promedical.judge.parse import Answer, parse_grouped, parse_single
from promedical.judge.prompts import (
    DEFAULT_GROUPED,
    DEFAULT_SINGLE,
    GROUPED_TEMPLATES,
    SINGLE_SCHEMA,
    SINGLE_TEMPLATES,
    TEMPLATES,
    Template,
    answer_schema,
    labels_for,
    reask_note,
    render_grouped,
    render_single,
)
from promedical.judge.usage import ProgressHook, Usage
from promedical.llm.protocol import Completion, GenerationParams, Generator, Request
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Criterion, Rubric

Mode = Literal["grouped", "single"]
MODES: tuple[str, ...] = ("grouped", "single")


@dataclass(frozen=True, slots=True)
class PointwiseConfig:
    mode: Mode = "grouped"
    max_tokens: int = 1024
    temperature: float = 0.0
    seed: int = 0
    reasks: int = 2  # extra rounds for criteria without a usable answer
    use_schema: bool = True  # ask the backend for schema-constrained output
    grouped_template: str = DEFAULT_GROUPED.version  # any of GROUPED_TEMPLATES
    single_template: str = DEFAULT_SINGLE.version  # any of SINGLE_TEMPLATES

    @property
    def template(self) -> Template:
        return TEMPLATES[self.grouped_template if self.mode == "grouped" else self.single_template]

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "max_tokens": self.max_tokens, "temperature": self.temperature,
                "seed": self.seed, "reasks": self.reasks, "use_schema": self.use_schema,
                "template_version": self.template.version}


@dataclass
class _Slot:
    """One (response, criterion) being graded."""

    label: str
    criterion: Criterion
    answer: Answer | None = None
    problem: str = "not asked"
    attempts: int = 0
    calls: int = 0
    cached: bool = False
    finish_reason: str | None = None


@dataclass
class _Item:
    rubric: Rubric
    response: Response
    slots: dict[str, _Slot] = field(default_factory=dict)

    def pending(self) -> dict[str, _Slot]:
        return {label: s for label, s in self.slots.items() if s.answer is None}


def _failure(completion: Completion) -> str:
    return f"judge call failed: {completion.error}"


def _truncation_note(completion: Completion, problem: str) -> str:
    return f"{problem}; answer cut at max_tokens" if completion.finish_reason == "length" else problem


class PointwiseJudge:
    """LLM-as-judge over a ``Generator`` with explicit criteria injection."""

    def __init__(self, generator: Generator, config: PointwiseConfig | None = None) -> None:
        self.generator = generator
        self.config = config or PointwiseConfig()
        if self.config.mode not in MODES:
            raise ValueError(f"unknown mode {self.config.mode!r} (one of {', '.join(MODES)})")
        if self.config.grouped_template not in GROUPED_TEMPLATES:
            raise ValueError(f"unknown grouped template {self.config.grouped_template!r} "
                             f"(one of {', '.join(GROUPED_TEMPLATES)})")
        if self.config.single_template not in SINGLE_TEMPLATES:
            raise ValueError(f"unknown single template {self.config.single_template!r} "
                             f"(one of {', '.join(SINGLE_TEMPLATES)})")
        self.usage = Usage()

    @property
    def spec(self) -> str:
        return self.generator.spec

    @property
    def template_version(self) -> str:
        return self.config.template.version

    def _params(self, schema: dict[str, Any]) -> GenerationParams:
        c = self.config
        return GenerationParams(temperature=c.temperature, max_tokens=c.max_tokens, seed=c.seed,
                                json_schema=schema if c.use_schema else None)

    def _requests(self, items: list[_Item], attempt: int) -> list[tuple[_Item, list[_Slot], Request]]:
        template = self.config.template
        planned: list[tuple[_Item, list[_Slot], Request]] = []
        for item in items:
            pending = item.pending()
            if not pending:
                continue
            text = item.response.text
            if self.config.mode == "grouped":
                note = None
                if attempt:
                    problems = sorted({s.problem for s in pending.values()})
                    note = reask_note(template, "; ".join(problems)[:300], labels=", ".join(pending))
                messages = render_grouped(template, item.rubric, text, {k: s.criterion for k, s in pending.items()},
                                          reask=note)
                audit = {"template_version": template.version, "rubric_id": item.rubric.id,
                         "response_id": item.response.id, "criterion_ids": [s.criterion.id for s in pending.values()]}
                planned.append((item, list(pending.values()),
                                Request(messages, self._params(answer_schema(template, list(pending))), audit=audit)))
            else:
                for slot in pending.values():
                    note = reask_note(template, slot.problem[:300]) if attempt else None
                    messages = render_single(template, item.rubric, text, slot.criterion, reask=note)
                    audit = {"template_version": template.version, "rubric_id": item.rubric.id,
                             "response_id": item.response.id, "criterion_ids": [slot.criterion.id]}
                    planned.append((item, [slot], Request(messages, self._params(SINGLE_SCHEMA), audit=audit)))
        return planned

    def _absorb(self, item: _Item, slots: list[_Slot], completion: Completion) -> None:
        self.usage.add(completion)
        for slot in slots:
            slot.attempts += 1
            slot.calls += completion.calls
        if not completion.ok:
            for slot in slots:
                slot.problem = _failure(completion)
            return
        if self.config.mode == "grouped":
            labels = [s.label for s in slots]
            aliases = {s.criterion.id: s.label for s in slots}
            parsed = parse_grouped(completion.text, labels, aliases)
            for slot in slots:
                if slot.label in parsed.answers:
                    slot.answer = parsed.answers[slot.label]
                else:
                    slot.problem = _truncation_note(completion, parsed.problems[slot.label])
                slot.cached, slot.finish_reason = completion.cached, completion.finish_reason
            return
        answer, problem = parse_single(completion.text)
        slot = slots[0]
        slot.cached, slot.finish_reason = completion.cached, completion.finish_reason
        if answer is not None:
            slot.answer = answer
        else:
            slot.problem = _truncation_note(completion, problem or "unusable answer")

    def _verdict(self, item: _Item, slot: _Slot) -> Verdict:
        meta = {"mode": self.config.mode, "attempts": slot.attempts, "calls": slot.calls, "cached": slot.cached,
                "finish_reason": slot.finish_reason, "label": slot.label}
        common = {"response_id": item.response.id, "rubric_id": item.rubric.id, "criterion_id": slot.criterion.id,
                  "judge": self.spec, "template_version": self.template_version, "meta": meta}
        if slot.answer is None:
            reason = f"{slot.problem} (after {slot.attempts} attempt(s))"
            return Verdict(status=Status.UNSCORED, reason=reason, **common)
        status = Status.MET if slot.answer.met else Status.UNMET
        return Verdict(status=status, explanation=slot.answer.explanation, **common)

    def grade_many(
        self, items: Sequence[tuple[Rubric, Response]], progress: ProgressHook | None = None
    ) -> list[Verdict]:
        """Verdicts for every criterion of every (rubric, response), in input order."""
        hook = progress or ProgressHook()
        work = []
        for rubric, response in items:
            item = _Item(rubric, response)
            labels = labels_for(rubric.criteria)
            item.slots = {label: _Slot(label, rubric.criterion(cid)) for label, cid in labels.items()}
            work.append(item)
        for attempt in range(self.config.reasks + 1):
            planned = self._requests(work, attempt)
            if not planned:
                break
            hook.add_total(len(planned))
            completions = self.generator.generate([r for _, _, r in planned], on_done=hook.advance)
            for (item, slots, _), completion in zip(planned, completions, strict=True):
                self._absorb(item, slots, completion)
        return [self._verdict(item, slot) for item in work for slot in item.slots.values()]

    def grade(self, rubric: Rubric, response: Response) -> list[Verdict]:
        return self.grade_many([(rubric, response)])

    def close(self) -> None:
        self.generator.close()
