"""One pair builder (``build_pair_set``) behind the pipeline's ``pairs`` stage and ``promedical data prefs``: same
pairs as the per-rubric rule, and the same reference checks (a verdict pointing nowhere is refused, not dropped)."""

from __future__ import annotations

import pytest

from promedical.data.preferences import PairReport, PairRule, build_pair_set, build_pairs
from promedical.files import UserError
from promedical.rubrics.records import Response, Status, Verdict
from tests.helpers_judge import tiny_responses, tiny_rubrics


def _verdicts(responses: list[Response]) -> list[Verdict]:
    # the first response of each rubric meets everything but the veto; the second violates the veto
    first = {r.rubric_id: r.id for r in reversed(responses)}
    out = []
    for rubric in tiny_rubrics():
        for r in (x for x in responses if x.rubric_id == rubric.id):
            good = first[rubric.id] == r.id
            for c in rubric.criteria:
                met = (c.tier.value != "veto") == good
                out.append(Verdict(response_id=r.id, rubric_id=rubric.id, criterion_id=c.id,
                                   status=Status.MET if met else Status.UNMET, judge="test"))
    return out


def test_pair_set_is_the_per_rubric_rule_over_the_whole_set() -> None:
    rubrics, responses = tiny_rubrics(), tiny_responses()
    built = build_pair_set(rubrics, responses, _verdicts(responses), PairRule(), "test")
    statuses: dict[str, dict[str, Status]] = {}
    for v in _verdicts(responses):
        statuses.setdefault(v.response_id, {})[v.criterion_id] = v.status
    expected = [p for rb in rubrics
                for p in build_pairs(rb, [r for r in responses if r.rubric_id == rb.id], statuses, PairRule(), "test",
                                     PairReport())]
    assert [p.id for p in built.pairs] == [p.id for p in expected] and len(built.pairs) == 2
    assert all(p.decided_by == "s3" for p in built.pairs)
    assert [r.id for r in built.rubrics] == [r.id for r in rubrics]
    assert built.report.pairs == 2 and built.rows and sum(built.expansion.values()) > 0


def test_pair_set_refuses_references_that_point_nowhere() -> None:
    rubrics, responses = tiny_rubrics(), tiny_responses()
    verdicts = _verdicts(responses)
    stray = verdicts[0].model_copy(update={"criterion_id": "c9"})
    with pytest.raises(UserError, match=r"^v\.jsonl: .*criterion_id: 'c9' is not in rubric"):
        build_pair_set(rubrics, responses, [*verdicts[1:], stray], PairRule(), "test", verdicts_path="v.jsonl")
    orphan = Response.build("rb-nowhere", "m", "text")
    with pytest.raises(UserError, match=r"^x\.jsonl: .*rubric_id: no rubric 'rb-nowhere'"):
        build_pair_set(rubrics, [*responses, orphan], verdicts, PairRule(), "test", responses_path="x.jsonl")
    with pytest.raises(UserError, match="duplicate verdict"):
        build_pair_set(rubrics, responses, [*verdicts, verdicts[0]], PairRule(), "test")
