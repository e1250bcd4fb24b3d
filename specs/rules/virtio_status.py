"""Rules of the virtio device status field: what any conforming device and driver may do in one step."""
from __future__ import annotations

from t1virtio.specs.rules import exact, rule
from t1virtio.virtio import features as F
from t1virtio.virtio.status import (DEVICE_NEEDS_RESET, DRIVER_BITS, DRIVER_OK, FAILED, FEATURES_OK,
                                    STATUS_DEFINED, has, is_negotiating)


@rule("virtio_status", "write_status", "VIRTIO/device/Device Reset#status-zero")
def rule_reset_clears(L, old, args, ok, new, out):
    """Writing 0 always resets: status 0, no accepted features, and a re-read shows 0."""
    return L.Implies(args["value"] == 0, L.And(ok, new.status == 0, new.driver_features == 0, out == 0))


@rule("virtio_status", "write_status", "VIRTIO/driver/Device Status Field#never-clear")
def rule_never_clear(L, old, args, ok, new, out):
    """An accepted non-zero write keeps every bit the driver had set."""
    return L.Implies(L.And(ok, args["value"] != 0), (old.status & DRIVER_BITS & ~new.status) == 0)


@rule("virtio_status", "write_status", "VIRTIO/driver/Device Status Field#reset-after-failed")
def rule_failed_until_reset(L, old, args, ok, new, out):
    """After FAILED, an accepted write is a reset or changes no driver bit."""
    return L.Implies(L.And(ok, args["value"] != 0, has(L, old.status, FAILED)),
                     (new.status & DRIVER_BITS) == (old.status & DRIVER_BITS))


@rule("virtio_status", "write_status", "VIRTIO/model/status#write-status")
def rule_write_status_stores(L, old, args, ok, new, out):
    """An accepted write stores the driver's bits (FEATURES_OK only if it sticks), keeps DEVICE_NEEDS_RESET,
    leaves features and counters alone, and a re-read returns the new status."""
    value = args["value"]
    other = (new.status ^ value) & ~(FEATURES_OK | DEVICE_NEEDS_RESET)
    return L.Implies(L.And(ok, value != 0), L.And(
        (value & ~STATUS_DEFINED) == 0, other == 0, L.Implies(has(L, new.status, FEATURES_OK), has(L, value, FEATURES_OK)),
        (new.status & DEVICE_NEEDS_RESET) == (old.status & DEVICE_NEEDS_RESET),
        new.driver_features == old.driver_features, new.consumed == old.consumed,
        new.config_notifications == old.config_notifications, out == new.status))


@rule("virtio_status", "write_driver_features",
      "VIRTIO/driver/General Initialization And Device Operation/Device Initialization#no-new-features")
def rule_features_frozen(L, old, args, ok, new, out):
    """Once FEATURES_OK is set, the accepted features do not change (until reset)."""
    return L.Implies(has(L, old.status, FEATURES_OK), new.driver_features == old.driver_features)


@rule("virtio_status", "driver_negotiate", "VIRTIO/driver/Feature Bits#requires")
def rule_negotiate_requirements(L, old, args, ok, new, out):
    """The honest driver accepts only wanted features whose requirements it also accepts."""
    return L.Implies(ok, L.And(F.is_requirement_closed(L, new.device_id, new.driver_features),
                               F.is_subset(L, new.driver_features, args["wanted"] | F.bit(F.VIRTIO_F_VERSION_1)),
                               out == new.driver_features))


@rule("virtio_status", "driver_negotiate", "VIRTIO/driver/Reserved Feature Bits#version-1")
def rule_negotiate_version_1(L, old, args, ok, new, out):
    """The honest driver accepts VERSION_1 whenever the device offers it."""
    return L.Implies(L.And(ok, F.is_set(L, old.device_features, F.VIRTIO_F_VERSION_1)),
                     F.is_set(L, new.driver_features, F.VIRTIO_F_VERSION_1))


@rule("virtio_status", "write_config",
      "VIRTIO/driver/General Initialization And Device Operation/Device Initialization#no-config-write")
def rule_no_config_write_while_negotiating(L, old, args, ok, new, out):
    """A configuration write is accepted only outside init step 4 (a device may refuse others: config
    fields may be read-only)."""
    return L.Implies(ok, L.Not(is_negotiating(L, old)))


@exact("virtio_status", "write_config", 
       "VIRTIO/driver/General Initialization And Device Operation/Device Initialization#no-config-write",
       "t1virtio device (docs/virtio-status.md)",
       refines="rule_no_config_write_while_negotiating")
def exact_config_write_outside_negotiation(L, old, args, ok, new, out):
    """The model's device accepts every configuration write outside init step 4."""
    return ok == L.Not(is_negotiating(L, old))


@rule("virtio_status", "device_needs_reset", "VIRTIO/device/Device Status Field#needs-reset-notify")
def rule_needs_reset_notifies(L, old, args, ok, new, out):
    """DEVICE_NEEDS_RESET is set, and a live device (DRIVER_OK) sends a configuration change notification."""
    return L.And(ok, has(L, new.status, DEVICE_NEEDS_RESET),
                 L.Implies(has(L, old.status, DRIVER_OK), new.config_notifications == old.config_notifications + 1))
