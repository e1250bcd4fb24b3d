"""Plain-data state helpers: symbolic copies, decoding, and JSON round trips.

State is frozen dataclasses whose leaves are ints and bools, in tuples of fixed (preset) length.
A field declared with ``bits(w)`` is a ``w``-bit vector in proofs; other ints are z3 ``Int``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from t1virtio.table import Table


def bits(width: int, **kw: Any) -> Any:
    """Declare a dataclass field whose ints are ``width``-bit vectors in proofs."""
    return dataclasses.field(metadata={"bits": width}, **kw)


def _leaves(template: Any, width: int | None, f):
    if dataclasses.is_dataclass(template):
        return dataclasses.replace(template, **{
            fl.name: _leaves(getattr(template, fl.name), fl.metadata.get("bits", width), f)
            for fl in dataclasses.fields(template)})
    if isinstance(template, (tuple, Table)):
        return tuple(_leaves(x, width, f) for x in template)
    return f(template, width)


def table(**kw: Any) -> Any:
    """Declare a dataclass field holding a table of ints; ``symbolize(..., arrays=True)`` makes it a z3 array."""
    return dataclasses.field(metadata={"table": True}, **kw)


def _arrays(template: Any, prefix: str) -> Any:
    """Replace every ``table()`` field of ``template`` (top level) by a fresh ``SymTable``."""
    import z3
    from t1virtio.logic import SymTable
    return dataclasses.replace(template, **{
        f.name: SymTable(z3.Array(f"{prefix}.{f.name}", z3.IntSort(), z3.IntSort()), len(getattr(template, f.name)))
        for f in dataclasses.fields(template) if f.metadata.get("table")})


def symbolize(template: Any, prefix: str, arrays: bool = False) -> Any:
    """Return a copy of ``template`` whose every leaf is a fresh z3 constant (``table()`` fields as z3 arrays if ``arrays``)."""
    import z3
    counter = [0]

    def fresh(value: Any, width: int | None) -> Any:
        counter[0] += 1
        name = f"{prefix}!{counter[0]}"
        if isinstance(value, bool):
            return z3.Bool(name)
        if width is not None:
            return z3.BitVec(name, width)
        if isinstance(value, int):
            return z3.Int(name)
        return value
    if arrays:
        return _leaves(_arrays(template, prefix), None, fresh)
    return _leaves(template, None, fresh)


def decode(model: Any, sym: Any) -> Any:
    """Return the concrete value of the symbolic state ``sym`` in a z3 ``model``."""
    import z3

    from t1virtio.logic import SymTable

    def value(x: Any, width: int | None) -> Any:
        if isinstance(x, (bool, int)):
            return x
        if isinstance(x, SymTable):
            return tuple(model.eval(x[k], model_completion=True).as_long() for k in range(x.n))
        v = model.eval(x, model_completion=True)
        if z3.is_bool(v):
            return z3.is_true(v)
        return v.as_long()
    return _leaves(sym, None, value)


def to_json(state: Any) -> Any:
    """Return ``state`` as JSON-able lists, dicts, ints and bools."""
    if dataclasses.is_dataclass(state):
        return {f.name: to_json(getattr(state, f.name)) for f in dataclasses.fields(state)}
    if isinstance(state, (tuple, list, Table)):
        return [to_json(x) for x in state]
    if isinstance(state, (bytes, bytearray)):
        return {"hex": bytes(state).hex()}
    return state


def from_json(template: Any, data: Any) -> Any:
    """Rebuild a state shaped like ``template`` from ``to_json`` output (lengths may differ)."""
    if dataclasses.is_dataclass(template):
        return dataclasses.replace(template, **{
            f.name: from_json(getattr(template, f.name), data[f.name]) for f in dataclasses.fields(template)})
    if isinstance(template, Table):
        proto = template[0] if len(template) else None
        return Table(from_json(proto, x) if proto is not None else x for x in data)
    if isinstance(template, tuple):
        if len(template) == len(data):
            return tuple(from_json(t, x) for t, x in zip(template, data))
        proto = template[0] if template else None
        return tuple(from_json(proto, x) if proto is not None else x for x in data)
    if isinstance(template, bytes):
        return bytes.fromhex(data["hex"])
    if isinstance(template, bool):
        return bool(data)
    return data


def evolve(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for the frozen ``slots`` states of transitions, several times as fast.

    The states are rebuilt several times per operation, so this is a visible part of an operation's
    cost. A per-class function, compiled once from the class's own field names (as ``dataclasses``
    itself does), sets every slot directly; an unknown field raises ``TypeError`` as ``replace`` does.
    """
    cls = type(obj)
    rep = _REPLACERS.get(cls)
    if rep is None:
        rep = _REPLACERS[cls] = _replacer(cls)
    return rep(obj, **changes)


_REPLACERS: dict = {}
_UNSET = object()


def _replacer(cls: type) -> Any:
    names = [f.name for f in dataclasses.fields(cls)]
    env = {"_UNSET": _UNSET, "_new": object.__new__, "_cls": cls,
           **{f"_set_{n}": cls.__dict__[n].__set__ for n in names}}
    body = "".join(f"    _set_{n}(new, obj.{n} if {n} is _UNSET else {n})\n" for n in names)
    src = (f"def replace(obj, *, {', '.join(f'{n}=_UNSET' for n in names)}):\n"
           f"    new = _new(_cls)\n{body}    return new\n")
    exec(src, env)  # noqa: S102 - generated from the class's own field names, never from data
    return env["replace"]
