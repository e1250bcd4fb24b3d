"""Proof subject: the hypervisor message queue, for every queue Gunyah accepts.

The ring tables are z3 arrays of the real length (255) and the per-slot invariants are quantified,
so the proofs cover every depth 1..255 and every maximum message size 1..1023 at once.
"""
from __future__ import annotations

from t1virtio.hyp import msgq
from t1virtio.logic import CONCRETE
from t1virtio.preset import LINUX
from t1virtio.proofs.engine import Op, Subject
from t1virtio.step import apply

M = "t1virtio.hyp.msgq"


def _template():
    state, _ = apply(msgq.msgq_configure(CONCRETE, LINUX, LINUX.msgq_max_depth, LINUX.msgq_max_msg_size))
    return state


def _init(L, s):
    """Every queue msgq_configure can create: any legal depth and size, fresh counters."""
    created = msgq.msgq_configure(L, LINUX, s.depth, s.max_size)
    return L.And(*[c for c, _ in created.guards], s.count == 0, s.head == 0, s.sent == 0, s.received == 0,
                 s.notfull_thd == s.depth - 1, s.notempty_thd == 1, s.tx_virq, L.Not(s.rx_virq))


SUBJECTS = [Subject(
    component="msgq", template=_template, preset="symbolic: any depth 1..255, size 1..1023", arrays=True, init=_init,
    ops=(Op("send", M, "msgq_send", {"size": "int", "flags": 64}),
         Op("receive", M, "msgq_receive", {"bufsize": "int"}),
         Op("flush", M, "msgq_flush"),
         Op("configure_send", M, "msgq_configure_send", {"notfull_thd": "int"}),
         Op("configure_receive", M, "msgq_configure_receive", {"notempty_thd": "int"})))]
