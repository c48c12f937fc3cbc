"""Review rounds: decisions applied (accept, edit, reject), the few-shot pool grows, pass rate per round."""

from __future__ import annotations

from promedical.data.review_rounds import ingest_decisions, select_batch
from promedical.rubrics.review import ReviewDecision
from promedical.rubrics.schema import Criterion, Message, Provenance, Rubric, Tier


def drafted(name: str, version: int = 1, text: str = "Mentions the key fact") -> Rubric:
    return Rubric(id=f"rb-{name}", version=version, prompt=(Message(role="user", content=f"question {name}"),),
                  criteria=(Criterion(id="p1", tier=Tier.PROFICIENCY, text=text, weight=1.0),),
                  provenance=Provenance(author="hf:smollm2", author_kind="model", review_round=0))


def test_round_applies_decisions_and_reports_pass_rate() -> None:
    rubrics = [drafted(n) for n in "abcd"]
    edited = drafted("b", 2, "Mentions the key fact and when to see a doctor").model_copy(
        update={"provenance": Provenance(author="dr-x", author_kind="human", review_round=1, parent="rb-b@1")})
    decisions = [
        ReviewDecision(rubric_id="rb-a", rubric_version=1, round=1, reviewer="dr-x", decision="accept"),
        ReviewDecision(rubric_id="rb-b", rubric_version=1, round=1, reviewer="dr-x", decision="edit", edited=edited),
        ReviewDecision(rubric_id="rb-c", rubric_version=1, round=1, reviewer="dr-y", decision="reject",
                       critique="veto penalises an AI disclaimer"),
        ReviewDecision(rubric_id="rb-zz", rubric_version=1, round=1, reviewer="dr-y", decision="accept"),
        ReviewDecision(rubric_id="rb-a", rubric_version=1, round=2, reviewer="dr-y", decision="accept"),
    ]
    result = ingest_decisions(rubrics, decisions, 1)
    assert [(r.id, r.version) for r in result.rubrics] == [("rb-a", 1), ("rb-b", 2), ("rb-d", 1)]
    assert [(r.id, r.version) for r in result.pool_additions] == [("rb-a", 1), ("rb-b", 2)]
    assert result.rubrics[0].provenance.review_round == 1
    assert result.rejected == [{"rubric_id": "rb-c", "version": 1, "reviewer": "dr-y",
                                "critique": "veto penalises an AI disclaimer"}]
    assert result.pass_rate == 1 / 3  # one accepted as written out of three decided
    record = result.record()
    assert record["decisions"] == {"accept": 1, "edit": 1, "reject": 1} and record["undecided"] == 1
    assert len(record["problems"]) == 2  # the unknown rubric and the decision for another round


def test_batch_selection_skips_reviewed_and_non_drafted() -> None:
    physician = drafted("p").model_copy(update={"provenance": Provenance(author="kqa", author_kind="import")})
    rubrics = [drafted("c"), drafted("a"), physician, drafted("b")]
    assert [r.id for r in select_batch(rubrics, 2, {"rb-a@1"})] == ["rb-b", "rb-c"]
