"""Invariants of the virtio device status field and feature negotiation (virtio 1.3 §2.1, §2.2, §2.4, §3.1)."""
from __future__ import annotations

from t1virtio.specs.invariants import invariant
from t1virtio.virtio import features as F
from t1virtio.virtio.status import (ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, STATUS_DEFINED, has)


@invariant("virtio_status", "VIRTIO/model/status#reserved-bits")
def inv_status_defined_bits(L, s):
    """Device status holds only defined bits."""
    return (s.status & ~STATUS_DEFINED) == 0


@invariant("virtio_status", "VIRTIO/driver/General Initialization And Device Operation/Device Initialization#order")
def inv_init_order(L, s):
    """DRIVER needs ACKNOWLEDGE, FEATURES_OK needs DRIVER, DRIVER_OK needs FEATURES_OK (§3.1.1)."""
    return L.And(L.Implies(has(L, s.status, DRIVER), has(L, s.status, ACKNOWLEDGE)),
                 L.Implies(has(L, s.status, FEATURES_OK), has(L, s.status, DRIVER)),
                 L.Implies(has(L, s.status, DRIVER_OK), has(L, s.status, FEATURES_OK)))


@invariant("virtio_status", "VIRTIO/driver/Feature Bits#offered")
def inv_features_offered(L, s):
    """The driver's features are a subset of the device's."""
    return F.is_subset(L, s.driver_features, s.device_features)


@invariant("virtio_status", "VIRTIO/driver/Feature Bits#unknown")
def inv_features_known(L, s):
    """The driver accepted only bits defined for the device type on this transport."""
    return F.is_subset(L, s.driver_features, F.get_known_features(L, s.device_id, s.driver_features))


@invariant("virtio_status", "VIRTIO/device/Feature Bits#refuse")
def inv_features_ok_acceptable(L, s):
    """FEATURES_OK is set only for a feature set the device accepts (valid and with its required bits)."""
    return L.Implies(has(L, s.status, FEATURES_OK),
                     F.is_acceptable(L, s.device_id, s.device_features, s.device_required, s.driver_features))


@invariant("virtio_status", "VIRTIO/driver/Reserved Feature Bits#version-1")
def inv_version_1_negotiated(L, s):
    """Once FEATURES_OK is set, VERSION_1 was accepted whenever offered."""
    return L.Implies(L.And(has(L, s.status, FEATURES_OK), F.is_set(L, s.device_features, F.VIRTIO_F_VERSION_1)),
                     F.is_set(L, s.driver_features, F.VIRTIO_F_VERSION_1))


@invariant("virtio_status", "VIRTIO/device/Reserved Feature Bits#version-1")
def inv_offer_version_1(L, s):
    """The device offers VERSION_1."""
    return F.is_set(L, s.device_features, F.VIRTIO_F_VERSION_1)


@invariant("virtio_status", "VIRTIO/device/Feature Bits#offer-requires")
def inv_offer_requirements(L, s):
    """Every offered feature's requirement is offered too."""
    return F.is_requirement_closed(L, s.device_id, s.device_features)


@invariant("virtio_status", "VIRTIO/model/status#device-policy")
def inv_device_policy(L, s):
    """The device insists only on offered features of its MAY-fail list."""
    return F.is_subset(L, s.device_required, s.device_features & F.MAY_REQUIRE)


@invariant("virtio_status", "VIRTIO/device/Device Status Field#before-driver-ok")
def inv_quiet_before_driver_ok(L, s):
    """Without DRIVER_OK the device has consumed nothing and sent no used buffer notification since reset."""
    return L.Implies(L.Not(has(L, s.status, DRIVER_OK)), L.And(s.consumed == 0, s.used_notifications == 0))


@invariant("virtio_status", "VIRTIO/driver/General Initialization And Device Operation/Device Initialization#notify")
def inv_no_kick_before_driver_ok(L, s):
    """Without DRIVER_OK the driver has sent no available buffer notification since reset."""
    return L.Implies(L.Not(has(L, s.status, DRIVER_OK)), s.avail_notifications == 0)


@invariant("virtio_status", "VIRTIO/device/Device Reset#quiet")
def inv_quiet_after_reset(L, s):
    """Until the driver sets ACKNOWLEDGE again the device has sent no configuration change notification."""
    return L.Implies(L.Not(has(L, s.status, ACKNOWLEDGE)), s.config_notifications == 0)
