"""Device status and feature negotiation mutants (virtio 1.3 §2.1, §2.2, §2.4, §3.1, chapter 6)."""
from __future__ import annotations

from dataclasses import replace

from . import Mutant, drop_guard, replace_fn

M = "t1virtio.virtio.status"
F = "t1virtio.virtio.features"
_INIT = "VIRTIO/driver/General Initialization And Device Operation/Device Initialization"
_P = "proof:virtio_status:"
_MACHINE = "scenario:test_virtio_status:status_machine_failure"   # the machine without shrinking
NEEDS_RESET, DRIVER_BITS = 64, 1 | 2 | 4 | 8 | 128


def _reset_keeps_needs_reset(orig, L, s, value):
    """Reset forgets the driver's bits but leaves DEVICE_NEEDS_RESET up (a device that never recovers)."""
    sp = orig(L, s, value)
    kept = L.If(value == 0, sp.new.status | (s.status & NEEDS_RESET), sp.new.status)
    return replace(sp, new=replace(sp.new, status=kept))


def _features_ok_always_sticks(orig, L, s, value):
    """The device never refuses FEATURES_OK, whatever the driver accepted."""
    sp = orig(L, s, value)
    stored = (value & DRIVER_BITS) | (s.status & NEEDS_RESET)
    new = L.If(value == 0, sp.new, replace(sp.new, status=stored))
    return replace(sp, new=new, out=new.status)


def _write_drops_needs_reset(orig, L, s, value):
    """A driver status write wipes the device's DEVICE_NEEDS_RESET."""
    sp = orig(L, s, value)
    return replace(sp, new=replace(sp.new, status=sp.new.status & ~NEEDS_RESET))


def _needs_reset_silent(orig, L, s):
    """DEVICE_NEEDS_RESET without the configuration change notification."""
    sp = orig(L, s)
    return replace(sp, new=replace(sp.new, config_notifications=s.config_notifications))


def _negotiate_ignores_requirements(orig, L, device_id, offered, wanted):
    """The driver accepts every wanted offered feature without checking what it requires."""
    from t1virtio.virtio import features
    return (wanted | features.bit(features.VIRTIO_F_VERSION_1)) & offered & features.get_known_features(
        L, device_id, offered)


def _negotiate_without_version_1(orig, L, device_id, offered, wanted):
    """The driver accepts VERSION_1 only when it asks for it."""
    from t1virtio.virtio import features
    return orig(L, device_id, offered, wanted) & (wanted | ~features.bit(features.VIRTIO_F_VERSION_1))


MUTANTS = [
    Mutant("status-driver-clears-bit", "VIRTIO/driver/Device Status Field#never-clear", _P + "write_status⊨rule_never_clear",
           "VIRTIO/driver/Device Status Field#never-clear",
           drop_guard(M, "write_status", "VIRTIO/driver/Device Status Field#never-clear"), "synthetic"),
    Mutant("status-driver-clears-bit-machine", "VIRTIO/driver/Device Status Field#never-clear", _MACHINE,
           "VIRTIO/driver/Device Status Field#never-clear",
           drop_guard(M, "write_status", "VIRTIO/driver/Device Status Field#never-clear"), "synthetic"),
    Mutant("status-reinit-after-failed", "VIRTIO/driver/Device Status Field#reset-after-failed",
           _P + "write_status⊨rule_failed_until_reset", "VIRTIO/driver/Device Status Field#reset-after-failed",
           drop_guard(M, "write_status", "VIRTIO/driver/Device Status Field#reset-after-failed"), "synthetic"),
    Mutant("status-consume-before-driver-ok", "VIRTIO/device/Device Status Field#before-driver-ok",
           _P + "device_consume⊢inv_quiet_before_driver_ok", "VIRTIO/device/Device Status Field#before-driver-ok",
           drop_guard(M, "device_consume", "VIRTIO/device/Device Status Field#before-driver-ok"),
           "legacy drivers used the device before DRIVER_OK (§3.1.2)"),
    Mutant("status-used-irq-before-driver-ok", "VIRTIO/device/Device Status Field#before-driver-ok",
           _P + "device_notify_used⊢inv_quiet_before_driver_ok", "VIRTIO/device/Device Status Field#before-driver-ok",
           drop_guard(M, "device_notify_used", "VIRTIO/device/Device Status Field#before-driver-ok"), "synthetic"),
    Mutant("status-needs-reset-silent", "VIRTIO/device/Device Status Field#needs-reset-notify",
           _P + "device_needs_reset⊨rule_needs_reset_notifies", "VIRTIO/device/Device Status Field#needs-reset-notify",
           replace_fn(M, "device_needs_reset", _needs_reset_silent), "synthetic"),
    Mutant("status-reset-keeps-needs-reset", "VIRTIO/device/Device Reset#status-zero",
           _P + "write_status⊨rule_reset_clears", "VIRTIO/device/Device Reset#status-zero",
           replace_fn(M, "write_status", _reset_keeps_needs_reset), "synthetic"),
    Mutant("status-config-irq-after-reset", "VIRTIO/device/Device Reset#quiet",
           _P + "device_config_change⊢inv_quiet_after_reset", "VIRTIO/device/Device Reset#quiet",
           drop_guard(M, "device_config_change", "VIRTIO/device/Device Reset#quiet"), "synthetic"),
    Mutant("status-driver-ok-without-features-ok", f"{_INIT}#order", _P + "write_status⊢inv_init_order",
           f"{_INIT}#order", drop_guard(M, "write_status", f"{_INIT}#order"),
           "driver skips the FEATURES_OK re-read (step 6)"),
    Mutant("status-config-write-while-negotiating", f"{_INIT}#no-config-write",
           _P + "write_config⊨rule_no_config_write_while_negotiating", f"{_INIT}#no-config-write",
           drop_guard(M, "write_config", f"{_INIT}#no-config-write"), "synthetic"),
    Mutant("status-features-after-features-ok", f"{_INIT}#no-new-features",
           _P + "write_driver_features⊨rule_features_frozen", f"{_INIT}#no-new-features",
           drop_guard(M, "write_driver_features", f"{_INIT}#no-new-features"), "synthetic"),
    Mutant("status-kick-before-driver-ok", f"{_INIT}#notify", _P + "driver_notify⊢inv_no_kick_before_driver_ok",
           f"{_INIT}#notify", drop_guard(M, "driver_notify", f"{_INIT}#notify"), "synthetic"),
    Mutant("features-accept-unoffered", "VIRTIO/driver/Feature Bits#offered",
           _P + "write_driver_features⊢inv_features_offered", "VIRTIO/driver/Feature Bits#offered",
           drop_guard(M, "write_driver_features", "VIRTIO/driver/Feature Bits#offered"), "synthetic"),
    Mutant("features-ignore-requirements", "VIRTIO/driver/Feature Bits#requires",
           _P + "driver_negotiate⊨rule_negotiate_requirements", "VIRTIO/driver/Feature Bits#requires",
           replace_fn(F, "negotiate_features", _negotiate_ignores_requirements),
           "synthetic: e.g. net GUEST_TSO4 without GUEST_CSUM"),
    Mutant("features-accept-unknown", "VIRTIO/driver/Feature Bits#unknown",
           _P + "write_driver_features⊢inv_features_known", "VIRTIO/driver/Feature Bits#unknown",
           drop_guard(M, "write_driver_features", "VIRTIO/driver/Feature Bits#unknown"), "synthetic"),
    Mutant("features-offer-missing-requirement", "VIRTIO/device/Feature Bits#offer-requires",
           _P + "init⊢inv_offer_requirements", "VIRTIO/device/Feature Bits#offer-requires",
           drop_guard(M, "device_create", "VIRTIO/device/Feature Bits#offer-requires"), "synthetic"),
    Mutant("features-ok-never-refused", "VIRTIO/device/Feature Bits#refuse",
           _P + "write_status⊢inv_features_ok_acceptable", "VIRTIO/device/Feature Bits#refuse",
           replace_fn(M, "write_status", _features_ok_always_sticks), "synthetic"),
    Mutant("features-ok-never-refused-machine", "VIRTIO/device/Feature Bits#refuse", _MACHINE,
           "VIRTIO/device/Feature Bits#refuse", replace_fn(M, "write_status", _features_ok_always_sticks), "synthetic"),
    Mutant("features-ok-without-version-1", "VIRTIO/driver/Reserved Feature Bits#version-1",
           _P + "write_status⊢inv_version_1_negotiated", "VIRTIO/driver/Reserved Feature Bits#version-1",
           drop_guard(M, "write_status", "VIRTIO/driver/Reserved Feature Bits#version-1"), "synthetic"),
    Mutant("features-negotiate-drops-version-1", "VIRTIO/driver/Reserved Feature Bits#version-1",
           _P + "driver_negotiate⊨rule_negotiate_version_1", "VIRTIO/driver/Reserved Feature Bits#version-1",
           replace_fn(F, "negotiate_features", _negotiate_without_version_1), "legacy driver"),
    Mutant("features-device-without-version-1", "VIRTIO/device/Reserved Feature Bits#version-1",
           _P + "init⊢inv_offer_version_1", "VIRTIO/device/Reserved Feature Bits#version-1",
           drop_guard(M, "device_create", "VIRTIO/device/Reserved Feature Bits#version-1"), "legacy device"),
    Mutant("status-reserved-bit-written", "VIRTIO/model/status#reserved-bits", _P + "write_status⊢inv_status_defined_bits",
           "VIRTIO/model/status#reserved-bits", drop_guard(M, "write_status", "VIRTIO/model/status#reserved-bits"),
           "synthetic: SUSPEND without VIRTIO_F_SUSPEND"),
    Mutant("status-write-drops-needs-reset", "VIRTIO/model/status#write-status",
           _P + "write_status⊨rule_write_status_stores", "VIRTIO/model/status#write-status",
           replace_fn(M, "write_status", _write_drops_needs_reset), "synthetic"),
    Mutant("status-device-requires-anything", "VIRTIO/model/status#device-policy", _P + "init⊢inv_device_policy",
           "VIRTIO/model/status#device-policy", drop_guard(M, "device_create", "VIRTIO/model/status#device-policy"),
           "synthetic"),
]
