"""The judge protocol and ``load_judge``: one spec string selects an LLM judge, the lexical baseline or the reward
model as a judge.

Specs (parsed by ``promedical.llm.spec``, like every spec):

* ``openai:<model>@<base_url>[#structured=...]`` and ``hf:<name-or-path>[#batch=N]``: an LLM judge over a
  ``Generator`` with the criteria injected in its prompt (``PointwiseJudge``);
* ``rm:<checkpoint>``: the calibrated reward model (``promedical.reward.judge``);
* ``lexical`` or ``lexical:<threshold>``: the criterion-word-overlap baseline (``promedical.judge.lexical``).

Every judge offers the members of ``Judge``, and callers use them directly. This module composes every backend,
the reward model's included, so it sits above ``promedical.reward`` in the layering (tests/test_import_graph.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from promedical.io import UserError
from promedical.judge.lexical import DEFAULT_THRESHOLD, LexicalJudge
from promedical.judge.pointwise import PointwiseConfig, PointwiseJudge
from promedical.judge.usage import ProgressHook, Usage
from promedical.llm.protocol import Generator
from promedical.llm.spec import LEXICAL, lexical_threshold, load_generator, parse_spec
from promedical.rubrics.records import Response, Verdict
from promedical.rubrics.schema import Rubric


@runtime_checkable
class Judge(Protocol):
    """One verdict per criterion (met, unmet, or unscored with the reason) for each (rubric, response) graded."""

    @property
    def spec(self) -> str:
        """The spec it was loaded from, normalised; written into every verdict's ``judge``."""
        ...

    @property
    def template_version(self) -> str:
        """The prompt template (LLM judges) or scoring scheme (lexical, reward model) behind the verdicts."""
        ...

    @property
    def usage(self) -> Usage | None:
        """Model calls, cache hits and tokens so far; ``None`` for a judge that calls no language model."""
        ...

    @property
    def generator(self) -> Generator | None:
        """The language model it calls (a run counts its cache hits); ``None`` when it calls none."""
        ...

    def grade(self, rubric: Rubric, response: Response) -> list[Verdict]: ...

    def grade_many(self, items: Sequence[tuple[Rubric, Response]],
                   progress: ProgressHook | None = None) -> list[Verdict]: ...

    def close(self) -> None: ...


def load_judge(
    spec: str,
    *,
    config: PointwiseConfig | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    concurrency: int = 4,
    cache_path: str | Path | None = None,
    **rm_options: Any,
) -> Judge:
    """The judge a spec names (see the module docstring); ``UserError`` for an unusable spec."""
    parsed = parse_spec(spec)
    if parsed.backend == LEXICAL:
        threshold = lexical_threshold(parsed)
        return LexicalJudge(DEFAULT_THRESHOLD if threshold is None else threshold)
    if parsed.backend == "rm":
        try:  # imported here: the reward model needs torch, which an HTTP judge never loads
            from promedical.reward.judge import load_rm_judge
        except ImportError as exc:
            raise UserError(f"judge spec {spec!r}: the reward-model judge is not available ({exc})") from None
        return load_rm_judge(parsed.target, **rm_options)
    generator = load_generator(spec, timeout=timeout, retries=retries, concurrency=concurrency,
                               cache_path=cache_path)
    return PointwiseJudge(generator, config)
