"""Hypothesis budgets, registered once and chosen by ``T1VIRTIO_PROFILE`` (ci, dev, campaign)."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)

settings.register_profile("ci", max_examples=60, stateful_step_count=30, derandomize=True,
                          database=None, **_COMMON)
settings.register_profile("dev", max_examples=200, stateful_step_count=50, **_COMMON)
settings.register_profile("campaign", max_examples=5000, stateful_step_count=100, **_COMMON)


def load_profile() -> str:
    """Load the profile named by ``T1VIRTIO_PROFILE`` (default ``ci``) and return its name."""
    name = os.environ.get("T1VIRTIO_PROFILE", "ci")
    settings.load_profile(name)
    return name
