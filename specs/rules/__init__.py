"""Per-operation rules: what ANY conforming implementation may do in one step.

``rule_<name>(L, old, args, ok, new, out)`` relates the state before and after an operation
(``ok`` says whether the step was accepted). Proofs show the model's transitions satisfy them;
the oracle checks a foreign implementation's observed steps against them.

Two kinds (DESIGN §3, docs/overview.md "Legality and exactness"):

- ``"legality"`` (``@rule``): what ANY conforming implementation may do: the spec's MUSTs and
  nothing more. A refusal is legal unless the operation was one that MUST succeed; an accepted step
  may pick any of the allowed new states (any free slot run, any free handle, a spurious kick).
  The oracle's legality mode checks these.
- ``"exact"`` (``@exact``): the model's own choice among the legal steps, named by its ``policy``
  (Linux 6.1.y, Gunyah @36ca3a2, ...). An exact rule says which of the allowed steps the policy
  takes; it ``refines`` a legality rule of the same operation, and ``proofs/engine.py`` proves
  ``exact ⇒ legal`` for that pair over every state, argument and outcome (not only the model's).
  The oracle's exact mode checks the legality rules and the exact rules together, and compares a
  refusal's clause with the model's first failed guard (``first_refusal``: the code order);
  legality mode accepts any clause of a failed guard (``applicable_refusals``).
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
    kind: str = "legality"                   # "legality" | "exact"
    policy: str = ""                         # exact rules: the policy whose choice they state
    refines: str | None = None               # exact rules: the legality rule they imply


KINDS = ("legality", "exact")


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


def rule(component: str, op: str, clause: str, kind: str = "legality", policy: str = "",
         refines: str | None = None):
    """Register ``rule_<name>(L, old, args, ok, new, out)`` for ``component.op`` citing ``clause``."""
    clauses.get(clause)
    if kind not in KINDS:
        raise ValueError(f"rule kind {kind!r} is not one of {KINDS}")
    if kind == "exact" and not policy:
        raise ValueError(f"exact rule for {component}.{op} names no policy")

    def deco(fn):
        REGISTRY.setdefault(component, []).append(Rule(component, op, fn.__name__, clause, fn, kind, policy, refines))
        return fn
    return deco


def exact(component: str, op: str, clause: str, policy: str, refines: str | None = None):
    """Register ``exact_<name>(L, old, args, ok, new, out)``: the model's choice under ``policy`` among the
    steps the legality rule ``refines`` allows (``None``: the rule pins the model's own step, so
    ``exact ⇒ legal`` is the model's legality obligations)."""
    return rule(component, op, clause, kind="exact", policy=policy, refines=refines)


def of(component: str, op: str | None = None, kind: str | None = None) -> list[Rule]:
    """Return the rules of ``component`` (for one ``op`` and one ``kind`` if given; both kinds by default)."""
    _load_all()
    if kind is not None and kind not in KINDS:
        raise ValueError(f"rule kind {kind!r} is not one of {KINDS}")
    return [r for r in REGISTRY.get(component, []) if (op is None or r.op == op) and (kind is None or r.kind == kind)]


def legality(component: str, op: str | None = None) -> list[Rule]:
    """The legality rules of ``component`` (the oracle's legality mode)."""
    return of(component, op, "legality")


def exact_of(component: str, op: str | None = None) -> list[Rule]:
    """The exact rules of ``component`` (added to the legality rules in the oracle's exact mode)."""
    return of(component, op, "exact")


def find(component: str, op: str, name: str) -> Rule:
    """Return the rule called ``name`` of ``component.op``."""
    for r in of(component, op):
        if r.name == name:
            return r
    raise KeyError(f"no rule {name!r} for {component}.{op}")


def check(component: str, op: str, old: Any, args: dict, ok: bool, new: Any, out: Any,
          mode: str = "exact") -> None:
    """Evaluate the rules of ``component.op`` concretely; raise ``InvariantViolation`` on the first broken one.

    ``mode="legality"`` checks the legality rules only; ``mode="exact"`` (the default, what the model
    itself must satisfy) checks the legality rules, then the exact rules."""
    if mode not in KINDS:
        raise ValueError(f"mode {mode!r} is not one of {KINDS}")
    kinds = ("legality",) if mode == "legality" else KINDS
    for k in kinds:
        for r in of(component, op, k):
            if not r.fn(CONCRETE, old, args, ok, new, out):
                raise errors.InvariantViolation(r.clause, f"{r.name} ({r.kind}) broken by {op}({args})")


def applicable_refusals(sp: Any) -> list[str]:
    """The clauses of every failed guard of a concrete step: legality mode accepts a refusal citing any of them
    (the order of error checks is implementation freedom unless the spec fixes it)."""
    return [c for ok, c in sp.guards if not ok]


def first_refusal(sp: Any) -> str | None:
    """The clause of the first failed guard of a concrete step: the model's code order, checked in exact mode."""
    failed = applicable_refusals(sp)
    return failed[0] if failed else None
