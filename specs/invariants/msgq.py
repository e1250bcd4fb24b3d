"""Invariants of the hypervisor message queue (facts §6.4)."""
from __future__ import annotations

from t1virtio.specs.invariants import invariant


def _offset(L, s, j):
    """Return how many places slot ``j`` lies after the head (``0 <= j < depth``)."""
    return L.If(L.ULE(s.head, j), j - s.head, j + s.depth - s.head)


@invariant("msgq", "HYP-MSGQ-count")
def inv_count_within_depth(L, s):
    """0 <= count <= depth <= table length; head inside the ring; ghost counters agree with count."""
    n = len(s.sizes)
    return L.And(L.ULE(1, s.depth), L.ULE(s.depth, n), L.ULE(0, s.count), L.ULE(s.count, s.depth),
                 L.ULE(0, s.head), L.ULT(s.head, s.depth), L.ULE(1, s.max_size),
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
    """0 <= notfull_thd < depth and 1 <= notempty_thd <= depth."""
    return L.And(L.ULE(0, s.notfull_thd), L.ULT(s.notfull_thd, s.depth),
                 L.ULE(1, s.notempty_thd), L.ULE(s.notempty_thd, s.depth))


@invariant("msgq", "HYP-MSGQ-rx-virq")
def inv_rx_virq_level(L, s):
    """Not-empty is pending whenever count >= notempty_thd, and never on an empty queue."""
    return L.And(L.Implies(L.ULE(s.notempty_thd, s.count), s.rx_virq),
                 L.Implies(s.rx_virq, L.ULT(0, s.count)))


@invariant("msgq", "HYP-MSGQ-tx-virq")
def inv_tx_virq_level(L, s):
    """Not-full is pending exactly while count <= notfull_thd."""
    return s.tx_virq == L.ULE(s.count, s.notfull_thd)
