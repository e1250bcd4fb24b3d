"""Proof subject: the hypervisor message queue, for every depth up to the SMALL table length."""
from __future__ import annotations

from t1virtio.hyp import msgq
from t1virtio.logic import CONCRETE
from t1virtio.preset import SMALL
from t1virtio.proofs.engine import Op, Subject
from t1virtio.step import apply

M = "t1virtio.hyp.msgq"


def _template():
    state, _ = apply(msgq.msgq_configure(CONCRETE, SMALL, SMALL.msgq_max_depth, SMALL.msgq_max_msg_size))
    return state


def _init(L, s):
    """Every queue msgq_configure can create: any legal depth and size, fresh counters."""
    created = msgq.msgq_configure(L, SMALL, s.depth, s.max_size)
    return L.And(*[c for c, _ in created.guards], s.count == 0, s.head == 0, s.sent == 0, s.received == 0,
                 s.notfull_thd == s.depth - 1, s.notempty_thd == 1, s.tx_virq, L.Not(s.rx_virq))


SUBJECTS = [Subject(
    component="msgq", template=_template, preset="SMALL (any depth <= 4, size <= 8)", init=_init,
    ops=(Op("send", M, "msgq_send", {"size": "int", "flags": 64}),
         Op("receive", M, "msgq_receive", {"bufsize": "int"}),
         Op("flush", M, "msgq_flush"),
         Op("configure_send", M, "msgq_configure_send", {"notfull_thd": "int"}),
         Op("configure_receive", M, "msgq_configure_receive", {"notempty_thd": "int"})))]
