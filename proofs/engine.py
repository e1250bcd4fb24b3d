"""Obligation generation, solving with a timeout, and counterexample decoding (anchors lesson 7).

For a ``Subject`` (one component's state, operations, invariants and rules):

- ``init ⊢ inv``: the initial state satisfies ``inv``;
- ``op ⊢ inv``: from any state satisfying every invariant, with any arguments, the state after
  ``If(And(guards), new, old)`` satisfies ``inv``;
- ``op ⊨ rule``: from any state satisfying every invariant, the model's step obeys the rule (a
  legality rule, or an exact rule stating the model's policy choice);
- ``op:exact ⇒ legal``: for an exact rule that ``refines`` a legality rule, every step (any
  outcome, any new state and output, not only the model's) the exact rule allows, the legality
  rule allows too: the policy is one of the legal choices;
- custom obligations (bounded races, refinement checks) supplied by the subject.

Each obligation is solved on its own, so a failure names one invariant. A counterexample is
decoded into concrete JSON (state + arguments) that ``replay`` runs on the concrete model.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from t1virtio import logic, state as st, step as stp
from t1virtio.specs import clauses, invariants, rules


@dataclass(frozen=True)
class Op:
    """An operation to prove: ``module.attr(L, state, **args) -> Step``.

    ``args`` maps each argument to its kind: ``"int"``, ``"bool"`` or a bit width. The function is
    looked up at use time, so a mutant that patches the module attribute is what gets proved.
    ``assume(L, state, args)`` restricts arguments to their type's domain (not to legal values:
    illegal values must be refused by guards).
    """

    name: str
    module: str
    attr: str
    args: dict[str, Any] = field(default_factory=dict)
    assume: Callable[..., Any] | None = None

    @property
    def fn(self) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), self.attr)


@dataclass(frozen=True)
class Custom:
    """A hand-built obligation: ``negated()`` returns (z3 formula that must be unsat, decoder).

    ``decoder(model)`` returns a JSON-able counterexample; ``replay(cex)`` runs it on the concrete
    model and returns the clause it shows failing (or None).
    """

    name: str
    clause: str
    negated: Callable[[], tuple[Any, Callable[[Any], Any]]]
    replay: Callable[[dict], str | None]


@dataclass(frozen=True)
class Subject:
    """One component's proof subject.

    ``template()`` is a concrete initial state (its shape fixes table lengths). ``preset`` says how
    far the proofs reach: ``"symbolic"`` (sizes are symbolic up to the table bound) or a preset name.
    ``assume(L, state)`` states what the symbolic sizes range over (e.g. ``1 <= depth <= max``).
    ``init_assume(L, state)`` describes every legal initial state; by default the template alone.
    """

    component: str
    template: Callable[[], Any]
    ops: tuple[Op, ...]
    preset: str = "SMALL"
    assume: Callable[[Any, Any], Any] | None = None
    init: Callable[[Any, Any], Any] | None = None
    customs: tuple[Custom, ...] = ()
    invariant_component: str | None = None
    arrays: bool = False      # hold ``table()`` fields as z3 arrays (for real table sizes)

    def invariants(self) -> list:
        return invariants.of(self.invariant_component or self.component)

    def rules(self, op: str) -> list:
        return rules.of(self.invariant_component or self.component, op)


@dataclass
class Result:
    """The outcome of one obligation."""

    name: str
    component: str
    outcome: str              # proved | counterexample | unknown | error
    seconds: float
    preset: str
    clause: str
    counterexample: dict | None = None
    detail: str = ""

    def as_json(self) -> dict:
        return {"name": self.name, "component": self.component, "outcome": self.outcome,
                "seconds": round(self.seconds, 3), "preset": self.preset, "clause": self.clause}


@dataclass(frozen=True)
class Obligation:
    """One obligation: a name, its clause, and how to build it."""

    name: str
    component: str
    clause: str
    preset: str
    kind: str                 # init | preserve | rule | implies | custom
    subject: Subject
    op: Op | None = None
    target: Any = None        # Invariant, Rule or Custom


def obligations(subjects: list[Subject]) -> list[Obligation]:
    """Enumerate every obligation of ``subjects``."""
    out = []
    for s in subjects:
        invs = s.invariants()
        for inv in invs:
            out.append(Obligation(f"{s.component}:init⊢{inv.name}", s.component, inv.clause, s.preset,
                                  "init", s, None, inv))
        for op in s.ops:
            if _indexes(s, op):
                out.append(Obligation(f"{s.component}:{op.name}⊢index-safe", s.component, stp.INDEX_SAFE, s.preset,
                                      "index", s, op, None))
            for inv in invs:
                out.append(Obligation(f"{s.component}:{op.name}⊢{inv.name}", s.component, inv.clause,
                                      s.preset, "preserve", s, op, inv))
            for r in s.rules(op.name):
                out.append(Obligation(f"{s.component}:{op.name}⊨{r.name}", s.component, r.clause,
                                      s.preset, "rule", s, op, r))
            for r in s.rules(op.name):
                if r.kind == "exact" and r.refines:
                    legal = rules.find(s.invariant_component or s.component, op.name, r.refines)
                    out.append(Obligation(f"{s.component}:{op.name}:{r.name}⇒{legal.name}", s.component,
                                          legal.clause, s.preset, "implies", s, op, (r, legal)))
        for c in s.customs:
            out.append(Obligation(f"{s.component}:{c.name}", s.component, c.clause, s.preset,
                                  "custom", s, None, c))
    return out


_INDEXES: dict = {}


def _indexes(s: Subject, op: Op) -> bool:
    """Whether ``op`` uses a data-dependent table index (so it gets an ``⊢index-safe`` obligation); cached."""
    key = (s.component, op.name, op.module, op.attr)
    if key not in _INDEXES:
        L = logic.z3_logic()
        L.sites = []
        try:
            sp = op.fn(L, st.symbolize(s.template(), "probe", s.arrays), **_fresh_args(op, "probe"))
            _ = sp.new
            _INDEXES[key] = bool(L.sites)
        finally:
            L.sites = None
    return _INDEXES[key]


def index_custom(name: str, template: Callable[[], Any], fn: Callable[..., Any], args: dict,
                 pre: Callable[[Any, Any, dict], list]) -> Custom:
    """``name ⊢ index-safe`` for an operation proved through a custom obligation: from any state with
    ``pre(L, state, args)``, whenever ``fn``'s guards hold every table index it uses is in range."""
    op = Op(name, "", "", args)

    def negated():
        L = logic.z3_logic()
        old = st.symbolize(template(), "old")
        a = _fresh_args(op, "arg")
        return _index_negation(L, name, lambda: fn(L, old, **a), old, a, pre(L, old, a))

    def replay(cex):
        return _index_replay(lambda L, s: fn(L, s, **cex["args"]), st.from_json(template(), cex["state"]))
    return Custom(f"{name}⊢index-safe", stp.INDEX_SAFE, negated, replay)


def _index_negation(L: Any, name: str, build_step: Callable[[], Any], old: Any, args: dict,
                    pre: list) -> tuple[Any, Callable[[Any], dict]]:
    L.sites = []
    try:
        sp = build_step()
        ok = stp.ok(L, sp)
        _ = sp.new                      # build the effects too
        sites = L.sites
    finally:
        L.sites = None
    if not sites:
        raise NoIndex(f"{name}: the step uses no data-dependent table index")
    neg = L.And(*pre, ok, L.Not(L.And(*[c for _, c in sites])))

    def decode(m: Any) -> dict:
        bad = [w for w, c in sites if L.z3.is_false(m.eval(c, model_completion=True))]
        return {"state": st.to_json(st.decode(m, old)), "args": _decode_args(m, args), "sites": bad}
    return neg, decode


def _index_replay(build_step: Callable[[Any, Any], Any], state: Any) -> str | None:
    """Run a step concretely; when its guards hold, build it again strict: an index outside its table
    (in a guard or an effect) is ``MODEL-index-in-range``."""
    L = logic.CONCRETE
    if stp.first_failed(build_step(L, state)) is not None:
        return None
    strict, logic._STRICT[0] = logic._STRICT[0], True
    try:
        _ = build_step(L, state).new
    except logic.IndexOutOfTable:
        return stp.INDEX_SAFE
    finally:
        logic._STRICT[0] = strict
    return None


def _fresh_args(op: Op, prefix: str) -> dict:
    import z3
    out = {}
    for name, kind in op.args.items():
        if kind == "bool":
            out[name] = z3.Bool(f"{prefix}.{name}")
        elif kind == "int":
            out[name] = z3.Int(f"{prefix}.{name}")
        else:
            out[name] = z3.BitVec(f"{prefix}.{name}", int(kind))
    return out


def _decode_args(model: Any, args: dict) -> dict:
    import z3
    out = {}
    for k, v in args.items():
        e = model.eval(v, model_completion=True)
        out[k] = z3.is_true(e) if z3.is_bool(e) else e.as_long()
    return out


def build(ob: Obligation) -> tuple[Any, Callable[[Any], dict]]:
    """Return (negated obligation, decoder) for ``ob``: unsat means proved."""
    if ob.kind == "custom":
        return ob.target.negated()
    L = logic.z3_logic()
    s = ob.subject
    if ob.kind == "init":
        s0 = st.symbolize(s.template(), "s0", s.arrays)
        pre = s.init(L, s0) if s.init else L.And(*_equal_to(L, s0, s.template()))
        neg = L.And(pre, L.Not(ob.target.fn(L, s0)))
        return neg, lambda m: {"state": st.to_json(st.decode(m, s0))}
    old = st.symbolize(s.template(), "old", s.arrays)
    args = _fresh_args(ob.op, "arg")
    pre = [inv.fn(L, old) for inv in s.invariants()]
    if s.assume:
        pre.append(s.assume(L, old))
    if ob.op.assume:
        pre.append(ob.op.assume(L, old, args))
    if ob.kind == "index":
        return _index_safety(L, ob, old, args, pre)
    if ob.kind == "implies":
        return _implies(L, ob, old, args, pre)
    sp = ob.op.fn(L, old, **args)
    ok = stp.ok(L, sp)
    new = L.If(ok, sp.new, old)
    if ob.kind == "preserve":
        post = ob.target.fn(L, new)
    else:
        post = ob.target.fn(L, old, args, ok, new, sp.out)
    neg = L.And(*pre, L.Not(post))
    return neg, lambda m: {"state": st.to_json(st.decode(m, old)), "args": _decode_args(m, args)}


def _index_safety(L: Any, ob: Obligation, old: Any, args: dict, pre: list) -> tuple[Any, Callable[[Any], dict]]:
    """``op ⊢ index-safe``: whenever the guards hold, every data-dependent table index the step uses
    (in its guards and its effects, recorded as ``L.sites``) lies inside its table."""
    return _index_negation(L, ob.name, lambda: ob.op.fn(L, old, **args), old, args, pre)


def _fresh_like(x: Any, prefix: str, leaves: list) -> Any:
    """A value shaped like ``x`` (a step's output) with a fresh z3 constant for every symbolic leaf and bool;
    plain Python ints stay (they are the same in every step of the operation). Leaves go to ``leaves``."""
    import z3
    if isinstance(x, z3.ExprRef):
        v = z3.Const(f"{prefix}.{len(leaves)}", x.sort())
        leaves.append(v)
        return v
    if isinstance(x, bool):
        v = z3.Bool(f"{prefix}.{len(leaves)}")
        leaves.append(v)
        return v
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return dataclasses.replace(x, **{f.name: _fresh_like(getattr(x, f.name), prefix, leaves)
                                         for f in dataclasses.fields(x) if f.init})
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*[_fresh_like(v, prefix, leaves) for v in x])
    if isinstance(x, (tuple, list)):
        return type(x)(_fresh_like(v, prefix, leaves) for v in x)
    return x


def _refill(x: Any, values: list) -> Any:
    """``x``'s shape with its symbolic leaves replaced, in order, by ``values`` (a decoded output)."""
    import z3
    if isinstance(x, (z3.ExprRef, bool)):
        return values.pop(0)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return dataclasses.replace(x, **{f.name: _refill(getattr(x, f.name), values) for f in dataclasses.fields(x) if f.init})
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*[_refill(v, values) for v in x])
    if isinstance(x, (tuple, list)):
        return type(x)(_refill(v, values) for v in x)
    return x


def _implies(L: Any, ob: Obligation, old: Any, args: dict, pre: list) -> tuple[Any, Callable[[Any], dict]]:
    """``op:exact ⇒ legal``: any outcome, new state and output the exact rule allows, the legality rule allows."""
    import z3
    exact, legal = ob.target
    s = ob.subject
    ok = z3.Bool("step.ok")
    new = st.symbolize(s.template(), "new", s.arrays)
    leaves: list = []
    out = _fresh_like(ob.op.fn(L, old, **args).out, "out", leaves)
    neg = L.And(*pre, exact.fn(L, old, args, ok, new, out), L.Not(legal.fn(L, old, args, ok, new, out)))

    def decode(m: Any) -> dict:
        val = [m.eval(v, model_completion=True) for v in leaves]
        return {"state": st.to_json(st.decode(m, old)), "args": _decode_args(m, args),
                "ok": z3.is_true(m.eval(ok, model_completion=True)), "new": st.to_json(st.decode(m, new)),
                "out": [z3.is_true(v) if z3.is_bool(v) else v.as_long() for v in val]}
    return neg, decode


class NoIndex(Exception):
    """An index-safety obligation of a step that indexes nothing by data (reported as not applicable)."""


def _equal_to(L: Any, sym: Any, conc: Any) -> list:
    a, b = [], []
    st._leaves(sym, None, lambda x, w: a.extend(x[k] for k in range(x.n)) if isinstance(x, logic.SymTable) else a.append(x))
    st._leaves(conc, None, lambda x, w: b.append(x))
    return [x == y for x, y in zip(a, b)]


def solve(ob: Obligation, timeout_s: float = 30.0) -> Result:
    """Discharge one obligation with a timeout; decode a counterexample if there is one."""
    import z3
    t0 = time.perf_counter()
    try:
        neg, decoder = build(ob)
        solver = z3.Solver()
        solver.set("timeout", int(timeout_s * 1000))
        solver.add(neg)
        r = solver.check()
    except NoIndex as e:
        return Result(ob.name, ob.component, "not-applicable", time.perf_counter() - t0, ob.preset, ob.clause,
                      detail=str(e))
    except Exception as e:  # a defect in an obligation must show, not hide the others
        return Result(ob.name, ob.component, "error", time.perf_counter() - t0, ob.preset, ob.clause,
                      detail=f"{type(e).__name__}: {e}")
    dt = time.perf_counter() - t0
    if r == z3.unsat:
        return Result(ob.name, ob.component, "proved", dt, ob.preset, ob.clause)
    if r == z3.sat:
        cex = {"format": "t1virtio-counterexample/1", "obligation": ob.name, "component": ob.component,
               "kind": ob.kind, "clause": ob.clause, **decoder(solver.model())}
        return Result(ob.name, ob.component, "counterexample", dt, ob.preset, ob.clause, cex)
    return Result(ob.name, ob.component, "unknown", dt, ob.preset, ob.clause,
                  detail=str(solver.reason_unknown()))


def find(name: str, subjects: list[Subject] | None = None) -> Obligation:
    """Return the obligation called ``name``."""
    from t1virtio.proofs import all_subjects
    for ob in obligations(subjects if subjects is not None else all_subjects()):
        if ob.name == name:
            return ob
    raise KeyError(f"no obligation named {name!r}")


def replay(cex: dict) -> tuple[str | None, str]:
    """Run a decoded counterexample on the concrete model; return (failing clause or None, story)."""
    ob = find(cex["obligation"])
    if ob.kind == "custom":
        clause = ob.target.replay(cex)
        return clause, f"{ob.name}: replay shows {clause or 'no failure'}"
    L = logic.CONCRETE
    s = ob.subject
    state = st.from_json(s.template(), cex["state"])
    if ob.kind == "init":
        holds = ob.target.fn(L, state)
        return (None if holds else ob.target.clause), f"initial state: {ob.target.name} {'holds' if holds else 'fails'}"
    for inv in s.invariants():
        if not inv.fn(L, state):
            return None, f"pre-state breaks {inv.name} ({inv.clause}): counterexample is not a reachable-state witness"
    args = cex["args"]
    if ob.kind == "implies":
        exact, legal = ob.target
        new = st.from_json(s.template(), cex["new"])
        shape = ob.op.fn(logic.z3_logic(), st.symbolize(s.template(), "shape", s.arrays),
                         **_fresh_args(ob.op, "shape")).out
        out = _refill(shape, list(cex["out"]))
        e = exact.fn(L, state, args, cex["ok"], new, out)
        g = legal.fn(L, state, args, cex["ok"], new, out)
        story = f"{ob.op.name}({json.dumps(args)}): a step {exact.name} allows is {'' if g else 'NOT '}legal ({legal.name})"
        return (legal.clause if e and not g else None), story
    if ob.kind == "index":
        clause = _index_replay(lambda L, st_: ob.op.fn(L, st_, **args), state)
        return clause, f"{ob.op.name}({json.dumps(args)}): " + (
            f"an index leaves its table at {', '.join(cex.get('sites', [])) or '?'}" if clause else "every index in range")
    sp = ob.op.fn(L, state, **args)
    failed = stp.first_failed(sp)
    ok = failed is None
    new = sp.new if ok else state
    what = "accepted" if ok else f"refused by {failed}"
    if ob.kind == "preserve":
        holds = ob.target.fn(L, new)
        story = f"{ob.op.name}({json.dumps(args)}) {what}; afterwards {ob.target.name} {'holds' if holds else 'FAILS'}"
    else:
        holds = ob.target.fn(L, state, args, ok, new, sp.out)
        story = f"{ob.op.name}({json.dumps(args)}) {what}; rule {ob.target.name} {'holds' if holds else 'BROKEN'}"
    return (None if holds else ob.target.clause), story


def check_clause(cid: str) -> str:
    """Return ``cid`` after checking it is registered (for Custom obligations)."""
    clauses.get(cid)
    return cid
