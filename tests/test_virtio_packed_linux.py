"""Differential tests of the packed virtqueue against Linux 6.1.y's virtio_ring.c packed driver.

1. Linux's packed driver with the model's packed device on the same bytes: every list the device
   pops is exactly the buffer Linux added (elements and payload bytes), every used buffer Linux
   takes back is the one the device completed (token, length, written bytes), kicks follow the
   device area, for sizes that are not powers of two and out-of-order completion.
2. The model's driver and Linux's driver fed the same operations, each against a model device on
   its own memory: descriptor ring bytes (addr, len, id, flags per slot; indirect table entries),
   driver area bytes, buffer ids, wrap counters, next_avail / last_used, num_free and every kick
   decision compared after every operation.
Both also run at the largest queue size (32768, where a position needs all 16 bits of the event
arithmetic): a fast-forward of long lists first brings both sides near the ring end, so the
compared operations cross the wrap; there the indirect tables compared are those of the ids just
added (a whole-arena scan per operation would cost the queue size).
The peer is skipped with its reason when it cannot be built here (tests/linuxpeer.py).
"""
from __future__ import annotations

import random
from typing import NamedTuple

import pytest

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
COMPARED = {"linux-driver/model-device": 0, "model-driver/linux-driver": 0}


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


def _fast_forward(num, m, add, pops_and_gets):
    """Round trips of up to FF_LIST one-byte readable elements (direct descriptors) until the next
    list would start FF_MARGIN slots before the ring end; ``add(out)`` returns 0 on success,
    ``pops_and_gets()`` completes it on every side. Returns the round trips made."""
    pos, trips = 0, 0
    while pos < num - FF_MARGIN:
        n = min(FF_LIST, num - FF_MARGIN - pos)
        assert add([(m.data + k, 1) for k in range(n)]) == 0
        pops_and_gets()
        pos, trips = pos + n, trips + 1
    return trips


def _linux_driver_with_model_device(num, tags, target):
    vp = vring_peer()
    rnd = random.Random(num)
    m = _mem(num)
    buf = bytearray(m.size)
    mem, view = vp.GuestMemory(buffer=buf), FlatView(buf)
    lay, play = _layout(vp, num)
    drv = vp.Driver(mem, num, _features(vp, tags), layout=lay, indirect_gpa=m.arena, indirect_max=IND_MAX)
    dev = pk.PackedDevice(view, play, num, (m.arena, m.size), event_idx="ev" in tags, indirect="ind" in tags,
                          max_chain=IND_MAX)
    if num > 100:
        def complete():
            ch = dev.pop()
            dev.push_used(ch.id, 0)
            assert drv.get_buf() == (1, 0) and dev.pop() is None
        _fast_forward(num, m, lambda out: drv.add(out, [], 1), complete)
        assert drv.state()["avail_idx_shadow"] == dev.state.next_avail == num - FF_MARGIN
    free, inflight, held, token, done = list(range(m.areas)), {}, [], 0, 0
    while done < target:
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
            if drv.add(out, inn, token) != 0:
                continue
            free.pop()
            inflight[token] = (area, out, inn, payload)
            mode = rnd.choice([pk.RING_EVENT_FLAGS_ENABLE, pk.RING_EVENT_FLAGS_DISABLE] +
                              ([pk.RING_EVENT_FLAGS_DESC] if "ev" in tags else []))
            dev.set_event(mode)
            kick = drv.kick_prepare()
            if mode != pk.RING_EVENT_FLAGS_DESC:
                assert kick == (mode == pk.RING_EVENT_FLAGS_ENABLE)
            COMPARED["linux-driver/model-device"] += 2
        elif r < 0.65:
            while (ch := dev.pop()) is not None:
                tok = drv.desc_info(ch.id)["token"]
                area, out, inn, payload = inflight[tok]
                assert ch.readable == out and ch.writable == inn, (ch, out, inn)
                assert dev.read(ch) == payload
                held.append((ch, tok))
                COMPARED["linux-driver/model-device"] += 1
        elif r < 0.9 and held:
            ch, tok = held.pop(rnd.randrange(len(held)))           # out of order
            data = rnd.randbytes(rnd.randint(0, sum(n for _, n in ch.writable)))
            wrote = dev.write(ch, data)
            dev.push_used(ch.id, wrote)
            got = drv.get_buf()
            while got is not None:
                gtok, glen = got
                area, out, inn, _ = inflight.pop(gtok)
                assert glen == wrote if gtok == tok else True
                free.append(area)
                done += 1
                got = drv.get_buf()
            assert b"".join(view.read(a, n) for a, n in inn)[:wrote] == data[:wrote]
            COMPARED["linux-driver/model-device"] += 2
        else:
            dev.need_notify()
    assert drv.log()[0] == 0, drv.log()
    return drv.state()


@pytest.mark.parametrize("num,tags", CASES, ids=_ids(CASES))
def test_linux_driver_with_model_device(num, tags):
    _linux_driver_with_model_device(num, tags, 400)


@pytest.mark.parametrize("num,tags", LARGE, ids=_ids(LARGE))
def test_linux_driver_with_model_device_at_the_largest_size(num, tags):
    st = _linux_driver_with_model_device(num, tags, 150)
    assert st["avail_idx_shadow"] < num - FF_MARGIN and not st["avail_wrap_counter"], "never crossed the ring end"


def _ring_bytes(view, play, num):
    return [pk.read_desc(view, play.desc + 16 * k) for k in range(num)]


def _table(view, d):
    """Entries (addr, len, flags) of the indirect table descriptor ``d`` points to (id field ignored:
    Linux leaves it as kmalloc'd)."""
    return [(e.addr, e.len, e.flags) for e in (pk.read_desc(view, d.addr + 16 * k) for k in range(d.len // 16))]


def _tables(view, ring, m):
    """The tables of every indirect descriptor in ``ring`` (descriptors read from the ring)."""
    return [_table(view, d) for d in ring
            if d.flags & pk.VIRTQ_DESC_F_INDIRECT and d.len % 16 == 0 and m.arena <= d.addr < m.data]


def _model_driver_matches_linux_driver_bytes(num, tags, steps):
    vp = vring_peer()
    rnd = random.Random(1000 + num)
    m = _mem(num)
    small = num <= 100
    sides = []
    for _ in range(2):
        buf = bytearray(m.size)
        view = FlatView(buf)
        lay, play = _layout(vp, num)
        dev = pk.PackedDevice(view, play, num, (m.arena, m.size), event_idx="ev" in tags, indirect="ind" in tags,
                              max_chain=IND_MAX)
        sides.append((buf, view, lay, play, dev))
    (lbuf, lview, lay, play, ldev), (mbuf, mview, _, _, mdev) = sides
    linux = vp.Driver(vp.GuestMemory(buffer=lbuf), num, _features(vp, tags), layout=lay, indirect_gpa=m.arena,
                      indirect_max=IND_MAX)
    model = pk.PackedDriver(mview, play, num, event_idx="ev" in tags, indirect="ind" in tags,
                            indirect_gpa=m.arena, indirect_max=IND_MAX)
    held, token, n_ops = [], 0, 0

    def compare(what, head=None):
        """Everything, after one operation; ``head``: the slot just added (its table, at large sizes)."""
        nonlocal n_ops
        st = linux.state()
        s = model.state
        if small:
            lring, mring = _ring_bytes(lview, play, num), _ring_bytes(mview, play, num)
            assert lring == mring, what
            assert _tables(lview, lring, m) == _tables(mview, mring, m), what
        else:
            assert lview.read(play.desc, 16 * num) == mview.read(play.desc, 16 * num), what
            if head is not None:
                d = pk.read_desc(mview, play.desc + 16 * head)
                if d.flags & pk.VIRTQ_DESC_F_INDIRECT:
                    assert _table(lview, d) == _table(mview, d), what
        assert lview.read(play.driver, 4) == mview.read(play.driver, 4), what
        assert (st["avail_idx_shadow"], bool(st["avail_wrap_counter"]), st["num_free"]) == \
            (s.next_avail, s.avail_wrap, s.num_free), (what, st, s)
        assert (st["last_used_idx"], bool(st["used_wrap_counter"])) == (s.last_used, s.used_wrap), (what, st, s)
        assert st["avail_flags_shadow"] == s.event_flags, (what, st, s)
        n_ops += 1

    if not small:
        def add(out):
            rc = linux.add(out, [], 1)
            model.add(out, [], 1)
            return rc

        def complete():
            lc, mc = ldev.pop(), mdev.pop()
            assert lc == mc
            ldev.push_used(lc.id, 0)
            mdev.push_used(mc.id, 0)
            assert linux.get_buf() == model.get_used() == (1, 0)
        _fast_forward(num, m, add, complete)
        compare("fast-forward")
        assert model.state.next_avail == num - FF_MARGIN

    for step in range(steps):
        r = rnd.random()
        if r < 0.4:
            out, inn = _request(rnd, m, rnd.randrange(8))
            token += 1
            head = model.state.next_avail
            rc = linux.add(out, inn, token)
            try:
                model.add(out, inn, token)
                mrc = 0
            except errors.Exhausted:
                mrc = -28
            assert rc == mrc, (rc, mrc)
            mode = rnd.choice([pk.RING_EVENT_FLAGS_ENABLE, pk.RING_EVENT_FLAGS_DISABLE] +
                              ([pk.RING_EVENT_FLAGS_DESC] if "ev" in tags else []))
            ldev.set_event(mode)
            mdev.set_event(mode)
            if mode == pk.RING_EVENT_FLAGS_DESC and rnd.random() < 0.5:      # any event position
                ow = rnd.randrange(1 << 16) & ~(0x7FFF) | rnd.randrange(num)
                write_le(lview, play.device, 2, ow)
                write_le(mview, play.device, 2, ow)
            compare(f"add {step}", head)
            assert linux.kick_prepare() == model.kick_prepare(), f"kick after add {step}"
        elif r < 0.6:
            while True:
                lc, mc = ldev.pop(), mdev.pop()
                assert lc == mc
                if lc is None:
                    break
                held.append(lc)
        elif r < 0.85 and held:
            ch = held.pop(rnd.randrange(len(held)))
            length = rnd.randint(0, sum(n for _, n in ch.writable))
            ldev.push_used(ch.id, length)
            mdev.push_used(ch.id, length)
            while True:
                lg, mg = linux.get_buf(), model.get_used()
                assert lg == mg, (lg, mg)
                if lg is None:
                    break
                compare(f"get {step}")
        elif r < 0.92:
            linux.disable_cb()
            model.disable_cb()
            compare(f"disable_cb {step}")
        else:
            assert linux.enable_cb() == model.enable_cb()
            compare(f"enable_cb {step}")
    COMPARED["model-driver/linux-driver"] += n_ops
    return n_ops, model.state


@pytest.mark.parametrize("num,tags", CASES, ids=_ids(CASES))
def test_model_driver_matches_linux_driver_bytes(num, tags):
    n_ops, _ = _model_driver_matches_linux_driver_bytes(num, tags, 600)
    assert n_ops > 200


@pytest.mark.parametrize("num,tags", LARGE, ids=_ids(LARGE))
def test_model_driver_matches_linux_driver_bytes_at_the_largest_size(num, tags):
    n_ops, s = _model_driver_matches_linux_driver_bytes(num, tags, 300)
    assert n_ops > 100
    assert s.next_avail < num - FF_MARGIN and not s.avail_wrap and not s.used_wrap, "never crossed the ring end"


def test_report_compared_operations():
    """Prints how many operations the two differential tests compared (see the report)."""
    print(f"packed differential: {COMPARED}")
