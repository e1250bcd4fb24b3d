"""Commands of the conformance oracle (``t1virtio oracle ...``, ``t1virtio vectors ...``)."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the oracle's commands to the ``t1virtio`` app."""
