"""Proof subjects: the three register transports (virtio-mmio over a message-queue pair, the Gunyah emulated
page, ivshmem2-virtio), over one register file core (``t1virtio.transport.regs``).

Symbolic: the device (any type, offer and policy ``virtio.status.device_create`` accepts), every register,
counter and written value; two banked queues with symbolic QueueNumMax. The emulated page fixes
``two_phase`` (Gunyah's reset), the other two fix it off; the emulated page traps each write synchronously, so
it has no request channel operations.
"""
from __future__ import annotations

from t1virtio.logic import CONCRETE
from t1virtio.proofs.engine import Op, Subject
from t1virtio.step import apply
from t1virtio.transport import regs
from t1virtio.virtio import features as F
from t1virtio.virtio import status

M = "t1virtio.transport.regs"
PROOF_QUEUES = 2


def _template():
    dev, _ = apply(status.device_create(CONCRETE, F.NET.device_id, F.bit(F.VIRTIO_F_VERSION_1), 0))
    return regs.regfile_create(dev, (4,) * PROOF_QUEUES)


def _word(L, s, a):
    return L.ULE(a["value"], regs.WORD)


def _param_word(L, s, a):
    return L.And(0 <= a["value"], a["value"] <= regs.WORD)


REGISTER_OPS = (
    Op("write_status", M, "write_status", {"value": status.STATUS_BITS}),
    Op("write_device_features_sel", M, "write_device_features_sel", {"value": "int"}),
    Op("write_driver_features_sel", M, "write_driver_features_sel", {"value": "int"}),
    Op("write_driver_features", M, "write_driver_features", {"value": F.FEATURE_BITS}, _word),
    Op("write_queue_sel", M, "write_queue_sel", {"value": "int"}),
    Op("write_queue_param", M, "write_queue_param", {"param": "int", "value": "int"}, _param_word),
    Op("write_queue_ready", M, "write_queue_ready", {"value": "int"}),
    Op("write_queue_notify", M, "write_queue_notify", {"queue": "int"}),
    Op("write_interrupt_ack", M, "write_interrupt_ack", {"value": 32}),
    Op("device_interrupt", M, "device_interrupt", {"reasons": 32}),
    Op("device_use_queue", M, "device_use_queue", {"queue": "int"}),
    Op("device_needs_reset", M, "device_needs_reset"),
    Op("backend_ack_reset", M, "backend_ack_reset"),
    Op("config_begin", M, "config_begin"),
    Op("config_end", M, "config_end"),
    Op("driver_config_read", M, "driver_config_read", {"before": "int"}))
CHANNEL_OPS = (Op("chan_request", M, "chan_request", {"seq": "int"}),
               Op("chan_reply", M, "chan_reply", {"seq": "int"}))


def _init(two_phase):
    def init(L, s):
        """Any device ``device_create`` accepts, just created: every register 0, no queue ready, channel idle."""
        d = s.dev
        created = status.device_create(L, d.device_id, d.device_features, d.device_required)
        return L.And(*[c for c, _ in created.guards], d.status == 0, d.driver_features == 0, d.consumed == 0,
                     d.used_notifications == 0, d.avail_notifications == 0, d.config_notifications == 0,
                     s.two_phase == two_phase, L.Not(s.reset_pending), s.interrupt_status == 0, L.Not(s.line),
                     s.queue_sel == 0, s.device_features_sel == 0, s.driver_features_sel == 0, s.seen == 0,
                     s.config_generation == 0, L.Not(s.config_updating), L.Not(s.in_flight), s.sent == 0,
                     s.answered == 0, *[L.Not(r) for r in s.ready], *[m >= 0 for m in s.num_max],
                     *[p == 0 for p in s.params])
    return init


def _assume(two_phase):
    def assume(L, s):
        """The page kind is fixed; QueueNumMax is a size (0: queue unavailable)."""
        return L.And(s.two_phase == two_phase, *[m >= 0 for m in s.num_max])
    return assume


SUBJECTS = [
    Subject(component="transport_mmio_msgq", template=_template, init=_init(False), assume=_assume(False),
            preset="symbolic (any device; 2 queues)", ops=REGISTER_OPS + CHANNEL_OPS),
    Subject(component="transport_mmio_emul", template=_template, init=_init(True), assume=_assume(True),
            preset="symbolic (any device; 2 queues; two-phase reset)", ops=REGISTER_OPS),
    Subject(component="transport_ivshmem", template=_template, init=_init(False), assume=_assume(False),
            preset="symbolic (any device; 2 queues)", ops=REGISTER_OPS + CHANNEL_OPS),
]
