"""Pairwise outcomes from known answers: which response wins follows from the answers, never from the position.

The judge's answers are written beforehand into its own completion cache (real SQLite, the rows a previous run would
have left), keyed by the prompt rendered from ``promedical.judge.prompts`` with the first response shown as A and
then the second. The generator behind the cache points at a closed port: a request whose prompt differs from the
expected one (responses shown in the wrong slots) misses the cache and ends ``unscored``.
"""

from __future__ import annotations

import json
from pathlib import Path

from promedical.judge.pairwise import PairwiseConfig, PairwiseJudge, make_pairs, summarise_pairs
from promedical.judge.prompts import DEFAULT_PAIRWISE, PAIRWISE_SCHEMA, render_pairwise
from promedical.llm.cache import CompletionCache, cache_key
from promedical.llm.protocol import Completion, GenerationParams, Request
from promedical.llm.spec import load_generator
from promedical.rubrics.records import Response
from promedical.rubrics.schema import Rubric
from tests.helpers_judge import tiny_rubrics

SPEC = "openai:judge@http://127.0.0.1:9/v1"  # nothing listens: only cached answers exist
CONFIG = PairwiseConfig(max_tokens=64, reasks=0)


def _responses() -> list[Response]:
    texts = ["Give fluids and rest.", "Give aspirin.", "See a doctor if it lasts.", "Wait and see."]
    return [Response.build("rb-fever", "test", t) for t in texts]


def _seed(cache_path: Path, rubric: Rubric, shown_a: Response, shown_b: Response, winner: str) -> None:
    messages = render_pairwise(DEFAULT_PAIRWISE, rubric, shown_a.text, shown_b.text)
    request = Request(messages, GenerationParams(temperature=CONFIG.temperature, max_tokens=CONFIG.max_tokens,
                                                 seed=CONFIG.seed, json_schema=PAIRWISE_SCHEMA))
    generator = load_generator(SPEC)
    cache = CompletionCache(cache_path)
    answer = json.dumps({"explanation": "known answer", "winner": winner})
    cache.put(cache_key(generator.spec, request), generator.spec, request, Completion(text=answer,
                                                                                       finish_reason="stop"))
    cache.close()


def test_the_winner_is_the_response_both_orders_name_whatever_its_position(tmp_path: Path) -> None:
    rubric = tiny_rubrics()[0]
    pairs = make_pairs({rubric.id: rubric}, _responses())
    assert len(pairs) == 6
    cache = tmp_path / "cache.sqlite"
    # answers as (first shown as A, then second shown as A); the last pair has only its first order answered
    answers = [("A", "B"), ("B", "A"), ("A", "A"), ("tie", "tie"), ("B", "B"), ("A", None)]
    expected = [("first", 0), ("second", 1), ("inconsistent", None), ("tie", None), ("inconsistent", None),
                ("unscored", None)]
    for (_, first, second), (ab, ba) in zip(pairs, answers, strict=True):
        _seed(cache, rubric, first, second, ab)
        if ba is not None:
            _seed(cache, rubric, second, first, ba)
    judge = PairwiseJudge(load_generator(SPEC, retries=0, timeout=5, cache_path=cache), CONFIG)
    records = judge.compare(pairs)
    judge.close()
    got = [(r["outcome"], r["winner_id"]) for r in records]
    want = [(outcome, None if k is None else (first, second)[k].id)
            for (outcome, k), (_, first, second) in zip(expected, pairs, strict=True)]
    assert got == want
    assert "judge call failed" in (records[-1]["reason"] or "")
    summary = summarise_pairs(records)
    assert (summary["first"], summary["second"], summary["tie"], summary["inconsistent"], summary["unscored"]) == \
        (1, 1, 1, 2, 1)
    assert summary["position_bias_rate"] == 2 / 5
    # "A" in 5 of the 11 answered orders (the unscored pair's answered order counts too)
    assert summary["first_position_win_rate"] == 5 / 11
