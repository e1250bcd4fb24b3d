"""Split virtqueue: round trips, the u16 wrap, and a hostile peer on either side (virtio 1.3 §2.7).

The functions without ``test_`` are scenarios (``scenario:test_virtio_split:<name>`` in
tests/mutants): each builds one hostile ring and returns the clause it sees broken (the model
accepted what it must refuse, refused with another clause, or did not stop), or None when the
model refused with the expected clause.
"""
from __future__ import annotations

import struct

import pytest

from t1virtio import errors
from t1virtio.hyp.memview import FlatView, write_le
from t1virtio.virtio import chain, split
from t1virtio.virtio.desc import VIRTQ_DESC_F_INDIRECT as IND, VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as W

SIZE = 4
MEM = 8192
DATA = 0x400          # data and indirect tables live at and above this offset (the shared region)
TABLE = 0x300         # a hostile indirect table (inside the region)


class Ring:
    """One ring over a flat buffer: a model device, optionally a model driver, and raw writers for a hostile side."""

    def __init__(self, indirect=True, event_idx=False, region=(0x300, MEM), with_driver=False, start=0):
        self.buf = bytearray(MEM)
        self.mem = FlatView(self.buf)
        self.lay = split.compute_layout(SIZE, 0, align=4)
        lo, hi = region
        self.driver = split.SplitDriver(self.mem, self.lay, event_idx=event_idx, indirect=indirect,
                                        indirect_arena=(0x200, SIZE), start=start) if with_driver else None
        ring_end = split.ring_bytes(self.lay)     # the ring lies in the shared region too (queue#in-region)
        self.device = split.SplitDevice(self.mem, self.lay, event_idx=event_idx, indirect=indirect, start=start,
                                        in_region=lambda a, n: (lo <= a and a + n <= hi) or (0 <= a and a + n <= ring_end))
        self.avail_idx = start
        self.reads = 0

    def desc(self, i, addr, length, flags=0, nxt=0, table=None):
        """Write descriptor ``i`` of the ring (or of the indirect table at ``table``) as a hostile driver."""
        base = self.lay.desc if table is None else table
        self.mem.write(base + 16 * i, chain.Desc(addr, length, flags, nxt).encode())

    def publish(self, *heads, idx=None):
        """Put heads in the available ring and move its idx (to ``idx`` if given) as a hostile driver."""
        for h in heads:
            write_le(self.mem, self.lay.avail_ring_at(self.avail_idx % SIZE), 2, h)
            self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        write_le(self.mem, self.lay.avail + 2, 2, self.avail_idx if idx is None else idx)

    def used(self, slot, id_, length, idx):
        """Write a used entry and the used idx as a hostile device."""
        self.mem.write(self.lay.used_elem_at(slot), struct.pack("<II", id_, length))
        write_le(self.mem, self.lay.used + 2, 2, idx)

    def count_reads(self, limit):
        """Fail fast (RuntimeError) if the device reads more than ``limit`` descriptors."""
        orig = self.device._read_desc

        def counted(i):
            self.reads += 1
            if self.reads > limit:
                raise RuntimeError(f"the walk read {self.reads} descriptors and did not stop")
            return orig(i)
        self.device._read_desc = counted


def _refused_with(fn, clause):
    """Return None if ``fn()`` raises ``PeerViolation(clause)``, else the clause seen broken."""
    try:
        fn()
    except errors.PeerViolation as e:
        return None if e.clause == clause else clause
    except (errors.ModelBug, RuntimeError):
        return clause
    return clause


def _pop_refused(r: Ring, clause):
    got = _refused_with(r.device.pop_avail, clause)
    if got is None and r.device.broken != clause:
        return clause
    return got


# ---------------------------------------------------------------- hostile driver: chains

def descriptor_loop_is_refused():
    r = Ring()
    r.count_reads(10 * (2 * SIZE + 1))       # not walk_bound(): a mutant may have lifted it
    r.desc(0, DATA, 8, NEXT, 1)
    r.desc(1, DATA, 8, NEXT, 0)
    r.publish(0)
    return _pop_refused(r, chain.LOOP)


def total_length_overflow_is_refused():
    """2^32 + 1 bytes: one more than 2.7.5.2#1 allows."""
    r = Ring(region=(0, 1 << 40))
    r.desc(0, DATA, 0xFFFFFFFF, NEXT, 1)
    r.desc(1, DATA, 2, 0, 0)
    r.publish(0)
    return _pop_refused(r, chain.TOTAL_LEN)


def indirect_without_feature_is_refused():
    r = Ring(indirect=False)
    r.desc(0, DATA, 0, 0, 0, table=TABLE)
    r.desc(0, TABLE, 16, IND)
    r.publish(0)
    return _pop_refused(r, chain.FEATURE)


def nested_indirect_is_refused():
    r = Ring()
    r.desc(0, DATA, 8, NEXT, 1, table=TABLE)
    r.desc(1, TABLE + 64, 16, IND, 0, table=TABLE)
    r.desc(0, DATA + 64, 8, 0, 0, table=TABLE + 64)
    r.desc(0, TABLE, 32, IND)
    r.publish(0)
    return _pop_refused(r, chain.NESTED)


def indirect_chain_longer_than_queue_is_refused():
    """2.7.5.3.1#3: a chain of size + 1 descriptors in a table of 2 * size entries (the table's length is legal)."""
    r = Ring()
    for j in range(SIZE + 1):
        r.desc(j, DATA + 8 * j, 8, NEXT if j < SIZE else 0, j + 1, table=TABLE)
    r.desc(0, TABLE, 16 * 2 * SIZE, IND)
    r.publish(0)
    return _pop_refused(r, chain.CHAIN_LEN)


LONG = 16 * SIZE      # entries of a long indirect table: the 256-entry table of a 16-entry queue, scaled


def long_indirect_table_with_short_chain_is_accepted():
    """2.7.5.3.1#3 limits the chain (entry 0 and its next links), not the table: a 16 * size-entry table whose chain
    has size descriptors spread over it (next up to the last entry) is legal; the walk reads only the chain."""
    r = Ring()
    links = [0, LONG - 1, 5, LONG // 2][:SIZE]
    for k, j in enumerate(links):
        last = k == len(links) - 1
        r.desc(j, DATA + 8 * k, 8, (0 if last else NEXT) | (W if k >= 2 else 0), 0 if last else links[k + 1],
               table=TABLE)
    r.desc(0, TABLE, 16 * LONG, IND)
    r.publish(0)
    reads = []
    orig = r.device._read_table
    r.device._read_table = lambda t, j: reads.append(j) or orig(t, j)
    try:
        c = r.device.pop_avail()
    except errors.PeerViolation as e:
        return e.clause
    if reads != links or len(c.readable) != 2 or len(c.writable) != SIZE - 2 or c.table != TABLE:
        return chain.CHAIN_LEN
    return None


def chain_of_exactly_2_32_bytes_is_accepted():
    """2.7.5.2#1 forbids chains *longer* than 2^32 bytes: (2^32 - 1) + 1 bytes is legal."""
    r = Ring(region=(0, 1 << 40))
    r.desc(0, DATA, 0xFFFFFFFF, NEXT, 1)
    r.desc(1, DATA, 1, W, 0)
    r.publish(0)
    try:
        c = r.device.pop_avail()
    except errors.PeerViolation as e:
        return e.clause
    return None if c.wlen == 1 and c.readable == ((DATA, 0xFFFFFFFF),) else chain.TOTAL_LEN


def indirect_with_next_is_refused():
    r = Ring()
    r.desc(0, DATA, 8, 0, 0, table=TABLE)
    r.desc(0, TABLE, 16, IND | NEXT, 1)
    r.desc(1, DATA, 8)
    r.publish(0)
    return _pop_refused(r, chain.INDIRECT_NEXT)


def readable_after_writable_is_refused():
    r = Ring()
    r.desc(0, DATA, 8, W | NEXT, 1)
    r.desc(1, DATA + 8, 8, 0, 0)
    r.publish(0)
    return _pop_refused(r, chain.ORDER)


def next_out_of_range_is_refused():
    r = Ring()
    r.desc(0, DATA, 8, NEXT, SIZE)
    r.publish(0)
    return _pop_refused(r, chain.NEXT_RANGE)


def indirect_len_not_multiple_of_16_is_refused():
    r = Ring()
    r.desc(0, DATA, 8, NEXT, 1, table=TABLE)
    r.desc(1, DATA + 8, 8, 0, 0, table=TABLE)
    r.desc(0, TABLE, 24, IND)
    r.publish(0)
    return _pop_refused(r, chain.TABLE_LEN)


def buffer_outside_region_is_refused():
    r = Ring()
    r.desc(0, DATA, 8, NEXT, 1)
    r.desc(1, MEM - 4, 8, W)
    r.publish(0)
    return _pop_refused(r, chain.IN_REGION)


# ---------------------------------------------------------------- hostile driver: available ring

def avail_idx_jump_is_refused():
    """CVE-2016-5403 / vm-virtio #196: an avail idx more than the queue size ahead."""
    r = Ring()
    for i in range(SIZE):
        r.desc(i, DATA + 8 * i, 8)
    r.publish(0, 1, 2, 3, idx=SIZE + 1)
    return _pop_refused(r, split.AVAIL_IDX)


# ---------------------------------------------------------------- hostile device: used ring

def _one_buffer(r: Ring):
    r.mem.write(DATA, b"request!")
    return r.driver.add_buf([(DATA, 8)], [(DATA + 64, 16)], "req")


def _get_refused(r: Ring, clause):
    got = _refused_with(r.driver.get_used, clause)
    if got is None and r.driver.broken != clause:
        return clause
    return got


def used_id_not_in_flight_is_refused():
    """Linux BAD_RING 'id %u is not a head!': the device names a descriptor that is not in flight."""
    r = Ring(with_driver=True)
    head = _one_buffer(r)
    r.used(0, (head + 1) % SIZE, 4, 1)
    return _get_refused(r, split.USED_ID)


def used_len_larger_than_buffer_is_refused():
    """CVE-2021-47352: a used len beyond the buffer's 16 writable bytes."""
    r = Ring(with_driver=True)
    head = _one_buffer(r)
    r.used(0, head, 17, 1)
    return _get_refused(r, split.USED_LEN)


def misaligned_layout_is_refused():
    """§2.7.1: the available ring is 2-aligned; the queue size is a power of two."""
    mem = FlatView(MEM)
    for lay in (split.SplitLayout(SIZE, 0, 65, 80), split.SplitLayout(3, 0, 64, 80)):
        try:
            split.SplitDriver(mem, lay)
        except errors.CallerError as e:
            if e.clause != split.LAYOUT:
                return split.LAYOUT
            continue
        return split.LAYOUT
    return None


# ---------------------------------------------------------------- hostile driver: queue configuration

def _ready(size=SIZE, max_size=split.MAX_QUEUE_SIZE, lay=None, region=(0, MEM)):
    """Build a device as the driver makes the queue ready; ``region`` is the shared region (driver addresses)."""
    lo, hi = region
    lay = lay or split.compute_layout(size, 0, align=4)
    return split.SplitDevice(FlatView(MEM), lay, in_region=lambda a, n: lo <= a and a + n <= hi, max_size=max_size)


def _ready_refused(clause, **kw):
    return _refused_with(lambda: _ready(**kw), clause)


def queue_size_above_device_max_is_refused():
    """4.2.2.2: QueueNum <= QueueNumMax; a power of two above the device's maximum is refused, at it accepted."""
    if _ready_refused(split.QUEUE_NUM_MAX, size=8, max_size=4) is not None:
        return split.QUEUE_NUM_MAX
    _ready(size=4, max_size=4)
    return _ready_refused(split.QUEUE_NUM_MAX, size=64, max_size=48)


def queue_size_not_a_power_of_two_is_refused():
    """2.7: Queue Size is always a power of 2 (and not 0): 3, 12 and 0 are refused, even below the maximum."""
    for n in (3, 12, 0):
        if _ready_refused(split.QUEUE_POW2, lay=split.SplitLayout(n, 0, 256, 512), max_size=16) is not None:
            return split.QUEUE_POW2
    return None


def misaligned_ring_is_refused_by_device():
    """2.7.1#1: table 16-, available ring 2-, used ring 4-aligned (the device checks what the driver wrote)."""
    for lay in (split.SplitLayout(SIZE, 8, 256, 512), split.SplitLayout(SIZE, 0, 257, 512),
                split.SplitLayout(SIZE, 0, 256, 514)):
        if _ready_refused(split.ALIGN, lay=lay) is not None:
            return split.ALIGN
    return None


def ring_outside_region_is_refused():
    """Each part must lie wholly in the shared region [0x1000, 0x1200) when the queue is made ready: the table, the
    available ring, the used ring outside (each alone, the used ring by its last byte), refused; inside, accepted."""
    usz = split.part_sizes(SIZE)[2]
    region = (0x1000, 0x1200)
    for lay in (split.SplitLayout(SIZE, 0x0FF0, 0x1100, 0x1180),      # table starts 16 bytes early
                split.SplitLayout(SIZE, 0x1000, 0x3000, 0x1180),      # available ring elsewhere
                split.SplitLayout(SIZE, 0x1000, 0x1100, 0x11DC)):    # used ring's last 2 bytes outside
        if _ready_refused(split.RING_IN_REGION, lay=lay, region=region) is not None:
            return split.RING_IN_REGION
    assert 0x11DC + usz == 0x1202
    _ready(lay=split.SplitLayout(SIZE, 0x1000, 0x1100, 0x11D8), region=region)
    return None


def _from_state_refused(build, clause):
    try:
        build()
    except errors.InvariantViolation as e:
        return None if e.clause == clause else clause
    return clause


def device_state_with_wrong_held_count_is_refused():
    """inv_device_held_count: last_avail - used_idx must count the held heads (2 apart, one held)."""
    lay = split.compute_layout(SIZE, 0, align=4)
    return _from_state_refused(lambda: split.SplitDevice.from_state(
        FlatView(MEM), lay, in_region=lambda a, n: True, last_avail=2, used_idx=0, held={1: 8}), split.INV_DEVICE_HELD)


def device_state_with_avail_seen_too_far_is_refused():
    """inv_device_avail_window: an accepted avail idx at most the queue size ahead."""
    lay = split.compute_layout(SIZE, 0, align=4)
    return _from_state_refused(lambda: split.SplitDevice.from_state(
        FlatView(MEM), lay, in_region=lambda a, n: True, last_avail=65535, used_idx=65535,
        avail_seen=SIZE), split.INV_AVAIL_WINDOW)


def driver_state_with_wrong_last_used_is_refused():
    """inv_driver_in_flight: avail_idx - last_used counts the buffers in flight (one buffer, two apart)."""
    lay = split.compute_layout(SIZE, 0, align=4)
    return _from_state_refused(lambda: split.SplitDriver.from_state(
        FlatView(MEM), lay, avail_idx=1, last_used=65535, buffers=[([(DATA, 1)], [], "a")]), split.INV_IN_FLIGHT)


SCENARIOS = [descriptor_loop_is_refused, total_length_overflow_is_refused, indirect_without_feature_is_refused,
             nested_indirect_is_refused, indirect_chain_longer_than_queue_is_refused,
             long_indirect_table_with_short_chain_is_accepted, chain_of_exactly_2_32_bytes_is_accepted,
             queue_size_above_device_max_is_refused, queue_size_not_a_power_of_two_is_refused,
             misaligned_ring_is_refused_by_device, ring_outside_region_is_refused,
             device_state_with_wrong_held_count_is_refused, device_state_with_avail_seen_too_far_is_refused,
             driver_state_with_wrong_last_used_is_refused, indirect_with_next_is_refused,
             readable_after_writable_is_refused, next_out_of_range_is_refused,
             indirect_len_not_multiple_of_16_is_refused, buffer_outside_region_is_refused, avail_idx_jump_is_refused,
             used_id_not_in_flight_is_refused, used_len_larger_than_buffer_is_refused, misaligned_layout_is_refused]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_hostile_peer_is_refused(scenario):
    assert scenario() is None


# ---------------------------------------------------------------- honest behaviour

def _pair(start=0, indirect=True, event_idx=True):
    r = Ring(with_driver=True, start=start, indirect=indirect, event_idx=event_idx, region=(0x200, MEM))
    return r, r.driver, r.device


@pytest.mark.parametrize("start", [0, 65533, 65535])
@pytest.mark.parametrize("indirect", [False, True])
def test_round_trip_across_the_u16_wrap(start, indirect):
    r, drv, dev = _pair(start, indirect)
    for i in range(40):
        payload = bytes([i]) * 12
        r.mem.write(DATA, payload)
        drv.add_buf([(DATA, 4), (DATA + 4, 8)], [(DATA + 64, 8), (DATA + 72, 8)], i)
        c = dev.pop_avail()
        assert dev.read(c) == payload and c.wlen == 16
        assert (c.table is not None) == indirect
        dev.add_used(c.head, dev.write(c, b"reply-%02d" % i))
        assert drv.get_used() == (i, 8) and bytes(r.buf[DATA + 64:DATA + 72]) == b"reply-%02d" % i
    assert drv.state.avail_idx == (start + 40) & 0xFFFF == dev.state.used_idx


def test_free_list_order_follows_linux():
    """Heads come from the front of the free list; a returned chain goes back to its front (detach_buf_split)."""
    r, drv, dev = _pair(indirect=False)
    heads = [drv.add_buf([(DATA, 1), (DATA + 1, 1)], [], t) for t in "ab"]
    assert heads == [0, 2] and drv.state.num_free == 0
    for _ in heads:
        c = dev.pop_avail()
        dev.add_used(c.head, 0)
    assert drv.get_used() == ("a", 0) and drv.free_head == 0 and drv.next_link[1] == 0
    assert drv.add_buf([(DATA, 1)], [], "c") == 0 and drv.free_head == 1


def test_exhausted_and_caller_errors():
    r, drv, dev = _pair(indirect=False)
    with pytest.raises(errors.CallerError, match="sg-count"):
        drv.add_buf([], [], "empty")
    with pytest.raises(errors.CallerError, match="sg-count"):
        drv.add_buf([(DATA, 1)] * (SIZE + 1), [], "too long")
    for t in range(SIZE):
        drv.add_buf([(DATA, 1)], [], t)
    with pytest.raises(errors.Exhausted, match="no-space"):
        drv.add_buf([(DATA, 1)], [], "full")
    with pytest.raises(errors.Exhausted):
        drv.get_used()
    assert drv.get_buf() is None


def test_broken_ring_stays_broken_until_reset():
    r = Ring(with_driver=True)
    head = _one_buffer(r)
    r.used(0, 99, 0, 1)
    for _ in range(2):
        with pytest.raises(errors.PeerViolation, match="used#id"):
            r.driver.get_used()
    with pytest.raises(errors.PeerViolation, match="used#id"):
        r.driver.add_buf([(DATA, 1)], [], "after")
    r.device.reset()
    r.driver.reset_broken()
    assert r.driver.detach_unused() == "req" and r.driver.detach_unused() is None
    r.driver.reinit()
    assert r.driver.state.num_free == SIZE and head == 0


def test_longest_legal_chain_is_accepted():
    """size - 1 direct descriptors, then one indirect table of size entries: 2 * size reads."""
    r = Ring()
    for i in range(SIZE - 1):
        r.desc(i, DATA + 8 * i, 8, NEXT, i + 1)
    for j in range(SIZE):
        r.desc(j, DATA + 64 + 8 * j, 8, (NEXT if j < SIZE - 1 else 0) | (W if j >= 2 else 0), j + 1, table=TABLE)
    r.desc(SIZE - 1, TABLE, 16 * SIZE, IND | W)      # WRITE on the table descriptor is ignored (§2.7.5.3.2#1)
    r.publish(0)
    c = r.device.pop_avail()
    assert len(c.readable) == SIZE + 1 and len(c.writable) == SIZE - 2 and c.descs == tuple(range(SIZE))


def test_notification_decisions():
    r, drv, dev = _pair(event_idx=True)
    assert dev.enable_notify()                 # nothing new; avail_event = last_avail: the next buffer kicks
    drv.add_buf([(DATA, 1)], [], 0)
    assert drv.kick_prepare()
    drv.add_buf([(DATA, 1)], [], 1)
    assert not drv.kick_prepare()              # avail_event passed already
    c = dev.pop_avail()
    dev.add_used(c.head, 0)
    assert dev.need_notify()                   # used_event 0: notify at the first used entry
    drv.disable_cb()
    dev.add_used(dev.pop_avail().head, 0)
    assert not dev.need_notify()
    assert not drv.enable_cb()                 # one used buffer pending: poll again


def test_largest_queue_size():
    """N = 32768 works end to end (2.7: the largest power of two a u16 idx can tell full from empty); 65536 is refused."""
    lay = split.compute_layout(split.MAX_QUEUE_SIZE, 0, 4096)
    assert (lay.avail, lay.used) == (16 * 32768, 16 * 32768 + 4096 * 17)
    size = split.ring_bytes(lay) + 4096
    mem = FlatView(size)
    data = split.ring_bytes(lay)
    drv = split.SplitDriver(mem, lay, event_idx=True)
    dev = split.SplitDevice(mem, lay, event_idx=True, in_region=lambda a, n: 0 <= a and a + n <= size)
    drv.add_buf([(data, 8)], [(data + 64, 8)], "big")
    c = dev.pop_avail()
    dev.add_used(c.head, 8)
    assert drv.get_used() == ("big", 8)
    with pytest.raises(errors.CallerError, match="layout"):
        split.SplitDriver(mem, split.SplitLayout(65536, 0, 16 * 65536, 16 * 65536 + 4096 * 33))


def test_selection_as_a_set_or_a_bitmask():
    """The core add_buf takes the chosen descriptors as a set of indices (what the concrete driver passes) or as an
    int bitmask (counterexample files); both allocate and later free the same descriptors, and a wrong count, a
    descriptor in use or one outside the table is refused either way."""
    from t1virtio.logic import CONCRETE
    from t1virtio.step import apply, first_failed
    d = split.driver_init(SIZE, False, False)
    args = dict(head=1, n_out=1, n_in=1, total=8, wlen=4, indirect_used=False)
    states = [apply(split.add_buf(CONCRETE, d, sel=sel, **args))[0] for sel in (frozenset({1, 3}), 0b1010)]
    for s in states:
        assert list(s.in_use) == [False, True, False, True] and s.chain_of[3] == 1 and s.num_free == 2
        assert first_failed(split.add_buf(CONCRETE, s, sel=frozenset({3, 0}), **{**args, "head": 0})) == split.ALLOC
        assert first_failed(split.add_buf(CONCRETE, s, sel=frozenset({0}), **{**args, "head": 0})) == split.ALLOC
        for outside in (frozenset({0, 2, SIZE}), 0b10101 | 1 << SIZE):
            assert first_failed(split.add_buf(CONCRETE, s, sel=outside, **{**args, "head": 0})) == split.ALLOC
        back = apply(split.get_used(CONCRETE, s, used_idx=1, id=1, length=4))[0]
        assert not any(back.in_use) and back.num_free == SIZE
    assert list(d.in_use) == [False] * SIZE, "the old state is unchanged"


def test_chain_of_2_32_writable_bytes_reports_the_largest_le32_len():
    """2.7.5.2#1 allows exactly 2^32 bytes; the used ring's le32 len cannot say 2^32, so a device that wrote all of
    them reports 2^32 - 1 (2.7.8.2: len may under-estimate what was written). The driver accepts it; one more byte
    (2^32 + 1) is refused by the driver's caller check."""
    r = Ring(with_driver=True, region=(0, 1 << 40))
    head = r.driver.add_buf([], [(DATA, 0xFFFFFFFF), (DATA, 1)], "huge")
    c = r.device.pop_avail()
    assert c.wlen == 1 << 32 and r.device.state.wlen[head] == 1 << 32
    r.device.add_used(head, 1 << 32)
    assert struct.unpack("<II", r.mem.read(r.lay.used_elem_at(0), 8)) == (head, 0xFFFFFFFF)
    assert r.driver.get_used() == ("huge", 0xFFFFFFFF)
    with pytest.raises(errors.CallerError, match="sg-count"):
        r.driver.add_buf([(DATA, 2)], [(DATA, 0xFFFFFFFF)], "too big")
    with pytest.raises(errors.CallerError, match="used-len"):
        head = r.driver.add_buf([], [(DATA, 0xFFFFFFFF), (DATA, 1)], "again")
        r.device.add_used(r.device.pop_avail().head, (1 << 32) + 1)


def test_a_loop_in_a_long_indirect_table_reads_at_most_the_queue_size():
    """A table of 16 * size entries whose chain loops (0 -> 1 -> 0): refused as longer than the queue after size table
    reads, not after the table's length (the walk's bound is the chain's)."""
    r = Ring()
    r.desc(0, DATA, 8, NEXT, 1, table=TABLE)
    r.desc(1, DATA, 8, NEXT, 0, table=TABLE)
    r.desc(0, TABLE, 16 * LONG, IND)
    r.publish(0)
    reads = []
    orig = r.device._read_table
    r.device._read_table = lambda t, j: reads.append(j) or orig(t, j)
    with pytest.raises(errors.PeerViolation, match="chain-len"):
        r.device.pop_avail()
    assert len(reads) == SIZE + 1        # size accepted reads, then the refused one
    # a loop in a table no longer than the queue is a loop
    r = Ring()
    r.desc(0, DATA, 8, NEXT, 1, table=TABLE)
    r.desc(1, DATA, 8, NEXT, 0, table=TABLE)
    r.desc(0, TABLE, 16 * SIZE, IND)
    r.publish(0)
    with pytest.raises(errors.PeerViolation, match="#loop"):
        r.device.pop_avail()


def test_next_stays_inside_a_long_table():
    """In a table of 16 * size entries next may name any of them, and none beyond (chain#next-range)."""
    r = Ring()
    r.desc(0, DATA, 8, NEXT, LONG, table=TABLE)
    r.desc(0, TABLE, 16 * LONG, IND)
    r.publish(0)
    with pytest.raises(errors.PeerViolation, match="next-range"):
        r.device.pop_avail()


def test_a_held_head_offered_again_is_refused_by_policy():
    """No normative sentence covers a head made available again while the device holds it: the model's policy
    (split.HELD_HEAD_POLICY) refuses it and breaks the ring (device#inuse, whose clause text says so)."""
    from t1virtio.specs import clauses
    assert split.HELD_HEAD_POLICY == "refuse" and "policy" in clauses.get(split.INUSE).text
    assert "no normative sentence" in clauses.get(split.INUSE).section
    r = Ring()
    r.desc(0, DATA, 8)
    r.publish(0, 0)
    assert r.device.pop_avail().head == 0
    with pytest.raises(errors.PeerViolation, match="device#inuse"):
        r.device.pop_avail()
    assert r.device.broken == split.INUSE


def test_model_clauses_name_their_section_or_say_there_is_none():
    """Every VIRTIO/model clause of the split ring cites the spec text it stands for (a section number) or says that
    no normative sentence stands behind it; the peer-caused ones cite a section."""
    import re
    from t1virtio.specs import clauses
    import t1virtio.specs.clauses.virtio_split  # noqa: F401
    src = open(t1virtio.specs.clauses.virtio_split.__file__).read()
    mine = [c for c in clauses.CLAUSES.values() if c.id.startswith("VIRTIO/model/") and f'"{c.id}"' in src]
    assert len(mine) > 20
    for c in mine:
        assert re.search(r"virtio-1\.3:\d", c.section) or "no normative sentence" in c.section, c.id
    for cid in (chain.IN_REGION, split.HELD, split.INUSE, chain.NEXT_RANGE, chain.TABLE_LEN, split.HEAD_RANGE,
                split.USED_ID, split.USED_IDX, split.RING_IN_REGION, split.QUEUE_POW2):
        assert re.search(r"virtio-1\.3:\d", clauses.get(cid).section), cid


# ---------------------------------------------------------------- any legal starting state (from_state)

def _inv_ok(component, state):
    """Return the clauses of ``component``'s invariants that ``state`` breaks (evaluated concretely)."""
    from t1virtio.logic import CONCRETE
    from t1virtio.specs.invariants import REGISTRY
    import t1virtio.specs.invariants.virtio_split  # noqa: F401
    return [i.clause for i in REGISTRY[component] if not i.fn(CONCRETE, state)]


def _mid_stream(start, u, h, a, event_idx=True, indirect=True, descs=False):
    """A pair mid-stream: ``u`` buffers used (not yet taken back), ``h`` held by the device, ``a`` available, in that
    order of availability; the driver's last used at ``start``. Returns (ring, driver, device, tokens)."""
    r = Ring(indirect=indirect, event_idx=event_idx, region=(0x200, MEM))
    n = u + h + a
    avail_idx = (start + n) & 0xFFFF
    bufs = [([(DATA + 32 * k, 4)], [(DATA + 32 * k + 8, 8 + k)], f"t{k}") for k in range(n)]
    if descs:      # direct buffers of two descriptors each, in a scattered order
        order = [3, 0, 2, 1]
        bufs = [(o, i, t, (order[2 * k], order[2 * k + 1])) for k, (o, i, t) in enumerate(bufs)]
    drv = split.SplitDriver.from_state(r.mem, r.lay, avail_idx=avail_idx, buffers=bufs, event_idx=event_idx,
                                       indirect=indirect, indirect_arena=(0x200, SIZE), num_added=a)
    heads = [drv.state.avail_ring[(start + k) % SIZE] for k in range(n)]
    last_avail = (avail_idx - a) & 0xFFFF
    used_idx = (last_avail - h) & 0xFFFF
    dev = split.SplitDevice.from_state(
        r.mem, r.lay, event_idx=event_idx, indirect=indirect, in_region=r.device.in_region,
        last_avail=last_avail, used_idx=used_idx, held={heads[u + k]: 8 + u + k for k in range(h)},
        used=[(heads[k], 3) for k in range(u)], avail_event=last_avail)
    return r, drv, dev, heads


@pytest.mark.parametrize("start", [0, 65534, 40000])
@pytest.mark.parametrize("u,h,a", [(0, 0, 0), (1, 1, 1), (2, 0, 2), (0, 2, 0), (1, 0, 0), (0, 0, 2)])
@pytest.mark.parametrize("indirect", [False, True])
def test_a_pair_built_mid_stream_satisfies_every_invariant_and_runs_on(start, u, h, a, indirect):
    """Driver and device built at a state the invariants allow: every side and pair invariant holds, and the ring
    runs on from there (the driver takes back the used buffers, the device completes what it holds and pops the
    rest; every buffer comes back once, with the writable lengths it had)."""
    from t1virtio.specs.invariants.virtio_split import SplitPair
    if not indirect and 2 * (u + h + a) > SIZE:
        pytest.skip("direct buffers of 2 descriptors: at most 2 fit a 4-entry table")
    r, drv, dev, heads = _mid_stream(start, u, h, a, indirect=indirect)
    assert _inv_ok("virtio_split.driver", drv.state) == [] and _inv_ok("virtio_split.device", dev.state) == []
    assert _inv_ok("virtio_split", SplitPair(drv.state, dev.state)) == []
    got = [drv.get_used() for _ in range(u)]
    assert got == [(f"t{k}", 3) for k in range(u)]
    for k in range(h):
        dev.add_used(heads[u + k], 8 + u + k)
    for k in range(a):
        c = dev.pop_avail()
        assert c.head == heads[u + h + k] and c.wlen == 8 + u + h + k
        assert dev.read(c) == bytes(r.buf[DATA + 32 * (u + h + k):DATA + 32 * (u + h + k) + 4])
        dev.add_used(c.head, c.wlen)
    rest = [drv.get_used() for _ in range(h + a)]
    assert rest == [(f"t{k}", 8 + k) for k in range(u, u + h + a)]
    assert drv.state.num_free == SIZE and drv.get_buf() is None and dev.next_chain() is None
    assert _inv_ok("virtio_split", SplitPair(drv.state, dev.state)) == []


def test_mid_stream_buffers_in_chosen_descriptors():
    """``descs`` puts each buffer in the descriptors a trace names (head first); the free list is then ascending."""
    r, drv, dev, heads = _mid_stream(7, 1, 0, 1, indirect=False, descs=True)
    assert heads == [3, 2] and drv.chains == {3: (3, 0), 2: (2, 1)} and drv.state.num_free == 0
    assert [c for c in drv.state.chain_of] == [3, 2, 2, 3]
    c = dev.pop_avail()
    assert c.head == 2 and c.descs == (2, 1)
    assert drv.get_used() == ("t0", 3)
    assert drv.add_buf([(DATA, 1)], [], "next") == 3        # the freed chain is at the front of the free list


def _device_kw():
    return dict(in_region=lambda a, n: 0 <= a and a + n <= MEM)


@pytest.mark.parametrize("kw,clause", [
    (dict(last_avail=5, used_idx=3, held={0: 8}), "ownership#device-held"),
    (dict(last_avail=5, used_idx=4, held={0: 8, 1: 8}), "ownership#device-held"),
    (dict(last_avail=65536, used_idx=65535, held={0: 1}), "index#u16"),
    (dict(last_avail=1, used_idx=0, held={SIZE: 1}), "index#u16"),
    (dict(last_avail=1, used_idx=0, held={0: (1 << 32) + 1}), "index#u16"),
    (dict(last_avail=0, used_idx=0, avail_seen=SIZE + 1), "index#avail-window"),
    (dict(last_avail=0, used_idx=0, used_flags=2), "Notification Suppression#flags"),
    (dict(last_avail=0, used_idx=0, used_flags=1, event_idx=True), "Notification Suppression#flags"),
    (dict(last_avail=0, used_idx=2, used=[(SIZE, 0)]), "index#u16"),
    (dict(last_avail=0, used_idx=2, used=[(0, 1 << 32)]), "index#u16"),
    (dict(last_avail=0, used_idx=2, used=[(0, 0)] * (SIZE + 1)), "index#u16"),
])
def test_an_illegal_device_state_is_refused_with_the_invariant_clause(kw, clause):
    with pytest.raises(errors.InvariantViolation, match=clause):
        split.SplitDevice.from_state(FlatView(MEM), split.compute_layout(SIZE, 0, align=4), **_device_kw(), **kw)


@pytest.mark.parametrize("kw,clause", [
    (dict(avail_idx=3, last_used=1, buffers=[([(DATA, 1)], [], "a")]), "ownership#in-flight"),
    (dict(avail_idx=SIZE + 1, buffers=[([(DATA, 1)], [], k) for k in range(SIZE + 1)]), "ownership#in-flight"),
    (dict(avail_idx=65536), "index#u16"),
    (dict(avail_idx=0, num_added=-1), "index#u16"),
    (dict(avail_idx=0, used_event=70000), "index#u16"),
    (dict(avail_idx=0, avail_flags=1, event_idx=True), "Notification Suppression#flags"),
    (dict(avail_idx=0, avail_flags=3), "Notification Suppression#flags"),
    (dict(avail_idx=2, buffers=[([(DATA, 1)] * 3, [], "a"), ([(DATA, 1)] * 2, [], "b")]), "ownership#free"),
    (dict(avail_idx=2, buffers=[([(DATA, 1)], [], "a", (0,)), ([(DATA, 1)], [], "b", (0,))]), "ownership#chain"),
    (dict(avail_idx=1, buffers=[([(DATA, 1)] * 2, [], "a", (0,))]), "ownership#chain"),
    (dict(avail_idx=1, buffers=[([(DATA, 1)], [], "a", (SIZE,))]), "ownership#chain"),
])
def test_an_illegal_driver_state_is_refused_with_the_invariant_clause(kw, clause):
    with pytest.raises(errors.InvariantViolation, match=clause):
        split.SplitDriver.from_state(FlatView(MEM), split.compute_layout(SIZE, 0, align=4), **kw)


def test_device_from_state_accepts_exactly_what_the_invariants_allow():
    """Over a grid of device states (indices near the wrap, 0..size held heads, flags, avail_seen), from_state accepts
    a state iff every device invariant holds of it, and refuses with the clause of one it breaks."""
    import itertools
    lay = split.compute_layout(SIZE, 0, align=4)
    seen = set()
    for la, back, nheld, seen_ahead, flags, ev in itertools.product(
            [0, 3, 65535], [0, 1, 2, 5], [0, 1, 2], [0, SIZE, SIZE + 1], [0, 1, 2], [False, True]):
        kw = dict(last_avail=la, used_idx=(la - back) & 0xFFFF, held={h: 4 for h in range(nheld)},
                  avail_seen=(la + seen_ahead) & 0xFFFF, used_flags=flags, event_idx=ev)
        try:
            dev = split.SplitDevice.from_state(FlatView(MEM), lay, **_device_kw(), **kw)
        except errors.InvariantViolation as e:
            v = split.DeviceRing(event_idx=ev, last_avail=la, avail_seen=kw["avail_seen"], used_idx=kw["used_idx"],
                                 signalled=kw["used_idx"], held=tuple(h < nheld for h in range(SIZE)),
                                 wlen=tuple(4 if h < nheld else 0 for h in range(SIZE)), used_id=(0,) * SIZE,
                                 used_len=(0,) * SIZE, used_flags=flags, avail_event=0)
            broken = _inv_ok("virtio_split.device", v)
            assert e.clause in broken, (kw, e.clause, broken)
            seen.add("refused")
            continue
        assert _inv_ok("virtio_split.device", dev.state) == [], kw
        seen.add("accepted")
    assert seen == {"accepted", "refused"}
