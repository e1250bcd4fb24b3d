"""Split virtqueue, driver and device, hardened against a malicious peer (virtio 1.3 §2.7).

Layout (§2.7, little-endian): descriptor table ``16·N`` bytes (align 16); available ring
``flags, idx, ring[N], used_event`` (align 2); used ring ``flags, idx, ring[N]{le32 id, le32 len},
avail_event`` (align 4). N is a power of two up to 32768; ``idx`` fields are free-running u16.

The symbolic core is two states, one per side, which share nothing: ``DriverRing`` (what the
driver in the secondary knows: which descriptors are free, the chains it made available, the
available ring it wrote) and ``DeviceRing`` (what the device in the primary knows: the heads it
holds, the used ring it wrote). Every transition takes the values it reads from the other side's
memory as arguments, so proofs cover whatever a hostile peer writes. Ownership of a descriptor
(driver: free; device: available, held, used) is derived from both states; the partition is
stated in ``specs/invariants/virtio_split.py``.

``SplitDriver`` and ``SplitDevice`` are the concrete sides: each wraps its core state, reads and
writes ring bytes through its own ``MemoryView``, and calls its own notify callback. The driver
follows Linux 6.1 ``virtio_ring.c`` (free-list order, indirect policy, kick and ``used_event``
writes); the device validates every chain with ``chain.walk_chain``. A peer violation marks the
ring broken with its clause (Linux BAD_RING, vhost's vq error): later calls raise it again.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable

from t1virtio import errors
from t1virtio.hyp.memview import MemoryView, read_le, write_le
from t1virtio.logic import CONCRETE
from t1virtio.preset import SMALL, VIRTQUEUE_MAX_SIZE
from t1virtio.state import bits
from t1virtio.step import Step, apply, first_failed, step
from t1virtio.virtio import chain
from t1virtio.state import evolve as replace
from t1virtio.virtio.desc import DESC_SIZE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE
from t1virtio.virtio import notify as vnotify   # by module: a patched need_event reaches the ring

U16 = 16
MAX_QUEUE_SIZE = VIRTQUEUE_MAX_SIZE      # §2.7: at most 2^15 entries
VRING_AVAIL_F_NO_INTERRUPT = 1
VRING_USED_F_NO_NOTIFY = 1
USED_ELEM_SIZE = 8

LAYOUT = "VIRTIO/driver/Virtqueues#layout"
SG_COUNT = "VIRTIO/model/driver#sg-count"
ALLOC = "VIRTIO/model/driver#alloc"
NO_SPACE = "VIRTIO/model/driver#no-space"
DETACH = "VIRTIO/model/driver#detach"
USED_EMPTY = "VIRTIO/model/used#empty"
USED_IDX = "VIRTIO/model/used#idx"
USED_ID = "VIRTIO/model/used#id"
USED_LEN = "VIRTIO/device/Virtqueues/The Virtqueue Used Ring#len"
AVAIL_IDX = "VIRTIO/driver/Virtqueues/The Virtqueue Available Ring#idx"
AVAIL_EMPTY = "VIRTIO/model/avail#empty"
HEAD_RANGE = "VIRTIO/model/avail#head-range"
INUSE = "VIRTIO/model/device#inuse"
HELD = "VIRTIO/model/device#held"
DEV_LEN = "VIRTIO/model/device#used-len"
QUEUE_NUM_MAX = "VIRTIO/driver/Virtio Over MMIO/MMIO Device Register Layout#queue-num-max"
QUEUE_POW2 = "VIRTIO/model/queue#size-pow2"
ALIGN = "VIRTIO/driver/Virtqueues#align"
RING_IN_REGION = "VIRTIO/model/queue#in-region"

# The device's policy for a head made available again while it still holds it (no normative sentence
# covers this case). "refuse": ``pop_avail`` refuses it with ``VIRTIO/model/device#inuse`` and the ring is
# broken. Why: the device then holds each head once, so it never maps one chain twice (CVE-2021-3748 class),
# its used entries can never name one head twice (the honest driver frees a chain on its first used
# entry and would refuse the second as ``used#id``), and it holds at most queue-size buffers (2.7: Queue
# Size is the most buffers queued). An honest driver never does it: Linux 6.1 reuses a head only after
# ``detach_buf_split``. vringh and QEMU accept it (QEMU counts ``inuse`` only). The model's states hold a
# head at most once (``held`` is a flag per head), so "refuse" is the only policy they express.
HELD_HEAD_POLICY = "refuse"

# invariant clauses a state built by ``from_state`` must satisfy (specs/invariants/virtio_split.py states them)
INV_U16 = "VIRTIO/model/index#u16"
INV_FREE = "VIRTIO/model/ownership#free"
INV_CHAIN = "VIRTIO/model/ownership#chain"
INV_IN_FLIGHT = "VIRTIO/model/ownership#in-flight"
INV_AVAIL_WINDOW = "VIRTIO/model/index#avail-window"
INV_DEVICE_HELD = "VIRTIO/model/ownership#device-held"
INV_AVAIL_FLAGS = "VIRTIO/driver/Virtqueues/Used Buffer Notification Suppression#flags"
INV_USED_FLAGS = "VIRTIO/device/Virtqueues/Available Buffer Notification Suppression#flags"

# A selection of descriptors (``add_buf``'s ``sel``, a chain's record) is a set of table indices: concretely a
# frozenset (an int bitmask is accepted too, as in older counterexample files), in proofs a bitmask of one bit
# per descriptor of the proofs' queue size and one more, so the proofs also cover a selection naming an index
# outside the table (``add_buf`` refuses it).
SEL_BITS = SMALL.queue_size + 1


# ---------------------------------------------------------------- layout (§2.7, §2.7.1)

@dataclass(frozen=True, slots=True)
class SplitLayout:
    """Addresses of the three ring parts in one side's address space."""

    size: int
    desc: int
    avail: int
    used: int

    def desc_at(self, i: int) -> int:
        return self.desc + DESC_SIZE * i

    def avail_ring_at(self, slot: int) -> int:
        return self.avail + 4 + 2 * slot

    def used_event(self) -> int:
        return self.avail + 4 + 2 * self.size

    def used_elem_at(self, slot: int) -> int:
        return self.used + 4 + USED_ELEM_SIZE * slot

    def avail_event(self) -> int:
        return self.used + 4 + USED_ELEM_SIZE * self.size

    def shifted(self, delta: int) -> "SplitLayout":
        """The same ring seen at addresses ``delta`` higher (another VM's view of the shared bytes)."""
        return SplitLayout(self.size, self.desc + delta, self.avail + delta, self.used + delta)


def compute_layout(size: int, base: int = 0, align: int = 4096) -> SplitLayout:
    """Return the legacy contiguous layout (``vring_init``): table, avail ring, used ring at the next ``align``."""
    avail = base + DESC_SIZE * size
    used = (avail + 6 + 2 * size + align - 1) & ~(align - 1)
    return SplitLayout(size, base, avail, used)


def ring_bytes(layout: SplitLayout) -> int:
    """Return the bytes from the table's start to the end of the used ring (``vring_size`` for a contiguous layout)."""
    return layout.used + 6 + USED_ELEM_SIZE * layout.size - layout.desc


def part_sizes(size: int) -> tuple[int, int, int]:
    """Return the bytes of the descriptor table, available ring and used ring of a ``size``-entry ring (§2.7)."""
    return DESC_SIZE * size, 6 + 2 * size, 6 + USED_ELEM_SIZE * size


def _pow2(L: Any, size: Any) -> Any:
    return L.And(L.ULT(0, size), (size & (size - 1)) == 0, L.ULE(size, MAX_QUEUE_SIZE))


def _aligned(L: Any, desc: Any, avail: Any, used: Any) -> Any:
    return L.And(L.mod(desc, 16) == 0, L.mod(avail, 2) == 0, L.mod(used, 4) == 0)


def check_layout(L: Any, size: Any, desc: Any, avail: Any, used: Any) -> Step:
    """A ring needs a power-of-two size up to 32768 and parts aligned to 16, 2 and 4 (§2.7, §2.7.1)."""
    return step([(L.And(_pow2(L, size), _aligned(L, desc, avail, used)), LAYOUT)], None)


def queue_ready(L: Any, size: Any, max_size: Any, desc: Any, avail: Any, used: Any, desc_in: Any, avail_in: Any,
                used_in: Any) -> Step:
    """The device's checks when the driver makes a queue ready (MMIO QueueReady = 1, PCI queue_enable = 1).

    ``size`` and the part addresses are what the driver wrote (QueueNum, QueueDesc/Driver/Device, in the
    driver's addresses); ``max_size`` is the device's QueueNumMax; ``desc_in``, ``avail_in``, ``used_in`` say
    whether each whole part (``part_sizes``) lies in the shared region (the device context's ``in_region``).
    Refused, each a peer violation: a size above the device's maximum (4.2.2.2), not a power of two from 1 to
    32768 (2.7), a misaligned part (2.7.1), a part outside the shared region (so a misplaced ring is refused
    here, never met later as a memory fault).
    """
    return step([(L.ULE(size, max_size), QUEUE_NUM_MAX),
                 (_pow2(L, size), QUEUE_POW2),
                 (_aligned(L, desc, avail, used), ALIGN),
                 (L.And(desc_in, avail_in, used_in), RING_IN_REGION)], None)


# ---------------------------------------------------------------- symbolic core

@dataclass(frozen=True, slots=True)
class DriverRing:
    """What the driver knows. Indices are free-running u16 counters kept in ``[0, 2^16)``; tables have
    one entry per descriptor, so their length is the queue size (a constant in proofs)."""

    event_idx: bool                 # VIRTIO_F_EVENT_IDX negotiated
    indirect: bool                  # VIRTIO_F_INDIRECT_DESC negotiated
    in_use: tuple[bool, ...]        # per descriptor: not on the free list (made available)
    chain_of: tuple[int, ...]       # per descriptor in use: the head of its chain
    chain_sel: tuple = bits(SEL_BITS)  # per head in flight: the selection of its chain's descriptors
    wlen: tuple[int, ...]           # per head in flight: device-writable bytes offered
    num_free: int
    avail_idx: int                  # available idx (written to the ring after each add)
    num_added: int                  # added since the last kick_prepare
    last_used: int                  # next used entry to read
    avail_ring: tuple[int, ...]     # heads written into the available ring
    avail_flags: int = bits(16)     # flags as written in the available ring
    cb_disabled: bool               # VRING_AVAIL_F_NO_INTERRUPT in the driver's shadow
    used_event: int                 # used_event as written

    @property
    def size(self) -> int:
        return len(self.in_use)


@dataclass(frozen=True, slots=True)
class DeviceRing:
    """What the device knows (tables of queue-size entries, as for the driver)."""

    event_idx: bool
    last_avail: int                 # next available entry to read
    avail_seen: int                 # the available idx last accepted
    used_idx: int                   # used idx (written to the ring after each add_used)
    signalled: int                  # used idx at the last need_notify
    held: tuple[bool, ...]          # per head: popped and not yet returned
    wlen: tuple[int, ...]           # per held head: device-writable bytes of its chain
    used_id: tuple[int, ...]        # used ring entries written
    used_len: tuple[int, ...]
    used_flags: int = bits(16)      # flags as written in the used ring
    avail_event: int = 0            # avail_event as written

    @property
    def size(self) -> int:
        return len(self.held)


def driver_init(size: int, event_idx: Any, indirect: Any, callback: bool = True, start: int = 0,
                L: Any = CONCRETE) -> DriverRing:
    """A fresh ring (``vring_new_virtqueue``): all descriptors free, indices at ``start`` (0 on a real device).

    Tables are ``L.tabulate``d: concretely each is its own ``Table``, written in place by the steps.
    """
    no_irq = not callback
    return DriverRing(event_idx=event_idx, indirect=indirect, in_use=L.tabulate(size, lambda k: False),
                      chain_of=L.tabulate(size, lambda k: 0), chain_sel=L.tabulate(size, lambda k: 0),
                      wlen=L.tabulate(size, lambda k: 0), num_free=size, avail_idx=start, num_added=0,
                      last_used=start, avail_ring=L.tabulate(size, lambda k: 0),
                      avail_flags=CONCRETE.If(no_irq and not event_idx, VRING_AVAIL_F_NO_INTERRUPT, 0),
                      cb_disabled=no_irq, used_event=0)


def device_init(size: int, event_idx: Any, start: int = 0, L: Any = CONCRETE) -> DeviceRing:
    """A device ring after reset: nothing held, indices at ``start`` (tables ``L.tabulate``d, as for the driver)."""
    return DeviceRing(event_idx=event_idx, last_avail=start, avail_seen=start, used_idx=start,
                      signalled=start, held=L.tabulate(size, lambda k: False), wlen=L.tabulate(size, lambda k: 0),
                      used_id=L.tabulate(size, lambda k: 0), used_len=L.tabulate(size, lambda k: 0), used_flags=0,
                      avail_event=0)


def u16(L: Any, x: Any) -> Any:
    """Return ``x mod 2^16``: ring indices are free-running u16 counters (§2.7.6, §2.7.8)."""
    return L.wrap(x, U16)


def sel_has_at(L: Any, sel: Any, i: Any, n: int) -> Any:
    """Return whether the selection ``sel`` holds ``i``, for an index ``0 <= i < n`` that may be symbolic.

    (``L.sel_has`` wants a table index; over z3 this is the case split on ``i``, concretely one lookup.)
    """
    return L.cases(n, i, lambda c: L.sel_has(sel, c))


def is_head_in_flight(L: Any, d: DriverRing, h: Any) -> Any:
    """Return whether ``h`` is the head of a chain the driver made available and has not taken back.

    Two reads (range-checked), not a scan: the whole-table form ``any_idx`` is what the proofs relate it to.
    """
    return L.And(L.ULE(0, h), L.ULT(h, d.size), L.at(d.in_use, h), L.at(d.chain_of, h) == h)


def count_in_flight(L: Any, d: DriverRing) -> Any:
    """Return the number of heads in flight."""
    return L.count(d.size, lambda i: L.And(d.in_use[i], d.chain_of[i] == i))


def free_chain(L: Any, d: DriverRing, head: Any, **changes: Any) -> DriverRing:
    """Return ``d`` with every descriptor of ``head``'s chain back on the free list (and ``changes`` made).

    The chain is read from ``head``'s record (``chain_sel``), so concretely only its descriptors are
    touched; ``inv_driver_chain_record`` says the record holds exactly the descriptors in use whose
    ``chain_of`` is ``head`` (the whole-table form).
    """
    mine = L.at(d.chain_sel, head)
    return replace(d, in_use=L.sel_map(d.in_use, mine, lambda k, u: False),
                   num_free=d.num_free + L.sel_count(mine, d.size), **changes)


def add_buf(L: Any, d: DriverRing, head: Any, sel: Any, n_out: Any, n_in: Any, total: Any, wlen: Any,
            indirect_used: Any) -> Step:
    """Expose a buffer of ``n_out`` readable and ``n_in`` writable elements (§2.7.13 steps 1-5).

    ``sel`` is the selection of descriptors the allocator chose (the head alone for an indirect
    table): concretely a set of indices (or an int bitmask), in proofs a bitmask; an index outside the
    table is refused. The buffer has ``total`` bytes of which ``wlen`` are device-writable. The head
    goes into the next available slot and ``idx`` advances (Linux publishes ``idx`` on every add).
    Concretely the step touches the selected descriptors only, and a refused step nothing.
    """
    n = n_out + n_in
    used = L.If(indirect_used, 1, n)
    size = d.size
    guards = [(L.And(L.ULE(1, n), L.ULE(n, size), L.ULE(0, n_out), L.ULE(0, n_in),
                     L.ULE(0, wlen), L.ULE(wlen, total), L.ULE(total, chain.MAX_CHAIN_BYTES)), SG_COUNT),
              (L.ULE(used, d.num_free), NO_SPACE),
              (L.And(L.ULE(0, head), L.ULT(head, size), sel_has_at(L, sel, head, size), L.sel_only_below(sel, size),
                     L.sel_all(sel, size, lambda i: L.Not(L.at(d.in_use, i))),
                     L.sel_count(sel, size) == used,
                     L.Implies(indirect_used, L.And(d.indirect, L.ULT(1, n)))), ALLOC)]

    def made() -> DriverRing:
        return replace(d, in_use=L.sel_map(d.in_use, sel, lambda k, u: True),
                       chain_of=L.sel_map(d.chain_of, sel, lambda k, c: head),
                       chain_sel=L.update(d.chain_sel, head, sel),
                       wlen=L.update(d.wlen, head, wlen), num_free=d.num_free - used,
                       avail_ring=L.update(d.avail_ring, L.mod(d.avail_idx, size), head),
                       avail_idx=u16(L, d.avail_idx + 1), num_added=u16(L, d.num_added + 1))
    return step(guards, L.effect(guards, made, d), out=head)


def kick_prepare(L: Any, d: DriverRing, avail_event: Any, used_flags: Any) -> Step:
    """Decide whether to notify the device after publishing (§2.7.10.1; ``virtqueue_kick_prepare``).

    Reads ``avail_event`` (EVENT_IDX) or the used ring's ``flags`` from device-written memory.
    """
    old = u16(L, d.avail_idx - d.num_added)
    kick = L.If(d.event_idx, vnotify.vring_need_event(L, avail_event, d.avail_idx, old),
                (used_flags & VRING_USED_F_NO_NOTIFY) == 0)
    return step([], replace(d, num_added=0), out=kick)


def get_used(L: Any, d: DriverRing, used_idx: Any, id: Any, length: Any) -> Step:
    """Take back the next used buffer (§2.7.14; ``virtqueue_get_buf``), validating what the device wrote.

    ``used_idx``, ``id`` and ``length`` are read from the used ring. Refused: an empty ring, an index
    that runs past the buffers in flight, an id that is no head in flight (Linux BAD_RING), a
    length larger than the buffer's writable bytes (Linux used-length hardening).
    """
    pending = u16(L, used_idx - d.last_used)
    guards = [(L.Not(pending == 0), USED_EMPTY),
              (L.ULE(pending, u16(L, d.avail_idx - d.last_used)), USED_IDX),
              (L.And(L.ULE(0, id), L.ULT(id, d.size), is_head_in_flight(L, d, id)), USED_ID),
              (L.And(L.ULE(0, length), L.ULE(length, L.at(d.wlen, id))), USED_LEN)]
    last_used = u16(L, d.last_used + 1)
    new = L.effect(guards, lambda: free_chain(L, d, id, last_used=last_used,
                                              used_event=L.If(d.cb_disabled, d.used_event, last_used)), d)
    return step(guards, new, out=(id, length))


def disable_cb(L: Any, d: DriverRing) -> Step:
    """Ask for no used-buffer notifications (``virtqueue_disable_cb``): flags 1, or ``used_event`` 0 with EVENT_IDX."""
    first = L.Not(d.cb_disabled)
    return step([], replace(d, cb_disabled=True,
                            avail_flags=L.If(L.And(first, L.Not(d.event_idx)), VRING_AVAIL_F_NO_INTERRUPT, d.avail_flags),
                            used_event=L.If(L.And(first, d.event_idx), 0, d.used_event)))


def enable_cb(L: Any, d: DriverRing, used_idx: Any) -> Step:
    """Re-enable used-buffer notifications and re-check (``virtqueue_enable_cb``); out: nothing pending."""
    return step([], replace(d, cb_disabled=False, used_event=d.last_used,
                            avail_flags=L.If(d.event_idx, d.avail_flags, 0)),
                out=u16(L, used_idx) == d.last_used)


def detach_unused(L: Any, d: DriverRing, head: Any) -> Step:
    """Take back a buffer the (reset) device never used (``virtqueue_detach_unused_buf``: idx goes back one)."""
    guards = [(L.And(L.ULE(0, head), L.ULT(head, d.size), is_head_in_flight(L, d, head)), DETACH)]
    new = L.effect(guards, lambda: free_chain(L, d, head, avail_idx=u16(L, d.avail_idx - 1)), d)
    return step(guards, new, out=head)


def driver_reinit(L: Any, d: DriverRing) -> Step:
    """Restart an idle ring from index 0 (``virtqueue_reinit_split``); every buffer must be back."""
    guards = [(d.num_free == d.size, DETACH)]
    return step(guards, L.effect(guards, lambda: replace(d, avail_idx=0, num_added=0, last_used=0, avail_flags=0,
                                                         cb_disabled=False, used_event=0), d))


def pop_avail(L: Any, v: DeviceRing, avail_idx: Any, head: Any, wlen: Any) -> Step:
    """Take the next available head (§2.7.13; vringh ``__vringh_get_head``), validating what the driver wrote.

    ``avail_idx`` and ``head`` are read from the available ring; ``wlen`` is the writable length
    of the chain the walk accepted. Refused: an index more than the queue size ahead
    (CVE-2016-5403), an empty ring, a head outside the table, a head the device already holds
    (``HELD_HEAD_POLICY``: no normative sentence covers it, the model refuses it as a policy).
    """
    window = u16(L, avail_idx - v.last_avail)
    guards = [(L.ULE(window, v.size), AVAIL_IDX),
              (L.Not(window == 0), AVAIL_EMPTY),
              (L.And(L.ULE(0, head), L.ULT(head, v.size)), HEAD_RANGE),
              (L.Not(L.at(v.held, head)), INUSE)]
    new = L.effect(guards, lambda: replace(v, avail_seen=avail_idx, last_avail=u16(L, v.last_avail + 1),
                                           held=L.update(v.held, head, True), wlen=L.update(v.wlen, head, wlen)), v)
    return step(guards, new, out=head)


def add_used(L: Any, v: DeviceRing, id: Any, length: Any) -> Step:
    """Return a held buffer with ``length`` bytes written (§2.7.8; ``vringh_complete``).

    The used ring's ``len`` is le32: a device that wrote all of a 2^32-byte writable part (a chain of
    exactly 2^32 bytes, legal by §2.7.5.2#1) reports ``2^32 - 1``; §2.7.8.2 lets ``len`` under-estimate
    what was written ("MAY write more than len bytes"), never over-estimate it.
    """
    guards = [(L.And(L.ULE(0, id), L.ULT(id, v.size), L.at(v.held, id)), HELD),
              (L.And(L.ULE(0, length), L.ULE(length, L.at(v.wlen, id))), DEV_LEN)]
    slot = L.mod(v.used_idx, v.size)
    new = L.effect(guards, lambda: replace(v, used_id=L.update(v.used_id, slot, id),
                                           used_len=L.update(v.used_len, slot, used_len_field(L, length)),
                                           used_idx=u16(L, v.used_idx + 1), held=L.update(v.held, id, False)), v)
    return step(guards, new)


def used_len_field(L: Any, length: Any) -> Any:
    """Return the le32 ``len`` a used entry carries for ``length`` bytes written: ``min(length, 2^32 - 1)``."""
    return L.If(L.ULE(length, chain.U32_MAX), length, chain.U32_MAX)


def need_notify(L: Any, v: DeviceRing, used_event: Any, avail_flags: Any) -> Step:
    """Decide whether to notify the driver of used buffers (§2.7.7.2; ``vringh_need_notify``)."""
    notify = L.If(v.event_idx, vnotify.vring_need_event(L, used_event, v.used_idx, v.signalled),
                  (avail_flags & VRING_AVAIL_F_NO_INTERRUPT) == 0)
    return step([], replace(v, signalled=v.used_idx), out=notify)


def enable_notify(L: Any, v: DeviceRing, avail_idx: Any) -> Step:
    """Ask for available-buffer notifications again (``vringh_notify_enable``); out: nothing new arrived."""
    return step([], replace(v, used_flags=L.If(v.event_idx, v.used_flags, 0),
                            avail_event=L.If(v.event_idx, v.last_avail, v.avail_event)),
                out=u16(L, avail_idx) == v.last_avail)


def disable_notify(L: Any, v: DeviceRing) -> Step:
    """Ask for no available-buffer notifications (``vringh_notify_disable``: flags 1 without EVENT_IDX)."""
    return step([], replace(v, used_flags=L.If(v.event_idx, v.used_flags, VRING_USED_F_NO_NOTIFY)))


def _u16ok(L: Any, *xs: Any) -> Any:
    return L.And(*[L.And(L.ULE(0, x), L.ULT(x, 1 << U16)) for x in xs])


def driver_state_check(L: Any, d: DriverRing, in_flight: Any) -> Step:
    """The guards a driver state built mid-stream (``SplitDriver.from_state``) must pass, each citing the invariant
    it would break: u16 indices, ``avail_idx - last_used`` = the ``in_flight`` buffers (at most the queue size), and
    avail flags 0 or 1, 0 with EVENT_IDX. (Descriptor ownership holds by construction: the buffers are added.)"""
    return step([(_u16ok(L, d.avail_idx, d.num_added, d.last_used, d.used_event), INV_U16),
                 (L.And(u16(L, d.avail_idx - d.last_used) == in_flight, L.ULE(in_flight, d.size)), INV_IN_FLIGHT),
                 (L.If(d.event_idx, d.avail_flags == 0, L.Or(d.avail_flags == 0, d.avail_flags == 1)),
                  INV_AVAIL_FLAGS)], None)


def device_state_check(L: Any, v: DeviceRing, n_held: Any) -> Step:
    """The guards a device state built mid-stream (``SplitDevice.from_state``) must pass, each citing the invariant
    it would break: u16 indices (le32 used lens, writable lengths up to 2^32), an accepted avail idx at most the queue
    size ahead, ``last_avail - used_idx`` = the ``n_held`` heads held, used flags 0 or 1 and 0 with EVENT_IDX."""
    return step([(L.And(_u16ok(L, v.last_avail, v.avail_seen, v.used_idx, v.signalled, v.avail_event),
                        L.all_idx(v.size, lambda k: L.And(
                            L.ULE(0, v.used_id[k]), L.ULT(v.used_id[k], v.size), L.ULE(0, v.used_len[k]),
                            L.ULE(v.used_len[k], chain.U32_MAX), L.ULE(0, v.wlen[k]),
                            L.ULE(v.wlen[k], chain.MAX_CHAIN_BYTES)))), INV_U16),
                 (L.ULE(u16(L, v.avail_seen - v.last_avail), v.size), INV_AVAIL_WINDOW),
                 (u16(L, v.last_avail - v.used_idx) == n_held, INV_DEVICE_HELD),
                 (L.If(v.event_idx, v.used_flags == 0, L.Or(v.used_flags == 0, v.used_flags == 1)), INV_USED_FLAGS)],
                None)


def device_reset(L: Any, v: DeviceRing) -> Step:
    """Forget every buffer (device reset, §2.4): nothing held, indices at 0 (a reset path: ``O(size)``)."""
    return step([], device_init(v.size, v.event_idx, L=L))


# ---------------------------------------------------------------- concrete sides

class _Side:
    """Shared plumbing: a core state, the last step's args and out (for rule checks), a broken mark."""

    state: Any
    broken: str | None = None

    def _guard(self, sp: Step, args: dict, detail: str | Callable[[], str] = "") -> None:
        """Raise the first failed guard's error (a peer violation also marks the ring broken)."""
        self.last_args.clear()
        self.last_args.update(args)
        self.last_out = sp.out
        if self.broken:
            raise errors.fail(self.broken, "the ring was marked broken earlier")
        clause = first_failed(sp)
        if clause is not None:
            self._refuse(errors.fail(clause, detail() if callable(detail) else detail))

    def _refuse(self, e: errors.ModelError) -> None:
        if isinstance(e, errors.PeerViolation):
            self.broken = e.clause
        raise e

    def _run(self, sp: Step, args: dict, detail: str | Callable[[], str] = "") -> Any:
        self._guard(sp, args, detail)
        self.state = sp.new
        return sp.out


class SplitDriver(_Side):
    """The driver side (in the secondary): Linux 6.1 ``virtio_ring.c`` policy over a ``MemoryView``.

    ``indirect_arena=(addr, max_entries)`` holds indirect tables: the table of head ``h`` is at
    ``addr + h * max_entries * 16``; a buffer of more elements goes direct (a failed kmalloc).
    """

    def __init__(self, mem: MemoryView, layout: SplitLayout, *, event_idx: bool = False, indirect: bool = False,
                 notify: Callable[[], None] = lambda: None, indirect_arena: tuple[int, int] | None = None,
                 callback: bool = True, start: int = 0):
        apply(check_layout(CONCRETE, layout.size, layout.desc, layout.avail, layout.used), f"{layout}")
        self.mem, self.layout, self.notify = mem, layout, notify
        self.arena = indirect_arena if indirect else None
        n = layout.size
        self.state = driver_init(n, event_idx, indirect, callback, start)
        self.next_link = [i + 1 if i + 1 < n else 0 for i in range(n)]   # Linux desc_extra[i].next
        self.free_head = 0
        self.tokens: dict[int, Any] = {}            # head -> token (desc_state[head].data)
        self.chains: dict[int, tuple[int, ...]] = {}  # head -> descriptors of its chain, in order
        self.last_out: Any = None
        self.last_args: dict = {}
        self.broken = None
        mem.write(layout.desc, bytes(DESC_SIZE * n))
        mem.write(layout.avail, bytes(6 + 2 * n))
        mem.write(layout.used, bytes(6 + USED_ELEM_SIZE * n))     # §2.7.10.1#1: used flags start at 0
        write_le(mem, layout.avail, 2, self.state.avail_flags)
        write_le(mem, layout.avail + 2, 2, start)
        write_le(mem, layout.used + 2, 2, start)

    @classmethod
    def from_state(cls, mem: MemoryView, layout: SplitLayout, *, avail_idx: int, buffers: Any = (),
                   last_used: int | None = None, num_added: int = 0, cb_disabled: bool = False,
                   used_event: int | None = None, avail_flags: int | None = None, **kw: Any) -> "SplitDriver":
        """A driver mid-stream: ``buffers`` in flight (made available, not yet taken back), in the order they were
        made available, each ``(out, inn, token)`` or ``(out, inn, token, descs)`` with the descriptors it occupies
        (head first; one for an indirect table). They fill the available slots just before ``avail_idx``, so
        ``last_used`` is ``avail_idx - len(buffers)`` (mod 2^16; given, it must be). ``num_added`` counts buffers
        added since the last kick; ``cb_disabled`` is Linux's NO_INTERRUPT shadow; ``used_event`` (default: 0 if
        callbacks are off, else ``last_used``) and ``avail_flags`` (default: 1 iff callbacks are off without
        EVENT_IDX) are what the driver wrote. Other keywords are the constructor's.

        Writes what the driver owns: the zeroed ring (as the constructor), each buffer's descriptors and indirect
        table exactly as ``add_buf`` writes them, the available ring, flags and ``used_event``. Build the driver
        before a device on the same bytes (the device then writes its used ring). The free list holds the other
        descriptors in Linux's order after the adds (ascending when ``descs`` are given). An illegal state raises
        the invariant's clause (``InvariantViolation``): indices not u16, a ``last_used`` that does not count the
        buffers, more buffers or descriptors than the queue has, a descriptor in two buffers, flags 1 with EVENT_IDX.
        """
        buffers = list(buffers)
        n, size = len(buffers), layout.size
        start = (avail_idx - n) & 0xFFFF
        if last_used is None:
            last_used = start
        if used_event is None:
            used_event = 0 if cb_disabled else last_used
        ev = bool(kw.get("event_idx", False))
        if avail_flags is None:
            avail_flags = VRING_AVAIL_F_NO_INTERRUPT if cb_disabled and not ev else 0
        probe = replace(driver_init(1, ev, False), avail_idx=avail_idx, num_added=num_added, last_used=last_used,
                        used_event=used_event, avail_flags=avail_flags)
        probe = replace(probe, in_use=(False,) * size)     # size only: the check reads no table
        apply(driver_state_check(CONCRETE, probe, n),
              f"avail idx {avail_idx}, last used {last_used}, {n} buffers, num_added {num_added}, "
              f"used_event {used_event}, avail flags {avail_flags}")
        kw.pop("start", None)
        drv = cls(mem, layout, start=start, **kw)
        notify, drv.notify = drv.notify, lambda: None
        explicit = False
        for b in buffers:
            out, inn, token = b[0], b[1], b[2]
            descs = tuple(b[3]) if len(b) > 3 and b[3] is not None else None
            if descs is not None:
                explicit = True
                need = 1 if drv._use_indirect(len(out) + len(inn)) else len(out) + len(inn)
                s = drv.state
                if (len(descs) != need or len(set(descs)) != need
                        or not all(isinstance(i, int) and 0 <= i < size and not s.in_use[i] for i in descs)):
                    raise errors.fail(INV_CHAIN, f"buffer {token!r}: descriptors {descs} (need {need} free, distinct, "
                                                 f"below {size})")
                rest = [i for i in range(size) if not s.in_use[i] and i not in descs]
                drv.free_head = descs[0]
                for a, c in zip(descs, descs[1:]):
                    drv.next_link[a] = c
                drv.next_link[descs[-1]] = rest[0] if rest else 0
            try:
                drv.add_buf(out, inn, token)
            except errors.Exhausted:
                raise errors.fail(INV_FREE, f"buffer {token!r}: more descriptors than the queue's {size}") from None
        if explicit:
            free = [i for i in range(size) if not drv.state.in_use[i]]
            for a, c in zip(free, free[1:]):
                drv.next_link[a] = c
            drv.free_head = free[0] if free else 0
        drv.notify = notify
        drv.state = replace(drv.state, num_added=num_added, cb_disabled=cb_disabled, avail_flags=avail_flags,
                            used_event=used_event)
        write_le(mem, layout.avail, 2, avail_flags)
        write_le(mem, layout.used_event(), 2, used_event)
        return drv

    def _use_indirect(self, total: int) -> bool:
        s = self.state
        return bool(self.arena and s.indirect and total > 1 and s.num_free and total <= self.arena[1])

    def add_buf(self, out: list[tuple[int, int]], inn: list[tuple[int, int]], token: Any) -> int:
        """Expose a buffer (``virtqueue_add_sgs``); return its head. ``Exhausted`` when descriptors run out."""
        s, lay = self.state, self.layout
        segs = [(a, n, 0) for a, n in out] + [(a, n, VIRTQ_DESC_F_WRITE) for a, n in inn]
        indirect = self._use_indirect(len(segs))
        used = 1 if indirect else len(segs)
        picks, i = [], self.free_head
        for _ in range(min(used, s.num_free, s.size)):
            picks.append(i)
            i = self.next_link[i]
        args = dict(head=self.free_head, sel=frozenset(picks), n_out=len(out), n_in=len(inn),
                    total=sum(n for _, n, _ in segs), wlen=sum(n for _, n in inn), indirect_used=indirect)
        sp = add_buf(CONCRETE, s, **args)
        if first_failed(sp) == NO_SPACE and out:
            self.notify()                       # Linux forces a notify when a buffer with out parts does not fit
        head = self._run(sp, args, lambda: f"{len(out)}+{len(inn)} elements, {s.num_free} free")
        if indirect:
            table = self.arena[0] + head * self.arena[1] * DESC_SIZE
            for j, (a, n, w) in enumerate(segs):
                last = j == len(segs) - 1
                self.mem.write(table + DESC_SIZE * j,
                               chain.Desc(a, n, w | (0 if last else VIRTQ_DESC_F_NEXT), j + 1).encode())
            self.mem.write(lay.desc_at(head), chain.Desc(table, len(segs) * DESC_SIZE, VIRTQ_DESC_F_INDIRECT,
                                                         self.next_link[head]).encode())
        else:
            for k, (d, (a, n, w)) in enumerate(zip(picks, segs)):
                last = k == len(segs) - 1
                self.mem.write(lay.desc_at(d), chain.Desc(a, n, w | (0 if last else VIRTQ_DESC_F_NEXT),
                                                          self.next_link[d]).encode())
        self.free_head = i
        self.tokens[head], self.chains[head] = token, tuple(picks)
        s = self.state
        write_le(self.mem, lay.avail_ring_at((s.avail_idx - 1) % s.size), 2, head)
        write_le(self.mem, lay.avail + 2, 2, s.avail_idx)
        if s.num_added == 0xFFFF:               # Linux: kick before num_added can wrap
            self.kick()
        return head

    def kick_prepare(self) -> bool:
        """Return whether the device wants a notification now (``virtqueue_kick_prepare``)."""
        lay = self.layout
        args = dict(avail_event=read_le(self.mem, lay.avail_event(), 2), used_flags=read_le(self.mem, lay.used, 2))
        return self._run(kick_prepare(CONCRETE, self.state, **args), args)

    def kick(self) -> bool:
        """``virtqueue_kick``: notify the device if it asked for it; return whether it was notified."""
        if self.kick_prepare():
            self.notify()
            return True
        return False

    def get_used(self) -> tuple[Any, int]:
        """Take back the next used buffer: ``(token, len)``. ``Exhausted`` when none; ``PeerViolation`` on bad entries."""
        s, lay = self.state, self.layout
        used_idx = read_le(self.mem, lay.used + 2, 2)
        id_, length = struct.unpack("<II", self.mem.read(lay.used_elem_at(s.last_used % s.size), USED_ELEM_SIZE))
        args = dict(used_idx=used_idx, id=id_, length=length)
        self._run(get_used(CONCRETE, s, **args), args, lambda: f"used idx {used_idx}, id {id_}, len {length}")
        token = self._release(id_)
        if not self.state.cb_disabled:
            write_le(self.mem, lay.used_event(), 2, self.state.used_event)
        return token, length

    def _release(self, head: int) -> Any:
        """Put ``head``'s chain back at the front of the free list (``detach_buf_split``); return its token.

        Linux walks the NEXT flags in the shared table here (a device could rewrite them); the
        model walks its private record of the chain instead.
        """
        picks = self.chains.pop(head)
        self.next_link[picks[-1]] = self.free_head
        self.free_head = head
        return self.tokens.pop(head)

    def get_buf(self) -> tuple[Any, int] | None:
        """``virtqueue_get_buf``: ``(token, len)`` or None when no used buffer is pending."""
        try:
            return self.get_used()
        except errors.Exhausted:
            return None

    def disable_cb(self) -> None:
        """``virtqueue_disable_cb``."""
        was = self.state.cb_disabled
        self._run(disable_cb(CONCRETE, self.state), {})
        if not was:
            if self.state.event_idx:
                write_le(self.mem, self.layout.used_event(), 2, self.state.used_event)
            else:
                write_le(self.mem, self.layout.avail, 2, self.state.avail_flags)

    def enable_cb(self) -> bool:
        """``virtqueue_enable_cb``: True if no used buffer is pending (else the caller should poll again).

        Publishes first (``enable_cb_prepare``), then re-reads the used idx (``virtqueue_poll``); the
        new state does not depend on that read.
        """
        s = self.state
        published = enable_cb(CONCRETE, s, s.last_used).new
        if s.cb_disabled and not s.event_idx:
            write_le(self.mem, self.layout.avail, 2, published.avail_flags)
        write_le(self.mem, self.layout.used_event(), 2, published.used_event)
        args = dict(used_idx=read_le(self.mem, self.layout.used + 2, 2))
        return self._run(enable_cb(CONCRETE, s, **args), args)

    def detach_unused(self) -> Any:
        """After a device reset, take back one buffer never used (lowest head first); its token or None.

        Costs the number of buffers in flight (finding the lowest head), a reset path.
        """
        if not self.tokens:
            return None
        h = min(self.tokens)
        args = dict(head=h)
        self._run(detach_unused(CONCRETE, self.state, h), args)
        write_le(self.mem, self.layout.avail + 2, 2, self.state.avail_idx)
        return self._release(h)

    def reinit(self) -> None:
        """Restart the idle ring from index 0 (after every buffer was detached or used)."""
        self._run(driver_reinit(CONCRETE, self.state), {})
        lay = self.layout
        for addr in (lay.avail, lay.avail + 2, lay.used_event(), lay.used, lay.used + 2, lay.avail_event()):
            write_le(self.mem, addr, 2, 0)

    def reset_broken(self) -> None:
        """Forget a broken mark (the transport reset the device and the driver re-probes)."""
        self.broken = None


class SplitDevice(_Side):
    """The device side (in the primary) over its own ``MemoryView`` of the shared bytes.

    ``in_region(addr, len)`` says whether a driver address range lies in the shared region;
    ``to_local(addr)`` turns a driver address into one of this view (two views of the same bytes
    may sit at different addresses). ``layout`` is the ring in this view; ``driver_layout`` is the
    ring as the driver wrote its addresses (QueueDesc/QueueDriver/QueueDevice; default ``layout``,
    for views at the same addresses). ``max_size`` is the device's QueueNumMax.

    Building the device is the driver making the queue ready: ``queue_ready`` checks the size against
    ``max_size``, its power of two, the alignment and that all three parts lie in the shared region,
    and a refusal raises ``PeerViolation`` naming the clause.
    """

    def __init__(self, mem: MemoryView, layout: SplitLayout, *, event_idx: bool = False, indirect: bool = False,
                 notify: Callable[[], None] = lambda: None, in_region: Callable[[int, int], bool],
                 to_local: Callable[[int], int] = lambda a: a, start: int = 0, max_size: int = MAX_QUEUE_SIZE,
                 driver_layout: SplitLayout | None = None):
        ring = layout if driver_layout is None else driver_layout
        n = ring.size
        sizes = part_sizes(n) if 0 < n <= MAX_QUEUE_SIZE else (0, 0, 0)
        parts = [in_region(a, k) for a, k in zip((ring.desc, ring.avail, ring.used), sizes)]
        apply(queue_ready(CONCRETE, n, max_size, ring.desc, ring.avail, ring.used, *parts),
              f"size {n} (device maximum {max_size}), desc {ring.desc:#x}, avail {ring.avail:#x}, used {ring.used:#x}")
        self.max_size = max_size
        self.mem, self.layout, self.notify = mem, layout, notify
        self.indirect, self.in_region, self.to_local = indirect, in_region, to_local
        self.state = device_init(layout.size, event_idx, start)
        self.chains: dict[int, chain.Chain] = {}
        self.last_out: Any = None
        self.last_args: dict = {}
        self.broken = None

    @classmethod
    def from_state(cls, mem: MemoryView, layout: SplitLayout, *, last_avail: int, used_idx: int,
                   held: Any = None, avail_seen: int | None = None, signalled: int | None = None,
                   used_flags: int = 0, avail_event: int = 0, used: Any = (), **kw: Any) -> "SplitDevice":
        """A device mid-stream: ``last_avail`` (next available entry to read), ``used_idx``, the heads it holds
        (``held``: head -> writable length, or head -> the ``Chain`` it popped), ``avail_seen`` (the avail idx last
        accepted; default ``last_avail``), ``signalled`` (used idx at the last notification decision; default
        ``used_idx``), ``used_flags`` and ``avail_event`` as written, and ``used``: the latest used entries
        ``(id, len)``, oldest first, ending at slot ``used_idx - 1``. Other keywords are the constructor's
        (the queue-ready checks run first).

        Writes what the device owns: used flags, used idx, ``avail_event`` and the ``used`` entries. An illegal
        state raises the invariant's clause (``InvariantViolation``): indices not u16, a held head outside the
        table, ``last_avail - used_idx`` not the number held, ``avail_seen`` more than the queue size ahead, used
        flags not 0/1 or not 0 with EVENT_IDX, more used entries than slots, an id outside the table, a len
        beyond le32.
        """
        kw.pop("start", None)
        dev = cls(mem, layout, **kw)
        n = layout.size
        held = dict(held or {})
        used = list(used)
        bad = [h for h in held if not (isinstance(h, int) and 0 <= h < n)]
        if bad or len(used) > n:
            raise errors.fail(INV_U16, f"held heads {bad} outside the table" if bad else
                              f"{len(used)} used entries for {n} slots")
        wl = {h: (c.wlen if isinstance(c, chain.Chain) else c) for h, c in held.items()}
        ids, lens = [0] * n, [0] * n
        for k, (i, ln) in enumerate(used):
            slot = (used_idx - len(used) + k) % n
            ids[slot], lens[slot] = i, ln
        v = DeviceRing(event_idx=dev.state.event_idx, last_avail=last_avail,
                       avail_seen=last_avail if avail_seen is None else avail_seen, used_idx=used_idx,
                       signalled=used_idx if signalled is None else signalled,
                       held=CONCRETE.tabulate(n, lambda h: h in wl), wlen=CONCRETE.tabulate(n, lambda h: wl.get(h, 0)),
                       used_id=CONCRETE.tabulate(n, lambda k: ids[k]), used_len=CONCRETE.tabulate(n, lambda k: lens[k]),
                       used_flags=used_flags, avail_event=avail_event)
        apply(device_state_check(CONCRETE, v, len(held)),
              f"last avail {last_avail}, used idx {used_idx}, {len(held)} held, avail seen {v.avail_seen}, "
              f"used flags {used_flags}")
        dev.state = v
        dev.chains = {h: c for h, c in held.items() if isinstance(c, chain.Chain)}
        lay = layout
        write_le(mem, lay.used, 2, used_flags)
        write_le(mem, lay.used + 2, 2, used_idx)
        write_le(mem, lay.avail_event(), 2, avail_event)
        for k, (i, ln) in enumerate(used):
            mem.write(lay.used_elem_at((used_idx - len(used) + k) % n), struct.pack("<II", i, ln))
        return dev

    def _read_desc(self, i: int) -> chain.Desc:
        return chain.Desc.decode(self.mem.read(self.layout.desc_at(i), DESC_SIZE))

    def _read_table(self, table: int, j: int) -> chain.Desc:
        return chain.Desc.decode(self.mem.read(self.to_local(table) + DESC_SIZE * j, DESC_SIZE))

    def pop_avail(self) -> chain.Chain:
        """Take and validate the next available chain. ``Exhausted`` when none; ``PeerViolation`` on a bad one."""
        v, lay = self.state, self.layout
        avail_idx = read_le(self.mem, lay.avail + 2, 2)
        head = read_le(self.mem, lay.avail_ring_at(v.last_avail % v.size), 2)
        args = dict(avail_idx=avail_idx, head=head, wlen=0)
        self._guard(pop_avail(CONCRETE, v, **args), args, lambda: f"avail idx {avail_idx}, last {v.last_avail}, head {head}")
        try:                                     # commit only once the chain is valid too
            c = chain.walk_chain(head, v.size, self.indirect, self._read_desc, self._read_table, self.in_region)
        except errors.PeerViolation as e:
            self.last_args["chain_ok"] = False   # for the rule: refused for the chain, not the ring
            self._refuse(e)
        args["wlen"] = c.wlen
        self._run(pop_avail(CONCRETE, v, **args), args)
        self.chains[head] = c
        return c

    def next_chain(self) -> chain.Chain | None:
        """The next available chain, or None when the ring is empty."""
        try:
            return self.pop_avail()
        except errors.Exhausted:
            return None

    def read(self, c: chain.Chain) -> bytes:
        """Return the bytes of ``c``'s device-readable part."""
        return b"".join(self.mem.read(self.to_local(a), n) for a, n in c.readable)

    def write(self, c: chain.Chain, data: bytes) -> int:
        """Write ``data`` into ``c``'s device-writable part from its start (§2.7.8.2); return bytes written."""
        done = 0
        for a, n in c.writable:
            part = data[done:done + n]
            if not part:
                break
            self.mem.write(self.to_local(a), part)
            done += len(part)
        return done

    def add_used(self, head: int, length: int) -> None:
        """Publish ``(head, length)`` in the used ring, then the used idx (§2.7.8.2#1)."""
        v, lay = self.state, self.layout
        args = dict(id=head, length=length)
        self._run(add_used(CONCRETE, v, **args), args, lambda: f"head {head}, len {length}")
        self.mem.write(lay.used_elem_at(v.used_idx % v.size),
                       struct.pack("<II", head, self.state.used_len[v.used_idx % v.size]))
        write_le(self.mem, lay.used + 2, 2, self.state.used_idx)
        self.chains.pop(head, None)

    def need_notify(self) -> bool:
        """Return whether the driver wants a used-buffer notification now."""
        lay = self.layout
        args = dict(used_event=read_le(self.mem, lay.used_event(), 2), avail_flags=read_le(self.mem, lay.avail, 2))
        return self._run(need_notify(CONCRETE, self.state, **args), args)

    def enable_notify(self) -> bool:
        """Ask for kicks again; True if no new buffer arrived meanwhile."""
        v, lay = self.state, self.layout
        published = enable_notify(CONCRETE, v, v.last_avail).new
        if v.event_idx:
            write_le(self.mem, lay.avail_event(), 2, published.avail_event)
        else:
            write_le(self.mem, lay.used, 2, published.used_flags)
        args = dict(avail_idx=read_le(self.mem, lay.avail + 2, 2))
        return self._run(enable_notify(CONCRETE, v, **args), args)

    def disable_notify(self) -> None:
        """Ask for no kicks (flags 1 without EVENT_IDX)."""
        self._run(disable_notify(CONCRETE, self.state), {})
        if not self.state.event_idx:
            write_le(self.mem, self.layout.used, 2, self.state.used_flags)

    def reset(self) -> None:
        """Device reset: forget every buffer and any broken mark."""
        self.broken = None
        self._run(device_reset(CONCRETE, self.state), {})
        self.chains.clear()
