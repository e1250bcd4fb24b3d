"""Deliberately broken variants of the model, each with the check that must catch it (lesson 13).

A ``Mutant`` names the clause it breaks, the check that must notice (``proof:<obligation>``,
``machine:<name>`` or ``scenario:<module>:<function>``) and the clause that check must report.
``tests/test_mutants.py`` runs every one; ``tests/test_clauses.py`` requires a mutant per clause.
Component tables live in sibling modules and are collected into ``ALL``.
"""
from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, replace
from typing import Any, Callable, ContextManager
from unittest import mock



@dataclass(frozen=True)
class Mutant:
    """One broken variant: what it breaks, how, and who catches it reporting which clause."""

    name: str
    breaks: str                              # the clause the mutation violates
    check: str                               # proof:<obligation> | machine:<name> | scenario:<mod>:<fn>
    expect: str                              # the clause the check must report
    patch: Callable[[], ContextManager[Any]]
    source: str = ""                         # where the bug comes from (a CVE, a commit, "synthetic")
    examples: int = 400                      # machine budget


# Calls of each patched function during the current check, by "module.attr": a mutant whose patched
# function is never called proves nothing (a caller holding its own reference, e.g. ``from m import f``
# or a default argument bound at import, never sees the patch), so ``run_check`` refuses it.
CALLS: dict[str, int] = {}


def replace_fn(module: str, attr: str, fn: Callable[..., Any]) -> Callable[[], ContextManager[Any]]:
    """Return a patch that replaces ``module.attr`` (``attr`` may be ``Class.method``) by ``fn(original, *args, **kw)``.

    The replacement counts its calls in ``CALLS`` under ``patch.targets``."""
    key = f"{module}.{attr}"

    def patch() -> ContextManager[Any]:
        owner: Any = importlib.import_module(module)
        *path, name = attr.split(".")
        for p in path:
            owner = getattr(owner, p)
        orig = getattr(owner, name)

        def counted(*a: Any, **k: Any) -> Any:
            CALLS[key] = CALLS.get(key, 0) + 1
            return fn(orig, *a, **k)
        return mock.patch.object(owner, name, counted)
    patch.targets = (key,)  # type: ignore[attr-defined]
    return patch


def drop_guard(module: str, attr: str, clause: str) -> Callable[[], ContextManager[Any]]:
    """Return a patch that removes every guard citing ``clause`` from the steps ``module.attr`` builds."""
    def without(orig, *a, **k):
        sp = orig(*a, **k)
        return replace(sp, guards=tuple(g for g in sp.guards if g[1] != clause))
    return replace_fn(module, attr, without)


def patches(*ps: Callable[[], ContextManager[Any]]) -> Callable[[], ContextManager[Any]]:
    """Return a patch applying several patches together."""
    def patch() -> ContextManager[Any]:
        stack = contextlib.ExitStack()
        for p in ps:
            stack.enter_context(p())
        return stack
    patch.targets = tuple(t for p in ps for t in getattr(p, "targets", ()))  # type: ignore[attr-defined]
    return patch


def load_all() -> list[Mutant]:
    """Return every registered mutant."""
    out: list[Mutant] = []
    import pkgutil
    for m in sorted(x.name for x in pkgutil.iter_modules(__path__)):
        out.extend(importlib.import_module(f"{__name__}.{m}").MUTANTS)
    return out


class MutantNeverRan(AssertionError):
    """A mutant's patched function was never called by its check: the check proves nothing about it."""


def run_check(m: Mutant) -> str | None:
    """Apply ``m`` and run its check; return the clause the check reported (None if it saw nothing).

    Raises ``MutantNeverRan`` when a function the mutant patched was not called during the check."""
    targets = getattr(m.patch, "targets", ())
    for t in targets:
        CALLS[t] = 0
    try:
        return _run_check(m)
    finally:
        idle = [t for t in targets if not CALLS.get(t)]
        if idle:
            raise MutantNeverRan(f"mutant {m.name}: patched {', '.join(idle)} was never called by {m.check}; "
                                 "its callers hold their own reference (import by name, default argument)")


def _run_check(m: Mutant) -> str | None:
    kind, _, target = m.check.partition(":")
    with m.patch():
        if kind == "proof":
            from t1virtio.proofs import engine
            r = engine.solve(engine.find(target), timeout_s=60)
            if r.outcome != "counterexample":
                return None
            clause, _story = engine.replay(r.counterexample)
            return clause
        if kind == "machine":
            from t1virtio.machines import runner
            res = runner.fuzz(target, examples=m.examples, seed=0, shrink=False)   # the clause is all it needs
            return res.failure["clause"] if res.failure else None
        if kind == "scenario":
            # a scenario function returns the clause it sees broken, or None when all is well
            mod, _, fn = target.partition(":")
            return getattr(importlib.import_module(mod), fn)()
    raise ValueError(f"mutant {m.name}: unknown check kind {kind!r}")
