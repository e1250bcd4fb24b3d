"""One vocabulary, two backends: concrete Python values and z3 terms (anchors lesson 6).

Transitions, invariants and rules are written once against ``L``: ``CONCRETE`` (Python values)
or ``z3_logic()`` (z3 terms). Python control flow may branch only on preset constants; anything
that depends on data goes through ``L.If``, ``L.at``, ``L.update`` and the structured primitives
(``loop``: a bounded loop with an early exit; ``fill``/``map_range``/``map_while_back``: range
updates; ``cases``; the
``sel_*`` selections; ``effect``: effects run once the guards hold). For z3 they are unrolled over
a table's fixed (preset) length and masked by the index, so they work for symbolic indices too;
concretely they touch only what the operation needs (DESIGN.md §6), over ``table.Table``.

Conventions shared by both backends (so a proof and a concrete run agree):
- ``at(seq, i)`` with ``i`` outside ``[0, len(seq))`` reads the last element;
- ``update``/``fill``/``map_range`` outside the table change nothing;
- ``If`` is structural: it works on tuples and frozen dataclasses of values.
z3 is imported lazily, so the concrete backend costs nothing at import.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator, Sequence

from t1virtio.table import Table

# Index safety (DESIGN.md §6): proofs record every data-dependent table index a transition uses
# (``Vocabulary.sites``) and prove it in range under the step's guards; concretely, effects run by
# ``step.apply`` after the guards held are strict: an index outside its table raises
# ``IndexOutOfTable`` naming the site instead of being clamped.
_STRICT = [False]


class IndexOutOfTable(IndexError):
    """A transition's effect used an index outside its table although the step's guards held."""


def where() -> str:
    """The transition line that called a table primitive (the first frame outside this module)."""
    import sys
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename == __file__:
        f = f.f_back
    if f is None:
        return "?"
    return f"{f.f_globals.get('__name__', '?')}.{f.f_code.co_name}:{f.f_lineno}"


def _strict_fail(what: str) -> None:
    if _STRICT[0]:
        raise IndexOutOfTable(f"{where()}: {what}")


class Concrete:
    """Python ``bool``/``int`` backend, used by machines, the oracle and replays."""

    name = "concrete"
    symbolic = False

    @staticmethod
    def And(*xs: Any) -> bool:
        for x in xs:
            if not x:
                return False
        return True

    @staticmethod
    def Or(*xs: Any) -> bool:
        for x in xs:
            if x:
                return True
        return False

    @staticmethod
    def Not(x: Any) -> bool:
        return not x

    @staticmethod
    def Implies(a: Any, b: Any) -> bool:
        return (not a) or bool(b)

    @staticmethod
    def If(c: Any, a: Any, b: Any) -> Any:
        return a if c else b

    @staticmethod
    def ULT(a: int, b: int) -> bool:
        return a < b

    @staticmethod
    def ULE(a: int, b: int) -> bool:
        return a <= b

    @staticmethod
    def BitNot(x: int, width: int) -> int:
        return ~x & ((1 << width) - 1)

    @staticmethod
    def mod(x: int, m: int) -> int:
        return x % m

    @staticmethod
    def div(x: int, m: int) -> int:
        return x // m

    @staticmethod
    def is_true(x: Any) -> bool:
        return bool(x)


class Z3:
    """z3 backend, used by ``proofs/``. Ints are z3 ``Int``; fields declared with bits are ``BitVec``."""

    name = "z3"
    symbolic = True

    def __init__(self) -> None:
        import z3
        self.z3 = z3

    def _b(self, x: Any) -> Any:
        return self.z3.BoolVal(x) if isinstance(x, bool) else x

    def And(self, *xs: Any) -> Any:
        return self.z3.And(*[self._b(x) for x in xs]) if xs else self.z3.BoolVal(True)

    def Or(self, *xs: Any) -> Any:
        return self.z3.Or(*[self._b(x) for x in xs]) if xs else self.z3.BoolVal(False)

    def Not(self, x: Any) -> Any:
        return self.z3.Not(self._b(x))

    def Implies(self, a: Any, b: Any) -> Any:
        return self.z3.Implies(self._b(a), self._b(b))

    def If(self, c: Any, a: Any, b: Any) -> Any:
        if isinstance(a, SymTable):
            return SymTable(self.z3.If(c, a.arr, b.arr), a.n)
        if isinstance(a, tuple):
            return tuple(self.If(c, x, y) for x, y in zip(a, b, strict=True))
        if dataclasses.is_dataclass(a):
            return dataclasses.replace(a, **{f.name: self.If(c, getattr(a, f.name), getattr(b, f.name))
                                             for f in dataclasses.fields(a)})
        if isinstance(c, bool):
            return a if c else b
        if a is b:
            return a
        return self.z3.If(c, a, b)

    def _is_bv(self, *xs: Any) -> bool:
        return any(self.z3.is_bv(x) for x in xs)

    def ULT(self, a: Any, b: Any) -> Any:
        return self.z3.ULT(a, b) if self._is_bv(a, b) else a < b

    def ULE(self, a: Any, b: Any) -> Any:
        return self.z3.ULE(a, b) if self._is_bv(a, b) else a <= b

    def BitNot(self, x: Any, width: int) -> Any:
        return ~x if self._is_bv(x) else self.z3.BitVecVal(~x & ((1 << width) - 1), width)

    def mod(self, x: Any, m: Any) -> Any:
        if self._is_bv(x):
            return self.z3.URem(x, m)
        return x % m

    def div(self, x: Any, m: Any) -> Any:
        if self._is_bv(x):
            return self.z3.UDiv(x, m)
        return x / m

    @staticmethod
    def is_true(x: Any) -> Any:
        raise TypeError("a z3 term has no truth value; branch with L.If")


_QUANTIFIER_DEPTH: list = []


class SymTable:
    """A table of ``n`` entries held as a z3 array: reads are ``Select``, writes ``Store``.

    Used by proofs that reach the real (LINUX) table sizes, where an ``If`` chain per symbolic
    index would be too large. ``len`` is the table length, so invariants written over tuples
    (``len(s.sizes)``, ``s.sizes[k]``, ``L.at``, ``L.update``) read the same over a ``SymTable``.
    """

    __slots__ = ("arr", "n")

    def __init__(self, arr: Any, n: int):
        self.arr, self.n = arr, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: Any) -> Any:
        import z3
        return z3.Select(self.arr, k)


def _in_range(L: Any, k: int, lo: Any, n: Any) -> Any:
    return L.And(L.ULE(lo, k), L.ULT(k, lo + n)) if not isinstance(lo, int) or not isinstance(n, int) \
        else (lo <= k < lo + n)


class Vocabulary:
    """Table helpers shared by both backends, written once over the primitives above.

    The backend's primitives are bound onto the instance once (no per-call ``__getattr__``). The
    structured primitives (``loop``, ``cases``, ``map_range``, ``fill``, ``update``, ``tabulate``,
    ``effect``, the ``sel_*`` family) are unrolled formulas here, for z3; ``ConcreteVocabulary``
    runs the same meaning as loops that touch only what an operation needs.
    """

    def __init__(self, base: Any):
        self.base = base
        for name in dir(base):
            if not name.startswith("_") and not hasattr(type(self), name):
                setattr(self, name, getattr(base, name))

    def __getattr__(self, item: str) -> Any:
        return getattr(self.base, item)

    sites: list | None = None     # when a list: (where, in-range condition) of every data-dependent index
    _path: tuple = ()              # conditions under which the code being built runs (``assuming``, ``loop``)

    def _site(self, cond: Callable[[], Any]) -> None:
        if self.sites is not None:
            c = cond()
            if not isinstance(c, bool):
                self.sites.append((where(), self.Implies(self.And(*self._path), c) if self._path else c))

    @contextlib.contextmanager
    def assuming(self, cond: Any) -> Iterator[None]:
        """Build the block's terms as code that runs only when ``cond`` holds (for index safety: a
        table index used inside must be in range only then). Concretely nothing happens."""
        saved = self._path
        self._path = saved + (cond,)
        try:
            yield
        finally:
            self._path = saved

    def _index_ok(self, i: Any, n: int) -> Any:
        return self.And(self.ULE(0, i), self.ULT(i, n))

    def _range_ok(self, lo: Any, k: Any, n: int) -> Any:
        """``[lo, lo + k)`` is empty or inside a table of ``n`` entries (no wrap-around)."""
        return self.Or(self.ULE(k, 0), self.And(self.ULE(0, lo), self.ULE(lo, n), self.ULE(k, n - lo)))

    # ------------------------------------------------------------ whole-table forms (invariants, rules)

    def all_idx(self, n: int, f: Callable[[int], Any]) -> Any:
        """Return ``And(f(0), ..., f(n-1))`` for a preset constant ``n``."""
        return self.And(*[f(i) for i in range(n)])

    def any_idx(self, n: int, f: Callable[[int], Any]) -> Any:
        """Return ``Or(f(0), ..., f(n-1))`` for a preset constant ``n``."""
        return self.Or(*[f(i) for i in range(n)])

    def forall_below(self, table: Sequence[Any], bound: Any, f: Callable[[Any], Any]) -> Any:
        """Return whether ``f(k)`` holds for every ``0 <= k < bound`` (``bound <= len(table)``).

        Over a tuple this is a masked conjunction of ``len(table)`` terms; over a ``SymTable`` it is
        one quantified formula, so proofs at the real table sizes stay small.
        """
        if isinstance(table, SymTable):
            # bound variables are named by nesting depth, not by a global counter, so the same
            # obligation is the same formula (and z3 finds the same counterexample) in any process
            import z3
            k = z3.Int(f"k{len(_QUANTIFIER_DEPTH)}")
            _QUANTIFIER_DEPTH.append(k)
            try:
                return z3.ForAll([k], z3.Implies(z3.And(0 <= k, k < bound), f(k)))
            finally:
                _QUANTIFIER_DEPTH.pop()
        if isinstance(bound, int):
            return self.And(*[f(k) for k in range(min(bound, len(table)))])
        return self.And(*[self.Implies(self.ULT(k, bound), f(k)) for k in range(len(table))])

    def count(self, n: int, f: Callable[[int], Any]) -> Any:
        """Return how many of ``f(0..n-1)`` hold."""
        return sum((self.If(f(i), 1, 0) for i in range(n)), 0)

    # ------------------------------------------------------------ reads and writes

    def at(self, seq: Sequence[Any], i: Any) -> Any:
        """Return ``seq[i]``; outside the table, its last element (same in both backends).

        The index is an index-safety site: it must be in range whenever the step's guards hold.
        """
        if not isinstance(i, int):
            self._site(lambda: self._index_ok(i, len(seq)))
        if isinstance(seq, SymTable):
            return seq[self.If(self.And(self.ULE(0, i), self.ULT(i, seq.n)), i, seq.n - 1)]
        if isinstance(i, int):
            return seq[i] if 0 <= i < len(seq) else seq[-1]
        out = seq[-1]
        for k in range(len(seq) - 2, -1, -1):
            out = self.If(i == k, seq[k], out)
        return out

    def at_or(self, seq: Sequence[Any], i: Any, default: Any) -> Any:
        """Return ``seq[i]`` inside the table and ``default`` outside it (a read that may miss, by design)."""
        sites, self.sites = self.sites, None
        try:
            return self.If(self._index_ok(i, len(seq)), self.at(seq, i), default)
        finally:
            self.sites = sites

    def update(self, seq: Sequence[Any], i: Any, v: Any) -> Any:
        """Return ``seq`` with element ``i`` replaced by ``v`` (unchanged outside the table)."""
        if not isinstance(i, int):
            self._site(lambda: self._index_ok(i, len(seq)))
        if isinstance(seq, SymTable):
            import z3
            return SymTable(self.If(self.And(self.ULE(0, i), self.ULT(i, seq.n)), z3.Store(seq.arr, i, v), seq.arr), seq.n)
        if isinstance(i, int):
            return tuple(v if k == i else x for k, x in enumerate(seq))
        return tuple(self.If(i == k, v, x) for k, x in enumerate(seq))

    def fill(self, seq: Sequence[Any], lo: Any, n: Any, v: Any) -> Any:
        """Return ``seq`` with elements ``lo .. lo+n-1`` set to ``v`` (a range update)."""
        self._site(lambda: self._range_ok(lo, n, len(seq)))
        return tuple(self.If(_in_range(self, k, lo, n), v, x) for k, x in enumerate(seq))

    def map_range(self, seq: Sequence[Any], lo: Any, n: Any, f: Callable[[Any, Any], Any]) -> Any:
        """Return ``seq`` with each element ``k`` in ``lo .. lo+n-1`` replaced by ``f(k, seq[k])``."""
        self._site(lambda: self._range_ok(lo, n, len(seq)))
        return tuple(self.If(_in_range(self, k, lo, n), f(k, x), x) for k, x in enumerate(seq))

    def tabulate(self, n: int, f: Callable[[int], Any]) -> Any:
        """Return the table ``f(0), ..., f(n-1)`` (a ``Table`` concretely, a tuple for z3)."""
        return tuple(f(k) for k in range(n))

    def all_in(self, seq: Sequence[Any], lo: Any, n: Any, pred: Callable[[Any], Any]) -> Any:
        """Return whether ``pred`` holds for every element in ``lo .. lo+n-1``."""
        return self.And(*[self.Implies(_in_range(self, k, lo, n), pred(x)) for k, x in enumerate(seq)])

    def map_while_back(self, seq: Sequence[Any], start: Any, go: Callable[[int, Any], Any],
                       f: Callable[[int, Any], Any]) -> Any:
        """Walk ``k = start-1, start-2, ...`` while ``go(k, seq[k])`` holds, writing ``f(k, seq[k])``.

        The walk stops at the first ``k`` where ``go`` fails (or below 0); ``go`` may answer a Python
        ``False`` for a constant ``k`` (a segment end), which cuts the unrolled chain there.
        """
        self._site(lambda: self.ULE(start, len(seq)))
        out = list(seq)
        walking: Any = False
        for k in range(len(seq) - 1, -1, -1):
            g = go(k, seq[k])
            if g is False:
                walking = False
                continue
            walking = self.And(self.Or(start == k + 1, walking), g)
            out[k] = self.If(walking, f(k, seq[k]), seq[k])
        return tuple(out)

    # ------------------------------------------------------------ control

    def loop(self, n: int, carry: tuple, body: Callable[[tuple], tuple]) -> tuple:
        """A bounded loop with an early exit: ``carry = body(carry)`` at most ``n`` times.

        ``carry[0]`` is *alive*. Contract: once ``alive`` is false, ``body`` leaves every other
        part of ``carry`` the caller reads unchanged (it masks its own effects by ``alive``). So
        the unrolled formula here and the concrete loop, which stops as soon as ``alive`` is false,
        give the same result.
        """
        for _ in range(n):
            with self.assuming(carry[0]):
                carry = body(carry)
        return carry

    def cases(self, n: int, i: Any, f: Callable[[int], Any]) -> Any:
        """Return ``f(i)`` for ``0 <= i < n`` (``f(n-1)`` outside): a case split on a small index.

        For z3 every case is built and the one at ``i`` selected; concretely only ``f(i)`` runs.
        """
        return self.at(tuple(f(c) for c in range(n)), i)

    def effect(self, guards: Sequence[tuple], make: Callable[[], Any], old: Any) -> Any:
        """A step's new state, built by ``make()`` only once the step's guards hold.

        Pass the result straight to ``step(...)`` as ``new`` (never store it in a state). For z3 the
        effects are built now (``commit`` selects them by the guards); concretely they are deferred
        (``Deferred``) until ``step.apply`` has checked the guards, so a refused step does no work.
        Reading ``Step.new`` directly runs them whatever the guards say (as an eager step would).
        """
        return make()

    # ------------------------------------------------------------ selections (a set of table indices)

    def sel_has(self, sel: Any, i: Any) -> Any:
        """Whether index ``i`` is in the selection ``sel`` (a bitmask for z3)."""
        return ((sel >> i) & 1) == 1

    def sel_count(self, sel: Any, n: int) -> Any:
        """How many indices below ``n`` the selection holds."""
        return self.count(n, lambda i: self.sel_has(sel, i))

    def sel_all(self, sel: Any, n: int, pred: Callable[[int], Any]) -> Any:
        """Whether ``pred(i)`` holds for every selected index below ``n``."""
        return self.all_idx(n, lambda i: self.Implies(self.sel_has(sel, i), pred(i)))

    def sel_only_below(self, sel: Any, n: int) -> Any:
        """Whether the selection holds no index at or above ``n`` (a logical shift for bit-vectors)."""
        if self.symbolic and self.z3.is_bv(sel):
            return self.z3.LShR(sel, n) == 0
        return (sel >> n) == 0

    def sel_map(self, seq: Sequence[Any], sel: Any, f: Callable[[int, Any], Any]) -> Any:
        """Return ``seq`` with each selected element ``k`` replaced by ``f(k, seq[k])``."""
        self._site(lambda: self.sel_only_below(sel, len(seq)))
        return tuple(self.If(self.sel_has(sel, k), f(k, x), x) for k, x in enumerate(seq))

    def wrap(self, x: Any, bits: int) -> Any:
        """Return ``x mod 2**bits`` (ring indices are free-running u16 counters)."""
        return self.mod(x, 1 << bits)


class ConcreteVocabulary(Vocabulary):
    """The vocabulary over Python values: the same meaning, at the cost of the work done.

    Tables (``Table``, from ``tabulate``) are written in place through ``table.Table`` versions, so
    a write of ``n`` entries costs ``O(n)``; loops stop at their exit; a case split runs one case; a
    selection is a set of indices (an ``int`` bitmask is accepted too) and is walked, not the table.
    """

    def __init__(self) -> None:
        super().__init__(Concrete())

    @staticmethod
    def at(seq: Sequence[Any], i: Any) -> Any:
        if 0 <= i < len(seq):
            return seq[i]
        _strict_fail(f"read of entry {i} of a {len(seq)}-entry table")
        return seq[-1]

    @staticmethod
    def at_or(seq: Sequence[Any], i: Any, default: Any) -> Any:
        return seq[i] if 0 <= i < len(seq) else default

    @staticmethod
    def update(seq: Sequence[Any], i: Any, v: Any) -> Any:
        if not 0 <= i < len(seq):
            _strict_fail(f"write of entry {i} of a {len(seq)}-entry table")
            return seq
        if isinstance(seq, Table):
            return seq.set(i, v)
        out = list(seq)
        out[i] = v
        return tuple(out)

    @staticmethod
    def _range(seq: Sequence[Any], lo: int, n: int) -> range:
        if n <= 0:
            return range(0)
        end = lo + n
        size = len(seq)
        if lo < 0 or end > size:
            _strict_fail(f"range {lo}..{end - 1} of a {size}-entry table")
            return range(max(lo, 0), min(end, size))
        return range(lo, end)

    def fill(self, seq: Sequence[Any], lo: Any, n: Any, v: Any) -> Any:
        return _write(seq, {k: v for k in self._range(seq, lo, n)})

    def map_range(self, seq: Sequence[Any], lo: Any, n: Any, f: Callable[[Any, Any], Any]) -> Any:
        return _write(seq, {k: f(k, seq[k]) for k in self._range(seq, lo, n)})

    @staticmethod
    def tabulate(n: int, f: Callable[[int], Any]) -> Any:
        return Table(f(k) for k in range(n))

    def all_in(self, seq: Sequence[Any], lo: Any, n: Any, pred: Callable[[Any], Any]) -> Any:
        return all(pred(seq[k]) for k in self._range(seq, lo, n))

    @staticmethod
    def map_while_back(seq: Sequence[Any], start: Any, go: Callable[[int, Any], Any],
                       f: Callable[[int, Any], Any]) -> Any:
        changes = {}
        if start > len(seq):
            _strict_fail(f"walk back from {start} in a {len(seq)}-entry table")
        k = start - 1 if start <= len(seq) else -1
        entries = seq._reroot() if isinstance(seq, Table) else seq      # read the newest version's list directly
        while k >= 0:
            x = entries[k]
            if not go(k, x):
                break
            changes[k] = f(k, x)
            k -= 1
        return _write(seq, changes)

    @staticmethod
    def assuming(cond: Any) -> Any:
        return _NO_PATH

    @staticmethod
    def loop(n: int, carry: tuple, body: Callable[[tuple], tuple]) -> tuple:
        for _ in range(n):
            if not carry[0]:
                break
            carry = body(carry)
        return carry

    @staticmethod
    def cases(n: int, i: Any, f: Callable[[int], Any]) -> Any:
        return f(i if 0 <= i < n else n - 1)

    @staticmethod
    def effect(guards: Sequence[tuple], make: Callable[[], Any], old: Any) -> Any:
        return Deferred(make)

    @staticmethod
    def sel_has(sel: Any, i: Any) -> bool:
        if isinstance(sel, int):
            return i >= 0 and (sel >> i) & 1 == 1
        return i in sel

    @staticmethod
    def _members(sel: Any, n: int) -> list:
        if isinstance(sel, int):
            return [i for i in range(min(n, sel.bit_length())) if (sel >> i) & 1]
        return [i for i in sel if 0 <= i < n]

    def sel_count(self, sel: Any, n: int) -> int:
        return len(self._members(sel, n))

    def sel_all(self, sel: Any, n: int, pred: Callable[[int], Any]) -> bool:
        return all(pred(i) for i in self._members(sel, n))

    @staticmethod
    def sel_only_below(sel: Any, n: int) -> bool:
        if isinstance(sel, int):
            return (sel >> n) == 0
        return all(0 <= i < n for i in sel)

    def sel_map(self, seq: Sequence[Any], sel: Any, f: Callable[[int, Any], Any]) -> Any:
        if not self.sel_only_below(sel, len(seq)):
            _strict_fail(f"selection beyond a {len(seq)}-entry table")
        return _write(seq, {k: f(k, seq[k]) for k in self._members(sel, len(seq))})

    @staticmethod
    def wrap(x: Any, bits: int) -> Any:
        return x % (1 << bits)


_NO_PATH = contextlib.nullcontext()


class Deferred:
    """Effects not yet run (``ConcreteVocabulary.effect``): ``Step.new`` runs ``make`` on first use."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]):
        self.make = make


def _write(seq: Sequence[Any], changes: dict) -> Any:
    """``seq`` with ``changes`` applied: a new ``Table`` version, or a rebuilt tuple for small tuples."""
    if isinstance(seq, Table):
        return seq.set_many(changes)
    if not changes:
        return seq
    out = list(seq)
    for k, x in changes.items():
        out[k] = x
    return tuple(out)


CONCRETE = ConcreteVocabulary()
_Z3: Vocabulary | None = None


def z3_logic() -> Vocabulary:
    """Return the (shared) z3 backend; imports z3 on first use."""
    global _Z3
    if _Z3 is None:
        _Z3 = Vocabulary(Z3())
    return _Z3
