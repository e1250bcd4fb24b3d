"""Rules of the hypervisor message queue: what any conforming queue may do in one step (facts §3.0, §3.1)."""
from __future__ import annotations

from t1virtio.hyp.msgq import DEPTH, HOLDOFF_DEFAULT, KEEP, MSGQ_PUSH, OBJ_ACTIVE, OBJ_DESTROYED, OBJ_INIT, \
    GUNYAH_MAX_DEPTH, compute_slot, is_line_deliverable, line_condition
from t1virtio.specs.rules import rule


def _same_line(L, a, b):
    return L.And(a.bound == b.bound, a.virq == b.virq, a.level == b.level, a.edge == b.edge, a.active == b.active)


def _same_queue(L, old, new):
    """The queue proper (not its lines) is unchanged."""
    return L.And(new.lifecycle == old.lifecycle, new.depth == old.depth, new.max_size == old.max_size, new.count == old.count,
                 new.head == old.head, new.sent == old.sent, new.received == old.received)


def _same_thresholds(L, old, new):
    return L.And(new.notfull_thd == old.notfull_thd, new.notempty_thd == old.notempty_thd)


def _unchanged(L, old, new):
    return L.And(_same_queue(L, old, new), _same_thresholds(L, old, new), _same_line(L, old.tx, new.tx),
                 _same_line(L, old.rx, new.rx))


def _active(L, s):
    return s.lifecycle == OBJ_ACTIVE


@rule("msgq", "configure", "HYP-MSGQ-lifecycle-rule")
def rule_configure_stores(L, old, args, ok, new, out):
    """Accepted iff INIT and 1 <= depth <= 255 (and the table), 1 <= size <= the limit; stores both, stays INIT."""
    d, m = args["depth"], args["max_size"]
    legal = L.And(old.lifecycle == OBJ_INIT, L.ULE(1, d), L.ULE(d, min(GUNYAH_MAX_DEPTH, len(old.sizes))), L.ULE(1, m),
                  L.ULE(m, old.size_limit))
    return L.And(ok == legal, L.Implies(ok, L.And(new.lifecycle == OBJ_INIT, new.depth == d, new.max_size == m,
                                                  new.count == 0)))


@rule("msgq", "activate", "HYP-MSGQ-lifecycle-rule")
def rule_activate_empty(L, old, args, ok, new, out):
    """Accepted iff INIT and configured; then ACTIVE, empty, thresholds depth - 1 and 1, lines as they were."""
    legal = L.And(old.lifecycle == OBJ_INIT, old.depth != 0, old.max_size != 0)
    return L.And(ok == legal, L.Implies(ok, L.And(
        new.lifecycle == OBJ_ACTIVE, new.count == 0, new.head == 0, new.depth == old.depth, new.max_size == old.max_size,
        new.notfull_thd == old.depth - 1, new.notempty_thd == 1, _same_line(L, old.tx, new.tx),
        _same_line(L, old.rx, new.rx))))


@rule("msgq", "destroy", "HYP-MSGQ-lifecycle-rule")
def rule_destroy_releases(L, old, args, ok, new, out):
    """Accepted iff not destroyed already; then destroyed, empty, both lines unbound and quiet."""
    return L.And(ok == (old.lifecycle != OBJ_DESTROYED), L.Implies(ok, L.And(
        new.lifecycle == OBJ_DESTROYED, new.count == 0,
        *[L.And(L.Not(ln.bound), L.Not(ln.level), L.Not(ln.active)) for ln in (new.tx, new.rx)])))


@rule("msgq", "send", "HYP-MSGQ-send-rule")
def rule_send_appends_one(L, old, args, ok, new, out):
    """Accepted: one message of ``size`` at the tail, others untouched, not_full reported; refused when
    inactive, full, mis-sized, with reserved flags, or when the caller's buffer cannot be read."""
    size, flags = args["size"], args["flags"]
    tail = compute_slot(L, old, old.count)
    legal = L.And(_active(L, old), L.ULT(old.count, old.depth), L.ULE(1, size), L.ULE(size, old.max_size),
                  (flags & ~MSGQ_PUSH) == 0, args["readable"])
    kept = L.forall_below(old.sizes, old.depth, lambda k: L.Implies(
        L.Not(tail == k), L.And(L.at(new.sizes, k) == L.at(old.sizes, k), L.at(new.seqs, k) == L.at(old.seqs, k))))
    return L.And(ok == legal, L.Implies(ok, L.And(
        new.count == old.count + 1, new.head == old.head, L.at(new.sizes, tail) == size,
        L.at(new.seqs, tail) == old.sent, kept, out == L.ULT(new.count, new.depth),
        _same_line(L, old.tx, new.tx), _same_thresholds(L, old, new))))


@rule("msgq", "receive", "HYP-MSGQ-receive-rule")
def rule_receive_takes_head(L, old, args, ok, new, out):
    """Accepted: returns the head message (size, number), removes exactly it; refused when inactive, empty,
    the buffer is short, or the caller's buffer cannot be written."""
    head_size = L.at(old.sizes, old.head)
    legal = L.And(_active(L, old), L.ULT(0, old.count), L.ULE(head_size, args["bufsize"]), args["writable"])
    return L.And(ok == legal, L.Implies(ok, L.And(
        out[0] == head_size, out[1] == old.received, new.count == old.count - 1,
        new.head == compute_slot(L, old, 1), out[2] == L.ULT(0, new.count),
        _same_line(L, old.rx, new.rx), _same_thresholds(L, old, new))))


@rule("msgq", "flush", "HYP-MSGQ-flush-rule")
def rule_flush_empties(L, old, args, ok, new, out):
    """Accepted iff active; empties the queue; if it held messages: not-full asserted (bound), not-empty cleared."""
    some = old.count != 0
    return L.And(ok == _active(L, old), L.Implies(ok, L.And(
        new.count == 0,
        L.If(some, L.And(new.tx.level == L.Or(old.tx.level, old.tx.bound), L.Not(new.rx.level)),
             L.And(_same_line(L, old.tx, new.tx), _same_line(L, old.rx, new.rx))))))


def _configure_rule(L, old, args, ok, new, thd_arg, legal_value, target, line):
    thd = args[thd_arg]
    legal = L.And(args["holdoff"] == HOLDOFF_DEFAULT, _active(L, old), L.Or(thd == KEEP, legal_value))
    set_to = L.If(thd == DEPTH, old.depth, thd)
    ln, nl = getattr(old, line), getattr(new, line)
    cond = line_condition(L, new, line)
    return L.And(ok == legal, L.Implies(L.And(ok, L.Not(thd == KEEP)), L.And(
        getattr(new, target) == set_to, nl.level == L.And(ln.bound, cond), nl.bound == ln.bound,
        nl.active == ln.active, _same_queue(L, old, new))))


@rule("msgq", "configure_send", "HYP-MSGQ-threshold-rule")
def rule_configure_send(L, old, args, ok, new, out):
    """Accepted iff holdoff -1, active, and -1 or 0 <= thd < depth; a threshold is stored and the line re-evaluated."""
    thd = args["notfull_thd"]
    return _configure_rule(L, old, args, ok, new, "notfull_thd", L.And(L.ULE(0, thd), L.ULT(thd, old.depth)),
                           "notfull_thd", "tx")


@rule("msgq", "configure_receive", "HYP-MSGQ-threshold-rule")
def rule_configure_receive(L, old, args, ok, new, out):
    """Accepted iff holdoff -1, active, and -1, -2 or 1 <= thd <= depth; stored (-2: depth), line re-evaluated."""
    thd = args["notempty_thd"]
    return _configure_rule(L, old, args, ok, new, "notempty_thd",
                           L.Or(thd == DEPTH, L.And(L.ULE(1, thd), L.ULE(thd, old.depth))), "notempty_thd", "rx")


@rule("msgq", "configure_send", "HYP-MSGQ-keep")
def rule_configure_send_keep(L, old, args, ok, new, out):
    """-1 changes nothing: threshold and line as they were."""
    return L.Implies(L.And(ok, args["notfull_thd"] == KEEP), _unchanged(L, old, new))


@rule("msgq", "configure_receive", "HYP-MSGQ-keep")
def rule_configure_receive_keep(L, old, args, ok, new, out):
    """-1 changes nothing: a line a PUSH raised below the threshold stays raised."""
    return L.Implies(L.And(ok, args["notempty_thd"] == KEEP), _unchanged(L, old, new))


def _bind_rule(L, old, args, ok, new, line):
    ln, nl = getattr(old, line), getattr(new, line)
    other = "rx" if line == "tx" else "tx"
    legal = L.And(_active(L, old), L.Not(ln.bound), args["virq_exists"], args["virq_free"])
    return L.And(ok == legal, L.Implies(ok, L.And(
        nl.bound, nl.virq == args["virq"], L.Not(nl.level), L.Not(nl.edge), L.Not(nl.active), _same_queue(L, old, new),
        _same_thresholds(L, old, new), _same_line(L, getattr(old, other), getattr(new, other)))))


def _unbind_rule(L, old, ok, new, line):
    nl = getattr(new, line)
    other = "rx" if line == "tx" else "tx"
    return L.And(ok == _active(L, old), L.Implies(ok, L.And(
        L.Not(nl.bound), L.Not(nl.level), L.Not(nl.edge), L.Not(nl.active), _same_queue(L, old, new),
        _same_line(L, getattr(old, other), getattr(new, other)))))


@rule("msgq", "bind_tx", "HYP-MSGQ-bind-rule")
def rule_bind_tx(L, old, args, ok, new, out):
    """Accepted iff active, unbound, and the VIRQ number exists and is free: bound to it, unasserted, nothing else changes."""
    return _bind_rule(L, old, args, ok, new, "tx")


@rule("msgq", "bind_rx", "HYP-MSGQ-bind-rule")
def rule_bind_rx(L, old, args, ok, new, out):
    """Accepted iff active, unbound, and the VIRQ number exists and is free: bound to it, unasserted, nothing else changes."""
    return _bind_rule(L, old, args, ok, new, "rx")


@rule("msgq", "unbind_tx", "HYP-MSGQ-bind-rule")
def rule_unbind_tx(L, old, args, ok, new, out):
    """Accepted iff active: unbound and quiet, nothing else changes."""
    return _unbind_rule(L, old, ok, new, "tx")


@rule("msgq", "unbind_rx", "HYP-MSGQ-bind-rule")
def rule_unbind_rx(L, old, args, ok, new, out):
    """Accepted iff active: unbound and quiet, nothing else changes."""
    return _unbind_rule(L, old, ok, new, "rx")


def _deliver_rule(L, old, ok, new, out, line):
    ln, nl = getattr(old, line), getattr(new, line)
    take = is_line_deliverable(L, ln)
    return L.And(ok, out == take, _same_queue(L, old, new),
                 L.If(take, L.And(nl.active, L.Not(nl.edge), nl.level == ln.level, nl.bound), _same_line(L, ln, nl)))


@rule("msgq", "deliver_tx", "HYP-MSGQ-deliver")
def rule_deliver_tx(L, old, args, ok, new, out):
    """Taken iff deliverable: in service, reasserted bit clear; else nothing changes."""
    return _deliver_rule(L, old, ok, new, out, "tx")


@rule("msgq", "deliver_rx", "HYP-MSGQ-deliver")
def rule_deliver_rx(L, old, args, ok, new, out):
    """Taken iff deliverable: in service, reasserted bit clear; else nothing changes."""
    return _deliver_rule(L, old, ok, new, out, "rx")


def _eoi_rule(L, old, ok, new, out, line):
    ln, nl = getattr(old, line), getattr(new, line)
    stays = L.And(ln.level, L.Or(ln.edge, line_condition(L, old, line)))
    return L.And(ok, out == ln.active, _same_queue(L, old, new),
                 L.If(ln.active, L.And(L.Not(nl.active), nl.level == stays, nl.edge == ln.edge, nl.bound == ln.bound),
                      _same_line(L, ln, nl)))


@rule("msgq", "eoi_tx", "HYP-MSGQ-check-pending")
def rule_eoi_tx(L, old, args, ok, new, out):
    """EOI in service: ends it; the level stays iff it was up and (reasserted or count <= notfull_thd)."""
    return _eoi_rule(L, old, ok, new, out, "tx")


@rule("msgq", "eoi_rx", "HYP-MSGQ-check-pending")
def rule_eoi_rx(L, old, args, ok, new, out):
    """EOI in service: ends it; the level stays iff it was up and (reasserted or count >= notempty_thd)."""
    return _eoi_rule(L, old, ok, new, out, "rx")
