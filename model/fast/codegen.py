"""IR -> Python source that numba compiles (``@njit``, nopython) and that also runs as plain Python.

One template per statement, no optimisation here (docs/performance.md, "The generator"). Every value
is a u64 or a bool; u64 literals are module constants (``K<n>``), so the one function text runs in two
modes that differ only in the module prelude:

- ``numba``: ``K<n> = np.uint64(v)``, ``M64 = np.uint64(2**64-1)``, state as numpy ``uint64`` arrays;
  each wrapping op is ``(a op b) & M64`` (numba folds the mask); comparisons of two uint64 are unsigned;
  indices are uint64 (no negative-index fix-up, facts/extraction.md §4.7);
- ``python``: the same names bound to Python ints, state as lists of ints: exact 64-bit semantics
  through the same masks, no numba needed.

A function takes the tables in the layout's order, then ``args`` (u64 words) and ``out`` (u64 words it
fills) and returns 0, or the 1-based code of the first failed guard (``CLAUSES[code - 1]``); every
guard is checked before the first write, so a refused step leaves the arrays as they were.

``build_module`` writes the source to ``<cache>/<name>_<hash>_<mode>.py`` (named by the hash of its text,
never rewritten), imports it by name, so numba's ``cache=True`` keeps the machine code across processes
(``T1VIRTIO_FAST_CACHE`` moves the directory; default ``~/.cache/t1virtio/fast``).
"""
from __future__ import annotations

import hashlib
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from t1virtio.fast import ir
from t1virtio.fast.ir import BOOL, MASK, U64, Const, Var

GENERATOR_VERSION = "2"
MODES = ("numba", "python")


class _Consts:
    def __init__(self) -> None:
        self.names: dict[int, str] = {}

    def name(self, v: int) -> str:
        v &= MASK
        if v not in self.names:
            self.names[v] = f"K{len(self.names)}"
        return self.names[v]


class Printer:
    """Prints functions of IR as Python source lines sharing one constant table."""

    def __init__(self, inline: bool = False) -> None:
        self.inline = inline         # numba inlines each generated function into its callers, and no reference
        #                              counting (_nrt=False): the arrays belong to the caller for the whole call
        self.alias: dict[int, str] = {}      # CSE: a variable printed as an earlier one with the same (op, args)
        self.seen: list[dict] = [{}]         # (op, args) -> name, one scope per block (inner scopes see outer ones)
        self.guarded = False                 # every guard of the function has been printed (post-guard region)
        self.guards_left = 0
        self.k = _Consts()
        self.lines: list[str] = []
        self.tmp = 0

    def a(self, x: Any) -> str:
        if isinstance(x, Var):
            return self.alias.get(x.id, f"v{x.id}")
        if x.ty == BOOL:
            return "True" if x.value else "False"
        return self.k.name(x.value)

    def fresh(self, base: str) -> str:
        self.tmp += 1
        return f"{base}{self.tmp}"

    def emit(self, ind: int, text: str) -> None:
        self.lines.append("    " * ind + text)

    def op(self, s: ir.Op, ind: int) -> None:
        a = [self.a(x) for x in s.args]
        o, n = f"v{s.out.id}", s.op
        key = (n, tuple(a))
        for scope in reversed(self.seen):
            if key in scope:
                self.alias[s.out.id] = scope[key]     # common subexpression: print nothing, name the earlier one
                return
        self.seen[-1][key] = o
        if n in ("add", "sub", "mul"):
            e = f"({a[0]} {'+-*'[('add', 'sub', 'mul').index(n)]} {a[1]}) & M64"
        elif n in ("and", "or", "xor"):
            e = f"{a[0]} {'&|^'[('and', 'or', 'xor').index(n)]} {a[1]}"
        elif n in ("shl", "lshr"):
            sym = "<<" if n == "shl" else ">>"
            core = f"(({a[0]} << {a[1]}) & M64)" if n == "shl" else f"({a[0]} >> {a[1]})"
            amt = s.args[1]
            if isinstance(amt, Const):
                e = core if amt.value < 64 else self.k.name(0)
            else:
                e = f"{core} if {a[1]} < {self.k.name(64)} else {self.k.name(0)}"
            del sym
        elif n == "udiv":
            d = s.args[1]
            e = f"{a[0]} // {a[1]}" if isinstance(d, Const) and d.value else \
                f"({a[0]} // {a[1]}) if {a[1]} != {self.k.name(0)} else M64"
        elif n == "urem":
            d = s.args[1]
            e = f"{a[0]} % {a[1]}" if isinstance(d, Const) and d.value else \
                f"({a[0]} % {a[1]}) if {a[1]} != {self.k.name(0)} else {a[0]}"
        elif n in ("eq", "beq"):
            e = f"{a[0]} == {a[1]}"
        elif n in ("ne", "bne"):
            e = f"{a[0]} != {a[1]}"
        elif n == "ult":
            e = f"{a[0]} < {a[1]}"
        elif n == "ule":
            e = f"{a[0]} <= {a[1]}"
        elif n == "land":
            e = " and ".join(a)
        elif n == "lor":
            e = " or ".join(a)
        elif n == "lnot":
            e = f"not {a[0]}"
        elif n == "sel":
            e = f"{a[1]} if {a[0]} else {a[2]}"
        elif n == "b2u":
            e = f"{self.k.name(1)} if {a[0]} else {self.k.name(0)}"
        else:
            raise AssertionError(n)
        self.emit(ind, f"{o} = {e}")

    def N(self, table: str, sizes: dict, minus: int = 0) -> str:
        """The length of ``table`` (minus ``minus``): a constant, or its run-time variable if dynamic."""
        size = sizes[table]
        if isinstance(size, str):
            return f"n_{table}" if not minus else f"m_{table}"
        return self.k.name(size - minus)

    def _range(self, s: Any, ind: int, sizes: dict) -> tuple[str, int]:
        """Open ``for j in range(lo, end)`` over ``lo .. lo+n-1`` clipped to the table; return (j, body indent)."""
        lo, n = self.a(s.lo), self.a(s.n)
        N = self.N(s.table, sizes)
        e, j = self.fresh("e"), self.fresh("j")
        self.emit(ind, f"if {lo} < {N}:")
        self.emit(ind + 1, f"{e} = {N} if {n} > {N} - {lo} else {lo} + {n}")
        self.emit(ind + 1, f"for {j} in range({lo}, {e}):")
        return j, ind + 2

    def block(self, blk: list, ind: int, sizes: dict) -> None:
        self.seen.append({})
        try:
            self._block(blk, ind, sizes)
        finally:
            self.seen.pop()

    def _block(self, blk: list, ind: int, sizes: dict) -> None:
        for s in blk:
            if isinstance(s, ir.Op):
                self.op(s, ind)
            elif isinstance(s, ir.Read):
                t, o, n = s.table, f"v{s.out.id}", sizes[s.table]
                if isinstance(s.idx, Const) and not isinstance(n, str):
                    k = s.idx.value
                    if k < n:
                        self.emit(ind, f"{o} = {t}[{k}]")
                    else:
                        self.emit(ind, f"{o} = {t}[{n - 1}]" if s.default is None else f"{o} = {self.a(s.default)}")
                elif s.site and self.guarded:      # proved in range under the guards (op⊢index-safe)
                    self.emit(ind, f"{o} = {t}[{self.a(s.idx)}]")
                else:
                    i = self.a(s.idx)
                    other = f"{t}[{self.N(t, sizes, 1)}]" if s.default is None else self.a(s.default)
                    self.emit(ind, f"{o} = {t}[{i}] if {i} < {self.N(t, sizes)} else {other}")
            elif isinstance(s, ir.Write):
                t, n = s.table, sizes[s.table]
                if isinstance(s.idx, Const) and not isinstance(n, str):
                    if s.idx.value < n:
                        self.emit(ind, f"{t}[{s.idx.value}] = {self.a(s.val)}")
                elif s.site and self.guarded:
                    self.emit(ind, f"{t}[{self.a(s.idx)}] = {self.a(s.val)}")
                else:
                    i = self.a(s.idx)
                    self.emit(ind, f"if {i} < {self.N(t, sizes)}:")
                    self.emit(ind + 1, f"{s.table}[{i}] = {self.a(s.val)}")
            elif isinstance(s, ir.Fill):
                j, bi = self._range(s, ind, sizes)
                self.emit(bi, f"{s.table}[{j}] = {self.a(s.val)}")
            elif isinstance(s, ir.MapRange):
                j, bi = self._range(s, ind, sizes)
                self.emit(bi, f"v{s.k.id} = {j}")
                self.emit(bi, f"v{s.x.id} = {s.table}[{j}]")
                self.block(s.body, bi, sizes)
                self.emit(bi, f"{s.table}[{j}] = {self.a(s.res)}")
            elif isinstance(s, ir.WalkBack):
                t, N = s.table, self.N(s.table, sizes)
                j, k0, k1 = self.fresh("w"), self.k.name(0), self.k.name(1)
                self.emit(ind, f"if {self.a(s.start)} <= {N}:")
                self.emit(ind + 1, f"{j} = {self.a(s.start)}")
                self.emit(ind + 1, f"while {j} > {k0}:")
                b = ind + 2
                self.emit(b, f"v{s.k.id} = {j} - {k1}")
                self.emit(b, f"v{s.x.id} = {t}[v{s.k.id}]")
                self.block(s.go_body, b, sizes)
                self.emit(b, f"if not {self.a(s.go)}:")
                self.emit(b + 1, "break")
                self.block(s.f_body, b, sizes)
                self.emit(b, f"{t}[v{s.k.id}] = {self.a(s.fv)}")
                self.emit(b, f"{j} = v{s.k.id}")
            elif isinstance(s, ir.Loop):
                for p, i0 in zip(s.params, s.inits):
                    self.emit(ind, f"v{p.id} = {self.a(i0)}")
                self.emit(ind, f"for _ in range({s.n if isinstance(s.n, int) else f'len({s.n})'}):")
                self.emit(ind + 1, f"if not v{s.params[0].id}:")
                self.emit(ind + 2, "break")
                self.block(s.body, ind + 1, sizes)
                lhs = ", ".join(f"v{p.id}" for p in s.params)
                rhs = ", ".join(self.a(x) for x in s.nexts)
                self.emit(ind + 1, f"{lhs} = {rhs}" if len(s.params) > 1 else f"{lhs} = {rhs}")
                for p, o in zip(s.params, s.outs):
                    self.emit(ind, f"v{o.id} = v{p.id}")
            elif isinstance(s, ir.Len):
                self.emit(ind, f"v{s.out.id} = {self.N(s.table, sizes)}")
            elif isinstance(s, ir.Guard):
                self.emit(ind, f"if not {self.a(s.cond)}:")
                self.emit(ind + 1, f"return {s.code}    # {s.clause}")
                self.guards_left -= 1
                self.guarded = self.guards_left == 0
            else:
                raise AssertionError(type(s))

    def function(self, f: ir.Function) -> None:
        params = [t for t in f.tables]
        inl = ", inline='always', _nrt=False" if self.inline else ""
        self.emit(0, f"@njit(cache=True, boundscheck=False, error_model='numpy'{inl})")
        self.emit(0, f"def {f.name}({', '.join(params)}):")
        self.emit(1, f'"""Generated from the model\'s transition ({len(f.clauses)} guard clauses)."""')
        sizes = {t: (t if t in f.dynamic else n) for t, n in f.tables.items()}
        for t in f.tables:
            if t in f.dynamic:
                self.emit(1, f"n_{t} = U(len({t}))")
                self.emit(1, f"m_{t} = n_{t} - {self.k.name(1)}")
        body = early_guards(f.body)
        self.guards_left = sum(1 for s in body if isinstance(s, ir.Guard))
        self.guarded = self.guards_left == 0
        self.alias, self.seen = {}, [{}]
        self.block(body, 1, sizes)
        self.emit(1, "return 0")
        self.emit(0, "")
        self.emit(0, "")


def _defined(s: Any) -> list:
    """The variables a top-level statement defines."""
    if isinstance(s, (ir.Op, ir.Read, ir.Len)):
        return [s.out]
    if isinstance(s, ir.Loop):
        return list(s.outs)
    return []


def early_guards(body: list) -> list:
    """The top-level statements with each guard moved up to just after the statement defining its condition, but
    never before an earlier guard: guards still fail in order (the first failed one is returned), and a refused
    step stops before computing what only later guards and the effects need (a search after a failed guard).
    Nothing before the last guard writes a table (the tracer emits every write after the guards), so returning
    earlier leaves the state as unchanged as before."""
    rest = [s for s in body if not isinstance(s, ir.Guard)]
    guards = [s for s in body if isinstance(s, ir.Guard)]
    first_write = next((i for i, s in enumerate(rest) if isinstance(s, (ir.Write, ir.Fill, ir.MapRange, ir.WalkBack))
                        or (isinstance(s, ir.Loop) and _writes(s.body))), len(rest))
    where = {}
    for i, s in enumerate(rest):
        for v in _defined(s):
            where[v.id] = i
    after: dict[int, list] = {}
    pos = -1
    for g in guards:
        d = where.get(g.cond.id, -1) if isinstance(g.cond, Var) else -1
        pos = max(pos, d)
        if pos >= first_write:
            raise AssertionError("a guard after a write: the tracer emits every write after the guards")
        after.setdefault(pos, []).append(g)
    out = list(after.get(-1, []))
    for i, s in enumerate(rest):
        out.append(s)
        out.extend(after.get(i, []))
    return out


def _writes(blk: list) -> bool:
    for s in blk:
        if isinstance(s, (ir.Write, ir.Fill, ir.MapRange, ir.WalkBack)):
            return True
        if isinstance(s, ir.Loop) and _writes(s.body):
            return True
    return False


def prelude(mode: str, consts: dict) -> str:
    """The module head of ``mode``: imports and constants (the only mode-dependent text)."""
    if mode == "numba":
        head = ["import numpy as np", "from numba import njit", "", "U = np.uint64", f"M64 = np.uint64({MASK:#x})"]
        head += [f"{n} = np.uint64({v:#x})" for v, n in consts.items()]
    elif mode == "python":
        head = ["", "", "def njit(*a, **kw):", "    return (lambda f: f) if not a else a[0]", "",
                "", "U = int", f"M64 = {MASK:#x}"]
        head += [f"{n} = {v:#x}" for v, n in consts.items()]
    else:
        raise ValueError(f"mode {mode!r}: expected one of {MODES}")
    return "\n".join(head) + "\n"


def generate(functions: list, extra: str = "", title: str = "", inline: bool = False) -> tuple[str, dict]:
    """(mode-independent body text, constants) of a module holding ``functions`` and ``extra`` source."""
    p = Printer(inline)
    for f in functions:
        p.function(f)
    clauses = {f.name: f.clauses for f in functions}
    p.k.name(0), p.k.name(1)
    body = f"CLAUSES = {clauses!r}\n\n\n" + "\n".join(p.lines) + "\n" + extra
    return body, dict(p.k.names)


def module_source(functions: list, mode: str, extra: str = "", title: str = "", inline: bool = False) -> str:
    body, consts = generate(functions, extra, title, inline)
    head = f'"""Generated by t1virtio.fast.codegen (v{GENERATOR_VERSION}) {title}; mode {mode}. Do not edit."""\n'
    return head + prelude(mode, consts) + "\n\n" + body


def cache_dir() -> Path:
    """Where generated modules (and numba's cache beside them) live: ``T1VIRTIO_FAST_CACHE``, else
    ``~/.cache/t1virtio/fast``; a home that cannot be written falls back to the temporary directory."""
    if "T1VIRTIO_FAST_CACHE" in os.environ:
        d = Path(os.environ["T1VIRTIO_FAST_CACHE"])
        d.mkdir(parents=True, exist_ok=True)      # asked for by name: an unusable one is an error, not a fallback
        return d
    d = Path.home() / ".cache" / "t1virtio" / "fast"
    try:
        d.mkdir(parents=True, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    import tempfile
    d = Path(tempfile.gettempdir()) / f"t1virtio-fast-{os.getuid()}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def build_module(functions: list, mode: str, extra: str = "", title: str = "", stem: str = "t1vfast",
                 inline: bool = False) -> Any:
    """Write (once) and import the module of ``functions`` in ``mode``; return the module. ``inline``: every
    generated function is inlined by numba into the (hand-written) functions that call it (``inline='always'``),
    so a batch driver is one function: no calls, no reference counting of the arrays passed."""
    src = module_source(functions, mode, extra, title, inline)
    h = hashlib.sha256((GENERATOR_VERSION + src).encode()).hexdigest()[:16]
    name = f"{stem}_{h}_{'nb' if mode == 'numba' else 'py'}"
    d = cache_dir()
    path = d / f"{name}.py"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(src)
        os.replace(tmp, path)
    if str(d) not in sys.path:
        sys.path.insert(0, str(d))
    if name in sys.modules:
        return sys.modules[name]
    importlib.invalidate_caches()
    mod = importlib.import_module(name)
    mod.SOURCE_PATH = str(path)
    return mod


class GeneratedModule:
    """What every generated component module offers (mixed into each component's ``Fast`` record, which has
    ``module``, ``functions``, ``mode`` and ``layout``): its functions, clause numbers back to ids, and the
    model state as the arrays the generated code takes, and back."""

    def fn(self, name: str) -> Any:
        return getattr(self.module, name)

    def clause(self, name: str, code: int) -> str | None:
        return None if code == 0 else self.functions[name].clauses[code - 1]

    def arrays(self, state: Any) -> dict:
        from t1virtio.fast.trace import to_arrays
        if self.mode == "numba":
            import numpy as np
            return to_arrays(self.layout, state, np)
        return to_arrays(self.layout, state)

    def state(self, arrays: dict) -> Any:
        from t1virtio.fast.trace import from_arrays
        return from_arrays(self.layout, arrays)

    def table_names(self) -> list:
        return ["sc", *self.layout.tables]
