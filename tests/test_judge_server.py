"""LLM judge against a real llama.cpp server (SmolLM2): completeness, provenance, accounting and the cache.

SmolLM2 is not a competent judge: these tests check mechanics only, never the quality of its verdicts.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from pathlib import Path

import pytest

from promedical.judge.pairwise import PairwiseConfig, PairwiseJudge, make_pairs, summarise_pairs
from promedical.judge.parse import parse_pairwise
from promedical.judge.pointwise import PointwiseConfig, PointwiseJudge
from promedical.judge.protocol import Judge, load_judge
from promedical.llm.spec import load_generator
from promedical.rubrics.records import Status
from tests.helpers_judge import items, tiny_responses, tiny_rubrics

pytestmark = [pytest.mark.server, pytest.mark.slow]

TEMPLATE = {"grouped": "pointwise-grouped/3", "single": "pointwise-single/2"}
EXPECTED = {(x.id, c.id) for r, x in items() for c in r.criteria}


def _judge(spec: str, cache: Path, mode: str) -> PointwiseJudge:
    config = PointwiseConfig(mode=mode, max_tokens=160)  # type: ignore[arg-type]
    judge = load_judge(spec, config=config, timeout=120, retries=1, concurrency=2, cache_path=cache)
    assert isinstance(judge, PointwiseJudge) and isinstance(judge, Judge)
    return judge


@pytest.mark.parametrize("mode", ["grouped", "single"])
def test_every_criterion_gets_one_verdict_and_a_rerun_is_free(llama_spec: str, tmp_path: Path, mode: str) -> None:
    judge = _judge(llama_spec, tmp_path / "cache.sqlite", mode)
    verdicts = judge.grade_many(items())
    judge.close()
    assert sorted(v.key for v in verdicts) == sorted(EXPECTED)
    for v in verdicts:
        assert v.judge == llama_spec and v.template_version == TEMPLATE[mode]
        assert v.meta["mode"] == mode and v.meta["attempts"] >= 1
        assert v.status is not Status.UNSCORED or v.reason
    first = judge.usage
    per_round = len(items()) if mode == "grouped" else len(EXPECTED)
    assert first.requests >= per_round and first.calls == first.requests and first.cache_hits == 0
    assert first.prompt_tokens > 0 and first.completion_tokens > 0

    again = _judge(llama_spec, tmp_path / "cache.sqlite", mode)
    repeat = again.grade_many(items())
    again.close()
    assert again.usage.calls == 0 and again.usage.cache_hits == again.usage.requests == first.requests
    assert again.usage.prompt_tokens == 0
    assert [(v.key, v.status) for v in repeat] == [(v.key, v.status) for v in verdicts]
    assert all(v.meta["cached"] for v in repeat if v.status is not Status.UNSCORED)


def _block(user: str, tag: str) -> str:
    found = re.findall(rf"<{tag}>\n(.*?)\n</{tag}>", user, flags=re.S)
    assert len(found) == 1, f"{tag}: {len(found)} blocks"
    return html.unescape(found[0])


def _expected_outcome(record: dict) -> tuple[str, str | None]:
    """The outcome worked out again from each order's raw answer and which response it showed as A and B."""
    named = []
    for order in record["orders"]:
        letter = parse_pairwise(order["raw"])[0] if order["raw"] else None
        assert order["winner"] == letter  # the recorded letter is the one in the judge's answer
        if letter is None:
            return "unscored", None
        named.append({"A": order["a"], "B": order["b"], "tie": "tie"}[letter])
    if named[0] != named[1]:
        return "inconsistent", None
    if named[0] == "tie":
        return "tie", None
    return ("first" if named[0] == record["first_id"] else "second"), named[0]


def test_pairwise_asks_both_orders_and_reports_position_bias(llama_spec: str, tmp_path: Path) -> None:
    rubrics = {r.id: r for r in tiny_rubrics()}
    responses = tiny_responses()
    texts = {r.id: r.text for r in responses}
    pairs = make_pairs(rubrics, responses)
    assert len(pairs) == 2
    generator = load_generator(llama_spec, timeout=120, retries=1, concurrency=2, cache_path=tmp_path / "c.sqlite")
    judge = PairwiseJudge(generator, PairwiseConfig(max_tokens=96))
    records = judge.compare(pairs)
    judge.close()
    assert judge.usage.requests >= 4
    for record, (rubric, first, second) in zip(records, pairs, strict=True):
        assert (record["rubric_id"], record["first_id"], record["second_id"]) == (rubric.id, first.id, second.id)
        assert [(o["a"], o["b"]) for o in record["orders"]] == [(first.id, second.id), (second.id, first.id)]
        assert record["template_version"] == "pairwise/2" and record["judge"] == llama_spec
        # the outcome follows from the answers: a response named in both orders wins, whichever position it had
        assert (record["outcome"], record["winner_id"]) == _expected_outcome(record)
    # what the model was shown: each request's A and B blocks hold the texts of the responses its audit names
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        sent = [(json.loads(m), json.loads(a)) for m, a in db.execute("SELECT messages, audit FROM completions")]
    shown = set()
    for messages, audit in sent:
        a_id, b_id = audit["response_ids"]
        user = messages[1]["content"]
        assert (_block(user, "response_A"), _block(user, "response_B")) == (texts[a_id], texts[b_id])
        shown.add((a_id, b_id))
    answered = {(o["a"], o["b"]) for r in records for o in r["orders"] if o["raw"]}
    assert answered <= shown
    summary = summarise_pairs(records)
    assert summary["pairs"] == 2 and sum(summary[k] for k in ("first", "second", "tie", "inconsistent",
                                                               "unscored")) == 2
    answered_pairs = 2 - summary["unscored"]
    if answered_pairs:
        assert summary["position_bias_rate"] == summary["inconsistent"] / answered_pairs
