"""Proof subject: virtio device status and feature negotiation, for every device type, offer and policy.

Nothing is fixed by a preset: the device type, the offered and required feature words (64 bits),
the status byte and the written values are all symbolic; the init predicate is "any device that
``device_create`` accepts, just reset".
"""
from __future__ import annotations

from t1virtio.logic import CONCRETE
from t1virtio.proofs.engine import Op, Subject
from t1virtio.step import apply
from t1virtio.virtio import features as F
from t1virtio.virtio import status

M = "t1virtio.virtio.status"


def _template():
    state, _ = apply(status.device_create(CONCRETE, F.NET.device_id, F.bit(F.VIRTIO_F_VERSION_1), 0))
    return state


def _init(L, s):
    """Every device ``device_create`` accepts, before the driver has touched it."""
    created = status.device_create(L, s.device_id, s.device_features, s.device_required)
    return L.And(*[c for c, _ in created.guards], s.status == 0, s.driver_features == 0, s.consumed == 0,
                 s.used_notifications == 0, s.avail_notifications == 0, s.config_notifications == 0)


SUBJECTS = [Subject(
    component="virtio_status", template=_template, preset="symbolic (any device type, offer, policy)",
    init=_init,
    ops=(Op("write_status", M, "write_status", {"value": status.STATUS_BITS}),
         Op("write_driver_features", M, "write_driver_features", {"value": F.FEATURE_BITS}),
         Op("driver_negotiate", M, "driver_negotiate", {"wanted": F.FEATURE_BITS}),
         Op("write_config", M, "write_config"),
         Op("driver_notify", M, "driver_notify"),
         Op("device_consume", M, "device_consume"),
         Op("device_notify_used", M, "device_notify_used"),
         Op("device_config_change", M, "device_config_change"),
         Op("device_needs_reset", M, "device_needs_reset")))]
