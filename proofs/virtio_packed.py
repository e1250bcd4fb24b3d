"""Proof subjects: the packed virtqueue's driver, device, chain walk, and an honest pair over one ring.

All four use the SMALL table (queue_size = 4 entries): every queue size 1..4 is covered (``num``
is symbolic up to the table length), both feature settings (``event`` symbolic), and every value a
peer can write (flags bits, ids, lengths as unconstrained integers of their field's range).

Forms (custom obligations, at the SMALL table and at ``FORM_TABLES``): the transitions compute
what touches only an operation's slots (``in_window`` arithmetically, ``lap_reads``/``lap_fill`` over
the two ranges of ``span``); each is proved equal to the whole-table form it replaced (a search
over every slot, ``slot_in``/``wrap_of`` masks over every slot), for every queue size of the table.
"""
from __future__ import annotations

from t1virtio import state as st
from t1virtio.logic import CONCRETE, z3_logic
from t1virtio.preset import SMALL
from t1virtio.proofs.engine import Custom, Op, Subject
from t1virtio.specs import invariants, rules
from t1virtio.step import apply
from t1virtio.virtio import packed

M = "t1virtio.virtio.packed"
Q = SMALL.queue_size
U16, U32 = (1 << 16) - 1, packed.U32_MAX
PRESET = f"SMALL (queue_size table {Q}: every queue size 1..{Q}, with and without EVENT_IDX)"
FORM_TABLES = (Q, 32)


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


# ---- forms: what a transition computes over the slots it touches = the whole-table form -----------

def _form(name: str, clause: str, table: int, variables: dict, holds) -> Custom:
    """``holds(L, table, **vars) -> (pre, lhs, rhs)``: under ``pre``, ``lhs == rhs`` (tuples elementwise).

    ``variables`` maps a name to ``"int"``, ``"bool"`` or ``("bools" | "ints", n)`` (a tuple of n).
    Replay re-evaluates both sides concretely on the decoded values.
    """
    def fresh():
        import z3
        out = {}
        for v, kind in variables.items():
            if kind == "int":
                out[v] = z3.Int(v)
            elif kind == "bool":
                out[v] = z3.Bool(v)
            else:
                mk = z3.Bool if kind[0] == "bools" else z3.Int
                out[v] = tuple(mk(f"{v}[{k}]") for k in range(kind[1]))
        return out

    def same(L, lhs, rhs):
        if isinstance(lhs, tuple):
            return L.And(*[x == y for x, y in zip(lhs, rhs, strict=True)])
        return lhs == rhs

    def negated():
        import z3
        L = z3_logic()
        xs = fresh()
        pre, lhs, rhs = holds(L, table, **xs)

        def value(m, x):
            if isinstance(x, tuple):
                return [value(m, y) for y in x]
            e = m.eval(x, model_completion=True)
            return z3.is_true(e) if z3.is_bool(e) else e.as_long()

        def decode(m):
            return {"table": table, "values": {v: value(m, x) for v, x in xs.items()}}
        return L.And(pre, L.Not(same(L, lhs, rhs))), decode

    def replay(cex: dict) -> str | None:
        vals = {v: tuple(x) if isinstance(x, list) else x for v, x in cex["values"].items()}
        pre, lhs, rhs = holds(CONCRETE, cex["table"], **vals)
        return clause if pre and tuple(lhs if isinstance(lhs, tuple) else [lhs]) != \
            tuple(rhs if isinstance(rhs, tuple) else [rhs]) else None
    return Custom(f"{name}[table {table}]", clause, negated, replay)


def _ring_pos(L, table, num, start):
    return L.And(L.ULE(1, num), L.ULE(num, table), L.ULE(0, start), L.ULT(start, num))


def _window_form(table: int) -> Custom:
    """``in_window`` (arithmetic) = ``window_by_search`` (a search over every slot), for every queue
    size up to the table, every position, count and event offset."""
    def holds(L, t, num, slot, wrap, count, off, ewrap):
        return (L.And(_ring_pos(L, t, num, slot), L.ULE(0, count)),
                packed.in_window(L, num, slot, wrap, count, off, ewrap),
                packed.window_by_search(L, num, slot, wrap, count, off, ewrap, t))
    clause = rules.of("virtio_packed_device", "need_notify")[0].clause
    return _form("need_notify:in_window≡window_by_search", clause, table,
                 {"num": "int", "slot": "int", "wrap": "bool", "count": "int", "off": "int", "ewrap": "bool"}, holds)


def _reads_form(table: int) -> Custom:
    """``lap_reads`` (two ranges from ``span``) = the ``slot_in``/``wrap_of`` check over every slot:
    ring_pop's "every descriptor of the list reads available", for any list length."""
    def holds(L, t, num, start, wrap, n, avail, used):
        whole = L.all_idx(t, lambda k: L.Implies(packed.slot_in(L, num, k, start, n),
                                                  packed.is_avail(L, avail[k], used[k], packed.wrap_of(L, k, start, wrap))))
        return (_ring_pos(L, t, num, start),
                packed.lap_reads(L, packed.SlotBits(avail, used), num, start, wrap, n,
                                 lambda av, us, lw: packed.is_avail(L, av, us, lw)), whole)
    return _form("pop:lap_reads≡slot_in", packed.EXPOSE_FIRST_LAST, table,
                 {"num": "int", "start": "int", "wrap": "bool", "n": "int", "avail": ("bools", table),
                  "used": ("bools", table)}, holds)


def _fill_form(table: int) -> Custom:
    """``lap_fill`` (two range updates from ``span``) = the per-slot ``slot_in``/``wrap_of`` update of
    every slot: ring_add's flag and id writes, for any list length and per-lap values."""
    def holds(L, t, num, start, wrap, n, on, off, old):
        value = lambda lw: L.If(lw, on, off)  # noqa: E731
        whole = tuple(L.If(packed.slot_in(L, num, k, start, n), value(packed.wrap_of(L, k, start, wrap)), old[k])
                      for k in range(t))
        return _ring_pos(L, t, num, start), tuple(packed.lap_fill(L, old, num, start, n, value, wrap)), whole
    clause = [i for i in invariants.of("virtio_packed") if i.name == "inv_ring_flags"][0].clause
    return _form("add:lap_fill≡slot_in", clause, table,
                 {"num": "int", "start": "int", "wrap": "bool", "n": "int", "on": "int", "off": "int",
                  "old": ("ints", table)}, holds)


# ---- states built mid-stream: from_state's check accepts exactly the states the invariants allow ----------

def _checked(name):
    """Init predicate: the state passes ``packed.<name>`` (``from_state``'s guards), for any state of the table
    (looked up at use time, so a mutant of the check is what gets proved). ``init⊢inv`` then says every state
    ``from_state`` accepts satisfies the invariant."""
    def init(L, s):
        return L.And(*[c for c, _ in getattr(packed, name)(L, s).guards])
    return init


def _check_complete(component: str, template, check: str) -> Custom:
    """Every state satisfying all of ``component``'s invariants passes ``packed.<check>``: from_state refuses
    no legal state (with ``init⊢inv``, it accepts exactly the states the invariants allow)."""
    invs = invariants.of(component)

    def negated():
        L = z3_logic()
        s = st.symbolize(template(), "s0")
        sp = getattr(packed, check)(L, s)
        return (L.And(*[i.fn(L, s) for i in invs], L.Not(L.And(*[c for c, _ in sp.guards]))),
                lambda m: {"state": st.to_json(st.decode(m, s))})

    def replay(cex: dict) -> str | None:
        s = st.from_json(template(), cex["state"])
        if not all(i.fn(CONCRETE, s) for i in invs):
            return None
        return next((c for ok, c in getattr(packed, check)(CONCRETE, s).guards if not ok), None)
    clause = invs[0].clause
    return Custom(f"from_state:invariants⇒{check}", clause, negated, replay)


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
                 Op("set_event", M, "packed_set_event", {"mode": "int"})),
            customs=tuple(_window_form(t) for t in FORM_TABLES)),
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
                 Op("get_used", M, "ring_get_used", {"length": "int"}, assume=_u32("length"))),
            customs=tuple(f(t) for t in FORM_TABLES for f in (_reads_form, _fill_form))),
    Subject(component="virtio_packed_driver_from_state", invariant_component="virtio_packed_driver",
            template=_template("packed_driver_create"), preset=PRESET, init=_checked("packed_driver_state_check"),
            ops=(), customs=(_check_complete("virtio_packed_driver", _template("packed_driver_create"),
                                             "packed_driver_state_check"),)),
    Subject(component="virtio_packed_device_from_state", invariant_component="virtio_packed_device",
            template=_template("packed_device_create"), preset=PRESET, init=_checked("packed_device_state_check"),
            ops=(), customs=(_check_complete("virtio_packed_device", _template("packed_device_create"),
                                             "packed_device_state_check"),)),
]
