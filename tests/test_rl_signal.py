"""Group-signal diagnostics: the pure stats on hand-worked groups, and the tracker's streak, warning and stop."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from promedical.rl.signal import SignalTracker, group_stats, with_rates


def test_group_stats_hand_worked() -> None:
    # G = 3: [1, 1, 1] equal; [0, 1, None] std of (0, 1) = 0.7071; [None, None, 2] one scored -> no signal;
    # [0.5, 0.5, None] equal among the scored
    rewards = [1.0, 1.0, 1.0, 0.0, 1.0, None, None, None, 2.0, 0.5, 0.5, None]
    stats = group_stats(rewards, 3)
    assert stats.groups == 4
    assert stats.zero_std_groups == 3 and stats.unscorable_groups == 1
    assert stats.zero_std_share == 0.75
    # mean over the three groups with >= 2 scored completions: (0 + sqrt(0.5) + 0) / 3
    assert stats.group_std == pytest.approx(math.sqrt(0.5) / 3)


def test_group_stats_all_varied_and_all_none() -> None:
    assert group_stats([0.0, 1.0, 2.0, 4.0], 2).zero_std_share == 0.0
    assert group_stats([0.0, 1.0, 2.0, 4.0], 2).group_std == pytest.approx((math.sqrt(0.5) + math.sqrt(2.0)) / 2)
    none = group_stats([None, None, float("nan"), None], 2)
    assert none.zero_std_share == 1.0 and none.unscorable_groups == 2 and none.group_std is None
    assert group_stats([-3.0, -3.0 + 1e-9], 2).zero_std_groups == 1  # float noise is not signal
    with pytest.raises(ValueError):
        group_stats([1.0, 2.0, 3.0], 2)


def _state(step: int) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, is_world_process_zero=True)


def test_tracker_carries_a_split_group_over_to_the_next_call() -> None:
    """A group split between two reward calls (e.g. two processes' slices) is scored once it is complete."""
    tracker = SignalTracker(4, gather=lambda values: values)
    assert tracker.observe([1.0, 1.0, 1.0], _state(0)) is None  # no complete group yet
    record = tracker.observe([1.0, 0.0, 1.0, 2.0, 3.0], _state(0))
    assert record is not None and record.step == 1
    assert (record.groups, record.zero_std_groups) == (2, 1)  # [1,1,1,1] dead, [0,1,2,3] alive
    assert tracker.summary()["steps"][0]["zero_std_share"] == 0.5


def test_tracker_warns_once_per_streak_and_stops() -> None:
    warned: list[str] = []
    logged: dict[str, float] = {}
    tracker = SignalTracker(2, max_zero_std_share=0.5, warn_after=2, stop_after_dead_steps=4,
                            warn=warned.append, gather=lambda values: values)
    dead, alive = [1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]  # share 1.0 vs 0.5 (not more than 0.5: alive)
    for step, rewards in enumerate([dead, dead, dead, alive, dead, dead]):
        tracker.observe(rewards, _state(step), lambda k, v: logged.__setitem__(k, v))
        assert tracker.stop_reason is None
    assert len(warned) == 2  # after steps 2 and 6: one per streak, not one per step
    assert "2 consecutive steps (up to step 2)" in warned[0] and "num_generations" in warned[0]
    tracker.observe(dead, _state(6))
    tracker.observe(dead, _state(7))
    assert tracker.stop_reason is not None and tracker.stop_reason.startswith("signal.stop_after_dead_steps:")
    assert len(warned) == 2
    summary = tracker.summary()
    assert summary["aggregate"]["dead_steps"] == 7 and summary["aggregate"]["longest_dead_streak"] == 4
    assert summary["aggregate"]["zero_std_share"] == pytest.approx(15 / 16)
    assert logged == {"signal/zero_std_share": 1.0, "signal/group_std": 0.0}  # the last step logged
    assert [w["step"] for w in summary["warnings"]] == [2, 6]


def test_with_rates_reuses_the_logged_rates() -> None:
    signal = {"steps": [{"step": 1, "zero_std_share": 1.0}, {"step": 2, "zero_std_share": 0.5}]}
    history = [{"step": 1, "rubric/unscored_rate": 0.25, "rubric/veto_rate": 1.0, "frac_reward_zero_std": 1.0},
               {"step": 2, "scalar/unscored_rate": 0.0}, {"train_runtime": 3.0}]
    steps = with_rates(signal, history)["steps"]
    assert steps[0] == {"step": 1, "zero_std_share": 1.0, "unscored_rate": 0.25, "veto_rate": 1.0,
                        "trl_frac_reward_zero_std": 1.0}
    assert steps[1] == {"step": 2, "zero_std_share": 0.5, "unscored_rate": 0.0}
