"""Commands of the whole system (``t1virtio demo``, ``t1virtio backend ...``)."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the system's commands to the ``t1virtio`` app."""
