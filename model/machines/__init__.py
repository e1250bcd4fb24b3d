"""Hypothesis stateful machines, by the name ``t1virtio fuzz --machine`` takes (DESIGN.md §5).

Machines sit on top of the model and specs (like the CLI and the oracle): each concept has one,
and the adversarial ones write arbitrary bytes where the other VM could. ``MACHINES`` maps a
name to ``module:Class``; classes load lazily so ``--help`` stays fast.
"""
from __future__ import annotations

import importlib

MACHINES: dict[str, str] = {
    "msgq": "t1virtio.machines.msgq:MsgqMachine",
}


def names() -> list[str]:
    """Return every machine name, sorted."""
    return sorted(MACHINES)


def load(name: str) -> type:
    """Return the machine class called ``name``; an unknown name raises ``KeyError`` listing the known ones."""
    if name not in MACHINES:
        raise KeyError(f"unknown machine {name!r}; known machines: {', '.join(names())}")
    mod, cls = MACHINES[name].split(":")
    return getattr(importlib.import_module(mod), cls)
