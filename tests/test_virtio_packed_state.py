"""Packed virtqueue sides built mid-stream (``from_state``): any legal starting state, nothing else.

A pair built with ``PackedDriver.from_state`` and ``PackedDevice.from_state`` must be the pair a run of
normal operations reaches (same states, same ring bytes where a side wrote them), satisfy every side and
ring invariant on the real bytes, and run on from there, across the ring end; an illegal state is
refused with the clause of the invariant it breaks.
"""
from __future__ import annotations

import itertools

import pytest

from t1virtio import errors
from t1virtio.hyp.memview import FlatView, read_le
from t1virtio.logic import CONCRETE
from t1virtio.specs.invariants import REGISTRY
import t1virtio.specs.invariants.virtio_packed  # noqa: F401
from t1virtio.virtio import packed as pk
from t1virtio.virtio.desc import DESC_SIZE, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED

MEM = 0x10000
REGION = (0x1000, MEM)
ARENA = 0x2000
DATA = 0x4000


def broken(component, state):
    """Return the clauses of ``component``'s invariants ``state`` breaks (evaluated concretely)."""
    return [i.clause for i in REGISTRY[component] if not i.fn(CONCRETE, state)]


def ring_of(mem, lay, drv, dev, done):
    """The pair's ghost state read from the real ring bytes (as the packed machine reads it)."""
    descs = [pk.read_desc(mem, lay.desc + DESC_SIZE * k) for k in range(drv.num)]
    return pk.PackedRing(drv=drv.state, dev=dev.state,
                         avail_bits=tuple(bool(d.flags & VIRTQ_DESC_F_AVAIL) for d in descs),
                         used_bits=tuple(bool(d.flags & VIRTQ_DESC_F_USED) for d in descs),
                         slot_ids=tuple(d.id for d in descs), done=tuple(k in done for k in range(drv.num)))


def buffer(k):
    """Buffer ``k``: one readable element, and a writable one for odd ``k`` (1 or 2 descriptors direct)."""
    out = [(DATA + 0x100 * k, 8)]
    inn = [(DATA + 0x100 * k + 0x40, 16 + k)] if k % 2 else []
    return out, inn, f"t{k}"


def sides(num, event_idx, indirect):
    return dict(event_idx=event_idx, indirect=indirect), dict(event_idx=event_idx, indirect=indirect)


def mid_stream(num, start, wrap, u, h, a, event_idx=False, indirect=False, num_added=0):
    """A pair built mid-stream: buffers 0..u+h+a-1 made available from position (start, wrap); the first ``u``
    used (length 3 when writable), the next ``h`` held by the device, the last ``a`` available only."""
    mem = FlatView(MEM)
    lay = pk.PackedLayout.contiguous(num, 0x1000)
    bufs = [buffer(k) for k in range(u + h + a)]
    probe = pk.PackedDriver(FlatView(MEM), lay, num, indirect=indirect, indirect_gpa=ARENA, indirect_max=4)
    ns, free = [], num
    for o, i, _ in bufs:
        ns.append(1 if probe._use_indirect(len(o) + len(i), free) else len(o) + len(i))
        free -= ns[-1]
    A = pk.advance(CONCRETE, num, start, wrap, sum(ns))
    drv = pk.PackedDriver.from_state(mem, lay, num, next_avail=A[0], avail_wrap=A[1], buffers=bufs,
                                     num_added=num_added, event_idx=event_idx, indirect=indirect,
                                     indirect_gpa=ARENA, indirect_max=4)
    ids = [drv.tokens.index(f"t{k}") for k in range(len(bufs))]
    wl = [sum(n for _, n in bufs[k][1]) for k in range(len(bufs))]
    DA = pk.advance(CONCRETE, num, start, wrap, sum(ns[:u + h]))
    dev = pk.PackedDevice.from_state(
        mem, lay, num, REGION, next_avail=DA[0], avail_wrap=DA[1], event_idx=event_idx, indirect=indirect,
        held={ids[k]: (ns[k], wl[k]) for k in range(u, u + h)},
        used=[(ids[k], min(3, wl[k]), ns[k]) for k in range(u)])
    return mem, lay, drv, dev, bufs, ids, wl


def normal_run(num, start, wrap, u, h, a, event_idx=False, indirect=False):
    """The same pair reached by normal operations from a fresh ring: single-descriptor round trips up to
    (start, wrap), then the buffers added, ``u + h`` popped and the first ``u`` used in order."""
    mem = FlatView(MEM)
    lay = pk.PackedLayout.contiguous(num, 0x1000)
    drv = pk.PackedDriver(mem, lay, num, event_idx=event_idx, indirect=indirect, indirect_gpa=ARENA, indirect_max=4)
    dev = pk.PackedDevice(mem, lay, num, REGION, event_idx=event_idx, indirect=indirect)
    for _ in range(start + (0 if wrap else num)):
        drv.add([(DATA, 1)], [], "warm")
        dev.push_used(dev.pop().id, 0)
        assert drv.get_used() == ("warm", 0)
    for o, i, t in (buffer(k) for k in range(u + h + a)):
        drv.add(o, i, t)
    chains = [dev.pop() for _ in range(u + h)]
    for c in chains[:u]:
        dev.push_used(c.id, min(3, sum(n for _, n in c.writable)))
    dev.need_notify()
    return mem, lay, drv, dev


def _fields(state):
    return {f: (tuple(getattr(state, f)) if f in ("ndesc", "wlen") else getattr(state, f)) for f in state.__slots__}


CASES = [(4, 0, True, 1, 1, 1), (4, 3, True, 0, 1, 1), (4, 3, False, 1, 0, 1), (7, 5, True, 1, 1, 2),
         (7, 6, False, 2, 1, 1), (7, 2, False, 0, 0, 0), (7, 6, True, 0, 0, 3), (5, 4, True, 2, 0, 1)]


@pytest.mark.parametrize("num,start,wrap,u,h,a", CASES)
@pytest.mark.parametrize("indirect", [False, True])
def test_from_state_is_the_state_normal_operations_reach(num, start, wrap, u, h, a, indirect):
    """Same driver and device states as the normal run, the same bytes in every live slot [last_used,
    next_avail) (descriptors, used descriptors, indirect tables), the same AVAIL/USED bits in every slot."""
    m1, lay, d1, v1, *_ = mid_stream(num, start, wrap, u, h, a, indirect=indirect)
    m2, _, d2, v2 = normal_run(num, start, wrap, u, h, a, indirect=indirect)
    d1.state = pk.replace(d1.state, num_added=d2.state.num_added)
    assert _fields(d1.state) == _fields(d2.state)
    assert _fields(v1.state) == _fields(v2.state)
    assert d1.tokens == [t if t != "warm" else None for t in d2.tokens]
    live = pk.distance(CONCRETE, num, d1.state.last_used, d1.state.used_wrap, d1.state.next_avail, d1.state.avail_wrap)
    for k in range(num):
        slot = (d1.state.last_used + k) % num
        at = lay.desc + DESC_SIZE * slot
        if k < live:
            assert m1.read(at, DESC_SIZE) == m2.read(at, DESC_SIZE), slot
        assert read_le(m1, at + 14, 2) & 0x8080 == read_le(m2, at + 14, 2) & 0x8080, slot
    for id in range(num):                           # indirect tables of outstanding ids
        if d1.state.ndesc[id] and indirect:
            t = ARENA + id * 4 * DESC_SIZE
            assert m1.read(t, 4 * DESC_SIZE) == m2.read(t, 4 * DESC_SIZE)
    assert read_le(m1, lay.driver + 2, 2) == read_le(m2, lay.driver + 2, 2)
    assert m1.read(lay.device, 4) == m2.read(lay.device, 4)


@pytest.mark.parametrize("num,start,wrap,u,h,a", CASES)
@pytest.mark.parametrize("event_idx,indirect", [(False, False), (True, True)])
def test_a_pair_built_mid_stream_satisfies_every_invariant_and_runs_on(num, start, wrap, u, h, a, event_idx, indirect):
    """Every side and ring invariant holds on the real bytes; then the driver takes back the used buffers, the
    device completes what it holds (newest first) and pops the rest, each buffer comes back once with its
    length, and round trips run on across the ring end (both wrap counters flip)."""
    mem, lay, drv, dev, bufs, ids, wl = mid_stream(num, start, wrap, u, h, a, event_idx, indirect)
    assert broken("virtio_packed_driver", drv.state) == [] and broken("virtio_packed_device", dev.state) == []
    assert broken("virtio_packed", ring_of(mem, lay, drv, dev, set(ids[:u]))) == []
    assert [drv.get_used() for _ in range(u)] == [(f"t{k}", min(3, wl[k])) for k in range(u)]
    for k in reversed(range(u, u + h)):
        dev.push_used(ids[k], wl[k])
    for k in range(u + h, u + h + a):
        c = dev.pop()
        assert (c.id, c.readable, c.writable) == (ids[k], bufs[k][0], bufs[k][1])
        assert dev.read(c) == mem.read(bufs[k][0][0][0], 8)
        dev.push_used(c.id, dev.write(c, b"x" * wl[k]))
    rest = [drv.get_used() for _ in range(h + a)]
    assert sorted(rest) == sorted((f"t{k}", wl[k]) for k in range(u, u + h + a))
    assert [r[0] for r in rest[:h]] == [f"t{k}" for k in reversed(range(u, u + h))]
    assert drv.state.num_free == num and drv.get_used() is None and dev.pop() is None
    laps = (drv.state.avail_wrap, dev.state.used_wrap)
    for k in range(2 * num):
        drv.add([(DATA, 4)], [(DATA + 0x40, 4)], k)
        c = dev.pop()
        dev.push_used(c.id, 4)
        assert drv.get_used() == (k, 4)
        assert broken("virtio_packed", ring_of(mem, lay, drv, dev, set())) == []
    assert (drv.state.avail_wrap, dev.state.used_wrap) == laps   # 2 * num descriptors a round trip: two laps each


def test_from_state_driver_against_a_normal_device_near_the_ring_end():
    """A driver alone mid-stream at (0, wrap 1) with a fresh device; and a driver 1 slot before the end whose
    list crosses it, against a device built at the same position: the wrap counters flip on both sides."""
    mem = FlatView(MEM)
    lay = pk.PackedLayout.contiguous(5, 0x1000)
    drv = pk.PackedDriver.from_state(mem, lay, 5, next_avail=3, buffers=[buffer(0), buffer(1)])
    dev = pk.PackedDevice(mem, lay, 5, REGION)
    assert [dev.pop().id for _ in range(2)] == [0, 1] and dev.pop() is None
    mem = FlatView(MEM)
    drv = pk.PackedDriver.from_state(mem, lay, 5, next_avail=4, avail_wrap=False)
    dev = pk.PackedDevice.from_state(mem, lay, 5, REGION, next_avail=4, avail_wrap=False)
    assert drv.get_used() is None and dev.pop() is None          # free slots read neither available nor used
    drv.add([(DATA, 8), (DATA + 8, 8)], [(DATA + 0x40, 8)], "cross")
    assert (drv.state.next_avail, drv.state.avail_wrap) == (2, True)
    c = dev.pop()
    assert c.readable == [(DATA, 8), (DATA + 8, 8)] and (dev.state.next_avail, dev.state.avail_wrap) == (2, True)
    dev.push_used(c.id, 8)
    assert drv.get_used() == ("cross", 8) and (drv.state.last_used, drv.state.used_wrap) == (2, True)


def test_explicit_ids_and_the_free_list():
    """Ids a trace names: id 3 (one descriptor), id 0 (two: entries 0 and the lowest free, 1); the free list is
    then the rest, ascending (2), and ids come back in Linux's order."""
    mem = FlatView(MEM)
    lay = pk.PackedLayout.contiguous(4, 0x1000)
    drv = pk.PackedDriver.from_state(mem, lay, 4, next_avail=3,
                                     buffers=[([(DATA, 4)], [], "a", 3), ([(DATA, 4)], [(DATA + 8, 4)], "b", 0)])
    assert list(drv.state.ndesc) == [2, 0, 0, 1] and drv.free_head == 2 and drv.last_id[0] == 1
    dev = pk.PackedDevice.from_state(mem, lay, 4, REGION, next_avail=0)
    assert [c.id for c in (dev.pop(), dev.pop())] == [3, 0]
    dev.push_used(0, 4)
    dev.push_used(3, 0)
    assert drv.get_used() == ("b", 4) and drv.get_used() == ("a", 0)
    assert drv.add([(DATA, 1)], [], "c") == 3 and drv.add([(DATA, 1)], [], "d") == 0
    assert broken("virtio_packed_driver", drv.state) == []


@pytest.mark.parametrize("kw,clause", [
    (dict(next_avail=4), "driver#bounds"),
    (dict(next_avail=-1), "driver#bounds"),
    (dict(next_avail=0, event_flags=2), "driver#bounds"),
    (dict(next_avail=0, event_flags=3, event_idx=True), "driver#bounds"),
    (dict(next_avail=0, num_added=-1), "driver#bounds"),
    (dict(next_avail=3, last_used=1, buffers=[buffer(0)]), "driver#wrap-positions"),
    (dict(next_avail=1, last_used=0, used_wrap=False, buffers=[buffer(0)]), "driver#wrap-positions"),
    (dict(next_avail=0, buffers=[buffer(0)] * 5), "driver#accounting"),
    (dict(next_avail=2, buffers=[([(DATA, 1)], [], "a", 1), ([(DATA, 1)], [], "b", 1)]), "driver#accounting"),
    (dict(next_avail=1, buffers=[([(DATA, 1)], [], "a", 4)]), "driver#accounting"),
])
def test_an_illegal_driver_state_is_refused_with_the_invariant_clause(kw, clause):
    with pytest.raises(errors.InvariantViolation, match=clause):
        pk.PackedDriver.from_state(FlatView(MEM), pk.PackedLayout.contiguous(4, 0x1000), 4, **kw)


def test_an_empty_outstanding_buffer_is_a_caller_error():
    with pytest.raises(errors.CallerError, match="empty-buffer"):
        pk.PackedDriver.from_state(FlatView(MEM), pk.PackedLayout.contiguous(4, 0x1000), 4, next_avail=1,
                                   buffers=[([], [], "a")])


@pytest.mark.parametrize("kw,clause", [
    (dict(next_avail=4), "device#bounds"),
    (dict(next_avail=0, event_flags=2), "device#bounds"),
    (dict(next_avail=0, num_used=-1), "device#bounds"),
    (dict(next_avail=1, held={4: (1, 0)}), "device#in-flight"),
    (dict(next_avail=1, held={0: (1, 1 << 32)}), "device#in-flight"),
    (dict(next_avail=1, held={0: (5, 0)}), "device#in-flight"),
    (dict(next_avail=2, next_used=0, held={0: (1, 0)}), "device#in-flight"),
    (dict(next_avail=0, next_used=0, used_wrap=False), "device#in-flight"),
    (dict(next_avail=1, held={0: (1, 0)}, used=[(0, 0, 1)]), "ring#ids"),
    (dict(next_avail=0, used=[(1, 0, 1), (1, 0, 1)]), "ring#ids"),
    (dict(next_avail=1, held={0: (2, 0)}, used=[(1, 0, 3)]), "ring#ids"),
    (dict(next_avail=0, used=[(4, 0, 1)]), "ring#ids"),
    (dict(next_avail=0, used=[(1, 1 << 32, 1)]), "ring#ids"),
])
def test_an_illegal_device_state_is_refused_with_the_invariant_clause(kw, clause):
    with pytest.raises(errors.InvariantViolation, match=clause):
        pk.PackedDevice.from_state(FlatView(MEM), pk.PackedLayout.contiguous(4, 0x1000), 4, REGION, **kw)


def test_queue_ready_runs_before_the_state_check():
    with pytest.raises(errors.PeerViolation, match="queue#num-max"):
        pk.PackedDevice.from_state(FlatView(MEM), pk.PackedLayout.contiguous(8, 0x1000), 8, REGION, next_avail=9,
                                   max_size=4)


def test_from_state_accepts_exactly_what_the_invariants_allow():
    """Over a grid of positions, wraps, descriptors outstanding / held and modes, each side's from_state accepts
    a state iff every invariant of that side holds of it, and refuses with the clause of one it breaks."""
    lay = pk.PackedLayout.contiguous(3, 0x1000)
    seen = set()
    for na, aw, lu, uw, n, mode, ev in itertools.product(range(4), [True, False], range(4), [True, False], range(4),
                                                           [0, 2], [False, True]):
        bufs = [([(DATA, 1)], [], k) for k in range(n)]
        want = pk.replace(pk.apply(pk.packed_driver_create(CONCRETE, 3, ev, 3))[0], next_avail=na, avail_wrap=aw,
                          last_used=lu, used_wrap=uw, num_free=3 - n, event_flags=mode,
                          ndesc=tuple(1 if k < n else 0 for k in range(3)), wlen=(0, 0, 0))
        try:
            drv = pk.PackedDriver.from_state(FlatView(MEM), lay, 3, next_avail=na, avail_wrap=aw, last_used=lu,
                                             used_wrap=uw, buffers=bufs, event_flags=mode, event_idx=ev)
        except errors.InvariantViolation as e:
            assert e.clause in broken("virtio_packed_driver", want), (na, aw, lu, uw, n, mode, ev, e.clause)
            seen.add("driver refused")
        else:
            assert broken("virtio_packed_driver", want) == [] and _fields(drv.state) == _fields(want)
            seen.add("driver accepted")
        held = {k: (1, 2) for k in range(n)}
        want = pk.replace(pk.apply(pk.packed_device_create(CONCRETE, 3, ev, 3))[0], next_avail=na, avail_wrap=aw,
                          next_used=lu, used_wrap=uw, in_flight=n, event_flags=mode,
                          ndesc=tuple(1 if k < n else 0 for k in range(3)), wlen=tuple(2 if k < n else 0 for k in range(3)))
        try:
            dev = pk.PackedDevice.from_state(FlatView(MEM), lay, 3, REGION, next_avail=na, avail_wrap=aw, next_used=lu,
                                             used_wrap=uw, held=held, event_flags=mode, event_idx=ev)
        except errors.InvariantViolation as e:
            assert e.clause in broken("virtio_packed_device", want), (na, aw, lu, uw, n, mode, ev, e.clause)
            seen.add("device refused")
        else:
            assert broken("virtio_packed_device", want) == [] and _fields(dev.state) == _fields(want)
            seen.add("device accepted")
    assert seen == {"driver refused", "driver accepted", "device refused", "device accepted"}
