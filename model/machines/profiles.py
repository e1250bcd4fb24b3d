"""Hypothesis budgets, registered once and chosen by ``T1VIRTIO_PROFILE`` (ci, dev, campaign)."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)

settings.register_profile("ci", max_examples=60, stateful_step_count=30, derandomize=True,
                          database=None, **_COMMON)
settings.register_profile("dev", max_examples=200, stateful_step_count=50, **_COMMON)
settings.register_profile("campaign", max_examples=5000, stateful_step_count=100, **_COMMON)


# Seconds Hypothesis may spend shrinking one failure, per profile (its own default is 300: issue 10 saw
# differential shrinks over five minutes). A shrink cut short still reports a failing, smaller example.
SHRINK_SECONDS = {"ci": 30, "dev": 60, "campaign": 300}


def set_shrink_budget(seconds: float) -> None:
    """Bound the time Hypothesis spends shrinking one failure to ``seconds``.

    Hypothesis keeps this bound in ``hypothesis.internal.conjecture.engine.MAX_SHRINKING_SECONDS``, read when a
    shrink starts; if a Hypothesis release drops it, this fails loudly rather than running unbounded."""
    from hypothesis.internal.conjecture import engine
    if not hasattr(engine, "MAX_SHRINKING_SECONDS"):
        raise RuntimeError("this Hypothesis release has no MAX_SHRINKING_SECONDS: the shrink budget cannot be set")
    engine.MAX_SHRINKING_SECONDS = seconds


@contextlib.contextmanager
def shrink_budget(seconds: float) -> Iterator[None]:
    """``set_shrink_budget(seconds)`` for the duration of a block, then the budget before it."""
    from hypothesis.internal.conjecture import engine
    before = getattr(engine, "MAX_SHRINKING_SECONDS", None)
    set_shrink_budget(seconds)
    try:
        yield
    finally:
        set_shrink_budget(before)


def load_profile() -> str:
    """Load the profile named by ``T1VIRTIO_PROFILE`` (default ``ci``), bound its shrinking, return its name."""
    name = os.environ.get("T1VIRTIO_PROFILE", "ci")
    settings.load_profile(name)
    set_shrink_budget(SHRINK_SECONDS.get(name, 60))
    return name
