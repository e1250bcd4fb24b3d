"""Per-operation rules: what ANY conforming implementation may do in one step.

``rule_<name>(L, old, args, ok, new, out)`` relates the state before and after an operation
(``ok`` says whether the step was accepted). Proofs show the model's transitions satisfy them;
the oracle checks a foreign implementation's observed steps against them (legality mode).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from t1virtio import errors
from t1virtio.logic import CONCRETE
from t1virtio.specs import clauses


@dataclass(frozen=True)
class Rule:
    """A registered rule for one operation of one component."""

    component: str
    op: str
    name: str
    clause: str
    fn: Callable[..., Any]


REGISTRY: dict[str, list[Rule]] = {}


_LOADED: list[bool] = []


def _load_all() -> None:
    """Import every component module of this package once (each registers its entries)."""
    if _LOADED:
        return
    import pkgutil
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{m.name}")
    _LOADED.append(True)


def rule(component: str, op: str, clause: str):
    """Register ``rule_<name>(L, old, args, ok, new, out)`` for ``component.op`` citing ``clause``."""
    clauses.get(clause)

    def deco(fn):
        REGISTRY.setdefault(component, []).append(Rule(component, op, fn.__name__, clause, fn))
        return fn
    return deco


def of(component: str, op: str | None = None) -> list[Rule]:
    """Return the rules of ``component`` (for one ``op`` if given)."""
    _load_all()
    return [r for r in REGISTRY.get(component, []) if op is None or r.op == op]


def check(component: str, op: str, old: Any, args: dict, ok: bool, new: Any, out: Any) -> None:
    """Evaluate the rules of ``component.op`` concretely; raise ``InvariantViolation`` on the first broken one."""
    for r in of(component, op):
        if not r.fn(CONCRETE, old, args, ok, new, out):
            raise errors.InvariantViolation(r.clause, f"{r.name} broken by {op}({args})")
