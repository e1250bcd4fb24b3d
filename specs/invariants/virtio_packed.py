"""Invariants of the packed virtqueue (virtio 1.3 §2.8.1; facts/formal.md §4.5).

Four components: ``virtio_packed_driver`` and ``virtio_packed_device`` (each side's private state,
which must hold whatever the peer writes), ``virtio_packed_walk`` (the device's chain walk), and
``virtio_packed`` (an honest pair over one ring, with the slots' AVAIL/USED bits as ghost state).
Positions are ``(slot, wrap)`` pairs; ``distance`` counts positions forward in the 2N cycle.
"""
from __future__ import annotations

from t1virtio.virtio.packed import (RING_EVENT_FLAGS_DESC, RING_EVENT_FLAGS_DISABLE, RING_EVENT_FLAGS_ENABLE, U32_MAX,
                                    distance, is_avail, is_used, slot_in, wrap_of)
from t1virtio.specs.invariants import invariant


def _mode_ok(L, flags, event):
    return L.Or(flags == RING_EVENT_FLAGS_ENABLE, flags == RING_EVENT_FLAGS_DISABLE,
                L.And(flags == RING_EVENT_FLAGS_DESC, event))


def _table_ok(L, num, ndesc, wlen):
    """Per-id entries: 0 <= ndesc <= num, wlen >= 0, nothing recorded for ids >= num.

    (The tables are iterated, not indexed: the same conjunction, read in one pass over a ``Table``.)
    """
    return L.And(*[L.And(L.ULE(0, n), L.ULE(n, num), L.ULE(0, w), L.Implies(L.ULE(num, k), n == 0))
                   for k, (n, w) in enumerate(zip(ndesc, wlen, strict=True))])


# ---- driver ------------------------------------------------------------------------------------

@invariant("virtio_packed_driver", "VIRTIO/model/packed/driver#bounds")
def inv_driver_bounds(L, d):
    """Positions in the ring, 0 <= num_free <= num, a valid event mode (DESC only with EVENT_IDX)."""
    return L.And(L.ULE(1, d.num), L.ULE(d.num, len(d.ndesc)),
                 L.ULE(0, d.next_avail), L.ULT(d.next_avail, d.num),
                 L.ULE(0, d.last_used), L.ULT(d.last_used, d.num),
                 L.ULE(0, d.num_free), L.ULE(d.num_free, d.num), L.ULE(0, d.num_added),
                 _mode_ok(L, d.event_flags, d.event))


@invariant("virtio_packed_driver", "VIRTIO/model/packed/driver#accounting")
def inv_driver_accounting(L, d):
    """Descriptors of outstanding buffers + num_free = num; each id holds one entry (at most once)."""
    held = sum(d.ndesc, 0)
    return L.And(_table_ok(L, d.num, d.ndesc, d.wlen), held + d.num_free == d.num)


@invariant("virtio_packed_driver", "VIRTIO/model/packed/driver#wrap-positions")
def inv_driver_wrap_positions(L, d):
    """From (last_used, used wrap) to (next_avail, avail wrap) lie exactly the outstanding descriptors."""
    return L.Implies(L.Not(d.detached),
                     distance(L, d.num, d.last_used, d.used_wrap, d.next_avail, d.avail_wrap) == d.num - d.num_free)


# ---- device ------------------------------------------------------------------------------------

@invariant("virtio_packed_device", "VIRTIO/model/packed/device#bounds")
def inv_device_bounds(L, v):
    """Positions in the ring and a valid published event mode."""
    return L.And(L.ULE(1, v.num), L.ULE(v.num, len(v.ndesc)),
                 L.ULE(0, v.next_avail), L.ULT(v.next_avail, v.num),
                 L.ULE(0, v.next_used), L.ULT(v.next_used, v.num), L.ULE(0, v.num_used),
                 _mode_ok(L, v.event_flags, v.event))


@invariant("virtio_packed_device", "VIRTIO/model/packed/device#in-flight")
def inv_device_in_flight(L, v):
    """Held descriptors = distance from next_used to next_avail <= num; each id held at most once."""
    held = sum(v.ndesc, 0)
    return L.And(_table_ok(L, v.num, v.ndesc, v.wlen), held == v.in_flight, L.ULE(v.in_flight, v.num),
                 distance(L, v.num, v.next_used, v.used_wrap, v.next_avail, v.avail_wrap) == v.in_flight)


# ---- chain walk --------------------------------------------------------------------------------

@invariant("virtio_packed_walk", "VIRTIO/model/packed/walk#bounded")
def inv_walk_bounded(L, w):
    """At most num ring descriptors and limit table entries; writable <= total < 2^32 bytes."""
    return L.And(L.ULE(0, w.ring_descs), L.ULE(w.ring_descs, w.num),
                 L.ULE(0, w.table_descs), L.ULE(w.table_descs, w.limit),
                 L.ULE(0, w.wlen), L.ULE(w.wlen, w.total), L.ULE(w.total, U32_MAX))


# ---- an honest pair over one ring --------------------------------------------------------------

def _points(r):
    d, v = r.drv, r.dev
    return ((d.last_used, d.used_wrap), (v.next_used, v.used_wrap), (v.next_avail, v.avail_wrap),
            (d.next_avail, d.avail_wrap))


@invariant("virtio_packed", "VIRTIO/model/packed/ring#order")
def inv_ring_parts(L, r):
    """Both sides' invariants hold, on one queue size and feature set."""
    d, v = r.drv, r.dev
    return L.And(d.num == v.num, d.event == v.event, L.Not(d.detached),
                 inv_driver_bounds(L, d), inv_driver_accounting(L, d), inv_driver_wrap_positions(L, d),
                 inv_device_bounds(L, v), inv_device_in_flight(L, v))


@invariant("virtio_packed", "VIRTIO/model/packed/ring#order")
def inv_ring_order(L, r):
    """U <= DU <= DA <= A in ring order; [U, DU) holds the used buffers' descriptors, [DA, A) the
    published-not-popped ones (and [DU, DA) the held ones, by the device invariant)."""
    d, v, n = r.drv, r.dev, r.drv.num
    (u, uw), (du, duw), (da, daw), (a, aw) = _points(r)
    ids = range(len(d.ndesc))
    used = sum((L.If(r.done[k], d.ndesc[k], 0) for k in ids), 0)
    published = sum((L.If(L.And(L.ULT(0, d.ndesc[k]), v.ndesc[k] == 0, L.Not(r.done[k])), d.ndesc[k], 0)
                     for k in ids), 0)
    return L.And(distance(L, n, u, uw, du, duw) + distance(L, n, du, duw, da, daw) + distance(L, n, da, daw, a, aw)
                 == distance(L, n, u, uw, a, aw),
                 distance(L, n, u, uw, du, duw) == used, distance(L, n, da, daw, a, aw) == published)


@invariant("virtio_packed", "VIRTIO/model/packed/ring#ids")
def inv_ring_ids(L, r):
    """Held or used ids are outstanding at the driver with the same descriptor count; the used
    descriptors in [U, DU) name used ids, no two the same."""
    d, v, n = r.drv, r.dev, r.drv.num
    (u, uw), (du, duw), _, _ = _points(r)
    span = distance(L, n, u, uw, du, duw)
    table = len(d.ndesc)

    def used_slot(j):
        return L.And(slot_in(L, n, j, u, span),
                     is_used(L, r.avail_bits[j], r.used_bits[j], wrap_of(L, j, u, uw)))
    per_id = L.all_idx(table, lambda k: L.And(
        L.Implies(L.ULT(0, v.ndesc[k]), d.ndesc[k] == v.ndesc[k]),
        L.Implies(r.done[k], L.And(L.ULT(0, d.ndesc[k]), v.ndesc[k] == 0))))
    used = [used_slot(j) for j in range(table)]          # each slot's test built once, used by every pair
    named = L.all_idx(table, lambda j: L.Implies(used[j], L.And(
        L.ULE(0, r.slot_ids[j]), L.ULT(r.slot_ids[j], n), L.at(r.done, r.slot_ids[j]))))
    distinct = L.And(*[L.Implies(L.And(used[i], used[j]), L.Not(r.slot_ids[i] == r.slot_ids[j]))
                       for i in range(table) for j in range(i + 1, table)])
    return L.And(per_id, named, distinct)


@invariant("virtio_packed", "VIRTIO/model/packed/ring#flags")
def inv_ring_flags(L, r):
    """§2.8.1 per slot: live slots [U, A) carry AVAIL = their lap's wrap; unconsumed ones [DU, A)
    USED = its inverse (so they read available); free ones [A, U+N) AVAIL = the inverse of the
    coming lap's wrap (so they read neither available nor used)."""
    d, n = r.drv, r.drv.num
    (u, uw), (du, duw), _, (a, aw) = _points(r)
    live = distance(L, n, u, uw, a, aw)
    return L.all_idx(len(r.avail_bits), lambda j: L.And(
        L.Implies(slot_in(L, n, j, u, live), r.avail_bits[j] == wrap_of(L, j, u, uw)),
        L.Implies(slot_in(L, n, j, du, distance(L, n, du, duw, a, aw)), r.used_bits[j] == L.Not(wrap_of(L, j, du, duw))),
        L.Implies(slot_in(L, n, j, a, n - live), r.avail_bits[j] == L.Not(wrap_of(L, j, a, aw)))))


@invariant("virtio_packed", "VIRTIO/model/packed/ring#flags")
def inv_ring_visibility(L, r):
    """The device reads available at DA exactly when the driver published beyond it; the driver
    reads used at U only when the device has used descriptors there."""
    d, v, n = r.drv, r.dev, r.drv.num
    (u, uw), (du, duw), (da, daw), (a, aw) = _points(r)
    dev_sees = is_avail(L, L.at(r.avail_bits, da), L.at(r.used_bits, da), daw)
    drv_sees = is_used(L, L.at(r.avail_bits, u), L.at(r.used_bits, u), uw)
    return L.And(dev_sees == L.ULT(0, distance(L, n, da, daw, a, aw)),
                 L.Implies(drv_sees, L.ULT(0, distance(L, n, u, uw, du, duw))))
