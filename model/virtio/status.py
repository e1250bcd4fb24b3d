"""Device status field, reset and initialization sequence (virtio 1.3 §2.1, §2.4, §3.1).

One ``DeviceStatusState`` is the device as both sides see it through the transport: the status
byte, the features the device offers and the subset the driver accepted. The driver's operations
(``write_status``, ``write_driver_features``, ``write_config``, ``driver_notify``) are checked by
the honest device; the device's operations (``device_consume``, ``device_notify_used``,
``device_needs_reset``, ``device_config_change``) are checked by the honest driver. Either side
breaking a MUST is refused with a ``PeerViolation`` naming the clause; the state does not change.
Ghost counters (since the last reset) let the "nothing before DRIVER_OK" clauses be invariants.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from t1virtio.logic import CONCRETE
from t1virtio.state import bits
from t1virtio.step import Step, apply, step
from t1virtio.virtio import features

# §2.1 status bits, in the order a driver sets them
ACKNOWLEDGE = 1
DRIVER = 2
DRIVER_OK = 4
FEATURES_OK = 8
SUSPEND = 16               # virtio 1.4, needs VIRTIO_F_SUSPEND: not modeled, so never written
DEVICE_NEEDS_RESET = 64    # set by the device only
FAILED = 128
STATUS_BITS = 8

DRIVER_BITS = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | FAILED   # what the driver writes
STATUS_DEFINED = DRIVER_BITS | DEVICE_NEEDS_RESET

INIT_ORDER = "VIRTIO/driver/General Initialization And Device Operation/Device Initialization#order"
NO_NEW_FEATURES = "VIRTIO/driver/General Initialization And Device Operation/Device Initialization#no-new-features"
RESET_AFTER_FAILED = "VIRTIO/driver/Device Status Field#reset-after-failed"


@dataclass(frozen=True, slots=True)
class DeviceStatusState:
    """One device's negotiation state (the fields the transport's Status and feature registers show)."""

    device_id: int                        # device type (features.DEVICE_TYPES), fixed for the device's life
    device_features: int = bits(64)       # offered by the device, fixed
    device_required: int = bits(64)       # device policy: offered features it refuses FEATURES_OK without
    status: int = bits(STATUS_BITS)
    driver_features: int = bits(64)       # accepted by the driver
    consumed: int = 0                     # ghost: buffers the device consumed since the last reset
    used_notifications: int = 0           # ghost: used buffer notifications since the last reset
    avail_notifications: int = 0          # ghost: available buffer notifications since the last reset
    config_notifications: int = 0         # ghost: configuration change notifications since the last reset


def has(L: Any, status: Any, flag: int) -> Any:
    """Return whether status bit ``flag`` is set."""
    return (status & flag) != 0


def is_negotiating(L: Any, s: DeviceStatusState) -> Any:
    """Return whether the driver is in init step 4 (DRIVER set, FEATURES_OK not yet)."""
    return L.And(has(L, s.status, DRIVER), L.Not(has(L, s.status, FEATURES_OK)))


def device_create(L: Any, device_id: Any, offered: Any, required: Any) -> Step:
    """Create a device of type ``device_id`` offering ``offered`` (the honest driver validates the offer, §2.2.1).

    Bits this model does not know are allowed in the offer (a device of a later spec version may
    offer them, §2.2.2); the driver ignores them and never accepts them (§2.2.1).
    """
    guards = [(features.is_set(L, offered, features.VIRTIO_F_VERSION_1), "VIRTIO/device/Reserved Feature Bits#version-1"),
              (features.is_requirement_closed(L, device_id, offered), "VIRTIO/device/Feature Bits#offer-requires"),
              (features.is_subset(L, required, offered & features.MAY_REQUIRE), "VIRTIO/model/status#device-policy")]
    new = DeviceStatusState(device_id=device_id, device_features=offered, device_required=required,
                            status=0, driver_features=0)
    return step(guards, new)


def reset(L: Any, s: DeviceStatusState) -> DeviceStatusState:
    """Return the device after a reset: status 0, no features accepted, counters restarted (§2.4.1)."""
    return replace(s, status=s.status & 0, driver_features=s.driver_features & 0, consumed=0,
                   used_notifications=0, avail_notifications=0, config_notifications=0)


def write_status(L: Any, s: DeviceStatusState, value: Any) -> Step:
    """The driver writes ``value`` to device status; out = the status a re-read returns.

    0 resets the device. Otherwise the device checks the driver's MUSTs (§2.1.1, §3.1.1) and lets a
    newly written FEATURES_OK stick only for a feature set it accepts (§2.2.2); DEVICE_NEEDS_RESET
    stays the device's own.
    """
    added = value & DRIVER_BITS & ~s.status
    offered_v1 = features.is_set(L, s.device_features, features.VIRTIO_F_VERSION_1)
    written = [((value & ~STATUS_DEFINED) == 0, "VIRTIO/model/status#reserved-bits"),
               ((s.status & DRIVER_BITS & ~value) == 0, "VIRTIO/driver/Device Status Field#never-clear"),
               (L.Implies(has(L, s.status, FAILED), added == 0), RESET_AFTER_FAILED),
               (L.And(L.Implies(has(L, value, DRIVER), has(L, value, ACKNOWLEDGE)),
                      L.Implies(has(L, value, FEATURES_OK), has(L, value, DRIVER)),
                      L.Implies(has(L, value, DRIVER_OK), has(L, s.status, FEATURES_OK))), INIT_ORDER),
               (L.Implies(L.And(has(L, added, FEATURES_OK), offered_v1),
                          features.is_set(L, s.driver_features, features.VIRTIO_F_VERSION_1)),
                "VIRTIO/driver/Reserved Feature Bits#version-1")]
    guards = [(L.Or(value == 0, cond), clause) for cond, clause in written]
    refused = L.And(has(L, added, FEATURES_OK),
                    L.Not(features.is_acceptable(L, s.device_id, s.device_features, s.device_required,
                                                 s.driver_features)))
    kept = L.If(refused, value & ~(DEVICE_NEEDS_RESET | FEATURES_OK), value & ~DEVICE_NEEDS_RESET)
    written_state = replace(s, status=kept | (s.status & DEVICE_NEEDS_RESET))
    new = L.If(value == 0, reset(L, s), written_state)
    return step(guards, new, out=new.status)


def write_driver_features(L: Any, s: DeviceStatusState, value: Any) -> Step:
    """The driver writes the features it accepts (init step 4, §3.1.1; §2.2.1)."""
    guards = [(L.Not(has(L, s.status, FAILED)), RESET_AFTER_FAILED),
              (has(L, s.status, DRIVER), INIT_ORDER),
              (L.Or(L.Not(has(L, s.status, FEATURES_OK)), value == s.driver_features), NO_NEW_FEATURES),
              (features.is_subset(L, value, s.device_features), "VIRTIO/driver/Feature Bits#offered"),
              (features.is_subset(L, value, features.get_known_features(L, s.device_id, value)),
               "VIRTIO/driver/Feature Bits#unknown")]
    return step(guards, replace(s, driver_features=value))


def driver_negotiate(L: Any, s: DeviceStatusState, wanted: Any) -> Step:
    """The honest driver reads the offer and writes what it accepts of ``wanted`` (§2.2.1, chapter 6)."""
    accepted = features.negotiate_features(L, s.device_id, s.device_features, wanted)
    sp = write_driver_features(L, s, accepted)
    return step(sp.guards, sp.new, out=accepted)


def write_config(L: Any, s: DeviceStatusState) -> Step:
    """The driver writes a device configuration field; never while accepting features (§3.1.1 step 4)."""
    guards = [(L.Not(is_negotiating(L, s)),
               "VIRTIO/driver/General Initialization And Device Operation/Device Initialization#no-config-write")]
    return step(guards, s)


def driver_notify(L: Any, s: DeviceStatusState) -> Step:
    """The driver sends an available buffer notification; only once DRIVER_OK is set (§3.1.1)."""
    guards = [(has(L, s.status, DRIVER_OK),
               "VIRTIO/driver/General Initialization And Device Operation/Device Initialization#notify")]
    return step(guards, replace(s, avail_notifications=s.avail_notifications + 1))


def device_consume(L: Any, s: DeviceStatusState) -> Step:
    """The device consumes an available buffer; only once DRIVER_OK is set (§2.1.2)."""
    guards = [(has(L, s.status, DRIVER_OK), "VIRTIO/device/Device Status Field#before-driver-ok")]
    return step(guards, replace(s, consumed=s.consumed + 1))


def device_notify_used(L: Any, s: DeviceStatusState) -> Step:
    """The device sends a used buffer notification; only once DRIVER_OK is set (§2.1.2)."""
    guards = [(has(L, s.status, DRIVER_OK), "VIRTIO/device/Device Status Field#before-driver-ok")]
    return step(guards, replace(s, used_notifications=s.used_notifications + 1))


def device_config_change(L: Any, s: DeviceStatusState) -> Step:
    """The device sends a configuration change notification; not between reset and re-initialization (§2.4.1)."""
    guards = [(has(L, s.status, ACKNOWLEDGE), "VIRTIO/device/Device Reset#quiet")]
    return step(guards, replace(s, config_notifications=s.config_notifications + 1))


def device_needs_reset(L: Any, s: DeviceStatusState) -> Step:
    """The device enters an error state: DEVICE_NEEDS_RESET, and a config change notification if live (§2.1.2)."""
    live = has(L, s.status, DRIVER_OK)
    return step([], replace(s, status=s.status | DEVICE_NEEDS_RESET,
                            config_notifications=s.config_notifications + L.If(live, 1, 0)))


class VirtioDevice:
    """A concrete device's negotiation state, driven by a driver and checked on both sides."""

    def __init__(self, device_type: features.DeviceType, offered: int, required: int = 0):
        self.state, _ = apply(device_create(CONCRETE, device_type.device_id, offered, required),
                              f"{device_type.name} offering {offered:#x}")
        self.last_out: Any = None

    def _run(self, fn: Any, detail: str, **args: Any) -> Any:
        sp = fn(CONCRETE, self.state, **args)
        self.last_out = sp.out
        self.state, out = apply(sp, detail)
        return out

    def write_status(self, value: int) -> int:
        """Write the status register; return what a re-read shows."""
        return self._run(write_status, f"status {self.state.status:#04x} <- {value:#04x}", value=value)

    def read_status(self) -> int:
        return self.state.status

    def write_driver_features(self, value: int) -> None:
        self._run(write_driver_features, f"driver features <- {value:#x}", value=value)

    def negotiate(self, wanted: int) -> int:
        """Accept what an honest driver understanding ``wanted`` accepts; return it."""
        return self._run(driver_negotiate, f"driver wants {wanted:#x}", wanted=wanted)

    def write_config(self) -> None:
        self._run(write_config, f"status {self.state.status:#04x}")

    def driver_notify(self) -> None:
        self._run(driver_notify, f"status {self.state.status:#04x}")

    def device_consume(self) -> None:
        self._run(device_consume, f"status {self.state.status:#04x}")

    def device_notify_used(self) -> None:
        self._run(device_notify_used, f"status {self.state.status:#04x}")

    def device_config_change(self) -> None:
        self._run(device_config_change, f"status {self.state.status:#04x}")

    def device_needs_reset(self) -> None:
        self._run(device_needs_reset, f"status {self.state.status:#04x}")
