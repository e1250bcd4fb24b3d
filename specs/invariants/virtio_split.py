"""Invariants of the split virtqueue (virtio 1.3 §2.7), per side and for the honest pair.

Components: ``virtio_split.driver`` (a ``DriverRing``: holds whatever the device writes),
``virtio_split.device`` (a ``DeviceRing``: holds whatever the driver writes), ``virtio_split.chain``
(a chain walk) and ``virtio_split`` (a ``SplitPair`` of both sides, honest on both ends): the
pair gets every side invariant plus the ownership partition that only holds when both are honest.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t1virtio.specs.invariants import invariant
from t1virtio.virtio.chain import MAX_CHAIN_BYTES, MAX_TABLE_ENTRIES, U32_MAX
from t1virtio.virtio.split import DeviceRing, DriverRing, count_in_flight, u16

U16_LIMIT = 1 << 16


@dataclass(frozen=True, slots=True)
class SplitPair:
    """Both sides of one ring, as the proofs of the honest pairing see them."""

    drv: DriverRing
    dev: DeviceRing


def _is_u16(L: Any, x: Any) -> Any:
    return L.And(L.ULE(0, x), L.ULT(x, U16_LIMIT))


def _both(clause: str):
    """Register a side invariant for its side and, lifted, for the pair."""
    def deco(fn):
        side = "virtio_split.driver" if fn.__name__.startswith("inv_driver") else "virtio_split.device"
        invariant(side, clause)(fn)
        lifted = (lambda L, p: fn(L, p.drv)) if side.endswith("driver") else (lambda L, p: fn(L, p.dev))
        lifted.__name__ = fn.__name__
        invariant("virtio_split", clause)(lifted)
        return fn
    return deco


# ---------------------------------------------------------------- driver side

@_both("VIRTIO/model/index#u16")
def inv_driver_indices_u16(L, d):
    """Driver counters and written event index are u16; ring entries index the table."""
    return L.And(_is_u16(L, d.avail_idx), _is_u16(L, d.num_added), _is_u16(L, d.last_used), _is_u16(L, d.used_event),
                 L.all_idx(d.size, lambda k: L.And(L.ULE(0, d.avail_ring[k]), L.ULT(d.avail_ring[k], d.size))))


@_both("VIRTIO/model/ownership#free")
def inv_driver_free_count(L, d):
    """``num_free`` is the number of descriptors not in use."""
    return d.num_free == L.count(d.size, lambda i: L.Not(d.in_use[i]))


@_both("VIRTIO/model/ownership#chain")
def inv_driver_chains(L, d):
    """A descriptor in use belongs to a head in use that heads its own chain; heads offer at most 2^32 writable bytes."""
    return L.all_idx(d.size, lambda i: L.And(
        L.Implies(d.in_use[i], L.And(L.ULE(0, d.chain_of[i]), L.ULT(d.chain_of[i], d.size),
                                     L.at(d.in_use, d.chain_of[i]), L.at(d.chain_of, d.chain_of[i]) == d.chain_of[i])),
        L.ULE(0, d.wlen[i]), L.ULE(d.wlen[i], MAX_CHAIN_BYTES)))


@_both("VIRTIO/model/ownership#chain")
def inv_driver_chain_record(L, d):
    """Each head in flight records its chain (``chain_sel``): exactly the descriptors in use whose ``chain_of`` is it
    (and no index outside the table).

    So freeing a chain from its record (``free_chain``, which touches only the chain concretely) frees what
    the whole-table form ``in_use[i] and chain_of[i] == head`` names.
    """
    return L.all_idx(d.size, lambda h: L.Implies(
        L.And(d.in_use[h], d.chain_of[h] == h),
        L.And(L.sel_only_below(d.chain_sel[h], d.size),
              L.all_idx(d.size, lambda i: L.sel_has(d.chain_sel[h], i) == L.And(d.in_use[i], d.chain_of[i] == h)))))


@_both("VIRTIO/model/ownership#in-flight")
def inv_driver_in_flight(L, d):
    """``avail_idx - last_used`` (mod 2^16) is the number of heads in flight; each holds a descriptor."""
    n = count_in_flight(L, d)
    return L.And(u16(L, d.avail_idx - d.last_used) == n, L.ULE(n, d.size - d.num_free))


@_both("VIRTIO/driver/Virtqueues/Used Buffer Notification Suppression#flags")
def inv_driver_avail_flags(L, d):
    """Avail flags are 0 or 1, and stay 0 with EVENT_IDX (§2.7.7.1)."""
    return L.If(d.event_idx, d.avail_flags == 0, L.Or(d.avail_flags == 0, d.avail_flags == 1))


# ---------------------------------------------------------------- device side

@_both("VIRTIO/model/index#u16")
def inv_device_indices_u16(L, v):
    """Device counters and written event index are u16; used entries name table heads and their lens are le32
    values (a buffer of 2^32 writable bytes is reported as 2^32 - 1); held chains have at most 2^32 writable bytes."""
    return L.And(_is_u16(L, v.last_avail), _is_u16(L, v.avail_seen), _is_u16(L, v.used_idx), _is_u16(L, v.signalled),
                 _is_u16(L, v.avail_event),
                 L.all_idx(v.size, lambda k: L.And(L.ULE(0, v.used_id[k]), L.ULT(v.used_id[k], v.size),
                                                   L.ULE(0, v.used_len[k]), L.ULE(v.used_len[k], U32_MAX),
                                                   L.ULE(0, v.wlen[k]), L.ULE(v.wlen[k], MAX_CHAIN_BYTES))))


@_both("VIRTIO/model/index#avail-window")
def inv_device_avail_window(L, v):
    """The avail idx the device accepted is at most queue size ahead of it (CVE-2016-5403)."""
    return L.ULE(u16(L, v.avail_seen - v.last_avail), v.size)


@_both("VIRTIO/model/ownership#device-held")
def inv_device_held_count(L, v):
    """``last_avail - used_idx`` (mod 2^16) is the number of heads the device holds."""
    return u16(L, v.last_avail - v.used_idx) == L.count(v.size, lambda h: v.held[h])


@_both("VIRTIO/device/Virtqueues/Available Buffer Notification Suppression#flags")
def inv_device_used_flags(L, v):
    """Used flags are 0 or 1, and stay 0 with EVENT_IDX (§2.7.10.2)."""
    return L.If(v.event_idx, v.used_flags == 0, L.Or(v.used_flags == 0, v.used_flags == 1))


# ---------------------------------------------------------------- the honest pair

def _avail_entry(L, p: SplitPair, k: int) -> Any:
    return L.at(p.drv.avail_ring, L.mod(p.dev.last_avail + k, p.drv.size))


def _used_slot(L, p: SplitPair, k: int) -> Any:
    return L.mod(p.drv.last_used + k, p.drv.size)


def _places(L, p: SplitPair, h: int) -> Any:
    """Return how many places hold head ``h``: available-window entries, the device, used-window entries."""
    n = p.drv.size
    w_avail = u16(L, p.drv.avail_idx - p.dev.last_avail)
    w_used = u16(L, p.dev.used_idx - p.drv.last_used)
    in_avail = L.count(n, lambda k: L.And(L.ULT(k, w_avail), _avail_entry(L, p, k) == h))
    in_used = L.count(n, lambda k: L.And(L.ULT(k, w_used), L.at(p.dev.used_id, _used_slot(L, p, k)) == h))
    return in_avail + in_used + L.If(p.dev.held[h], 1, 0)


@invariant("virtio_split", "VIRTIO/model/ownership#exclusive")
def inv_pair_exclusive(L, p):
    """Each head in flight sits in exactly one place; a head not in flight sits nowhere; both windows fit the ring."""
    d, v = p.drv, p.dev
    in_flight = [L.And(d.in_use[h], d.chain_of[h] == h) for h in range(d.size)]
    w_avail, w_used = u16(L, d.avail_idx - v.last_avail), u16(L, v.used_idx - d.last_used)
    held = L.count(d.size, lambda h: v.held[h])
    return L.And(p.drv.event_idx == p.dev.event_idx,
                 w_avail + held + w_used == count_in_flight(L, d),
                 L.ULE(u16(L, v.avail_seen - v.last_avail), u16(L, d.avail_idx - v.last_avail)),
                 L.all_idx(d.size, lambda h: _places(L, p, h) == L.If(in_flight[h], 1, 0)))


@invariant("virtio_split", "VIRTIO/model/ownership#lengths")
def inv_pair_lengths(L, p):
    """Used entries report at most the writable bytes offered; the device's writable lengths are the driver's."""
    d, v = p.drv, p.dev
    w_used = u16(L, v.used_idx - d.last_used)
    return L.And(
        L.all_idx(d.size, lambda k: L.Implies(L.ULT(k, w_used), L.ULE(
            L.at(v.used_len, _used_slot(L, p, k)), L.at(d.wlen, L.at(v.used_id, _used_slot(L, p, k)))))),
        L.all_idx(d.size, lambda h: L.Implies(v.held[h], v.wlen[h] == d.wlen[h])))


# ---------------------------------------------------------------- chain walk

@invariant("virtio_split.chain", "VIRTIO/model/chain#ttl")
def inv_walk_bounded(L, w):
    """0 <= ttl <= min(table_len, size): the walk reads at most the chain's bound, whatever the table's length; the
    main table is the whole ring, an indirect one has at most ``MAX_TABLE_ENTRIES``; at most 2^32 bytes so far."""
    return L.And(L.ULE(0, w.ttl), L.ULE(w.ttl, w.table_len), L.ULE(w.ttl, w.size), L.ULE(w.table_len, MAX_TABLE_ENTRIES),
                 L.Implies(L.Not(w.in_table), w.table_len == w.size), L.ULE(0, w.total),
                 L.ULE(w.total, MAX_CHAIN_BYTES))
