"""Differential tests: the model's split ring against Linux 6.1 (virtio_ring.c driver, vringh.c device).

Each test drives the model and the real kernel code with the same operations on the same ring
layout and compares, after every operation, what a caller and the other side can observe:
results, ring bytes, the free-list head, notification decisions. Cross pairings run the model on
one side and Linux on the other over one memory. Each runs at queue size 16 and at the largest,
32768; a full ring and the u16 index wrap are compared at 32768 too. Skipped with a reason if the
peer cannot be built.
"""
from __future__ import annotations

import random

import pytest

from t1virtio import errors
from t1virtio.hyp.memview import FlatView
from t1virtio.virtio import split
from linuxpeer import vring_peer

ARENA_MAX = 8
SEED = 20240
FEATURES = [(False, False), (True, False), (False, True), (True, True)]   # (event_idx, indirect)
SIZES = [16, split.MAX_QUEUE_SIZE]
WRAP = 1 << 16


def _align(x, a=4096):
    return (x + a - 1) & ~(a - 1)


class Geo:
    """Where the ring, the indirect arena (``size * ARENA_MAX`` tables) and the data buffers sit for a queue size."""

    def __init__(self, vp, size):
        self.size = size
        self.lay = vp.split_layout(size)
        self.mlay = split.SplitLayout(size, self.lay["desc"], self.lay["avail"], self.lay["used"])
        if size == 16:                   # the geometry these tests had at size 16 (same bytes, same seeds)
            self.arena, self.data, self.mem = 0x2000, 0x4000, 1 << 16
        else:
            self.arena = _align(self.lay["size"])
            self.data = _align(self.arena + 16 * ARENA_MAX * size)
            self.mem = self.data + (1 << 16)

    def in_region(self, addr, n):
        """The shared region: all of the memory (the ring, the indirect arena and the data)."""
        return 0 <= addr and addr + n <= self.mem

    def device(self, mem, event_idx, indirect, start=0):
        return split.SplitDevice(FlatView(mem), self.mlay, event_idx=event_idx, indirect=indirect,
                                 in_region=self.in_region, start=start)


def _features(vp, event_idx, indirect):
    return vp.F_VERSION_1 | (vp.F_EVENT_IDX if event_idx else 0) | (vp.F_INDIRECT_DESC if indirect else 0)


def _segments(rnd, k, g):
    n_out, n_in = rnd.randint(0, 3), rnd.randint(0, 3)
    if n_out + n_in == 0:
        n_out = 1
    base = g.data + (k % 64) * 256
    lens = [rnd.randint(1, 24) for _ in range(n_out + n_in)]
    addrs = [base + 32 * j for j in range(n_out + n_in)]
    segs = list(zip(addrs, lens))
    return segs[:n_out], segs[n_out:]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("event_idx,indirect", FEATURES)
def test_model_driver_matches_virtio_ring(event_idx, indirect, size):
    """1500 random operations: model driver vs virtio_ring.c: add results and heads, ring and table bytes, free head, kicks, get_buf."""
    vp = vring_peer()
    rnd = random.Random(SEED)
    g = Geo(vp, size)
    mem_l, mem_m = bytearray(g.mem), bytearray(g.mem)
    gm = vp.GuestMemory(buffer=mem_l)
    lin = vp.Driver(gm, size, _features(vp, event_idx, indirect), layout=g.lay, indirect_gpa=g.arena,
                    indirect_max=ARENA_MAX)
    kicks = [0]
    model = split.SplitDriver(FlatView(mem_m), g.mlay, event_idx=event_idx, indirect=indirect,
                              indirect_arena=(g.arena, ARENA_MAX), notify=lambda: kicks.__setitem__(0, kicks[0] + 1))
    devs = [g.device(mem_l, event_idx, indirect), g.device(mem_m, event_idx, indirect)]
    held: list = []
    for k in range(1500):
        op = rnd.choice(["add", "add", "kick", "serve", "get", "get", "cb", "notify"])
        if op == "add":
            out, inn = _segments(rnd, k, g)
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
        assert mem_l == mem_m, f"op {k}: {op} bytes"        # ring, arena and data (the devices wrote alike)
    lin.close()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("event_idx,indirect", FEATURES)
def test_model_device_matches_vringh(event_idx, indirect, size):
    """1500 random operations: model device vs vringh: chains, used ring bytes, need_notify and notify_enable decisions."""
    vp = vring_peer()
    rnd = random.Random(SEED + 1)
    g = Geo(vp, size)
    lay = g.lay
    mem_l, mem_m = bytearray(g.mem), bytearray(g.mem)
    gm = vp.GuestMemory(buffer=mem_l)
    drivers = [split.SplitDriver(FlatView(m), g.mlay, event_idx=event_idx, indirect=indirect,
                                 indirect_arena=(g.arena, ARENA_MAX)) for m in (mem_l, mem_m)]
    lin = vp.Device(gm, size, _features(vp, event_idx, indirect), layout=lay)
    model = g.device(mem_m, event_idx, indirect)
    held: list = []
    for k in range(1500):
        op = rnd.choice(["add", "add", "pop", "pop", "complete", "notify", "enable", "get"])
        if op == "add":
            out, inn = _segments(rnd, k, g)
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
        assert mem_l[lay["used"]:lay["used"] + 6 + 8 * size] == mem_m[lay["used"]:lay["used"] + 6 + 8 * size], \
            f"op {k}: used ring bytes"
    lin.close()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("event_idx,indirect", FEATURES)
def test_linux_driver_with_model_device(event_idx, indirect, size):
    """virtio_ring.c driving the model device on one memory: byte-exact round trips, tokens and lengths."""
    vp = vring_peer()
    rnd = random.Random(SEED + 2)
    g = Geo(vp, size)
    buf = bytearray(g.mem)
    lin = vp.Driver(vp.GuestMemory(buffer=buf), size, _features(vp, event_idx, indirect), layout=g.lay,
                    indirect_gpa=g.arena, indirect_max=ARENA_MAX)
    dev = g.device(buf, event_idx, indirect)
    pending = {}
    for k in range(1, 2001):
        out, inn = _segments(rnd, k, g)
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


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("event_idx,indirect", FEATURES)
def test_model_driver_with_linux_device(event_idx, indirect, size):
    """The model driver feeding vringh on one memory: vringh pulls what the model wrote, the model gets replies."""
    vp = vring_peer()
    rnd = random.Random(SEED + 3)
    g = Geo(vp, size)
    buf = bytearray(g.mem)
    dev = vp.Device(vp.GuestMemory(buffer=buf), size, _features(vp, event_idx, indirect), layout=g.lay)
    drv = split.SplitDriver(FlatView(buf), g.mlay, event_idx=event_idx, indirect=indirect,
                            indirect_arena=(g.arena, ARENA_MAX))
    for k in range(1, 2001):
        out, inn = _segments(rnd, k, g)
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


@pytest.mark.parametrize("size", SIZES)
def test_hostile_chains_refused_by_both(size):
    """A loop, a next out of range and a buffer past memory: vringh and the model both refuse (the model names why)."""
    vp = vring_peer()
    g = Geo(vp, size)
    mlay = g.mlay
    for case, expect in [("loop", "#loop"), ("next", "#next-range"), ("outside", "#in-region")]:
        buf = bytearray(g.mem)
        lin = vp.Device(vp.GuestMemory(buffer=buf), size, _features(vp, False, False), layout=g.lay)
        model = g.device(buf, False, False)
        mem = FlatView(buf)
        from t1virtio.virtio.chain import Desc
        if case == "loop":
            mem.write(mlay.desc_at(0), Desc(g.data, 8, 1, 1).encode())
            mem.write(mlay.desc_at(1), Desc(g.data, 8, 1, 0).encode())
        elif case == "next":
            mem.write(mlay.desc_at(0), Desc(g.data, 8, 1, size).encode())
        else:
            mem.write(mlay.desc_at(0), Desc(g.mem - 4, 8, 0, 0).encode())
        buf[mlay.avail + 2:mlay.avail + 4] = (1).to_bytes(2, "little")
        with pytest.raises(vp.VringhError):
            lin.getdesc()
        with pytest.raises(errors.PeerViolation, match=expect):
            model.pop_avail()
        lin.close()


def _write_chain(mem, writable, data):
    """Write ``data`` into a chain's writable segments from their start, as a device does; return the bytes written."""
    done = 0
    for a, n in writable:
        part = data[done:done + n]
        if not part:
            break
        mem[a:a + len(part)] = part
        done += len(part)
    return done


def test_full_ring_at_the_largest_size():
    """Queue size 32768, Linux (virtio_ring.c + vringh) beside the model (driver + device), each on its own memory:
    fill the ring until -ENOSPC, serve every chain, complete them in a shuffled order, take all back, fill again
    from the shuffled free list. Heads, chains, lengths and free-list state after every step; all bytes per phase."""
    vp = vring_peer()
    size = split.MAX_QUEUE_SIZE
    rnd = random.Random(SEED + 4)
    g = Geo(vp, size)
    mem_l, mem_m = bytearray(g.mem), bytearray(g.mem)
    gm = vp.GuestMemory(buffer=mem_l)
    feats = _features(vp, True, False)
    lin = vp.Driver(gm, size, feats, layout=g.lay)
    lind = vp.Device(gm, size, feats, layout=g.lay)
    drv = split.SplitDriver(FlatView(mem_m), g.mlay, event_idx=True)
    dev = g.device(mem_m, True, False)
    segs = [(g.data + 64 * j, 16) for j in range(4)]         # 2 readable + 2 writable: 4 descriptors a buffer

    def fill(n, token0):
        added = 0
        for t in range(token0, token0 + n):
            rc = lin.add(segs[:2], segs[2:], t)
            try:
                head = drv.add_buf(segs[:2], segs[2:], t)
                mrc = 0
            except errors.Exhausted:
                mrc = head = -28
            assert rc == mrc, f"token {t}: add {rc} vs model {mrc}"
            st = lin.state()
            assert (st["free_head"], st["num_free"]) == (drv.free_head, drv.state.num_free), f"token {t}"
            if rc:
                return added
            added += 1
        assert lin.kick_prepare() == drv.kick_prepare()
        return added

    def drain(n):
        chains = []
        for _ in range(n):
            c, m = lind.getdesc(), dev.pop_avail()
            assert (c.head, c.readable, c.writable) == (m.head, list(m.readable), list(m.writable))
            chains.append(m)
        assert lind.getdesc() is None and dev.next_chain() is None
        rnd.shuffle(chains)
        for c in chains:
            n = rnd.randint(0, c.wlen)
            data = bytes([c.head & 0xFF]) * n
            assert _write_chain(mem_l, c.writable, data) == dev.write(c, data)
            assert lind.complete(c.head, n) == 0
            dev.add_used(c.head, n)
        assert lind.need_notify() == dev.need_notify()
        for _ in chains:
            assert lin.get_buf() == drv.get_used()
        assert lin.get_buf() is None and drv.get_buf() is None

    assert fill(size, 1) == size // 4 and drv.state.num_free == 0
    assert mem_l == mem_m, "bytes after filling the ring"
    drain(size // 4)
    assert mem_l == mem_m, "bytes after draining the ring"
    st = lin.state()
    assert (st["free_head"], st["num_free"], st["last_used_idx"]) == (drv.free_head, size, drv.state.last_used)
    fill(2000, size)                                           # heads now come from the shuffled free list
    assert mem_l == mem_m, "bytes after refilling from the shuffled free list"
    lin.close()
    lind.close()


def _warm_up(vp, g, gm, feats, n):
    """Run virtio_ring.c and vringh ``n`` round trips (one 2-segment buffer at a time), then a kick_prepare: both
    are left at index ``n`` with every buffer back, nothing added since the kick and the free list as new."""
    lin = vp.Driver(gm, g.size, feats, layout=g.lay, indirect_gpa=g.arena, indirect_max=ARENA_MAX)
    lind = vp.Device(gm, g.size, feats, layout=g.lay)
    out, inn = [(g.data, 8)], [(g.data + 64, 8)]
    for t in range(1, n + 1):
        lin.add(out, inn, t)
        c = lind.getdesc()
        lind.complete(c.head, 0)
        lin.get_buf()
    lin.kick_prepare()                  # num_added back to 0, as the model's at its start
    st = lin.state()
    assert (st["free_head"], st["num_free"], st["avail_idx_shadow"], st["last_used_idx"], st["num_added"]) == \
        (0, g.size, n, n, 0)
    return lin, lind


@pytest.mark.parametrize("event_idx,indirect", [(False, False), (True, True)])
def test_across_the_u16_wrap_at_the_largest_size(event_idx, indirect):
    """Queue size 32768 from index 65536 - 40 (Linux gets there by real round trips; the model starts there):
    virtio_ring.c + vringh beside the model driver + device, 400 random operations across the wrap,
    comparing results, free-list state and every byte of both memories after each one."""
    vp = vring_peer()
    size, start = split.MAX_QUEUE_SIZE, WRAP - 40
    rnd = random.Random(SEED + 5)
    g = Geo(vp, size)
    mem_l, mem_m = bytearray(g.mem), bytearray(g.mem)
    feats = _features(vp, event_idx, indirect)
    lin, lind = _warm_up(vp, g, vp.GuestMemory(buffer=mem_l), feats, start)
    drv = split.SplitDriver(FlatView(mem_m), g.mlay, event_idx=event_idx, indirect=indirect,
                            indirect_arena=(g.arena, ARENA_MAX), start=start)
    dev = g.device(mem_m, event_idx, indirect, start=start)
    mem_m[:] = mem_l              # the model's memory as Linux left it (old chains, tables, the event indices)
    held: list = []
    for k in range(400):
        op = rnd.choice(["add", "add", "kick", "serve", "get", "get", "cb", "notify"])
        if op == "add":
            out, inn = _segments(rnd, k, g)
            rc = lin.add(out, inn, k + 1)
            try:
                drv.add_buf(out, inn, k + 1)
                mrc = 0
            except errors.Exhausted:
                mrc = -28
            assert rc == mrc, f"op {k}: add {rc} vs model {mrc}"
        elif op == "kick":
            assert lin.kick_prepare() == drv.kick_prepare(), f"op {k}: kick decision"
        elif op == "serve":
            for _ in range(rnd.randint(0, 3)):
                c, m = lind.getdesc(), dev.next_chain()
                assert (c is None) == (m is None), f"op {k}: pop"
                if c is None:
                    break
                assert (c.head, c.readable, c.writable) == (m.head, list(m.readable), list(m.writable)), f"op {k}"
                held.append(m)
            rnd.shuffle(held)
            for _ in range(rnd.randint(0, len(held))):
                c = held.pop()
                data = bytes(range(rnd.randint(0, c.wlen)))
                assert _write_chain(mem_l, c.writable, data) == dev.write(c, data)
                assert lind.complete(c.head, len(data)) == 0
                dev.add_used(c.head, len(data))
            assert lind.need_notify() == dev.need_notify(), f"op {k}: need_notify"
        elif op == "get":
            assert lin.get_buf() == drv.get_buf(), f"op {k}: get_buf"
        elif op == "cb":
            if rnd.random() < 0.5:
                lin.disable_cb()
                drv.disable_cb()
            else:
                assert lin.enable_cb() == drv.enable_cb(), f"op {k}: enable_cb"
        else:
            if rnd.random() < 0.5:
                assert lind.notify_enable() == dev.enable_notify(), f"op {k}: notify_enable"
            else:
                lind.notify_disable()
                dev.disable_notify()
        st = lin.state()
        assert (st["free_head"], st["num_free"], st["avail_idx_shadow"], st["last_used_idx"]) == \
            (drv.free_head, drv.state.num_free, drv.state.avail_idx, drv.state.last_used), f"op {k}: {op}"
        assert mem_l == mem_m, f"op {k}: {op} bytes"
    assert drv.state.avail_idx < start and dev.state.used_idx < start, "the run did not cross the wrap"
    lin.close()
    lind.close()


@pytest.mark.parametrize("event_idx,indirect", FEATURES)
def test_model_built_mid_stream_from_linux_state(event_idx, indirect):
    """virtio_ring.c and vringh run to a state with buffers in every place (used but not taken back, held by the
    device, still available); the model driver and device are built at that state with ``from_state`` from what
    Linux reports (indices, heads, lengths, event fields) on a memory holding only the data. Every byte of the two
    memories is equal, then 300 random operations of both stacks stay equal (results, free list, every byte)."""
    vp = vring_peer()
    size = 16
    rnd = random.Random(SEED + 9)
    g = Geo(vp, size)
    mem_l, mem_m = bytearray(g.mem), bytearray(g.mem)
    feats = _features(vp, event_idx, indirect)
    gm = vp.GuestMemory(buffer=mem_l)
    lin = vp.Driver(gm, size, feats, layout=g.lay, indirect_gpa=g.arena, indirect_max=ARENA_MAX)
    lind = vp.Device(gm, size, feats, layout=g.lay)
    bufs = []
    for k in range(6):                                    # 1 readable + 1 writable: 12 of 16 descriptors direct
        base = g.data + 256 * k
        out, inn = [(base, rnd.randint(1, 24))], [(base + 32, rnd.randint(1, 24))]
        assert lin.add(out, inn, k + 1) == 0
        bufs.append((out, inn, k + 1))
    popped = [lind.getdesc() for _ in range(4)]
    used = []
    for c in popped[:2]:
        n = rnd.randint(0, sum(x for _, x in c.writable))
        assert _write_chain(mem_l, c.writable, bytes(range(n))) == n and lind.complete(c.head, n) == 0
        used.append((c.head, n))
    st, dst = lin.state(), lind.state()
    mem_m[g.data:] = mem_l[g.data:]                       # the data only: the model writes its own ring bytes
    u16 = lambda a: int.from_bytes(mem_l[a:a + 2], "little")   # noqa: E731
    drv = split.SplitDriver.from_state(
        FlatView(mem_m), g.mlay, event_idx=event_idx, indirect=indirect, indirect_arena=(g.arena, ARENA_MAX),
        avail_idx=st["avail_idx_shadow"], last_used=st["last_used_idx"], buffers=bufs, num_added=st["num_added"],
        cb_disabled=bool(st["avail_flags_shadow"] & 1), used_event=u16(g.mlay.used_event()),
        avail_flags=u16(g.mlay.avail))
    dev = split.SplitDevice.from_state(
        FlatView(mem_m), g.mlay, event_idx=event_idx, indirect=indirect, in_region=g.in_region,
        last_avail=dst["last_avail_idx"], used_idx=u16(g.mlay.used + 2),   # vringh's state() lags the used idx
        held={c.head: sum(x for _, x in c.writable) for c in popped[2:]}, used=used,
        signalled=(u16(g.mlay.used + 2) - dst["completed"]) & 0xFFFF, used_flags=u16(g.mlay.used),
        avail_event=u16(g.mlay.avail_event()))
    assert [c.head for c in popped] == [drv.state.avail_ring[k] for k in range(4)]
    assert mem_l == mem_m, "bytes of the state built from Linux's"
    held = [c for c in popped[2:]]
    for k in range(300):
        op = rnd.choice(["add", "add", "kick", "serve", "get", "get", "cb", "notify"])
        if op == "add":
            out, inn = _segments(rnd, k + 6, g)
            rc = lin.add(out, inn, k + 100)
            try:
                drv.add_buf(out, inn, k + 100)
                mrc = 0
            except errors.Exhausted:
                mrc = -28
            assert rc == mrc, f"op {k}: add"
        elif op == "kick":
            assert lin.kick_prepare() == drv.kick_prepare(), f"op {k}: kick decision"
        elif op == "serve":
            for _ in range(rnd.randint(0, 3)):
                c, m = lind.getdesc(), dev.next_chain()
                assert (c is None) == (m is None), f"op {k}: pop"
                if c is None:
                    break
                assert (c.head, c.readable, c.writable) == (m.head, list(m.readable), list(m.writable)), f"op {k}"
                held.append(c)
            rnd.shuffle(held)
            for _ in range(rnd.randint(0, len(held))):
                c = held.pop()
                data = bytes(range(rnd.randint(0, sum(x for _, x in c.writable))))
                assert _write_chain(mem_l, c.writable, data) == len(data)
                _write_chain(mem_m, c.writable, data)
                assert lind.complete(c.head, len(data)) == 0
                dev.add_used(c.head, len(data))
            assert lind.need_notify() == dev.need_notify(), f"op {k}: need_notify"
        elif op == "get":
            assert lin.get_buf() == drv.get_buf(), f"op {k}: get_buf"
        elif op == "cb":
            if rnd.random() < 0.5:
                lin.disable_cb()
                drv.disable_cb()
            else:
                assert lin.enable_cb() == drv.enable_cb(), f"op {k}: enable_cb"
        else:
            if rnd.random() < 0.5:
                assert lind.notify_enable() == dev.enable_notify(), f"op {k}: notify_enable"
            else:
                lind.notify_disable()
                dev.disable_notify()
        st = lin.state()
        assert (st["free_head"], st["num_free"], st["avail_idx_shadow"], st["last_used_idx"]) == \
            (drv.free_head, drv.state.num_free, drv.state.avail_idx, drv.state.last_used), f"op {k}: {op}"
        assert mem_l == mem_m, f"op {k}: {op} bytes"
    lin.close()
    lind.close()
