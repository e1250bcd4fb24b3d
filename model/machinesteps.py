"""A machine run as data: steps read from Hypothesis's program, checked against the machine's rules, run on its methods.

A step is ``{"rule": NAME, "args": {ARG: VALUE}}``: NAME is one of the machine's ``@initialize``,
``@rule`` or ``@invariant`` methods and each VALUE a JSON value (bytes as ``{"hex": "..."}``, tuples
as arrays). Nothing here runs code taken from a step:

- ``from_program`` turns the program Hypothesis prints for a failure into steps with ``ast`` (the
  program is parsed, never run). It accepts ``state = Machine()``, ``state.<method>(kw=<literal>, ...)``
  and ``state.teardown()``, literals read by ``ast.literal_eval``; the invariant calls Hypothesis
  echoes are dropped (``run`` checks the invariants after every step). Anything else is ``Refused``:
  bundle variables (``parcels_0 = state.create(...)``, ``handle=parcels_0``), objects built by calls
  (``Layout(...)``), enum members (``Trans.SHARE``), ``st.data()`` draws (``data(...)``).
- ``check`` looks every step up in the metadata Hypothesis stores on the machine's methods and every
  argument up in that rule's strategy: the argument names, the JSON kind (integer, boolean, bytes,
  string, number, array) and the strategy's bounds (integer range, sizes, the elements of
  ``sampled_from``/``just``, the image of a small finite domain under ``.map``). A strategy it cannot
  check (bundles, ``st.data()``, ``@composite``, ``flatmap``...) refuses every value.
- ``run`` calls the machine's own methods as Hypothesis does: initializers first, a rule only when its
  preconditions hold, the invariants after every step, ``teardown()`` at the end.
"""
from __future__ import annotations

import ast
import inspect
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from hypothesis.stateful import INITIALIZE_RULE_MARKER, INVARIANT_MARKER, RULE_MARKER

from t1virtio import errors
from t1virtio.replayfile import one_line

INT_LIMIT = 2 ** 64        # |integer argument| when the strategy does not bound it more tightly
FINITE_MAX = 4096          # largest domain whose image under .map/.filter is enumerated to check a value
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
HEX = re.compile(r"(?:[0-9a-f]{2})*")


class Refused(ValueError):
    """Steps a machine cannot take as data; the message is one line."""


# --------------------------------------------------------------------------------------- the machine's rules

@dataclass(frozen=True)
class Method:
    """One method a step may name: ``kind`` is ``initialize``, ``rule`` or ``invariant``."""

    name: str
    kind: str
    function: Callable[..., Any]
    arguments: dict            # argument name -> strategy (empty for invariants)
    preconditions: tuple
    check_during_init: bool = False


@dataclass(frozen=True)
class Rules:
    """What Hypothesis knows of a machine class: its initializers, rules and invariants, by name."""

    machine: type
    methods: dict              # name -> Method
    initializers: tuple        # names, in Hypothesis's order
    invariants: tuple          # Methods, in Hypothesis's order


_RULES: dict[type, Rules] = {}


def rules_of(cls: type) -> Rules:
    """Read the rule metadata Hypothesis's decorators store on ``cls``'s methods."""
    if cls in _RULES:
        return _RULES[cls]
    methods: dict[str, Method] = {}
    inits, invs = [], []
    for _, f in inspect.getmembers(cls):
        for marker, kind in ((INITIALIZE_RULE_MARKER, "initialize"), (RULE_MARKER, "rule"), (INVARIANT_MARKER, "invariant")):
            meta = getattr(f, marker, None)
            if meta is None:
                continue
            name = meta.function.__name__
            m = Method(name, kind, meta.function, dict(getattr(meta, "arguments", {}) or {}),
                       tuple(meta.preconditions or ()), bool(getattr(meta, "check_during_init", False)))
            methods[name] = m
            (inits if kind == "initialize" else invs if kind == "invariant" else []).append(m)
    r = Rules(cls, methods, tuple(m.name for m in inits), tuple(invs))
    _RULES[cls] = r
    return r


# --------------------------------------------------------------------------------------- values

_NO = object()   # "no JSON form"


def to_json(x: Any) -> Any:
    """A Python literal as a step argument: bytes as ``{"hex": ...}``, tuples and lists as arrays.

    Returns ``_NO`` for anything else (sets, dicts, complex numbers, objects, enum members, NaN)."""
    if x is None or type(x) in (bool, int, str):
        return x
    if type(x) is float:
        return x if math.isfinite(x) else _NO
    if type(x) in (bytes, bytearray):
        return {"hex": bytes(x).hex()}
    if type(x) in (tuple, list):
        out = [to_json(y) for y in x]
        return _NO if any(y is _NO for y in out) else out
    return _NO


def _same(a: Any, b: Any) -> bool:
    """Equality of JSON values that tells booleans from integers and integers from numbers."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _show(v: Any) -> str:
    return one_line(json.dumps(v), 60)


def _unwrap(s: Any) -> Any:
    while hasattr(s, "wrapped_strategy"):      # LazyStrategy (st.integers(...) and most others)
        s = s.wrapped_strategy
    return s


def _kinds(s: Any) -> set[str]:
    return {c.__name__ for c in type(s).__mro__}


def _finite(s: Any, budget: int = FINITE_MAX) -> list | None:
    """Every value ``s`` can draw when that is a short list (sampled_from, just, booleans, small integer
    ranges, and their .map/.filter images); else None. Runs only the machine's own map and filter functions."""
    s = _unwrap(s)
    k = _kinds(s)
    try:
        if "SampledFromStrategy" in k:            # also JustStrategy; .map/.filter are kept as transformations
            out = list(s.elements)
            for t in getattr(s, "_transformations", ()):
                if t[0] == "map":
                    out = [t[1](x) for x in out]
                elif t[0] == "filter":
                    out = [x for x in out if t[1](x)]
                else:
                    return None
            return out if len(out) <= budget else None
        if "BooleansStrategy" in k:
            return [False, True]
        if "IntegersStrategy" in k:
            if s.start is None or s.end is None or s.end - s.start + 1 > budget:
                return None
            return list(range(s.start, s.end + 1))
        if "OneOfStrategy" in k:
            out = []
            for sub in s.original_strategies:
                got = _finite(sub, budget - len(out))
                if got is None:
                    return None
                out += got
            return out
        if "MappedStrategy" in k:
            dom = _finite(s.mapped_strategy, budget)
            return None if dom is None else [s.pack(x) for x in dom]
        if "FilteredStrategy" in k:
            dom = _finite(s.filtered_strategy, budget)
            return None if dom is None else [x for x in dom if all(c(x) for c in s.flat_conditions)]
    except Exception:  # noqa: BLE001 - a map function that fails on its own domain: the image is unknown
        return None
    return None


def _why_not(s: Any) -> str | None:
    """Why values of strategy ``s`` cannot be given as data, or None when they can be checked."""
    s = _unwrap(s)
    k = _kinds(s)
    if "Bundle" in k:
        return f"it draws from bundle {getattr(s, 'name', '?')!r}: bundle values are made by earlier steps, not data"
    if "DataStrategy" in k:
        return "it is st.data(): the rule draws while it runs, and the draws are not in the program"
    if "CompositeStrategy" in k:
        return "it is an @st.composite strategy: its values cannot be checked against what it draws"
    return None


def match(s: Any, v: Any, where: str) -> Any:
    """Return the Python value for JSON value ``v`` given to an argument drawn from strategy ``s``;
    raise ``Refused`` when ``s`` could not have drawn it (or its values cannot be checked)."""
    s = _unwrap(s)
    k = _kinds(s)
    why = _why_not(s)
    if why:
        raise Refused(f"{where}: {why}")
    if "OneOfStrategy" in k:
        for sub in s.original_strategies:
            try:
                return match(sub, v, where)
            except Refused:
                continue
        raise Refused(f"{where}: {_show(v)} is not a value its strategy ({_describe(s)}) draws")
    if "SampledFromStrategy" in k or "MappedStrategy" in k or "FilteredStrategy" in k:
        choices = _finite(s)
        if choices is None:
            raise Refused(f"{where}: its strategy ({_describe(s)}) has values that cannot be listed to check {_show(v)}")
        for c in choices:
            if _same(to_json(c), v):
                return c
        raise Refused(f"{where}: {_show(v)} is not one of the values its strategy ({_describe(s)}) draws")
    if "BooleansStrategy" in k:
        if type(v) is not bool:
            raise Refused(f"{where}: {_show(v)} is not a boolean")
        return v
    if "IntegersStrategy" in k:
        if type(v) is not int:
            raise Refused(f"{where}: {_show(v)} is not an integer")
        lo = -INT_LIMIT if s.start is None else s.start
        hi = INT_LIMIT if s.end is None else s.end
        if not max(lo, -INT_LIMIT) <= v <= min(hi, INT_LIMIT):
            raise Refused(f"{where}: {_show(v)} is out of range [{lo}, {hi}]")
        return v
    if "BytesStrategy" in k:
        if not (isinstance(v, dict) and set(v) == {"hex"} and isinstance(v["hex"], str) and HEX.fullmatch(v["hex"])):
            raise Refused(f"{where}: {_show(v)} is not bytes ({{\"hex\": \"...\"}}, lower-case hex digits)")
        b = bytes.fromhex(v["hex"])
        _sized(len(b), s, where, "bytes")
        return b
    if "TextStrategy" in k:
        if type(v) is not str:
            raise Refused(f"{where}: {_show(v)} is not a string")
        _sized(len(v), s, where, "characters")
        return v
    if "ListStrategy" in k:
        if type(v) is not list:
            raise Refused(f"{where}: {_show(v)} is not an array")
        _sized(len(v), s, where, "elements")
        return [match(s.element_strategy, x, f"{where}[{i}]") for i, x in enumerate(v)]
    if "TupleStrategy" in k:
        n = len(s.element_strategies)
        if type(v) is not list or len(v) != n:
            raise Refused(f"{where}: {_show(v)} is not an array of {n}")
        return tuple(match(e, x, f"{where}[{i}]") for i, (e, x) in enumerate(zip(s.element_strategies, v)))
    if "FloatStrategy" in k:
        if type(v) not in (int, float) or type(v) is bool or not math.isfinite(v):
            raise Refused(f"{where}: {_show(v)} is not a number")
        if (s.min_value is not None and v < s.min_value) or (s.max_value is not None and v > s.max_value):
            raise Refused(f"{where}: {_show(v)} is out of range [{s.min_value}, {s.max_value}]")
        return float(v)
    raise Refused(f"{where}: its strategy ({_describe(s)}) cannot be checked, so a file cannot give it")


def uncheckable(cls: type) -> dict[str, str]:
    """``"rule(arg)"`` -> why, for every argument of ``cls`` some of whose values a file cannot give
    (a failure that draws such a value is saved without steps, as ``unreplayable``)."""
    out = {}
    for m in rules_of(cls).methods.values():
        for a, s in m.arguments.items():
            why = _uncheckable(s)
            if why:
                out[f"{m.name}({a})"] = why
    return dict(sorted(out.items()))


def _uncheckable(s: Any) -> str | None:
    s = _unwrap(s)
    k = _kinds(s)
    why = _why_not(s)
    if why:
        return why
    if "OneOfStrategy" in k:
        return next((w for w in map(_uncheckable, s.original_strategies) if w), None)
    if "SampledFromStrategy" in k or "MappedStrategy" in k or "FilteredStrategy" in k:
        got = _finite(s)
        if got is None:
            return f"its values ({_describe(s)}) cannot be listed"
        bad = next((x for x in got if to_json(x) is _NO), _NO)
        return None if bad is _NO else f"{one_line(repr(bad), 40)} has no JSON form"
    if "ListStrategy" in k and "TextStrategy" not in k:
        return _uncheckable(s.element_strategy)
    if "TupleStrategy" in k:
        return next((w for w in map(_uncheckable, s.element_strategies) if w), None)
    if k & {"BooleansStrategy", "IntegersStrategy", "BytesStrategy", "TextStrategy", "FloatStrategy"}:
        return None
    return f"its strategy ({_describe(s)}) cannot be checked"


def _sized(n: int, s: Any, where: str, unit: str) -> None:
    lo, hi = s.min_size or 0, s.max_size
    if n < lo or (hi is not None and n > hi):
        raise Refused(f"{where}: {n} {unit}, outside [{lo}, {hi}]")


def _describe(s: Any) -> str:
    try:
        return one_line(repr(s), 80)
    except Exception:  # noqa: BLE001 - a repr is only for the message
        return type(s).__name__


# --------------------------------------------------------------------------------------- checking steps

@dataclass(frozen=True)
class Call:
    """A checked step: the machine's method and its arguments as Python values."""

    index: int                 # 1-based, as printed
    method: Method
    kwargs: dict

    def show(self) -> str:
        return f"{self.method.name}({', '.join(f'{k}={v!r}' for k, v in self.kwargs.items())})"


def check(cls: type, steps: list) -> list[Call]:
    """Match ``steps`` with ``cls``'s methods and strategies (before anything runs); raise ``Refused``."""
    r = rules_of(cls)
    calls: list[Call] = []
    pending = list(r.initializers)
    for i, step in enumerate(steps, 1):
        if not (isinstance(step, dict) and isinstance(step.get("rule"), str) and isinstance(step.get("args"), dict)):
            raise Refused(f"step {i}: not a {{\"rule\": ..., \"args\": {{...}}}} object")
        name = step["rule"]
        m = r.methods.get(name) if IDENT.fullmatch(name) else None
        if m is None:
            raise Refused(f"step {i}: {_show(name)} is not a rule, initializer or invariant of {cls.__name__} "
                          f"(it has {', '.join(sorted(r.methods))})")
        if m.kind == "initialize":
            if name not in pending:
                raise Refused(f"step {i}: initializer {name} runs once, before any rule (Hypothesis's order)")
            pending.remove(name)
        elif m.kind == "rule" and pending:
            raise Refused(f"step {i}: rule {name} before initializer(s) {', '.join(pending)} (initializers run first)")
        args = step["args"]
        unknown = sorted(set(args) - set(m.arguments))
        if unknown:
            raise Refused(f"step {i}: {name} has no argument {_show(unknown[0])} "
                          f"(its arguments: {', '.join(sorted(m.arguments)) or 'none'})")
        missing = sorted(set(m.arguments) - set(args))
        if missing:
            raise Refused(f"step {i}: {name} needs argument {missing[0]}")
        kwargs = {a: match(m.arguments[a], args[a], f"step {i}: {name}({a}=...)") for a in m.arguments}
        calls.append(Call(i, m, kwargs))
    return calls


# --------------------------------------------------------------------------------------- reading Hypothesis's program

def from_program(cls: type, program: str) -> list[dict]:
    """Turn Hypothesis's printed program for ``cls`` into steps (parsed with ``ast``, never run);
    raise ``Refused`` naming the first line that is not data, and check the steps with ``check``."""
    try:
        tree = ast.parse(program, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise Refused(f"the program does not parse ({type(e).__name__})") from None
    body = tree.body
    r = rules_of(cls)
    if not body or not _is_constructor(body[0], cls.__name__):
        raise Refused(f"the program does not start with state = {cls.__name__}()")
    steps: list[dict] = []
    for n, stmt in enumerate(body[1:], 2):
        where = f"line {getattr(stmt, 'lineno', n)}"
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and _state_call(stmt.value):
            names = ", ".join(ast.unparse(t) for t in getattr(stmt, "targets", [getattr(stmt, "target", None)]))
            raise Refused(f"{where}: state.{stmt.value.func.attr}(...) stores its result as {names}, a bundle "
                          "variable; bundle values are not data in this format")
        if not _state_call(call):
            raise Refused(f"{where}: not a call state.<method>(...): {_snippet(stmt)}")
        name = call.func.attr
        if call.args or any(kw.arg is None for kw in call.keywords):
            raise Refused(f"{where}: state.{name}(...) has positional or ** arguments")
        if name == "teardown":
            if call.keywords or n != len(body):
                raise Refused(f"{where}: state.teardown() takes nothing and comes last")
            break
        m = r.methods.get(name)
        if m is None:
            raise Refused(f"{where}: {name} is not a rule, initializer or invariant of {cls.__name__}")
        if m.kind == "invariant" and not call.keywords:
            continue                      # Hypothesis's echo of its invariant checks; run() checks after every step
        args = {}
        for kw in call.keywords:
            args[kw.arg] = _literal(kw, m, f"{where}: {name}({kw.arg}=...)")
        steps.append({"rule": name, "args": args})
    check(cls, steps)
    return steps


def _is_constructor(stmt: ast.stmt, cls_name: str) -> bool:
    return (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
            and stmt.targets[0].id == "state" and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == cls_name
            and not stmt.value.args and not stmt.value.keywords)


def _state_call(node: Any) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "state")


def _snippet(node: ast.AST) -> str:
    try:
        return one_line(ast.unparse(node), 60)
    except Exception:  # noqa: BLE001 - only for the message
        return type(node).__name__


def _literal(kw: ast.keyword, m: Method, where: str) -> Any:
    s = m.arguments.get(kw.arg)
    why = _why_not(s) if s is not None else None
    try:
        v = ast.literal_eval(kw.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        node = kw.value
        hint = (" (a bundle variable)" if isinstance(node, ast.Name) else
                " (an enum member or attribute)" if isinstance(node, ast.Attribute) else
                " (an object built by a call)" if isinstance(node, ast.Call) else "")
        raise Refused(f"{where}: {_snippet(node)} is not a literal{hint}" + (f"; {why}" if why else "")) from None
    j = to_json(v)
    if j is _NO:
        raise Refused(f"{where}: a {type(v).__name__} has no JSON form (only None, booleans, integers, finite "
                      "numbers, strings, bytes, tuples and lists)")
    return j


# --------------------------------------------------------------------------------------- running

@dataclass
class Outcome:
    """How a run ended: ``error`` is what a step, an invariant or teardown raised (None: it passed)."""

    error: BaseException | None = None
    where: str = ""             # "step 3: send(...)", "invariants after step 3", "teardown"

    @property
    def clause(self) -> str | None:
        return self.error.clause if isinstance(self.error, errors.ModelError) else None


def run(cls: type, calls: list[Call], on_step: Callable[[Call], None] | None = None) -> Outcome:
    """Run checked ``calls`` on a fresh ``cls()`` as Hypothesis does; raise ``Refused`` when a rule's
    precondition does not hold (Hypothesis would never have run it there)."""
    r = rules_of(cls)
    machine = cls()
    pending = set(r.initializers)
    out = Outcome()
    where = "invariants before the first step"
    try:
        _invariants(machine, r, pending)
        for c in calls:
            m = c.method
            where = f"step {c.index}: {c.show()}"
            if on_step:
                on_step(c)
            if not all(p(machine) for p in m.preconditions):
                raise Refused(f"step {c.index}: the precondition of {m.name} does not hold here, so Hypothesis "
                              "would not have run it")
            if m.kind == "invariant":
                m.function(machine)
                continue
            m.function(machine, **c.kwargs)
            pending.discard(m.name)
            where = f"invariants after step {c.index}"
            _invariants(machine, r, pending)
    except Refused:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the machine raises is the outcome
        out = Outcome(e, where)
    finally:
        try:
            machine.teardown()
        except Exception as e:  # noqa: BLE001
            if out.error is None:
                out = Outcome(e, "teardown")
    return out


def _invariants(machine: Any, r: Rules, pending: set) -> None:
    for inv in r.invariants:
        if pending and not inv.check_during_init:
            continue
        if all(p(machine) for p in inv.preconditions):
            inv.function(machine)
