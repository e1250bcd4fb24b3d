"""Hypothesis stateful machines, by the name ``t1virtio fuzz --machine`` takes (DESIGN.md §5).

Machines sit on top of the model and specs (like the CLI and the oracle): each concept has one,
and the adversarial ones write arbitrary bytes where the other VM could. Each machine module
defines ``MACHINES = {"name": Class}``; modules are discovered when a machine is first asked for,
so ``--help`` stays fast. ``T1VIRTIO_MACHINES`` names further modules (a user's own machines, for
example one wrapping their implementation); each must define ``MACHINES`` too.
"""
from __future__ import annotations

import importlib
import os
import pkgutil

NOT_MACHINES = {"common", "profiles", "runner"}
_REGISTRY: dict[str, type] = {}


EXTRA_ENV = "T1VIRTIO_MACHINES"   # comma-separated modules with ``MACHINES`` of a user's own (workers inherit it)


def _discover() -> dict[str, type]:
    if not _REGISTRY:
        mods = [f"{__name__}.{m}" for m in sorted(x.name for x in pkgutil.iter_modules(__path__)
                                                   if x.name not in NOT_MACHINES)]
        mods += [m.strip() for m in os.environ.get(EXTRA_ENV, "").split(",") if m.strip()]
        for m in mods:
            _REGISTRY.update(getattr(importlib.import_module(m), "MACHINES", {}))
    return _REGISTRY


def names() -> list[str]:
    """Return every machine name, sorted."""
    return sorted(_discover())


def load(name: str) -> type:
    """Return the machine class called ``name``; an unknown name raises ``KeyError`` listing the known ones."""
    reg = _discover()
    if name not in reg:
        raise KeyError(f"unknown machine {name!r}; known machines: {', '.join(names())}")
    return reg[name]
