"""A third backend of the vocabulary: running a transition with it records the IR (``ir.py``).

``trace(fn, layout, nargs)`` runs ``fn(L, state, *args)`` once with ``L = TracingVocabulary`` over a
traced state (scalars become ``Tr`` values read from ``sc``, tables ``TTable`` views) and traced
arguments, and returns an ``ir.Function``: the statements that compute the guards and outputs, one
``Guard`` per guard (in the step's order, its clause as a number), then the deferred effects
(``L.effect``) as in-place writes, then the write-back of the new state's scalar leaves and small
tuples. Semantics are the z3 backend's: every value is a 64-bit vector (wrapping ``+ - *``, unsigned
``ULT``/``ULE``/``>>``/``//``/``%``), ``L.symbolic`` is true and ``L.z3`` is a small shim
(``BitVecVal``, ``LShR``, ``is_bv``) so that ``u64``/``const``/``shr`` take their bit-vector branch.

Where the concrete backend branches in Python on data and z3 cannot, the tracer cannot either:
``bool(Tr)``, ``int(Tr)`` and ``Tr.__index__`` raise ``TraceError``, except inside a callback of a
structured primitive (a loop body, a ``map_range``/``map_while_back`` function, a case), which is
traced once per Python branch and the branches joined by a select (``call``): such callbacks must be
pure (no table writes) when they branch. Structured primitives stay structured: ``loop`` is a loop,
``fill``/``map_range``/``map_while_back`` range statements, ``cases`` on a data index calls the case
function once with the (clamped) traced index. Tables are updated in place: a read or write of a table
version older than the newest (the spec reading a table after writing it) is a ``TraceError``, as is a
read of a table inside the function of a range update over the same table.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator, Sequence

from t1virtio.fast import ir
from t1virtio.fast.ir import BOOL, MASK, U64, Const, Var
from t1virtio.logic import Deferred, Vocabulary
from t1virtio.table import Table


class TraceError(Exception):
    """The transition uses something the tracer cannot record (the message says what and where)."""


class _NeedBranch(Exception):
    pass


class SizeInt(int):
    """A preset size that is the length of table ``table``: a loop bounded by it is bounded by that table's
    length at run time, so one generated code serves every size (``trace(..., sizes=...)``)."""

    table: str

    def __new__(cls, value: int, table: str) -> "SizeInt":
        x = super().__new__(cls, value)
        x.table = table
        return x


class SymSize(SizeInt):
    """A size parameter that stays symbolic in arithmetic: ``len()`` of a dynamic table in a trace. Used as a
    value (``atom``) it is the table's run-time length (``ir.Len``); ``size - 1`` and the like are traced
    ops, so the printed code does not depend on the size. Python comparisons (``n <= 0``) and ``range``
    still see the trace-time value."""

    def _o(self, name: str, o: Any, rev: bool = False) -> Any:
        if isinstance(o, bool) or not isinstance(o, (int, Tr)):
            return NotImplemented
        return op(name, o, self) if rev else op(name, self, o)

    def __add__(self, o): return self._o("add", o)
    def __radd__(self, o): return self._o("add", o, True)
    def __sub__(self, o): return self._o("sub", o)
    def __rsub__(self, o): return self._o("sub", o, True)
    def __mul__(self, o): return self._o("mul", o)
    def __rmul__(self, o): return self._o("mul", o, True)
    def __floordiv__(self, o): return self._o("udiv", o)
    def __mod__(self, o): return self._o("urem", o)
    def __rmod__(self, o): return self._o("urem", o, True)
    def __and__(self, o): return self._o("and", o)
    def __rshift__(self, o): return self._o("lshr", o)
    def __lshift__(self, o): return self._o("shl", o)
    __hash__ = int.__hash__


def _where() -> str:
    import sys
    f = sys._getframe(1)
    here = (__file__, Vocabulary.__init__.__code__.co_filename)
    while f is not None and f.f_code.co_filename in here:
        f = f.f_back
    return "?" if f is None else f"{f.f_globals.get('__name__', '?')}.{f.f_code.co_name}:{f.f_lineno}"


class _Fork:
    def __init__(self, plan: list):
        self.plan, self.pos, self.conds, self.writes = plan, 0, [], 0


class Builder:
    """The trace in progress: fresh variables, the current block, table versions, the fork in force."""

    def __init__(self) -> None:
        self.n = 0
        self.block: list = []
        self.version: dict[str, int] = {}
        self.locked: set = set()
        self.fork: _Fork | None = None
        self.lens: dict[str, Var] = {}        # dynamic table -> the variable holding its length

    def var(self, ty: str) -> Var:
        self.n += 1
        return Var(self.n, ty)

    def emit(self, s: Any) -> None:
        if isinstance(s, (ir.Write, ir.Fill, ir.MapRange, ir.WalkBack)) and self.fork is not None:
            self.fork.writes += 1
        self.block.append(s)

    @contextlib.contextmanager
    def sub(self) -> Iterator[list]:
        saved, self.block = self.block, []
        try:
            yield self.block
        finally:
            self.block = saved


_B: list[Builder] = []          # the builder of the trace in progress (one at a time)


def _b() -> Builder:
    if not _B:
        raise TraceError("a traced value was used outside its trace")
    return _B[-1]


def typeof(x: Any) -> str:
    if isinstance(x, Tr):
        return x.a.ty
    if isinstance(x, bool):
        return BOOL
    if isinstance(x, int):
        return U64
    raise TraceError(f"{_where()}: {type(x).__name__} {x!r} is not a u64 or bool value")


def atom(x: Any, ty: str | None = None) -> Any:
    """The IR atom of a value (a ``Tr``, a Python int or bool); ``ty`` checks/chooses its type."""
    if isinstance(x, Tr):
        if ty is not None and x.a.ty != ty:
            raise TraceError(f"{_where()}: a {x.a.ty} value where a {ty} is expected")
        return x.a
    if isinstance(x, SymSize) and _B and x.table in _B[-1].lens:
        if ty == BOOL:
            raise TraceError(f"{_where()}: a size used as a bool")
        return _B[-1].lens[x.table]
    t = typeof(x)
    if ty is not None and ty != t:
        if ty == U64 and t == BOOL:
            raise TraceError(f"{_where()}: Python bool {x!r} used as a u64")
        if ty == BOOL:
            raise TraceError(f"{_where()}: Python int {x!r} used as a bool")
    return Const(bool(x), BOOL) if t == BOOL else Const(x & MASK, U64)


def _py(c: Const) -> Any:
    return c.value


def _fold(op: str, vals: list) -> Any:
    a = vals[0] if vals else None
    b = vals[1] if len(vals) > 1 else None
    if op == "add":
        return (a + b) & MASK
    if op == "sub":
        return (a - b) & MASK
    if op == "mul":
        return (a * b) & MASK
    if op == "and":
        return a & b
    if op == "or":
        return a | b
    if op == "xor":
        return a ^ b
    if op == "shl":
        return (a << b) & MASK if b < 64 else 0
    if op == "lshr":
        return a >> b if b < 64 else 0
    if op == "udiv":
        return a // b if b else MASK
    if op == "urem":
        return a % b if b else a
    if op in ("eq", "beq"):
        return a == b
    if op in ("ne", "bne"):
        return a != b
    if op == "ult":
        return a < b
    if op == "ule":
        return a <= b
    if op == "land":
        return all(vals)
    if op == "lor":
        return any(vals)
    if op == "lnot":
        return not a
    if op == "sel":
        return vals[1] if a else vals[2]
    if op == "b2u":
        return int(a)
    raise AssertionError(op)


_IDENT = {"add": 0, "sub": 0, "or": 0, "xor": 0, "shl": 0, "lshr": 0}


def op(name: str, *xs: Any) -> Any:
    """Record ``name(*xs)`` (or fold it when every argument is a constant); return a ``Tr`` or Python value."""
    want, res = ir.OPS[name]
    if want and want[0] == "*":
        args = [atom(x, BOOL) for x in xs]
    elif name == "sel":
        ta, tb = typeof(xs[1]), typeof(xs[2])
        if ta != tb:
            raise TraceError(f"{_where()}: If with a {ta} and a {tb} branch")
        args, res = [atom(xs[0], BOOL), atom(xs[1], ta), atom(xs[2], ta)], ta
    else:
        args = [atom(x, t) for x, t in zip(xs, want, strict=True)]
    if all(isinstance(a, Const) for a in args):
        return _fold(name, [_py(a) for a in args])
    if name in _IDENT and isinstance(args[1], Const) and args[1].value == _IDENT[name]:
        return xs[0]
    if name == "and" and isinstance(args[1], Const) and args[1].value == MASK:
        return xs[0]
    if name == "mul" and isinstance(args[1], Const) and args[1].value == 1:
        return xs[0]
    bld = _b()
    out = bld.var(res)
    bld.emit(ir.Op(out, name, tuple(args)))
    return Tr(out)


class Tr:
    """A traced u64 or bool: Python operators record IR (z3 bit-vector semantics, unsigned)."""

    __slots__ = ("a",)

    def __init__(self, a: Var):
        self.a = a

    def __repr__(self) -> str:
        return f"Tr({self.a!r}:{self.a.ty})"

    __hash__ = object.__hash__

    def _u(self, name: str, other: Any, rev: bool = False) -> Any:
        if self.a.ty != U64:
            raise TraceError(f"{_where()}: arithmetic '{name}' on a bool")
        return op(name, other, self) if rev else op(name, self, other)

    def __add__(self, o): return self._u("add", o)
    def __radd__(self, o): return self._u("add", o, True)
    def __sub__(self, o): return self._u("sub", o)
    def __rsub__(self, o): return self._u("sub", o, True)
    def __mul__(self, o): return self._u("mul", o)
    def __rmul__(self, o): return self._u("mul", o, True)
    def __lshift__(self, o): return self._u("shl", o)
    def __rlshift__(self, o): return self._u("shl", o, True)
    def __rshift__(self, o): return self._u("lshr", o)
    def __rrshift__(self, o): return self._u("lshr", o, True)
    def __floordiv__(self, o): return self._u("udiv", o)
    def __rfloordiv__(self, o): return self._u("udiv", o, True)
    def __mod__(self, o): return self._u("urem", o)
    def __rmod__(self, o): return self._u("urem", o, True)
    def __neg__(self): return self._u("sub", 0, True)
    def __invert__(self): return self._u("xor", MASK)

    def _bits(self, name: str, logical: str, o: Any) -> Any:
        if self.a.ty == BOOL:
            return op(logical, self, o)
        return op(name, self, o)

    def __and__(self, o): return self._bits("and", "land", o)
    def __rand__(self, o): return self._bits("and", "land", o)
    def __or__(self, o): return self._bits("or", "lor", o)
    def __ror__(self, o): return self._bits("or", "lor", o)
    def __xor__(self, o): return self._bits("xor", "bne", o)
    def __rxor__(self, o): return self._bits("xor", "bne", o)

    def __eq__(self, o):  # type: ignore[override]
        return op("beq" if self.a.ty == BOOL else "eq", self, o)

    def __ne__(self, o):  # type: ignore[override]
        return op("bne" if self.a.ty == BOOL else "ne", self, o)

    def _signed(self, o: Any) -> Any:
        raise TraceError(f"{_where()}: '<'/'<=' on a traced value (signed in z3): use L.ULT / L.ULE")

    __lt__ = __le__ = __gt__ = __ge__ = _signed

    def __bool__(self) -> bool:
        bld = _b()
        f = bld.fork
        if self.a.ty != BOOL:
            raise TraceError(f"{_where()}: truth value of a traced u64")
        if f is None:
            raise TraceError(f"{_where()}: Python branches on a traced value (use L.If, or a structured primitive)")
        f.conds.append(self)
        if f.pos < len(f.plan):
            f.pos += 1
            return f.plan[f.pos - 1]
        raise _NeedBranch()

    def __index__(self) -> int:
        raise TraceError(f"{_where()}: a traced value used as a Python index (a tuple indexed by data)")

    __int__ = __index__


class TTable:
    """A table of the traced state: reads and writes record IR against the table's newest version."""

    __slots__ = ("name", "n", "ver", "boolean")

    def __init__(self, name: str, n: int, ver: int = 0, boolean: bool = False):
        self.name, self.n, self.ver, self.boolean = name, n, ver, boolean

    def _val(self, v: Any) -> Any:
        """A value as stored: a bool table stores 0/1 words."""
        return op("b2u", v) if self.boolean and typeof(v) == BOOL else v

    def _load(self, t: Any) -> Any:
        """A stored word as read: a bool table reads ``word != 0``."""
        return op("ne", t, 0) if self.boolean else t

    def __len__(self) -> int:
        if _B and self.name in _B[-1].lens:
            return SymSize(self.n, self.name)
        return self.n

    def _check(self, what: str) -> Builder:
        bld = _b()
        if bld.version.get(self.name, 0) != self.ver:
            raise TraceError(f"{_where()}: {what} of an older version of table {self.name} (it was written since): "
                             "an in-place update cannot keep it")
        if self.name in bld.locked:
            raise TraceError(f"{_where()}: {what} of table {self.name} inside a range update of the same table")
        return bld

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            raise TraceError(f"{_where()}: slice of table {self.name}")
        return self.read(k)

    def __iter__(self) -> Iterator[Any]:
        if self.n > 64:
            raise TraceError(f"{_where()}: iterating over the {self.n}-entry table {self.name}")
        return iter([self.read(k) for k in range(self.n)])

    def read(self, k: Any, default: Any = None, site: bool = False) -> Any:
        bld = self._check("read")
        if isinstance(k, int) and not isinstance(k, bool) and default is None:
            k = k if 0 <= k < self.n else self.n - 1
        out = bld.var(U64)
        bld.emit(ir.Read(out, self.name, atom(k, U64), None if default is None else atom(self._val(default), U64),
                         site and default is None))
        return self._load(Tr(out))

    def _bump(self, bld: Builder) -> "TTable":
        bld.version[self.name] = self.ver + 1
        return TTable(self.name, self.n, self.ver + 1, self.boolean)

    def write(self, k: Any, v: Any, site: bool = False) -> "TTable":
        bld = self._check("write")
        bld.emit(ir.Write(self.name, atom(k, U64), atom(self._val(v), U64), site))
        return self._bump(bld)

    def __eq__(self, o: Any) -> bool:
        raise TraceError(f"{_where()}: comparison of whole tables")

    __hash__ = object.__hash__


class SelList:
    """A selection argument: the distinct indices ``table[0 .. count-1]`` (``table`` an extra table of the
    trace). Concretely the model's selection is a set; the fast path passes its members as a list."""

    __slots__ = ("table", "count")

    def __init__(self, table: TTable, count: Any):
        self.table, self.count = table, count


class SelLinked:
    """A stored selection (read from a ``SelTable``): ``count`` members, the first ``first``, each next one
    ``link[member]``. Stored selections are disjoint while their chains are live (each index belongs to one
    record), so one link table per index holds them all; a record is read only while it is live."""

    __slots__ = ("count", "first", "link")

    def __init__(self, count: Any, first: Any, link: TTable):
        self.count, self.first, self.link = count, first, link


class SelTable:
    """A state table of selections (``chain_sel``): per entry a count and a first member, plus one link table."""

    __slots__ = ("count", "first", "link")

    def __init__(self, count: TTable, first: TTable, link: TTable):
        self.count, self.first, self.link = count, first, link

    def __len__(self) -> int:
        return len(self.count)


class _Z3Shim:
    """What the model reaches through ``L.z3`` when ``L.symbolic``: 64-bit constants and logical shifts."""

    @staticmethod
    def BitVecVal(v: int, width: int) -> int:
        if width != 64:
            raise TraceError(f"{_where()}: a {width}-bit constant (the fast path has 64-bit words only)")
        return v & MASK

    @staticmethod
    def LShR(x: Any, n: Any) -> Any:
        return op("lshr", x, n)

    @staticmethod
    def is_bv(x: Any) -> bool:
        return isinstance(x, Tr) and x.a.ty == U64

    def __getattr__(self, name: str) -> Any:
        raise TraceError(f"{_where()}: z3.{name} has no fast-path meaning")


def _leaves(x: Any) -> tuple[list, Any]:
    """Flatten tuples and dataclasses of values into (leaves, rebuild)."""
    if isinstance(x, tuple):
        parts = [_leaves(y) for y in x]
        n = [len(p[0]) for p in parts]

        def rebuild(vals: list) -> tuple:
            out, i = [], 0
            for (_, r), k in zip(parts, n):
                out.append(r(vals[i:i + k]))
                i += k
            return tuple(out)
        return [v for p in parts for v in p[0]], rebuild
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        names = [f.name for f in dataclasses.fields(x)]
        sub = _leaves(tuple(getattr(x, k) for k in names))

        def rebuild_dc(vals: list) -> Any:
            return dataclasses.replace(x, **dict(zip(names, sub[1](vals))))
        return sub[0], rebuild_dc
    return [x], lambda vals: vals[0]


class TraceBase:
    """The primitives of ``L`` over traced values (the ``Concrete`` / ``Z3`` counterpart)."""

    name = "trace"
    symbolic = True
    z3 = _Z3Shim()

    @staticmethod
    def And(*xs: Any) -> Any:
        rest = []
        for x in xs:
            if isinstance(x, Tr):
                rest.append(x)
            elif not x:
                return False
        if not rest:
            return True
        return rest[0] if len(rest) == 1 else op("land", *rest)

    @staticmethod
    def Or(*xs: Any) -> Any:
        rest = []
        for x in xs:
            if isinstance(x, Tr):
                rest.append(x)
            elif x:
                return True
        if not rest:
            return False
        return rest[0] if len(rest) == 1 else op("lor", *rest)

    @staticmethod
    def Not(x: Any) -> Any:
        return op("lnot", x) if isinstance(x, Tr) else not x

    def Implies(self, a: Any, b: Any) -> Any:
        return self.Or(self.Not(a), b)

    def If(self, c: Any, a: Any, b: Any) -> Any:
        if not isinstance(c, Tr):
            return a if c else b
        if a is b:
            return a
        if isinstance(a, TTable) or isinstance(b, TTable):
            raise TraceError(f"{_where()}: If between two tables")
        if isinstance(a, tuple):
            return tuple(self.If(c, x, y) for x, y in zip(a, b, strict=True))
        if dataclasses.is_dataclass(a):
            return dataclasses.replace(a, **{f.name: self.If(c, getattr(a, f.name), getattr(b, f.name))
                                             for f in dataclasses.fields(a)})
        if not isinstance(a, Tr) and not isinstance(b, Tr) and typeof(a) == typeof(b) and a == b:
            return a
        if typeof(a) == BOOL and typeof(b) == BOOL:
            if b is False:
                return self.And(c, a)
            if a is True:
                return self.Or(c, b)
        return op("sel", c, a, b)

    @staticmethod
    def ULT(a: Any, b: Any) -> Any:
        return op("ult", a, b)

    @staticmethod
    def ULE(a: Any, b: Any) -> Any:
        return op("ule", a, b)

    @staticmethod
    def BitNot(x: Any, width: int) -> Any:
        """``~x`` in ``width`` bits (<= 64): the concrete backend's ``~x & (2**width - 1)``."""
        if not 0 < width <= 64:
            raise TraceError(f"{_where()}: BitNot of width {width}")
        return op("and", op("xor", x, MASK), (1 << width) - 1)

    @staticmethod
    def mod(x: Any, m: Any) -> Any:
        return op("urem", x, m)

    @staticmethod
    def div(x: Any, m: Any) -> Any:
        return op("udiv", x, m)

    @staticmethod
    def is_true(x: Any) -> Any:
        if isinstance(x, Tr):
            raise TraceError(f"{_where()}: truth value of a traced value")
        return bool(x)


def call(fn: Callable, *args: Any, depth: int = 0) -> Any:
    """``fn(*args)`` traced into the current block; a Python branch on a traced bool is explored both ways
    (the callback is re-run per path) and the results joined by ``If`` (the callback must then be pure)."""
    bld = _b()
    L = TRACE

    def run(plan: list) -> tuple[list, Any, list, int]:
        saved = bld.fork
        bld.fork = _Fork(plan)
        try:
            with bld.sub() as blk:
                try:
                    r = fn(*args)
                    return blk, r, bld.fork.conds, bld.fork.writes
                except _NeedBranch:
                    return blk, _NeedBranch, bld.fork.conds, bld.fork.writes
        finally:
            bld.fork = saved

    def explore(plan: list) -> tuple[list, Any, list]:
        if len(plan) > 8:
            raise TraceError(f"{_where()}: more than 8 nested Python branches in one callback")
        blk, r, conds, writes = run(plan)
        if r is not _NeedBranch:
            if plan and writes:
                raise TraceError(f"{_where()}: a callback that branches in Python writes tables")
            return blk, r, conds
        if writes:
            raise TraceError(f"{_where()}: a callback that branches in Python writes tables")
        bt, rt, ct = explore(plan + [True])
        bf, rf, _ = explore(plan + [False])
        with bld.sub() as jb:
            res = L.If(ct[len(plan)], rt, rf)
        return bt + bf + jb, res, conds

    blk, res, _ = explore([])
    bld.block.extend(blk)
    return res


class TracingVocabulary(Vocabulary):
    """``L`` that records IR; the structured primitives stay structured (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(TraceBase())

    # ------------------------------------------------------------ selections (lists and linked records)
    def _scan(self, sel: SelList, init: Any, step: Callable[[Any, Any], tuple]) -> Any:
        """Fold ``step(acc, member) -> (acc, go on)`` over a list selection's members (early exit)."""
        cap = sel.table.n
        _, _, acc = self.loop(cap, (self.ULT(0, sel.count), 0, init),
                              lambda c: self._scan_body(sel, c, step))
        return acc

    def _scan_body(self, sel: SelList, c: tuple, step: Callable) -> tuple:
        _, k, acc = c
        acc2, more = step(acc, sel.table.read(k))
        return (self.And(more, self.ULT(k + 1, sel.count)), k + 1, acc2)

    def sel_has(self, sel: Any, i: Any) -> Any:
        if isinstance(sel, SelList):
            return self._scan(sel, False, lambda acc, x: (self.Or(acc, x == i), self.Not(x == i)))
        if isinstance(sel, SelLinked):
            raise TraceError(f"{_where()}: membership in a stored selection (walk its links instead)")
        return Vocabulary.sel_has(self, sel, i)

    def sel_count(self, sel: Any, n: int) -> Any:
        if isinstance(sel, SelList):
            return self._scan(sel, 0, lambda acc, x: (acc + self.If(self.ULT(x, n), 1, 0), True))
        if isinstance(sel, SelLinked):
            return sel.count        # stored only after sel_only_below(sel, size) held: every member counts
        return Vocabulary.sel_count(self, sel, n)

    def sel_all(self, sel: Any, n: int, pred: Callable[[int], Any]) -> Any:
        if isinstance(sel, SelList):
            def st(acc: Any, x: Any) -> tuple:
                ok = self.And(acc, self.Implies(self.ULT(x, n), pred(x)))
                return ok, ok
            return self._scan(sel, True, st)
        if isinstance(sel, SelLinked):
            raise TraceError(f"{_where()}: sel_all over a stored selection")
        return Vocabulary.sel_all(self, sel, n, pred)

    def sel_only_below(self, sel: Any, n: int) -> Any:
        if isinstance(sel, SelList):
            def st(acc: Any, x: Any) -> tuple:
                ok = self.And(acc, self.ULT(x, n))
                return ok, ok
            return self._scan(sel, True, st)
        if isinstance(sel, SelLinked):
            return True             # stored only after this held
        return Vocabulary.sel_only_below(self, sel, n)

    def _emit_loop(self, n: int, carry: tuple, body: Callable) -> tuple:
        """A loop whose body writes tables (traced once, no Python branches on data inside)."""
        bld = _b()
        leaves, rebuild = _leaves(carry)
        types = [typeof(v) for v in leaves]
        params = [bld.var(t) for t in types]
        inits = [atom(v, t) for v, t in zip(leaves, types)]
        with bld.sub() as blk:
            res = body(rebuild([Tr(p) for p in params]))
            nexts = [atom(v, t) for v, t in zip(_leaves(res)[0], types)]
        outs = [bld.var(t) for t in types]
        bld.emit(ir.Loop(n, params, inits, blk, nexts, outs))
        return rebuild([Tr(o) for o in outs])

    def sel_map(self, seq: Sequence[Any], sel: Any, f: Callable[[int, Any], Any]) -> Any:
        if not isinstance(sel, (SelList, SelLinked)) or not isinstance(seq, TTable):
            return Vocabulary.sel_map(self, seq, sel, f)
        bound = seq.name if seq.name in _b().lens else seq.n
        size = len(seq)
        cur = [seq]

        if isinstance(sel, SelList):
            def body(c: tuple) -> tuple:
                _, k = c
                x = sel.table.read(k)
                t = cur[0]
                old = t.read(x, site=True)
                cur[0] = t.write(x, f(x, old), site=True)       # the model's site: every member in the table
                return (self.ULT(k + 1, sel.count), k + 1)
            self._emit_loop(bound, (self.ULT(0, sel.count), 0), body)
        else:
            def body2(c: tuple) -> tuple:
                _, k, x = c
                t = cur[0]
                old = t.read(x, site=True)
                cur[0] = t.write(x, f(x, old), site=True)
                return (self.ULT(k + 1, sel.count), k + 1, sel.link.read(x))
            self._emit_loop(bound, (self.ULT(0, sel.count), 0, sel.first), body2)
        del size
        return cur[0]

    # ------------------------------------------------------------ reads and writes
    def at(self, seq: Sequence[Any], i: Any) -> Any:
        if isinstance(seq, SelTable):
            return SelLinked(seq.count.read(i, site=True), seq.first.read(i, site=True), seq.link)
        if isinstance(seq, TTable):
            return seq.read(i, site=True)
        if isinstance(i, Tr):
            return Vocabulary.at(self, seq, i)
        return seq[i] if 0 <= i < len(seq) else seq[-1]

    def at_or(self, seq: Sequence[Any], i: Any, default: Any) -> Any:
        if isinstance(seq, TTable):
            return seq.read(i, default)
        return Vocabulary.at_or(self, seq, i, default)

    def update(self, seq: Sequence[Any], i: Any, v: Any) -> Any:
        if isinstance(seq, SelTable):
            if not isinstance(v, SelList):
                raise TraceError(f"{_where()}: a selection table stores list selections only")
            count = seq.count.write(i, v.count, site=True)
            first = seq.first.write(i, v.table.read(0), site=True)
            cur = [seq.link]

            def body(c: tuple) -> tuple:
                _, k = c
                a, b = v.table.read(k), v.table.read(k + 1)
                cur[0] = cur[0].write(a, b)
                return (self.ULT(k + 2, v.count), k + 1)
            self._emit_loop(seq.link.name if seq.link.name in _b().lens else seq.link.n,
                            (self.ULT(1, v.count), 0), body)
            return SelTable(count, first, cur[0])
        if isinstance(seq, TTable):
            return seq.write(i, v, site=True)
        return Vocabulary.update(self, seq, i, v)

    def fill(self, seq: Sequence[Any], lo: Any, n: Any, v: Any) -> Any:
        if not isinstance(seq, TTable):
            return Vocabulary.fill(self, seq, lo, n, v)
        bld = seq._check("fill")
        bld.emit(ir.Fill(seq.name, atom(lo, U64), atom(n, U64), atom(seq._val(v), U64)))
        return seq._bump(bld)

    def map_range(self, seq: Sequence[Any], lo: Any, n: Any, f: Callable[[Any, Any], Any]) -> Any:
        if not isinstance(seq, TTable):
            return Vocabulary.map_range(self, seq, lo, n, f)
        bld = seq._check("map_range")
        k, x = bld.var(U64), bld.var(U64)
        bld.locked.add(seq.name)
        try:
            with bld.sub() as body:
                res = atom(seq._val(call(f, Tr(k), seq._load(Tr(x)))), U64)
        finally:
            bld.locked.discard(seq.name)
        bld.emit(ir.MapRange(seq.name, atom(lo, U64), atom(n, U64), k, x, body, res))
        return seq._bump(bld)

    def map_while_back(self, seq: Sequence[Any], start: Any, go: Callable, f: Callable) -> Any:
        if not isinstance(seq, TTable):
            return Vocabulary.map_while_back(self, seq, start, go, f)
        bld = seq._check("map_while_back")
        k, x = bld.var(U64), bld.var(U64)
        bld.locked.add(seq.name)
        try:
            with bld.sub() as gb:
                g = atom(call(go, Tr(k), seq._load(Tr(x))), BOOL)
            with bld.sub() as fb:
                fv = atom(seq._val(call(f, Tr(k), seq._load(Tr(x)))), U64)
        finally:
            bld.locked.discard(seq.name)
        bld.emit(ir.WalkBack(seq.name, atom(start, U64), k, x, gb, g, fb, fv))
        return seq._bump(bld)

    def tabulate(self, n: int, f: Callable[[int], Any]) -> Any:
        raise TraceError(f"{_where()}: tabulate (building a whole table) is not a fast-path transition")

    # ------------------------------------------------------------ control
    @staticmethod
    def assuming(cond: Any) -> Any:
        return contextlib.nullcontext()

    def loop(self, n: int, carry: tuple, body: Callable[[tuple], tuple]) -> tuple:
        if n <= 0:
            return carry
        bound = n.table if isinstance(n, SizeInt) else int(n)
        if carry[0] is False:
            return carry
        bld = _b()
        leaves, rebuild = _leaves(carry)
        types = [typeof(v) for v in leaves]
        params = [bld.var(t) for t in types]
        inits = [atom(v, t) for v, t in zip(leaves, types)]
        with bld.sub() as blk:
            res = call(body, rebuild([Tr(p) for p in params]))
            nl, _ = _leaves(res)
            if len(nl) != len(params):
                raise TraceError(f"{_where()}: a loop body changed the shape of its carry")
            nexts = [atom(v, t) for v, t in zip(nl, types)]
        outs = [bld.var(t) for t in types]
        bld.emit(ir.Loop(bound, params, inits, blk, nexts, outs))
        return rebuild([Tr(o) for o in outs])

    def cases(self, n: int, i: Any, f: Callable[[int], Any]) -> Any:
        if n == 1:
            return call(f, 0)
        if not isinstance(i, Tr):
            return call(f, i if 0 <= i < n else n - 1)
        bld = _b()
        saved = dict(bld.version)
        try:
            return call(f, self.If(self.ULT(i, n), i, n - 1))
        except TraceError:
            # the case function branches on its (Python int) case number: a few cases are each traced with
            # their number and joined by selects; they must not write tables
            if n > 8 or bld.version != saved:
                raise
        res = None
        for c in range(n - 1, -1, -1):
            r = call(f, c)
            if bld.version != saved:
                raise TraceError(f"{_where()}: a case function that branches on its number writes tables")
            res = r if res is None else self.If(i == c if c < n - 1 else self.ULE(n - 1, i), r, res) \
                if c < n - 1 else r
        return res

    @staticmethod
    def effect(guards: Sequence[tuple], make: Callable[[], Any], old: Any) -> Any:
        return Deferred(make)


TRACE = TracingVocabulary()


# ---------------------------------------------------------------------------------------------
# State layout: frozen dataclasses flattened to scalar words (``sc``) and tables

@dataclasses.dataclass(frozen=True)
class Leaf:
    path: tuple            # field names from the top
    kind: str              # "scalar" or "table"
    slot: int              # scalar: index in sc
    table: str             # table: its name
    n: int                 # table length
    boolean: bool          # scalar is a bool / table holds bools (stored as 0/1 words)
    container: str         # table: "Table" or "tuple"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each leaf of a state lives: scalars in ``sc``, each table its own array."""

    template: Any
    leaves: tuple

    @property
    def nscalars(self) -> int:
        return sum(1 for x in self.leaves if x.kind == "scalar")

    @property
    def tables(self) -> dict:
        return {x.table: x.n for x in self.leaves if x.kind == "table"}


def layout_of(state: Any) -> Layout:
    """The layout of a state made of (nested) frozen dataclasses of ints/bools and tuples/Tables of ints."""
    out: list[Leaf] = []

    def walk(x: Any, path: tuple) -> None:
        if dataclasses.is_dataclass(x):
            for f in dataclasses.fields(x):
                walk(getattr(x, f.name), path + (f.name,))
        elif isinstance(x, (tuple, Table)):
            vals = x[:] if isinstance(x, Table) else x
            flags = all(isinstance(v, bool) for v in vals) and len(vals) > 0
            if not flags and any(not isinstance(v, int) or isinstance(v, bool) for v in vals):
                raise TraceError(f"field {'.'.join(path)}: a table must hold ints (or bools only)")
            out.append(Leaf(path, "table", -1, "t_" + "_".join(path), len(x), flags,
                            "Table" if isinstance(x, Table) else "tuple"))
        elif isinstance(x, int):
            out.append(Leaf(path, "scalar", sum(1 for y in out if y.kind == "scalar"), "", 0, isinstance(x, bool), ""))
        else:
            raise TraceError(f"field {'.'.join(path)}: {type(x).__name__} is not a fast-path state leaf")
    walk(state, ())
    return Layout(state, tuple(out))


def _get(x: Any, path: tuple) -> Any:
    for p in path:
        x = getattr(x, p)
    return x


def _rebuild(template: Any, values: dict, path: tuple = ()) -> Any:
    if dataclasses.is_dataclass(template):
        return dataclasses.replace(template, **{f.name: _rebuild(getattr(template, f.name), values, path + (f.name,))
                                                for f in dataclasses.fields(template)})
    return values[path]


def to_arrays(layout: Layout, state: Any, np: Any = None) -> dict:
    """The state's words: ``{"sc": ..., table: ...}`` as uint64 numpy arrays (``np``) or Python lists."""
    sc = [0] * layout.nscalars
    out: dict = {"sc": sc}
    for leaf in layout.leaves:
        v = _get(state, leaf.path)
        if leaf.kind == "scalar":
            sc[leaf.slot] = int(v) & MASK
        else:
            out[leaf.table] = [int(y) & MASK for y in (v.tolist() if isinstance(v, Table) else v)]
    if np is not None:
        out = {k: np.array(v, dtype=np.uint64) for k, v in out.items()}
    return out


def from_arrays(layout: Layout, arrays: dict) -> Any:
    """The model state held in ``arrays`` (numpy arrays or lists)."""
    vals = {}
    sc = arrays["sc"]
    for leaf in layout.leaves:
        if leaf.kind == "scalar":
            v = int(sc[leaf.slot])
            vals[leaf.path] = bool(v) if leaf.boolean else v
        else:
            a = arrays[leaf.table]
            lst = a.tolist() if hasattr(a, "tolist") else list(a)
            if leaf.boolean:
                lst = [bool(y) for y in lst]
            vals[leaf.path] = Table(lst) if leaf.container == "Table" else tuple(lst)
    return _rebuild(layout.template, vals)


# ---------------------------------------------------------------------------------------------
# Tracing a transition

def _out_tree(x: Any) -> Any:
    """How to rebuild a step's ``out`` from words: ("u64"|"bool"|("tuple", parts)|("dc", cls, names, parts))."""
    if isinstance(x, tuple):
        return ("tuple", [_out_tree(y) for y in x])
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        names = [f.name for f in dataclasses.fields(x)]
        return ("dc", type(x), names, [_out_tree(getattr(x, k)) for k in names])
    if x is None:
        return ("none",)
    return typeof(x)


def rebuild_out(tree: Any, words: Sequence[int], pos: int = 0) -> tuple[Any, int]:
    """The Python value of a step's ``out`` from the ``out`` words (inverse of the trace's flattening)."""
    if tree == U64:
        return int(words[pos]), pos + 1
    if tree == BOOL:
        return bool(words[pos]), pos + 1
    if tree[0] == "none":
        return None, pos
    if tree[0] == "tuple":
        vals = []
        for t in tree[1]:
            v, pos = rebuild_out(t, words, pos)
            vals.append(v)
        return tuple(vals), pos
    _, cls, names, parts = tree
    kw = {}
    for k, t in zip(names, parts):
        kw[k], pos = rebuild_out(t, words, pos)
    return cls(**kw), pos


def trace(fn: Callable[..., Any], layout: Layout, nargs: int, name: str, dynamic: frozenset = frozenset(),
          extra: dict | None = None, selections: dict | None = None, symbolic_sizes: bool = False) -> ir.Function:
    """Trace ``fn(L, state, *args)`` (a transition returning a ``Step``) into an ``ir.Function``.

    ``dynamic``: tables whose length the generated code reads at run time (every size shares the code);
    a constant index into one of them is checked at run time too. ``symbolic_sizes``: ``len()`` of a
    dynamic table is that run-time length in arithmetic too (``SymSize``), not only as a loop bound.
    ``extra``: further u64 tables the function takes after the state's (name -> length), e.g. the entries
    of a selection argument (``SelList``); ``fn`` receives them as ``TTable``s after its arguments.
    ``selections``: state tables of selections (table -> (firsts table, links table), ``SelTable``)."""
    extra = dict(extra or {})
    selections = dict(selections or {})
    bld = Builder()
    _B.append(bld)
    try:
        prologue: dict = {}
        vals: dict = {}
        for leaf in layout.leaves:
            if leaf.kind == "scalar":
                v = bld.var(U64)
                bld.emit(ir.Read(v, "sc", Const(leaf.slot, U64)))
                t = Tr(v)
                if leaf.boolean:
                    t = op("ne", t, 0)
                prologue[leaf.path] = t
                vals[leaf.path] = t
            else:
                if leaf.table in selections:
                    first, link = selections[leaf.table]
                    vals[leaf.path] = SelTable(TTable(leaf.table, leaf.n), TTable(first, leaf.n), TTable(link, leaf.n))
                    for t in (leaf.table, first, link):
                        bld.version[t] = 0
                else:
                    vals[leaf.path] = TTable(leaf.table, leaf.n, 0, leaf.boolean)
                bld.version[leaf.table] = 0
        state = _rebuild(layout.template, vals)
        for t in sorted(dynamic) if symbolic_sizes else ():
            if t in layout.tables or t in extra:
                v = bld.var(U64)
                bld.emit(ir.Len(v, t))
                bld.lens[t] = v
        args = []
        for i in range(nargs):
            v = bld.var(U64)
            bld.emit(ir.Read(v, "args", Const(i, U64)))
            args.append(Tr(v))
        xt = []
        for t, n in extra.items():
            bld.version[t] = 0
            xt.append(TTable(t, n))
        st = call(fn, TRACE, state, *args, *xt)
        clauses: list[str] = []
        for cond, clause in st.guards:
            if cond is True:
                continue
            if clause not in clauses:
                clauses.append(clause)
            bld.emit(ir.Guard(atom(cond, BOOL), clauses.index(clause) + 1, clause))
        out = st.out
        tree = _out_tree(out)
        leaves, _ = _leaves(out) if out is not None else ([], None)
        out_atoms = []
        for v in leaves:
            a = atom(v)
            out_atoms.append(a if a.ty == U64 else atom(op("b2u", v), U64))
        for k, a in enumerate(out_atoms):
            bld.emit(ir.Write("out", Const(k, U64), a))
        new = st.new                                  # runs the deferred effects: they record their writes
        for leaf in layout.leaves:
            v = _get(new, leaf.path)
            if leaf.kind == "scalar":
                if v is prologue[leaf.path]:
                    continue
                a = atom(op("b2u", v) if leaf.boolean else v, U64)
                bld.emit(ir.Write("sc", Const(leaf.slot, U64), a))
            elif isinstance(v, SelTable):
                for part in (v.count, v.first, v.link):
                    if part.ver != bld.version[part.name]:
                        raise TraceError(f"field {'.'.join(leaf.path)}: an older version of a selection table")
            elif isinstance(v, TTable):
                if v.name != leaf.table or v.ver != bld.version[leaf.table]:
                    raise TraceError(f"field {'.'.join(leaf.path)}: the new state holds another table or an older "
                                     "version")
            elif isinstance(v, (tuple, list)) and len(v) == leaf.n:
                for k, x in enumerate(v):
                    bld.emit(ir.Write(leaf.table, Const(k, U64), atom(op("b2u", x) if typeof(x) == BOOL else x, U64)))
            else:
                raise TraceError(f"field {'.'.join(leaf.path)}: the new state holds {type(v).__name__}")
        tabs = {}
        for t, n in layout.tables.items():
            tabs[t] = n
            if t in selections:
                tabs[selections[t][0]] = n
                tabs[selections[t][1]] = n
        tables = {"sc": layout.nscalars, **tabs, **extra, "args": nargs, "out": len(out_atoms)}
        dyn = set(dynamic)
        for t in selections:
            if t in dyn:
                dyn.update(selections[t])
        return ir.Function(name, tables, nargs, len(out_atoms), bld.block, clauses, tree, frozenset(dyn))
    finally:
        _B.pop()
