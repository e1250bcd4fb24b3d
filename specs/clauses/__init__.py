"""The clause registry: the single source of "why" (anchors lesson 5).

Every raise, guard, invariant, rule, obligation and mutant names a clause id registered here.
A clause's ``kind`` fixes the error class a failed guard with that id raises
(``t1virtio.errors.error_class``):

- ``peer``: the other VM broke a MUST; the honest side rejects it (``PeerViolation``);
- ``caller``: our own caller passed bad arguments (``CallerError``);
- ``exhausted``: a pool or queue is full or empty (``Exhausted``);
- ``access``: a VM touched memory it has no live right to (``AccessFault``);
- ``invariant``: a property of every reachable state (never raised by a guard);
- ``rule``: what any conforming implementation may do in one step (never raised by a guard).

This package imports nothing outside itself. Component tables live in sibling modules and are
merged by ``register``; an id registered twice is a defect reported at import.
"""
from __future__ import annotations

from dataclasses import dataclass

KINDS = ("peer", "caller", "exhausted", "access", "invariant", "rule")


@dataclass(frozen=True, slots=True)
class Clause:
    """One registered clause: id, where it comes from, and what it says in one line."""

    id: str
    kind: str
    source: str
    section: str
    text: str


CLAUSES: dict[str, Clause] = {}


def register(rows: list[tuple[str, str, str, str, str]]) -> None:
    """Add ``(id, kind, source, section, text)`` rows to the registry."""
    for cid, kind, source, section, text in rows:
        if kind not in KINDS:
            raise ValueError(f"clause {cid}: kind {kind!r} is not one of {KINDS}")
        if cid in CLAUSES:
            raise ValueError(f"clause {cid} registered twice")
        CLAUSES[cid] = Clause(cid, kind, source, section, text)


def get(cid: str) -> Clause:
    """Return the clause ``cid``; an unregistered id is a defect (KeyError names it)."""
    try:
        return CLAUSES[cid]
    except KeyError:
        raise KeyError(f"unregistered clause id {cid!r}") from None


def is_registered(cid: str) -> bool:
    """Return whether ``cid`` is a registered clause id."""
    return cid in CLAUSES


def _load_tables() -> None:
    import importlib
    import pkgutil
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{m.name}")


_load_tables()
