"""Shrinking has a time budget (issue 10: some differential shrinks took over five minutes)."""
from __future__ import annotations

from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine

from t1virtio.machines import profiles


def test_ci_profile_bounds_shrinking():
    assert engine.MAX_SHRINKING_SECONDS == profiles.SHRINK_SECONDS["ci"] < 300


def _shrink_calls(budget: float) -> int:
    calls = []

    @settings(max_examples=200, database=None, derandomize=True, deadline=None,
              phases=[Phase.generate, Phase.shrink])
    @given(st.lists(st.integers(0, 1000), min_size=5, max_size=60))
    def failing(xs):
        calls.append(1)
        assert sum(xs) < 500

    old = engine.MAX_SHRINKING_SECONDS
    profiles.set_shrink_budget(budget)
    try:
        failing()
    except AssertionError:
        pass
    finally:
        profiles.set_shrink_budget(old)
    return len(calls)


def test_zero_budget_cuts_the_shrink_short():
    """With no time to shrink, Hypothesis stops after its first shrink attempts; with time, it runs many."""
    assert _shrink_calls(0) < _shrink_calls(30)
