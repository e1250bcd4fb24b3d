"""One runner per component: the model side of ``oracle check`` (exact and legality modes).

A runner owns the model's concrete object for its component, built from a trace header, and knows the
component's operations: their argument table (checked per line, cheaply), their result keys, how to run one
operation on the model (exact mode), and how to check an implementation's observed step (legality mode).

Legality mode, for every component: the model's step is run *with the implementation's own choices forced*
(the slot run it allocated, the descriptors or buffer id it used; a ring device has no choice: out-of-order
completion is an argument of ``add_used``/``push_used``). Then, in this order:

1. the model refuses with clause C and the implementation accepted: violation C (a MUST the honest side
   enforces, a caller error, or nothing to do);
2. the model accepts and the implementation refused: allowed only for an ``exhausted`` refusal of a swiotlb
   search (a legal allocator may fail to find a run); otherwise ``MODEL-honest-accepted``;
3. both accepted: the registered rules of the operation (``specs.rules``; only ``legality`` rules when the
   registry gives rules a ``kind``) on (old state, arguments, observed result, post-state), then the
   component's invariants (``specs.invariants``) on the post-state;
4. the post-state is the implementation's, reconstructed from the step's observations where given (swiotlb
   slot tables, queue indices, msgq contents), else the model's post-state under the forced choice.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Callable

from t1virtio import errors
from t1virtio import preset as presets
from t1virtio.hyp import msgq as mq
from t1virtio.hyp.memview import FlatView, read_le
from t1virtio.logic import CONCRETE
from t1virtio.oracle.trace import TraceError, one_line
from t1virtio.specs import clauses
from t1virtio.step import first_failed
from t1virtio.swiotlb import policy as swpol
from t1virtio.swiotlb import pool as swpool
from t1virtio.swiotlb import slots as swslots
from t1virtio.virtio import packed as pk
from t1virtio.virtio import split as sp

REFERENCE = "MODEL-reference-agrees"    # exact mode: the implementation's result or state differs from the model's
HONEST = "MODEL-honest-accepted"        # the implementation refused a step every conforming one accepts
NO_TERMINATION = "SWIOTLB-find-no-termination"   # a search that would never end (legality: SWIOTLB-search-bounded)
U64 = (1 << 64) - 1
U32 = (1 << 32) - 1
ERRNO_KINDS = {"ENOMEM": "exhausted", "ENOSPC": "exhausted", "EAGAIN": "exhausted", "EBUSY": "exhausted",
               "EINVAL": "caller", "EPERM": "caller", "EIO": "peer", "EPROTO": "peer", "EFAULT": "access",
               "exhausted": "exhausted", "caller": "caller", "peer": "peer", "access": "access"}


def kind_of(err: str) -> str:
    """The kind of an observed error: a registered clause's kind, or the kind an errno-ish name stands for."""
    if clauses.is_registered(err):
        return clauses.get(err).kind
    return ERRNO_KINDS.get(err, "unknown")


def same_error(model_clause: str, observed: str) -> bool:
    """Exact mode: the same clause, or an errno-ish name of the same kind."""
    return observed == model_clause or (not clauses.is_registered(observed)
                                        and ERRNO_KINDS.get(observed) == clauses.get(model_clause).kind)


@dataclass
class Violation:
    """The first step that does not conform."""

    step: int
    line: int
    op: str
    clause: str
    expected: Any
    observed: Any
    detail: str = ""
    context: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        c = clauses.get(self.clause) if clauses.is_registered(self.clause) else None
        return {"step": self.step, "line": self.line, "op": self.op, "clause": self.clause,
                "section": c.section if c else None, "source": c.source if c else None,
                "text": c.text if c else None, "expected": self.expected, "observed": self.observed,
                "detail": self.detail, "context": self.context}


class Flag(Exception):
    """Raised inside a runner's legality check: the step violates ``clause``."""

    def __init__(self, clause: str, expected: Any, observed: Any, detail: str = "", **context: Any):
        super().__init__(clause)
        self.clause, self.expected, self.observed, self.detail, self.context = clause, expected, observed, detail, context


# ------------------------------------------------------------------ argument tables

@dataclass(frozen=True)
class Arg:
    """One argument: ``kind`` int/bool/hex/segs/writes, inclusive range for ints, default (None: required)."""

    kind: str
    lo: int = 0
    hi: int = U64
    default: Any = None
    required: bool = True


def I(lo: int = 0, hi: int = U64, default: Any = None) -> Arg:
    return Arg("int", lo, hi, default, default is None)


def B(default: Any = None) -> Arg:
    return Arg("bool", 0, 1, default, default is None)


HEX = Arg("hex")
SEGS = Arg("segs", default=(), required=False)
WRITES = Arg("writes")


def check_args(spec: dict[str, Arg], args: Any, where: str, max_items: int) -> dict:
    """Arguments checked against ``spec`` and completed with defaults; ``TraceError`` names the first bad one."""
    if not isinstance(args, dict):
        raise TraceError(f"{where}: args is not an object")
    for k in args:
        if k not in spec:
            raise TraceError(f"{where}: unknown argument {one_line(k, 40)!r} (known: {', '.join(spec) or 'none'})")
    out = {}
    for name, a in spec.items():
        if name not in args:
            if a.required:
                raise TraceError(f"{where}: argument {name!r} missing")
            out[name] = a.default
            continue
        out[name] = check_value(a, args[name], f"{where}: argument {name!r}", max_items)
    return out


def check_value(a: Arg, v: Any, where: str, max_items: int) -> Any:
    k = a.kind
    if k == "int":
        if type(v) is not int or not a.lo <= v <= a.hi:
            raise TraceError(f"{where} must be an integer in [{a.lo}, {a.hi}], not {one_line(repr(v), 40)}")
        return v
    if k == "bool":
        if type(v) is not bool:
            raise TraceError(f"{where} must be true or false, not {one_line(repr(v), 40)}")
        return v
    if k == "hex":
        return hex_bytes(v, where)
    if k == "segs":
        if not isinstance(v, list) or len(v) > max_items:
            raise TraceError(f"{where} must be a list of at most {max_items} [addr, len] pairs")
        for p in v:
            if (not isinstance(p, list) or len(p) != 2 or type(p[0]) is not int or type(p[1]) is not int
                    or not 0 <= p[0] <= U64 or not 0 <= p[1] <= U32):
                raise TraceError(f"{where}: {one_line(repr(p), 60)} is not [addr < 2**64, len < 2**32]")
        return [tuple(p) for p in v]
    if k == "writes":
        if not isinstance(v, list) or len(v) > 4096:
            raise TraceError(f"{where} must be a list of at most 4096 [addr, hex] pairs")
        out = []
        for p in v:
            if not isinstance(p, list) or len(p) != 2 or type(p[0]) is not int or not 0 <= p[0] <= U64:
                raise TraceError(f"{where}: {one_line(repr(p), 60)} is not [addr, hex]")
            out.append((p[0], hex_bytes(p[1], where)))
        return out
    raise TraceError(f"{where}: unknown kind {k}")


def hex_bytes(v: Any, where: str) -> bytes:
    if not isinstance(v, str) or len(v) > 2 * 1024 * 1024:
        raise TraceError(f"{where} must be a hex string")
    try:
        return bytes.fromhex(v)
    except ValueError:
        raise TraceError(f"{where}: {one_line(v, 40)!r} is not hex") from None


# ------------------------------------------------------------------ rule and invariant evaluation

def _rules_of(component: str, op: str) -> list:
    from t1virtio.specs import rules
    out = []
    for r in rules.of(component, op):
        kind = getattr(r, "kind", None)
        if kind is None or kind == "legality":
            out.append(r)
    return out


def _invariants_of(component: str) -> list:
    from t1virtio.specs import invariants
    return invariants.of(component)


def check_rules(component: str, op: str, old: Any, args: dict, ok: bool, new: Any, out: Any, observed: Any,
                L: Any = CONCRETE) -> None:
    """Raise ``Flag`` for the first broken legality rule of ``component.op`` (evaluated in vocabulary ``L``)."""
    for r in _rules_of(component, op):
        try:
            good = r.fn(L, old, args, ok, new, out)
        except (IndexError, KeyError, TypeError) as e:
            good, why = False, f" ({type(e).__name__} evaluating it: the observed values are outside the rule's domain)"
        else:
            why = ""
        if not good:
            raise Flag(r.clause, "a step the rule allows", observed, f"{r.name} broken{why}")


def check_invariants(component: str, state: Any, observed: Any, skip: Any = ()) -> None:
    for inv in _invariants_of(component):
        if inv.clause in skip:
            continue
        if not inv.fn(CONCRETE, state):
            raise Flag(inv.clause, "a post-state satisfying the invariant", observed, f"{inv.name} fails on the post-state")


# ------------------------------------------------------------------ base

class Runner:
    """Base of every component runner (see module docstring)."""

    component = ""
    rule_component = ""
    invariant_component: str | None = None
    OPS: dict[str, dict[str, Arg]] = {}
    RESULTS: dict[str, dict[str, bool]] = {}     # op -> result key -> required
    max_items = 64

    def exact(self, op: str, args: dict) -> tuple[str | None, dict]:
        """Run ``op`` on the model; return (error clause or None, result)."""
        raise NotImplementedError

    def legal(self, op: str, args: dict, err: str | None, result: dict, observe: dict | None) -> None:
        """Check the implementation's step; raise ``Flag`` on a violation; advance to the post-state."""
        raise NotImplementedError

    def observe(self, keys: Any) -> dict:
        """The model's observations (for the keys asked)."""
        return {}

    def compare_observe(self, observe: dict) -> tuple[str, Any, Any] | None:
        """Exact mode: the first observation that differs: (key, model's, observed)."""
        mine = self.observe(observe.keys())
        for k, v in observe.items():
            if k not in mine:
                raise TraceError(f"observation {k!r} is not one {self.component} makes (known: {', '.join(self.OBSERVE)})")
            if mine[k] != v:
                return k, mine[k], v
        return None

    OBSERVE: tuple = ()

    @staticmethod
    def _run(call: Callable[[], Any]) -> tuple[str | None, Any]:
        try:
            return None, call()
        except errors.InvariantViolation:
            raise
        except errors.ModelError as e:
            return e.clause, None

    def _outcome(self, op: str, mclause: str | None, err: str | None, expected: Any, observed: Any,
                 allow_refusal: bool = False) -> bool:
        """Steps 1-2 of legality: returns whether both accepted (else both refused); raises ``Flag``."""
        if mclause is not None and err is None:
            raise Flag(mclause, {"error": mclause}, observed, "the model refuses this step; the implementation accepted it")
        if mclause is None and err is not None:
            if allow_refusal and kind_of(err) == "exhausted":
                return False
            raise Flag(HONEST, expected, {"error": err}, "the model accepts this step; the implementation refused it")
        return mclause is None


# ------------------------------------------------------------------ swiotlb

def _preset(header: dict) -> tuple[presets.Preset, dict]:
    sizes = header.get("sizes", "linux")
    if isinstance(sizes, str):
        name, extra = sizes, {}
    else:
        extra = dict(sizes)
        name = extra.pop("preset", "linux")
    try:
        return presets.by_name(name), extra
    except KeyError as e:
        raise TraceError(f"line 1: sizes: {e.args[0]}") from None


def _alloc_list(allocs: Any, where: str) -> list[tuple]:
    if not isinstance(allocs, list) or len(allocs) > 1 << 16:
        raise TraceError(f"{where}: allocs must be a list of [slot, nslots, orig_addr|null, alloc_size]")
    out = []
    for a in allocs:
        if (not isinstance(a, list) or len(a) != 4 or type(a[0]) is not int or type(a[1]) is not int
                or not (a[2] is None or type(a[2]) is int) or type(a[3]) is not int
                or not 0 <= a[0] < 1 << 32 or not 1 <= a[1] < 1 << 32 or not 0 <= a[3] <= U64
                or not (a[2] is None or 0 <= a[2] <= U64)):
            raise TraceError(f"{where}: {one_line(repr(a), 80)} is not [slot, nslots >= 1, orig_addr|null, alloc_size]")
        out.append(tuple(a))
    return out


class SwiotlbRunner(Runner):
    """One pool of ``SlotPool``: map (streaming), alloc (coherent), release. Sizes: preset (segment and page
    size, areas table), ``nslabs`` (default the preset's pool), ``nareas`` (1), ``start`` (pool address)."""

    component = rule_component = invariant_component = "swiotlb"
    OPS = {"map": {"orig_addr": I(0, U64), "mapping_size": I(0, U64), "alloc_size": Arg("int", 0, U64, None, False),
                   "alloc_align_mask": I(0, U32, 0), "min_align_mask": I(0, U32, 0), "boundary_mask": I(0, U64, U64),
                   "cpu": I(0, 1 << 16, 0)},
           "alloc": {"size": I(0, U64), "min_align_mask": I(0, U32, 0), "boundary_mask": I(0, U64, U64),
                     "cpu": I(0, 1 << 16, 0)},
           "release": {"tlb_addr": I(0, U64), "min_align_mask": I(0, U32, 0), "size": I(0, U64, 0)}}
    RESULTS = {"map": {"tlb_addr": True, "slot": False}, "alloc": {"addr": True, "slot": True},
               "release": {"nslots": True}}
    OBSERVE = ("allocs",)

    def __init__(self, header: dict):
        self.preset, extra = _preset(header)
        unknown = set(extra) - {"nslabs", "nareas", "start"}
        if unknown:
            raise TraceError(f"line 1: sizes: unknown field(s) {sorted(unknown)} for swiotlb")
        P = self.preset
        self.nslabs = extra.get("nslabs", P.pool_nslabs)
        self.nareas = extra.get("nareas", 1)
        self.start = extra.get("start", 0x8000_0000)
        if (type(self.nslabs) is not int or not 1 <= self.nslabs <= P.pool_nslabs or self.nslabs % P.io_tlb_segsize
                or type(self.nareas) is not int or self.nareas not in [1 << e for e in range(8)]
                or self.nareas > P.io_tlb_max_areas or type(self.start) is not int
                or not 0 <= self.start < 1 << 52 or self.start % P.page_size):
            raise TraceError(f"line 1: sizes: nslabs {self.nslabs!r} (whole segments, at most {P.pool_nslabs}), "
                             f"nareas {self.nareas!r} (power of two, at most {P.io_tlb_max_areas}), start "
                             f"{self.start!r} (page aligned) do not make a pool")
        try:
            self.policy = swpol.by_name(header.get("policy", "v6.1"))
        except (KeyError, errors.ModelError) as e:
            raise TraceError(f"line 1: policy: {one_line(e, 120)}") from None
        self.pool = swslots.SlotPool(P, self.start, self.nslabs, self.nareas, self.policy)
        self.allocs: dict[int, tuple] = {}
        self.touched_only = True          # legality at the cost of the step (swiotlb_touched_legality)
        start = header.get("start") or {}
        self._load_start(start)

    # -- state from allocations
    def _load_start(self, start: dict) -> None:
        unknown = set(start) - {"allocs", "area_index"}
        if unknown:
            raise TraceError(f"line 1: start: unknown field(s) {sorted(unknown)} for swiotlb")
        allocs = _alloc_list(start.get("allocs", []), "line 1: start")
        s, bad = self._build(allocs)
        if bad:
            raise TraceError(f"line 1: start: {bad}")
        hints = start.get("area_index")
        if hints is not None:
            if (not isinstance(hints, list) or len(hints) != self.nareas
                    or not all(type(h) is int and 0 <= h < s.area_nslabs for h in hints)):
                raise TraceError(f"line 1: start: area_index must be {self.nareas} integers below {s.area_nslabs}")
            full = list(hints) + [0] * (len(s.area_index) - len(hints))
            s = _evolve(s, area_index=tuple(full))
        self.pool.state = s
        self.allocs = {a[0]: (a[1], a[2], a[3]) for a in allocs}

    def _build(self, allocs: list[tuple]) -> tuple[Any, str | None]:
        """A pool state holding exactly ``allocs``; (state, what is wrong with them or None)."""
        fresh = swslots.SlotPool(self.preset, self.start, self.nslabs, self.nareas, self.policy)
        s = fresh.state
        seg = self.preset.io_tlb_segsize
        for slot, n, orig, size in sorted(allocs):       # bound: the list's length (checked)
            if slot + n > self.nslabs or slot // seg != (slot + n - 1) // seg:
                return s, f"allocation [{slot}, {slot + n}) is not inside one segment of the {self.nslabs}-slot pool"
            if not swslots.is_free_run(CONCRETE, s, slot, n):
                return s, f"allocation [{slot}, {slot + n}) overlaps another"
            s = swslots.occupy_run(CONCRETE, self.preset, s, slot, n, size, 0)
            if orig is not None:
                s = swslots.record_orig(CONCRETE, self.preset, s, slot, n, orig)
        return s, None

    def observe(self, keys: Any = ("allocs",)) -> dict:
        return {"allocs": [[k, *v] for k, v in sorted(self.allocs.items())]}

    def _record(self, slot: int) -> None:
        s = self.pool.state
        o = s.orig_addr[slot]
        self.allocs[slot] = (s.run[slot], None if o == swpool.INVALID_PHYS_ADDR else o, s.alloc_size[slot])

    # -- exact
    def exact(self, op: str, a: dict) -> tuple[str | None, dict]:
        p = self.pool
        if op == "map":
            err, tlb = self._run(lambda: p.map(a["orig_addr"], a["mapping_size"], a["alloc_size"], a["alloc_align_mask"],
                                               a["min_align_mask"], a["boundary_mask"], a["cpu"]))
            if err:
                return err, {}
            slot = p.last_out[0]
            self._record(slot)
            return None, {"tlb_addr": tlb, "slot": slot}
        if op == "alloc":
            err, addr = self._run(lambda: p.alloc(a["size"], a["min_align_mask"], a["boundary_mask"], a["cpu"]))
            if err:
                return err, {}
            slot = p.last_out[0]
            self._record(slot)
            return None, {"addr": addr, "slot": slot}
        st = p.state
        err, n = self._run(lambda: p.release(a["tlb_addr"], a["min_align_mask"], a["size"]))
        if err:
            return err, {}
        off = swpool.swiotlb_align_offset(CONCRETE, a["tlb_addr"], a["min_align_mask"]) if self.policy.uses_min_align else 0
        self.allocs.pop(swpool.get_slot_index(CONCRETE, st, a["tlb_addr"], off), None)
        return None, {"nslots": n}

    # -- legality
    def legal(self, op: str, a: dict, err: str | None, result: dict, observe: dict | None) -> None:
        P, old, pol = self.preset, self.pool.state, self.policy
        if op in ("map", "alloc") and err == NO_TERMINATION:
            # an implementation that reports (or whose adapter detected) a slot search that never ends breaks
            # the legality rule every search obeys, whatever the model's own policy would do
            raise Flag("SWIOTLB-search-bounded", "a search that ends (a run, or full)", {"error": err},
                       "the implementation's slot search did not terminate (6.1.y's do {} while (index != wrap))")
        if op == "map":
            alloc_size = a["mapping_size"] if a["alloc_size"] is None else a["alloc_size"]
            step = swslots.swiotlb_tbl_map_slots(CONCRETE, P, old, a["orig_addr"], a["mapping_size"], alloc_size,
                                                 a["alloc_align_mask"], a["min_align_mask"], a["boundary_mask"], a["cpu"], pol)
        elif op == "alloc":
            step = swslots.swiotlb_alloc_slots(CONCRETE, P, old, a["size"], a["min_align_mask"], a["boundary_mask"],
                                               a["cpu"], pol)
        else:
            step = swslots.swiotlb_release_slots(CONCRETE, P, old, a["tlb_addr"], a["min_align_mask"], a["size"], pol)
        mclause = first_failed(step)
        searches = op in ("map", "alloc")
        # the model's search may miss a run a legal allocator finds: an exhausted refusal is the model's choice
        model_refusal = mclause if not (searches and mclause and kind_of(mclause) == "exhausted") else None
        if model_refusal is None and mclause is not None and err is not None:
            self._unchanged(op, observe, err)
            return
        both = self._outcome(op, model_refusal, err, {"accepted": True}, result or {"error": err}, allow_refusal=searches)
        if not both:
            self._unchanged(op, observe, err)
            return
        if op == "map":
            off = swpool.swiotlb_align_offset(CONCRETE, a["orig_addr"], a["min_align_mask"]) if pol.uses_min_align else 0
            total = (alloc_size + off) & U64
            n = swpool.nr_slots(CONCRETE, total)
            slot = result.get("slot")
            if slot is None:
                slot = (result["tlb_addr"] - off - self.start) >> swpool.IO_TLB_SHIFT
            out = (slot, result["tlb_addr"])
            checks = [("find", {"alloc_size": total, "boundary_mask": a["boundary_mask"]}, slot),
                      ("find_aligned", {"orig_addr": a["orig_addr"], "alloc_size": total,
                                        "alloc_align_mask": a["alloc_align_mask"], "min_align_mask": a["min_align_mask"]}, slot),
                      ("map", dict(a, alloc_size=alloc_size), out)]
        elif op == "alloc":
            n, slot, off, total = swpool.nr_slots(CONCRETE, a["size"]), result["slot"], 0, a["size"]
            out = (slot, result["addr"])
            checks = [("find", {"alloc_size": a["size"], "boundary_mask": a["boundary_mask"]}, slot),
                      ("alloc_owned", {"size": a["size"]}, out)]
        else:
            checks = [("release", {"tlb_addr": a["tlb_addr"], "min_align_mask": a["min_align_mask"]}, result["nslots"])]
        if op in ("map", "alloc"):
            if not 0 <= slot < self.nslabs or not 1 <= n <= self.preset.io_tlb_segsize or slot + n > self.nslabs:
                raise Flag("SWIOTLB-find-rule",
                           f"a run of {n} slots inside the {self.nslabs}-slot pool", result,
                           f"slot {slot} (from the result) is outside the pool")
            found = new = swslots.occupy_run(CONCRETE, P, old, slot, n, total, off)
            if op == "map":
                new = swslots.record_orig(CONCRETE, P, found, slot, n, a["orig_addr"])
            implied = dict(self.allocs)
            implied[slot] = (n, a["orig_addr"] if op == "map" else None, alloc_size if op == "map" else total)
        else:
            found = new = step.new
            off = swpool.swiotlb_align_offset(CONCRETE, a["tlb_addr"], a["min_align_mask"]) if pol.uses_min_align else 0
            implied = dict(self.allocs)
            implied.pop(swpool.get_slot_index(CONCRETE, old, a["tlb_addr"], off), None)
        if observe is not None and "allocs" in observe:
            seen = _alloc_list(observe["allocs"], f"{op}: observe")
            if [[k, *v] for k, v in sorted(implied.items())] != [list(x) for x in sorted(seen)]:
                new, bad = self._build(seen)
                if bad:
                    raise Flag("SWIOTLB-alloc-run", "allocations that are runs of free slots", observe["allocs"], bad)
                implied = {x[0]: (x[1], x[2], x[3]) for x in seen}
                found = new
        # a search's rules see the slots taken, before orig_addr is recorded
        rule_checks = [(rop, rargs, found if rop.startswith("find") else new, rout) for rop, rargs, rout in checks]
        named = [slot, slot + n - 1] if op in ("map", "alloc") else [
            swpool.get_slot_index(CONCRETE, old, a["tlb_addr"], off) & 0xFFFF_FFFF]
        if not (self.touched_only and swiotlb_touched_legality(P, old, new, named, rule_checks,
                                                                observe if observe else result)):
            for rop, rargs, rnew, rout in rule_checks:
                check_rules("swiotlb", rop, old, rargs, True, rnew, rout, result)
            check_invariants("swiotlb", new, observe if observe else result)
        self.pool.state, self.allocs = new, implied

    def _unchanged(self, op: str, observe: dict | None, err: str | None) -> None:
        """A refused step changes nothing (checked against the observed slot table, if any)."""
        if observe is not None and "allocs" in observe:
            seen = _alloc_list(observe["allocs"], f"{op}: observe")
            if [list(x) for x in sorted(seen)] != [[k, *v] for k, v in sorted(self.allocs.items())]:
                rule = {"map": "SWIOTLB-map-rule", "alloc": "SWIOTLB-alloc-rule"}.get(op, "SWIOTLB-release-rule")
                raise Flag(rule, self.observe()["allocs"], observe["allocs"], f"{op} was refused ({err}) but the slot table changed")


# ------------------------------------------------------------------ swiotlb: legality in the cost of the step

def touched(old: Any, new: Any, hops: int = 64) -> set | None:
    """The indices where ``Table`` version ``new`` differs from ``old`` (one derived from the other by writes),
    read off their diff chain: O(entries written), not O(table). None when they are not linked (or not Tables)."""
    if old is new:
        return set()
    for a, b in ((old, new), (new, old)):
        keys: set = set()
        v = a
        for _ in range(hops):                   # bound: a step writes each table a few times at most
            d = getattr(v, "_diff", None)
            if d is None:
                break
            keys.update(d)
            v = v._next
            if v is b:
                return keys
    return None


class FrameVocabulary(type(CONCRETE)):
    """``CONCRETE``, except that ``all_idx`` over the pool's slot table visits only ``idx``: the slots of the
    segments a step touched or names. Sound for frame-style bodies (true at a slot every table leaves
    unchanged), which is what the swiotlb rules' per-slot conjuncts are: 'the run changes, the rest stays'."""

    def __init__(self, n: int, idx: list):
        super().__init__()
        self._n, self._idx = n, idx

    def all_idx(self, n: int, f: Callable[[int], Any]) -> Any:
        if n != self._n:
            return super().all_idx(n, f)
        return all(f(k) for k in self._idx)


_SLOT_TABLES = ("list", "orig_addr", "alloc_size", "head", "run")
_WINDOWED = ("SWIOTLB-list", "SWIOTLB-alloc-run", "SWIOTLB-slot-meta")   # per-slot, local to a segment
TOUCHED_MIN_TABLE = 0         # the touched form at every size (the bug suite exercises it at the small preset)


def _window_preset(P: presets.Preset, n: int, M: int) -> presets.Preset | None:
    """A preset for a state of ``n`` slots and ``M`` areas with ``P``'s segment and page sizes (so ``preset_of``
    finds them on a window state), or None when that pair of lengths belongs to another geometry."""
    import dataclasses
    key = (n, M)
    known = swpool._GEOMETRY.get(key)
    if known is None:
        w = dataclasses.replace(P, pool_nslabs=n)
        swpool._GEOMETRY[key] = known = w
    return known if (known.io_tlb_segsize, known.page_size) == (P.io_tlb_segsize, P.page_size) else None


def _segment_window(s: Any, lo: int, seg: int) -> Any:
    """Slots ``[lo, lo + seg)`` of ``s`` as a state of their own (heads rebased), for the per-slot invariants."""
    from t1virtio.table import Table
    head = [h - lo if h != swpool.NO_ALLOC else h for h in s.head[lo:lo + seg]]
    return _evolve(s, list=Table(s.list[lo:lo + seg]), orig_addr=Table(s.orig_addr[lo:lo + seg]),
                   alloc_size=Table(s.alloc_size[lo:lo + seg]), head=Table(head), run=Table(s.run[lo:lo + seg]),
                   nslabs=max(0, min(s.nslabs - lo, seg)), start=s.start + lo * swpool.IO_TLB_SIZE)


def swiotlb_touched_legality(P: presets.Preset, old: Any, new: Any, named: list[int], rule_checks: list,
                             observed: Any) -> bool:
    """Legality of one accepted swiotlb step at the cost of what it touched; False: not applicable (the caller
    evaluates the whole tables). The pre-state satisfies the invariants (induction from a fresh or checked pool).

    - rules: in ``FrameVocabulary`` over the segments touched or named (the run claimed, the slot released);
    - SWIOTLB-list / alloc-run / slot-meta: per slot, local to its segment: evaluated (the registered
      invariant itself) on each touched or named segment as a state of its own;
    - SWIOTLB-used: each area's ``used`` moved by the runs that changed in it, every changed run at most a
      segment; SWIOTLB-geometry: the pool's shape unchanged, hints and used in range, no padding slot written.
    """
    T = len(old.list)
    if T < TOUCHED_MIN_TABLE or len(new.list) != T:
        return False
    changed: set = set()
    for f in _SLOT_TABLES:
        t = touched(getattr(old, f), getattr(new, f))
        if t is None:
            return False
        changed |= t
    seg = P.io_tlb_segsize
    segs = sorted({k // seg for k in changed} | {k // seg for k in named if 0 <= k < T})
    idx = [k for g in segs for k in range(g * seg, min(T, (g + 1) * seg))]
    L = FrameVocabulary(T, idx)
    for rop, rargs, rnew, rout in rule_checks:
        check_rules("swiotlb", rop, old, rargs, True, rnew, rout, observed, L)
    from t1virtio.specs import invariants
    known = {"SWIOTLB-list", "SWIOTLB-alloc-run", "SWIOTLB-slot-meta", "SWIOTLB-used", "SWIOTLB-geometry"}
    invs = invariants.of("swiotlb")
    if any(inv.clause not in known for inv in invs) or _window_preset(P, seg, len(new.area_used)) is None:
        return False
    for g in segs:
        w = _segment_window(new, g * seg, seg)
        if any(not (h == swpool.NO_ALLOC or 0 <= h < seg) for h in w.head):
            return False                          # a head outside its segment: the whole-table form says which
        for inv in invs:
            if inv.clause in _WINDOWED and not inv.fn(CONCRETE, w):
                raise Flag(inv.clause, "a post-state satisfying the invariant", observed,
                           f"{inv.name} fails on the post-state (segment {g})")
    M = len(new.area_used)
    for a in range(M):                            # SWIOTLB-used, incrementally
        moved = sum(new.run[k] - old.run[k] for k in changed if pool_in_area(new, a, k))
        if any(new.run[k] > seg for k in changed) or (a < new.nareas and new.area_used[a] - old.area_used[a] != moved):
            raise Flag("SWIOTLB-used", "a post-state satisfying the invariant", observed,
                       f"area {a}'s used does not count its runs after the step")
    shape = all(getattr(new, f) == getattr(old, f) for f in ("start", "nslabs", "nareas", "area_nslabs"))
    areas = all((new.area_index[a] < new.area_nslabs and new.area_used[a] <= new.area_nslabs) if a < new.nareas
                else (new.area_index[a] == 0 and new.area_used[a] == 0) for a in range(M))
    if not (shape and areas and all(k < new.nslabs for k in changed)):
        raise Flag("SWIOTLB-geometry", "a post-state satisfying the invariant", observed,
                   "the pool's shape, an area's hint or used, or a padding slot changed")
    return True


def pool_in_area(s: Any, a: int, k: int) -> bool:
    return a < s.nareas and s.area_nslabs * a <= k < s.area_nslabs * (a + 1)


def _evolve(s: Any, **kw: Any) -> Any:
    from t1virtio.state import evolve
    return evolve(s, **kw)


# ------------------------------------------------------------------ rings: shared plumbing

def _features(header: dict, allowed: tuple = ("event_idx",)) -> dict:
    f = header.get("features") or {}
    for k, v in f.items():
        if k not in allowed or type(v) is not bool:
            raise TraceError(f"line 1: features: {one_line(k, 40)!r} is not one of {allowed} (true/false); "
                             f"indirect descriptors are not in trace format 1")
    return f


def _queue_size(header: dict, packed: bool) -> int:
    P, extra = _preset(header)
    unknown = set(extra) - {"queue_size", "region"}
    if unknown:
        raise TraceError(f"line 1: sizes: unknown field(s) {sorted(unknown)} for a ring")
    n = extra.get("queue_size", P.queue_size)
    ok = type(n) is int and 1 <= n <= presets.VIRTQUEUE_MAX_SIZE and (packed or n & (n - 1) == 0)
    if not ok:
        raise TraceError(f"line 1: sizes: queue_size {n!r} must be 1..32768" + ("" if packed else " and a power of two"))
    return n


class RingRunner(Runner):
    """Common to the four ring runners: a flat memory holding the ring at address 0 (split: ``vring_init``
    layout with align 4096; packed: ring, driver area, device area), ``peer`` writes into it, and the model's
    concrete side over it."""

    max_items = 4096
    OBSERVE = ("indices", "mem")
    # results the spec leaves free within the operation's legality rules (a notification the other side did not
    # ask for is a SHOULD NOT, not a MUST NOT): the rules judge them, not equality with the model's choice
    FREE_RESULTS = frozenset(("notify", "kick"))
    INDICES: tuple = ()
    peer_op = {"peer": {"writes": WRITES}}

    def __init__(self, header: dict, buf: bytearray | None = None):
        self.mem_size = self.ring_bytes + 4096
        if buf is not None and len(buf) != self.mem_size:
            raise TraceError(f"shared memory of {len(buf)} bytes; this ring needs {self.mem_size}")
        self.mem = FlatView(self.mem_size if buf is None else buf)
        region = header.get("region", [0, 1 << 32])
        if (not isinstance(region, list) or len(region) != 2 or not all(type(x) is int for x in region)
                or not 0 <= region[0] <= region[1] <= U64):
            raise TraceError("line 1: region must be [lo, hi] with lo <= hi")
        self.region = tuple(region)

    def peer(self, a: dict) -> None:
        for addr, data in a["writes"]:
            if addr + len(data) > self.mem_size:
                raise TraceError(f"peer write of {len(data)} bytes at {addr:#x} outside the ring memory "
                                 f"[0, {self.mem_size:#x})")
            self.mem.write(addr, data)

    def observe(self, keys: Any = ("indices",)) -> dict:
        out: dict = {}
        if "indices" in keys:
            s = self.obj.state
            out["indices"] = {k: (int(getattr(s, k)) if not isinstance(getattr(s, k), bool) else getattr(s, k))
                              for k in self.INDICES}
        return out

    def compare_observe(self, observe: dict) -> tuple[str, Any, Any] | None:
        for k, v in observe.items():
            if k == "mem":
                ranges = check_value(WRITES, v, "observe: mem", 0)
                for addr, data in ranges:
                    if addr + len(data) > self.mem_size:
                        raise TraceError(f"observe: mem range at {addr:#x} outside the ring memory")
                    mine = self.mem.read(addr, len(data))
                    if mine != data:
                        return f"mem@{addr:#x}", mine.hex(), data.hex()
            elif k == "indices":
                got = self._indices(v)
                mine = self.observe(("indices",))["indices"]
                for name, x in got.items():
                    if mine[name] != x:
                        return f"indices.{name}", mine[name], x
            else:
                raise TraceError(f"observation {k!r} is not one {self.component} makes (known: {', '.join(self.OBSERVE)})")
        return None

    def _indices(self, v: Any) -> dict:
        if not isinstance(v, dict):
            raise TraceError("observe: indices must be an object")
        for name, x in v.items():
            if name not in self.INDICES or type(x) not in (int, bool):
                raise TraceError(f"observe: indices: {one_line(name, 40)!r} is not one of {self.INDICES}")
        return v

    def _legal_indices(self, op: str, observe: dict | None, rule_clause: str) -> None:
        if observe and "indices" in observe:
            got = self._indices(observe["indices"])
            mine = self.observe(("indices",))["indices"]
            for name, x in got.items():
                if mine[name] != x:
                    raise Flag(rule_clause, {name: mine[name]}, {name: x}, f"after {op}, {name} is not what the step implies")

    def _step(self, op: str, a: dict, call: Callable[[], Any], result_of: Callable[[Any], dict],
              err: str | None, result: dict, observe: dict | None, rule_op: str | None = None,
              out_of: Callable[[dict], Any] | None = None) -> None:
        """Legality for a ring op: run the (forced) model call, then outcome, rules, invariants, indices."""
        obj = self.obj
        if err is not None and err == getattr(self, "broken_by", None):
            return                              # the implementation marked the ring broken (Linux BAD_RING): legal
        old = obj.state
        obj.last_out = None
        mclause, ret = self._run(call)
        if mclause is not None and err is not None:
            if kind_of(err) == "peer":
                self.broken_by = err
            self._clear_broken()
            return
        expected = result_of(ret) if mclause is None else {"error": mclause}
        self._outcome(op, mclause, err, expected, result if err is None else {"error": err})
        rop = rule_op or op
        args = dict(obj.last_args or {})
        out = out_of(result) if out_of else obj.last_out
        check_rules(self.rule_component, rop, old, args, True, obj.state, out, result,
                    self._frame(old, obj.state, args, out) if self.touched_only else CONCRETE)
        if self.invariant_component:
            check_invariants(self.invariant_component, obj.state, result)
        judged = self.FREE_RESULTS if _rules_of(self.rule_component, rop) else ()
        for k, v in result.items():              # deterministic given the forced choice: the rule's view of the rest
            if k in expected and expected[k] != v and k not in judged:
                rules = _rules_of(self.rule_component, rop)
                raise Flag(rules[0].clause if rules else REFERENCE, expected, result,
                           f"{op} returns {k} = {v!r}; the step implies {expected[k]!r}")
        rules = _rules_of(self.rule_component, rop)
        self._legal_indices(op, observe, rules[0].clause if rules else REFERENCE)

    touched_only = True

    def _frame(self, old: Any, new: Any, args: dict, out: Any) -> Any:
        """The vocabulary the step's rules are evaluated in: ``FrameVocabulary`` over the entries the step wrote
        (the model's transition under the forced choice) and every index it names (arguments, result, the ring
        positions its indices point at); ``CONCRETE`` when a table is not linked to its predecessor."""
        import dataclasses
        n = self.size
        idx: set = set()

        def name(v: Any) -> None:
            if type(v) is int:
                idx.add(v % n)
            elif isinstance(v, (set, frozenset, tuple, list)):
                for x in list(v)[: 2 * n]:
                    name(x)
        for f in dataclasses.fields(old):
            a, b = getattr(old, f.name), getattr(new, f.name)
            if hasattr(a, "_diff"):
                t = touched(a, b)
                if t is None:
                    return CONCRETE
                idx |= t
            else:
                name(a)
                name(b)
        for v in list(args.values()) + [out]:
            name(v)
        sel = args.get("sel")
        if type(sel) is int and sel > 0:
            idx.update(k for k in range(min(n, sel.bit_length())) if sel >> k & 1)
        return FrameVocabulary(n, sorted(idx))

    def _clear_broken(self) -> None:
        if getattr(self.obj, "broken", None):
            self.obj.broken = None


# ------------------------------------------------------------------ split driver

class SplitDriverRunner(RingRunner):
    """The driver side of a split ring (``SplitDriver``, Linux 6.1's choices in exact mode)."""

    component = "split_driver"
    rule_component = "virtio_split.driver"
    INDICES = ("avail_idx", "last_used", "num_free", "num_added")
    OPS = {"add_buf": {"out": SEGS, "in": SEGS}, "get_used": {}, "kick_prepare": {}, "disable_cb": {},
           "enable_cb": {}, **RingRunner.peer_op}
    RESULTS = {"add_buf": {"head": True, "descs": False}, "get_used": {"id": True, "len": True},
               "kick_prepare": {"kick": True}, "disable_cb": {}, "enable_cb": {"empty": True}, "peer": {}}

    def __init__(self, header: dict, buf: bytearray | None = None):
        self.size = _queue_size(header, packed=False)
        self.feat = _features(header)
        self.layout = sp.compute_layout(self.size, 0, 4096)
        self.ring_bytes = sp.ring_bytes(self.layout)
        super().__init__(header, buf)
        start = header.get("start")
        ev = self.feat.get("event_idx", False)
        if start:
            unknown = set(start) - {"avail_idx", "buffers", "num_added", "cb_disabled", "used_event"}
            if unknown:
                raise TraceError(f"line 1: start: unknown field(s) {sorted(unknown)} for split_driver")
            bufs = []
            raw = start.get("buffers", [])
            if not isinstance(raw, list) or len(raw) > self.size:
                raise TraceError(f"line 1: start: buffers must be a list of at most {self.size}")
            for b in raw:
                if not isinstance(b, dict) or set(b) - {"out", "in", "descs"}:
                    raise TraceError("line 1: start: a buffer is {out, in, descs}")
                o = check_value(SEGS, b.get("out", []), "start: buffer out", self.size)
                i = check_value(SEGS, b.get("in", []), "start: buffer in", self.size)
                d = b.get("descs")
                if d is not None and (not isinstance(d, list) or not all(type(x) is int for x in d)):
                    raise TraceError("line 1: start: descs must be a list of integers")
                bufs.append([o, i, None, d])
            try:
                self.obj = sp.SplitDriver.from_state(
                    self.mem, self.layout, avail_idx=_u16(start.get("avail_idx", 0), "avail_idx"), buffers=bufs,
                    num_added=_u16(start.get("num_added", 0), "num_added"),
                    cb_disabled=bool(start.get("cb_disabled", False)), used_event=start.get("used_event"), event_idx=ev)
            except errors.ModelError as e:
                raise TraceError(f"line 1: start: not a legal driver state: {one_line(e, 160)}") from None
            for h in list(self.obj.tokens):
                self.obj.tokens[h] = h
        else:
            self.obj = sp.SplitDriver(self.mem, self.layout, event_idx=ev)

    def _add(self, a: dict) -> dict:
        h = self.obj.add_buf(a["out"], a["in"], None)
        self.obj.tokens[h] = h
        return {"head": h, "descs": list(self.obj.chains[h])}

    def exact(self, op: str, a: dict) -> tuple[str | None, dict]:
        d = self.obj
        if op == "peer":
            self.peer(a)
            return None, {}
        if op == "add_buf":
            err, r = self._run(lambda: self._add(a))
            return err, r or {}
        if op == "get_used":
            err, r = self._run(d.get_used)
            return err, ({"id": r[0], "len": r[1]} if r else {})
        if op == "kick_prepare":
            err, r = self._run(d.kick_prepare)
            return err, {"kick": bool(r)}
        if op == "disable_cb":
            err, _ = self._run(d.disable_cb)
            return err, {}
        err, r = self._run(d.enable_cb)
        return err, {"empty": bool(r)}

    def _force(self, result: dict, n: int) -> None:
        """Make the model's free list hand out the implementation's descriptors (head first)."""
        d = self.obj
        s = d.state
        descs = result.get("descs")
        if descs is None:
            descs = [result["head"]]
        descs = [x for x in descs if type(x) is int][: self.size]
        if not descs or descs[0] != result["head"]:
            descs = [result["head"]] + [x for x in descs if x != result["head"]]
        free = [i for i in range(self.size) if not s.in_use[i] and i not in descs]   # bound: the queue size
        order = [x for x in descs if 0 <= x < self.size] + free
        if not order:
            return
        for x, y in zip(order, order[1:]):
            d.next_link[x] = y
        d.next_link[order[-1]] = order[0] if 0 <= order[0] < self.size else 0
        d.free_head = order[0]
        if not 0 <= result["head"] < self.size:
            d.free_head = result["head"]

    def legal(self, op: str, a: dict, err: str | None, result: dict, observe: dict | None) -> None:
        d = self.obj
        if op == "peer":
            self.peer(a)
            return
        if op == "add_buf":
            if err is None:
                self._force(result, len(a["out"]) + len(a["in"]))
            self._step(op, a, lambda: self._add(a), lambda r: {"head": r["head"]}, err,
                       {k: v for k, v in result.items() if k == "head"}, observe, out_of=lambda r: r.get("head"))
            return
        if op == "get_used":
            self._step(op, a, d.get_used, lambda r: {"id": r[0], "len": r[1]}, err, result, observe,
                       out_of=lambda r: (r.get("id"), r.get("len")))
            return
        if op == "kick_prepare":
            self._step(op, a, d.kick_prepare, lambda r: {"kick": bool(r)}, err, result, observe,
                       out_of=lambda r: r.get("kick"))
            return
        if op == "disable_cb":
            self._step(op, a, d.disable_cb, lambda r: {}, err, result, observe)
            return
        self._step(op, a, d.enable_cb, lambda r: {"empty": bool(r)}, err, result, observe,
                   out_of=lambda r: r.get("empty"))


def _u16(v: Any, name: str) -> int:
    if type(v) is not int or not 0 <= v <= 0xFFFF:
        raise TraceError(f"line 1: start: {name} must be an integer in [0, 65535]")
    return v


# ------------------------------------------------------------------ split device

class SplitDeviceRunner(RingRunner):
    """The device side of a split ring (``SplitDevice``): pops in ring order, completes in any order."""

    component = "split_device"
    rule_component = "virtio_split.device"
    INDICES = ("last_avail", "used_idx", "avail_seen")
    OPS = {"pop_avail": {}, "add_used": {"id": I(0, U32), "len": I(0, U64)}, "need_notify": {},
           "enable_notify": {}, "disable_notify": {}, **RingRunner.peer_op}
    RESULTS = {"pop_avail": {"head": True, "wlen": False}, "add_used": {}, "need_notify": {"notify": True},
               "enable_notify": {"empty": True}, "disable_notify": {}, "peer": {}}

    def __init__(self, header: dict, buf: bytearray | None = None):
        self.size = _queue_size(header, packed=False)
        self.feat = _features(header)
        self.layout = sp.compute_layout(self.size, 0, 4096)
        self.ring_bytes = sp.ring_bytes(self.layout)
        super().__init__(header, buf)
        lo, hi = self.region
        inr = (lambda addr, n: lo <= addr and addr + n <= hi)
        kw = dict(event_idx=self.feat.get("event_idx", False), in_region=inr)
        start = header.get("start")
        try:
            if start:
                unknown = set(start) - {"last_avail", "used_idx", "held"}
                if unknown:
                    raise TraceError(f"line 1: start: unknown field(s) {sorted(unknown)} for split_device")
                held = start.get("held", [])
                if not isinstance(held, list) or len(held) > self.size or not all(
                        isinstance(h, list) and len(h) == 2 and all(type(x) is int for x in h) for h in held):
                    raise TraceError("line 1: start: held must be a list of [head, writable length]")
                self.obj = sp.SplitDevice.from_state(self.mem, self.layout, last_avail=_u16(start.get("last_avail", 0), "last_avail"),
                                                     used_idx=_u16(start.get("used_idx", 0), "used_idx"),
                                                     held={h: w for h, w in held}, **kw)
            else:
                self.obj = sp.SplitDevice(self.mem, self.layout, **kw)
        except errors.ModelError as e:
            raise TraceError(f"line 1: not a usable device: {one_line(e, 160)}") from None

    def exact(self, op: str, a: dict) -> tuple[str | None, dict]:
        v = self.obj
        if op == "peer":
            self.peer(a)
            return None, {}
        if op == "pop_avail":
            err, c = self._run(v.pop_avail)
            return err, ({"head": c.head, "wlen": c.wlen} if c is not None else {})
        if op == "add_used":
            err, _ = self._run(lambda: v.add_used(a["id"], a["len"]))
            return err, {}
        if op == "need_notify":
            err, r = self._run(v.need_notify)
            return err, {"notify": bool(r)}
        if op == "enable_notify":
            err, r = self._run(v.enable_notify)
            return err, {"empty": bool(r)}
        err, _ = self._run(v.disable_notify)
        return err, {}

    def legal(self, op: str, a: dict, err: str | None, result: dict, observe: dict | None) -> None:
        v = self.obj
        if op == "peer":
            self.peer(a)
            return
        if op == "pop_avail":
            self._step(op, a, v.pop_avail, lambda c: {"head": c.head, "wlen": c.wlen}, err, result, observe,
                       out_of=lambda r: r.get("head"))
        elif op == "add_used":
            self._step(op, a, lambda: v.add_used(a["id"], a["len"]), lambda r: {}, err, result, observe)
        elif op == "need_notify":
            self._step(op, a, v.need_notify, lambda r: {"notify": bool(r)}, err, result, observe,
                       out_of=lambda r: r.get("notify"))
        elif op == "enable_notify":
            self._step(op, a, v.enable_notify, lambda r: {"empty": bool(r)}, err, result, observe)
        else:
            self._step(op, a, v.disable_notify, lambda r: {}, err, result, observe)


# ------------------------------------------------------------------ packed driver / device

class PackedDriverRunner(RingRunner):
    """The driver side of a packed ring (``PackedDriver``): ids from Linux's free list in exact mode."""

    component = "packed_driver"
    rule_component = invariant_component = "virtio_packed_driver"
    INDICES = ("next_avail", "avail_wrap", "last_used", "used_wrap", "num_free")
    OPS = {"add": {"out": SEGS, "in": SEGS}, "get_used": {}, "kick_prepare": {}, "enable_cb": {}, "disable_cb": {},
           **RingRunner.peer_op}
    RESULTS = {"add": {"id": True}, "get_used": {"id": True, "len": True}, "kick_prepare": {"kick": True},
               "enable_cb": {"empty": True}, "disable_cb": {}, "peer": {}}

    def __init__(self, header: dict, buf: bytearray | None = None):
        self.size = _queue_size(header, packed=True)
        self.feat = _features(header)
        self.layout = pk.PackedLayout.contiguous(self.size, 0)
        self.ring_bytes = self.layout.device + pk.EVENT_SIZE
        super().__init__(header, buf)
        if header.get("start"):
            raise TraceError("line 1: start: a mid-stream packed_driver is not in trace format 1 (start from a fresh ring)")
        self.obj = pk.PackedDriver(self.mem, self.layout, self.size, event_idx=self.feat.get("event_idx", False))

    def _get(self) -> dict:
        r = self.obj.get_used()
        if r is None:
            raise errors.fail(pk.NO_USED, "no used descriptor at last_used")
        return {"id": r[0], "len": r[1]}

    def _add(self, a: dict) -> dict:
        i = self.obj.add(a["out"], a["in"], None)
        self.obj.tokens[i] = i
        return {"id": i}

    def exact(self, op: str, a: dict) -> tuple[str | None, dict]:
        d = self.obj
        if op == "peer":
            self.peer(a)
            return None, {}
        calls = {"add": lambda: self._add(a), "get_used": self._get,
                 "kick_prepare": lambda: {"kick": d.kick_prepare()}, "enable_cb": lambda: {"empty": d.enable_cb()},
                 "disable_cb": lambda: d.disable_cb() or {}}
        err, r = self._run(calls[op])
        return err, r or {}

    def legal(self, op: str, a: dict, err: str | None, result: dict, observe: dict | None) -> None:
        d = self.obj
        if op == "peer":
            self.peer(a)
            return
        if op == "add":
            if err is None:
                d.free_head = result["id"] if 0 <= result["id"] < self.size else result["id"]
            self._step(op, a, lambda: self._add(a), lambda r: r, err, result, observe,
                       out_of=lambda r: d.last_out)
        elif op == "get_used":
            self._step(op, a, self._get, lambda r: r, err, result, observe,
                       out_of=lambda r: (r.get("id"), r.get("len")))
        elif op == "kick_prepare":
            self._step(op, a, lambda: {"kick": d.kick_prepare()}, lambda r: r, err, result, observe,
                       out_of=lambda r: r.get("kick"))
        elif op == "enable_cb":
            self._step(op, a, lambda: {"empty": d.enable_cb()}, lambda r: r, err, result, observe)
        else:
            self._step(op, a, lambda: d.disable_cb() or {}, lambda r: r, err, result, observe)


class PackedDeviceRunner(RingRunner):
    """The device side of a packed ring (``PackedDevice``): pops in ring order, marks used in any order."""

    component = "packed_device"
    rule_component = invariant_component = "virtio_packed_device"
    INDICES = ("next_avail", "avail_wrap", "next_used", "used_wrap", "in_flight")
    OPS = {"pop": {}, "push_used": {"id": I(0, 0xFFFF), "len": I(0, U32)}, "need_notify": {},
           "set_event": {"mode": I(0, 3)}, **RingRunner.peer_op}
    RESULTS = {"pop": {"id": True, "ndesc": False}, "push_used": {}, "need_notify": {"notify": True},
               "set_event": {}, "peer": {}}

    def __init__(self, header: dict, buf: bytearray | None = None):
        self.size = _queue_size(header, packed=True)
        self.feat = _features(header)
        self.layout = pk.PackedLayout.contiguous(self.size, 0)
        self.ring_bytes = self.layout.device + pk.EVENT_SIZE
        super().__init__(header, buf)
        if header.get("start"):
            raise TraceError("line 1: start: a mid-stream packed_device is not in trace format 1 (start from a fresh ring)")
        lo, hi = self.region
        try:
            self.obj = pk.PackedDevice(self.mem, self.layout, self.size, (lo, hi),
                                       event_idx=self.feat.get("event_idx", False),
                                       in_region=lambda addr, n: addr + n <= self.mem_size)
        except errors.ModelError as e:
            raise TraceError(f"line 1: not a usable device: {one_line(e, 160)}") from None

    def _pop(self) -> dict:
        c = self.obj.pop()
        if c is None:
            raise errors.fail(pk.NOTHING_AVAILABLE, "the descriptor at next_avail is not available")
        return {"id": c.id, "ndesc": c.ndesc}

    def exact(self, op: str, a: dict) -> tuple[str | None, dict]:
        v = self.obj
        if op == "peer":
            self.peer(a)
            return None, {}
        calls = {"pop": self._pop, "push_used": lambda: v.push_used(a["id"], a["len"]) or {},
                 "need_notify": lambda: {"notify": v.need_notify()}, "set_event": lambda: v.set_event(a["mode"]) or {}}
        err, r = self._run(calls[op])
        return err, r or {}

    def legal(self, op: str, a: dict, err: str | None, result: dict, observe: dict | None) -> None:
        v = self.obj
        if op == "peer":
            self.peer(a)
            return
        if op == "pop":
            self._step(op, a, self._pop, lambda r: r, err, result, observe)
        elif op == "push_used":
            self._step(op, a, lambda: v.push_used(a["id"], a["len"]) or {}, lambda r: r, err, result, observe)
        elif op == "need_notify":
            self._step(op, a, lambda: {"notify": v.need_notify()}, lambda r: r, err, result, observe,
                       out_of=lambda r: r.get("notify"))
        else:
            self._step(op, a, lambda: v.set_event(a["mode"]) or {}, lambda r: r, err, result, observe,
                       rule_op="set_event")


# ------------------------------------------------------------------ msgq

class MsgqRunner(Runner):
    """One Gunyah message queue (``MessageQueue``): send/receive copy bytes; FIFO, bounded."""

    component = rule_component = invariant_component = "msgq"
    OPS = {"configure": {"depth": I(0, 1 << 16), "max_size": I(0, 1 << 16)}, "activate": {}, "destroy": {},
           "send": {"hex": HEX, "push": B(False), "flags": Arg("int", 0, U64, None, False)},
           "receive": {"bufsize": I(0, 1 << 16)}, "flush": {},
           "configure_send": {"thd": I(-1, 1 << 16)}, "configure_receive": {"thd": I(-2, 1 << 16)}}
    RESULTS = {"configure": {}, "activate": {}, "destroy": {}, "send": {"not_full": True},
               "receive": {"hex": True, "not_empty": True}, "flush": {}, "configure_send": {}, "configure_receive": {}}
    OBSERVE = ("count", "messages")

    def __init__(self, header: dict):
        self.preset, extra = _preset(header)
        if set(extra):
            raise TraceError(f"line 1: sizes: unknown field(s) {sorted(extra)} for msgq (the preset fixes them)")
        start = header.get("start")
        if start:
            if set(start) - {"depth", "max_size", "messages"}:
                raise TraceError("line 1: start: msgq takes depth, max_size and messages")
            depth, size = start.get("depth"), start.get("max_size", mq.GH_MSGQ_MAX_MSG_SIZE)
            try:
                self.q = mq.MessageQueue(self.preset, depth, size)
            except errors.ModelError as e:
                raise TraceError(f"line 1: start: {one_line(e, 160)}") from None
            msgs = start.get("messages", [])
            if not isinstance(msgs, list):
                raise TraceError("line 1: start: messages must be a list of hex strings")
            for m in msgs[: self.preset.msgq_max_depth + 1]:
                try:
                    self.q.send(hex_bytes(m, "line 1: start: messages"))
                except errors.ModelError as e:
                    raise TraceError(f"line 1: start: message not accepted: {one_line(e, 160)}") from None
        else:
            self.q = mq.MessageQueue(self.preset)

    def _messages(self) -> list[str]:
        s = self.q.state
        return [self.q.payloads[mq.compute_slot(CONCRETE, s, j)][: s.sizes[mq.compute_slot(CONCRETE, s, j)]].hex()
                for j in range(s.count)]        # bound: the queue depth

    def observe(self, keys: Any = OBSERVE) -> dict:
        out: dict = {}
        if "count" in keys:
            out["count"] = self.q.state.count
        if "messages" in keys:
            out["messages"] = self._messages()
        return out

    def _call(self, op: str, a: dict) -> Callable[[], dict]:
        q = self.q
        calls = {"configure": lambda: q.configure(a["depth"], a["max_size"]) or {},
                 "activate": lambda: q.activate() or {}, "destroy": lambda: q.destroy() or {},
                 "send": lambda: {"not_full": q.send(a["hex"], a["push"], a["flags"])},
                 "receive": lambda: (lambda r: {"hex": r[0].hex(), "not_empty": r[1]})(q.receive(a["bufsize"])),
                 "flush": lambda: q.flush() or {},
                 "configure_send": lambda: q.configure_send(a["thd"]) or {},
                 "configure_receive": lambda: q.configure_receive(a["thd"]) or {}}
        return calls[op]

    def exact(self, op: str, a: dict) -> tuple[str | None, dict]:
        err, r = self._run(self._call(op, a))
        return err, r or {}

    RULE_ARGS = {"configure": lambda a: {"depth": a["depth"], "max_size": a["max_size"]},
                 "send": lambda a: {"size": len(a["hex"]), "flags": (1 if a["push"] else 0) if a["flags"] is None else a["flags"],
                                    "readable": True},
                 "receive": lambda a: {"bufsize": a["bufsize"], "writable": True},
                 "configure_send": lambda a: {"notfull_thd": a["thd"], "holdoff": mq.HOLDOFF_DEFAULT},
                 "configure_receive": lambda a: {"notempty_thd": a["thd"], "holdoff": mq.HOLDOFF_DEFAULT}}

    def legal(self, op: str, a: dict, err: str | None, result: dict, observe: dict | None) -> None:
        old = self.q.state
        queued = self._messages() if op == "receive" else []
        self.q.last_out = None
        mclause, ret = self._run(self._call(op, a))
        if mclause is not None and err is not None:
            return
        self._outcome(op, mclause, err, ret if mclause is None else {"error": mclause}, result if err is None else {"error": err})
        out = self.q.last_out
        if op == "send":
            out = result.get("not_full")
        elif op == "receive":
            got = result.get("hex", "")
            try:
                j = queued.index(got)
            except ValueError:
                j = -1 - old.received         # no queued message: a number no message has
            nb = len(got) // 2
            out = (nb, old.received + j, result.get("not_empty"))
        rargs = self.RULE_ARGS.get(op, lambda a: {})(a)
        check_rules("msgq", op, old, rargs, True, self.q.state, out, result)
        check_invariants("msgq", self.q.state, result)
        if observe:
            for k, v in observe.items():
                if k not in self.OBSERVE:
                    raise TraceError(f"observation {k!r} is not one msgq makes (known: {', '.join(self.OBSERVE)})")
            mine = self.observe(observe.keys())
            for k, v in observe.items():
                if mine[k] != v:
                    rule = {"send": "HYP-MSGQ-send-rule", "receive": "HYP-MSGQ-receive-rule"}.get(op, "HYP-MSGQ-fifo")
                    raise Flag(rule, {k: mine[k]}, {k: v}, f"after {op}, the queue's {k} is not what the step implies")


RUNNERS: dict[str, type[Runner]] = {r.component: r for r in (SwiotlbRunner, SplitDriverRunner, SplitDeviceRunner,
                                                              PackedDriverRunner, PackedDeviceRunner, MsgqRunner)}
COMPONENTS = tuple(RUNNERS)
