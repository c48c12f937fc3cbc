"""A baseline judge with no model: a criterion is ``met`` when enough of its content words appear in the response.

This is the lexical floor, not a competent grader. Its verdicts come from
``lexical_score`` below (share of the criterion's content words found in the response):
``met`` when the share reaches ``threshold``. As with every judge, ``met`` means the response *shows* what the
criterion describes; polarity (a ``prohibited`` veto is violated when met) is applied by the scoring path.

It is deterministic and instant, which makes it the judge of the reward-function contract tests and the
"lexical baseline" in comparisons. Spec: ``lexical`` or ``lexical:<threshold>`` (default 0.5), parsed by
``promedical.llm.spec`` like every spec.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from promedical.io import UserError
from promedical.judge.usage import ProgressHook, Usage
from promedical.llm.protocol import Generator
from promedical.llm.spec import LEXICAL
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Rubric

_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset((  # noqa: SIM905 - one readable block of words
    "the and for are but not you your with this that from have has was were will would should could can may "
    "does did any all its their them they there what when which who how why been being into than then also "
    "about more most such other some only very response user mentions states explains"
).split())


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in STOPWORDS}


def lexical_score(response: str, criterion: str) -> float:
    wanted = content_words(criterion)
    if not wanted:
        return 0.0
    return len(wanted & content_words(response)) / len(wanted)


SCHEME = LEXICAL
TEMPLATE_VERSION = "lexical-overlap/1"
DEFAULT_THRESHOLD = 0.5


class LexicalJudge:
    """Criterion-token overlap judge (baseline): one verdict per criterion; ``unscored`` only for a criterion with no
    content word to look for (it cannot be checked this way, and an overlap of 0 would be a silent ``unmet``)."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 < threshold <= 1.0:
            raise UserError(f"lexical judge: threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.spec = f"{SCHEME}:{threshold:g}"
        self.name = self.spec
        self.template_version = TEMPLATE_VERSION
        self.usage: Usage | None = None  # no model calls to count
        self.generator: Generator | None = None

    def grade(self, rubric: Rubric, response: Response) -> list[Verdict]:
        verdicts = []
        for c in rubric.criteria:
            common = {"response_id": response.id, "rubric_id": rubric.id, "criterion_id": c.id, "judge": self.spec,
                      "template_version": self.template_version}
            if not content_words(c.text):
                verdicts.append(Verdict(status=Status.UNSCORED, reason="criterion has no content words", **common))
                continue
            overlap = lexical_score(response.text, c.text)
            met = overlap >= self.threshold
            verdicts.append(Verdict(
                status=Status.MET if met else Status.UNMET,
                explanation=f"content-word overlap {overlap:.2f} vs threshold {self.threshold:g}",
                confidence=round(overlap, 4), meta={"overlap": round(overlap, 4)}, **common,
            ))
        return verdicts

    def grade_many(self, items: Sequence[tuple[Rubric, Response]],
                   progress: ProgressHook | None = None) -> list[Verdict]:
        """Verdicts for every criterion of every (rubric, response); ``progress`` counts responses."""
        hook = progress or ProgressHook()
        hook.add_total(len(items))
        out: list[Verdict] = []
        for rubric, response in items:
            out.extend(self.grade(rubric, response))
            hook.advance(1)
        return out

    def close(self) -> None:
        return None
