"""Notification race mutants (facts/formal.md §5.3): each must yield a schedule that replays on the
concrete race model and names the root cause."""
from __future__ import annotations

from dataclasses import replace

from . import Mutant, replace_fn

R = "t1virtio.virtio.races"
N = "t1virtio.virtio.notify"
U16 = 16


def _sleep_without_recheck(orig, L, s, mode):
    """The device re-enables notifications and goes to sleep without re-reading avail idx."""
    from t1virtio.virtio.races import SLEEP
    return replace(orig(L, s, mode), device_pc=SLEEP)


def _read_before_publish(orig):
    """The driver snapshots avail_event / used flags before publishing avail idx (no store-load barrier)."""
    return ("read_event", "publish", "decide")


def _need_event_le(orig, L, event_idx, new_idx, old_idx):
    """``<=`` instead of ``<``: a spurious kick when avail_event == old - 1."""
    return L.ULE(L.wrap(new_idx - event_idx - 1, U16), L.wrap(new_idx - old_idx, U16))


def _need_event_no_minus_one(orig, L, event_idx, new_idx, old_idx):
    """The ``- 1`` dropped: the window becomes (old, new], missing avail_event == old."""
    return L.ULT(L.wrap(new_idx - event_idx, U16), L.wrap(new_idx - old_idx, U16))


def _need_event_unwrapped(orig, L, event_idx, new_idx, old_idx):
    """Plain comparisons without modular arithmetic: wrong once the window wraps past 65535."""
    return L.And(L.ULE(old_idx, event_idx), L.ULT(event_idx, new_idx))


def _flags_kick_only_if_event(orig, L, s, mode):
    """In flag mode the driver ignores NO_NOTIFY == 0 and never kicks (as if EVENT_IDX were on)."""
    return L.And(orig(L, s, mode), mode == "event_idx")


_P = "proof:virtio_races:"
_LOST_EVENT = _P + "event_idx⊢no-lost-notification"
_LOST_FLAGS = _P + "flags⊢no-lost-notification"
_BARRIER = "VIRTIO/driver/Virtqueues/Supplying Buffers to The Device/Notifying The Device#barrier"
_AVAIL = "VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression"

MUTANTS = [
    Mutant("race-sleep-without-recheck", "VIRTIO/model/notify#recheck", _LOST_EVENT, "VIRTIO/model/notify#recheck",
           replace_fn(R, "device_recheck", _sleep_without_recheck), "lost wakeup (cloud-hypervisor PR #2179 class)"),
    Mutant("race-sleep-without-recheck-flags", "VIRTIO/model/notify#no-lost-notification", _LOST_FLAGS,
           "VIRTIO/model/notify#recheck", replace_fn(R, "device_recheck", _sleep_without_recheck),
           "lost wakeup with NO_NOTIFY (ACRN PR #2623 class)"),
    Mutant("race-read-event-before-publish", _BARRIER, _LOST_EVENT, _BARRIER,
           replace_fn(R, "driver_program", _read_before_publish), "missing barrier (Hermit PR #2669, SPDK #3178 class)"),
    Mutant("race-read-flags-before-publish", _BARRIER, _LOST_FLAGS, _BARRIER,
           replace_fn(R, "driver_program", _read_before_publish), "missing barrier with NO_NOTIFY"),
    Mutant("need-event-le-spurious", "VIRTIO/model/notify#exactly-once", _P + "event_idx⊢notify-exactly-at-event",
           "VIRTIO/model/notify#exactly-once", replace_fn(N, "vring_need_event", _need_event_le),
           "synthetic: <= instead of <"),
    Mutant("need-event-le-window", "VIRTIO/model/notify#need-event-window", _P + "vring_need_event⊢window",
           "VIRTIO/model/notify#need-event-window", replace_fn(N, "vring_need_event", _need_event_le),
           "synthetic: <= instead of <"),
    Mutant("need-event-no-minus-one-lost", f"{_AVAIL}#event-idx-notify", _LOST_EVENT, f"{_AVAIL}#event-idx-notify",
           replace_fn(N, "vring_need_event", _need_event_no_minus_one), "synthetic: - 1 dropped"),
    Mutant("need-event-no-minus-one-window", "VIRTIO/model/notify#need-event-window", _P + "vring_need_event⊢window",
           "VIRTIO/model/notify#need-event-window", replace_fn(N, "vring_need_event", _need_event_no_minus_one),
           "synthetic: - 1 dropped"),
    Mutant("need-event-le-twice", "VIRTIO/model/notify#exactly-once", _P + "vring_need_event⊢split-window-once",
           "VIRTIO/model/notify#exactly-once", replace_fn(N, "vring_need_event", _need_event_le),
           "synthetic: <= makes consecutive windows overlap (two kicks for one crossing)"),
    Mutant("need-event-unwrapped", "VIRTIO/model/notify#need-event-window", _P + "vring_need_event⊢wrap-invariant",
           "VIRTIO/model/notify#need-event-window", replace_fn(N, "vring_need_event", _need_event_unwrapped),
           "synthetic: no u16 wrap-around"),
    Mutant("race-flags-never-kick", f"{_AVAIL}#flags-notify", _LOST_FLAGS, f"{_AVAIL}#flags-notify",
           replace_fn(R, "should_kick", _flags_kick_only_if_event), "synthetic: NO_NOTIFY clear ignored"),
]
