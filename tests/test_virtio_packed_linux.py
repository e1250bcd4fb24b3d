"""Differential tests of the packed virtqueue against Linux 6.1.y's virtio_ring.c packed driver.

1. Linux's packed driver with the model's packed device on the same bytes: every list the device
   pops is exactly the buffer Linux added (elements and payload bytes), every used buffer Linux
   takes back is the one the device completed (token, length, written bytes), kicks follow the
   device area, for sizes that are not powers of two and out-of-order completion.
2. The model's driver and Linux's driver fed the same operations, each against a model device on
   its own memory: descriptor ring bytes (addr, len, id, flags per slot; indirect table entries),
   driver area bytes, buffer ids, wrap counters, next_avail / last_used, num_free and every kick
   decision compared after every operation.
The peer is skipped with its reason when it cannot be built here (tests/linuxpeer.py).
"""
from __future__ import annotations

import random

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
COMPARED = {"linux-driver/model-device": 0, "model-driver/linux-driver": 0}


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


def _request(rnd, area):
    base = DATA + area * AREA
    nout, nin = rnd.randint(0, 3), rnd.randint(0, 3)
    if nout + nin == 0:
        nout = 1
    out = [(base + 128 * k, rnd.randint(1, 100)) for k in range(nout)]
    inn = [(base + 0x400 + 128 * k, rnd.randint(1, 100)) for k in range(nin)]
    return out, inn


@pytest.mark.parametrize("num,tags", CASES, ids=[f"{n}-{t or 'plain'}" for n, t in CASES])
def test_linux_driver_with_model_device(num, tags):
    vp = vring_peer()
    rnd = random.Random(num)
    buf = bytearray(SIZE)
    mem, view = vp.GuestMemory(buffer=buf), FlatView(buf)
    lay, play = _layout(vp, num)
    drv = vp.Driver(mem, num, _features(vp, tags), layout=lay, indirect_gpa=ARENA, indirect_max=IND_MAX)
    dev = pk.PackedDevice(view, play, num, (ARENA, SIZE), event_idx="ev" in tags, indirect="ind" in tags,
                          max_chain=IND_MAX)
    free, inflight, held, token, done = list(range(num)), {}, [], 0, 0
    while done < 400:
        r = rnd.random()
        if r < 0.4 and free:
            area = free[-1]
            out, inn = _request(rnd, area)
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


def _ring_bytes(view, play, num):
    return [pk.read_desc(view, play.desc + 16 * k) for k in range(num)]


def _tables(view, ring, num):
    """Entries (addr, len, flags) of every indirect table the ring points to (id field ignored: Linux
    leaves it as kmalloc'd)."""
    out = []
    for d in ring:
        if d.flags & pk.VIRTQ_DESC_F_INDIRECT and d.len % 16 == 0 and ARENA <= d.addr < DATA:
            out.append([(e.addr, e.len, e.flags) for e in
                        (pk.read_desc(view, d.addr + 16 * k) for k in range(d.len // 16))])
    return out


@pytest.mark.parametrize("num,tags", CASES, ids=[f"{n}-{t or 'plain'}" for n, t in CASES])
def test_model_driver_matches_linux_driver_bytes(num, tags):
    vp = vring_peer()
    rnd = random.Random(1000 + num)
    sides = []
    for _ in range(2):
        buf = bytearray(SIZE)
        view = FlatView(buf)
        lay, play = _layout(vp, num)
        dev = pk.PackedDevice(view, play, num, (ARENA, SIZE), event_idx="ev" in tags, indirect="ind" in tags,
                              max_chain=IND_MAX)
        sides.append((buf, view, lay, play, dev))
    (lbuf, lview, lay, play, ldev), (mbuf, mview, _, _, mdev) = sides
    linux = vp.Driver(vp.GuestMemory(buffer=lbuf), num, _features(vp, tags), layout=lay, indirect_gpa=ARENA,
                      indirect_max=IND_MAX)
    model = pk.PackedDriver(mview, play, num, event_idx="ev" in tags, indirect="ind" in tags,
                            indirect_gpa=ARENA, indirect_max=IND_MAX)
    held, token, n_ops = [], 0, 0

    def compare(what):
        nonlocal n_ops
        st = linux.state()
        s = model.state
        assert _ring_bytes(lview, play, num) == _ring_bytes(mview, play, num), what
        assert _tables(lview, _ring_bytes(lview, play, num), num) == _tables(mview, _ring_bytes(mview, play, num), num)
        assert lview.read(play.driver, 4) == mview.read(play.driver, 4), what
        assert (st["avail_idx_shadow"], bool(st["avail_wrap_counter"]), st["num_free"]) == \
            (s.next_avail, s.avail_wrap, s.num_free), (what, st, s)
        assert (st["last_used_idx"], bool(st["used_wrap_counter"])) == (s.last_used, s.used_wrap), (what, st, s)
        assert st["avail_flags_shadow"] == s.event_flags, (what, st, s)
        n_ops += 1

    for step in range(600):
        r = rnd.random()
        if r < 0.4:
            out, inn = _request(rnd, rnd.randrange(8))
            token += 1
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
            compare(f"add {step}")
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
    assert n_ops > 200


def test_report_compared_operations():
    """Prints how many operations the two differential tests compared (see the report)."""
    print(f"packed differential: {COMPARED}")
