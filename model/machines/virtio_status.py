"""Device status machine: an honest driver and a possibly malicious driver or device negotiating.

Every step runs through ``checked_call`` (the operation's rules are checked on the concrete
before/after states) and is compared with a small plain-Python reference of §2.1, §2.2 and §3.1
written independently of the model; the invariants are checked after every step.
"""
from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from t1virtio import errors
from t1virtio.machines.common import HONEST, REFERENCE, check_invariants, checked_call, expect, expect_exhausted
from t1virtio.virtio import features as F
from t1virtio.virtio.status import (ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_BITS, DRIVER_OK, FAILED,
                                    FEATURES_OK, STATUS_DEFINED, VirtioDevice)

C = "virtio_status"
INIT_SEQUENCE = (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK)


def ref_known(t: F.DeviceType) -> int:
    return t.features | F.MMIO_TRANSPORT_FEATURES


def ref_closed(t: F.DeviceType, f: int) -> bool:
    """Every "Requires" row of ``t`` whose feature is in ``f`` is met by ``f``."""
    return all(not (f >> feat & 1) or (f & any_of) for feat, any_of in t.requires)


def ref_close(t: F.DeviceType, f: int) -> int:
    """Drop features with a missing requirement until nothing changes (the spec's plain meaning)."""
    for _ in range(len(t.requires) + 1):     # each round drops at least one feature, or stops
        unmet = {feat for feat, any_of in t.requires if f >> feat & 1 and not f & any_of}
        if not unmet:
            return f
        for feat in unmet:
            f &= ~(1 << feat)
    raise AssertionError("requirement closure did not converge")


def ref_acceptable(t: F.DeviceType, offered: int, required: int, accepted: int) -> bool:
    return (accepted & ~offered == 0 and accepted & ~ref_known(t) == 0 and ref_closed(t, accepted)
            and required & ~accepted == 0)


def ref_write_status(t, offered, required, drv, old, value):
    """Return (accepted, new status) for a driver writing ``value`` over ``old`` (§2.1.1, §3.1.1, §2.2.2)."""
    if value == 0:
        return True, 0
    added = value & DRIVER_BITS & ~old
    v1 = 1 << F.VIRTIO_F_VERSION_1
    legal = (value & ~STATUS_DEFINED == 0 and old & DRIVER_BITS & ~value == 0 and not (old & FAILED and added)
             and (not value & DRIVER or value & ACKNOWLEDGE) and (not value & FEATURES_OK or value & DRIVER)
             and (not value & DRIVER_OK or old & FEATURES_OK)
             and not (added & FEATURES_OK and offered & v1 and not drv & v1))
    if not legal:
        return False, old
    refused = added & FEATURES_OK and not ref_acceptable(t, offered, required, drv)
    return True, (value & ~DEVICE_NEEDS_RESET & ~(FEATURES_OK if refused else 0)) | (old & DEVICE_NEEDS_RESET)


@st.composite
def offers(draw, t: F.DeviceType):
    """A feature offer for ``t``: VERSION_1, some known bits closed under requirements, sometimes a future bit."""
    known = [n for n in range(F.FEATURE_BITS) if ref_known(t) >> n & 1]
    f = sum(1 << n for n in draw(st.lists(st.sampled_from(known), max_size=12)))
    f = ref_close(t, f | (1 << F.VIRTIO_F_VERSION_1))
    if draw(st.booleans()):
        f |= 1 << draw(st.sampled_from([44, 45, 49]))     # reserved for future extensions: ignored by the driver
    return f


class StatusMachine(RuleBasedStateMachine):
    """One device; the honest driver walks the init sequence, hostile rules write anything."""

    @initialize(data=st.data(), t=st.sampled_from(F.DEVICE_TYPES))
    def create(self, data, t):
        offered = data.draw(offers(t))
        if data.draw(st.booleans(), label="restricted platform"):   # Gunyah/pKVM: ACCESS_PLATFORM offered
            offered |= F.bit(F.VIRTIO_F_ACCESS_PLATFORM)
        required = offered & data.draw(st.sampled_from([0, F.bit(F.VIRTIO_F_VERSION_1),
                                                        F.bit(F.VIRTIO_F_ACCESS_PLATFORM), F.MAY_REQUIRE]))
        bad = data.draw(st.sampled_from([None, None, None, "no-version-1", "missing-requirement"]))
        if bad == "no-version-1":
            self._refused_offer(t, offered & ~F.bit(F.VIRTIO_F_VERSION_1), 0,
                                "VIRTIO/device/Reserved Feature Bits#version-1")
        elif bad == "missing-requirement" and t.requires:
            feat, _ = data.draw(st.sampled_from(t.requires))
            self._refused_offer(t, (1 << feat) | F.bit(F.VIRTIO_F_VERSION_1), 0,
                                "VIRTIO/device/Feature Bits#offer-requires")
        self.t, self.offered, self.required = t, offered, required
        self.dev = VirtioDevice(t, offered, required)
        self.status, self.drv = 0, 0
        self.wanted = 0

    def _refused_offer(self, t, offered, required, clause):
        try:
            VirtioDevice(t, offered, required)
        except errors.PeerViolation as e:
            expect(e.clause == clause, REFERENCE, f"refused with {e.clause}, expected {clause}")
            return
        raise AssertionError(f"a {t.name} device offering {offered:#x} was accepted; expected {clause}")

    def _write_status(self, value):
        ok, err = checked_call(C, "write_status", self.dev, lambda: self.dev.write_status(value), {"value": value})
        legal, status = ref_write_status(self.t, self.offered, self.required, self.drv, self.status, value)
        expect(ok == legal, REFERENCE, f"status {self.status:#04x} <- {value:#04x}: accepted={ok}, reference {legal}: {err}")
        if ok:
            self.status = status
            if value == 0:
                self.drv = 0
        return ok

    # the honest driver (§3.1.1)
    @rule(data=st.data())
    def honest_init_step(self, data):
        """Take the next step of the init sequence, or reset after FAILED or a refused FEATURES_OK."""
        wanted = data.draw(st.one_of(st.integers(0, (1 << F.FEATURE_BITS) - 1), st.just(self.offered),
                                     st.just(self.offered & ~self.required)), label="wanted")
        if self.status & FAILED or self.status & DEVICE_NEEDS_RESET:
            self._write_status(0)
            return
        if self.status & DRIVER and not self.status & FEATURES_OK and self.drv == 0:
            ok, err = checked_call(C, "driver_negotiate", self.dev, lambda: self.dev.negotiate(wanted),
                                   {"wanted": wanted})
            expect(ok, HONEST, f"honest negotiation refused: {err}")
            want = ref_close(self.t, (wanted | F.bit(F.VIRTIO_F_VERSION_1)) & self.offered & ref_known(self.t))
            expect(self.dev.state.driver_features == want, REFERENCE, "honest negotiation differs from the reference")
            self.drv = want
            return
        nxt = next((b for b in INIT_SEQUENCE if not self.status & b), None)
        if nxt is None:
            return
        if nxt == DRIVER_OK and not self.status & FEATURES_OK:
            self._write_status(self.status | FAILED)      # FEATURES_OK refused: give up (§3.1.1)
            return
        # a hostile write before may have left features the honest step cannot follow (the reference
        # then expects the refusal): only an accepted FEATURES_OK is checked further
        if self._write_status(self.status | nxt) and nxt == FEATURES_OK:
            sticks = ref_acceptable(self.t, self.offered, self.required, self.drv)
            stuck = bool(self.dev.read_status() & FEATURES_OK)
            if stuck and not sticks:
                raise errors.InvariantViolation("VIRTIO/device/Feature Bits#refuse",
                                                f"FEATURES_OK stuck for {self.drv:#x} (required {self.required:#x})")
            expect(stuck == sticks, HONEST, "the device refused a valid feature set it does not require more of")

    # hostile driver
    @rule(value=st.one_of(st.integers(0, 255), st.sampled_from([ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK, 16, 32])))
    def write_status(self, value):
        self._write_status(value)

    @rule(bit=st.sampled_from([ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, FAILED, DEVICE_NEEDS_RESET]))
    def clear_status_bit(self, bit):
        if self.status & ~bit:
            self._write_status(self.status & ~bit)

    @rule(data=st.data())
    def write_driver_features(self, data):
        value = data.draw(st.one_of(st.integers(0, (1 << F.FEATURE_BITS) - 1),
                                    st.integers(0, (1 << F.FEATURE_BITS) - 1).map(lambda x: x & self.offered)))
        ok, err = checked_call(C, "write_driver_features", self.dev, lambda: self.dev.write_driver_features(value),
                               {"value": value})
        legal = (not self.status & FAILED and self.status & DRIVER
                 and (not self.status & FEATURES_OK or value == self.drv)
                 and value & ~self.offered == 0 and value & ~ref_known(self.t) == 0)
        expect(ok == bool(legal), REFERENCE, f"features <- {value:#x} at status {self.status:#04x}: accepted={ok}: {err}")
        if ok:
            self.drv = value

    @rule()
    def write_config(self):
        ok, err = checked_call(C, "write_config", self.dev, self.dev.write_config, {})
        expect(ok == (not (self.status & DRIVER and not self.status & FEATURES_OK)), REFERENCE, f"write_config: {err}")

    @rule()
    def driver_notify(self):
        ok, err = checked_call(C, "driver_notify", self.dev, self.dev.driver_notify, {})
        expect(ok == bool(self.status & DRIVER_OK), REFERENCE, f"driver_notify at status {self.status:#04x}: {err}")

    # possibly malicious device
    @rule(kind=st.sampled_from(["device_consume", "device_notify_used"]))
    def device_uses_queue(self, kind):
        ok, err = checked_call(C, kind, self.dev, getattr(self.dev, kind), {})
        expect(ok == bool(self.status & DRIVER_OK), REFERENCE, f"{kind} at status {self.status:#04x}: {err}")
        expect(ok or err.clause == "VIRTIO/device/Device Status Field#before-driver-ok", REFERENCE, f"{kind} refused with {err}")

    @rule()
    def device_config_change(self):
        ok, err = checked_call(C, "device_config_change", self.dev, self.dev.device_config_change, {})
        expect(ok == bool(self.status & ACKNOWLEDGE), REFERENCE, f"config change at status {self.status:#04x}: {err}")

    @precondition(lambda self: not self.status & DEVICE_NEEDS_RESET)
    @rule()
    def device_needs_reset(self):
        ok, err = checked_call(C, "device_needs_reset", self.dev, self.dev.device_needs_reset, {})
        expect(ok, HONEST, f"device_needs_reset refused: {err}")
        self.status |= DEVICE_NEEDS_RESET

    @invariant()
    def invariants_hold(self):
        check_invariants(C, self.dev.state)
        expect(self.dev.state.status == self.status, REFERENCE, f"status {self.dev.state.status:#04x}, reference {self.status:#04x}")
        expect(self.dev.state.driver_features == self.drv, REFERENCE, "driver features differ from the reference")


MACHINES = {"status": StatusMachine}
