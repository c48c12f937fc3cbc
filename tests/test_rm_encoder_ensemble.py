"""The encoder-ensemble benchmark's score pooling (benchmarks/rm_encoder_ensemble.py)."""

from __future__ import annotations

import pytest

from tests.helpers_scripts import load_benchmark

ensemble = load_benchmark("rm_encoder_ensemble")


def test_runs_on_different_scales_count_equally() -> None:
    # two groups (2 and 1 criteria); run b is run a shifted and stretched, run c reverses a's order
    a = [[0.0, 1.0], [2.0]]
    b = [[10.0, 20.0], [30.0]]
    c = [[2.0, 1.0], [0.0]]
    za, zb, zc = (ensemble.standardised(r) for r in (a, b, c))
    flat = lambda groups: [v for g in groups for v in g]  # noqa: E731
    assert flat(za) == pytest.approx(flat(zb))  # same ranking, any scale: the same standardised scores
    assert sum(flat(za)) == pytest.approx(0.0)
    pooled = ensemble.mean_scores([za, zb, zc])
    assert [len(g) for g in pooled] == [2, 1]
    # a and b outvote c: the last item stays the highest, the first the lowest
    assert pooled[1][0] > pooled[0][1] > pooled[0][0]
    assert flat(ensemble.mean_scores([za, zc])) == pytest.approx([0.0, 0.0, 0.0])
