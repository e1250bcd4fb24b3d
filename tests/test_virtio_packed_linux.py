"""Differential tests of the packed virtqueue against Linux 6.1.y's virtio_ring.c packed driver.

1. Linux's packed driver with the model's packed device on the same bytes: every list the device
   pops is exactly the buffer Linux added (elements and payload bytes), every used buffer Linux
   takes back is the one the device completed (token, length, written bytes), kicks follow the
   device area, for sizes that are not powers of two and out-of-order completion.
2. The model's driver and Linux's driver fed the same operations (``DriverPair``), each against a
   model device on its own memory: descriptor ring bytes (addr, len, id, flags per slot; indirect
   table entries), both event suppression areas, wrap counters, next_avail / last_used, num_free,
   the event mode, every kick decision and every return value compared after every operation.
   Random sequences, a Hypothesis-driven one, honest traffic that crosses the ring end many times
   (both wrap counters flip at every lap) and the notification calls (disable_cb, enable_cb_prepare,
   poll, enable_cb, kick_prepare) made while buffers are pending, with and without EVENT_IDX.
Both 1 and 2 also run at the largest queue size (32768, where a position needs all 16 bits of the
event arithmetic): a fast-forward of long lists first brings both sides near the ring end, so the
compared operations cross the wrap; there the indirect tables compared are those of the ids just
added (a whole-arena scan per operation would cost the queue size).

No loop here can hang: every loop is bounded (``Budget``: a loop whose progress fingerprint stops
changing, or that runs past its limit, fails with ``Stalled``; the inner "drain" loops are bounded by
the queue size). A failure names the model's clause (``ModelError.clause``) or the field that differs,
with the step, both sides' positions and wrap counters, the descriptors at those positions (decoded
and raw) and the operation sequence. ``tests/test_virtio_packed_hostile_linux.py`` holds the hostile
device cases. The peer is skipped with its reason when it cannot be built here (tests/linuxpeer.py).
"""
from __future__ import annotations

import itertools
import random
from collections import deque
from typing import Any, Callable, NamedTuple

import pytest
from hypothesis import given, settings, strategies as st

from linuxpeer import vring_peer
from t1virtio import errors
from t1virtio.hyp.memview import FlatView, write_le
from t1virtio.virtio import packed as pk

SIZE = 0x80000
RING = 0x1000
ARENA = 0x10000
DATA = 0x30000
AREA = 0x800
IND_MAX = 6
CASES = [(7, ""), (12, "ev"), (33, "ind"), (64, "ev+ind"), (100, "ev+ind")]
LARGE = [(32768, "ev+ind"), (32768, "")]
FF_LIST = 64              # elements per list in a fast-forward (direct: more than IND_MAX)
FF_MARGIN = 24            # a fast-forward stops this many slots before the ring end
PATIENCE = 200            # iterations of a random loop without progress before it fails (honest: ~0.75^200)
COMPARED = {"linux-driver/model-device": 0, "model-driver/linux-driver": 0, "wrap laps": 0,
            "notification calls": 0}
MODES = {pk.RING_EVENT_FLAGS_ENABLE: "ENABLE", pk.RING_EVENT_FLAGS_DISABLE: "DISABLE", pk.RING_EVENT_FLAGS_DESC: "DESC"}


class Mem(NamedTuple):
    """One test's guest memory map: ring, indirect arena (num * IND_MAX entries), data areas."""

    size: int
    arena: int
    data: int
    areas: int


def _mem(num):
    """The small cases' fixed map, or one sized to the ring (arena after the ring, then the data)."""
    if num <= 100:
        return Mem(SIZE, ARENA, DATA, num)
    arena = (RING + 16 * num + 8 + 0xFFF) & ~0xFFF
    data = arena + num * IND_MAX * 16
    return Mem(data + 64 * AREA, arena, data, 64)


def _ids(cases):
    return [f"{n}-{t or 'plain'}" for n, t in cases]


def _features(vp, tags):
    f = vp.F_VERSION_1 | vp.F_RING_PACKED
    if "ev" in tags:
        f |= vp.F_EVENT_IDX
    if "ind" in tags:
        f |= vp.F_INDIRECT_DESC
    return f


def _layout(vp, num):
    lay = vp.packed_layout(num, base=RING)
    return lay, pk.PackedLayout(lay["desc"], lay["driver"], lay["device"])


def _request(rnd, m, area):
    base = m.data + area * AREA
    nout, nin = rnd.randint(0, 3), rnd.randint(0, 3)
    if nout + nin == 0:
        nout = 1
    out = [(base + 128 * k, rnd.randint(1, 100)) for k in range(nout)]
    inn = [(base + 0x400 + 128 * k, rnd.randint(1, 100)) for k in range(nin)]
    return out, inn


# ---------------------------------------------------------------------------------------------
# Bounded loops and failure reports
# ---------------------------------------------------------------------------------------------

class Stalled(AssertionError):
    """A differential loop stopped making progress (or ran past its limit); the message says what it saw."""


class Ops:
    """The operation sequence of one test (the last ``keep`` entries, numbered), for failure messages."""

    def __init__(self, keep=40):
        self.n, self.last = 0, deque(maxlen=keep)

    def __call__(self, text):
        self.n += 1
        self.last.append(f"{self.n}: {text}")

    def __str__(self):
        skipped = self.n - len(self.last)
        return (f"operations ({self.n}; {'last ' + str(len(self.last)) if skipped else 'all'}):\n  "
                + "\n  ".join(self.last))


def _flags_text(flags):
    names = [n for bit, n in ((pk.VIRTQ_DESC_F_AVAIL, "AVAIL"), (pk.VIRTQ_DESC_F_USED, "USED"),
                              (pk.VIRTQ_DESC_F_NEXT, "NEXT"), (pk.VIRTQ_DESC_F_WRITE, "WRITE"),
                              (pk.VIRTQ_DESC_F_INDIRECT, "INDIRECT")) if flags & bit]
    return f"{flags:#06x}[{'|'.join(names)}]"


def desc_text(view, play, num, slot):
    """Descriptor ``slot`` decoded, with its 16 raw bytes."""
    slot %= num
    a = play.desc + 16 * slot
    d = pk.read_desc(view, a)
    return f"slot {slot}: addr={d.addr:#x} len={d.len} id={d.id} flags={_flags_text(d.flags)} raw={view.read(a, 16).hex()}"


def area_text(view, addr):
    flags, off, wrap = pk.read_event(view, addr)
    return f"off={off} wrap={int(wrap)} flags={MODES.get(flags, flags)} raw={view.read(addr, 4).hex()}"


def linux_pos(drv):
    s = drv.state()
    return (f"linux driver: next_avail={s['avail_idx_shadow']} avail_wrap={s['avail_wrap_counter']} "
            f"last_used={s['last_used_idx']} used_wrap={s['used_wrap_counter']} num_free={s['num_free']} "
            f"event_flags={MODES.get(s['avail_flags_shadow'], s['avail_flags_shadow'])} broken={s['broken']} "
            f"log={drv.log()}")


def model_driver_pos(d):
    return (f"model driver: next_avail={d.next_avail} avail_wrap={int(d.avail_wrap)} last_used={d.last_used} "
            f"used_wrap={int(d.used_wrap)} num_free={d.num_free} event_flags={MODES.get(d.event_flags, d.event_flags)}")


def model_device_pos(v):
    return (f"model device: next_avail={v.next_avail} avail_wrap={int(v.avail_wrap)} next_used={v.next_used} "
            f"used_wrap={int(v.used_wrap)} in_flight={v.in_flight}")


class Budget:
    """Bounds a differential loop: ``tick(fingerprint)`` once per iteration; the loop fails with
    ``Stalled`` when the fingerprint (what progress means for that loop) stays the same for
    ``patience`` iterations, or after ``limit`` iterations. ``snapshot()`` describes both sides."""

    def __init__(self, what: str, snapshot: Callable[[], str], ops: Ops, *, patience=PATIENCE, limit=100_000):
        self.what, self.snapshot, self.ops = what, snapshot, ops
        self.patience, self.limit = patience, limit
        self.steps, self.idle, self.key = 0, 0, None

    def tick(self, key: Any) -> None:
        self.steps += 1
        if key != self.key:
            self.key, self.idle = key, 0
        else:
            self.idle += 1
        if self.idle >= self.patience:
            raise Stalled(self.report(f"no progress for {self.idle} iterations"))
        if self.steps > self.limit:
            raise Stalled(self.report(f"ran past its limit of {self.limit} iterations"))

    def report(self, why: str) -> str:
        return f"{self.what}: {why} at step {self.steps}\n{self.snapshot()}\n{self.ops}"


def drain(fn: Callable[[], Any], bound: int, budget: Budget, what: str) -> list:
    """Call ``fn`` until it returns None, at most ``bound`` times (a ring holds at most num buffers)."""
    got = []
    for _ in range(bound):
        r = fn()
        if r is None:
            return got
        got.append(r)
    raise Stalled(budget.report(f"{what} still returned buffers after {bound} calls"))


def model_call(budget: Budget, what: str, fn: Callable, *args, expect=()):
    """Run a model operation; a refusal not in ``expect`` fails naming the clause the model reported."""
    try:
        return fn(*args)
    except expect:
        raise
    except errors.ModelError as e:
        raise AssertionError(f"{budget.what}: the model refused {what} with clause {e.clause}\n  {e}\n"
                             f"{budget.snapshot()}\n{budget.ops}") from e


def _fast_forward(num, m, add, pops_and_gets):
    """Round trips of up to FF_LIST one-byte readable elements (direct descriptors) until the next
    list would start FF_MARGIN slots before the ring end; ``add(out)`` returns 0 on success,
    ``pops_and_gets()`` completes it on every side. Returns the round trips made (bounded: each one
    advances by at least one slot)."""
    pos, trips = 0, 0
    while pos < num - FF_MARGIN:
        n = min(FF_LIST, num - FF_MARGIN - pos)
        assert add([(m.data + k, 1) for k in range(n)]) == 0, f"fast-forward add at {pos}"
        pops_and_gets()
        pos, trips = pos + n, trips + 1
    return trips


# ---------------------------------------------------------------------------------------------
# 1. Linux's driver, the model's device, one memory
# ---------------------------------------------------------------------------------------------

def _linux_driver_with_model_device(num, tags, target, *, patience=PATIENCE):
    vp = vring_peer()
    rnd = random.Random(num)
    m = _mem(num)
    buf = bytearray(m.size)
    mem, view = vp.GuestMemory(buffer=buf), FlatView(buf)
    lay, play = _layout(vp, num)
    drv = vp.Driver(mem, num, _features(vp, tags), layout=lay, indirect_gpa=m.arena, indirect_max=IND_MAX)
    dev = pk.PackedDevice(view, play, num, (m.arena, m.size), event_idx="ev" in tags, indirect="ind" in tags,
                          max_chain=IND_MAX)
    ops = Ops()

    def snapshot():
        s, v = drv.state(), dev.state
        slots = sorted({s["last_used_idx"], v.next_avail, (v.next_used - 1) % num, v.next_used})
        return "\n".join([linux_pos(drv), model_device_pos(v)] + ["  " + desc_text(view, play, num, k) for k in slots]
                         + ["  driver area " + area_text(view, play.driver), "  device area " + area_text(view, play.device)])

    budget = Budget(f"linux driver / model device, size {num} {tags or 'plain'}", snapshot, ops, patience=patience,
                    limit=target * 100)
    if num > 100:
        def complete():
            ch = model_call(budget, "pop (fast-forward)", dev.pop)
            model_call(budget, "push_used (fast-forward)", dev.push_used, ch.id, 0)
            assert drv.get_buf() == (1, 0) and dev.pop() is None, budget.report("fast-forward round trip")
        _fast_forward(num, m, lambda out: drv.add(out, [], 1), complete)
        ops(f"fast-forward to {num - FF_MARGIN}")
        assert drv.state()["avail_idx_shadow"] == dev.state.next_avail == num - FF_MARGIN, budget.report("fast-forward")
    free, inflight, held, token, done = list(range(m.areas)), {}, [], 0, 0
    while done < target:
        s = drv.state()
        budget.tick((done, s["avail_idx_shadow"], s["avail_wrap_counter"], s["last_used_idx"], s["num_free"],
                     dev.state.next_avail, dev.state.next_used, len(held)))
        r = rnd.random()
        if r < 0.4 and free:
            area = free[-1]
            out, inn = _request(rnd, m, area)
            payload = rnd.randbytes(sum(n for _, n in out))
            k = 0
            for a, n in out:
                view.write(a, payload[k:k + n])
                k += n
            token += 1
            rc = drv.add(out, inn, token)
            ops(f"linux add out={len(out)} in={len(inn)} token={token} -> {rc}")
            if rc != 0:
                assert rc == -28, budget.report(f"linux add returned {rc}")
                continue
            free.pop()
            inflight[token] = (area, out, inn, payload)
            mode = rnd.choice([pk.RING_EVENT_FLAGS_ENABLE, pk.RING_EVENT_FLAGS_DISABLE] +
                              ([pk.RING_EVENT_FLAGS_DESC] if "ev" in tags else []))
            model_call(budget, f"set_event {MODES[mode]}", dev.set_event, mode)
            kick = drv.kick_prepare()
            ops(f"device set_event {MODES[mode]}; linux kick_prepare -> {kick}")
            if mode != pk.RING_EVENT_FLAGS_DESC:
                assert kick == (mode == pk.RING_EVENT_FLAGS_ENABLE), budget.report(f"kick {kick} under {MODES[mode]}")
            COMPARED["linux-driver/model-device"] += 2
        elif r < 0.65:
            for ch in drain(lambda: model_call(budget, "pop", dev.pop), num + 1, budget, "model device pop"):
                tok = drv.desc_info(ch.id)["token"]
                ops(f"device pop id={ch.id} ndesc={ch.ndesc} (linux token {tok})")
                assert tok in inflight, budget.report(f"device popped id {ch.id}, Linux has token {tok} there")
                area, out, inn, payload = inflight[tok]
                assert ch.readable == out and ch.writable == inn, budget.report(f"elements {ch} vs {out} {inn}")
                assert dev.read(ch) == payload, budget.report(f"payload of id {ch.id}")
                held.append((ch, tok))
                COMPARED["linux-driver/model-device"] += 1
        elif r < 0.9 and held:
            ch, tok = held.pop(rnd.randrange(len(held)))           # out of order
            data = rnd.randbytes(rnd.randint(0, sum(n for _, n in ch.writable)))
            wrote = dev.write(ch, data)
            model_call(budget, f"push_used id {ch.id}", dev.push_used, ch.id, wrote)
            ops(f"device push_used id={ch.id} len={wrote}")
            for gtok, glen in drain(drv.get_buf, num + 1, budget, "linux get_buf"):
                ops(f"linux get_buf -> token={gtok} len={glen}")
                assert gtok in inflight, budget.report(f"linux get_buf returned unknown token {gtok}")
                area, out, inn, _ = inflight.pop(gtok)
                assert glen == wrote if gtok == tok else True, budget.report(f"length {glen} != {wrote}")
                free.append(area)
                done += 1
            assert b"".join(view.read(a, n) for a, n in inn)[:wrote] == data[:wrote], budget.report("written bytes")
            COMPARED["linux-driver/model-device"] += 2
        else:
            ops(f"device need_notify -> {dev.need_notify()}")
    assert drv.log()[0] == 0, budget.report(f"virtio_ring.c complained: {drv.log()}")
    return drv.state()


@pytest.mark.parametrize("num,tags", CASES, ids=_ids(CASES))
def test_linux_driver_with_model_device(num, tags):
    _linux_driver_with_model_device(num, tags, 400)


@pytest.mark.parametrize("num,tags", LARGE, ids=_ids(LARGE))
def test_linux_driver_with_model_device_at_the_largest_size(num, tags):
    st_ = _linux_driver_with_model_device(num, tags, 150)
    assert st_["avail_idx_shadow"] < num - FF_MARGIN and not st_["avail_wrap_counter"], "never crossed the ring end"


# ---------------------------------------------------------------------------------------------
# 2. The model's driver against Linux's driver, same operations, separate memories
# ---------------------------------------------------------------------------------------------

def _table(view, d):
    """Entries (addr, len, flags) of the indirect table descriptor ``d`` points to (id field ignored:
    Linux leaves it as kmalloc'd)."""
    return [(e.addr, e.len, e.flags) for e in (pk.read_desc(view, d.addr + 16 * k) for k in range(d.len // 16))]


class DriverPair:
    """Linux's packed driver and the model's, each over its own memory with its own model device
    (``ldev``, ``mdev``: honest, identical), driven with the same operations.

    ``diff()`` lists every field that differs (``desc[k].flags``, ``driver_area.off_wrap``,
    ``avail_wrap``, ``num_free``, a return value ...); ``check(what)`` fails with that list, both
    sides' positions, the descriptors there and the operation sequence. Model refusals fail naming
    their clause (``model_call``)."""

    def __init__(self, num, tags, *, m=None):
        vp = self.vp = vring_peer()
        self.num, self.tags, self.m = num, tags, m or _mem(num)
        self.small = num <= 100
        self.event, self.indirect = "ev" in tags, "ind" in tags
        sides = []
        for _ in range(2):
            buf = bytearray(self.m.size)
            view = FlatView(buf)
            lay, play = _layout(vp, num)
            dev = pk.PackedDevice(view, play, num, (self.m.arena, self.m.size), event_idx=self.event,
                                  indirect=self.indirect, max_chain=IND_MAX)
            sides.append((buf, view, lay, play, dev))
        (self.lbuf, self.lview, lay, self.play, self.ldev), (self.mbuf, self.mview, _, _, self.mdev) = sides
        self.linux = vp.Driver(vp.GuestMemory(buffer=self.lbuf), num, _features(vp, tags), layout=lay,
                               indirect_gpa=self.m.arena, indirect_max=IND_MAX)
        self.model = pk.PackedDriver(self.mview, self.play, num, event_idx=self.event, indirect=self.indirect,
                                     indirect_gpa=self.m.arena, indirect_max=IND_MAX)
        self.ops = Ops()
        self.budget = Budget(f"model driver / linux driver, size {num} {tags or 'plain'}", self.snapshot, self.ops)
        self.held: list = []
        self.token = self.n_checks = 0
        self.laps = [0, 0]                  # avail / used wrap counter flips seen (model side)

    # -- observation -------------------------------------------------------------------------
    def snapshot(self) -> str:
        s, d = self.linux.state(), self.model.state
        slots = sorted({s["last_used_idx"], d.last_used, s["avail_idx_shadow"], d.next_avail,
                        (d.next_avail - 1) % self.num})
        lines = [linux_pos(self.linux), model_driver_pos(d)]
        for k in slots:
            lines += [f"  linux {desc_text(self.lview, self.play, self.num, k)}",
                      f"  model {desc_text(self.mview, self.play, self.num, k)}"]
        lines += [f"  linux driver area {area_text(self.lview, self.play.driver)}",
                  f"  model driver area {area_text(self.mview, self.play.driver)}",
                  f"  device area {area_text(self.mview, self.play.device)}"]
        return "\n".join(lines)

    def diff(self, head=None) -> list[str]:
        """Every field that differs between the two drivers, by name (empty: they agree)."""
        out = []
        lv, mv, play, num = self.lview, self.mview, self.play, self.num
        lring, mring = lv.read(play.desc, 16 * num), mv.read(play.desc, 16 * num)
        if lring != mring:
            for k in range(num):
                lb, mb = lring[16 * k:16 * k + 16], mring[16 * k:16 * k + 16]
                if lb != mb:
                    ld, md = pk.read_desc(lv, play.desc + 16 * k), pk.read_desc(mv, play.desc + 16 * k)
                    for f in ("addr", "len", "id", "flags"):
                        a, b = getattr(ld, f), getattr(md, f)
                        if a != b:
                            fa, fb = (_flags_text(a), _flags_text(b)) if f == "flags" else (a, b)
                            out.append(f"desc[{k}].{f}: linux {fa} model {fb}")
                if len(out) > 12:
                    break
        descs = [pk.read_desc(mv, play.desc + 16 * k) for k in range(num)] if self.small else \
            ([pk.read_desc(mv, play.desc + 16 * head)] if head is not None else [])
        for d in descs:
            if d.flags & pk.VIRTQ_DESC_F_INDIRECT and d.len % 16 == 0 and self.m.arena <= d.addr < self.m.data:
                lt, mt = _table(lv, d), _table(mv, d)
                if lt != mt:
                    out.append(f"indirect table at {d.addr:#x}: linux {lt} model {mt}")
        for area in ("driver", "device"):
            a = getattr(play, area)
            lb, mb = lv.read(a, 4), mv.read(a, 4)
            for name, lo in (("off_wrap", 0), ("flags", 2)):
                if lb[lo:lo + 2] != mb[lo:lo + 2]:
                    out.append(f"{area}_area.{name}: linux {int.from_bytes(lb[lo:lo + 2], 'little'):#06x} "
                               f"model {int.from_bytes(mb[lo:lo + 2], 'little'):#06x}")
        s, d = self.linux.state(), self.model.state
        for name, lval, mval in (("next_avail", s["avail_idx_shadow"], d.next_avail),
                                 ("avail_wrap", bool(s["avail_wrap_counter"]), d.avail_wrap),
                                 ("num_free", s["num_free"], d.num_free),
                                 ("last_used", s["last_used_idx"], d.last_used),
                                 ("used_wrap", bool(s["used_wrap_counter"]), d.used_wrap),
                                 ("event_flags", s["avail_flags_shadow"], d.event_flags),
                                 ("broken", bool(s["broken"]), False)):
            if lval != mval:
                out.append(f"{name}: linux {lval} model {mval}")
        return out

    def check(self, what, head=None):
        self.n_checks += 1
        d = self.diff(head)
        if d:
            raise AssertionError(f"{self.budget.what}: after {what}, these differ:\n  " + "\n  ".join(d) +
                                 f"\n{self.snapshot()}\n{self.ops}")

    def same(self, what, lval, mval):
        """Two return values of the same call must agree."""
        if lval != mval:
            raise AssertionError(f"{self.budget.what}: {what} returned linux {lval!r} model {mval!r}\n"
                                 f"{self.snapshot()}\n{self.ops}")

    def _laps(self, before):
        d = self.model.state
        self.laps[0] += d.avail_wrap != before.avail_wrap
        self.laps[1] += d.used_wrap != before.used_wrap

    # -- operations (each compares return values, then everything) ----------------------------
    def add(self, out, inn, check=True):
        self.token += 1
        before, head = self.model.state, self.model.state.next_avail
        rc = self.linux.add(out, inn, self.token)
        try:
            model_call(self.budget, "add", self.model.add, out, inn, self.token, expect=errors.Exhausted)
            mrc = 0
        except errors.Exhausted:
            mrc = -28
        self.ops(f"add out={[n for _, n in out]} in={[n for _, n in inn]} token={self.token} -> linux {rc} model {mrc}")
        self.same("add", rc, mrc)
        self._laps(before)
        if check:
            self.check("add", head)
        return rc

    def set_event(self, mode, ow=None):
        model_call(self.budget, f"device set_event {mode}", self.ldev.set_event, mode)
        model_call(self.budget, f"device set_event {mode}", self.mdev.set_event, mode)
        if ow is not None:
            write_le(self.lview, self.play.device, 2, ow)
            write_le(self.mview, self.play.device, 2, ow)
        self.ops(f"device set_event {MODES.get(mode, mode)}" + (f" off_wrap={ow:#06x}" if ow is not None else ""))

    def kick_prepare(self):
        lk, mk = self.linux.kick_prepare(), model_call(self.budget, "kick_prepare", self.model.kick_prepare)
        self.ops(f"kick_prepare -> linux {lk} model {mk}")
        self.same("kick_prepare", lk, mk)
        self.check("kick_prepare")
        return lk

    def pop_all(self):
        def one():
            lc = model_call(self.budget, "pop (linux side)", self.ldev.pop)
            mc = model_call(self.budget, "pop (model side)", self.mdev.pop)
            self.same("device pop", lc, mc)
            return lc
        got = drain(one, self.num + 1, self.budget, "device pop")
        self.ops(f"device pop x{len(got)}: ids {[c.id for c in got]}")
        self.held += got
        return got

    def complete(self, ch, length):
        model_call(self.budget, f"push_used {ch.id}", self.ldev.push_used, ch.id, length)
        model_call(self.budget, f"push_used {ch.id}", self.mdev.push_used, ch.id, length)
        self.ops(f"device push_used id={ch.id} len={length}")

    def get(self):
        before = self.model.state
        lg, mg = self.linux.get_buf(), model_call(self.budget, "get_used", self.model.get_used)
        self.ops(f"get_buf -> linux {lg} model {mg}")
        self.same("get_buf", lg, mg)
        self._laps(before)
        self.check("get_buf")
        return lg

    def get_all(self):
        return drain(self.get, self.num + 1, self.budget, "get_buf")

    def disable_cb(self):
        self.linux.disable_cb()
        model_call(self.budget, "disable_cb", self.model.disable_cb)
        self.ops("disable_cb")
        self.check("disable_cb")

    def enable_cb(self):
        lr, mr = self.linux.enable_cb(), model_call(self.budget, "enable_cb", self.model.enable_cb)
        self.ops(f"enable_cb -> linux {lr} model {mr}")
        self.same("enable_cb", lr, mr)
        self.check("enable_cb")
        return lr

    def enable_cb_prepare(self):
        """Linux's enable_cb_prepare returns last_used_idx (offset | wrap << 15); the model's enable_cb
        core step (packed_enable_cb) writes the same bytes and returns that position; its poll is
        ``more_used`` (Linux ``virtqueue_poll``)."""
        lr = self.linux.enable_cb_prepare()
        model_call(self.budget, "enable_cb", self.model.enable_cb)
        mr = pk.off_wrap(*self.model.last_out)
        self.ops(f"enable_cb_prepare -> linux {lr:#06x} model {mr:#06x}")
        self.same("enable_cb_prepare", lr, mr)
        self.check("enable_cb_prepare")
        lp, mp = self.linux.poll(lr), self.model.more_used()
        self.ops(f"poll({lr:#06x}) -> linux {lp} model {mp}")
        self.same("poll", lp, mp)
        return lr


def _model_driver_matches_linux_driver_bytes(num, tags, steps, *, seed=None):
    rnd = random.Random(1000 + num if seed is None else seed)
    p = DriverPair(num, tags)
    m = p.m
    if not p.small:
        def add(out):
            return p.add(out, [], check=False)

        def complete():
            ch = p.pop_all()[0]
            p.held.clear()
            p.complete(ch, 0)
            p.same("fast-forward get_buf", p.linux.get_buf(), model_call(p.budget, "get_used", p.model.get_used))
        _fast_forward(num, m, add, complete)
        p.check("fast-forward")
        assert p.model.state.next_avail == num - FF_MARGIN

    for step in range(steps):
        p.budget.tick(step)                  # a for loop: bounded by construction; ticks number the steps
        r = rnd.random()
        if r < 0.4:
            out, inn = _request(rnd, m, rnd.randrange(8))
            p.add(out, inn)
            mode = rnd.choice([pk.RING_EVENT_FLAGS_ENABLE, pk.RING_EVENT_FLAGS_DISABLE] +
                              ([pk.RING_EVENT_FLAGS_DESC] if p.event else []))
            ow = None
            if mode == pk.RING_EVENT_FLAGS_DESC and rnd.random() < 0.5:      # any event position
                ow = rnd.randrange(1 << 16) & ~(0x7FFF) | rnd.randrange(num)
            p.set_event(mode, ow)
            p.kick_prepare()
        elif r < 0.6:
            p.pop_all()
        elif r < 0.85 and p.held:
            ch = p.held.pop(rnd.randrange(len(p.held)))
            p.complete(ch, rnd.randint(0, sum(n for _, n in ch.writable)))
            p.get_all()
        elif r < 0.92:
            p.disable_cb()
        else:
            p.enable_cb()
    COMPARED["model-driver/linux-driver"] += p.n_checks
    return p.n_checks, p.model.state


@pytest.mark.parametrize("num,tags", CASES, ids=_ids(CASES))
def test_model_driver_matches_linux_driver_bytes(num, tags):
    n_ops, _ = _model_driver_matches_linux_driver_bytes(num, tags, 600)
    assert n_ops > 200


@pytest.mark.parametrize("num,tags", LARGE, ids=_ids(LARGE))
def test_model_driver_matches_linux_driver_bytes_at_the_largest_size(num, tags):
    n_ops, s = _model_driver_matches_linux_driver_bytes(num, tags, 300)
    assert n_ops > 100
    assert s.next_avail < num - FF_MARGIN and not s.avail_wrap and not s.used_wrap, "never crossed the ring end"


# -- the same comparison driven by Hypothesis (small sizes; a bounded shrink) ------------------

_OP = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 3), st.integers(0, 3), st.integers(1, 100),
              st.sampled_from([pk.RING_EVENT_FLAGS_ENABLE, pk.RING_EVENT_FLAGS_DISABLE, pk.RING_EVENT_FLAGS_DESC]),
              st.integers(0, (1 << 16) - 1)),
    st.tuples(st.just("pop")),
    st.tuples(st.just("complete"), st.integers(0, 63), st.integers(0, 300)),
    st.tuples(st.sampled_from(["get", "disable_cb", "enable_cb", "enable_cb_prepare", "kick"])))


def run_ops(p: DriverPair, ops_list) -> DriverPair:
    """Apply an operation list (the Hypothesis test's alphabet) to a pair; bounded by the list."""
    for op in ops_list:
        p.budget.tick(p.ops.n)
        kind = op[0]
        if kind == "add":
            _, nout, nin, ln, mode, ow = op
            nout = nout or (0 if nin else 1)
            base = p.m.data + (p.token % 8) * AREA
            p.add([(base + 128 * k, ln) for k in range(nout)], [(base + 0x400 + 128 * k, ln) for k in range(nin)])
            if mode == pk.RING_EVENT_FLAGS_DESC and not p.event:
                mode = pk.RING_EVENT_FLAGS_ENABLE
            p.set_event(mode, (ow & 0x8000) | (ow % p.num) if mode == pk.RING_EVENT_FLAGS_DESC else None)
            p.kick_prepare()
        elif kind == "pop":
            p.pop_all()
        elif kind == "complete" and p.held:
            ch = p.held.pop(op[1] % len(p.held))
            p.complete(ch, min(op[2], sum(n for _, n in ch.writable)))
        elif kind == "get":
            p.get_all()
        elif kind == "disable_cb":
            p.disable_cb()
        elif kind == "enable_cb":
            p.enable_cb()
        elif kind == "enable_cb_prepare":
            p.enable_cb_prepare()
        elif kind == "kick":
            p.kick_prepare()
    return p


@settings(deadline=None, max_examples=30)
@given(num=st.sampled_from([1, 2, 3, 5, 7, 8]), tags=st.sampled_from(["", "ev", "ind", "ev+ind"]),
       ops_list=st.lists(_OP, max_size=40))
def test_model_driver_matches_linux_driver_hypothesis(num, tags, ops_list):
    """Any operation sequence, small odd sizes. With INDIRECT, sizes of at least IND_MAX + 1 only:
    below that Linux uses an indirect table longer than the queue size, which the model refuses
    (§2.8.5: the device's default limit is the queue size; see the hostile file's divergence test)."""
    if "ind" in tags:
        num = max(num, IND_MAX + 1)
    p = run_ops(DriverPair(num, tags), ops_list)
    COMPARED["model-driver/linux-driver"] += p.n_checks


# ---------------------------------------------------------------------------------------------
# 3. Honest traffic crossing the ring end many times (both wrap counters flip at every lap)
# ---------------------------------------------------------------------------------------------

WRAP_CASES = [(3, ""), (5, "ev"), (7, "ev+ind"), (12, "ind")]


def _wrap_run(num, tags, laps, seed=7):
    """Lists of 1..num descriptors, completed in any order, until both wrap counters flipped ``laps``
    times; descriptor bytes and both event suppression areas compared after every operation, DESC
    offsets placed in the current and the next lap."""
    rnd = random.Random(seed + num)
    p = DriverPair(num, tags)
    while min(p.laps) < laps:
        p.budget.tick((p.model.state.next_avail, p.model.state.avail_wrap, p.model.state.last_used,
                       p.model.state.used_wrap, len(p.held), p.model.state.num_free))
        r = rnd.random()
        if r < 0.45:
            k = rnd.randint(1, num)
            nout = rnd.randint(0, k)
            base = p.m.data + (p.token % 8) * AREA
            p.add([(base + 16 * j, rnd.randint(1, 16)) for j in range(nout)],
                  [(base + 0x400 + 16 * j, rnd.randint(1, 16)) for j in range(k - nout)])
            if p.event and rnd.random() < 0.6:
                s = p.model.state
                slot, wrap = pk.advance(pk.CONCRETE, num, s.next_avail, s.avail_wrap, rnd.randrange(num))
                p.set_event(pk.RING_EVENT_FLAGS_DESC, pk.off_wrap(slot, wrap if rnd.random() < 0.8 else not wrap))
            else:
                p.set_event(rnd.choice([pk.RING_EVENT_FLAGS_ENABLE, pk.RING_EVENT_FLAGS_DISABLE]))
            p.kick_prepare()
        elif r < 0.65:
            p.pop_all()
            p.check("pop")
        elif r < 0.9 and p.held:
            for _ in range(rnd.randint(1, len(p.held))):
                ch = p.held.pop(rnd.randrange(len(p.held)))
                p.complete(ch, rnd.randint(0, sum(n for _, n in ch.writable)))
                p.check("push_used")
            p.get_all()
        elif r < 0.95:
            p.disable_cb()
        else:
            p.enable_cb()
    COMPARED["wrap laps"] += min(p.laps)
    COMPARED["model-driver/linux-driver"] += p.n_checks
    return p


@pytest.mark.parametrize("num,tags", WRAP_CASES, ids=_ids(WRAP_CASES))
def test_wrap_counters_flip_many_times(num, tags):
    p = _wrap_run(num, tags, laps=40)
    s = p.linux.state()
    assert min(p.laps) >= 40 and p.n_checks > 40 * num, (p.laps, p.n_checks)
    assert not s["broken"] and p.linux.log()[0] == 0


# ---------------------------------------------------------------------------------------------
# 4. Notification calls while buffers are pending, with and without EVENT_IDX
# ---------------------------------------------------------------------------------------------

def _pending(p: DriverPair, stage: str, cross: bool):
    """Bring the pair to one pending state: ``avail`` (added, not popped), ``popped`` (held by the
    device), ``used`` (used, not taken by the driver), ``mixed`` (one of each); ``cross``: first move
    both sides to two slots before the ring end, so the pending buffers straddle it."""
    base = p.m.data
    if cross:
        for _ in range(2 * p.num):               # bounded: one round trip per iteration
            s = p.model.state
            if s.next_avail == p.num - 2 and not s.avail_wrap:
                break
            p.add([(base, 8)], [])
            ch = p.pop_all()[0]
            p.held.clear()
            p.complete(ch, 0)
            p.get_all()
        else:
            raise Stalled(p.budget.report("never reached two slots before the ring end"))
    adds = {"avail": 2, "popped": 2, "used": 3, "mixed": 3}[stage]
    for j in range(adds):
        p.add([(base + 0x100 * j, 8)], [(base + 0x100 * j + 0x80, 8)])
    if stage in ("popped", "used", "mixed"):
        p.pop_all()
    if stage == "used":
        for ch in p.held[:]:
            p.complete(ch, 4)
        p.held.clear()
    if stage == "mixed":
        p.complete(p.held.pop(1), 8)          # out of order: the second one used first
        p.add([(base + 0x800, 8)], [])
    p.check(f"pending state {stage}")


CALLS = ["disable_cb", "enable_cb_prepare", "enable_cb", "kick_prepare"]
NOTIFY_CASES = [(n, t, stage, cross) for n, t in ((5, ""), (5, "ev"), (8, "ev+ind")) for stage in ("avail", "popped", "used", "mixed")
                for cross in (False, True)]


@pytest.mark.parametrize("num,tags,stage,cross", NOTIFY_CASES,
                         ids=[f"{n}-{t or 'plain'}-{s}{'-crossing' if c else ''}" for n, t, s, c in NOTIFY_CASES])
def test_notification_calls_while_pending(num, tags, stage, cross):
    """Every ordering of disable_cb / enable_cb_prepare (+ poll) / enable_cb / kick_prepare (under each
    device mode) from one pending state: the event suppression bytes each writes and every return
    value agree, then the buffers drain with the driver area compared at each get_buf."""
    calls = 0
    for order in itertools.permutations(CALLS):
        p = DriverPair(num, tags)
        _pending(p, stage, cross)
        for i, call in enumerate(order):
            if call == "kick_prepare":
                for mode in ([pk.RING_EVENT_FLAGS_ENABLE, pk.RING_EVENT_FLAGS_DISABLE] +
                             ([pk.RING_EVENT_FLAGS_DESC] if p.event else [])):
                    p.set_event(mode)
                    p.kick_prepare()
                    calls += 1
            else:
                getattr(p, call)()
                calls += 1
        p.pop_all()
        for ch in p.held[:]:
            p.complete(ch, 0)
        p.held.clear()
        p.get_all()
        p.enable_cb()
        assert p.model.state.num_free == num
    COMPARED["notification calls"] += calls


def test_disable_cb_after_an_interrupt_is_a_documented_divergence():
    """Linux skips writing DISABLE in ``disable_cb`` once ``vring_interrupt`` ran with EVENT_IDX
    (``event_triggered``: "the device won't trigger again"); the model does not model interrupts and
    always writes it (docs/virtio-packed.md, "Policies"). Both are allowed: §2.8.10 makes the driver
    area a hint (the device MAY still notify) and a superfluous DISABLE loses nothing. The model
    follows the spec's plain reading; the comparison names exactly the one field."""
    p = DriverPair(5, "ev")
    _pending(p, "used", False)
    assert p.linux.interrupt()
    p.linux.disable_cb()
    p.model.disable_cb()
    assert p.diff() == [f"driver_area.flags: linux {pk.RING_EVENT_FLAGS_ENABLE:#06x} model {pk.RING_EVENT_FLAGS_DISABLE:#06x}"]


# ---------------------------------------------------------------------------------------------
# 5. The checks themselves: mutants of the model must be reported, a disagreement must not hang
# ---------------------------------------------------------------------------------------------

def _no_flip(L, num, slot, wrap, n):
    """A wrong ``advance``: passes the ring end without flipping the wrap counter."""
    s = slot + n
    return (s - num if s >= num else s), wrap


def test_mutant_wrap_not_flipped_is_reported_by_the_comparison(monkeypatch):
    monkeypatch.setattr(pk, "advance", _no_flip)
    with pytest.raises(AssertionError) as e:
        _wrap_run(5, "", laps=2)
    msg = str(e.value)
    assert "avail_wrap: linux True model False" in msg or "avail_wrap: linux False model True" in msg, msg
    assert "operations (" in msg and "linux driver: next_avail=" in msg and "model driver: next_avail=" in msg


def test_mutant_wrap_not_flipped_in_the_device_fails_instead_of_hanging(monkeypatch):
    """Linux's driver waits for used descriptors the mutated model device marks with the old lap's
    wrap: before the bounded loop, ``while done < target`` spun forever; now it fails naming what it saw."""
    monkeypatch.setattr(pk, "advance", _no_flip)
    with pytest.raises(AssertionError) as e:
        _linux_driver_with_model_device(7, "", 400, patience=50)
    msg = str(e.value)
    assert isinstance(e.value, Stalled) or "clause VIRTIO/" in msg, msg
    assert "avail_wrap=" in msg and "used_wrap=" in msg and "raw=" in msg and "operations (" in msg, msg


def test_mutant_kick_ignores_the_event_wrap_is_reported(monkeypatch):
    """kick_prepare's event offset not moved back a ring when its wrap differs (§2.8.10; Linux's
    ``event_idx -= num``): the returned decisions differ and the report names the call."""
    orig = pk.packed_kick_prepare

    def bad(L, d, flags, off, ewrap):
        return orig(L, d, flags, off, d.avail_wrap)
    monkeypatch.setattr(pk, "packed_kick_prepare", bad)
    with pytest.raises(AssertionError) as e:
        _wrap_run(5, "ev", laps=40)
    assert "kick_prepare returned linux" in str(e.value), str(e.value)


def test_report_compared_operations():
    """Prints how many operations the differential tests compared (see the report)."""
    print(f"packed differential: {COMPARED}")
