"""Concrete tables updated in place, with every earlier version still readable (DESIGN.md §6).

A transition returns a new state and leaves the old one as it was (the ``Step`` contract): a refused
step is simply dropped, and a machine compares the state before and after a step. With tuples, that
costs a copy of the whole table per write. ``Table`` is a persistent array in Baker's style ("diff
arrays", as in Conchon and Filliâtre's *A persistent union-find data structure*): the newest version
owns the Python list and is updated in place; an older version keeps only the entries the newer one
overwrote (a small ``dict``) and a link to it. So a write of ``n`` entries costs ``O(n)`` whatever the
table's length, reads of the newest version are list reads, and an older version answers a read by
walking its (short) chain of diffs, or takes the list back ("reroot") when its chain grows long.

Semantically a ``Table`` is an immutable sequence: ``==`` and ``hash`` are those of the tuple of its
entries, and nothing outside this module sees the sharing. Not thread-safe (one model per thread).
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

REROOT_AFTER = 8          # an older version rerooted once its chain of diffs is this long


class Table:
    """An immutable sequence of ints/bools whose writes cost what they touch (see module docstring)."""

    __slots__ = ("_arr", "_diff", "_next", "_n", "__weakref__")

    def __init__(self, values: Iterable[Any] = ()):
        self._arr: list | None = list(values)
        self._diff: dict | None = None
        self._next: Table | None = None
        self._n = len(self._arr)

    # ---------------------------------------------------------------- versions

    def _reroot(self) -> list:
        """Make this version the one that owns the list (undo the newer versions' writes); return it."""
        if self._arr is not None:
            return self._arr
        path = []
        v: Table = self
        while v._arr is None:
            path.append(v)
            v = v._next
        arr = v._arr
        for w in reversed(path):              # nearest the owner first
            nxt, undo = w._next, {}
            for k, x in w._diff.items():
                undo[k] = arr[k]
                arr[k] = x
            nxt._arr, nxt._diff, nxt._next = None, undo, w
            w._arr, w._diff, w._next = arr, None, None
            arr = w._arr
        return self._arr

    def _writes(self, changes: dict) -> "Table":
        """Return a new version with ``changes`` (index -> value) applied; this one keeps its entries."""
        arr = self._reroot()
        undo = {}
        for k, x in changes.items():
            undo[k] = arr[k]
            arr[k] = x
        new = Table.__new__(Table)
        new._arr, new._diff, new._next, new._n = arr, None, None, self._n
        self._arr, self._diff, self._next = None, undo, new
        return new

    # ---------------------------------------------------------------- writes (each returns a new version)

    def set(self, k: int, x: Any) -> "Table":
        """This table with entry ``k`` replaced by ``x`` (``0 <= k < len``)."""
        return self._writes({k: x})

    def set_many(self, changes: dict) -> "Table":
        """This table with every ``index -> value`` of ``changes`` applied."""
        return self._writes(changes) if changes else self

    # ---------------------------------------------------------------- reads

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return tuple(self._reroot()[k])
        if self._arr is not None:
            return self._arr[k]
        if k < 0:
            k += self._n
        v, hops = self, 0
        while v._arr is None:
            d = v._diff
            if k in d:
                return d[k]
            v = v._next
            hops += 1
            if hops == REROOT_AFTER:
                return self._reroot()[k]
        if not 0 <= k < self._n:
            raise IndexError(k)
        return v._arr[k]

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Any]:
        return iter(self.tolist())

    def tolist(self) -> list:
        """A copy of the entries."""
        return list(self._reroot())

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, Table):
            return self is other or (self._n == other._n and self.tolist() == other.tolist())
        if isinstance(other, (tuple, list)):
            return self._n == len(other) and self.tolist() == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self.tolist()))

    def __repr__(self) -> str:
        vals = self.tolist()
        shown = ", ".join(map(repr, vals[:8])) + (", ..." if len(vals) > 8 else "")
        return f"Table([{shown}], n={self._n})"

    def __reduce__(self) -> tuple:
        return (Table, (self.tolist(),))
