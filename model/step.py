"""Transitions as guarded steps (DESIGN.md §3, anchors lesson 3).

A transition ``op(L, state, **args)`` returns ``Step(guards, new, out)``: its guards, each paired
with a clause id, the state after the step, and the values it returns. Concretely ``apply``
raises the error of the first failed guard's clause; symbolically proofs use
``If(And(guards), new, old)`` (``commit``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t1virtio import errors
from t1virtio import logic
from t1virtio.logic import Deferred
from t1virtio.specs import clauses

INDEX_SAFE = "MODEL-index-in-range"


@dataclass(frozen=True)
class Step:
    """A guarded step: ``guards`` is a tuple of ``(condition, clause)`` pairs.

    ``new`` may be given as ``Deferred`` effects (``L.effect``): they run on the first read of
    ``new``, which ``apply`` does only after every guard held.
    """

    guards: tuple
    new: Any
    out: Any = None


def _new(self: Step) -> Any:
    v = self.__dict__["new"]
    if isinstance(v, Deferred):
        v = v.make()
        self.__dict__["new"] = v
    return v


Step.new = property(_new, lambda self, v: self.__dict__.__setitem__("new", v))


def step(guards: list | tuple, new: Any, out: Any = None) -> Step:
    """Build a ``Step``; every guard must cite a registered clause (KeyError names an unknown one)."""
    for _, clause in guards:
        if clause not in _KNOWN:
            clauses.get(clause)
            _KNOWN.add(clause)
    return Step(tuple(guards), new, out)


_KNOWN: set = set()          # clause ids already checked by ``step``


def first_failed(s: Step) -> str | None:
    """Return the clause of the first guard that fails concretely, or None."""
    for cond, clause in s.guards:
        if not cond:
            return clause
    return None


def apply(s: Step, detail: str = "") -> tuple[Any, Any]:
    """Return ``(new, out)`` of a concrete step, or raise the first failed guard's error.

    Deferred effects run strict: an index outside its table raises ``MODEL-index-in-range`` with
    the site (a defect of the model: the index-safety proofs say it cannot happen).
    """
    clause = first_failed(s)
    if clause is not None:
        raise errors.fail(clause, detail)
    strict, logic._STRICT[0] = logic._STRICT[0], True
    try:
        new = s.new
    except logic.IndexOutOfTable as e:
        raise errors.fail(INDEX_SAFE, str(e)) from None
    finally:
        logic._STRICT[0] = strict
    return new, s.out


def ok(L: Any, s: Step) -> Any:
    """Return the conjunction of the step's guards."""
    return L.And(*[c for c, _ in s.guards])


def commit(L: Any, s: Step, old: Any) -> Any:
    """Return the state after ``s``: ``new`` if every guard holds, else ``old``."""
    return L.If(ok(L, s), s.new, old)
