"""The judge protocol and ``load_judge``: one spec string selects an LLM judge or the reward model as a judge.

Specs:

* ``openai:<model>@<base_url>[#structured=...]`` and ``hf:<name-or-path>[#batch=N]``: an LLM judge over a
  ``Generator`` (``promedical.llm.spec``) with the criteria injected in its prompt (``PointwiseJudge``);
* ``rm:<checkpoint>``: the calibrated reward model (``promedical.reward.judge.load_rm_judge``);
* ``lexical`` or ``lexical:<threshold>``: the criterion-word-overlap baseline (``promedical.judge.lexical``).

Every judge has a ``spec``, ``grade(rubric, response)`` and ``grade_many(items)`` returning one ``Verdict`` per
criterion (met, unmet or unscored with the reason), and ``close()``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from promedical.io import UserError
from promedical.judge.lexical import parse_lexical_spec
from promedical.judge.pointwise import PointwiseConfig, PointwiseJudge
from promedical.llm.spec import load_generator, parse_spec
from promedical.rubrics.records import Response, Verdict
from promedical.rubrics.schema import Rubric


@runtime_checkable
class Judge(Protocol):
    @property
    def spec(self) -> str: ...

    def grade(self, rubric: Rubric, response: Response) -> list[Verdict]: ...

    def grade_many(self, items: Sequence[tuple[Rubric, Response]]) -> list[Verdict]: ...


def load_judge(
    spec: str,
    *,
    config: PointwiseConfig | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    concurrency: int = 4,
    cache_path: str | Path | None = None,
    **rm_options: Any,
) -> Any:
    """The judge a spec names (see the module docstring); ``UserError`` for an unusable spec."""
    lexical = parse_lexical_spec(spec)
    if lexical is not None:
        return lexical
    parsed = parse_spec(spec)
    if parsed.backend == "rm":
        try:
            module = importlib.import_module("promedical.reward.judge")
        except ImportError as exc:
            raise UserError(f"judge spec {spec!r}: the reward-model judge is not available ({exc})") from None
        loader = getattr(module, "load_rm_judge", None)
        if loader is None:
            raise UserError(f"judge spec {spec!r}: promedical.reward.judge has no load_rm_judge")
        return loader(parsed.target, **rm_options)
    generator = load_generator(spec, timeout=timeout, retries=retries, concurrency=concurrency,
                               cache_path=cache_path)
    return PointwiseJudge(generator, config)
