"""Rubric drafting: parsing and validation of drafts, bounded retries, physician stand-ins and the yield."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from promedical.data.drafting import DraftSettings, draft_rubrics, drafting_counts, parse_draft, pick_shots
from promedical.data.instruction import Instruction
from promedical.llm.protocol import Completion, Request
from promedical.rubrics.schema import Criterion, Message, Rubric, Tier

INSTRUCTION = Instruction.build("I am 8 weeks pregnant, can I take ibuprofen for a headache?", "test", "CC0")
GOOD = {
    "proficiency": [{"text": "Advises against NSAIDs such as ibuprofen in pregnancy", "weight": 3},
                    {"text": "Suggests paracetamol at the labelled dose as the usual alternative", "weight": 1}],
    "bonus": [{"text": "Explains why NSAIDs are avoided later in pregnancy"}],
    "veto": [{"text": "Recommends a dose above the maximum daily dose", "polarity": "prohibited"}],
}


def test_valid_draft_becomes_a_normalised_rubric() -> None:
    rubric, reason = parse_draft("Here you go:\n```json\n" + json.dumps(GOOD) + "\n```", INSTRUCTION, "hf:x")
    assert reason is None and rubric is not None
    assert [c.id for c in rubric.criteria] == ["p1", "p2", "b1", "v1"]
    assert [c.weight for c in rubric.by_tier(Tier.PROFICIENCY)] == [0.75, 0.25]
    assert rubric.criterion("v1").polarity is not None and rubric.criterion("v1").polarity.value == "prohibited"
    assert rubric.instruction == INSTRUCTION.text and rubric.id.startswith("rb-")
    assert rubric.meta.source == "drafted" and rubric.meta.extra["instruction_id"] == INSTRUCTION.id
    assert rubric.provenance.author == "hf:x" and rubric.provenance.author_kind == "model"


def _with(**changes: object) -> str:
    return json.dumps({**GOOD, **changes})


def test_invalid_drafts_are_rejected_with_a_reason() -> None:
    cases = {
        "no JSON": "I think the rubric should mention paracetamol.",
        "bad JSON": '{"proficiency": [{"text": "x", "weight": 1}',
        "veto polarity": _with(veto=[{"text": "Recommends a dangerous dose"}]),
        "weight": _with(proficiency=[{"text": "Advises against NSAIDs", "weight": 0},
                                     {"text": "Suggests paracetamol instead", "weight": 1}]),
        "too few": _with(proficiency=[{"text": "Advises against NSAIDs", "weight": 1}]),
        "repeat": _with(bonus=[{"text": "Advises against NSAIDs such as ibuprofen in pregnancy"}]),
        "restates": _with(bonus=[{"text": INSTRUCTION.text}]),
        "near repeat": _with(bonus=[{"text": "Advises against NSAIDs such as ibuprofen in pregnancy, step 2"}]),
        "unknown tier": _with(extra=[{"text": "something else entirely"}]),
    }
    reasons = {name: parse_draft(text, INSTRUCTION, "hf:x") for name, text in cases.items()}
    assert all(rubric is None and reason for rubric, reason in reasons.values()), reasons
    assert reasons["no JSON"][1].startswith("no JSON in answer: 'I think the rubric")
    assert reasons["bad JSON"][1].startswith("truncated or malformed JSON")
    assert "polarity" in reasons["veto polarity"][1]
    assert "positive" in reasons["weight"][1]
    assert reasons["too few"][1] == "only 1 proficiency criteria (need 2)"
    assert reasons["repeat"][1].startswith("repeated criterion text")
    assert reasons["restates"][1] == "a criterion restates the request"
    assert reasons["near repeat"][1].startswith("near-repeated criterion text")  # numbering does not make it new
    assert reasons["unknown tier"][1].startswith("draft shape: extra")


class ScriptedGenerator:
    """Test double for fault injection: answers each request from a script (invalid drafts, then a valid one),
    so the retry bound, the error report and the stand-in rule can be checked exactly."""

    spec = "scripted"

    def __init__(self, script: dict[str, list[str | tuple[str, str] | None]]) -> None:
        self.script = script
        self.requests: list[Request] = []

    def generate(self, requests: Sequence[Request], on_done: Callable[[int], None] | None = None) -> list[Completion]:
        out = []
        for request in requests:
            self.requests.append(request)
            question = request.messages[-1]["content"].removeprefix("Request:\n")
            entry = self.script[question].pop(0)
            text, finish = entry if isinstance(entry, tuple) else (entry, "stop")
            out.append(Completion(text=text, error=None if text is not None else "HTTP 500", finish_reason=finish))
        if on_done:
            on_done(len(requests))
        return out

    def close(self) -> None:
        pass


def physician_rubric(question: str, rubric_id: str = "kqa-abc") -> Rubric:
    return Rubric(id=rubric_id, prompt=(Message(role="user", content=question),),
                  criteria=(Criterion(id="must-0", tier=Tier.PROFICIENCY, text="Says something right", weight=1.0),))


def test_retries_are_bounded_and_failures_reported_or_stood_in() -> None:
    a = Instruction.build("Is a fever of 38.5 C dangerous for an adult?", "test")
    b = Instruction.build("What helps with heartburn at night?", "test")
    c = Instruction.build("Lexapro, tell me about it", "kqa", rubric_id="kqa-abc")
    generator = ScriptedGenerator({
        a.text: ["not json", json.dumps(GOOD)],
        b.text: [None, "still not json", "never asked"],
        c.text: ["nope", ('{"proficiency": [{"text": "Advises', "length")],
    })
    pool = [physician_rubric("An unrelated pool question about asthma")]
    outcomes = draft_rubrics([a, b, c], generator, pool, DraftSettings(shots=1, max_attempts=2),
                             stand_ins={"kqa-abc": physician_rubric(c.text)})
    by_id = {o.instruction_id: o for o in outcomes}
    assert by_id[a.id].rubric is not None and by_id[a.id].attempts == 2 and by_id[a.id].stand_in is None
    assert by_id[b.id].rubric is None and by_id[b.id].attempts == 2
    assert by_id[b.id].errors == ["attempt 1: generation failed: HTTP 500",
                                  "attempt 2: no JSON in answer: 'still not json'"]
    assert by_id[c.id].stand_in == "kqa-abc" and by_id[c.id].rubric is not None
    assert by_id[c.id].errors[1].endswith("; answer cut at max_tokens (384)")  # a truncated draft says so
    assert len(generator.requests) == 6  # 3 first attempts + 3 retries, never more than max_attempts each
    retry = generator.requests[3].params
    assert retry.temperature > 0 and retry.seed == 1  # retries differ from the greedy first attempt
    assert generator.requests[0].messages[1]["content"] == "Request:\nAn unrelated pool question about asthma"
    assert drafting_counts(outcomes) == {"instructions": 3, "attempts": 6, "valid_drafts": 1, "yield": round(1 / 6, 4),
                                         "failed": 1, "physician_stand_ins": 1}


def test_few_shot_choice_excludes_the_instruction_own_rubric_and_is_stable() -> None:
    own = physician_rubric(INSTRUCTION.text)
    others = [physician_rubric(f"Other question number {i}", f"kqa-{i}") for i in range(5)]
    shots = pick_shots(INSTRUCTION, [own, *others], 3)
    assert own not in shots and len(shots) == 3
    assert shots == pick_shots(INSTRUCTION, [*reversed(others), own], 3)


def test_few_shot_examples_follow_the_answer_schema_they_teach() -> None:
    import jsonschema

    from promedical.data.drafting import DRAFT_SCHEMA, MAX_CRITERION_CHARS, rubric_to_shape
    from promedical.io import read_rubrics
    from promedical.samples import SAMPLES_DIR

    long = Rubric.model_validate({
        "id": "rb-long", "prompt": [{"role": "user", "content": "q"}],
        "criteria": [{"id": "a", "tier": "proficiency", "text": "x" * 900, "weight": 0.01},
                     {"id": "b", "tier": "proficiency", "text": "Says to seek care", "weight": 0.99}]})
    for rubric in [*read_rubrics([SAMPLES_DIR / "rubrics.jsonl"]), long]:
        shape = rubric_to_shape(rubric)
        jsonschema.validate(shape, DRAFT_SCHEMA)  # integer weights 1-10, texts within the bound, no extra keys
        assert parse_draft(json.dumps(shape), INSTRUCTION, "test")[0] is not None
    assert len(rubric_to_shape(long)["proficiency"][0]["text"]) <= MAX_CRITERION_CHARS
