"""Proof subject: notification suppression races and ``vring_need_event`` (virtio 1.3 §2.7.10, App. A).

Race obligations, one per race of ``races.RACES`` (split and packed, available and used buffers, with
and without event index), unroll ``races.MAX_STEPS`` scheduler steps of the race model, whose every
step calls the real split / packed transition: at each step a symbolic choice says whether the
producer or the consumer moves, and a symbolic batch (1..N) says how many buffers a publish makes
available. The start index (packed: slot and lap), the stale suppression state and the snapshot
are symbolic, so every wrap position is covered. A counterexample decodes to a schedule
(``{"actor", "batch"}`` per step, cut at the first bad step) that ``replay`` runs on the concrete
race model (``races.run_schedule``), which names the root-cause clause.

``vring_need_event`` lemmas hold for all 16-bit values (no bound at all).
"""
from __future__ import annotations

from t1virtio import state as st
from t1virtio.logic import CONCRETE, z3_logic
from t1virtio.proofs.engine import Custom, Subject
from t1virtio.virtio import notify, races

U16_MOD = 1 << races.U16
DECISION_STEPS = 7   # schedules for the exactness proofs: two full producer rounds and one consumer move


def _template(mode: str = races.EVENT_IDX) -> races.RaceState:
    return races.initial(mode)


def _unroll(mode: str, bad_at, steps: int = races.MAX_STEPS):
    """Return (negated obligation, decoder) for "no step of any schedule of ``steps`` steps is bad"."""
    import z3
    L = z3_logic()
    packed = races.RACES[mode].ring == "packed"
    s = races.pin(mode, st.symbolize(_template(mode), f"{mode}.s0"))
    s0 = s
    pre = [races.is_initial(L, mode, s0)]
    actors, batches, bads = [], [], []
    for t in range(steps):
        prod = z3.Bool(f"producer@{t}")
        batch = z3.Int(f"batch@{t}") if packed else z3.BitVec(f"batch@{t}", races.U16)
        pre += [L.ULE(1, batch), L.ULE(batch, races.max_batch())]
        pnew, kick = races.producer_step(L, s, mode, batch)
        cnew = races.consumer_step(L, s, mode)
        nxt = L.If(prod, pnew, cnew)
        bads.append(bad_at(L, s, prod, kick, nxt))
        actors.append(prod)
        batches.append(batch)
        s = nxt

    def decode(m):
        first = next(t for t, b in enumerate(bads) if z3.is_true(m.eval(b, model_completion=True)))
        steps = [{"actor": "producer" if z3.is_true(m.eval(actors[t], model_completion=True)) else "consumer",
                  "batch": m.eval(batches[t], model_completion=True).as_long()} for t in range(first + 1)]
        start = st.decode(m, s0)
        story = races.run_schedule(mode, start, [(x["actor"], x["batch"]) for x in steps]).story
        return {"mode": mode, "initial": st.to_json(start), "steps": steps, "story": story}
    return L.And(*pre, L.Or(*bads)), decode


def _replay_schedule(cex: dict) -> str | None:
    mode = cex["mode"]
    s0 = st.from_json(_template(mode), cex["initial"])
    run = races.run_schedule(mode, s0, [(x["actor"], x["batch"]) for x in cex["steps"]])
    return run.worst()


def _no_lost(mode: str):
    def negated():
        return _unroll(mode, lambda L, s, prod, kick, nxt: races.is_lost_notification(L, nxt, mode))
    return Custom(f"{mode}⊢no-lost-notification", "VIRTIO/model/notify#no-lost-notification",
                  negated, _replay_schedule)


def _exactly_at_event(mode: str):
    """Every notification decision in every schedule of ``DECISION_STEPS`` steps is exactly what the spec
    asks of the snapshot (``races.due``: the named index lies in the window published since the last
    decision); the start index and the stale suppression state are symbolic, so every window is reached."""
    r = races.RACES[mode]

    def bad(L, s, prod, kick, nxt):
        deciding = s.prod_pc == races.producer_program().index(races.DECIDE)
        must, _may = races.due(L, s, mode)
        return L.And(prod, deciding, kick != must)
    return Custom(f"{mode}⊢notify-exactly-at-event", r.spurious or "VIRTIO/model/notify#exactly-once",
                  lambda: _unroll(mode, bad, DECISION_STEPS), _replay_schedule)


# vring_need_event over all u16 values
def _need(L, e, new, old):
    return notify.vring_need_event(L, e, new, old)


def _lemma(name: str, clause: str, variables: tuple[str, ...], holds):
    """A lemma ``holds(L, **vars)`` over 16-bit variables; replay re-evaluates it concretely."""
    def negated():
        import z3
        L = z3_logic()
        xs = {v: z3.BitVec(v, races.U16) for v in variables}
        pre, post = holds(L, **xs)

        def decode(m):
            return {"values": {v: m.eval(x, model_completion=True).as_long() for v, x in xs.items()}}
        return L.And(pre, L.Not(post)), decode

    def replay(cex: dict) -> str | None:
        pre, post = holds(CONCRETE, **cex["values"])
        return clause if pre and not post else None
    return Custom(f"vring_need_event⊢{name}", clause, negated, replay)


def _window(L, e, new, old):
    """Notify iff ``e`` lies in [old, new) modulo 2^16 (App. A's "equivalently"); never for an empty window."""
    return True, (_need(L, e, new, old) == races.is_in_window(L, e, new, old))


def _wrap(L, e, new, old, k):
    """Shifting every index by ``k`` (any wrap position) changes nothing."""
    shift = lambda x: L.wrap(x + k, races.U16)  # noqa: E731
    return True, (_need(L, shift(e), shift(new), shift(old)) == _need(L, e, new, old))


def _split(L, e, old, mid, new):
    """Publishing old..mid then mid..new notifies exactly once iff old..new in one go would (no wrap past 2^16)."""
    a, b = L.wrap(mid - old, races.U16), L.wrap(new - mid, races.U16)
    fits = _fits(L, a, b)
    first, second, whole = _need(L, e, mid, old), _need(L, e, new, mid), _need(L, e, new, old)
    return fits, L.And(L.Not(L.And(first, second)), whole == L.Or(first, second))


def _fits(L, a, b):
    """Return whether two window lengths add up to less than 2^16."""
    if L.symbolic:
        import z3
        return z3.ULT(z3.ZeroExt(1, a) + z3.ZeroExt(1, b), U16_MOD)
    return a + b < U16_MOD


_EVENT_MODES = (races.EVENT_IDX, races.USED_EVENT_IDX, races.PACKED_DESC, races.PACKED_USED_DESC)

SUBJECTS = [
    Subject(component="virtio_races", template=_template, ops=(),
            preset=f"bounded: {races.MAX_STEPS} steps, any start index, N={races.N}",
            customs=tuple(_no_lost(m) for m in races.MODES)),
    Subject(component="virtio_races", template=_template, ops=(),
            preset=f"bounded: {DECISION_STEPS} steps, any start index, N={races.N}",
            customs=tuple(_exactly_at_event(m) for m in _EVENT_MODES)),
    Subject(component="virtio_races", template=_template, ops=(), preset="all u16 values",
            customs=(_lemma("window", "VIRTIO/model/notify#need-event-window", ("e", "new", "old"), _window),
                     _lemma("wrap-invariant", "VIRTIO/model/notify#need-event-window", ("e", "new", "old", "k"), _wrap),
                     _lemma("split-window-once", "VIRTIO/model/notify#exactly-once", ("e", "old", "mid", "new"),
                            _split)))]
