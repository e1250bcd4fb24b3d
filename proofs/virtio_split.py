"""Proof subjects: the split virtqueue (virtio 1.3 §2.7), per side against a hostile peer, and the honest pair.

- ``virtio_split.driver``: every driver op with ANY values read from device-written memory
  (used idx, used entries, avail_event, used flags): the driver's invariants hold whatever the
  device writes; the rules say what a conforming driver may do.
- ``virtio_split.device``: every device op with ANY values read from driver-written memory
  (avail idx, ring entries, used_event, avail flags): ``0 <= avail idx - last avail <= size``
  and the held-head count hold whatever the driver writes.
- ``virtio_split``: both sides honest, each reading what the other wrote: every descriptor
  chain is in exactly one place (driver's free list, available window, held by the device, used
  window), used entries name heads made available and not yet used.
- ``virtio_split.chain``: one read of the chain walk, for ANY queue size up to 32768: ``ttl``
  stays in ``[0, table length]`` and every accepted read decreases ``(not in_table, ttl)``, so
  every walk terminates within ``2 * size + 1`` reads.

Ring tables have the SMALL queue size (4 descriptors); ring indices range over all u16 values.
"""
from __future__ import annotations

from t1virtio.errors import ModelBug

from t1virtio.preset import SMALL
from t1virtio.proofs.engine import Op, Subject
from t1virtio.specs.invariants.virtio_split import SplitPair
from t1virtio.step import Step
from t1virtio.virtio import chain, split

M = "t1virtio.virtio.split"
P = "t1virtio.proofs.virtio_split"
N = SMALL.queue_size
U16, U32 = 1 << 16, 1 << 32
PRESET = f"SMALL (queue size {N}; indices: all u16 values)"


def _u16(L, *xs):
    return L.And(*[L.And(L.ULE(0, x), L.ULT(x, U16)) for x in xs])


def _u32(L, *xs):
    return L.And(*[L.And(L.ULE(0, x), L.ULT(x, U32)) for x in xs])


def _bytes(L, *xs):
    """Byte counts of a chain: 0 .. 2^32 (§2.7.5.2#1: exactly 2^32 is legal)."""
    return L.And(*[L.And(L.ULE(0, x), L.ULE(x, U32)) for x in xs])


# ---------------------------------------------------------------- initial states

def _driver_fresh(L, d):
    """Every ring ``driver_init`` can build: nothing in use, indices at one u16 start, callbacks on or off."""
    return L.And(L.all_idx(N, lambda i: L.And(L.Not(d.in_use[i]), d.chain_of[i] == 0, d.chain_sel[i] == 0,
                                              d.wlen[i] == 0, d.avail_ring[i] == 0)),
                 d.num_free == N, _u16(L, d.avail_idx), d.last_used == d.avail_idx, d.num_added == 0,
                 d.used_event == 0,
                 L.If(L.And(d.cb_disabled, L.Not(d.event_idx)), d.avail_flags == split.VRING_AVAIL_F_NO_INTERRUPT,
                      d.avail_flags == 0))


def _device_fresh(L, v):
    """Every device ring after reset: nothing held, indices at one u16 start."""
    return L.And(L.all_idx(N, lambda i: L.And(L.Not(v.held[i]), v.wlen[i] == 0, v.used_id[i] == 0,
                                              v.used_len[i] == 0)),
                 _u16(L, v.last_avail), v.avail_seen == v.last_avail, v.used_idx == v.last_avail,
                 v.signalled == v.last_avail, v.used_flags == 0, v.avail_event == 0)


def _pair_fresh(L, p):
    return L.And(_driver_fresh(L, p.drv), _device_fresh(L, p.dev), p.drv.event_idx == p.dev.event_idx,
                 p.dev.last_avail == p.drv.avail_idx)


def _walk_fresh(L, w):
    """A walk at any head of a table of any size up to 32768."""
    return L.And(L.ULE(1, w.size), L.ULE(w.size, split.MAX_QUEUE_SIZE), w.ttl == w.size, w.table_len == w.size,
                 L.Not(w.in_table), L.ULE(0, w.index), L.ULT(w.index, w.size), w.total == 0,
                 L.Not(w.seen_writable), L.Not(w.done))


# ---------------------------------------------------------------- argument domains (types, not legality)

def _add_args(L, s, a):
    return L.And(_bytes(L, a["total"], a["wlen"]), L.ULE(0, a["head"]), L.ULT(a["head"], U16))


def _kick_args(L, s, a):
    return _u16(L, a["avail_event"])


def _used_args(L, s, a):
    return L.And(_u16(L, a["used_idx"]), _u32(L, a["id"], a["length"]))


def _enable_cb_args(L, s, a):
    return _u16(L, a["used_idx"])


def _pop_args(L, s, a):
    return L.And(_u16(L, a["avail_idx"], a["head"]), _bytes(L, a["wlen"]))


def _add_used_args(L, s, a):
    return L.And(_u32(L, a["id"]), _bytes(L, a["length"]))


def _need_notify_args(L, s, a):
    return _u16(L, a["used_event"])


def _enable_notify_args(L, s, a):
    return _u16(L, a["avail_idx"])


def _walk_args(L, s, a):
    return L.And(_u32(L, a["length"]), _u16(L, a["next"]))


if split.SEL_BITS != N + 1:
    raise ModelBug("a selection bitmask: one bit per descriptor of the proofs' queue, one outside it")
ADD_ARGS = {"head": "int", "sel": split.SEL_BITS, "n_out": "int", "n_in": "int", "total": "int", "wlen": "int",
            "indirect_used": "bool"}

DRIVER_OPS = (
    Op("add_buf", M, "add_buf", ADD_ARGS, _add_args),
    Op("kick_prepare", M, "kick_prepare", {"avail_event": "int", "used_flags": 16}, _kick_args),
    Op("get_used", M, "get_used", {"used_idx": "int", "id": "int", "length": "int"}, _used_args),
    Op("enable_cb", M, "enable_cb", {"used_idx": "int"}, _enable_cb_args),
    Op("disable_cb", M, "disable_cb"),
    Op("detach_unused", M, "detach_unused", {"head": "int"}),
    Op("reinit", M, "driver_reinit"),
)

DEVICE_OPS = (
    Op("pop_avail", M, "pop_avail", {"avail_idx": "int", "head": "int", "wlen": "int"}, _pop_args),
    Op("add_used", M, "add_used", {"id": "int", "length": "int"}, _add_used_args),
    Op("need_notify", M, "need_notify", {"used_event": "int", "avail_flags": 16}, _need_notify_args),
    Op("enable_notify", M, "enable_notify", {"avail_idx": "int"}, _enable_notify_args),
    Op("disable_notify", M, "disable_notify"),
    Op("reset", M, "device_reset"),
)


# ---------------------------------------------------------------- the honest pair: each side reads what the other wrote

def _on_driver(p: SplitPair, sp: Step) -> Step:
    return Step(sp.guards, SplitPair(sp.new, p.dev), sp.out)


def _on_device(p: SplitPair, sp: Step) -> Step:
    return Step(sp.guards, SplitPair(p.drv, sp.new), sp.out)


def pair_add_buf(L, p, **a):
    return _on_driver(p, split.add_buf(L, p.drv, **a))


def pair_kick_prepare(L, p):
    return _on_driver(p, split.kick_prepare(L, p.drv, avail_event=p.dev.avail_event, used_flags=p.dev.used_flags))


def pair_get_used(L, p):
    slot = L.mod(p.drv.last_used, N)
    return _on_driver(p, split.get_used(L, p.drv, used_idx=p.dev.used_idx, id=L.at(p.dev.used_id, slot),
                                          length=L.at(p.dev.used_len, slot)))


def pair_enable_cb(L, p):
    return _on_driver(p, split.enable_cb(L, p.drv, used_idx=p.dev.used_idx))


def pair_disable_cb(L, p):
    return _on_driver(p, split.disable_cb(L, p.drv))


def pair_pop_avail(L, p):
    head = L.at(p.drv.avail_ring, L.mod(p.dev.last_avail, N))
    return _on_device(p, split.pop_avail(L, p.dev, avail_idx=p.drv.avail_idx, head=head, wlen=L.at(p.drv.wlen, head)))


def pair_add_used(L, p, id, length):
    return _on_device(p, split.add_used(L, p.dev, id=id, length=length))


def pair_need_notify(L, p):
    return _on_device(p, split.need_notify(L, p.dev, used_event=p.drv.used_event, avail_flags=p.drv.avail_flags))


def pair_enable_notify(L, p):
    return _on_device(p, split.enable_notify(L, p.dev, avail_idx=p.drv.avail_idx))


def pair_disable_notify(L, p):
    return _on_device(p, split.disable_notify(L, p.dev))


PAIR_OPS = (
    Op("add_buf", P, "pair_add_buf", ADD_ARGS, _add_args),
    Op("kick_prepare", P, "pair_kick_prepare"),
    Op("get_used", P, "pair_get_used"),
    Op("enable_cb", P, "pair_enable_cb"),
    Op("disable_cb", P, "pair_disable_cb"),
    Op("pop_avail", P, "pair_pop_avail"),
    Op("add_used", P, "pair_add_used", {"id": "int", "length": "int"}, _add_used_args),
    Op("need_notify", P, "pair_need_notify"),
    Op("enable_notify", P, "pair_enable_notify"),
    Op("disable_notify", P, "pair_disable_notify"),
)


def _driver_template():
    return split.driver_init(N, False, False)


def _device_template():
    return split.device_init(N, False)


SUBJECTS = [
    Subject(component="virtio_split.chain", template=lambda: chain.walk_start(N, 0, True),
            preset="symbolic (any queue size <= 32768)", init=_walk_fresh,
            assume=lambda L, w: L.And(L.ULE(1, w.size), L.ULE(w.size, split.MAX_QUEUE_SIZE)),
            ops=(Op("walk_step", "t1virtio.virtio.chain", "walk_step",
                    {"length": "int", "flags": 16, "next": "int", "in_region": "bool"}, _walk_args),)),
    Subject(component="virtio_split.driver", template=_driver_template, preset=PRESET, init=_driver_fresh,
            ops=DRIVER_OPS),
    Subject(component="virtio_split.device", template=_device_template, preset=PRESET, init=_device_fresh,
            ops=DEVICE_OPS),
    Subject(component="virtio_split", template=lambda: SplitPair(_driver_template(), _device_template()),
            preset=PRESET, init=_pair_fresh, ops=PAIR_OPS),
]
