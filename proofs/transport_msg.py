"""Proof subject: virtio-msg, one device number (any device, any status, two queues with symbolic max_size)."""
from __future__ import annotations

from t1virtio.logic import CONCRETE
from t1virtio.proofs.engine import Op, Subject
from t1virtio.step import apply
from t1virtio.transport import msg
from t1virtio.virtio import features as F
from t1virtio.virtio import status

M = "t1virtio.transport.msg"


def _template():
    dev, _ = apply(status.device_create(CONCRETE, F.NET.device_id, F.bit(F.VIRTIO_F_VERSION_1), 0))
    return msg.msg_create(dev, (4, 4))


def _init(L, s):
    """Any device ``device_create`` accepts, just created: nothing configured, nothing outstanding."""
    d = s.dev
    created = status.device_create(L, d.device_id, d.device_features, d.device_required)
    return L.And(*[c for c, _ in created.guards], d.status == 0, d.driver_features == 0, d.consumed == 0,
                 d.used_notifications == 0, d.avail_notifications == 0, d.config_notifications == 0,
                 s.events == 0, L.Not(s.line), s.seen == 0, s.sent == 0, s.answered == 0, s.generation == 0,
                 *[L.Not(c) for c in s.configured], *[m >= 1 for m in s.max_size])


def _assume(L, s):
    return L.And(*[m >= 1 for m in s.max_size])


SUBJECTS = [Subject(
    component="transport_msg", template=_template, init=_init, assume=_assume,
    preset="symbolic (any device; 2 queues; window 4)",
    ops=(Op("request", M, "request", {"msg_id": "int"}),
         Op("response", M, "response", {"msg_id": "int", "token": "int"}),
         Op("set_device_status", M, "set_device_status", {"value": status.STATUS_BITS}),
         Op("set_driver_features", M, "set_driver_features", {"value": F.FEATURE_BITS}),
         Op("set_vqueue", M, "set_vqueue", {"queue": "int", "size": "int", "desc": "int", "driver": "int",
                                            "device": "int"}),
         Op("reset_vqueue", M, "reset_vqueue", {"queue": "int"}),
         Op("set_config", M, "set_config", {"generation": "int"}),
         Op("event_avail", M, "event_avail", {"queue": "int"}),
         Op("event_used", M, "event_used", {"queue": "int"}),
         Op("event_config", M, "event_config"),
         Op("driver_take_events", M, "driver_take_events", {"mask": 8}),
         Op("device_use_queue", M, "device_use_queue", {"queue": "int"})))]
