"""The generated split and packed ring fast path equals the model (issue 12; docs/performance.md "Rings").

(a) Hypothesis, side by side: the model's concrete sides (``SplitDriver``/``SplitDevice``,
``PackedDriver``/``PackedDevice``) over a ``FlatView`` and the fast path over a numpy copy of the same bytes
run the same ops, with adversarial writes into the ring (descriptor fields, indices, ring entries, flags)
between them: same result, same refusal clause, same core state (the split driver's chain records of heads
in flight) and the same memory bytes after every step, at queue size 256 and 32768;
(b) exhaustive at queue size 4: every state reachable in ``DEPTH`` steps over a fixed alphabet (honest ops
and hostile pokes), every op from each, model vs the fast path built from that model state;
(c) the fast split path against Linux 6.1 (virtio_ring.c + vringh.c) at 32768: same ring bytes, heads,
kick and notify decisions over random ops (``t1virtio bench --fast-vs-linux`` runs 10^6).

Cold numba compile: ~20-40 s per queue size (three sizes here); warm, the file runs in well under a minute.
"""
from __future__ import annotations

import copy
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from t1virtio import errors
from t1virtio.fast import rings as fr
from t1virtio.hyp.memview import FlatView
from t1virtio.virtio import chain, packed, split

M = fr.Models(split, chain, packed)
ARENA_MAX = 8


def is_peer(clause: str) -> bool:
    return issubclass(errors.error_class(clause), errors.PeerViolation)


class Kicks:
    def __init__(self):
        self.n = 0

    def hit(self):
        self.n += 1


class InRegion:
    def __init__(self, size):
        self.size = size

    def __call__(self, a, n):
        return 0 <= a and a + n <= self.size


class SplitPair:
    """Model driver + device over one FlatView, fast driver + device over a numpy copy of its bytes."""

    def __init__(self, N: int, indirect: bool = True, event_idx: bool = True, build: bool = True):
        self.N = N
        self.lay = split.compute_layout(N, 0, 4096)
        self.arena = (split.ring_bytes(self.lay) + 4095) & ~4095
        self.data = self.arena + 16 * ARENA_MAX * N
        self.size = self.data + 64 * 256
        self.mem = FlatView(self.size)
        size = self.size
        self.kicks = Kicks()
        self.drv = split.SplitDriver(self.mem, self.lay, event_idx=event_idx, indirect=indirect,
                                     indirect_arena=(self.arena, ARENA_MAX), notify=self.kicks.hit)
        self.dev = split.SplitDevice(self.mem, self.lay, event_idx=event_idx, indirect=indirect,
                                     in_region=InRegion(size))
        self.tokens: dict = {}
        self.k = 0
        if build:
            self.fast_from_model()

    def fast_from_model(self) -> None:
        self.f = fr.build(M, self.N)
        self.fm = np.frombuffer(bytearray(self.mem.buf), dtype=np.uint8).copy()
        self.fd = fr.FastSplitDriver(self.f, self.drv, self.fm, is_peer)
        self.fv = fr.FastSplitDevice(self.f, self.dev, self.fm, (0, self.size), is_peer)
        self.fkicks0 = self.kicks.n

    # -- model side: (clause, value) like the fast wrappers
    @staticmethod
    def _m(fn):
        try:
            return None, fn()
        except errors.ModelError as e:
            return e.clause, None

    def op(self, o: tuple) -> tuple:
        """Run ``o`` on both sides; return (model result, fast result)."""
        kind = o[0]
        if kind == "add":
            _, n_out, n_in, base, lens = o
            segs = [(self.data + (base % 64) * 256 + 32 * j, lens[j % len(lens)]) for j in range(n_out + n_in)]
            out, inn = segs[:n_out], segs[n_out:]
            self.k += 1
            m = self._m(lambda: self.drv.add_buf(out, inn, self.k))
            f = self.fd.add_buf(out, inn)
            if f[0] is None:
                self.tokens[f[1]] = self.k
            return m, f
        if kind == "kick":
            return self._m(self.drv.kick_prepare), self.fd.kick_prepare()
        if kind == "get":
            m = self._m(self.drv.get_used)
            f = self.fd.get_used()
            if f[0] is None:
                f = (None, (self.tokens.get(f[1][0]), f[1][1]))
            return m, f
        if kind == "pop":
            m = self._m(self.dev.pop_avail)
            if m[0] is None:
                c = m[1]
                m = (None, (c.head, tuple(c.readable), tuple(c.writable)))
            return m, self.fv.pop_avail()
        if kind == "used":
            _, head, length = o
            return self._m(lambda: self.dev.add_used(head, length)), self.fv.add_used(head, length)
        if kind == "need":
            return self._m(self.dev.need_notify), self.fv.need_notify()
        if kind == "enable":
            return self._m(self.dev.enable_notify), self.fv.enable_notify()
        if kind == "edge":                      # a descriptor whose buffer ends at the region's end (+ delta)
            _, idx, delta = o
            ln = int.from_bytes(self.mem.read(self.lay.desc_at(idx) + 8, 4), "little")
            return self.op(("poke", "desc_addr", idx, (self.size - ln + delta) & ((1 << 64) - 1)))
        if kind == "poke":                      # a hostile peer writes ring bytes (same bytes on both sides)
            _, where, idx, val = o
            a, w = self.poke_addr(where, idx)
            data = (val & ((1 << (8 * w)) - 1)).to_bytes(w, "little")
            self.mem.write(a, data)
            self.fm[a:a + w] = np.frombuffer(data, np.uint8)
            return (None, None), (None, None)
        raise AssertionError(kind)

    def poke_addr(self, where: str, idx: int) -> tuple:
        lay, n = self.lay, self.N
        i = idx % n
        return {"desc_len": (lay.desc_at(i) + 8, 4), "desc_flags": (lay.desc_at(i) + 12, 2),
                "desc_next": (lay.desc_at(i) + 14, 2), "desc_addr": (lay.desc_at(i), 8),
                "avail_idx": (lay.avail + 2, 2), "avail_ring": (lay.avail_ring_at(i), 2),
                "used_event": (lay.used_event(), 2), "avail_flags": (lay.avail, 2),
                "used_idx": (lay.used + 2, 2), "used_id": (lay.used_elem_at(i), 4),
                "used_len": (lay.used_elem_at(i) + 4, 4), "avail_event": (lay.avail_event(), 2),
                "table_len": (self.arena + 16 * (idx % (ARENA_MAX * n)) + 8, 4),
                "table_flags": (self.arena + 16 * (idx % (ARENA_MAX * n)) + 12, 2),
                "table_next": (self.arena + 16 * (idx % (ARENA_MAX * n)) + 14, 2)}[where]

    def check(self, o: tuple, m: tuple, f: tuple) -> None:
        assert m == f, (o, m, f)
        assert bytes(self.fm) == bytes(self.mem.buf), (o, "memory bytes")
        assert same_state(self.f, "drv", self.fd.arrays, self.drv.state) is None, (o, "driver state")
        assert same_state(self.f, "dev", self.fv.arrays, self.dev.state) is None, (o, "device state")
        assert (self.fd.broken, self.fv.broken) == (self.drv.broken, self.dev.broken), o
        assert self.fd.notifies == self.kicks.n - self.fkicks0, (o, "forced notifies")


def same_state(f, side, arrays, state):
    """The fast side's arrays hold the model state (numpy, O(size) in C per table): scalars, every table, and for
    the split driver the chain record of each head in flight (the others are dead)."""
    lay = f.layouts[side]
    sc = arrays["sc"]
    for leaf in lay.leaves:
        v = state
        for name in leaf.path:
            v = getattr(v, name)
        if leaf.kind == "scalar":
            if int(sc[leaf.slot]) != int(v):
                return leaf.path
        elif leaf.table == "t_chain_sel":
            n = len(arrays["t_in_use"])
            live = np.nonzero((arrays["t_in_use"] != 0) & (arrays["t_chain_of"] == np.arange(n, dtype=np.uint64)))[0]
            link = arrays["t_chain_sel_link"]
            for h in live.tolist():
                got, x = [], int(arrays["t_chain_sel_first"][h])
                for _ in range(int(arrays["t_chain_sel"][h])):
                    got.append(x)
                    x = int(link[x])
                if frozenset(got) != frozenset(fr._members(v[h], n)) or len(got) != len(set(got)):
                    return ("chain_sel", h)
        else:
            want = np.array(v.tolist() if hasattr(v, "tolist") else list(v), dtype=np.uint64)
            if not np.array_equal(arrays[leaf.table], want):
                return leaf.path
    return None


def norm_drv(s):
    """The driver state with the chain records of heads in flight only (the others are dead: never read)."""
    live = [h for h in range(s.size) if s.in_use[h] and s.chain_of[h] == h]
    sels = [frozenset(fr._members(s.chain_sel[h], s.size)) if h in live else frozenset() for h in range(s.size)]
    return (s.event_idx, s.indirect, tuple(s.in_use), tuple(s.chain_of), tuple(sels), tuple(s.wlen), s.num_free,
            s.avail_idx, s.num_added, s.last_used, tuple(s.avail_ring), s.avail_flags, s.cb_disabled, s.used_event)


WHERE = ["desc_len", "desc_flags", "desc_next", "desc_addr", "avail_idx", "avail_ring", "used_event", "avail_flags",
         "used_idx", "used_id", "used_len", "avail_event", "table_len", "table_flags", "table_next"]


def ops_strategy(N: int):
    """Weighted: mostly honest traffic (adds, pops, completions of held heads, gets), hostile pokes in between."""
    small = st.one_of(st.integers(0, 7), st.integers(0, 3 * N))
    val = st.one_of(st.integers(0, 8), st.integers(0, 2 * N), st.integers(0, (1 << 32) - 1),
                    st.sampled_from([0xFFFF, 16, 32, 4, 5, 6, 7, 0x8000, 0x10000]))
    add = st.tuples(st.just("add"), st.integers(0, 3), st.integers(0, 3), st.integers(0, 63),
                    st.lists(st.integers(0, 64), min_size=1, max_size=4)).filter(lambda t: t[1] + t[2] > 0)
    honest = st.tuples(st.just("used"), st.integers(0, 3 * N).map(lambda x: 2 * x), st.integers(0, 70))
    one = st.one_of(add, add, add, st.just(("pop",)), st.just(("pop",)), st.just(("pop",)), honest, honest,
                    st.just(("get",)), st.just(("get",)), st.just(("kick",)), st.just(("need",)), st.just(("enable",)),
                    st.tuples(st.just("used"), small, st.integers(0, 70)),
                    st.tuples(st.just("poke"), st.sampled_from(WHERE), small, val),
                    st.tuples(st.just("poke"), st.sampled_from(WHERE), small, val),
                    st.tuples(st.just("edge"), st.integers(0, 7), st.integers(-2, 2)))
    return st.lists(one, min_size=10, max_size=80)


def _run_split(pair: SplitPair, ops: list) -> None:
    held = []
    for o in ops:
        if o[0] == "used" and held and o[1] % 2 == 0:        # mostly honest completions
            h, wl = held.pop(o[1] % len(held))
            o = ("used", h, min(o[2], wl))
        m, f = pair.op(o)
        if o[0] == "pop" and m[0] is None:
            held.append((m[1][0], sum(n for _, n in m[1][2])))
        pair.check(o, m, f)


@pytest.mark.parametrize("N", [256, 32768])
def test_split_side_by_side(N):
    pair0 = SplitPair(N)                       # built once: the module, and a fresh ring per example
    del pair0

    @settings(max_examples=300 if N == 256 else 20, deadline=None, suppress_health_check=list(HealthCheck))
    @given(ops_strategy(N), st.booleans())
    def run(ops, indirect):
        _run_split(SplitPair(N, indirect=indirect), ops)
    run()


def _model_round_trips(p, n, seg, depth, copy_, add, serve, get):
    """The bench's loop (``vpeer_ring_bench``'s) on the model: refill to ``depth``, kick, serve, notify, drain."""
    added = done = 0
    while done < n:
        while added - done < depth and added < n:
            a = p.data + (added % depth) * 2 * seg
            try:
                add([(a, seg)], [(a + seg, seg)], added + 1)
            except errors.Exhausted:
                break
            added += 1
        p.drv.kick_prepare()
        serve(copy_)
        p.dev.need_notify()
        while get() is not None:
            done += 1


def test_split_round_trips_batch_equal_model():
    """The batch driver (``split_rt``, the bench's loop) leaves the same bytes and states as the model's loop."""
    N = 256

    def serve(p, copy_):
        while True:
            while (c := p.dev.next_chain()) is not None:
                if copy_:
                    p.dev.write(c, p.dev.read(c))
                p.dev.add_used(c.head, 64)
            if p.dev.enable_notify():
                break
    for depth, copy_, ind in ((1, 0, False), (N // 2, 0, False), (1, 0, True), (3, 1, False)):
        p = SplitPair(N, indirect=ind, build=False)
        _model_round_trips(p, 300, 64, depth, copy_, p.drv.add_buf, lambda c: serve(p, c), p.drv.get_buf)
        q = SplitPair(N, indirect=ind)
        assert fr.split_round_trips(q.f, q.fd, q.fv, q.data, 64, 300, depth, copy_) == 0
        assert bytes(q.fm) == bytes(p.mem.buf)
        assert same_state(q.f, "drv", q.fd.arrays, p.drv.state) is None
        assert same_state(q.f, "dev", q.fv.arrays, p.dev.state) is None


# ------------------------------------------------------------------------------------- exhaustive

TINY = 4
DEPTH = 3
ALPHABET = ([("add", 1, 1, 0, [8]), ("add", 1, 0, 1, [4]), ("add", 2, 1, 2, [4, 64]), ("kick",), ("get",), ("pop",),
             ("need",), ("enable",)] + [("used", h, ln) for h in range(TINY + 1) for ln in (0, 8, 9)] +
            [("poke", "avail_idx", 0, 5), ("poke", "desc_flags", 0, 1), ("poke", "desc_next", 0, 9),
             ("poke", "desc_flags", 0, 4), ("poke", "used_idx", 0, 1), ("poke", "used_id", 0, 3),
             ("poke", "avail_ring", 0, 7), ("poke", "desc_len", 0, 17)])


def test_split_exhaustive_tiny():
    """Every state reachable in DEPTH steps of ALPHABET at queue size 4 (indirect on), every op from each."""
    base = SplitPair(TINY, indirect=True, build=True)
    seen, frontier, steps = set(), [base], 0
    for _ in range(DEPTH):
        nxt = []
        for p in frontier:
            for o in ALPHABET:
                q = copy.deepcopy(_model_only(p))
                q.fast_from_model()
                m, f = q.op(o)
                q.check(o, m, f)
                steps += 1
                key = (bytes(q.mem.buf), norm_drv(q.drv.state), q.dev.state, q.drv.broken, q.dev.broken)
                if key not in seen:
                    seen.add(key)
                    nxt.append(q)
        frontier = nxt
    assert len(seen) > 100 and steps > 1000, (len(seen), steps)
    print(f"split exhaustive: {len(seen)} states, {steps} steps")


def _model_only(p: SplitPair) -> SplitPair:
    for a in ("f", "fm", "fd", "fv"):
        p.__dict__.pop(a, None)
    return p


# ------------------------------------------------------------------------------------- Linux

def test_split_fast_matches_linux():
    """3000 random ops at 32768: fast driver + device vs virtio_ring.c + vringh.c (ring bytes, decisions)."""
    from linuxpeer import vring_peer
    vp = vring_peer()
    mism = fr.fast_vs_linux_split(vp, M, 3000, seed=7)
    assert mism == [], mism[:5]


# ------------------------------------------------------------------------------------- packed

class PackedPair:
    """Model packed driver + device over one FlatView, the fast path over a numpy copy of its bytes."""

    def __init__(self, N: int, indirect: bool = True, event_idx: bool = True, build: bool = True):
        self.N = N
        self.lay = packed.PackedLayout.contiguous(N, 0)
        self.arena = (self.lay.device + 4 + 4095) & ~4095
        self.data = self.arena + 16 * ARENA_MAX * N
        self.size = self.data + 64 * 256
        self.mem = FlatView(self.size)
        self.drv = packed.PackedDriver(self.mem, self.lay, N, event_idx=event_idx, indirect=indirect,
                                       indirect_gpa=self.arena, indirect_max=ARENA_MAX)
        self.dev = packed.PackedDevice(self.mem, self.lay, N, (0, self.size), event_idx=event_idx, indirect=indirect)
        self.k = 0
        if build:
            self.fast_from_model()

    def fast_from_model(self) -> None:
        self.f = fr.build(M, self.N)
        self.fm = np.frombuffer(bytearray(self.mem.buf), dtype=np.uint8).copy()
        self.fd = fr.FastPackedDriver(self.f, self.drv, self.fm)
        self.fv = fr.FastPackedDevice(self.f, self.dev, self.fm)

    _m = staticmethod(SplitPair._m)

    def op(self, o: tuple) -> tuple:
        kind = o[0]
        if kind == "add":
            _, n_out, n_in, base, lens = o
            segs = [(self.data + (base % 64) * 256 + 32 * j, lens[j % len(lens)]) for j in range(n_out + n_in)]
            out, inn = segs[:n_out], segs[n_out:]
            self.k += 1
            return self._m(lambda: self.drv.add(out, inn, self.k)), self.fd.add(out, inn)
        if kind == "kick":
            return self._m(self.drv.kick_prepare), self.fd.kick_prepare()
        if kind == "get":
            m = self._m(self.drv.get_used)
            f = self.fd.get_used()
            if m[0] is None and m[1] is not None:
                m = (None, None)            # tokens differ (the model's are ours); compare the state instead
                f = (f[0], None)
            return m, f
        if kind == "pop":
            m = self._m(self.dev.pop)
            if m[0] is None and m[1] is not None:
                c = m[1]
                m = (None, (c.id, c.readable, c.writable, c.ndesc))
            return m, self.fv.pop()
        if kind == "used":
            _, id, length = o
            return self._m(lambda: self.dev.push_used(id, length)), self.fv.push_used(id, length)
        if kind == "need":
            return self._m(self.dev.need_notify), self.fv.need_notify()
        if kind in ("poke", "edge"):
            if kind == "edge":
                _, idx, delta = o
                ln = int.from_bytes(self.mem.read(self.lay.desc + 16 * (idx % self.N) + 8, 4), "little")
                where, idx, val = "desc_addr", idx, (self.size - ln + delta) & ((1 << 64) - 1)
            else:
                _, where, idx, val = o
            a, w = self.poke_addr(where, idx)
            data = (val & ((1 << (8 * w)) - 1)).to_bytes(w, "little")
            self.mem.write(a, data)
            self.fm[a:a + w] = np.frombuffer(data, np.uint8)
            return (None, None), (None, None)
        raise AssertionError(kind)

    def poke_addr(self, where: str, idx: int) -> tuple:
        d = self.lay.desc + 16 * (idx % self.N)
        t = self.arena + 16 * (idx % (ARENA_MAX * self.N))
        return {"desc_addr": (d, 8), "desc_len": (d + 8, 4), "desc_id": (d + 12, 2), "desc_flags": (d + 14, 2),
                "drv_off": (self.lay.driver, 2), "drv_flags": (self.lay.driver + 2, 2),
                "dev_off": (self.lay.device, 2), "dev_flags": (self.lay.device + 2, 2),
                "table_len": (t + 8, 4), "table_flags": (t + 14, 2), "table_addr": (t, 8)}[where]

    def check(self, o: tuple, m: tuple, f: tuple) -> None:
        assert m == f, (o, m, f)
        assert bytes(self.fm) == bytes(self.mem.buf), (o, "memory bytes")
        assert same_state(self.f, "pdrv", self.fd.arrays, self.drv.state) is None, (o, "driver state")
        assert same_state(self.f, "pdev", self.fv.arrays, self.dev.state) is None, (o, "device state")
        assert int(self.fd.px[0]) == self.drv.free_head, (o, "free head")


PWHERE = ["desc_addr", "desc_len", "desc_id", "desc_flags", "drv_off", "drv_flags", "dev_off", "dev_flags",
          "table_len", "table_flags", "table_addr"]


def packed_ops(N: int):
    small = st.one_of(st.integers(0, 7), st.integers(0, 3 * N))
    val = st.one_of(st.integers(0, 8), st.integers(0, 2 * N), st.integers(0, (1 << 32) - 1),
                    st.sampled_from([0x80, 0x8000, 0x8080, 0x81, 0x8001, 0x84, 0x82, 0x8002, 0xFFFF, 16, 32, 2, 1]))
    add = st.tuples(st.just("add"), st.integers(0, 3), st.integers(0, 3), st.integers(0, 63),
                    st.lists(st.integers(0, 64), min_size=1, max_size=4)).filter(lambda t: t[1] + t[2] > 0)
    honest = st.tuples(st.just("used"), st.integers(0, 3 * N).map(lambda x: 2 * x), st.integers(0, 70))
    one = st.one_of(add, add, add, st.just(("pop",)), st.just(("pop",)), st.just(("pop",)), honest, honest,
                    st.just(("get",)), st.just(("get",)), st.just(("kick",)), st.just(("need",)),
                    st.tuples(st.just("used"), small, st.integers(0, 70)),
                    st.tuples(st.just("poke"), st.sampled_from(PWHERE), small, val),
                    st.tuples(st.just("poke"), st.sampled_from(PWHERE), small, val),
                    st.tuples(st.just("edge"), st.integers(0, 7), st.integers(-2, 2)))
    return st.lists(one, min_size=10, max_size=80)


def _run_packed(pair: PackedPair, ops: list) -> None:
    held = []
    for o in ops:
        if o[0] == "used" and held and o[1] % 2 == 0:
            h, wl = held.pop(o[1] % len(held))
            o = ("used", h, min(o[2], wl))
        m, f = pair.op(o)
        if o[0] == "pop" and m[0] is None and m[1] is not None:
            held.append((m[1][0], sum(n for _, n in m[1][2])))
        pair.check(o, m, f)


@pytest.mark.parametrize("N", [256, 32768])
def test_packed_side_by_side(N):
    PackedPair(N)

    @settings(max_examples=300 if N == 256 else 20, deadline=None, suppress_health_check=list(HealthCheck))
    @given(packed_ops(N), st.booleans())
    def run(ops, indirect):
        _run_packed(PackedPair(N, indirect=indirect), ops)
    run()


def test_packed_round_trips_batch_equal_model():
    N = 256

    def serve(p, copy_):
        while (c := p.dev.pop()) is not None:
            if copy_:
                p.dev.write(c, p.dev.read(c))
            p.dev.push_used(c.id, 64)
    for depth, copy_, ind in ((1, 0, False), (N // 2, 0, False), (1, 0, True), (3, 1, False)):
        p = PackedPair(N, indirect=ind, build=False)
        _model_round_trips(p, 300, 64, depth, copy_, p.drv.add, lambda c: serve(p, c), p.drv.get_used)
        q = PackedPair(N, indirect=ind)
        assert fr.packed_round_trips(q.f, q.fd, q.fv, q.data, 64, 300, depth, copy_) == 0
        assert bytes(q.fm) == bytes(p.mem.buf)
        assert same_state(q.f, "pdrv", q.fd.arrays, p.drv.state) is None
        assert same_state(q.f, "pdev", q.fv.arrays, p.dev.state) is None



PALPHABET = ([("add", 1, 1, 0, [8]), ("add", 1, 0, 1, [4]), ("add", 2, 1, 2, [4, 64]), ("kick",), ("get",), ("pop",),
              ("need",)] + [("used", h, ln) for h in range(TINY + 1) for ln in (0, 8, 9)] +
             [("poke", "desc_flags", 0, 0x8080), ("poke", "desc_flags", 1, 0x81), ("poke", "desc_flags", 0, 0x84),
              ("poke", "desc_id", 0, 3), ("poke", "desc_len", 0, 17), ("poke", "drv_flags", 0, 2),
              ("poke", "dev_flags", 0, 2), ("poke", "dev_off", 0, 1), ("edge", 0, 0), ("edge", 0, 1)])


def test_packed_exhaustive_tiny():
    """Every state reachable in DEPTH steps of PALPHABET at queue size 4 (indirect on), every op from each."""
    base = PackedPair(TINY, indirect=True)
    seen, frontier, steps = set(), [base], 0
    for _ in range(DEPTH):
        nxt = []
        for p in frontier:
            for o in PALPHABET:
                q = copy.deepcopy(_model_only(p))
                q.fast_from_model()
                m, f = q.op(o)
                q.check(o, m, f)
                steps += 1
                key = (bytes(q.mem.buf), q.drv.state, q.dev.state, q.drv.free_head, tuple(q.drv.next_id))
                if key not in seen:
                    seen.add(key)
                    nxt.append(q)
        frontier = nxt
    assert len(seen) > 100 and steps > 1000, (len(seen), steps)
    print(f"packed exhaustive: {len(seen)} states, {steps} steps")
