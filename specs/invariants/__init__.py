"""State invariants: ``inv_<name>(L, state) -> bool | z3 BoolRef``, each naming its clause.

Written once over the logic vocabulary: proofs evaluate them with the z3 backend, machines and
the oracle with the concrete one (``check``). Each component module registers its invariants
with ``@invariant(component, clause)``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from t1virtio import errors
from t1virtio.logic import CONCRETE
from t1virtio.specs import clauses


@dataclass(frozen=True)
class Invariant:
    """A registered invariant of one component."""

    component: str
    name: str
    clause: str
    fn: Callable[[Any, Any], Any]


REGISTRY: dict[str, list[Invariant]] = {}


_LOADED: list[bool] = []


def _load_all() -> None:
    """Import every component module of this package once (each registers its entries)."""
    if _LOADED:
        return
    import pkgutil
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{m.name}")
    _LOADED.append(True)


def invariant(component: str, clause: str):
    """Register ``inv_<name>(L, state)`` as an invariant of ``component`` citing ``clause``."""
    clauses.get(clause)

    def deco(fn):
        REGISTRY.setdefault(component, []).append(Invariant(component, fn.__name__, clause, fn))
        return fn
    return deco


def of(component: str) -> list[Invariant]:
    """Return the invariants registered for ``component`` (imports its module on first use)."""
    _load_all()
    return list(REGISTRY.get(component, []))


def check(component: str, state: Any) -> None:
    """Evaluate ``component``'s invariants concretely; raise ``InvariantViolation`` on the first failure."""
    for inv in of(component):
        if not inv.fn(CONCRETE, state):
            raise errors.InvariantViolation(inv.clause, f"{inv.name} fails on the concrete state")
