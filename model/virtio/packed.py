"""The packed virtqueue (virtio 1.3 §2.8): driver and device, hardened against each other.

Layout (little endian, over a ``MemoryView``): a descriptor ring of ``num`` 16-byte descriptors
``{le64 addr; le32 len; le16 id; le16 flags}`` and two 4-byte event suppression structures
``{le16 off:15 | wrap:1; le16 flags:2}`` (driver area, written by the driver; device area,
written by the device). ``num`` is 1..32768 and need not be a power of two.

Wrap counters (§2.8.1) start at 1. A position is ``(slot, wrap)``; written as one integer in
``[0, 2N)`` it is ``slot + (0 if wrap else N)``, so lap 0 has wrap 1. The driver marks a
descriptor available with AVAIL = its counter and USED = the inverse; the device marks it used
with AVAIL = USED = its counter.

The symbolic core (proved in ``proofs/virtio_packed.py``) is four kinds of guarded steps:

- driver (``PackedDriverState``): add, get_used, kick_prepare, enable_cb, disable_cb, detach_unused;
- device (``PackedDeviceState``): pop, push_used, need_notify, set_event;
- the device's chain walk (``ChainWalk``): one step per ring descriptor and per indirect entry,
  each validating what a hostile driver wrote, with the queue size and table limit as loop bounds;
- ``PackedRing``: an honest driver and device over one ring, with the AVAIL/USED bits and ids of
  each slot as ghost state, to prove §2.8.1's flag/position consistency.

Cost (DESIGN.md §6): every transition costs what it touches, not the queue size. Per-id tables
are ``L.tabulate`` tables (``Table`` concretely: a write is O(1)); effects are built by ``L.effect``
only once the guards hold; the event window is arithmetic (``in_window``); the ring's flag writes
and its "every descriptor reads available" check cover only the list's slots, as at most two plain
ranges (``span``, ``lap_fill``, ``lap_reads``). The proofs relate each of these to the whole-table
form it replaced (``window_by_search``, ``slot_in``/``wrap_of`` over every slot).

``PackedDriver`` and ``PackedDevice`` are the concrete objects: they share only memory and a
notify callback each, read peer-written values from memory, hand them to the core (whose guards
reject what a hostile peer wrote, naming the clause), and write their own bytes. Buffer ids follow
Linux's free list (``desc_extra[].next``); indirect tables live in an arena at
``indirect_gpa + id * indirect_max * 16`` like the Linux peer's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

from t1virtio import errors
from t1virtio.hyp.memview import MemoryView, read_le, write_le
from t1virtio.logic import CONCRETE
from t1virtio.preset import VIRTQUEUE_MAX_SIZE
from t1virtio.step import Step, apply, first_failed, step
from t1virtio.virtio import notify as vnotify
from t1virtio.state import evolve as replace   # dataclasses.replace, without its per-call introspection
from t1virtio.virtio.desc import (DESC_SIZE, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT,
                                  VIRTQ_DESC_F_USED, VIRTQ_DESC_F_WRITE)

MAX_QUEUE_SIZE = VIRTQUEUE_MAX_SIZE  # §2.8: packed virtqueues support up to 2^15 entries
RING_EVENT_FLAGS_ENABLE = 0        # §2.8.10
RING_EVENT_FLAGS_DISABLE = 1
RING_EVENT_FLAGS_DESC = 2          # only with VIRTIO_F_RING_EVENT_IDX
EVENT_F_WRAP_CTR = 15              # off_wrap: offset bits 0-14, wrap counter bit 15
EVENT_OFF_MASK = (1 << EVENT_F_WRAP_CTR) - 1
EVENT_SIZE = 4                     # sizeof(struct pvirtq_event_suppress)
U32_MAX = (1 << 32) - 1            # a buffer's total length fits the le32 used length

QUEUE_SIZE = "VIRTIO/model/packed/ring#queue-size"
CHAIN_TOO_LONG = "VIRTIO/driver/Packed Virtqueues/Scatter-Gather Support#chain-too-long"
WRITE_BEFORE_READ = "VIRTIO/driver/Packed Virtqueues/Scatter-Gather Support#write-before-read"
EXPOSE_FIRST_LAST = "VIRTIO/driver/Packed Virtqueues/Scatter-Gather Support#expose-first-last"
TOTAL_LENGTH = "VIRTIO/driver/Packed Virtqueues/Scatter-Gather Support#total-length"
RING_SPACE = "VIRTIO/driver/Packed Virtqueues/Scatter-Gather Support#ring-space"
IND_NOT_NEGOTIATED = "VIRTIO/driver/Packed Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#not-negotiated"
IND_NESTED = "VIRTIO/driver/Packed Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#nested"
IND_IN_LIST = "VIRTIO/driver/Packed Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#in-list"
IND_CHAIN_LIMIT = "VIRTIO/driver/Packed Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#chain-limit"
IND_TABLE_LENGTH = "VIRTIO/driver/Packed Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#table-length"
ADDRESS_OUTSIDE = "VIRTIO/model/packed/device#address-outside-region"
ID_RANGE = "VIRTIO/model/packed/ids#id-range"
ID_IN_FLIGHT = "VIRTIO/model/packed/ids#id-in-flight"
IN_FLIGHT_BOUND = "VIRTIO/model/packed/device#in-flight-bound"
USED_FLAGS = "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#used-flags"
USED_ID_RANGE = "VIRTIO/model/packed/ids#used-id-range"
USED_ID_NOT_OUTSTANDING = "VIRTIO/model/packed/ids#used-id-not-outstanding"
USED_LEN = "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#used-len"
EMPTY_BUFFER = "VIRTIO/model/packed/driver#empty-buffer"
ID_IN_USE = "VIRTIO/model/packed/driver#id-in-use"
DETACHED = "VIRTIO/model/packed/driver#detached"
NO_USED = "VIRTIO/model/packed/driver#no-used"
NOTHING_AVAILABLE = "VIRTIO/model/packed/device#nothing-available"
NOT_IN_FLIGHT = "VIRTIO/model/packed/device#not-in-flight"
LEN_BEYOND_WRITABLE = "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#len-beyond-writable"
EVENT_MODE = "VIRTIO/model/packed/events#mode"
# the device's checks when the driver makes the queue ready (``packed_queue_ready``)
QUEUE_READY_SIZE = "VIRTIO/model/packed/queue#size"
QUEUE_NUM_MAX = "VIRTIO/model/packed/queue#num-max"
ALIGN = "VIRTIO/driver/Packed Virtqueues#align"
RING_IN_REGION = "VIRTIO/model/packed/queue#in-region"
# invariant clauses a state built by ``from_state`` must satisfy (specs/invariants/virtio_packed.py states them)
INV_DRIVER_BOUNDS = "VIRTIO/model/packed/driver#bounds"
INV_DRIVER_ACCOUNTING = "VIRTIO/model/packed/driver#accounting"
INV_DRIVER_WRAP = "VIRTIO/model/packed/driver#wrap-positions"
INV_DEVICE_BOUNDS = "VIRTIO/model/packed/device#bounds"
INV_DEVICE_IN_FLIGHT = "VIRTIO/model/packed/device#in-flight"
INV_RING_IDS = "VIRTIO/model/packed/ring#ids"


# ---------------------------------------------------------------------------------------------
# Positions and flag encoding (§2.8.1), shared by both sides, the proofs and the byte layer
# ---------------------------------------------------------------------------------------------

def lap_pos(L: Any, num: Any, slot: Any, wrap: Any) -> Any:
    """Return position ``(slot, wrap)`` as an integer in ``[0, 2N)``: lap 0 carries wrap 1."""
    return slot + L.If(wrap, 0, num)


def distance(L: Any, num: Any, s1: Any, w1: Any, s2: Any, w2: Any) -> Any:
    """Return how many positions lead from ``(s1, w1)`` forward to ``(s2, w2)`` (mod 2N)."""
    d = lap_pos(L, num, s2, w2) - lap_pos(L, num, s1, w1)
    return L.If(L.ULE(0, d), d, d + 2 * num)


def advance(L: Any, num: Any, slot: Any, wrap: Any, n: Any) -> tuple[Any, Any]:
    """Return the position ``n <= num`` descriptors after ``(slot, wrap)``: the wrap counter flips
    when the ring end is passed (§2.8.1, 2.8.21.1: toggle after the last descriptor)."""
    s = slot + n
    over = L.ULE(num, s)
    return L.If(over, s - num, s), L.If(over, L.Not(wrap), wrap)


def back(L: Any, num: Any, slot: Any, wrap: Any, n: Any) -> tuple[Any, Any]:
    """Return the position ``n <= num`` descriptors before ``(slot, wrap)``."""
    s = slot - n
    under = L.ULT(s, 0)
    return L.If(under, s + num, s), L.If(under, L.Not(wrap), wrap)


def slot_in(L: Any, num: Any, k: int, start: Any, length: Any) -> Any:
    """Return whether slot ``k`` lies among the ``length <= num`` slots from ``start`` (circularly)."""
    off = L.If(L.ULE(start, k), k - start, k - start + num)
    return L.And(L.ULT(k, num), L.ULT(off, length))


def wrap_of(L: Any, k: int, start: Any, wrap: Any) -> Any:
    """Return the wrap counter of slot ``k`` in the lap that starts at position ``(start, wrap)``."""
    return L.If(L.ULE(start, k), wrap, L.Not(wrap))


def avail_flags(L: Any, wrap: Any) -> tuple[Any, Any]:
    """Return (AVAIL, USED) bits the driver writes to make a descriptor available (§2.8.1)."""
    return wrap, L.Not(wrap)


def used_flags(L: Any, wrap: Any) -> tuple[Any, Any]:
    """Return (AVAIL, USED) bits the device writes to mark a descriptor used (§2.8.1)."""
    return wrap, wrap


def is_avail(L: Any, avail: Any, used: Any, wrap: Any) -> Any:
    """A descriptor is available for wrap counter ``wrap``: AVAIL matches it, USED does not."""
    return L.And(avail == wrap, L.Not(used == wrap))


def is_used(L: Any, avail: Any, used: Any, wrap: Any) -> Any:
    """A descriptor is used for wrap counter ``wrap``: AVAIL and USED both match it."""
    return L.And(avail == used, used == wrap)


def in_window(L: Any, num: Any, slot: Any, wrap: Any, count: Any, off: Any, ewrap: Any) -> Any:
    """Return whether position ``(off, ewrap)`` is one of the ``count`` positions before ``(slot, wrap)``.

    Computed arithmetically (``1 <= distance(event, position) <= min(count, num)`` for an offset in
    the ring), so it costs the same at every queue size; ``proofs/virtio_packed.py`` proves it equal
    to the whole-ring search it replaces (``window_by_search``) for every queue size of its table.
    """
    dist = distance(L, num, off, ewrap, slot, wrap)
    return L.And(L.ULE(0, off), L.ULT(off, num), L.ULE(1, dist), L.ULE(dist, count), L.ULE(dist, num))


def window_by_search(L: Any, num: Any, slot: Any, wrap: Any, count: Any, off: Any, ewrap: Any, table: int) -> Any:
    """The whole-ring form of ``in_window``: some ``k < min(count, num)`` has ``back(k + 1) == (off, ewrap)``.

    ``table`` (>= num) bounds the unrolling. Not used by any transition (it costs the table size);
    kept as the reference the arithmetic form is proved against.
    """
    def hit(k: int) -> Any:
        s, w = back(L, num, slot, wrap, k + 1)
        return L.And(L.ULT(k, count), L.ULT(k, num), s == off, w == ewrap)
    return L.any_idx(table, hit)


def span(L: Any, num: Any, start: Any, n: Any) -> tuple[Any, Any]:
    """Split the ``n`` slots from ``start`` (circularly, ``0 <= start < num``) into two plain ranges:
    ``[start, start + n1)`` before the ring end and ``[0, n2)`` after it (``n`` is clamped to ``num``).

    A range update or check over them touches only the ``n`` slots (``L.fill``, ``L.all_in``); the
    proofs relate it to ``slot_in`` over the whole table (``proofs/virtio_packed.py``).
    """
    m = L.If(L.ULE(n, num), n, num)
    fits = L.ULE(start + m, num)
    return L.If(fits, m, num - start), L.If(fits, 0, start + m - num)


def suppress(L: Any, flags: Any, event: Any, window: Any) -> Any:
    """Return whether to notify under the peer's event suppression (§2.8.10): DISABLE never, DESC
    (with RING_EVENT_IDX) iff the named descriptor is in ``window``, anything else always."""
    return L.If(flags == RING_EVENT_FLAGS_DISABLE, False,
                L.If(L.And(flags == RING_EVENT_FLAGS_DESC, event), window, True))


# ---------------------------------------------------------------------------------------------
# Queue ready (§2.8.10.1, §2.8.11): the device's checks of the size and placement the driver chose
# ---------------------------------------------------------------------------------------------

def part_sizes(num: int) -> tuple[int, int, int]:
    """Return the bytes of the descriptor ring, Driver Area and Device Area of a ``num``-entry ring (§2.8.10.1)."""
    return DESC_SIZE * num, EVENT_SIZE, EVENT_SIZE


def packed_queue_ready(L: Any, num: Any, max_size: Any, desc: Any, driver: Any, device: Any, desc_in: Any,
                       driver_in: Any, device_in: Any) -> Step:
    """The device's checks when the driver makes a packed queue ready (MMIO QueueReady = 1, PCI queue_enable = 1).

    ``num`` and the part addresses are what the driver wrote (QueueNum, QueueDesc/Driver/Device); ``max_size``
    is the device's QueueNumMax; ``desc_in``, ``driver_in``, ``device_in`` say whether each whole part
    (``part_sizes``) lies in the shared region. Refused, each a peer violation: a size outside 1..32768 (§2.8; it
    need not be a power of two), above the device's maximum (4.2.2.2), a part not aligned to 16 / 4 / 4 (§2.8.11
    #1, table in §2.8.10.1), a part outside the shared region (refused here, never met later as a memory fault).
    """
    return step([(L.And(L.ULE(1, num), L.ULE(num, MAX_QUEUE_SIZE)), QUEUE_READY_SIZE),
                 (L.ULE(num, max_size), QUEUE_NUM_MAX),
                 (L.And(L.mod(desc, 16) == 0, L.mod(driver, 4) == 0, L.mod(device, 4) == 0), ALIGN),
                 (L.And(desc_in, driver_in, device_in), RING_IN_REGION)], None)


# ---------------------------------------------------------------------------------------------
# Driver core (the secondary's frontend; Linux virtqueue_*_packed)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PackedDriverState:
    """The driver's private state; ``ndesc``/``wlen`` are indexed by buffer id."""

    num: int
    event: bool                 # VIRTIO_F_RING_EVENT_IDX negotiated
    next_avail: int
    avail_wrap: bool            # Driver Ring Wrap Counter
    last_used: int
    used_wrap: bool             # the device's counter as the driver tracks it
    num_free: int
    num_added: int              # descriptors made available since the last kick_prepare
    event_flags: int            # driver event suppression mode (Linux event_flags_shadow)
    detached: bool              # detach_unused ran: the queue is being torn down
    ndesc: Sequence[int]        # descriptors each outstanding buffer holds in the ring (0 = free)
    wlen: Sequence[int]         # device-writable bytes of each outstanding buffer


def packed_driver_create(L: Any, num: Any, event: Any, table: int) -> Step:
    """A fresh queue (vring_create_virtqueue_packed): both counters 1, every id free, events ENABLE."""
    guards = [(L.And(L.ULE(1, num), L.ULE(num, min(MAX_QUEUE_SIZE, table))), QUEUE_SIZE)]
    new = L.effect(guards, lambda: PackedDriverState(
        num=num, event=event, next_avail=0, avail_wrap=True, last_used=0, used_wrap=True, num_free=num, num_added=0,
        event_flags=RING_EVENT_FLAGS_ENABLE, detached=False, ndesc=_zeros(L, table), wlen=_zeros(L, table)), None)
    return step(guards, new)


def packed_add(L: Any, d: PackedDriverState, n: Any, wlen: Any, id: Any) -> Step:
    """Make buffer ``id`` available in ``n`` ring descriptors (virtqueue_add_packed); out = head position.

    ``n`` is 1 for an indirect buffer, else its element count; ``wlen`` its device-writable bytes.
    """
    slot, wrap = advance(L, d.num, d.next_avail, d.avail_wrap, n)
    guards = [(L.Not(d.detached), DETACHED),
              (L.ULE(1, n), EMPTY_BUFFER),
              (L.ULE(n, d.num_free), RING_SPACE),
              (L.And(L.ULE(0, id), L.ULT(id, d.num), L.at(d.ndesc, id) == 0), ID_IN_USE)]
    new = L.effect(guards, lambda: replace(
        d, next_avail=slot, avail_wrap=wrap, num_free=d.num_free - n, num_added=d.num_added + n,
        ndesc=L.update(d.ndesc, id, n), wlen=L.update(d.wlen, id, wlen)), d)
    return step(guards, new, out=(d.next_avail, d.avail_wrap))


def packed_get_used(L: Any, d: PackedDriverState, avail: Any, used: Any, id: Any, length: Any) -> Step:
    """Take the used descriptor at ``last_used`` (virtqueue_get_buf_ctx_packed), validating it.

    ``avail``/``used`` are its AVAIL/USED bits, ``id`` its buffer id, ``length`` its len (0 when WRITE
    is clear: §2.8.4 says the driver ignores it then). out = (id, length).
    """
    live = L.ULT(d.num_free, d.num)
    n = L.at(d.ndesc, id)
    slot, wrap = advance(L, d.num, d.last_used, d.used_wrap, n)
    guards = [(L.Not(d.detached), DETACHED),
              (L.If(live, avail == d.used_wrap, L.Not(is_used(L, avail, used, d.used_wrap))), USED_FLAGS),
              (is_used(L, avail, used, d.used_wrap), NO_USED),
              (L.And(L.ULE(0, id), L.ULT(id, d.num)), USED_ID_RANGE),
              (L.ULT(0, n), USED_ID_NOT_OUTSTANDING),
              (L.And(L.ULE(0, length), L.ULE(length, L.at(d.wlen, id))), USED_LEN)]
    new = L.effect(guards, lambda: replace(d, last_used=slot, used_wrap=wrap, num_free=d.num_free + n,
                                           ndesc=L.update(d.ndesc, id, 0), wlen=L.update(d.wlen, id, 0)), d)
    return step(guards, new, out=(id, length))


def packed_kick_prepare(L: Any, d: PackedDriverState, flags: Any, off: Any, ewrap: Any) -> Step:
    """Decide whether to notify the device (virtqueue_kick_prepare_packed) from the device area
    ``{off, ewrap, flags}``: Linux's RING_EVENT_IDX arithmetic, ``vring_need_event`` on u16 indices
    with the event offset moved back a ring when its wrap differs. out = needs_kick."""
    new_idx = d.next_avail
    old_idx = d.next_avail - d.num_added
    event_idx = L.If(ewrap == d.avail_wrap, off, off - d.num)
    desc_kick = vnotify.vring_need_event(L, event_idx, new_idx, old_idx)
    kick = L.If(flags == RING_EVENT_FLAGS_DESC, desc_kick, L.Not(flags == RING_EVENT_FLAGS_DISABLE))
    return step([], replace(d, num_added=0), out=kick)


def packed_enable_cb(L: Any, d: PackedDriverState) -> Step:
    """Re-enable used notifications (virtqueue_enable_cb_prepare_packed): a disabled queue goes to
    DESC with RING_EVENT_IDX, else ENABLE. out = the off_wrap position to publish (last_used)."""
    flags = L.If(d.event_flags == RING_EVENT_FLAGS_DISABLE,
                 L.If(d.event, RING_EVENT_FLAGS_DESC, RING_EVENT_FLAGS_ENABLE), d.event_flags)
    return step([], replace(d, event_flags=flags), out=(d.last_used, d.used_wrap))


def packed_disable_cb(L: Any, d: PackedDriverState) -> Step:
    """Suppress used notifications (virtqueue_disable_cb_packed)."""
    return step([], replace(d, event_flags=RING_EVENT_FLAGS_DISABLE))


def packed_detach_unused(L: Any, d: PackedDriverState, id: Any) -> Step:
    """Take back outstanding buffer ``id`` after a device reset (virtqueue_detach_unused_buf_packed).

    An id outside the queue takes nothing back (no guard: the tables are written only for an id
    inside it, which is what the index-safety obligation checks)."""
    inside = L.And(L.ULE(0, id), L.ULT(id, d.num))
    n = L.If(inside, L.at_or(d.ndesc, id, 0), 0)
    with L.assuming(inside):
        ndesc, wlen = L.update(d.ndesc, id, 0), L.update(d.wlen, id, 0)
    return step([], replace(d, detached=True, num_free=d.num_free + n, ndesc=ndesc, wlen=wlen), out=n)


# ---------------------------------------------------------------------------------------------
# States built mid-stream (``from_state``): the invariants, as guards citing their clauses
# ---------------------------------------------------------------------------------------------

def event_mode_ok(L: Any, flags: Any, event: Any) -> Any:
    """A valid event suppression mode: ENABLE, DISABLE, or DESC with RING_EVENT_IDX (§2.8.10)."""
    return L.Or(flags == RING_EVENT_FLAGS_ENABLE, flags == RING_EVENT_FLAGS_DISABLE,
                L.And(flags == RING_EVENT_FLAGS_DESC, event))


def _per_id_ok(L: Any, num: Any, ndesc: Any, wlen: Any) -> Any:
    """Per id: 0 <= ndesc <= num, wlen >= 0, nothing recorded for ids >= num (one pass over both tables)."""
    return L.And(*[L.And(L.ULE(0, n), L.ULE(n, num), L.ULE(0, w), L.Implies(L.ULE(num, k), n == 0))
                   for k, (n, w) in enumerate(zip(ndesc, wlen, strict=True))])


def packed_driver_state_check(L: Any, d: PackedDriverState) -> Step:
    """The guards a driver state built mid-stream (``PackedDriver.from_state``) must pass, each citing the
    invariant it keeps: positions in the ring, num_free and the event mode valid (``driver#bounds``); the
    outstanding buffers' descriptors plus num_free = num (``driver#accounting``); (last_used, used wrap) to
    (next_avail, avail wrap) spans exactly the outstanding descriptors (``driver#wrap-positions``, §2.8.1).

    Costs the queue size (a creation path). ``proofs/virtio_packed.py`` proves that a state passing these
    guards satisfies every driver invariant, and that every state satisfying them passes."""
    return step([(L.And(L.ULE(1, d.num), L.ULE(d.num, len(d.ndesc)), L.ULE(0, d.next_avail), L.ULT(d.next_avail, d.num),
                        L.ULE(0, d.last_used), L.ULT(d.last_used, d.num), L.ULE(0, d.num_free),
                        L.ULE(d.num_free, d.num), L.ULE(0, d.num_added), event_mode_ok(L, d.event_flags, d.event)),
                  INV_DRIVER_BOUNDS),
                 (L.And(_per_id_ok(L, d.num, d.ndesc, d.wlen), sum(d.ndesc, 0) + d.num_free == d.num),
                  INV_DRIVER_ACCOUNTING),
                 (L.Implies(L.Not(d.detached), distance(L, d.num, d.last_used, d.used_wrap, d.next_avail, d.avail_wrap)
                            == d.num - d.num_free), INV_DRIVER_WRAP)], None)


# ---------------------------------------------------------------------------------------------
# Device core (the primary's backend side)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PackedDeviceState:
    """The device's private state; ``ndesc``/``wlen`` are indexed by buffer id (0 = not held)."""

    num: int
    event: bool                 # VIRTIO_F_RING_EVENT_IDX negotiated
    next_avail: int
    avail_wrap: bool            # the driver's counter as the device tracks it
    next_used: int
    used_wrap: bool             # Device Ring Wrap Counter
    in_flight: int              # descriptors of the buffers the device holds
    num_used: int               # descriptors marked used since the last need_notify
    event_flags: int            # device event suppression mode it published
    ndesc: Sequence[int]
    wlen: Sequence[int]


def packed_device_create(L: Any, num: Any, event: Any, table: int) -> Step:
    """A fresh device view of a zeroed ring: both counters 1, nothing held, events ENABLE."""
    guards = [(L.And(L.ULE(1, num), L.ULE(num, min(MAX_QUEUE_SIZE, table))), QUEUE_SIZE)]
    new = L.effect(guards, lambda: PackedDeviceState(
        num=num, event=event, next_avail=0, avail_wrap=True, next_used=0, used_wrap=True, in_flight=0, num_used=0,
        event_flags=RING_EVENT_FLAGS_ENABLE, ndesc=_zeros(L, table), wlen=_zeros(L, table)), None)
    return step(guards, new)


def packed_pop(L: Any, v: PackedDeviceState, avail: Any, used: Any, n: Any, id: Any, wlen: Any) -> Step:
    """Take the list at ``next_avail``: its head's AVAIL/USED bits, its ``n`` ring descriptors (from
    the walk), its buffer id (from the last descriptor) and writable bytes. out = head position."""
    slot, wrap = advance(L, v.num, v.next_avail, v.avail_wrap, n)
    guards = [(is_avail(L, avail, used, v.avail_wrap), NOTHING_AVAILABLE),
              (L.And(L.ULE(0, id), L.ULT(id, v.num)), ID_RANGE),
              (L.at(v.ndesc, id) == 0, ID_IN_FLIGHT),
              (L.And(L.ULE(1, n), L.ULE(v.in_flight + n, v.num)), IN_FLIGHT_BOUND)]
    new = L.effect(guards, lambda: replace(v, next_avail=slot, avail_wrap=wrap, in_flight=v.in_flight + n,
                                           ndesc=L.update(v.ndesc, id, n), wlen=L.update(v.wlen, id, wlen)), v)
    return step(guards, new, out=(v.next_avail, v.avail_wrap))


def packed_push_used(L: Any, v: PackedDeviceState, id: Any, length: Any) -> Step:
    """Mark held buffer ``id`` used with ``length`` written bytes, in any order (§2.8.12 #2):
    one used descriptor at ``next_used``, then skip the buffer's descriptors. out = that position."""
    held = L.And(L.ULE(0, id), L.ULT(id, v.num), L.ULT(0, L.at(v.ndesc, id)))
    n = L.at(v.ndesc, id)
    slot, wrap = advance(L, v.num, v.next_used, v.used_wrap, n)
    guards = [(held, NOT_IN_FLIGHT),
              (L.And(L.ULE(0, length), L.ULE(length, L.at(v.wlen, id))), LEN_BEYOND_WRITABLE)]
    new = L.effect(guards, lambda: replace(
        v, next_used=slot, used_wrap=wrap, in_flight=v.in_flight - n, num_used=v.num_used + n,
        ndesc=L.update(v.ndesc, id, 0), wlen=L.update(v.wlen, id, 0)), v)
    return step(guards, new, out=(v.next_used, v.used_wrap))


def packed_need_notify(L: Any, v: PackedDeviceState, flags: Any, off: Any, ewrap: Any) -> Step:
    """Decide whether to send a used buffer notification from the driver area ``{off, ewrap, flags}``:
    under DESC (and RING_EVENT_IDX), iff the named position was passed since the last decision."""
    window = L.Or(L.ULT(v.num, v.num_used), in_window(L, v.num, v.next_used, v.used_wrap, v.num_used, off, ewrap))
    return step([], replace(v, num_used=0), out=suppress(L, flags, v.event, window))


def packed_set_event(L: Any, v: PackedDeviceState, mode: Any) -> Step:
    """Publish the device's event suppression mode; out = the off_wrap for DESC (next_avail)."""
    guards = [(L.Or(mode == RING_EVENT_FLAGS_ENABLE, mode == RING_EVENT_FLAGS_DISABLE,
                    L.And(mode == RING_EVENT_FLAGS_DESC, v.event)), EVENT_MODE)]
    return step(guards, L.effect(guards, lambda: replace(v, event_flags=mode), v), out=(v.next_avail, v.avail_wrap))


def packed_device_state_check(L: Any, v: PackedDeviceState) -> Step:
    """The guards a device state built mid-stream (``PackedDevice.from_state``) must pass, each citing the
    invariant it keeps: positions in the ring and a valid published mode (``device#bounds``); the held
    buffers' descriptors = in_flight = the distance from (next_used, used wrap) to (next_avail, avail wrap)
    <= num (``device#in-flight``, §2.8.1). Costs the queue size (a creation path); proved equivalent to the
    device invariants in ``proofs/virtio_packed.py``."""
    return step([(L.And(L.ULE(1, v.num), L.ULE(v.num, len(v.ndesc)), L.ULE(0, v.next_avail), L.ULT(v.next_avail, v.num),
                        L.ULE(0, v.next_used), L.ULT(v.next_used, v.num), L.ULE(0, v.num_used),
                        event_mode_ok(L, v.event_flags, v.event)), INV_DEVICE_BOUNDS),
                 (L.And(_per_id_ok(L, v.num, v.ndesc, v.wlen), sum(v.ndesc, 0) == v.in_flight, L.ULE(v.in_flight, v.num),
                        distance(L, v.num, v.next_used, v.used_wrap, v.next_avail, v.avail_wrap) == v.in_flight),
                  INV_DEVICE_IN_FLIGHT)], None)


# ---------------------------------------------------------------------------------------------
# The device's chain walk: every value a hostile driver wrote is checked before it is used
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ChainWalk:
    """What a walk over one list has read so far; ``num`` and ``limit`` are its loop bounds."""

    num: int                    # bound on ring descriptors: the queue size (§2.8.17 #2)
    limit: int                  # bound on indirect table entries (§2.8.19 #3)
    ring_descs: int
    table_descs: int
    total: int                  # bytes of all elements
    wlen: int                   # bytes of device-writable elements
    writing: bool               # a device-writable element was seen
    indirect: bool              # the list went through an indirect descriptor


def chain_walk(num: int, limit: int) -> ChainWalk:
    """Return a walk at the start of a list."""
    return ChainWalk(num=num, limit=limit, ring_descs=0, table_descs=0, total=0, wlen=0, writing=False,
                     indirect=False)


def packed_walk_ring_desc(L: Any, w: ChainWalk, avail_ok: Any, has_next: Any, has_write: Any,
                          has_indirect: Any, length: Any, in_region: Any, indirect_ok: Any) -> Step:
    """Account for one ring descriptor of the list (direct element or indirect table pointer)."""
    direct = L.Not(has_indirect)
    wr = L.And(direct, has_write)
    guards = [(L.ULT(w.ring_descs, w.num), CHAIN_TOO_LONG),
              (avail_ok, EXPOSE_FIRST_LAST),
              (L.Implies(has_indirect, indirect_ok), IND_NOT_NEGOTIATED),
              (L.Implies(has_indirect, L.And(L.Not(has_next), w.ring_descs == 0)), IND_IN_LIST),
              (L.Implies(has_indirect, L.And(L.ULT(0, length), L.mod(length, DESC_SIZE) == 0)), IND_TABLE_LENGTH),
              (L.Implies(has_indirect, L.ULE(L.div(length, DESC_SIZE), w.limit)), IND_CHAIN_LIMIT),
              (in_region, ADDRESS_OUTSIDE),
              (L.Implies(L.And(direct, w.writing), has_write), WRITE_BEFORE_READ),
              (L.Implies(direct, L.ULE(w.total + length, U32_MAX)), TOTAL_LENGTH)]
    new = L.effect(guards, lambda: replace(w, ring_descs=w.ring_descs + 1, total=w.total + L.If(direct, length, 0),
                                           wlen=w.wlen + L.If(wr, length, 0), writing=L.Or(w.writing, wr),
                                           indirect=L.Or(w.indirect, has_indirect)), w)
    return step(guards, new)


def packed_walk_table_desc(L: Any, w: ChainWalk, has_write: Any, has_indirect: Any, length: Any,
                           in_region: Any) -> Step:
    """Account for one entry of an indirect table (only WRITE is meaningful there, §2.8.7)."""
    guards = [(L.Not(has_indirect), IND_NESTED),
              (L.ULT(w.table_descs, w.limit), IND_CHAIN_LIMIT),
              (in_region, ADDRESS_OUTSIDE),
              (L.Implies(w.writing, has_write), WRITE_BEFORE_READ),
              (L.ULE(w.total + length, U32_MAX), TOTAL_LENGTH)]
    new = L.effect(guards, lambda: replace(w, table_descs=w.table_descs + 1, total=w.total + length,
                                           wlen=w.wlen + L.If(has_write, length, 0),
                                           writing=L.Or(w.writing, has_write)), w)
    return step(guards, new)


# ---------------------------------------------------------------------------------------------
# An honest driver and device over one ring (proof composition; ghost slot bits and ids)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PackedRing:
    """Both sides plus, per slot, the AVAIL/USED bits and buffer id last written (ghost)."""

    drv: PackedDriverState
    dev: PackedDeviceState
    avail_bits: Sequence[bool]
    used_bits: Sequence[bool]
    slot_ids: Sequence[int]
    done: Sequence[bool]        # per id: used by the device, not yet taken by the driver


def ring_create(L: Any, num: Any, event: Any, table: int) -> Step:
    """A zero-initialised ring (§2.8.13) with a fresh driver and device."""
    d = packed_driver_create(L, num, event, table)
    v = packed_device_create(L, num, event, table)
    guards = list(d.guards) + list(v.guards)
    new = L.effect(guards, lambda: PackedRing(
        drv=d.new, dev=v.new, avail_bits=L.tabulate(table, lambda k: False), used_bits=L.tabulate(table, lambda k: False),
        slot_ids=_zeros(L, table), done=L.tabulate(table, lambda k: False)), None)
    return step(guards, new)


class SlotBits:
    """The AVAIL and USED bits of each slot read together, as pairs (a view over both tables, no copy)."""

    __slots__ = ("avail", "used")

    def __init__(self, avail: Any, used: Any):
        self.avail, self.used = avail, used

    def __len__(self) -> int:
        return len(self.avail)

    def __getitem__(self, k: int) -> tuple[Any, Any]:
        return self.avail[k], self.used[k]

    def __iter__(self):
        return zip(self.avail, self.used)


def lap_reads(L: Any, bits: SlotBits, num: Any, start: Any, wrap: Any, n: Any,
              pred: Callable[[Any, Any, Any], Any]) -> Any:
    """Return whether ``pred(avail, used, lap wrap)`` holds for each of the ``n`` slots from position
    ``(start, wrap)``: ``L.all_in`` over the two ranges of ``span`` (the second one in the next lap),
    so concretely only those slots are read."""
    n1, n2 = span(L, num, start, n)
    return L.And(L.all_in(bits, start, n1, lambda x: pred(x[0], x[1], wrap)),
                 L.all_in(bits, 0, n2, lambda x: pred(x[0], x[1], L.Not(wrap))))


def lap_fill(L: Any, seq: Any, num: Any, start: Any, n: Any, value: Callable[[Any], Any], wrap: Any) -> Any:
    """Return ``seq`` with each of the ``n`` slots from position ``(start, wrap)`` set to ``value(lap
    wrap)``: two ``L.fill`` range updates (``span``), so concretely only those slots are written."""
    n1, n2 = span(L, num, start, n)
    return L.fill(L.fill(seq, start, n1, value(wrap)), 0, n2, value(L.Not(wrap)))


def ring_add(L: Any, r: PackedRing, n: Any, wlen: Any, id: Any) -> Step:
    """The driver adds buffer ``id`` in ``n`` descriptors: the model's add, then its flag writes."""
    sp = packed_add(L, r.drv, n, wlen, id)
    num, a, w = r.drv.num, r.drv.next_avail, r.drv.avail_wrap
    new = L.effect(sp.guards, lambda: replace(
        r, drv=sp.new,
        avail_bits=lap_fill(L, r.avail_bits, num, a, n, lambda lw: avail_flags(L, lw)[0], w),
        used_bits=lap_fill(L, r.used_bits, num, a, n, lambda lw: avail_flags(L, lw)[1], w),
        slot_ids=lap_fill(L, r.slot_ids, num, a, n, lambda lw: id, w)), r)
    return step(sp.guards, new, sp.out)


def ring_pop(L: Any, r: PackedRing, n: Any, id: Any) -> Step:
    """The device pops a list of ``n`` descriptors naming ``id``; it accepts only if each one reads
    available (its walk's check). An honest driver published ``id`` with exactly ``n`` descriptors."""
    v = r.dev
    sp = packed_pop(L, v, L.at(r.avail_bits, v.next_avail), L.at(r.used_bits, v.next_avail), n, id,
                    L.at(r.drv.wlen, id))
    all_avail = lap_reads(L, SlotBits(r.avail_bits, r.used_bits), v.num, v.next_avail, v.avail_wrap, n,
                          lambda av, us, lw: is_avail(L, av, us, lw))
    published = L.And(L.ULT(0, L.at(r.drv.ndesc, id)), L.at(r.drv.ndesc, id) == n,
                      L.at(r.dev.ndesc, id) == 0, L.Not(L.at(r.done, id)))
    guards = list(sp.guards) + [(all_avail, EXPOSE_FIRST_LAST), (published, ID_IN_FLIGHT)]
    return step(guards, L.effect(guards, lambda: replace(r, dev=sp.new), r), sp.out)


def ring_push_used(L: Any, r: PackedRing, id: Any, length: Any) -> Step:
    """The device marks held buffer ``id`` used: the model's push_used, then its used descriptor."""
    v = r.dev
    sp = packed_push_used(L, v, id, length)
    a, u = used_flags(L, v.used_wrap)
    new = L.effect(sp.guards, lambda: replace(
        r, dev=sp.new, avail_bits=L.update(r.avail_bits, v.next_used, a), used_bits=L.update(r.used_bits, v.next_used, u),
        slot_ids=L.update(r.slot_ids, v.next_used, id), done=L.update(r.done, id, True)), r)
    return step(sp.guards, new, sp.out)


def ring_get_used(L: Any, r: PackedRing, length: Any) -> Step:
    """The driver takes the used descriptor at its ``last_used``: bits and id as the slot holds them."""
    d = r.drv
    id = L.at(r.slot_ids, d.last_used)
    sp = packed_get_used(L, d, L.at(r.avail_bits, d.last_used), L.at(r.used_bits, d.last_used), id, length)
    return step(sp.guards, L.effect(sp.guards, lambda: replace(r, drv=sp.new, done=L.update(r.done, id, False)), r),
                sp.out)


def _zeros(L: Any, table: int) -> Any:
    """A fresh table of ``table`` zeros (a ``Table`` concretely: written in place, O(1) per entry)."""
    return L.tabulate(table, lambda k: 0)


# ---------------------------------------------------------------------------------------------
# Bytes: descriptors and event suppression structures over a MemoryView
# ---------------------------------------------------------------------------------------------

class PackedLayout(NamedTuple):
    """Addresses of the three parts (§2.8.10.1: ring align 16, event structures align 4)."""

    desc: int
    driver: int       # driver event suppression (Driver Area)
    device: int       # device event suppression (Device Area)

    @staticmethod
    def contiguous(num: int, base: int = 0) -> "PackedLayout":
        """Ring at ``base`` (rounded up to 16), then the driver area, then the device area."""
        d = (base + 15) & ~15
        return PackedLayout(d, d + DESC_SIZE * num, d + DESC_SIZE * num + EVENT_SIZE)


class RawDesc(NamedTuple):
    """One decoded ``struct pvirtq_desc``."""

    addr: int
    len: int
    id: int
    flags: int


def read_desc(mem: MemoryView, addr: int) -> RawDesc:
    """Decode the 16-byte descriptor at ``addr``."""
    raw = mem.read(addr, DESC_SIZE)
    return RawDesc(int.from_bytes(raw[0:8], "little"), int.from_bytes(raw[8:12], "little"),
                   int.from_bytes(raw[12:14], "little"), int.from_bytes(raw[14:16], "little"))


def write_desc_body(mem: MemoryView, addr: int, buf_addr: int, length: int, id: int) -> None:
    """Write addr, len and id of a descriptor (flags are written separately, last)."""
    mem.write(addr, buf_addr.to_bytes(8, "little") + length.to_bytes(4, "little") + id.to_bytes(2, "little"))


def encode_flags(avail: bool, used: bool, extra: int = 0) -> int:
    """Return a flags word from AVAIL/USED bits and NEXT/WRITE/INDIRECT bits."""
    return (VIRTQ_DESC_F_AVAIL if avail else 0) | (VIRTQ_DESC_F_USED if used else 0) | extra


def read_event(mem: MemoryView, addr: int) -> tuple[int, int, bool]:
    """Return (flags, offset, wrap) of the event suppression structure at ``addr``."""
    off_wrap, flags = read_le(mem, addr, 2), read_le(mem, addr + 2, 2)
    return flags, off_wrap & EVENT_OFF_MASK, bool(off_wrap >> EVENT_F_WRAP_CTR)


def _readable(mem: MemoryView, addr: int, length: int) -> bool:
    """Return whether the view can read ``length`` bytes at ``addr`` (the default shared-region test of a ring
    part: a part the device's view cannot read is outside the region it shares with the driver)."""
    try:
        mem.read(addr, length)
    except errors.AccessFault:
        return False
    return True


def off_wrap(slot: int, wrap: bool) -> int:
    """Encode a position as ``off:15 | wrap:1``."""
    return slot | (int(wrap) << EVENT_F_WRAP_CTR)


class Chain(NamedTuple):
    """A list the device popped: buffer id, elements, ring descriptors it occupies."""

    id: int
    readable: list
    writable: list
    ndesc: int


class PackedDriver:
    """The honest driver: places buffers, kicks, takes used buffers; trusts nothing the device wrote.

    ``notify()`` is the transport's available buffer notification. Errors: ``Exhausted`` (ring full),
    ``CallerError`` (bad request), ``PeerViolation`` (a used descriptor the device could not have
    honestly written; the request fails, the driver state is unchanged).
    """

    def __init__(self, mem: MemoryView, layout: PackedLayout, num: int, *, event_idx: bool = False,
                 indirect: bool = False, indirect_gpa: int | None = None, indirect_max: int = 16,
                 notify: Callable[[], None] | None = None):
        self.state, _ = apply(packed_driver_create(CONCRETE, num, event_idx, max(num, 1)), f"queue size {num}")
        self.mem, self.layout, self.num = mem, layout, num
        self.indirect = indirect and indirect_gpa is not None
        self.indirect_gpa, self.indirect_max = indirect_gpa, indirect_max
        self.notify = notify or (lambda: None)
        self.last_out: Any = None
        self.last_args: dict | None = {}                        # the core step's arguments, for rule checks
        # creation costs the queue size (the id free list, the zeroed ring); operations do not
        self.free_head = 0                                      # Linux vq->free_head
        self.next_id = [(i + 1) % num for i in range(num)]      # Linux desc_extra[].next
        self.last_id = [0] * num                                # Linux desc_state[].last
        self.tokens: list[Any] = [None] * num
        mem.write(layout.desc, bytes(DESC_SIZE * num))          # the ring is zero-initialised (§2.8.13)
        mem.write(layout.driver, bytes(EVENT_SIZE))
        mem.write(layout.device, bytes(EVENT_SIZE))

    @classmethod
    def from_state(cls, mem: MemoryView, layout: PackedLayout, num: int, *, next_avail: int, avail_wrap: bool = True,
                   buffers: Any = (), last_used: int | None = None, used_wrap: bool | None = None,
                   num_added: int = 0, event_flags: int = RING_EVENT_FLAGS_ENABLE,
                   event_off: tuple[int, bool] | None = None, **kw: Any) -> "PackedDriver":
        """A driver mid-stream: ``buffers`` outstanding (made available, not yet taken back), in the order they
        were made available, each ``(out, inn, token)`` or ``(out, inn, token, id)``. They fill the positions
        just before ``(next_avail, avail_wrap)``, so ``(last_used, used_wrap)`` is that position moved back by
        their descriptors (given, it must be). ``num_added`` counts descriptors added since the last kick;
        ``event_flags`` is the driver's event suppression mode; ``event_off`` the off_wrap position its Driver
        Area names (default ``(last_used, used_wrap)`` with RING_EVENT_IDX, as ``enable_cb``/``get_used``
        write it). Other keywords are the constructor's.

        Writes what the driver owns, as ``add`` writes it: the zeroed ring (as the constructor), each buffer's
        descriptors and indirect table from ``last_used`` on (ids, the free list and the indirect decision as
        Linux's: without explicit ids, the ids a fresh driver gives), the Driver Area; each free slot holds
        what the previous lap left there (a descriptor used with that lap's wrap counter; zero in lap 0, as
        the zeroed ring), so it reads neither available nor used (§2.8.1). Build the driver before a device on
        the same bytes (the device then writes its used descriptors). An illegal state raises the invariant's
        clause (``InvariantViolation``, ``packed_driver_state_check``): positions outside the ring, an invalid
        mode, more descriptors than the queue, an id twice or outside the queue, a ``last_used`` that does not
        count the outstanding descriptors.
        """
        drv = cls(mem, layout, num, **kw)
        bufs = [(list(b[0]), list(b[1]), b[2], b[3] if len(b) > 3 else None) for b in buffers]
        if any(not (o or i) for o, i, _, _ in bufs):
            raise errors.fail(EMPTY_BUFFER, "an outstanding buffer with no element")
        free, ns = num, []
        for o, i, _, _ in bufs:                 # the descriptors each add takes (the indirect decision is add's)
            ns.append(1 if drv._use_indirect(len(o) + len(i), free) else len(o) + len(i))
            free -= ns[-1]
        total = sum(ns)
        explicit = any(b[3] is not None for b in bufs)
        ids = [b[3] for b in bufs] if explicit else [sum(ns[:k]) % max(num, 1) for k in range(len(bufs))]
        bad = [i for i in ids if not (isinstance(i, int) and 0 <= i < num)]
        if bad or total > num:
            raise errors.fail(INV_DRIVER_ACCOUNTING, f"ids {bad} outside the queue of {num}" if bad else
                              f"{total} descriptors outstanding in a queue of {num}")
        if last_used is None:
            last_used, used_wrap = back(CONCRETE, num, next_avail, avail_wrap, total)
        elif used_wrap is None:                 # the wrap that makes the span the outstanding descriptors, if any
            used_wrap = next((w for w in (avail_wrap, not avail_wrap)
                              if distance(CONCRETE, num, last_used, w, next_avail, avail_wrap) == total), avail_wrap)
        ndesc, wlen = [0] * num, [0] * num
        for (o, i, _, _), id, n in zip(bufs, ids, ns):
            ndesc[id] += num if ndesc[id] else n           # an id twice: the accounting guard refuses it
            wlen[id] = sum(ln for _, ln in i)
        target = replace(drv.state, next_avail=next_avail, avail_wrap=avail_wrap, last_used=last_used,
                         used_wrap=used_wrap, num_free=num - total, num_added=num_added, event_flags=event_flags,
                         ndesc=CONCRETE.tabulate(num, lambda k: ndesc[k]), wlen=CONCRETE.tabulate(num, lambda k: wlen[k]))
        apply(packed_driver_state_check(CONCRETE, target),
              f"next avail ({next_avail}, {avail_wrap}), last used ({last_used}, {used_wrap}), {len(bufs)} buffers "
              f"in {total} descriptors, num_added {num_added}, event flags {event_flags}")
        # the free slots [next_avail, last_used + num): what the previous lap left (AVAIL = USED = its wrap)
        for k in range(num - total):            # bound: the queue size (a creation path)
            slot, coming = advance(CONCRETE, num, next_avail, avail_wrap, k)
            if not coming:
                write_le(mem, drv._slot(slot) + 14, 2, encode_flags(True, True))
        drv.state = replace(drv.state, next_avail=last_used, avail_wrap=used_wrap, last_used=last_used,
                            used_wrap=used_wrap)
        taken: set[int] = set()
        for (o, i, token, _), id, n in zip(bufs, ids, ns):
            if explicit:                        # Linux's list: the id, then n - 1 more entries (lowest free first)
                extra = [e for e in range(num) if e not in taken and e not in ids][:n - 1]
                for a, b in zip([id] + extra, extra):
                    drv.next_id[a] = b
                drv.free_head = id
                taken.update([id] + extra)
            drv.add(o, i, token)
        if explicit:
            rest = [e for e in range(num) if e not in taken]
            for a, b in zip(rest, rest[1:] + rest[:1]):
                drv.next_id[a] = b
            drv.free_head = rest[0] if rest else 0
        if (drv.state.next_avail, drv.state.avail_wrap, drv.state.num_free) != (next_avail, avail_wrap, num - total):
            raise errors.ModelBug("from_state: the adds did not reach the requested position")
        drv.state = target
        if event_off is None and drv.state.event:
            event_off = (last_used, used_wrap)
        if event_off is not None:
            write_le(mem, layout.driver, 2, off_wrap(*event_off))
        write_le(mem, layout.driver + 2, 2, event_flags)
        drv.last_args, drv.last_out = {}, None
        return drv

    def _use_indirect(self, count: int, num_free: int) -> bool:
        """Indirect when negotiated, for 2..min(indirect_max, num) elements (the device's default limit is the
        queue size, §2.8.5; Linux checks only indirect_max) and a free descriptor."""
        return self.indirect and 1 < count <= min(self.indirect_max, self.num) and num_free > 0

    def _slot(self, slot: int) -> int:
        return self.layout.desc + DESC_SIZE * slot

    def add(self, out: list[tuple[int, int]], inn: list[tuple[int, int]], token: Any = True) -> int:
        """Make a buffer of readable ``out`` and writable ``inn`` elements available; return its id."""
        elems = [(a, n, False) for a, n in out] + [(a, n, True) for a, n in inn]
        s = self.state
        use_indirect = self._use_indirect(len(elems), s.num_free)
        n = 1 if use_indirect else len(elems)
        id = self.free_head
        self.last_args = {"n": n, "wlen": sum(ln for _, ln, w in elems if w), "id": id}
        sp = packed_add(CONCRETE, s, **self.last_args)
        self.last_out = sp.out
        self.state, (head, wrap) = apply(sp, f"{len(elems)} elements, {s.num_free} descriptors free")
        if use_indirect:
            table = self.indirect_gpa + id * self.indirect_max * DESC_SIZE
            for k, (a, ln, w) in enumerate(elems):
                write_desc_body(self.mem, table + DESC_SIZE * k, a, ln, 0)
                write_le(self.mem, table + DESC_SIZE * k + 14, 2, VIRTQ_DESC_F_WRITE if w else 0)
            write_desc_body(self.mem, self._slot(head), table, DESC_SIZE * len(elems), id)
            head_flags = encode_flags(*avail_flags(CONCRETE, wrap), VIRTQ_DESC_F_INDIRECT)
            self.free_head, self.last_id[id] = self.next_id[id], id
        else:
            head_flags, curr = 0, id
            for k, (a, ln, w) in enumerate(elems):
                slot, wk = advance(CONCRETE, s.num, head, wrap, k)
                extra = (VIRTQ_DESC_F_NEXT if k < n - 1 else 0) | (VIRTQ_DESC_F_WRITE if w else 0)
                flags = encode_flags(*avail_flags(CONCRETE, wk), extra)
                write_desc_body(self.mem, self._slot(slot), a, ln, id)
                if k == 0:
                    head_flags = flags
                else:
                    write_le(self.mem, self._slot(slot) + 14, 2, flags)
                self.last_id[id], curr = curr, self.next_id[curr]
            self.free_head = curr
        write_le(self.mem, self._slot(head) + 14, 2, head_flags)   # expose the first descriptor last (§2.8.17 #5)
        self.tokens[id] = token
        return id

    def kick_prepare(self) -> bool:
        """Return whether the device wants an available buffer notification now."""
        flags, off, ewrap = read_event(self.mem, self.layout.device)
        self.last_args = {"flags": flags, "off": off, "ewrap": ewrap}
        sp = packed_kick_prepare(CONCRETE, self.state, **self.last_args)
        self.last_out = sp.out
        self.state, kick = apply(sp)
        return bool(kick)

    def kick(self) -> bool:
        """kick_prepare, then notify if needed; return whether it notified."""
        if self.kick_prepare():
            self.notify()
            return True
        return False

    def get_used(self) -> tuple[Any, int] | None:
        """Return (token, length) of the next used buffer, or None; ``PeerViolation`` on a bad one."""
        s = self.state
        raw = read_desc(self.mem, self._slot(s.last_used))
        length = raw.len if raw.flags & VIRTQ_DESC_F_WRITE else 0
        self.last_args = {"avail": bool(raw.flags & VIRTQ_DESC_F_AVAIL), "used": bool(raw.flags & VIRTQ_DESC_F_USED),
                          "id": raw.id, "length": length}
        sp = packed_get_used(CONCRETE, s, **self.last_args)
        self.last_out = sp.out
        if first_failed(sp) == NO_USED:
            self.last_args = None                               # nothing used: no step taken
            return None
        self.state, (id, length) = apply(sp, f"used id {raw.id} len {raw.len} flags {raw.flags:#x} at slot {s.last_used}")
        token, self.tokens[id] = self.tokens[id], None
        self.next_id[self.last_id[id]], self.free_head = self.free_head, id
        if self.state.event_flags == RING_EVENT_FLAGS_DESC:
            write_le(self.mem, self.layout.driver, 2, off_wrap(self.state.last_used, self.state.used_wrap))
        return token, length

    def more_used(self) -> bool:
        """Return whether the next descriptor reads used for the driver's wrap counter."""
        flags = read_le(self.mem, self._slot(self.state.last_used) + 14, 2)
        return bool(is_used(CONCRETE, bool(flags & VIRTQ_DESC_F_AVAIL), bool(flags & VIRTQ_DESC_F_USED),
                            self.state.used_wrap))

    def enable_cb(self) -> bool:
        """Re-enable used notifications; return False if used buffers are already pending (poll again)."""
        was = self.state.event_flags
        self.last_args = {}
        sp = packed_enable_cb(CONCRETE, self.state)
        self.last_out = sp.out
        self.state, (slot, wrap) = apply(sp)
        if self.state.event:
            write_le(self.mem, self.layout.driver, 2, off_wrap(slot, wrap))
        if was == RING_EVENT_FLAGS_DISABLE:
            write_le(self.mem, self.layout.driver + 2, 2, self.state.event_flags)
        return not self.more_used()

    def disable_cb(self) -> None:
        """Suppress used notifications."""
        was = self.state.event_flags
        self.last_args = {}
        sp = packed_disable_cb(CONCRETE, self.state)
        self.last_out = sp.out
        self.state, _ = apply(sp)
        if was != RING_EVENT_FLAGS_DISABLE:
            write_le(self.mem, self.layout.driver + 2, 2, RING_EVENT_FLAGS_DISABLE)

    def detach_unused(self) -> Any:
        """Take back the lowest outstanding buffer after a device reset; return its token or None.

        A reset path: its scan for the lowest outstanding id is bounded by the queue size (as Linux's
        ``virtqueue_detach_unused_buf_packed``); every other operation costs only what it touches."""
        for id in range(self.num):             # bound: queue size (reset path only)
            if self.state.ndesc[id]:
                self.last_args = {"id": id}
                sp = packed_detach_unused(CONCRETE, self.state, id)
                self.last_out = sp.out
                self.state, _ = apply(sp)
                token, self.tokens[id] = self.tokens[id], None
                self.next_id[self.last_id[id]], self.free_head = self.free_head, id
                return token
        return None


class PackedDevice:
    """The honest device: pops lists in ring order, marks them used in any order, validates every
    value the driver wrote (``PeerViolation`` naming the clause; its own state unchanged).

    ``region = (lo, hi)``: the shared region every element and indirect table must lie in.
    ``max_chain``: its limit on indirect table entries (default: the queue size, §2.8.5).
    ``max_size``: the device's QueueNumMax. ``in_region(addr, len)``: whether a driver address range lies
    in the shared region the ring must be placed in (default: every range the device's view can read).

    Building the device is the driver making the queue ready: ``packed_queue_ready`` checks the size (1..32768,
    at most ``max_size``), the alignment of the three parts (16, 4, 4) and that each lies wholly in the
    shared region; a refusal raises ``PeerViolation`` naming the clause.
    """

    def __init__(self, mem: MemoryView, layout: PackedLayout, num: int, region: tuple[int, int], *,
                 event_idx: bool = False, indirect: bool = False, max_chain: int | None = None,
                 notify: Callable[[], None] | None = None, max_size: int = MAX_QUEUE_SIZE,
                 in_region: Callable[[int, int], bool] | None = None):
        ring_in = in_region or (lambda a, n: _readable(mem, a, n))
        sizes = part_sizes(num) if 0 < num <= MAX_QUEUE_SIZE else (0, 0, 0)
        parts = [ring_in(a, k) for a, k in zip(layout, sizes)]
        apply(packed_queue_ready(CONCRETE, num, max_size, *layout, *parts),
              f"size {num} (device maximum {max_size}), descriptor ring {layout.desc:#x}, driver area "
              f"{layout.driver:#x}, device area {layout.device:#x}")
        self.max_size = max_size
        self.state, _ = apply(packed_device_create(CONCRETE, num, event_idx, max(num, 1)), f"queue size {num}")
        self.mem, self.layout, self.num, self.region = mem, layout, num, region
        self.indirect, self.limit = indirect, max_chain or num
        self.notify = notify or (lambda: None)
        self.last_out: Any = None
        self.last_args: dict | None = {}

    @classmethod
    def from_state(cls, mem: MemoryView, layout: PackedLayout, num: int, region: tuple[int, int], *,
                   next_avail: int, avail_wrap: bool = True, next_used: int | None = None,
                   used_wrap: bool | None = None, held: Any = None, used: Any = (), num_used: int = 0,
                   event_flags: int = RING_EVENT_FLAGS_ENABLE, event_off: tuple[int, bool] | None = None,
                   **kw: Any) -> "PackedDevice":
        """A device mid-stream: ``(next_avail, avail_wrap)`` where it polls next; the buffers it holds (``held``:
        id -> the ``Chain`` it popped, or id -> ``(ndesc, wlen)``), which fill the positions just before
        ``next_avail`` (so ``(next_used, used_wrap)`` is that position moved back by their descriptors; given,
        it must be); ``used``: its latest used descriptors ``(id, length, ndesc)``, oldest first, ending just
        before ``next_used`` (buffers the driver has not taken back yet); ``num_used`` (descriptors used since
        the last ``need_notify``); ``event_flags`` the mode it published, ``event_off`` its DESC position
        (default ``(next_avail, avail_wrap)``, as ``set_event`` writes it). Other keywords are the
        constructor's (the queue-ready checks run first).

        Writes what the device owns, as ``push_used`` and ``set_event`` write it: each used descriptor (len,
        id, flags AVAIL = USED = its lap's wrap counter, WRITE iff length > 0) and the Device Area. Build it
        after the driver on the same bytes. An illegal state raises the invariant's clause
        (``InvariantViolation``, ``packed_device_state_check``): positions outside the ring, an invalid mode,
        held ids outside the queue or a ``next_used`` that does not count their descriptors (``device#in-flight``),
        used descriptors that overlap the held ones, name an id twice or a held id (``ring#ids``).
        """
        dev = cls(mem, layout, num, region, **kw)
        held = dict(held or {})
        used = [tuple(u) for u in used]
        nw = {h: ((c.ndesc, sum(ln for _, ln in c.writable)) if isinstance(c, Chain) else tuple(c))
              for h, c in held.items()}
        bad = [h for h, (n, w) in nw.items() if not (isinstance(h, int) and 0 <= h < num and isinstance(n, int)
                                                     and 1 <= n <= num and isinstance(w, int) and 0 <= w <= U32_MAX)]
        in_flight = sum(n for n, _ in nw.values())
        if bad or in_flight > num:
            raise errors.fail(INV_DEVICE_IN_FLIGHT, f"held ids {bad} outside the queue of {num} (or bad counts)"
                              if bad else f"{in_flight} descriptors held in a queue of {num}")
        if next_used is None:
            next_used, used_wrap = back(CONCRETE, num, next_avail, avail_wrap, in_flight)
        elif used_wrap is None:
            used_wrap = next((w for w in (avail_wrap, not avail_wrap)
                              if distance(CONCRETE, num, next_used, w, next_avail, avail_wrap) == in_flight), avail_wrap)
        v = replace(dev.state, next_avail=next_avail, avail_wrap=avail_wrap, next_used=next_used, used_wrap=used_wrap,
                    in_flight=in_flight, num_used=num_used, event_flags=event_flags,
                    ndesc=CONCRETE.tabulate(num, lambda k: nw.get(k, (0, 0))[0]),
                    wlen=CONCRETE.tabulate(num, lambda k: nw.get(k, (0, 0))[1]))
        apply(packed_device_state_check(CONCRETE, v),
              f"next avail ({next_avail}, {avail_wrap}), next used ({next_used}, {used_wrap}), {len(held)} held "
              f"in {in_flight} descriptors, num_used {num_used}, event flags {event_flags}")
        ids = [u[0] for u in used]
        spread = sum(u[2] if len(u) > 2 else 1 for u in used)
        if (len(set(ids)) != len(ids) or set(ids) & set(held) or spread + in_flight > num
                or not all(len(u) == 3 and isinstance(u[0], int) and 0 <= u[0] < num and isinstance(u[1], int)
                           and 0 <= u[1] <= U32_MAX and isinstance(u[2], int) and u[2] >= 1 for u in used)):
            raise errors.fail(INV_RING_IDS, f"used descriptors {used}: ids distinct, below {num}, not held; "
                                            f"({spread} + {in_flight} held) descriptors at most {num}")
        dev.state = v
        slot, wrap = next_used, used_wrap
        for id, length, n in reversed(used):    # newest first, moving back from next_used
            slot, wrap = back(CONCRETE, num, slot, wrap, n)
            base = layout.desc + DESC_SIZE * slot
            write_le(mem, base + 8, 4, length)
            write_le(mem, base + 12, 2, id)
            write_le(mem, base + 14, 2, encode_flags(*used_flags(CONCRETE, wrap), VIRTQ_DESC_F_WRITE if length else 0))
        if event_off is None:
            event_off = (next_avail, avail_wrap)
        write_le(mem, layout.device, 2, off_wrap(*event_off) if event_flags == RING_EVENT_FLAGS_DESC else 0)
        write_le(mem, layout.device + 2, 2, event_flags)
        dev.last_args, dev.last_out = {}, None
        return dev

    def _in_region(self, addr: int, length: int) -> bool:
        lo, hi = self.region
        return lo <= addr and addr + length <= hi

    def _walk(self) -> tuple[ChainWalk, Chain] | None:
        """Read and validate the list at next_avail; None when its head is not available."""
        s = self.state
        readable: list = []
        writable: list = []
        w = chain_walk(s.num, self.limit)
        last = None
        for k in range(s.num + 1):             # bound: the queue size; the guard fires at k == num
            slot, wrap = advance(CONCRETE, s.num, s.next_avail, s.avail_wrap, k) if k < s.num else \
                (s.next_avail, not s.avail_wrap)
            raw = read_desc(self.mem, self.layout.desc + DESC_SIZE * slot)
            ok = is_avail(CONCRETE, bool(raw.flags & VIRTQ_DESC_F_AVAIL), bool(raw.flags & VIRTQ_DESC_F_USED), wrap)
            if k == 0 and not ok:
                return None
            ind = bool(raw.flags & VIRTQ_DESC_F_INDIRECT)
            nxt = bool(raw.flags & VIRTQ_DESC_F_NEXT)
            wr = bool(raw.flags & VIRTQ_DESC_F_WRITE)
            w, _ = apply(packed_walk_ring_desc(CONCRETE, w, ok, nxt, wr, ind, raw.len,
                                               self._in_region(raw.addr, raw.len), self.indirect),
                         f"descriptor {k} of the list at slot {s.next_avail}: {raw}")
            if ind:
                for e in range(min(raw.len // DESC_SIZE, w.limit)):   # bound: the table limit
                    ent = read_desc(self.mem, raw.addr + DESC_SIZE * e)
                    ewr = bool(ent.flags & VIRTQ_DESC_F_WRITE)
                    w, _ = apply(packed_walk_table_desc(CONCRETE, w, ewr, bool(ent.flags & VIRTQ_DESC_F_INDIRECT),
                                                        ent.len, self._in_region(ent.addr, ent.len)),
                                 f"indirect entry {e} at {raw.addr:#x}: {ent}")
                    (writable if ewr else readable).append((ent.addr, ent.len))
            else:
                (writable if wr else readable).append((raw.addr, raw.len))
            last = raw
            if not nxt:
                return w, Chain(last.id, readable, writable, k + 1)
        raise errors.ModelBug("chain walk passed its bound without a guard firing")

    def pop(self) -> Chain | None:
        """Return the next available list, or None; ``PeerViolation`` when the driver broke a MUST."""
        s = self.state
        head = read_le(self.mem, self.layout.desc + DESC_SIZE * s.next_avail + 14, 2)
        walked = self._walk()
        if walked is None:
            return None
        w, chain = walked
        self.last_args = {"avail": bool(head & VIRTQ_DESC_F_AVAIL), "used": bool(head & VIRTQ_DESC_F_USED),
                          "n": chain.ndesc, "id": chain.id, "wlen": w.wlen}
        sp = packed_pop(CONCRETE, s, **self.last_args)
        self.last_out = sp.out
        self.state, _ = apply(sp, f"list of {chain.ndesc} at slot {s.next_avail}, id {chain.id}")
        return chain

    def read(self, chain: Chain) -> bytes:
        """Return the bytes of the list's readable elements, in order."""
        return b"".join(self.mem.read(a, n) for a, n in chain.readable)

    def write(self, chain: Chain, data: bytes) -> int:
        """Write ``data`` into the writable elements in order; return how many bytes fit."""
        k = 0
        for a, n in chain.writable:
            part = data[k:k + n]
            self.mem.write(a, part)
            k += len(part)
        return k

    def push_used(self, id: int, length: int) -> None:
        """Mark held buffer ``id`` used with ``length`` written bytes (flags written last)."""
        s = self.state
        self.last_args = {"id": id, "length": length}
        sp = packed_push_used(CONCRETE, s, id, length)
        self.last_out = sp.out
        self.state, (slot, wrap) = apply(sp, f"id {id} len {length}")
        base = self.layout.desc + DESC_SIZE * slot
        write_le(self.mem, base + 8, 4, length)
        write_le(self.mem, base + 12, 2, id)
        write_le(self.mem, base + 14, 2, encode_flags(*used_flags(CONCRETE, wrap),
                                                       VIRTQ_DESC_F_WRITE if length else 0))

    def need_notify(self) -> bool:
        """Return whether the driver wants a used buffer notification now."""
        flags, off, ewrap = read_event(self.mem, self.layout.driver)
        self.last_args = {"flags": flags, "off": off, "ewrap": ewrap}
        sp = packed_need_notify(CONCRETE, self.state, **self.last_args)
        self.last_out = sp.out
        self.state, out = apply(sp)
        return bool(out)

    def set_event(self, mode: int) -> None:
        """Publish ENABLE, DISABLE or DESC (next_avail) in the device area."""
        self.last_args = {"mode": mode}
        sp = packed_set_event(CONCRETE, self.state, mode)
        self.last_out = sp.out
        self.state, (slot, wrap) = apply(sp, f"mode {mode}")
        write_le(self.mem, self.layout.device, 2, off_wrap(slot, wrap) if mode == RING_EVENT_FLAGS_DESC else 0)
        write_le(self.mem, self.layout.device + 2, 2, mode)
