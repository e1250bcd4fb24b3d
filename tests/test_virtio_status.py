"""Device status and feature negotiation: the honest init sequence, refusals, hostile peers, reset."""
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from t1virtio import errors
from t1virtio.machines import runner
from t1virtio.machines.virtio_status import StatusMachine
from t1virtio.virtio import features as F
from t1virtio.virtio.status import (ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK, FAILED, FEATURES_OK,
                                    VirtioDevice)

V1 = F.bit(F.VIRTIO_F_VERSION_1)
AP = F.bit(F.VIRTIO_F_ACCESS_PLATFORM)
EV = F.bit(F.VIRTIO_F_EVENT_IDX)


def status_machine_failure(examples: int = 200) -> str | None:
    """Run the status machine without shrinking; return the clause of the first failure, or None."""
    seeded = type("StatusMachine", (StatusMachine,), {"_hypothesis_internal_use_seed": 0})
    seeded.__module__ = StatusMachine.__module__
    try:
        run_state_machine_as_test(seeded, settings=settings(
            max_examples=examples, phases=[Phase.generate], deadline=None, database=None,
            suppress_health_check=list(HealthCheck)))
    except Exception as e:  # noqa: BLE001 - the clause is the answer
        return runner.clause_of(e) or f"unclassified {type(e).__name__}: {e}"
    return None


def _live(dev, wanted):
    for bit in (ACKNOWLEDGE, DRIVER):
        dev.write_status(dev.read_status() | bit)
    dev.negotiate(wanted)
    return dev.write_status(dev.read_status() | FEATURES_OK)


def test_honest_init_sequence_reaches_driver_ok():
    dev = VirtioDevice(F.NET, V1 | EV | F.mask(F.NET_CSUM, F.NET_HOST_TSO4))
    assert _live(dev, EV | F.mask(F.NET_HOST_TSO4)) & FEATURES_OK
    assert dev.state.driver_features == V1 | EV, "HOST_TSO4 needs CSUM, which the driver did not want"
    dev.write_status(dev.read_status() | DRIVER_OK)
    dev.driver_notify()
    dev.device_consume()


def test_negotiation_keeps_requirements():
    dev = VirtioDevice(F.NET, V1 | F.mask(F.NET_CSUM, F.NET_HOST_TSO4, F.NET_HOST_ECN, F.NET_CTRL_VQ, F.NET_MQ))
    _live(dev, F.mask(F.NET_HOST_ECN, F.NET_HOST_TSO4, F.NET_MQ))
    # HOST_TSO4 needs CSUM (not wanted) and HOST_ECN needs a TSO: both dropped; MQ needs CTRL_VQ: dropped
    assert dev.state.driver_features == V1


def test_device_refuses_features_ok_without_access_platform():
    dev = VirtioDevice(F.BLK, V1 | AP, required=AP)
    status = _live(dev, 0)
    assert not status & FEATURES_OK, "device must leave FEATURES_OK clear (2.2.2)"
    with pytest.raises(errors.PeerViolation, match="Device Initialization#order"):
        dev.write_status(status | DRIVER_OK)
    dev.write_status(status | FAILED)
    with pytest.raises(errors.PeerViolation, match="reset-after-failed"):
        dev.write_status(status | FAILED | FEATURES_OK)
    assert dev.write_status(0) == 0
    assert _live(dev, AP) & FEATURES_OK


def test_driver_never_clears_a_bit():
    dev = VirtioDevice(F.RNG, V1)
    dev.write_status(ACKNOWLEDGE | DRIVER)
    with pytest.raises(errors.PeerViolation, match="never-clear"):
        dev.write_status(DRIVER)


def test_no_new_features_after_features_ok():
    dev = VirtioDevice(F.CONSOLE, V1 | F.bit(1))
    _live(dev, 0)
    with pytest.raises(errors.PeerViolation, match="no-new-features"):
        dev.write_driver_features(V1 | F.bit(1))


def test_unknown_offered_bits_are_ignored_not_fatal():
    dev = VirtioDevice(F.RNG, V1 | F.bit(45))
    assert _live(dev, F.bit(45)) & FEATURES_OK
    assert dev.state.driver_features == V1
    dev.write_status(0)
    dev.write_status(ACKNOWLEDGE | DRIVER)
    with pytest.raises(errors.PeerViolation, match="Feature Bits#unknown"):
        dev.write_driver_features(V1 | F.bit(45))


def test_hostile_device_is_refused():
    with pytest.raises(errors.PeerViolation, match="Reserved Feature Bits#version-1"):
        VirtioDevice(F.RNG, 0)
    with pytest.raises(errors.PeerViolation, match="offer-requires"):
        VirtioDevice(F.NET, V1 | F.bit(F.NET_MQ))
    dev = VirtioDevice(F.RNG, V1)
    dev.write_status(ACKNOWLEDGE)
    with pytest.raises(errors.PeerViolation, match="before-driver-ok"):
        dev.device_consume()
    with pytest.raises(errors.PeerViolation, match="before-driver-ok"):
        dev.device_notify_used()


def test_needs_reset_notifies_only_when_live_and_reset_clears_it():
    dev = VirtioDevice(F.RNG, V1)
    _live(dev, 0)
    dev.device_needs_reset()
    assert dev.state.config_notifications == 0
    dev.write_status(0)
    _live(dev, 0)
    dev.write_status(dev.read_status() | DRIVER_OK)
    dev.device_needs_reset()
    assert dev.read_status() & DEVICE_NEEDS_RESET and dev.state.config_notifications == 1
    assert dev.write_status(0) == 0
    with pytest.raises(errors.PeerViolation, match="Device Reset#quiet"):
        dev.device_config_change()


def test_status_machine_finds_nothing_without_shrinking():
    assert status_machine_failure(60) is None
