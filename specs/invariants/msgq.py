"""Invariants of the hypervisor message queue (facts §3.0, §3.1, §6.4)."""
from __future__ import annotations

from t1virtio.hyp.msgq import GUNYAH_MAX_DEPTH, GUNYAH_MAX_MSG_SIZE, LINES, OBJ_ACTIVE, OBJ_DESTROYED, OBJ_INIT, \
    line_condition
from t1virtio.specs.invariants import invariant


def _offset(L, s, j):
    """Return how many places slot ``j`` lies after the head (``0 <= j < depth``)."""
    return L.If(L.ULE(s.head, j), j - s.head, j + s.depth - s.head)


@invariant("msgq", "HYP-MSGQ-lifecycle")
def inv_lifecycle(L, s):
    """INIT, ACTIVE or destroyed; sizes 0 or in range, configured when ACTIVE; only ACTIVE holds messages or bound lines."""
    active = s.lifecycle == OBJ_ACTIVE
    return L.And(L.Or(s.lifecycle == OBJ_INIT, active, s.lifecycle == OBJ_DESTROYED),
                 L.ULE(1, s.size_limit), L.ULE(s.size_limit, GUNYAH_MAX_MSG_SIZE),
                 L.ULE(0, s.depth), L.ULE(s.depth, min(GUNYAH_MAX_DEPTH, len(s.sizes))),
                 L.ULE(0, s.max_size), L.ULE(s.max_size, s.size_limit),
                 L.Implies(active, L.And(L.ULE(1, s.depth), L.ULE(1, s.max_size))),
                 L.Implies(L.Not(active), L.And(s.count == 0, s.head == 0, L.Not(s.tx.bound), L.Not(s.rx.bound))))


@invariant("msgq", "HYP-MSGQ-count")
def inv_count_within_depth(L, s):
    """0 <= count <= depth; head inside the ring of an active queue; ghost counters agree with count."""
    return L.And(L.ULE(0, s.count), L.ULE(s.count, s.depth), L.ULE(0, s.head),
                 L.Implies(s.lifecycle == OBJ_ACTIVE, L.ULT(s.head, s.depth)),
                 L.ULE(0, s.received), s.sent - s.received == s.count)


@invariant("msgq", "HYP-MSGQ-fifo")
def inv_fifo_order(L, s):
    """The message k places after the head is message number ``received + k`` (every slot, quantified)."""
    return L.forall_below(s.seqs, s.depth, lambda j: L.Implies(
        L.ULT(_offset(L, s, j), s.count), L.at(s.seqs, j) == s.received + _offset(L, s, j)))


@invariant("msgq", "HYP-MSGQ-msg-size")
def inv_msg_size(L, s):
    """Every queued message is 1..max_size bytes."""
    return L.forall_below(s.sizes, s.depth, lambda j: L.Implies(
        L.ULT(_offset(L, s, j), s.count), L.And(L.ULE(1, L.at(s.sizes, j)), L.ULE(L.at(s.sizes, j), s.max_size))))


@invariant("msgq", "HYP-MSGQ-thresholds")
def inv_thresholds(L, s):
    """Active: 0 <= notfull_thd < depth and 1 <= notempty_thd <= depth."""
    return L.Implies(s.lifecycle == OBJ_ACTIVE, L.And(L.ULE(0, s.notfull_thd), L.ULT(s.notfull_thd, s.depth),
                                                L.ULE(1, s.notempty_thd), L.ULE(s.notempty_thd, s.depth)))


def _covers(L, s, line):
    ln = getattr(s, line)
    return L.Implies(L.And(ln.bound, line_condition(L, s, line), L.Not(ln.unsignalled)), ln.level)


@invariant("msgq", "HYP-MSGQ-rx-virq")
def inv_rx_virq_level(L, s):
    """A bound not-empty line whose condition count >= notempty_thd holds is asserted (unless bound late, unsignalled)."""
    return _covers(L, s, "rx")


@invariant("msgq", "HYP-MSGQ-tx-virq")
def inv_tx_virq_level(L, s):
    """A bound not-full line whose condition count <= notfull_thd holds is asserted (unless bound late, unsignalled)."""
    return _covers(L, s, "tx")


@invariant("msgq", "HYP-MSGQ-line-unbound")
def inv_lines_quiet(L, s):
    """An unbound line has no level, no edge bit, nothing in service; an unsignalled line is bound and unasserted."""
    return L.And(*[L.And(L.Implies(L.Not(ln.bound), L.And(L.Not(ln.level), L.Not(ln.edge), L.Not(ln.active),
                                                          L.Not(ln.unsignalled))),
                         L.Implies(ln.unsignalled, L.Not(ln.level)))
                   for ln in (getattr(s, x) for x in LINES)])
