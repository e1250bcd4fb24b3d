"""Proof subjects: the packed virtqueue's driver, device, chain walk, and an honest pair over one ring.

All four use the SMALL table (queue_size = 4 entries): every queue size 1..4 is covered (``num``
is symbolic up to the table length), both feature settings (``event`` symbolic), and every value a
peer can write (flags bits, ids, lengths as unconstrained integers of their field's range).
"""
from __future__ import annotations

from t1virtio import state as st
from t1virtio.logic import CONCRETE
from t1virtio.preset import SMALL
from t1virtio.proofs.engine import Op, Subject
from t1virtio.step import apply
from t1virtio.virtio import packed

M = "t1virtio.virtio.packed"
Q = SMALL.queue_size
U16, U32 = (1 << 16) - 1, packed.U32_MAX
PRESET = f"SMALL (queue_size table {Q}: every queue size 1..{Q}, with and without EVENT_IDX)"


def _same(L, sym, conc):
    a, b = [], []
    st._leaves(sym, None, lambda x, w: a.append(x))
    st._leaves(conc, None, lambda x, w: b.append(x))
    return [x == y for x, y in zip(a, b, strict=True)]


def _created(name):
    """Init predicate: the state is what ``packed.<name>(L, num, event)`` creates, for any accepted
    num/event (looked up at use time, so a mutant of the constructor is what gets proved)."""
    def init(L, s):
        num, event = (s.drv.num, s.drv.event) if hasattr(s, "drv") else (s.num, s.event)
        sp = getattr(packed, name)(L, num, event, Q)
        return L.And(*[c for c, _ in sp.guards], *_same(L, s, sp.new))
    return init


def _template(name):
    return lambda: apply(getattr(packed, name)(CONCRETE, Q, True, Q))[0]


def _u32(name):
    return lambda L, s, a: L.And(L.ULE(0, a[name]), L.ULE(a[name], U32))


def _u16_fields(*names):
    return lambda L, s, a: L.And(*[L.And(L.ULE(0, a[x]), L.ULE(a[x], U16)) for x in names])


def _event_args(L, s, a):
    return L.And(L.ULE(0, a["flags"]), L.ULE(a["flags"], U16), L.ULE(0, a["off"]),
                 L.ULE(a["off"], packed.EVENT_OFF_MASK))


def _walk_template():
    return packed.chain_walk(Q, Q)


def _walk_init(L, w):
    return L.And(L.ULE(1, w.num), L.ULE(w.num, packed.MAX_QUEUE_SIZE), L.ULE(1, w.limit),
                 w.ring_descs == 0, w.table_descs == 0, w.total == 0, w.wlen == 0, L.Not(w.writing),
                 L.Not(w.indirect))


SUBJECTS = [
    Subject(component="virtio_packed_driver", template=_template("packed_driver_create"), preset=PRESET,
            init=_created("packed_driver_create"),
            ops=(Op("add", M, "packed_add", {"n": "int", "wlen": "int", "id": "int"}, assume=_u32("wlen")),
                 Op("get_used", M, "packed_get_used", {"avail": "bool", "used": "bool", "id": "int", "length": "int"},
                    assume=lambda L, s, a: L.And(_u16_fields("id")(L, s, a), _u32("length")(L, s, a))),
                 Op("kick_prepare", M, "packed_kick_prepare", {"flags": "int", "off": "int", "ewrap": "bool"},
                    assume=_event_args),
                 Op("enable_cb", M, "packed_enable_cb"),
                 Op("disable_cb", M, "packed_disable_cb"),
                 Op("detach_unused", M, "packed_detach_unused", {"id": "int"}))),
    Subject(component="virtio_packed_device", template=_template("packed_device_create"), preset=PRESET,
            init=_created("packed_device_create"),
            ops=(Op("pop", M, "packed_pop", {"avail": "bool", "used": "bool", "n": "int", "id": "int", "wlen": "int"},
                    assume=lambda L, s, a: L.And(_u16_fields("id")(L, s, a), _u32("wlen")(L, s, a))),
                 Op("push_used", M, "packed_push_used", {"id": "int", "length": "int"}),
                 Op("need_notify", M, "packed_need_notify", {"flags": "int", "off": "int", "ewrap": "bool"},
                    assume=_event_args),
                 Op("set_event", M, "packed_set_event", {"mode": "int"}))),
    Subject(component="virtio_packed_walk", template=_walk_template, preset="symbolic (any queue size and limit)",
            init=_walk_init,
            ops=(Op("ring_desc", M, "packed_walk_ring_desc",
                    {"avail_ok": "bool", "has_next": "bool", "has_write": "bool", "has_indirect": "bool",
                     "length": "int", "in_region": "bool", "indirect_ok": "bool"}, assume=_u32("length")),
                 Op("table_desc", M, "packed_walk_table_desc",
                    {"has_write": "bool", "has_indirect": "bool", "length": "int", "in_region": "bool"},
                    assume=_u32("length")))),
    Subject(component="virtio_packed", template=_template("ring_create"), preset=PRESET,
            init=_created("ring_create"),
            ops=(Op("add", M, "ring_add", {"n": "int", "wlen": "int", "id": "int"}, assume=_u32("wlen")),
                 Op("pop", M, "ring_pop", {"n": "int", "id": "int"}),
                 Op("push_used", M, "ring_push_used", {"id": "int", "length": "int"}),
                 Op("get_used", M, "ring_get_used", {"length": "int"}, assume=_u32("length")))),
]
