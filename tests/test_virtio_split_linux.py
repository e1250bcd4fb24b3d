"""Differential tests: the model's split ring against Linux 6.1 (virtio_ring.c driver, vringh.c device).

Each test drives the model and the real kernel code with the same operations on the same ring
layout and compares, after every operation, what a caller and the other side can observe:
results, ring bytes, the free-list head, notification decisions. Cross pairings run the model on
one side and Linux on the other over one memory. Skipped with a reason if the peer cannot be built.
"""
from __future__ import annotations

import random

import pytest

from t1virtio import errors
from t1virtio.hyp.memview import FlatView
from t1virtio.virtio import split
from linuxpeer import vring_peer

SIZE = 16
MEM = 1 << 16
ARENA, ARENA_MAX = 0x2000, 8
DATA = 0x4000
SEED = 20240
FEATURES = [(False, False), (True, False), (False, True), (True, True)]   # (event_idx, indirect)


def _features(vp, event_idx, indirect):
    return vp.F_VERSION_1 | (vp.F_EVENT_IDX if event_idx else 0) | (vp.F_INDIRECT_DESC if indirect else 0)


def _layout(vp):
    lay = vp.split_layout(SIZE)
    return lay, split.SplitLayout(SIZE, lay["desc"], lay["avail"], lay["used"])


def _in_region(addr, n):
    return ARENA <= addr and addr + n <= MEM


def _device(mem, lay, event_idx, indirect):
    return split.SplitDevice(FlatView(mem), lay, event_idx=event_idx, indirect=indirect, in_region=_in_region)


def _segments(rnd, k):
    n_out, n_in = rnd.randint(0, 3), rnd.randint(0, 3)
    if n_out + n_in == 0:
        n_out = 1
    base = DATA + (k % 64) * 256
    lens = [rnd.randint(1, 24) for _ in range(n_out + n_in)]
    addrs = [base + 32 * j for j in range(n_out + n_in)]
    segs = list(zip(addrs, lens))
    return segs[:n_out], segs[n_out:]


@pytest.mark.parametrize("event_idx,indirect", FEATURES)
def test_model_driver_matches_virtio_ring(event_idx, indirect):
    """1500 random operations: model driver vs virtio_ring.c: add results and heads, ring and table bytes, free head, kicks, get_buf."""
    vp = vring_peer()
    rnd = random.Random(SEED)
    lay, mlay = _layout(vp)
    mem_l, mem_m = bytearray(MEM), bytearray(MEM)
    gm = vp.GuestMemory(buffer=mem_l)
    lin = vp.Driver(gm, SIZE, _features(vp, event_idx, indirect), layout=lay, indirect_gpa=ARENA,
                    indirect_max=ARENA_MAX)
    kicks = [0]
    model = split.SplitDriver(FlatView(mem_m), mlay, event_idx=event_idx, indirect=indirect,
                              indirect_arena=(ARENA, ARENA_MAX), notify=lambda: kicks.__setitem__(0, kicks[0] + 1))
    devs = [_device(mem_l, mlay, event_idx, indirect), _device(mem_m, mlay, event_idx, indirect)]
    held: list = []
    for k in range(1500):
        op = rnd.choice(["add", "add", "kick", "serve", "get", "get", "cb", "notify"])
        if op == "add":
            out, inn = _segments(rnd, k)
            rc = lin.add(out, inn, k + 1)
            try:
                model.add_buf(out, inn, k + 1)
                mrc = 0
            except errors.Exhausted:
                mrc = -28
            assert rc == mrc, f"op {k}: add {rc} vs model {mrc}"
        elif op == "kick":
            assert lin.kick_prepare() == model.kick_prepare(), f"op {k}: kick decision"
        elif op == "serve":
            for _ in range(rnd.randint(0, 3)):
                cs = [d.next_chain() for d in devs]
                assert (cs[0] is None) == (cs[1] is None)
                if cs[0] is None:
                    break
                held.append(cs[0])
            rnd.shuffle(held)
            for _ in range(rnd.randint(0, len(held))):
                c = held.pop()
                n = rnd.randint(0, c.wlen)
                for d in devs:
                    d.write(c, bytes(range(n)))
                    d.add_used(c.head, n)
        elif op == "get":
            got = model.get_buf()
            assert lin.get_buf() == got, f"op {k}: get_buf"
        elif op == "cb":
            if rnd.random() < 0.5:
                lin.disable_cb()
                model.disable_cb()
            else:
                assert lin.enable_cb() == model.enable_cb(), f"op {k}: enable_cb"
        else:
            on = rnd.random() < 0.5
            for d in devs:
                d.enable_notify() if on else d.disable_notify()
        st = lin.state()
        assert (st["free_head"], st["num_free"], st["avail_idx_shadow"], st["last_used_idx"]) == \
            (model.free_head, model.state.num_free, model.state.avail_idx, model.state.last_used), f"op {k}: {op}"
        assert st["notifies"] == kicks[0] or op != "add", f"op {k}: forced notifies"
        assert mem_l[:ARENA + SIZE * ARENA_MAX * 16] == mem_m[:ARENA + SIZE * ARENA_MAX * 16], f"op {k}: {op} bytes"
    lin.close()


@pytest.mark.parametrize("event_idx,indirect", FEATURES)
def test_model_device_matches_vringh(event_idx, indirect):
    """1500 random operations: model device vs vringh: chains, used ring bytes, need_notify and notify_enable decisions."""
    vp = vring_peer()
    rnd = random.Random(SEED + 1)
    lay, mlay = _layout(vp)
    mem_l, mem_m = bytearray(MEM), bytearray(MEM)
    gm = vp.GuestMemory(buffer=mem_l)
    drivers = [split.SplitDriver(FlatView(m), mlay, event_idx=event_idx, indirect=indirect,
                                 indirect_arena=(ARENA, ARENA_MAX)) for m in (mem_l, mem_m)]
    lin = vp.Device(gm, SIZE, _features(vp, event_idx, indirect), layout=lay)
    model = _device(mem_m, mlay, event_idx, indirect)
    held: list = []
    for k in range(1500):
        op = rnd.choice(["add", "add", "pop", "pop", "complete", "notify", "enable", "get"])
        if op == "add":
            out, inn = _segments(rnd, k)
            for d in drivers:
                try:
                    d.add_buf(out, inn, k)
                except errors.Exhausted:
                    pass
        elif op == "pop":
            c = lin.getdesc()
            m = model.next_chain()
            assert (c is None) == (m is None), f"op {k}: pop"
            if c is not None:
                assert (c.head, c.readable, c.writable) == (m.head, list(m.readable), list(m.writable)), f"op {k}"
                held.append(m)
        elif op == "complete" and held:
            c = held.pop(rnd.randrange(len(held)))
            n = rnd.randint(0, c.wlen)
            assert lin.complete(c.head, n) == 0
            model.add_used(c.head, n)
        elif op == "notify":
            assert lin.need_notify() == model.need_notify(), f"op {k}: need_notify"
        elif op == "enable":
            if rnd.random() < 0.5:
                assert lin.notify_enable() == model.enable_notify(), f"op {k}: notify_enable"
            else:
                lin.notify_disable()
                model.disable_notify()
        else:
            for d in drivers:
                d.get_buf()
        assert mem_l[lay["used"]:lay["used"] + 6 + 8 * SIZE] == mem_m[lay["used"]:lay["used"] + 6 + 8 * SIZE], \
            f"op {k}: used ring bytes"
    lin.close()


@pytest.mark.parametrize("event_idx,indirect", FEATURES)
def test_linux_driver_with_model_device(event_idx, indirect):
    """virtio_ring.c driving the model device on one memory: byte-exact round trips, tokens and lengths."""
    vp = vring_peer()
    rnd = random.Random(SEED + 2)
    lay, mlay = _layout(vp)
    buf = bytearray(MEM)
    lin = vp.Driver(vp.GuestMemory(buffer=buf), SIZE, _features(vp, event_idx, indirect), layout=lay,
                    indirect_gpa=ARENA, indirect_max=ARENA_MAX)
    dev = _device(buf, mlay, event_idx, indirect)
    pending = {}
    for k in range(1, 2001):
        out, inn = _segments(rnd, k)
        payload = bytes(rnd.randrange(256) for _ in range(sum(n for _, n in out)))
        off = 0
        for a, n in out:
            buf[a:a + n] = payload[off:off + n]
            off += n
        assert lin.add(out, inn, k) == 0
        pending[k] = inn
        lin.kick()
        c = dev.next_chain()
        assert c is not None and dev.read(c) == payload and list(c.writable) == inn
        dev.add_used(c.head, dev.write(c, bytes([k & 0xFF]) * c.wlen))
        token, n = lin.get_buf()
        assert token == k and n == sum(x for _, x in inn) and lin.get_buf() is None
        assert b"".join(bytes(buf[a:a + x]) for a, x in pending.pop(token)) == bytes([k & 0xFF]) * n
    assert not pending and not lin.broken
    lin.close()


@pytest.mark.parametrize("event_idx,indirect", FEATURES)
def test_model_driver_with_linux_device(event_idx, indirect):
    """The model driver feeding vringh on one memory: vringh pulls what the model wrote, the model gets replies."""
    vp = vring_peer()
    rnd = random.Random(SEED + 3)
    lay, mlay = _layout(vp)
    buf = bytearray(MEM)
    dev = vp.Device(vp.GuestMemory(buffer=buf), SIZE, _features(vp, event_idx, indirect), layout=lay)
    drv = split.SplitDriver(FlatView(buf), mlay, event_idx=event_idx, indirect=indirect, indirect_arena=(ARENA, ARENA_MAX))
    for k in range(1, 2001):
        out, inn = _segments(rnd, k)
        payload = bytes(rnd.randrange(256) for _ in range(sum(n for _, n in out)))
        off = 0
        for a, n in out:
            buf[a:a + n] = payload[off:off + n]
            off += n
        drv.add_buf(out, inn, k)
        drv.kick()
        c = dev.getdesc()
        assert dev.pull(len(payload) + 1) == payload
        wlen = sum(n for _, n in c.writable)
        reply = bytes([k & 0xFF]) * wlen
        assert dev.push(reply) == wlen and dev.complete(c.head, wlen) == 0
        assert drv.get_used() == (k, wlen)
        assert b"".join(bytes(buf[a:a + n]) for a, n in inn) == reply


def test_hostile_chains_refused_by_both():
    """A loop, a next out of range and a buffer past memory: vringh and the model both refuse (the model names why)."""
    vp = vring_peer()
    lay, mlay = _layout(vp)
    for case, expect in [("loop", "#loop"), ("next", "#next-range"), ("outside", "#in-region")]:
        buf = bytearray(MEM)
        lin = vp.Device(vp.GuestMemory(buffer=buf), SIZE, _features(vp, False, False), layout=lay)
        model = _device(buf, mlay, False, False)
        mem = FlatView(buf)
        from t1virtio.virtio.chain import Desc
        if case == "loop":
            mem.write(mlay.desc_at(0), Desc(DATA, 8, 1, 1).encode())
            mem.write(mlay.desc_at(1), Desc(DATA, 8, 1, 0).encode())
        elif case == "next":
            mem.write(mlay.desc_at(0), Desc(DATA, 8, 1, SIZE).encode())
        else:
            mem.write(mlay.desc_at(0), Desc(MEM - 4, 8, 0, 0).encode())
        buf[mlay.avail + 2:mlay.avail + 4] = (1).to_bytes(2, "little")
        with pytest.raises(vp.VringhError):
            lin.getdesc()
        with pytest.raises(errors.PeerViolation, match=expect):
            model.pop_avail()
        lin.close()
