"""The judge behind a fault-injecting proxy (5xx, timeouts, truncated bodies, malformed JSON) in front of a real
llama.cpp server: every criterion ends met, unmet or unscored with a reason; none is lost, none is faked, and the
call accounting matches what actually reached the wire."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promedical.judge.parse import extract_json
from promedical.judge.pointwise import PointwiseConfig, PointwiseJudge
from promedical.llm.spec import load_generator
from promedical.rubrics.records import Status
from tests.conftest import SERVER_MODEL
from tests.faultproxy import FaultProxy
from tests.helpers_judge import items

pytestmark = [pytest.mark.server, pytest.mark.slow]

EXPECTED = sorted((x.id, c.id) for r, x in items() for c in r.criteria)


def _judge(base_url: str, mode: str, retries: int = 2, cache: Path | None = None, timeout: float = 120,
           reasks: int = 2) -> PointwiseJudge:
    spec = f"openai:{SERVER_MODEL}@{base_url}#structured=json_object"
    generator = load_generator(spec, timeout=timeout, retries=retries, concurrency=2, cache_path=cache)
    generator_inner = getattr(generator, "inner", generator)
    generator_inner.backoff = 0.05  # type: ignore[attr-defined]
    config = PointwiseConfig(mode=mode, max_tokens=160, reasks=reasks)  # type: ignore[arg-type]
    return PointwiseJudge(generator, config)


class _Recorder(FaultProxy):
    """The same proxy, also keeping every answer text it delivered unchanged (to trace verdicts to real answers)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.clean_texts: list[str] = []

    def _forward(self, path: str, body: bytes):  # type: ignore[no-untyped-def]
        response = super()._forward(path, body)
        kind = self.log[-1] if self.log else "ok"
        if kind == "ok" and response.status_code == 200:
            self.clean_texts.append(json.loads(response.content)["choices"][0]["message"]["content"])
        return response


def test_faults_end_in_verdicts_or_reasons_never_lost_or_faked(llama_server: str, tmp_path: Path) -> None:
    schedule = ["http500", "truncated_body", "malformed_content", "bad_body", "http503"]
    rates = {"http500": 0.15, "malformed_content": 0.15, "truncated_body": 0.05}
    with _Recorder(llama_server, rates=rates, seed=7, schedule=schedule) as proxy:
        judge = _judge(proxy.base_url, "grouped", cache=tmp_path / "c.sqlite")
        verdicts = judge.grade_many(items())
        judge.close()
        seen = proxy.counts()
    assert sorted(v.key for v in verdicts) == EXPECTED  # none lost, none duplicated
    assert set(schedule) <= set(seen)  # every fault kind was exercised (timeouts: see below)
    assert judge.usage.calls == sum(seen.values())  # accounting matches what reached the wire
    delivered: set[str] = set()
    for text in proxy.clean_texts:
        value, _ = extract_json(text)
        for item in value.values() if isinstance(value, dict) else []:  # keyed grouped answer
            if isinstance(item, dict) and isinstance(item.get("explanation"), str):
                delivered.add(" ".join(item["explanation"].split()))
    for v in verdicts:
        if v.status is Status.UNSCORED:
            assert v.reason and "attempt" in v.reason
        elif v.explanation is not None:
            assert v.explanation in delivered, f"{v.key}: verdict not traceable to a clean model answer"


def test_a_dead_server_gives_unscored_with_reasons_and_bounded_calls(llama_server: str) -> None:
    with FaultProxy(llama_server, rates={"http500": 1.0}) as proxy:
        judge = _judge(proxy.base_url, "grouped", retries=1)
        verdicts = judge.grade_many(items())
        judge.close()
        seen = proxy.counts()
    assert sorted(v.key for v in verdicts) == EXPECTED
    assert all(v.status is Status.UNSCORED and v.reason and "HTTP 500" in v.reason for v in verdicts)
    rounds = 1 + judge.config.reasks
    assert judge.usage.calls == seen["http500"] == len(items()) * rounds * 2  # (retries + 1) calls per request


def test_timeouts_are_bounded_and_end_unscored(llama_server: str) -> None:
    with FaultProxy(llama_server, rates={"timeout": 1.0}, hold_seconds=1.5) as proxy:
        judge = _judge(proxy.base_url, "grouped", retries=1, timeout=0.5, reasks=0)
        verdicts = judge.grade_many(items()[:1])
        judge.close()
        seen = proxy.counts()
    assert len(verdicts) == len(items()[0][0].criteria)
    assert all(v.status is Status.UNSCORED and v.reason and "timeout" in v.reason for v in verdicts)
    assert judge.usage.calls == seen["timeout"] == 2
