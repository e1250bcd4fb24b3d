"""The fast path's IR: typed ANF statements in nested blocks (docs/performance.md, "The IR").

Two value types only: ``U64`` (every state word, index, counter and literal; arithmetic wraps modulo
2**64, comparisons are unsigned, as the z3 backend's 64-bit vectors) and ``BOOL`` (from comparisons
and the boolean connectives). An atom is a ``Var`` or a ``Const``. Tables are named arrays of u64 of a
fixed (preset) length; ``"sc"`` holds the scalar leaves of the state, ``"args"`` a call's arguments and
``"out"`` its results.

Statements (a ``Block`` is a list of them, run in order):

- ``Op(out, op, args)``: ``out = op(*args)``; ``op`` in ``OPS``.
- ``Read(out, table, idx, default, site)``: ``table[idx]``; outside the table ``default`` or, when ``default``
  is None, the last entry (``L.at``'s convention). ``site``: the read is one of the model's index-safety sites,
  proved in range whenever the step's guards hold (``proofs``, ``op⊢index-safe``); the printer drops its clamp
  when it runs after every guard.
- ``Write(table, idx, val)``: ``table[idx] = val``; outside the table nothing.
- ``Fill(table, lo, n, val)`` / ``MapRange(table, lo, n, k, x, body, res)``: entries ``lo .. lo+n-1``
  (clipped to the table) become ``val`` / ``res`` computed by ``body`` from the index ``k`` and the old
  entry ``x``.
- ``WalkBack(table, start, k, x, go_body, go, f_body, fv)``: ``k = start-1, start-2, ... 0`` while ``go``;
  ``table[k] = fv`` (``L.map_while_back``).
- ``Loop(n, params, inits, body, nexts, outs)``: at most ``n`` rounds while ``params[0]`` (alive) holds;
  ``params = nexts`` after each round; ``outs`` the final ``params`` (``L.loop``).
  ``n`` may name a table: the bound is then that table's length at run time (a size parameter).
- ``Guard(cond, code)``: if ``cond`` is false, return ``code`` (a refused step: no write has happened).
- ``Len(out, table)``: ``out`` = the table's length (a size parameter: one code for every size).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

U64, BOOL = "u64", "bool"
MASK = (1 << 64) - 1

# op name -> (argument types, result type); "*" = any count of that type
OPS: dict[str, tuple[tuple, str]] = {
    "add": ((U64, U64), U64), "sub": ((U64, U64), U64), "mul": ((U64, U64), U64),
    "and": ((U64, U64), U64), "or": ((U64, U64), U64), "xor": ((U64, U64), U64),
    "shl": ((U64, U64), U64), "lshr": ((U64, U64), U64), "udiv": ((U64, U64), U64), "urem": ((U64, U64), U64),
    "eq": ((U64, U64), BOOL), "ne": ((U64, U64), BOOL), "ult": ((U64, U64), BOOL), "ule": ((U64, U64), BOOL),
    "beq": ((BOOL, BOOL), BOOL), "bne": ((BOOL, BOOL), BOOL),
    "land": (("*", BOOL), BOOL), "lor": (("*", BOOL), BOOL), "lnot": ((BOOL,), BOOL),
    "sel": ((BOOL, None, None), None),            # result type = the branches' type
    "b2u": ((BOOL,), U64),
}


@dataclass(frozen=True, eq=False)
class Var:
    id: int
    ty: str

    def __repr__(self) -> str:
        return f"v{self.id}"


@dataclass(frozen=True)
class Const:
    value: Any
    ty: str

    def __repr__(self) -> str:
        return repr(self.value) if self.ty == BOOL else f"{self.value:#x}" if self.value > 9 else str(self.value)


Atom = Any            # Var | Const


@dataclass(eq=False)
class Op:
    out: Var
    op: str
    args: tuple
    where: str = ""


@dataclass(eq=False)
class Read:
    out: Var
    table: str
    idx: Atom
    default: Atom | None = None
    site: bool = False               # an index-safety site of the model (``L.at``): in range once the guards hold


@dataclass(eq=False)
class Write:
    table: str
    idx: Atom
    val: Atom
    site: bool = False               # an index-safety site of the model (``L.update``)


@dataclass(eq=False)
class Fill:
    table: str
    lo: Atom
    n: Atom
    val: Atom


@dataclass(eq=False)
class MapRange:
    table: str
    lo: Atom
    n: Atom
    k: Var
    x: Var
    body: list
    res: Atom


@dataclass(eq=False)
class WalkBack:
    table: str
    start: Atom
    k: Var
    x: Var
    go_body: list
    go: Atom
    f_body: list
    fv: Atom


@dataclass(eq=False)
class Loop:
    n: Any                           # a bound, or a table name: that table's length at run time
    params: list
    inits: list
    body: list
    nexts: list
    outs: list


@dataclass(eq=False)
class Len:
    out: Var
    table: str


@dataclass(eq=False)
class Guard:
    cond: Atom
    code: int
    clause: str = ""


@dataclass
class Function:
    """One traced transition: its tables (name -> length), arguments, body and result layout."""

    name: str
    tables: dict                     # name -> length, in signature order ("sc" first)
    nargs: int
    nout: int
    body: list
    clauses: list                    # code k (1-based) -> clause id
    out_tree: Any = None             # how to rebuild the Python result from the ``out`` words
    dynamic: frozenset = frozenset()  # tables whose length is read at run time (one code for every size)
    notes: list = field(default_factory=list)


def pretty(block: list, indent: int = 0) -> str:
    """A readable listing of a block (for review and golden tests)."""
    pad, lines = "  " * indent, []
    for s in block:
        if isinstance(s, Op):
            lines.append(f"{pad}{s.out!r}:{s.out.ty} = {s.op}({', '.join(map(repr, s.args))})")
        elif isinstance(s, Read):
            d = "" if s.default is None else f" or {s.default!r}"
            lines.append(f"{pad}{s.out!r} = {s.table}[{s.idx!r}]{d}")
        elif isinstance(s, Write):
            lines.append(f"{pad}{s.table}[{s.idx!r}] := {s.val!r}")
        elif isinstance(s, Fill):
            lines.append(f"{pad}{s.table}[{s.lo!r} +: {s.n!r}] := {s.val!r}")
        elif isinstance(s, MapRange):
            lines.append(f"{pad}map {s.table}[{s.lo!r} +: {s.n!r}] ({s.k!r}, {s.x!r}) ->")
            lines.append(pretty(s.body, indent + 1) + f"\n{pad}  => {s.res!r}")
        elif isinstance(s, WalkBack):
            lines.append(f"{pad}walk back {s.table} from {s.start!r} ({s.k!r}, {s.x!r}) while")
            lines.append(pretty(s.go_body, indent + 1) + f"\n{pad}  ? {s.go!r}")
            lines.append(pretty(s.f_body, indent + 1) + f"\n{pad}  => {s.fv!r}")
        elif isinstance(s, Loop):
            lines.append(f"{pad}loop {s.n} ({', '.join(map(repr, s.params))}) = ({', '.join(map(repr, s.inits))})")
            lines.append(pretty(s.body, indent + 1))
            lines.append(f"{pad}  next ({', '.join(map(repr, s.nexts))}) -> ({', '.join(map(repr, s.outs))})")
        elif isinstance(s, Len):
            lines.append(f"{pad}{s.out!r} = len({s.table})")
        elif isinstance(s, Guard):
            lines.append(f"{pad}guard {s.cond!r} else {s.code} ({s.clause})")
    return "\n".join(x for x in lines if x)
