"""Clauses of the virtio device status field, reset, initialization and feature negotiation.

Sources: virtio 1.3 §2.1 (Device Status Field), §2.2 (Feature Bits), §2.4 (Device Reset), §3.1
(Device Initialization), chapter 6 (Reserved Feature Bits); MUST numbers are those of
facts/formal.md §4.1-§4.2. Ids follow ``VIRTIO/<driver|device>/<normative label>#<suffix>``.
"""
from . import register

_SPEC = "oasis-tcs/virtio-spec@15f488c content.tex"
_MODEL = "t1virtio model (docs/virtio-status.md)"
_INIT = "VIRTIO/driver/General Initialization And Device Operation/Device Initialization"

register([
    # §2.1 Device Status Field
    ("VIRTIO/driver/Device Status Field#never-clear", "peer", _SPEC, "virtio-1.3:2.1.1 MUST 2",
     "the driver never clears a device status bit it has set; only a reset (writing 0) clears them"),
    ("VIRTIO/driver/Device Status Field#reset-after-failed", "peer", _SPEC, "virtio-1.3:2.1.1 MUST 3; 3.1.1",
     "after setting FAILED the driver resets the device before re-initializing (no further init step)"),
    ("VIRTIO/device/Device Status Field#before-driver-ok", "peer", _SPEC, "virtio-1.3:2.1.2 MUST 1",
     "the device consumes no buffer and sends no used buffer notification before DRIVER_OK"),
    ("VIRTIO/device/Device Status Field#needs-reset-notify", "rule", _SPEC, "virtio-1.3:2.1.2 MUST 2",
     "setting DEVICE_NEEDS_RESET while DRIVER_OK is set is followed by a configuration change notification"),
    # §2.4 Device Reset
    ("VIRTIO/device/Device Reset#status-zero", "rule", _SPEC, "virtio-1.3:2.4.1 MUST 1",
     "a reset sets device status to 0 (and forgets the accepted features)"),
    ("VIRTIO/device/Device Reset#quiet", "peer", _SPEC, "virtio-1.3:2.4.1 MUST 2",
     "after showing status 0 the device sends no notification and touches no queue until the driver re-initializes it"),
    # §3.1 Device Initialization
    (f"{_INIT}#order", "peer", _SPEC, "virtio-1.3:3.1.1 MUST 1; 2.1.1 MUST 1",
     "status bits follow the init sequence: ACKNOWLEDGE, DRIVER, features, FEATURES_OK (re-read), DRIVER_OK"),
    (f"{_INIT}#no-config-write", "peer", _SPEC, "virtio-1.3:3.1.1 MUST 2",
     "while reading and accepting features (DRIVER set, FEATURES_OK clear) the driver does not write device configuration"),
    (f"{_INIT}#no-new-features", "peer", _SPEC, "virtio-1.3:3.1.1 MUST 3; 2.2",
     "after FEATURES_OK the driver accepts no new feature bits (renegotiation only by reset)"),
    (f"{_INIT}#notify", "peer", _SPEC, "virtio-1.3:3.1.1 MUST 5",
     "the driver sends no available buffer notification before setting DRIVER_OK"),
    # §2.2 Feature Bits
    ("VIRTIO/driver/Feature Bits#offered", "peer", _SPEC, "virtio-1.3:2.2.1 MUST 1",
     "the driver accepts no feature the device did not offer"),
    ("VIRTIO/driver/Feature Bits#requires", "peer", _SPEC, "virtio-1.3:2.2.1 MUST 2",
     "the driver accepts no feature whose required feature it did not accept"),
    ("VIRTIO/driver/Feature Bits#unknown", "peer", _SPEC, "virtio-1.3:2.2.1 MUST 4",
     "the driver accepts no undefined, reserved, transport-unsupported or device-type-undefined bit"),
    ("VIRTIO/device/Feature Bits#offer-requires", "peer", _SPEC, "virtio-1.3:2.2.2 MUST 1",
     "the device offers no feature whose required feature it does not offer"),
    ("VIRTIO/device/Feature Bits#refuse", "invariant", _SPEC, "virtio-1.3:2.2.2 MUST 2",
     "FEATURES_OK sticks only for a feature set the device accepts; otherwise the device leaves it clear"),
    # chapter 6 Reserved Feature Bits
    ("VIRTIO/driver/Reserved Feature Bits#version-1", "peer", _SPEC, "virtio-1.3:6.1 MUST 1",
     "the driver accepts VIRTIO_F_VERSION_1 if it is offered"),
    ("VIRTIO/device/Reserved Feature Bits#version-1", "peer", _SPEC, "virtio-1.3:6.2 MUST 1",
     "the device offers VIRTIO_F_VERSION_1"),
    # model-level
    ("VIRTIO/model/status#reserved-bits", "peer", _MODEL, "virtio-1.3:2.1",
     "the driver writes only defined status bits (SUSPEND needs VIRTIO_F_SUSPEND, not modeled; bit 5 is unused)"),
    ("VIRTIO/model/status#write-status", "rule", _MODEL, "virtio-1.3:2.1, 2.2.2",
     "an accepted status write stores the driver's bits (minus a refused FEATURES_OK), keeps DEVICE_NEEDS_RESET, returns the new status"),
    ("VIRTIO/model/status#device-policy", "caller", _MODEL, "virtio-1.3:6.2",
     "a device may insist only on offered features among VERSION_1, ACCESS_PLATFORM, ORDER_PLATFORM (its MAY-fail list)"),
])
