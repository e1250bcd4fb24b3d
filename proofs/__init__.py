"""Z3 proof obligations generated from model transitions and specs (DESIGN.md §3, §5).

Each component module here defines ``SUBJECT`` (a ``proofs.engine.Subject``). ``all_subjects``
imports them; ``proofs.engine.obligations`` enumerates init ⊢ inv, op ⊢ inv and op ⊨ rule.
"""
from __future__ import annotations

import importlib

import pkgutil

NOT_SUBJECTS = {"engine", "runner"}


def all_subjects() -> list:
    """Return every component's proof subjects, in a stable order."""
    out = []
    for m in sorted(x.name for x in pkgutil.iter_modules(__path__) if x.name not in NOT_SUBJECTS):
        mod = importlib.import_module(f"{__name__}.{m}")
        out.extend(getattr(mod, "SUBJECTS", []))
    return out
