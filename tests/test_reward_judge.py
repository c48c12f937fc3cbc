"""The reward model as a judge: thresholds -> met/unmet (prohibited veto: met = present) -> the one scoring path."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from promedical.io import UserError, read_responses, read_rubrics  # noqa: E402
from promedical.reward.judge import RMJudge, load_rm_judge  # noqa: E402
from promedical.reward.model import TierThreshold, fresh_rm, load_rm, write_card  # noqa: E402
from promedical.rubrics.records import Status  # noqa: E402
from promedical.rubrics.schema import Polarity, Tier  # noqa: E402
from promedical.rubrics.scoring import score  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "promedical" / "samples"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rm = fresh_rm("tiny-llama", "explicit/1", 192)
    torch.manual_seed(3)
    torch.nn.init.normal_(rm.model.score.weight, std=1.0)
    path = tmp_path_factory.mktemp("rm") / "model"
    rm.model.save_pretrained(path)
    rm.tokenizer.save_pretrained(path)
    write_card(path, rm.card)
    return path


def _rubric_with_prohibited_veto():  # type: ignore[no-untyped-def]
    rubrics = read_rubrics([SAMPLES / "rubrics.jsonl"])
    rubric = next(r for r in rubrics if any(c.polarity is Polarity.PROHIBITED for c in r.criteria))
    response = next(x for x in read_responses(SAMPLES / "responses.jsonl") if x.rubric_id == rubric.id)
    return rubric, response


def test_uncalibrated_checkpoint_is_refused(checkpoint: Path) -> None:
    with pytest.raises(UserError, match="calibrate"):
        load_rm_judge(checkpoint)


def test_verdicts_follow_thresholds_and_polarity(checkpoint: Path) -> None:
    rm = load_rm(checkpoint)
    rubric, response = _rubric_with_prohibited_veto()
    probe = RMJudge(rm.__class__(rm.model, rm.tokenizer, rm.card.model_copy(update={"thresholds": {
        t: TierThreshold(threshold=0.0, rule="test", n=0) for t in ("proficiency", "bonus", "veto")}}), rm.path))
    verdicts = probe.grade(rubric, response)
    assert [v.criterion_id for v in verdicts] == [c.id for c in rubric.criteria]
    for v in verdicts:
        c = rubric.criterion(v.criterion_id)
        satisfied = v.meta["score"] >= 0.0
        expect_met = satisfied if c.polarity is not Polarity.PROHIBITED else not satisfied
        assert (v.status is Status.MET) == expect_met
        assert v.judge == f"rm:{checkpoint}"
    # the same statuses through the one scoring path
    scores = probe.scores(rubric, response)
    assert scores == score(rubric, {v.criterion_id: v.status for v in verdicts})


def test_extreme_thresholds_flip_every_verdict(checkpoint: Path) -> None:
    rm = load_rm(checkpoint)
    rubric, response = _rubric_with_prohibited_veto()
    for threshold, satisfied in ((-1e9, True), (1e9, False)):
        card = rm.card.model_copy(update={"thresholds": {
            t: TierThreshold(threshold=threshold, rule="test", n=0) for t in ("proficiency", "bonus", "veto")}})
        judge = RMJudge(rm.__class__(rm.model, rm.tokenizer, card, rm.path))
        s = judge.scores(rubric, response)
        n_prohibited = sum(c.polarity is Polarity.PROHIBITED for c in rubric.by_tier(Tier.VETO))
        n_required_veto = len(rubric.by_tier(Tier.VETO)) - n_prohibited
        if satisfied:
            assert s.s1 == 1.0 and s.s3 == 0
        else:
            assert s.s1 == 0.0 and s.s3 == n_prohibited + n_required_veto


class _FailingModel(torch.nn.Module):
    """Test double for fault injection only: a model whose forward raises, as a broken backend would."""

    def forward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("injected failure")


def test_model_failure_gives_unscored_not_unmet(checkpoint: Path) -> None:
    rm = load_rm(checkpoint)
    rubric, response = _rubric_with_prohibited_veto()
    card = rm.card.model_copy(update={"thresholds": {
        t: TierThreshold(threshold=0.0, rule="test", n=0) for t in ("proficiency", "bonus", "veto")}})
    broken = rm.__class__(_FailingModel(), rm.tokenizer, card, rm.path)
    verdicts = RMJudge(broken).grade(rubric, response)
    assert verdicts and all(v.status is Status.UNSCORED and "injected failure" in (v.reason or "") for v in verdicts)
    s = score(rubric, {v.criterion_id: v.status for v in verdicts})
    assert s.s1 is None and s.veto_unscored == len(rubric.by_tier(Tier.VETO))


def test_load_judge_dispatches_rm_spec(checkpoint: Path) -> None:
    pytest.importorskip("promedical.judge.protocol")
    from promedical.judge.protocol import Judge, load_judge

    rm = load_rm(checkpoint)
    rm.card.thresholds = {t: TierThreshold(threshold=0.0, rule="test", n=0) for t in ("proficiency", "bonus", "veto")}
    calibrated = checkpoint.parent / "calibrated"
    rm.model.save_pretrained(calibrated)
    rm.tokenizer.save_pretrained(calibrated)
    write_card(calibrated, rm.card)
    judge = load_judge(f"rm:{calibrated}")
    assert isinstance(judge, Judge) and judge.spec == f"rm:{calibrated}"
    rubric, response = _rubric_with_prohibited_veto()
    verdicts = judge.grade_many([(rubric, response), (rubric, response)])
    assert len(verdicts) == 2 * len(rubric.criteria)
    judge.close()
