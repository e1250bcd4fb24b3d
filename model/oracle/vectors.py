"""``vectors export``: a deterministic, seeded corpus of conformance cases (format ``t1virtio-vectors/1``).

Each case is a trace file (``t1virtio-trace/1``, ``docs/formats/trace.schema.json``) written from the model in
exact mode: the header (component, sizes, policy, starting state), one line per operation with the model's
result or refusal clause, and the post-state as the last step's ``observe``. A harness in any language replays
a case by building its implementation from the header, applying each line's operation (``peer`` lines are raw
writes into the ring memory) and comparing its result or error, then the observations (README.md in the
corpus explains it). The cases come from seeded action sequences of ``live`` (the model playing both sides,
hostile writes included), so refusals (failing cases) and acceptances (passing cases) both appear; ``index.json``
lists, per case, the clauses its refusals cite.
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

from t1virtio.oracle import components as comp
from t1virtio.oracle import live
from t1virtio.oracle.trace import VECTORS_FORMAT, TraceError, schema_path, write
from t1virtio.specs import clauses

OPS_CLAUSE_PREFIX = {"swiotlb": ("SWIOTLB-find", "SWIOTLB-map", "SWIOTLB-release"), "msgq": ("HYP-MSGQ-",),
                     "split_driver": ("VIRTIO/model/used#", "VIRTIO/model/driver#",
                                      "VIRTIO/device/Virtqueues/The Virtqueue Used Ring#"),
                     "split_device": ("VIRTIO/model/avail#", "VIRTIO/model/device#", "VIRTIO/model/chain#",
                                      "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table",
                                      "VIRTIO/driver/Virtqueues/The Virtqueue Available Ring#",
                                      "VIRTIO/driver/Message Framing#"),
                     "packed_driver": ("VIRTIO/model/packed/driver#", "VIRTIO/model/packed/ids#used",
                                       "VIRTIO/driver/Packed Virtqueues/Scatter-Gather Support#ring-space",
                                       "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#used"),
                     "packed_device": ("VIRTIO/model/packed/device#", "VIRTIO/model/packed/ids#id",
                                       "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#len",
                                       "VIRTIO/driver/Packed Virtqueues/")}


def _case(component: str, rng: random.Random, n_ops: int) -> tuple[dict, list[dict]]:
    h = live.header_for(component, "small")
    h["mode"] = "exact"
    _, kinds = live.ACTIONS[component]
    acts = [(rng.randrange(kinds), rng.randrange(1 << 16), rng.randrange(1 << 16)) for _ in range(n_ops)]
    s = live.run_actions(live.model_factory, h, acts, "exact")
    steps = s.steps
    if steps and s.violation is None:
        obs = s.checker.runner.observe(s.checker.runner.OBSERVE)
        if obs:
            steps[-1] = dict(steps[-1], observe=obs)
    return h, steps


# clauses no case of trace format 1 can reach, with why (the README lists them; a test keeps the list honest)
UNREACHABLE_WHY = {
    "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#nested":
        "indirect descriptors need VIRTIO_F_INDIRECT_DESC, which trace format 1 cannot negotiate (header features: "
        "event_idx only); without it the #feature guard refuses first",
    "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#chain-len":
        "an indirect table longer than the queue: needs VIRTIO_F_INDIRECT_DESC (not in format 1)",
    "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#indirect-next":
        "INDIRECT together with NEXT: without VIRTIO_F_INDIRECT_DESC (not in format 1) #feature refuses first",
    "VIRTIO/model/chain#table-len": "an indirect table length not a multiple of 16: needs VIRTIO_F_INDIRECT_DESC",
    "VIRTIO/model/driver#detach": "detach_unused / reinit are not operations of trace format 1",
    "VIRTIO/model/packed/driver#detached": "detach_unused is not an operation of trace format 1",
    "VIRTIO/model/packed/device#in-flight-bound": "with every slot held, a further buffer can only name a held id or "
                                                  "one >= the queue size: the id guards refuse first",
    **{f"VIRTIO/driver/Packed Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#{k}":
       "needs VIRTIO_F_INDIRECT_DESC, which trace format 1 cannot negotiate: #not-negotiated refuses first"
       for k in ("chain-limit", "in-list", "nested", "table-length")},
    "SWIOTLB-find-no-termination": "the 6.1-6.2 search hang needs policy v6.1 and a stride that never meets the "
                                   "wrap index; the corpus uses v6.9+ (tests/test_swiotlb_* cover it on the model)",
    "HYP-MSGQ-holdoff": "configure_send/receive take a threshold only; the runner passes the default holdoff",
    "HYP-MSGQ-send-fault": "a send buffer the hypervisor cannot read: format 1 carries the bytes, not an address",
    "HYP-MSGQ-receive-fault": "a receive buffer the hypervisor cannot write: format 1 has no address for it",
    "HYP-MSGQ-virq-bound": "VIRQ binding is not an operation of trace format 1",
    "HYP-MSGQ-virq-busy": "VIRQ binding is not an operation of trace format 1",
    "HYP-MSGQ-virq-number": "VIRQ binding is not an operation of trace format 1",
    "HYP-MSGQ-bind-rule": "bind/unbind are not operations of trace format 1",
    "HYP-MSGQ-deliver": "VIRQ delivery is not an operation of trace format 1",
    "HYP-MSGQ-check-pending": "VIRQ EOI is not an operation of trace format 1",
}


def _component_clauses(c: str) -> dict[str, str]:
    """Every clause the oracle can cite for component ``c``: its guards (refusals), legality rules, invariants;
    clause id -> kind (guard, rule, invariant)."""
    from t1virtio.specs import invariants, rules
    out: dict[str, str] = {}
    pre = OPS_CLAUSE_PREFIX[c]
    for cid, cl in clauses.CLAUSES.items():
        if cid.startswith(pre) and cl.kind in ("peer", "caller", "exhausted", "access"):
            out[cid] = "guard"
    r = comp.RUNNERS[c]
    if c == "packed_device":
        out.pop("VIRTIO/driver/Packed Virtqueues/Scatter-Gather Support#ring-space", None)   # the driver's own
    for rl in rules.of(r.rule_component, kind="legality"):
        out.setdefault(rl.clause, "rule")
    if r.invariant_component:
        for inv in invariants.of(r.invariant_component):
            out.setdefault(inv.clause, "invariant")
    return out


def _run_case(c: str, acts: list, header: dict | None = None) -> tuple[dict, list[dict]]:
    """Run a case with the model in exact mode: items are live action triples ``(kind, x, y)``, explicit
    operations ``("op", name, args)`` or raw peer writes ``("peer", [[addr, hex], ...])``."""
    h = dict(header or live.header_for(c, "small"))
    h["mode"] = "exact"
    s = live.Session(live.model_factory, h, "exact")
    act, _ = live.ACTIONS[c]
    for a in acts[:10_000]:
        if a[0] == "op":
            ok = s.call(a[1], dict(a[2]))
        elif a[0] == "peer":
            ok = s.write([(addr, bytes.fromhex(hx)) for addr, hx in a[1]])
        else:
            ok = act(s, a)
        if not ok:
            break
    steps = s.steps
    if steps and s.violation is None:
        obs = s.checker.runner.observe(s.checker.runner.OBSERVE)
        if obs:
            steps[-1] = dict(steps[-1], observe=obs)
    return h, steps


def _explicit(c: str) -> list[tuple[dict | None, list]]:
    """Hand-written cases for guards the generated actions never take (caller errors, lifecycle, edge sizes)."""
    def op(name: str, **args: Any) -> tuple:
        return ("op", name, args)
    if c == "swiotlb":
        return [(None, [op("map", orig_addr=0x10000, mapping_size=100, alloc_size=50), op("map", orig_addr=0x10000, mapping_size=100)]),
                (None, [op("map", orig_addr=0x10000, mapping_size=0), op("alloc", size=0), op("alloc", size=4096)]),
                (None, [op("map", orig_addr=0x10000, mapping_size=100, boundary_mask=0x17FF),
                        op("map", orig_addr=0x10000, mapping_size=100, boundary_mask=0x2FFF),
                        op("map", orig_addr=0x10000, mapping_size=100, boundary_mask=0x1FFF)]),
                (None, [op("release", tlb_addr=0x1000), op("map", orig_addr=0x10000, mapping_size=100),
                        op("release", tlb_addr=0x8000_0000)])]
    if c == "msgq":
        h = live.header_for("msgq", "small")
        fresh = {k: v for k, v in h.items() if k != "start"}
        return [(None, [op("configure", depth=2, max_size=4), op("activate"), op("send", hex="00", flags=255),
                        op("send", hex="00", flags=1), op("configure_send", thd=9), op("configure_send", thd=1),
                        op("configure_receive", thd=0), op("configure_receive", thd=1), op("send", hex="0011"),
                        op("receive", bufsize=0), op("receive", bufsize=8), op("destroy"), op("send", hex="00")]),
                (fresh, [op("activate"), op("configure", depth=0, max_size=4), op("configure", depth=2, max_size=4),
                         op("activate"), op("send", hex="00"), op("receive", bufsize=4)])]
    if c == "split_driver":
        return [(None, [op("add_buf", out=[], **{"in": []}), op("add_buf", out=[[0x100000, 0]], **{"in": []})])]
    if c == "packed_driver":
        return [(None, [op("add", out=[], **{"in": []}), op("add", out=[[0x100000, 1]], **{"in": []}),
                        op("disable_cb"), op("enable_cb"), op("kick_prepare")])]
    if c == "packed_device":
        from t1virtio.virtio.desc import (VIRTQ_DESC_F_AVAIL as A, VIRTQ_DESC_F_INDIRECT as IND,
                                          VIRTQ_DESC_F_NEXT as NX, VIRTQ_DESC_F_USED as U, VIRTQ_DESC_F_WRITE as WR)

        def pd(i: int, flags: int, ln: int = 16, addr: int = 0x100000, id: int = 0) -> list:
            return [16 * i, (addr.to_bytes(8, "little") + ln.to_bytes(4, "little") + id.to_bytes(2, "little")
                             + flags.to_bytes(2, "little")).hex()]
        cases = [[pd(0, A, addr=1 << 48)], [pd(0, A | IND)], [pd(0, A | WR | NX), pd(1, A)], [pd(k, A | NX) for k in range(4)],
                 [pd(0, A | NX, 0x8000_0000), pd(1, A | NX, 0x8000_0000), pd(2, A, 0x8000_0000)],
                 [pd(0, A | NX), pd(1, 0)]]
        out = [(None, [("peer", w), op("pop")]) for w in cases]
        out.append((None, [("peer", [pd(k, A, id=k) for k in range(4)]), op("pop"), op("pop"), op("pop"), op("pop"),
                           ("peer", [pd(0, U, id=0)]), op("pop")]))
        return out + [(None, [op("set_event", mode=2), op("set_event", mode=1), op("need_notify"), op("set_event", mode=0)])]
    if c == "split_device":
        d0 = (0x100000).to_bytes(8, "little") + (8).to_bytes(4, "little") + (3).to_bytes(2, "little") + (1).to_bytes(2, "little")
        d1 = (0x200000).to_bytes(8, "little") + (8).to_bytes(4, "little") + (0).to_bytes(4, "little")
        lay = live.Checker(live.header_for(c, "small")).runner.layout
        order = [("peer", [[lay.desc_at(0), (d0 + d1).hex()], [lay.avail_ring_at(0), "0000"], [lay.avail + 2, "0100"]]),
                 op("pop_avail")]                        # a writable descriptor before a readable one
        return [(None, [op("disable_notify"), op("enable_notify"), op("need_notify")]), (None, order)]
    return []


def _targeted(c: str) -> list[tuple[dict | None, list[tuple]]]:
    """The per-clause cases: live's seed sequences (each sets up one guard, rule or freedom), with EVENT_IDX too."""
    r = live.Checker(live.header_for(c, "small")).runner
    P = getattr(r, "preset", None)
    mx = P.msgq_max_msg_size if c == "msgq" and P else 0
    out: list[tuple[dict | None, list]] = [(None, a) for a in live._seeds(c, getattr(r, "size", 0), mx)]
    out += _explicit(c)
    if c in ("split_driver", "split_device", "packed_driver", "packed_device"):
        h = live.header_for(c, "small")
        h["features"] = {"event_idx": True}
        kick = 2
        out += [(h, [(3, 0, 5), (0, 0, 0), (1, 0, 1), (kick, 0, 0)]), (h, [(0, 0, 0), (0, 0, 0), (kick, 0, 0), (3, 0, 5), (1, 0, 0)])]
    if c == "packed_device":
        out += [(None, [(3, 0, 0), (3, 1, 1), (0, 0, 0), (0, 0, 0), (1, 1, 0), (1, 0, 0), (2, 0, 0)])]
    return out


def _negative(c: str) -> list[tuple[str, dict, list[dict], str]]:
    """Failing cases for checkers: each buggy implementation's minimal trace (``bugs.BUGGY``) with its clause."""
    from t1virtio.oracle import bugs
    from t1virtio.oracle.check import check_trace
    out = []
    if c == "swiotlb":                          # an observed slot table with overlapping allocations
        h = live.header_for(c, "small")
        steps = [{"op": "map", "args": {"orig_addr": 0x10000, "mapping_size": 100}, "result": {"tlb_addr": 0x8000_0000},
                  "observe": {"allocs": [[0, 1, 0x10000, 100], [0, 2, None, 4096]]}}]
        rep = check_trace(h, steps, "legality")
        if rep.violation is not None:
            out.append(("ObservedOverlap", h, steps, rep.violation.clause))
    for impl, comp_, clause, why in bugs.BUGGY:
        if comp_ != c:
            continue
        h = live.header_for(c, "small")
        if impl in bugs.FEATURES:
            h["features"] = dict(bugs.FEATURES[impl])
        try:
            live.check(impl, c, header=h, max_examples=30, max_steps=20)
        except live.NonConformance as e:
            out.append((impl.__name__, e.header, e.steps, clause if e.violation.clause == clause else e.violation.clause))
    return out


def export(out_dir: str | Path, components: list[str] | None = None, count: int = 4, seed: int = 0,
           negative: bool = True) -> dict:
    """Write the corpus; return a summary (cases, components, clauses covered, unreachable/uncovered).

    Three kinds of case per component: targeted (``seed-*``: one per guard, rule and freedom the seed sequences
    set up), random (``NNNN``: seeded action sequences, ``count`` short and 8 longer hostile ones), and, with
    ``negative``, failing traces for checkers (``flag-*``: a buggy implementation's results; ``oracle check``
    must report the clause in the index's ``expect``)."""
    comps = components or list(live.ACTIONS)
    for c in comps:
        if c not in live.ACTIONS:
            raise TraceError(f"unknown component {c!r} (known: {', '.join(live.ACTIONS)})")
    if not 0 <= count <= 10_000:
        raise TraceError("--count must be in [0, 10000]")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index: list[dict] = []
    covered: dict[str, set] = {c: set() for c in comps}         # refused with (failing case of a guard)
    flagged: dict[str, set] = {c: set() for c in comps}         # a negative case flagged with it
    ops_ok: dict[str, set] = {c: set() for c in comps}          # ops accepted somewhere (passing cases)
    refused_ops: dict[str, dict] = {c: {} for c in comps}       # clause -> ops refused with it
    passing: dict[str, int] = {c: 0 for c in comps}
    for c in comps:
        rng = random.Random(f"{seed}:{c}")
        cases: list[tuple[str, dict, list[dict]]] = []
        seen: set = set()
        for k, (h, acts) in enumerate(_targeted(c)):
            hh, steps = _run_case(c, acts, h)
            key = json.dumps([hh.get("features"), steps], sort_keys=True)
            if steps and key not in seen:
                seen.add(key)
                cases.append((f"{c}/seed-{k:04d}.trace.jsonl", hh, steps))
        for k in range(count + 8):                    # bound: count cases plus 8 longer hostile ones
            _, kinds = live.ACTIONS[c]
            acts = [(rng.randrange(kinds), rng.randrange(1 << 16), rng.randrange(1 << 16))
                    for _ in range(12 if k < count else 40)]
            hh, steps = _run_case(c, acts)
            cases.append((f"{c}/{k:04d}.trace.jsonl", hh, steps))
        for name, hh, steps in cases:
            write(out / name, hh, steps)
            refused = sorted({s["error"] for s in steps if "error" in s})
            covered[c].update(refused)
            for s in steps:
                if "error" in s:
                    refused_ops[c].setdefault(s["error"], set()).add(s["op"])
                elif s["op"] != "peer":
                    ops_ok[c].add(s["op"])
            passing[c] += sum(1 for s in steps if "result" in s and s["op"] != "peer")
            index.append({"case": name, "component": c, "steps": len(steps), "refusals": refused,
                          "expect": "conforms"})
        if negative:
            for bug, hh, steps, clause in _negative(c):
                name = f"{c}/flag-{bug}.trace.jsonl"
                write(out / name, dict(hh, mode="legality"), steps)
                flagged[c].add(clause)
                index.append({"case": name, "component": c, "steps": len(steps), "refusals": [],
                              "expect": {"violation": clause}})
    shutil.copy(schema_path(), out / "trace.schema.json")
    coverage: dict[str, dict] = {}
    uncovered: dict[str, list] = {}
    for c in comps:
        rows = {}
        for cid, kind in sorted(_component_clauses(c).items()):
            if kind == "guard":
                fail = cid in covered[c] or cid in flagged[c]
                ops = refused_ops[c].get(cid, set())
                ok = bool(ops & ops_ok[c]) if ops else bool(ops_ok[c])
            else:
                fail = cid in flagged[c] or cid in covered[c]
                ok = bool(ops_ok[c])
            rows[cid] = {"kind": kind, "passing": ok, "failing": fail}
        coverage[c] = rows
        uncovered[c] = [cid for cid, r in rows.items() if not r["failing"]]
    (out / "index.json").write_text(json.dumps({"format": VECTORS_FORMAT, "seed": seed, "count": count,
                                                "cases": index, "coverage": coverage, "uncovered": uncovered},
                                               indent=1))
    (out / "README.md").write_text(_readme(comps, covered, uncovered, seed, count, coverage))
    return {"format": VECTORS_FORMAT, "cases": len(index), "components": comps,
            "covered": {c: sorted(v | flagged[c]) for c, v in covered.items()}, "unreachable": uncovered,
            "coverage": coverage}


def _readme(comps: list[str], covered: dict, uncovered: dict, seed: int, count: int, coverage: dict) -> str:
    lines = [f"# t1virtio conformance vectors ({VECTORS_FORMAT}, seed {seed}, count {count})", "",
             "Each `*.trace.jsonl` is one case in trace format `t1virtio-trace/1` (`trace.schema.json`, here).",
             "Line 1 is the header: `component`, `sizes` (a preset name or explicit sizes), `policy`, optional",
             "`features`, and an optional mid-stream `start` state. Every other line is one operation:",
             "`{\"op\", \"args\", \"result\" | \"error\", \"observe\"?}`.", "",
             "## Replaying a case from C or Rust", "",
             "1. Parse the header; build your implementation at those sizes (rings: one flat zeroed memory of",
             "   the ring's size at address 0 — split: `vring_init(num, 0, 4096)` layout; packed: descriptor ring",
             "   at 0, driver event area at `16*num`, device event area at `16*num + 4`).",
             "2. For each line: `peer` lines are raw writes `[addr, hex]` into that memory (the other side's",
             "   writes, hostile ones included). Any other op: call your implementation with `args`; it must",
             "   return `result` (every key listed) or refuse; a refusal must name the same clause (or an",
             "   errno-ish name of the same kind: ENOMEM/ENOSPC/EAGAIN exhausted, EINVAL caller, EIO/EPROTO peer,",
             "   EFAULT access).",
             "3. The last line's `observe` is the post-state (swiotlb: live allocations `[slot, nslots,",
             "   orig_addr|null, alloc_size]`; rings: queue indices; msgq: count and queued messages in hex).",
             "", "Or let t1virtio do it: write your own results into the same lines and run",
             "`t1virtio oracle check FILE --mode exact` (or `--mode legality` to accept any legal choice).",
             "The vectors are the model's exact choices (Linux 6.1 for rings, swiotlb policy v6.9+);",
             "an implementation with other legal choices should use legality mode on its own traces.", "",
             "## Clauses covered by refusals", ""]
    for c in comps:
        lines.append(f"- `{c}`: {', '.join(sorted(covered[c])) or 'none'}")
    lines += ["", "## Failing cases for checkers (`flag-*`)", "",
              "A `flag-*.trace.jsonl` case holds a buggy implementation's results (`t1virtio.oracle.bugs`), not the",
              "model's: it is for checkers, not for implementations. `index.json` gives each its `expect`: the",
              "violation `oracle check` must report (exit 1, that clause). Every other case `expect`s `conforms`.",
              "", "## Coverage per clause", "",
              "`index.json` `coverage`: per clause of each component (guards, legality rules, invariants), whether a",
              "case passes through it (`passing`: an accepted operation it governs) and one fails it (`failing`: the",
              "model refuses with it, or a `flag-*` case is flagged with it).", ""]
    for c in comps:
        rows = coverage[c]
        both = sum(1 for r in rows.values() if r["passing"] and r["failing"])
        lines.append(f"- `{c}`: {len(rows)} clauses, {both} with a passing and a failing case")
    lines += ["", "## Not covered by this corpus", "",
              "Clauses of the component no case fails, with why where known: unreachable from the operations of",
              "trace format 1 (indirect descriptors cannot be negotiated in it; lifecycle and VIRQ binding of msgq",
              "and queue-ready checks happen at construction), or a rule/invariant only a state the operations",
              "never build would break (the model is proved to keep them; no buggy implementation of",
              "`bugs.py` breaks it first).", ""]
    for c in comps:
        if not uncovered[c]:
            lines.append(f"- `{c}`: none")
            continue
        lines.append(f"- `{c}`:")
        for cid in uncovered[c]:
            why = UNREACHABLE_WHY.get(cid) or _why(c, cid, coverage[c][cid]["kind"])
            lines.append(f"  - `{cid}`: {why}")
    return "\n".join(lines) + "\n"


def _why(c: str, cid: str, kind: str) -> str:
    if kind == "invariant":
        return "an invariant of the post-state: the forced step of any implementation keeps it (proved for the model)"
    if kind == "rule":
        return ("a legality rule that restates its operation's guards: a step breaking it fails a guard first "
                "(flagged with the guard's clause); no buggy implementation of bugs.py breaks it alone")
    if cid.startswith("HYP-MSGQ-") and c == "msgq":
        return "lifecycle, VIRQ binding or threshold configuration: not among the operations generated"
    return "a guard no targeted or random case reaches yet"
