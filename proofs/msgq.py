"""Proof subject: the hypervisor message queue, from object creation on, for every queue Gunyah accepts.

The ring tables are z3 arrays of the real length (255) and the per-slot invariants are quantified,
so the proofs cover every depth 1..255 and every maximum message size 1..1023 at once. The initial
states are every object ``msgq_create`` builds (INIT, unconfigured, both lines unbound); configure,
activate and destroy are operations like the others, so every later state is covered by induction.
"""
from __future__ import annotations

from t1virtio.hyp import msgq
from t1virtio.preset import LINUX
from t1virtio.proofs.engine import Op, Subject

M = "t1virtio.hyp.msgq"
_VIRQ = {"virq": "int", "virq_exists": "bool", "virq_free": "bool"}   # the VM's VIC answers, free in proofs


def _template():
    return msgq.msgq_create(LINUX)


def _init(L, s):
    """Every object msgq_create can build, for any preset: INIT, no depth or size, empty, both lines quiet."""
    quiet = [L.Not(x) for ln in (s.tx, s.rx) for x in (ln.bound, ln.level, ln.edge, ln.active, ln.unsignalled)]
    return L.And(s.lifecycle == msgq.OBJ_INIT, L.ULE(1, s.size_limit), L.ULE(s.size_limit, msgq.GUNYAH_MAX_MSG_SIZE),
                 s.depth == 0, s.max_size == 0, s.count == 0, s.head == 0, s.sent == 0, s.received == 0, *quiet)


SUBJECTS = [Subject(
    component="msgq", template=_template, preset="symbolic: any depth 1..255, size 1..1023", arrays=True, init=_init,
    ops=(Op("configure", M, "msgq_configure", {"depth": "int", "max_size": "int"}),
         Op("activate", M, "msgq_activate"),
         Op("destroy", M, "msgq_destroy"),
         Op("send", M, "msgq_send", {"size": "int", "flags": 64, "readable": "bool"}),
         Op("receive", M, "msgq_receive", {"bufsize": "int", "writable": "bool"}),
         Op("flush", M, "msgq_flush"),
         Op("configure_send", M, "msgq_configure_send", {"notfull_thd": "int", "holdoff": "int"}),
         Op("configure_receive", M, "msgq_configure_receive", {"notempty_thd": "int", "holdoff": "int"}),
         Op("bind_tx", M, "msgq_bind_send_virq", _VIRQ),
         Op("bind_rx", M, "msgq_bind_receive_virq", _VIRQ),
         Op("unbind_tx", M, "msgq_unbind_send_virq"),
         Op("unbind_rx", M, "msgq_unbind_receive_virq"),
         Op("deliver_tx", M, "msgq_virq_deliver_send"),
         Op("deliver_rx", M, "msgq_virq_deliver_receive"),
         Op("eoi_tx", M, "msgq_virq_eoi_send"),
         Op("eoi_rx", M, "msgq_virq_eoi_receive")))]
