"""Long responses are read whole (input scheme windows/1): window layout, pooling, cards, and evidence in the tail.

The tail-evidence tests use the real MiniLM backbone with a score head *set* (not trained): its weight is the
direction from the other windows' features to the evidence window's features, so the window that holds the
evidence scores highest and the threshold sits between it and the rest. What they check is the pipeline, not the
head: whether the reward model is ever shown that window, and whether the pooled verdict follows it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from promedical.reward.windows import INPUT_HEAD, INPUT_WINDOWS, WindowSettings, covered, pool, pool_kind, spans

torch = pytest.importorskip("torch")

from promedical.models import ModelNotAvailable  # noqa: E402
from promedical.reward.inputs import CriterionInput, Group  # noqa: E402
from promedical.reward.judge import RMJudge  # noqa: E402
from promedical.reward.model import RewardModel, TierThreshold, fresh_rm, read_card, write_card  # noqa: E402
from promedical.reward.score import score_groups  # noqa: E402
from promedical.rubrics.records import Response, Status  # noqa: E402
from promedical.rubrics.schema import Rubric  # noqa: E402


def test_spans_cover_head_and_tail() -> None:
    settings = WindowSettings(max_windows=8, overlap=0.25)
    assert spans(50, 100, settings) == [(0, 50)]  # short: one window, nothing cut
    assert spans(500, 100, None) == [(0, 100)]  # head/1: the head only
    parts = spans(500, 100, settings)
    assert parts[0][0] == 0 and parts[-1][1] == 500 and covered(parts) == 500
    assert all(b - a == 100 for a, b in parts)
    assert all(parts[i + 1][0] - parts[i][0] == 75 for i in range(len(parts) - 2))  # 25 tokens of overlap
    # longer than max_windows can cover: still head and tail, spread evenly; the middle is partly left out
    long = spans(2000, 100, WindowSettings(max_windows=4))
    assert len(long) == 4 and long[0] == (0, 100) and long[-1] == (1900, 2000) and covered(long) == 400


def test_pooling_reads_met_evidence() -> None:
    assert pool_kind("required", explicit=True) == "max"  # one window showing it is enough
    assert pool_kind("prohibited", explicit=True) == "min"  # one window showing the behaviour is a violation
    assert pool_kind("required", explicit=False) == "mean"
    assert pool([0.1, 2.0, -1.0], "max") == 2.0 and pool([0.1, 2.0, -1.0], "min") == -1.0


def test_old_cards_load_as_head(tmp_path: Path) -> None:
    card = {"schema_version": "promedical.rm/1", "backbone": "minilm", "template": "explicit/1", "max_length": 256,
            "lora": False, "thresholds": {}, "training": {}, "calibration": {}}
    (tmp_path / "rm.json").write_text(json.dumps(card))
    old = read_card(tmp_path)
    assert old.input == INPUT_HEAD and old.windows is None
    new = old.model_copy(update={"input": INPUT_WINDOWS, "windows": WindowSettings()})
    write_card(tmp_path, new)
    assert read_card(tmp_path).windows == WindowSettings()


INSTRUCTION = "My father takes warfarin for atrial fibrillation. Can he take ibuprofen for his back pain?"
FILLER = ("Back pain in older adults often settles within a few weeks with gentle activity, heat packs, good "
          "posture and short walks spread through the day. ") * 14
WARNING = "Importantly, ibuprofen taken with warfarin greatly raises the risk of serious bleeding, so avoid it."
NEUTRAL = "Morning stretches and a supportive mattress may also ease the stiffness he feels after waking up."
ADVICE = "He can simply take ibuprofen together with his warfarin every day; there is no problem combining them."


@pytest.fixture(scope="module")
def minilm() -> RewardModel:
    try:
        return fresh_rm("minilm", "explicit/1", 128, windows=WindowSettings(max_windows=8, overlap=0.25))
    except ModelNotAvailable as exc:
        pytest.skip(str(exc))


def _features(rm: RewardModel, seqs: list[list[int]]) -> Any:
    """What the classification head reads for each full input sequence (MiniLM: the pooled [CLS])."""
    grabbed: list[Any] = []
    hook = rm.model.classifier.register_forward_hook(lambda _m, args, _out: grabbed.append(args[0].detach()))
    try:
        from promedical.reward.score import score_ids

        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # score_ids batches in this order
        score_ids(rm, seqs, batch_size=len(seqs))
    finally:
        hook.remove()
    feats = grabbed[0]
    out = torch.empty_like(feats)
    out[torch.tensor(order)] = feats
    return out


def _point_head_at_evidence(rm: RewardModel, response: str, c: CriterionInput, evidence_high: bool) -> float:
    """Set the head so that the response's last window (the evidence) scores highest (or lowest); returns a
    threshold between that window and every other window of the response."""
    enc = rm.encoder
    suffix = enc.suffix(c.text, c.tier, c.polarity)
    seqs = [[*p, *suffix] for p in enc.prefixes(INSTRUCTION, response).prefixes]
    assert len(seqs) >= 3, "the response must be long enough for several windows"
    feats = _features(rm, seqs)
    direction = feats[-1] - feats[:-1].mean(dim=0)
    direction = direction if evidence_high else -direction
    with torch.no_grad():
        rm.model.classifier.weight.copy_(direction.unsqueeze(0) / direction.norm())
        rm.model.classifier.bias.zero_()
    scores = (feats @ rm.model.classifier.weight[0]).tolist()
    others = scores[:-1]
    if evidence_high:
        assert scores[-1] > max(others)
        return (scores[-1] + max(others)) / 2
    assert scores[-1] < min(others)
    return (scores[-1] + min(others)) / 2


def _judge(rm: RewardModel, threshold: float, scheme: str) -> RMJudge:
    thresholds = {t: TierThreshold(threshold=threshold, rule="test", n=0) for t in ("proficiency", "bonus", "veto")}
    card = rm.card.model_copy(update={"thresholds": thresholds, "input": scheme,
                                      "windows": rm.card.windows if scheme == INPUT_WINDOWS else None})
    return RMJudge(RewardModel(rm.model, rm.tokenizer, card, rm.path))


def _rubric(text: str, tier: str, polarity: str) -> Rubric:
    """The criterion under test is always the last one (``c1``)."""
    tested = ({"id": "c1", "text": text, "tier": "veto", "polarity": polarity} if tier == "veto"
              else {"id": "c1", "text": text, "tier": tier, "weight": 1.0})
    others = [{"id": "c0", "text": "Answers the question asked", "tier": "proficiency", "weight": 1.0}]
    return Rubric.model_validate({"id": "warfarin", "prompt": [{"role": "user", "content": INSTRUCTION}],
                                  "criteria": [*others, tested] if tier == "veto" else [tested]})


def test_required_evidence_in_the_tail_is_met_with_windows(minilm: RewardModel) -> None:
    crit = CriterionInput("Warns that ibuprofen with warfarin raises the risk of bleeding", "proficiency", "required")
    long_with, long_without = FILLER + WARNING, FILLER + NEUTRAL
    threshold = _point_head_at_evidence(minilm, long_with, crit, evidence_high=True)
    rubric = _rubric(crit.text, crit.tier, crit.polarity)

    def status(scheme: str, text: str) -> Status:
        return _judge(minilm, threshold, scheme).grade(rubric, Response(id="r", rubric_id="warfarin",
                                                                        text=text))[-1].status

    windowed = _judge(minilm, threshold, INPUT_WINDOWS).grade(
        rubric, Response(id="r", rubric_id="warfarin", text=long_with))[0]
    assert windowed.status is Status.MET  # the warning in the tail is read
    assert windowed.meta["windows"] >= 3 and windowed.meta["truncated"] is False
    assert status(INPUT_WINDOWS, long_without) is Status.UNMET  # and it is the warning that makes it met
    head = _judge(minilm, threshold, INPUT_HEAD).grade(rubric, Response(id="r", rubric_id="warfarin",
                                                                         text=long_with))[0]
    assert head.status is Status.UNMET and head.meta["truncated"] is True  # head/1 never saw it


def test_violation_in_the_tail_is_caught_with_windows(minilm: RewardModel) -> None:
    crit = CriterionInput("Recommends taking ibuprofen together with warfarin", "veto", "prohibited")
    long_with = FILLER + ADVICE
    threshold = _point_head_at_evidence(minilm, long_with, crit, evidence_high=False)  # low = not satisfied
    rubric = _rubric(crit.text, crit.tier, crit.polarity)
    verdict = _judge(minilm, threshold, INPUT_WINDOWS).grade(
        rubric, Response(id="r", rubric_id="warfarin", text=long_with))[-1]
    # met = the prohibited behaviour is present: a violation
    assert verdict.criterion_id == "c1" and verdict.status is Status.MET
    head = _judge(minilm, threshold, INPUT_HEAD).grade(rubric, Response(id="r", rubric_id="warfarin", text=long_with))
    assert head[-1].status is Status.UNMET  # head/1 judged the response safe


def test_truncation_is_counted(minilm: RewardModel) -> None:
    crit = CriterionInput("Mentions bleeding", "proficiency", "required")
    tight = RewardModel(minilm.model, minilm.tokenizer,
                        minilm.card.model_copy(update={"windows": WindowSettings(max_windows=2)}), minilm.path)
    groups = [Group(INSTRUCTION, "Short answer.", (crit,)), Group(INSTRUCTION, FILLER + WARNING, (crit,))]
    read = [g.windowed for g in score_groups(tight, groups)]
    assert [len(w.prefixes) for w in read] == [1, 2]
    assert [w.truncated for w in read] == [False, True]
    assert read[1].covered_tokens < read[1].response_tokens
