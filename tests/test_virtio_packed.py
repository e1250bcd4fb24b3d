"""Packed virtqueue: byte layout, round trips, wrap counters, event suppression, hostile peers.

The ``scenario_*`` functions feed the honest side a ring a hostile peer wrote; each returns the
clause it expected the honest side to raise when the side does NOT raise it (a mutant got
through), or None when the honest side refused it with that clause (tests/mutants).
"""
from __future__ import annotations

import pytest

from t1virtio import errors
from t1virtio.hyp.memview import FlatView, read_le, write_le
from t1virtio.logic import CONCRETE
from t1virtio.virtio import packed as pk
from t1virtio.virtio.desc import (VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_USED,
                                  VIRTQ_DESC_F_WRITE)

MEM = 0x10000
REGION = (0x1000, MEM)
ARENA = 0x2000
DATA = 0x4000


def pair(num=4, event_idx=False, indirect=False, dev_indirect=None, indirect_max=4):
    """A driver and a device over one flat memory: ring at 0, shared region [0x1000, 0x10000)."""
    mem = FlatView(MEM)
    lay = pk.PackedLayout.contiguous(num, 0)
    kicks, irqs = [], []
    drv = pk.PackedDriver(mem, lay, num, event_idx=event_idx, indirect=indirect, indirect_gpa=ARENA,
                          indirect_max=indirect_max, notify=lambda: kicks.append(1))
    dev = pk.PackedDevice(mem, lay, num, REGION, event_idx=event_idx,
                          indirect=indirect if dev_indirect is None else dev_indirect, notify=lambda: irqs.append(1))
    return mem, lay, drv, dev


def raw_desc(mem, lay, slot, addr, length, id, flags):
    """Write a descriptor as a (possibly hostile) driver would."""
    pk.write_desc_body(mem, lay.desc + 16 * slot, addr, length, id)
    write_le(mem, lay.desc + 16 * slot + 14, 2, flags)


AV1 = VIRTQ_DESC_F_AVAIL            # available in lap 0 (wrap counter 1)


def _refused(fn, clause):
    try:
        fn()
    except errors.ModelError as e:
        return None if e.clause == clause else clause
    return clause


def _device_refuses(build, clause, **kw):
    mem, lay, _, dev = pair(**kw)
    build(mem, lay)
    return _refused(dev.pop, clause)


# ---- scenarios (used by tests/mutants/virtio_packed.py) ---------------------------------------

def scenario_write_before_read():
    def build(mem, lay):
        raw_desc(mem, lay, 1, DATA + 64, 16, 0, AV1)
        raw_desc(mem, lay, 0, DATA, 16, 0, AV1 | VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE)
    return _device_refuses(build, pk.WRITE_BEFORE_READ)


def scenario_partial_list():
    def build(mem, lay):
        raw_desc(mem, lay, 0, DATA, 16, 0, AV1 | VIRTQ_DESC_F_NEXT)     # slot 1 never made available
    return _device_refuses(build, pk.EXPOSE_FIRST_LAST)


def scenario_indirect_not_negotiated():
    def build(mem, lay):
        raw_desc(mem, lay, 0, ARENA, 32, 0, AV1 | VIRTQ_DESC_F_INDIRECT)
    return _device_refuses(build, pk.IND_NOT_NEGOTIATED, indirect=False)


def scenario_nested_indirect():
    def build(mem, lay):
        raw_desc(mem, lay, 0, ARENA, 32, 0, AV1 | VIRTQ_DESC_F_INDIRECT)
        raw_desc(mem, pk.PackedLayout(ARENA, 0, 0), 0, DATA, 16, 0, 0)
        raw_desc(mem, pk.PackedLayout(ARENA, 0, 0), 1, ARENA, 32, 0, VIRTQ_DESC_F_INDIRECT)
    return _device_refuses(build, pk.IND_NESTED, indirect=True)


def scenario_indirect_with_next():
    def build(mem, lay):
        raw_desc(mem, lay, 1, DATA, 16, 0, AV1)
        raw_desc(mem, lay, 0, ARENA, 16, 0, AV1 | VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT)
        raw_desc(mem, pk.PackedLayout(ARENA, 0, 0), 0, DATA, 16, 0, 0)
    return _device_refuses(build, pk.IND_IN_LIST, indirect=True)


def scenario_table_length():
    def build(mem, lay):
        raw_desc(mem, lay, 0, ARENA, 24, 0, AV1 | VIRTQ_DESC_F_INDIRECT)
    return _device_refuses(build, pk.IND_TABLE_LENGTH, indirect=True)


def scenario_outside_region():
    def build(mem, lay):
        raw_desc(mem, lay, 0, 0x0, 16, 0, AV1)                         # the ring itself, outside the region
    return _device_refuses(build, pk.ADDRESS_OUTSIDE)


def scenario_used_flags():
    """A device clears AVAIL and sets USED at the driver's live position: inconsistent (§2.8.1)."""
    mem, lay, drv, _ = pair()
    drv.add([(DATA, 8)], [(DATA + 64, 8)], "t")
    write_le(mem, lay.desc + 14, 2, VIRTQ_DESC_F_USED)
    return _refused(drv.get_used, pk.USED_FLAGS)


# ---- queue ready: the device's checks of the size and placement the driver chose -----------------

def _ready(num=4, lay=None, max_size=pk.MAX_QUEUE_SIZE, in_region=None):
    """The device made ready over a flat memory (the driver area and device area after the ring by default)."""
    return pk.PackedDevice(FlatView(MEM), lay or pk.PackedLayout.contiguous(num, 0x1000), num, REGION,
                           max_size=max_size, in_region=in_region)


def scenario_queue_size_above_max():
    """4.2.2.2: QueueNum <= QueueNumMax (8 and a non-power-of-two 5 above a maximum of 4; 4 accepted)."""
    for num in (8, 5):
        if _refused(lambda: _ready(num, max_size=4), pk.QUEUE_NUM_MAX) is not None:
            return pk.QUEUE_NUM_MAX
    _ready(4, max_size=4)
    return None


def scenario_queue_size_range():
    """§2.8: a packed queue has 1..32768 entries: 0 and 32769 refused even below the device's maximum."""
    for num in (0, pk.MAX_QUEUE_SIZE + 1):
        if _refused(lambda: _ready(num, pk.PackedLayout(0x1000, 0x1000, 0x1000), max_size=1 << 16),
                    pk.QUEUE_READY_SIZE) is not None:
            return pk.QUEUE_READY_SIZE
    return None


def scenario_ring_misaligned():
    """§2.8.11 #1: descriptor ring 16-aligned, driver and device areas 4-aligned (each misplaced alone)."""
    for lay in (pk.PackedLayout(0x1008, 0x1040, 0x1044), pk.PackedLayout(0x1000, 0x1042, 0x1048),
                pk.PackedLayout(0x1000, 0x1040, 0x1046)):
        if _refused(lambda: _ready(4, lay), pk.ALIGN) is not None:
            return pk.ALIGN
    return None


def scenario_ring_outside_region():
    """Each part wholly in the shared region [0x1000, 0x1100): the ring starting early, the driver area
    elsewhere, the device area just past the end; each refused at queue ready."""
    inside = lambda a, n: 0x1000 <= a and a + n <= 0x1100     # noqa: E731
    for lay in (pk.PackedLayout(0x0FF0, 0x1040, 0x1044), pk.PackedLayout(0x1000, 0x3000, 0x1044),
                pk.PackedLayout(0x1000, 0x1040, 0x1100)):
        if _refused(lambda: _ready(4, lay, in_region=inside), pk.RING_IN_REGION) is not None:
            return pk.RING_IN_REGION
    if _refused(lambda: _ready(4, pk.PackedLayout(0x1000, 0x1040, MEM)), pk.RING_IN_REGION) is not None:
        return pk.RING_IN_REGION          # default in_region: a part the device's view cannot read
    return None


SCENARIOS = [scenario_write_before_read, scenario_partial_list, scenario_indirect_not_negotiated,
             scenario_nested_indirect, scenario_indirect_with_next, scenario_table_length, scenario_outside_region,
             scenario_used_flags, scenario_queue_size_above_max, scenario_queue_size_range, scenario_ring_misaligned,
             scenario_ring_outside_region]


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_scenario_refused_by_honest_side(sc):
    assert sc() is None


# ---- byte layout and round trips ---------------------------------------------------------------

def test_layout_and_first_descriptor_bytes():
    mem, lay, drv, dev = pair(num=5)
    assert lay == pk.PackedLayout(0, 80, 84)
    id = drv.add([(DATA, 10)], [(DATA + 100, 20)], "tok")
    assert id == 0
    d0, d1 = pk.read_desc(mem, 0), pk.read_desc(mem, 16)
    assert d0 == pk.RawDesc(DATA, 10, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_NEXT)
    assert d1 == pk.RawDesc(DATA + 100, 20, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_WRITE)
    chain = dev.pop()
    assert chain == pk.Chain(0, [(DATA, 10)], [(DATA + 100, 20)], 2)
    dev.push_used(0, 7)
    assert pk.read_desc(mem, 0) == pk.RawDesc(DATA, 7, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED | VIRTQ_DESC_F_WRITE)
    assert drv.get_used() == ("tok", 7)
    assert drv.get_used() is None


def test_round_trips_wrap_the_ring_many_times_odd_size():
    mem, lay, drv, dev = pair(num=7)
    for i in range(200):
        n_out, n_in = 1 + i % 3, i % 2
        outs = [(DATA + 0x100 * k, 16) for k in range(n_out)]
        ins = [(DATA + 0x1000 + 0x100 * k, 32) for k in range(n_in)]
        for k, (a, ln) in enumerate(outs):
            mem.write(a, bytes([i & 0xFF, k]) * (ln // 2))
        drv.add(outs, ins, i)
        assert drv.kick()
        ch = dev.pop()
        assert dev.read(ch) == b"".join(bytes([i & 0xFF, k]) * 8 for k in range(n_out))
        wrote = dev.write(ch, bytes([0xA5]) * 40)
        dev.push_used(ch.id, wrote)
        assert dev.need_notify()
        assert drv.get_used() == (i, wrote)
        assert mem.read(DATA + 0x1000, wrote) == bytes([0xA5]) * wrote
    assert drv.state.num_free == 7 and dev.state.in_flight == 0


def test_out_of_order_completion_and_exact_end_wrap():
    mem, lay, drv, dev = pair(num=4)
    a = drv.add([(DATA, 8)], [], "a")
    b = drv.add([(DATA, 8)] * 3, [], "b")              # ends exactly at the ring end: wrap flips
    assert (drv.state.next_avail, drv.state.avail_wrap) == (0, False)
    ca, cb = dev.pop(), dev.pop()
    assert (ca.id, cb.id, cb.ndesc) == (a, b, 3)
    dev.push_used(b, 0)                               # b used first, at slot 0; next used slot 3
    assert drv.get_used() == ("b", 0)
    assert drv.get_used() is None
    dev.push_used(a, 0)
    assert drv.get_used() == ("a", 0)
    assert (drv.state.last_used, drv.state.used_wrap) == (0, False)
    c = drv.add([(DATA, 8)], [], "c")                 # lap 1: AVAIL 0, USED 1
    assert pk.read_desc(mem, 0).flags == VIRTQ_DESC_F_USED
    assert dev.pop().id == c


def test_indirect_table_bytes_and_limits():
    mem, lay, drv, dev = pair(num=4, indirect=True, indirect_max=4)
    id = drv.add([(DATA, 8), (DATA + 8, 8)], [(DATA + 64, 16)], "x")
    head = pk.read_desc(mem, 0)
    assert head == pk.RawDesc(ARENA + id * 64, 48, id, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_INDIRECT)
    assert pk.read_desc(mem, ARENA + 32).flags == VIRTQ_DESC_F_WRITE
    ch = dev.pop()
    assert ch == pk.Chain(id, [(DATA, 8), (DATA + 8, 8)], [(DATA + 64, 16)], 1)
    assert drv.state.num_free == 3


def test_ring_full_and_caller_errors():
    _, _, drv, _ = pair(num=2)
    with pytest.raises(errors.CallerError, match="empty-buffer"):
        drv.add([], [], "e")
    drv.add([(DATA, 1)], [], 1)
    with pytest.raises(errors.Exhausted, match="ring-space"):
        drv.add([(DATA, 1)] * 2, [], 2)
    with pytest.raises(errors.CallerError, match="queue-size"):
        pk.PackedDriver(FlatView(64), pk.PackedLayout(0, 0, 4), 0)


def test_event_suppression_both_ways():
    mem, lay, drv, dev = pair(num=4, event_idx=True)
    dev.set_event(pk.RING_EVENT_FLAGS_DISABLE)
    drv.add([(DATA, 1)], [], 1)
    assert not drv.kick_prepare()
    c1 = dev.pop()
    dev.set_event(pk.RING_EVENT_FLAGS_DESC)           # wake me when slot 1 (lap 0) becomes available
    assert read_le(mem, lay.device, 2) == 0x8001
    drv.add([(DATA, 1)], [], 2)
    assert drv.kick_prepare()
    drv.add([(DATA, 1)], [], 3)
    assert not drv.kick_prepare()
    drv.disable_cb()
    assert read_le(mem, lay.driver + 2, 2) == pk.RING_EVENT_FLAGS_DISABLE
    dev.push_used(c1.id, 0)
    assert not dev.need_notify()
    assert drv.enable_cb() is False                   # a used buffer is pending
    assert read_le(mem, lay.driver, 2) == 0x8000 and read_le(mem, lay.driver + 2, 2) == pk.RING_EVENT_FLAGS_DESC
    assert drv.get_used() == (1, 0)
    assert read_le(mem, lay.driver, 2) == 0x8001      # off_wrap follows last_used under DESC
    ch = dev.pop()
    dev.push_used(ch.id, 0)
    assert dev.need_notify()
    ch = dev.pop()
    drv.disable_cb()
    dev.push_used(ch.id, 0)
    assert not dev.need_notify()


def test_device_refuses_without_changing_state():
    mem, lay, _, dev = pair(num=4)
    for k in range(4):
        raw_desc(mem, lay, k, DATA, 16, 0, AV1 | VIRTQ_DESC_F_NEXT)
    before = dev.state
    with pytest.raises(errors.PeerViolation, match="chain-too-long"):
        dev.pop()
    assert dev.state == before


def test_device_refuses_reused_id_and_bad_id():
    mem, lay, _, dev = pair(num=4)
    raw_desc(mem, lay, 0, DATA, 16, 9, AV1)
    with pytest.raises(errors.PeerViolation, match="id-range"):
        dev.pop()
    raw_desc(mem, lay, 0, DATA, 16, 2, AV1)
    raw_desc(mem, lay, 1, DATA, 16, 2, AV1)
    assert dev.pop().id == 2
    with pytest.raises(errors.PeerViolation, match="id-in-flight"):
        dev.pop()


def test_driver_refuses_bad_used_descriptors():
    mem, lay, drv, _ = pair(num=4)
    drv.add([(DATA, 8)], [(DATA + 64, 8)], "t")
    used = VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED | VIRTQ_DESC_F_WRITE
    for id, ln, clause in ((7, 1, pk.USED_ID_RANGE), (3, 1, pk.USED_ID_NOT_OUTSTANDING), (0, 9, pk.USED_LEN)):
        raw_desc(mem, lay, 0, 0, ln, id, used)
        with pytest.raises(errors.PeerViolation) as e:
            drv.get_used()
        assert e.value.clause == clause
    raw_desc(mem, lay, 0, 0, 8, 0, used)
    assert drv.get_used() == ("t", 8)
    raw_desc(mem, lay, 2, 0, 0, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)   # used where nothing is live
    with pytest.raises(errors.PeerViolation) as e:
        drv.get_used()
    assert e.value.clause == pk.USED_FLAGS


def test_detach_unused_returns_every_token():
    _, _, drv, _ = pair(num=4)
    drv.add([(DATA, 1)], [], "a")
    drv.add([(DATA, 1)] * 2, [], "b")
    assert {drv.detach_unused(), drv.detach_unused()} == {"a", "b"}
    assert drv.detach_unused() is None and drv.state.num_free == 4
    with pytest.raises(errors.CallerError, match="detached"):
        drv.add([(DATA, 1)], [], "c")


def test_linux_kick_arithmetic_matches_the_position_rule_exhaustively():
    """Linux's u16 vring_need_event with the wrap adjustment equals 'the event position is among the
    last num_added published' for every size 1..9, position, count <= num and valid event."""
    from t1virtio.specs.rules.virtio_packed import _passed
    for num in range(1, 10):
        for a in range(num):
            for aw in (False, True):
                for added in range(num + 1):
                    d = pk.PackedDriverState(num, True, a, aw, 0, True, 0, added, 0, False, (0,) * num, (0,) * num)
                    for off in range(num):
                        for ew in (False, True):
                            kick = pk.packed_kick_prepare(CONCRETE, d, pk.RING_EVENT_FLAGS_DESC, off, ew).out
                            assert kick == _passed(CONCRETE, num, off, ew, a, aw, added), (num, a, aw, added, off, ew)


def test_largest_queue_wraps():
    """2^15 entries (§2.8): a list ending exactly at the ring end flips both wrap counters."""
    num = pk.MAX_QUEUE_SIZE
    mem = FlatView(16 * num + 8 + 0x2000)
    lay = pk.PackedLayout.contiguous(num, 0)
    region = (16 * num + 8, 16 * num + 8 + 0x2000)
    drv = pk.PackedDriver(mem, lay, num)
    dev = pk.PackedDevice(mem, lay, num, region)
    drv.state = drv.state.__class__(**{**{f: getattr(drv.state, f) for f in drv.state.__slots__},
                                      "next_avail": num - 2, "last_used": num - 2})
    dev.state = dev.state.__class__(**{**{f: getattr(dev.state, f) for f in dev.state.__slots__},
                                      "next_avail": num - 2, "next_used": num - 2})
    drv.add([(region[0], 8), (region[0] + 8, 8)], [], "big")
    assert (drv.state.next_avail, drv.state.avail_wrap) == (0, False)
    ch = dev.pop()
    dev.push_used(ch.id, 0)
    assert drv.get_used() == ("big", 0)
    assert (drv.state.last_used, drv.state.used_wrap) == (0, False)
    with pytest.raises(errors.PeerViolation, match="queue#size"):      # the driver's QueueNum, refused at queue ready
        pk.PackedDevice(mem, lay, num + 1, region)


def test_queue_ready_accepts_any_legal_size_and_exact_placement():
    """Sizes need not be powers of two (1, 5, 7, 100, 32768 at a maximum of 32768); parts exactly filling
    the region [0x1000, 0x1000 + 16 * num + 8) are accepted (16- and 4-aligned, no byte outside)."""
    for num in (1, 5, 7, 100):
        hi = 0x1000 + 16 * num + 8
        dev = _ready(num, in_region=lambda a, n, hi=hi: 0x1000 <= a and a + n <= hi)
        assert dev.state.num == num and dev.max_size == pk.MAX_QUEUE_SIZE
    num = pk.MAX_QUEUE_SIZE
    mem = FlatView(16 * num + 8)
    pk.PackedDevice(mem, pk.PackedLayout.contiguous(num, 0), num, (0, 16 * num + 8))
    assert pk.part_sizes(num) == (16 * num, 4, 4)
