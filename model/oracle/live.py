"""Live checking: drive an implementation under test with Hypothesis-generated operations, check every step.

The per-component interface is one method (``Implementation``): ``step(op, args) -> result``, with the
operations, arguments and results of the trace format (``docs/oracle.md``), raising ``Refused(error)`` (a
clause id or an errno-ish name) when the implementation refuses. A ring implementation is built over the
shared ring memory (a ``bytearray`` laid out as the trace format says) and reads and writes it directly; the
oracle plays the other side (an honest model peer, and hostile writes) on the same bytes. The factory is
``impl_factory(header: dict, memory: bytearray | None) -> Implementation``.

``check(impl_factory, component, ...)`` generates operation sequences, checks each step as ``oracle check``
does (legality mode by default), lets Hypothesis shrink the first failing sequence, writes the minimal trace
(``trace_path``) and raises ``NonConformance`` with the violation. ``ModelImplementation`` is the model
itself behind the interface (its own choices: Linux 6.1's).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from t1virtio import errors
from t1virtio import preset as presets
from t1virtio.hyp.memview import FlatView, read_le, write_le
from t1virtio.oracle import components as comp
from t1virtio.oracle.check import Checker
from t1virtio.oracle.trace import FORMAT, write
from t1virtio.virtio import packed as pk
from t1virtio.virtio import split as sp


class Refused(Exception):
    """The implementation refused an operation: ``error`` is a clause id or an errno-ish name."""

    def __init__(self, error: str):
        super().__init__(error)
        self.error = error


@runtime_checkable
class Implementation(Protocol):
    """What an implementation under test provides, for every component: one operation at a time.

    ``op`` and ``args`` are a trace line's (``docs/oracle.md`` lists them per component; ``peer`` is never
    sent: the oracle writes the shared memory itself). Return the result object (e.g. ``{"tlb_addr": ...}``
    for swiotlb ``map``); raise ``Refused(error)`` to refuse.
    """

    def step(self, op: str, args: dict) -> dict: ...


ImplFactory = Callable[[dict, "bytearray | None"], Implementation]


class NonConformance(AssertionError):
    """Live checking found a violation: ``violation`` (first, after shrinking) and the minimal ``trace``."""

    def __init__(self, violation: comp.Violation, header: dict, steps: list[dict], path: Path | None):
        self.violation, self.header, self.steps, self.path = violation, header, steps, path
        v = violation
        super().__init__(f"{header['component']}: step {v.step} ({v.op}) violates {v.clause}: expected {v.expected!r}, "
                         f"observed {v.observed!r}; {v.detail}" + (f"; minimal trace: {path}" if path else ""))


def header_for(component: str, preset: str = "small", policy: str | None = None, **sizes: Any) -> dict:
    """A trace header for ``component`` at ``preset`` (explicit ``sizes`` override the preset's)."""
    pol = policy or {"swiotlb": "v6.9+", "msgq": "gunyah"}.get(component, "linux-6.1")
    h = {"format": FORMAT, "component": component, "sizes": {"preset": preset, **sizes} if sizes else preset,
         "policy": pol, "mode": "legality"}
    if component == "msgq":
        P = presets.by_name(preset)
        h["start"] = {"depth": P.msgq_max_depth, "max_size": P.msgq_max_msg_size}
    return h


def memory_for(header: dict) -> bytearray | None:
    """The shared memory a ring implementation works on (None for swiotlb and msgq)."""
    cls = comp.RUNNERS[header["component"]]
    if not issubclass(cls, comp.RingRunner):
        return None
    return bytearray(cls(header).mem_size)


class ModelImplementation:
    """The model behind the ``Implementation`` interface (exact policy; its own choices)."""

    def __init__(self, header: dict, memory: bytearray | None = None):
        cls = comp.RUNNERS[header["component"]]
        self.runner = cls(header, memory) if issubclass(cls, comp.RingRunner) else cls(header)

    def step(self, op: str, args: dict) -> dict:
        spec = self.runner.OPS[op]
        err, result = self.runner.exact(op, comp.check_args(spec, args, op, self.runner.max_items))
        if err is not None:
            raise Refused(err)
        return result


def model_factory(header: dict, memory: bytearray | None = None) -> ModelImplementation:
    return ModelImplementation(header, memory)


# ------------------------------------------------------------------ sessions: the oracle's side of a run

class Session:
    """One run: the implementation, the oracle's peer, the trace so far, and the incremental checker."""

    def __init__(self, factory: ImplFactory, header: dict, mode: str):
        self.header = header
        self.memory = memory_for(header)
        self.impl = factory(header, self.memory)
        self.checker = Checker(header, mode)
        self.steps: list[dict] = []
        self.violation: comp.Violation | None = None
        self.results: list[tuple[str, dict, dict | None]] = []
        self.view = FlatView(self.memory) if self.memory is not None else None
        self.peer = self._make_peer()

    def _make_peer(self) -> Any:
        c = self.header["component"]
        r = self.checker.runner
        ev = bool((self.header.get("features") or {}).get("event_idx", False))   # the peer negotiated the same
        if c == "split_driver":
            return sp.SplitDevice(self.view, r.layout, in_region=lambda a, n: True, event_idx=ev)
        if c == "split_device":
            self.peer_mem = FlatView(bytearray(len(self.memory)))       # the driver writes here, then we copy
            return sp.SplitDriver(self.peer_mem, r.layout, event_idx=ev)
        if c == "packed_driver":
            return pk.PackedDevice(self.view, r.layout, r.size, (0, 1 << 64), in_region=lambda a, n: True, event_idx=ev)
        if c == "packed_device":
            self.peer_mem = FlatView(bytearray(len(self.memory)))
            return pk.PackedDriver(self.peer_mem, r.layout, r.size, event_idx=ev)
        return None

    def record(self, doc: dict) -> bool:
        """Add one step to the trace and check it; False once a violation was found."""
        self.steps.append(doc)
        v = self.checker.step(doc)
        if v is not None:
            self.violation = v
            return False
        return True

    def call(self, op: str, args: dict) -> bool:
        doc: dict = {"op": op, "args": args}
        try:
            res = self.impl.step(op, dict(args))
            doc["result"] = dict(res or {})
        except Refused as e:
            doc["error"] = e.error
            res = None
        except errors.ModelError as e:
            doc["error"] = e.clause
            res = None
        self.results.append((op, args, res))
        return self.record(doc)

    def write(self, writes: list[tuple[int, bytes]]) -> bool:
        """Peer writes: into the shared memory (the implementation sees them) and into the trace."""
        ws = [(a, d) for a, d in writes if d]
        if not ws:
            return True
        for a, d in ws:
            self.view.write(a, d)
        return self.record({"op": "peer", "args": {"writes": [[a, d.hex()] for a, d in ws]}})

    def diff_region(self, before: bytes, lo: int) -> list[tuple[int, bytes]]:
        after = self.view.read(lo, len(before))
        return [(lo, after)] if after != before else []


# ------------------------------------------------------------------ actions per component

def _seg_list(lens: list[int], base: int) -> list[list[int]]:
    return [[base + 0x1000 * k, n] for k, n in enumerate(lens)]


def _any_len(v: int, small: int) -> int:
    """A length from ``v``: zero, small, huge (beyond any buffer the generators make) or anything below ``small``."""
    return (0, 1 + (v >> 2) % 16, 1 << 20, (v >> 2) % small)[v % 4]


def _act_swiotlb(s: Session, a: tuple) -> bool:
    kind, x, y = a
    P = s.checker.runner.preset
    if kind == 0:
        seg = P.io_tlb_segsize * 2048           # one slot, two (under a page), a page or more, anything
        size = (1 + (x >> 2) % 2048, 2049 + (x >> 2) % 2047, 4096 + (x >> 2) % (seg - 4095),
                1 + (x >> 2) % (2 * seg + 64))[x % 4]
        args = {"orig_addr": 0x10000 + 0x40 * y, "mapping_size": size}
        mask = (y >> 10) & 3                    # sometimes a device constraint: NVMe's min_align, a DMA window
        if mask == 1:
            args["min_align_mask"] = 0xFFF
        elif mask == 2:
            args["boundary_mask"] = 0x1FFF
        elif mask == 3:
            args["alloc_align_mask"] = 0xFFF
        return s.call("map", args)
    if kind == 1:
        return s.call("alloc", {"size": 1 + x % (P.io_tlb_segsize * 2048)})
    live = [(r.get("tlb_addr", r.get("addr"))) for op, _, r in s.results if r and op in ("map", "alloc")]
    if not live:
        return s.call("release", {"tlb_addr": s.checker.runner.start + 2048 * (x % 4)})
    return s.call("release", {"tlb_addr": live[x % len(live)]})


def _act_msgq(s: Session, a: tuple) -> bool:
    kind, x, y = a
    P = s.checker.runner.preset
    if kind in (0, 3, 4):                       # sends weigh three times: queues fill up
        n = 1 + x % (P.msgq_max_msg_size + 2)
        return s.call("send", {"hex": bytes([(y + i) & 0xFF for i in range(n)]).hex(), "push": bool(y & 1)})
    if kind == 1:
        return s.call("receive", {"bufsize": P.msgq_max_msg_size})
    return s.call("flush", {})


def _act_split_driver(s: Session, a: tuple) -> bool:
    kind, x, y = a
    r = s.checker.runner
    lay, dev = r.layout, s.peer
    if kind == 0:
        return s.call("add_buf", {"out": _seg_list([1 + x % 64], 0x100000), "in": _seg_list([1 + y % 64] * (1 + x % 2), 0x200000)})
    if kind == 1:
        return s.call("get_used", {})
    if kind == 2:
        return s.call("kick_prepare", {})
    if kind == 3:                               # the honest device uses the next available buffer
        before = s.view.read(lay.used, 6 + 8 * r.size)
        try:
            c = dev.pop_avail()
            dev.add_used(c.head, min(c.wlen, y))
        except errors.ModelError:
            dev.broken = None
        return s.write(s.diff_region(before, lay.used))
    # hostile: a used entry naming any id with any len, then the used idx
    dv = dev.state
    slot = dv.used_idx % r.size
    dev.state = sp.replace(dv, used_idx=(dv.used_idx + 1) & 0xFFFF)
    return s.write([(lay.used_elem_at(slot), (x % (2 * r.size)).to_bytes(4, "little") + _any_len(y, 200).to_bytes(4, "little")),
                    (lay.used + 2, dev.state.used_idx.to_bytes(2, "little"))])


def _act_split_device(s: Session, a: tuple) -> bool:
    kind, x, y = a
    r = s.checker.runner
    lay, drv = r.layout, s.peer
    held = [res["head"] for op, _, res in s.results if op == "pop_avail" and res]
    done = [args["id"] for op, args, res in s.results if op == "add_used" and res is not None]
    for h in done:
        if h in held:
            held.remove(h)
    if kind == 0:
        return s.call("pop_avail", {})
    if kind == 1:
        if not held:
            return s.call("add_used", {"id": x % r.size, "len": y % 8})
        h = held[x % len(held)]                 # any held buffer: out of order is legal (§2.7)
        return s.call("add_used", {"id": h, "len": _any_len(y, 80)})
    if kind == 2:
        return s.call("need_notify", {})
    if kind == 3:                               # the honest driver adds a buffer
        try:
            drv.add_buf(_seg_list([1 + x % 32], 0x100000), _seg_list([1 + y % 64], 0x200000), None)
        except errors.ModelError:
            return True
        n = lay.avail + 6 + 2 * r.size
        return s.write([(lay.desc, s.peer_mem.read(lay.desc, n - lay.desc))])
    st = drv.state
    slot = st.avail_idx % r.size
    if kind == 5:                               # hostile: a malformed one-descriptor chain, made available
        d = x % r.size
        shape = y % 8
        addr, ln, flags, nxt, ahead = 0x100000, 1 + (x >> 8) % 64, 0, 0, 1
        if shape == 1:                          # a loop: NEXT back to itself
            flags, nxt = sp.VIRTQ_DESC_F_NEXT, d
        elif shape == 2:                        # next outside the table
            flags, nxt = sp.VIRTQ_DESC_F_NEXT, r.size + (x >> 4) % r.size
        elif shape == 3:                        # lengths summing past 2^32 (2^31 each, read three times)
            flags, nxt, ln = sp.VIRTQ_DESC_F_NEXT, d, 0x8000_0000
        elif shape == 4:                        # a buffer outside any region
            addr = 1 << 48
        elif shape == 5:                        # INDIRECT without the feature, or with NEXT
            flags = sp.VIRTQ_DESC_F_INDIRECT | (y >> 3) & sp.VIRTQ_DESC_F_NEXT
        elif shape == 6:                        # an avail idx running more than the queue size ahead
            ahead = r.size + 1
        else:                                   # well formed: any flags of WRITE, a zero length sometimes
            flags, ln = (y >> 3) & sp.VIRTQ_DESC_F_WRITE, ln if (y >> 4) & 1 else 0
        drv.state = sp.replace(st, avail_idx=(st.avail_idx + ahead) & 0xFFFF)
        return s.write([(lay.desc_at(d), addr.to_bytes(8, "little") + ln.to_bytes(4, "little")
                         + flags.to_bytes(2, "little") + nxt.to_bytes(2, "little")),
                        (lay.avail_ring_at(slot), d.to_bytes(2, "little")),
                        (lay.avail + 2, drv.state.avail_idx.to_bytes(2, "little"))])
    # hostile: an available entry naming any head, then the avail idx
    drv.state = sp.replace(st, avail_idx=(st.avail_idx + 1) & 0xFFFF)
    return s.write([(lay.avail_ring_at(slot), (x % (2 * r.size)).to_bytes(2, "little")),
                    (lay.avail + 2, drv.state.avail_idx.to_bytes(2, "little"))])


def _act_packed_driver(s: Session, a: tuple) -> bool:
    kind, x, y = a
    r = s.checker.runner
    dev, lay = s.peer, r.layout
    if kind == 0:
        return s.call("add", {"out": _seg_list([1 + x % 64], 0x100000), "in": _seg_list([1 + y % 64], 0x200000)})
    if kind == 1:
        return s.call("get_used", {})
    if kind == 2:
        return s.call("kick_prepare", {})
    before = s.view.read(lay.desc, pk.DESC_SIZE * r.size)
    if kind == 3:                               # the honest device pops and uses the next buffer
        try:
            c = dev.pop()
            if c is not None:
                dev.push_used(c.id, min(sum(n for _, n in c.writable), y))
        except errors.ModelError:
            pass
        return s.write(s.diff_region(before, lay.desc))
    # hostile: a descriptor at the device's next used slot with any id, len and AVAIL/USED bits
    slot = dev.state.next_used
    base = lay.desc + pk.DESC_SIZE * slot
    w = int(dev.state.used_wrap)                # used by this wrap, by the other (stale), AVAIL only, USED only
    av, us = ((w, w), (1 - w, 1 - w), (1, 0), (0, 1))[y % 4]
    flags = av << 7 | us << 15 | pk.VIRTQ_DESC_F_WRITE
    return s.write([(base + 8, _any_len(y >> 2, 200).to_bytes(4, "little") + (x % (2 * r.size)).to_bytes(2, "little")
                     + flags.to_bytes(2, "little"))])


def _act_packed_device(s: Session, a: tuple) -> bool:
    kind, x, y = a
    r = s.checker.runner
    drv, lay = s.peer, r.layout
    held = [res["id"] for op, _, res in s.results if op == "pop" and res]
    for op, args, res in s.results:
        if op == "push_used" and res is not None and args["id"] in held:
            held.remove(args["id"])
    if kind == 0:
        return s.call("pop", {})
    if kind == 1:
        if not held:
            return s.call("push_used", {"id": x % r.size, "len": y % 8})
        return s.call("push_used", {"id": held[x % len(held)], "len": _any_len(y, 80)})
    if kind == 2:
        return s.call("need_notify", {})
    if kind == 3:
        try:
            drv.add(_seg_list([1 + x % 32], 0x100000), _seg_list([1 + y % 64], 0x200000))
        except errors.ModelError:
            return True
        n = pk.DESC_SIZE * r.size
        return s.write([(lay.desc, s.peer_mem.read(lay.desc, n))])
    slot = drv.state.next_avail
    base = lay.desc + pk.DESC_SIZE * slot
    w = int(drv.state.avail_wrap)               # available now, stale (the other wrap), both bits, neither
    av, us = ((w, 1 - w), (1 - w, w), (1, 1), (0, 0))[y % 4]
    flags = av << 7 | us << 15 | ((y >> 2) & 1) * pk.VIRTQ_DESC_F_WRITE
    return s.write([(base, (0x100000).to_bytes(8, "little") + (x % 100 + 1).to_bytes(4, "little")
                     + (x % (2 * r.size)).to_bytes(2, "little") + flags.to_bytes(2, "little"))])


ACTIONS = {"swiotlb": (_act_swiotlb, 3), "msgq": (_act_msgq, 5), "split_driver": (_act_split_driver, 5),
           "split_device": (_act_split_device, 6), "packed_driver": (_act_packed_driver, 5),
           "packed_device": (_act_packed_device, 5)}


HONEST_KINDS = {"swiotlb": 3, "msgq": 5, "split_driver": 4, "split_device": 4, "packed_driver": 4,
                "packed_device": 4}       # action kinds below this are an honest peer's; the others are hostile


def _seeds(component: str, size: int, max_size: int) -> list[list[tuple]]:
    """Short targeted action sequences tried before the generated ones: each sets up the situation one guard,
    rule or freedom is about (a hostile write then the operation that reads it; a pool filled up to a segment,
    window or page edge; a full queue), so that a check left out is found in milliseconds, not by luck."""
    out: list[list[tuple]] = []
    if component == "swiotlb":
        one, two, page, bound, minal, allal = (0, 0, 0), (0, 1, 0), (0, 2, 0), (0, 1, 2 << 10), (0, 2, 1 << 10), (0, 2, 3 << 10)
        for k in range(8):
            out += [[one] * k + [x] for x in (two, page, bound, minal, allal, (1, 4096, 0), (1, 1, 0))]
        out += [[one, (2, 0, 0), (2, 0, 0)], [page, (2, 0, 0)], [(0, 3, 0)], [two, page, (2, 0, 0), (2, 0, 0)]]
    elif component == "msgq":
        for n in (max_size - 1, max_size, max_size + 1):
            out.append([(0, n, 0)])
        out += [[(0, 1, 0)] * 5, [(0, 1, 0), (0, 2, 0), (1, 0, 0), (1, 0, 0)], [(0, 1, 0), (2, 0, 0), (1, 0, 0)],
                [(0, 1, 0)] * 3]
    elif component == "split_driver":
        out += [[(1, 0, 0)], [(4, 0, 0), (1, 0, 0)], [(0, 0, 0), (2, 0, 0)], [(0, 0, 0), (0, 0, 0), (2, 0, 0)],
                [(0, 0, 0), (3, 0, 5), (1, 0, 0)]]
        out += [[(0, 0, 0), (4, x, y), (1, 0, 0)] for x in range(2 * size) for y in range(4)]
    elif component == "split_device":
        out += [[(5, 0, shape), (0, 0, 0)] for shape in range(8)]
        out += [[(4, x, 0), (0, 0, 0)] for x in range(2 * size)]
        out += [[(1, 0, 0)], [(3, 0, 0), (0, 0, 0), (1, 0, 0), (2, 0, 0)], [(3, 0, 0), (0, 0, 0), (4, 0, 0), (0, 0, 0)]]
        out += [[(3, 0, 0), (0, 0, 0), (1, 0, y)] for y in range(4)]
    elif component == "packed_driver":
        out += [[(0, 0, 0), (2, 0, 0)], [(0, 0, 0), (0, 0, 0), (2, 0, 0)], [(0, 0, 0), (3, 0, 5), (1, 0, 0)],
                [(0, 0, 0), (3, 0, 5), (0, 0, 0)]]
        out += [[(0, 0, 0), (4, x, y), (1, 0, 0)] for x in (0, 1, size, size + 1) for y in range(16)]
    elif component == "packed_device":
        out += [[(4, x, y), (0, 0, 0)] for x in (0, 1, size, size + 1) for y in range(4)]
        out += [[(1, 0, 0)], [(3, 0, 0), (0, 0, 0), (1, 0, 0), (2, 0, 0)], [(3, 0, 0), (0, 0, 0), (4, 0, 0), (0, 0, 0)]]
        out += [[(3, 0, 0), (0, 0, 0), (1, 0, y)] for y in range(4)]
    return out


def _shrink(factory: ImplFactory, header: dict, actions: list[tuple], mode: str, clause: str) -> list[tuple]:
    """Greedy: drop one action at a time while the run still fails with ``clause`` (bounded passes)."""
    cur = list(actions)
    for _ in range(len(cur)):                   # bound: each pass removes one action or stops
        for i in range(len(cur)):
            cand = cur[:i] + cur[i + 1:]
            v = run_actions(factory, header, cand, mode).violation
            if v is not None and v.clause == clause:
                cur = cand
                break
        else:
            return cur
    return cur


def run_actions(factory: ImplFactory, header: dict, actions: list[tuple], mode: str = "legality") -> Session:
    """Run ``actions`` (``(kind, x, y)`` triples) until the first violation; return the session."""
    s = Session(factory, header, mode)
    act, _ = ACTIONS[header["component"]]
    for a in actions[:10_000]:
        if not act(s, a):
            break
    return s


@dataclass
class LiveResult:
    """A conforming run: how many sequences and steps were checked."""

    component: str
    examples: int
    steps: int


def check(impl_factory: ImplFactory, component: str, *, preset: str = "small", mode: str = "legality",
          max_examples: int = 100, max_steps: int = 40, trace_path: str | Path | None = None,
          header: dict | None = None, hostile: bool = True, seeds: bool = True) -> LiveResult:
    """Drive ``impl_factory``'s implementation of ``component`` with generated sequences; raise ``NonConformance``
    (after Hypothesis shrank the sequence) with the minimal trace written to ``trace_path``. ``seeds``: first try
    the component's targeted sequences (``_seeds``; a failing one is shrunk greedily)."""
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis import strategies as st
    from hypothesis.errors import NoSuchExample
    if component not in ACTIONS:
        raise ValueError(f"unknown component {component!r} (known: {', '.join(ACTIONS)})")
    h = header or header_for(component, preset)
    _, kinds = ACTIONS[component]
    top = kinds - 1 if hostile else HONEST_KINDS.get(component, kinds - 1) - 1
    action = st.tuples(st.integers(0, top), st.integers(0, 1 << 16), st.integers(0, 1 << 16))
    stats = {"examples": 0, "steps": 0}
    if seeds:
        r = Checker(h, mode).runner
        P = getattr(r, "preset", None)
        mx = h.get("start", {}).get("max_size", P.msgq_max_msg_size if P else 0) if component == "msgq" else 0
        for acts in _seeds(component, getattr(r, "size", 0), mx):
            acts = [a for a in acts if a[0] <= top]
            stats["examples"] += 1
            s = run_actions(impl_factory, h, acts, mode)
            stats["steps"] += len(s.steps)
            if s.violation is not None:
                s = run_actions(impl_factory, h, _shrink(impl_factory, h, acts, mode, s.violation.clause), mode)
                path = write(trace_path, h, s.steps) if trace_path else None
                raise NonConformance(s.violation, h, s.steps, path)

    def fails(actions: list) -> bool:
        stats["examples"] += 1
        s = run_actions(impl_factory, h, actions, mode)
        stats["steps"] += len(s.steps)
        return s.violation is not None

    cfg = settings(max_examples=max_examples, database=None, derandomize=True, deadline=None,
                   suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    try:
        minimal = find(st.lists(action, max_size=max_steps), fails, settings=cfg)
    except NoSuchExample:
        return LiveResult(component, stats["examples"], stats["steps"])
    s = run_actions(impl_factory, h, minimal, mode)
    path = write(trace_path, h, s.steps) if trace_path else None
    raise NonConformance(s.violation, h, s.steps, path)
