"""Prefix-shared scoring equals naive scoring (within 1e-4) on a real decoder; encoders fall back to naive."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from promedical.reward.inputs import CriterionInput, Group  # noqa: E402
from promedical.reward.model import fresh_rm  # noqa: E402
from promedical.reward.score import score_naive, score_shared  # noqa: E402

TIERS = ("proficiency", "bonus", "veto")


def _groups() -> list[Group]:
    crit = [CriterionInput(f"Mentions point {i}" + " in more detail" * i, TIERS[i % 3],
                           "prohibited" if i % 3 == 2 else "required") for i in range(7)]
    return [
        Group("What should I do about chest pain?", "Call emergency services now. " * 20, tuple(crit)),
        Group("Is ibuprofen safe?", "Usually, with food.", tuple(crit[:2])),
        Group("Empty criteria", "text", ()),
    ]


@pytest.fixture(scope="module")
def tiny_rm():  # type: ignore[no-untyped-def]
    rm = fresh_rm("tiny-llama", "explicit/1", 256, seed=0)
    torch.manual_seed(1)
    torch.nn.init.normal_(rm.model.score.weight, std=1.0)  # a random head with real spread, not near-zero scores
    return rm


def test_shared_equals_naive_on_decoder(tiny_rm) -> None:  # type: ignore[no-untyped-def]
    assert tiny_rm.decoder
    naive = score_naive(tiny_rm, _groups(), batch_size=3)
    shared = score_shared(tiny_rm, _groups(), batch_size=4)  # 7 criteria -> two suffix batches over one prefix
    assert [len(g) for g in shared] == [7, 2, 0]
    flat_n = [x for g in naive for x in g]
    flat_s = [x for g in shared for x in g]
    assert max(abs(a - b) for a, b in zip(flat_n, flat_s, strict=True)) < 1e-4
    assert max(flat_n) - min(flat_n) > 1e-3  # the scores differ across criteria: the check is not vacuous


def test_criterion_changes_the_score(tiny_rm) -> None:  # type: ignore[no-untyped-def]
    scores = score_shared(tiny_rm, _groups()[:1])[0]
    assert len(set(round(s, 6) for s in scores)) > 1


def test_encoder_shared_path_is_batched_naive() -> None:
    from promedical.models import ModelNotAvailable

    try:
        rm = fresh_rm("minilm", "explicit/1", 128)
    except ModelNotAvailable as exc:
        pytest.skip(str(exc))
    assert not rm.decoder
    groups = _groups()[:2]
    assert score_shared(rm, groups) == score_naive(rm, groups)


def test_shared_equals_naive_with_windows() -> None:
    """windows/1 on a decoder: each window's prefix runs once for all criteria; pooled scores still equal naive."""
    from promedical.reward.score import score_groups, score_groups_naive
    from promedical.reward.windows import WindowSettings

    rm = fresh_rm("tiny-llama", "explicit/1", 96, seed=0, windows=WindowSettings(max_windows=3, overlap=0.25))
    torch.manual_seed(1)
    torch.nn.init.normal_(rm.model.score.weight, std=1.0)
    naive = score_groups_naive(rm, _groups(), batch_size=5)
    shared = score_groups(rm, _groups(), batch_size=4)
    assert [len(g.windowed.prefixes) for g in shared] == [3, 1, 1]  # the long answer is read in three windows
    w = shared[0].windowed
    assert not w.truncated and w.covered_tokens == w.response_tokens == 101
    flat_n = [x for g in naive for x in g.scores]
    flat_s = [x for g in shared for x in g.scores]
    assert max(abs(a - b) for a, b in zip(flat_n, flat_s, strict=True)) < 1e-4
