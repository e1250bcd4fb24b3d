"""Rules of the hypervisor message queue: what any conforming queue may do in one step (facts §3.1)."""
from __future__ import annotations

from t1virtio.hyp.msgq import MSGQ_PUSH, compute_slot
from t1virtio.specs.rules import rule


@rule("msgq", "send", "HYP-MSGQ-send-rule")
def rule_send_appends_one(L, old, args, ok, new, out):
    """Accepted: one message of ``size`` at the tail, others untouched, not_full reported; refused when full or mis-sized."""
    size, flags = args["size"], args["flags"]
    tail = compute_slot(L, old, old.count)
    legal = L.And(L.ULT(old.count, old.depth), L.ULE(1, size), L.ULE(size, old.max_size),
                  (flags & ~MSGQ_PUSH) == 0)
    kept = L.forall_below(old.sizes, old.depth, lambda k: L.Implies(
        L.Not(tail == k), L.And(L.at(new.sizes, k) == L.at(old.sizes, k), L.at(new.seqs, k) == L.at(old.seqs, k))))
    return L.And(ok == legal, L.Implies(ok, L.And(
        new.count == old.count + 1, new.head == old.head, L.at(new.sizes, tail) == size,
        L.at(new.seqs, tail) == old.sent, kept, out == L.ULT(new.count, new.depth))))


@rule("msgq", "receive", "HYP-MSGQ-receive-rule")
def rule_receive_takes_head(L, old, args, ok, new, out):
    """Accepted: returns the head message (size, number), removes exactly it; refused when empty or the buffer is short."""
    head_size = L.at(old.sizes, old.head)
    legal = L.And(L.ULT(0, old.count), L.ULE(head_size, args["bufsize"]))
    return L.And(ok == legal, L.Implies(ok, L.And(
        out[0] == head_size, out[1] == old.received, new.count == old.count - 1,
        new.head == compute_slot(L, old, 1), out[2] == L.ULT(0, new.count))))


@rule("msgq", "flush", "HYP-MSGQ-flush-rule")
def rule_flush_empties(L, old, args, ok, new, out):
    """Flush empties the queue, raises not-full, drops not-empty."""
    return L.And(ok, new.count == 0, new.tx_virq, L.Not(new.rx_virq))
