"""Typed errors, each naming the clause it enforces (anchors lesson 8).

A failed guard raises the class its clause's ``kind`` selects; the message starts with the clause
id, then says what was wrong.
"""
from __future__ import annotations

from t1virtio.specs import clauses


class ModelError(Exception):
    """Base of every error the model raises on purpose; ``.clause`` is a registered clause id."""

    def __init__(self, clause: str, detail: str = ""):
        c = clauses.get(clause)
        self.clause = clause
        self.detail = detail
        msg = f"{clause}: {c.text}"
        super().__init__(f"{msg} ({detail})" if detail else msg)


class PeerViolation(ModelError):
    """The other VM broke a MUST; the honest side rejects what it wrote."""


class CallerError(ModelError):
    """Our own caller passed arguments the operation does not accept."""


class Exhausted(ModelError):
    """A pool, queue or table is full (or empty where an item was required)."""


class AccessFault(ModelError):
    """A VM touched memory it has no live right to."""


class InvariantViolation(ModelError):
    """A state breaks an invariant, or a step breaks a rule: a defect in the model or the peer."""


class ModelBug(Exception):
    """Must never happen; never caught."""


_BY_KIND = {"peer": PeerViolation, "caller": CallerError, "exhausted": Exhausted,
            "access": AccessFault, "invariant": InvariantViolation, "rule": InvariantViolation}


def error_class(clause: str) -> type[ModelError]:
    """Return the error class a failed guard for ``clause`` raises."""
    return _BY_KIND[clauses.get(clause).kind]


def fail(clause: str, detail: str = "") -> ModelError:
    """Build (for ``raise``) the error of ``clause``'s category with ``detail``."""
    return error_class(clause)(clause, detail)
