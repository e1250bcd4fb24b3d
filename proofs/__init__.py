"""Z3 proof obligations generated from model transitions and specs (DESIGN.md §3, §5).

Each component module here defines ``SUBJECT`` (a ``proofs.engine.Subject``). ``all_subjects``
imports them; ``proofs.engine.obligations`` enumerates init ⊢ inv, op ⊢ inv and op ⊨ rule.
"""
from __future__ import annotations

import importlib

COMPONENT_MODULES = ("hypervisor", "msgq", "doorbell", "swiotlb", "virtio")


def all_subjects() -> list:
    """Return every component's proof subjects, in a stable order."""
    out = []
    for m in COMPONENT_MODULES:
        mod = importlib.import_module(f"{__name__}.{m}")
        out.extend(getattr(mod, "SUBJECTS", []))
    return out
