"""Notification race mutants (facts/formal.md §5.3): each must yield a schedule that replays on the
concrete race model and names the root cause."""
from __future__ import annotations

from dataclasses import replace

import contextlib
import importlib

from . import Mutant, replace_fn

R = "t1virtio.virtio.races"
N = "t1virtio.virtio.notify"
S = "t1virtio.virtio.split"
PK = "t1virtio.virtio.packed"
U16 = 16


def _need_event_everywhere(fn):
    """Patch ``notify.vring_need_event`` and, while split.py imports it by name, ``split.vring_need_event``
    too (the real kick_prepare / need_notify the races call use that name)."""
    def patch():
        stack = contextlib.ExitStack()
        stack.enter_context(replace_fn(N, "vring_need_event", fn)())
        if hasattr(importlib.import_module(S), "vring_need_event"):
            stack.enter_context(replace_fn(S, "vring_need_event", fn)())
        return stack
    return patch


def _sleep_without_recheck(orig, L, s, mode):
    """The consumer re-enables notifications and goes to sleep without re-reading the ring."""
    from t1virtio.virtio.races import SLEEP
    return replace(orig(L, s, mode), cons_pc=SLEEP)


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


def _kick_prepare_window_late(orig, L, d, avail_event, used_flags):
    """Real split kick_prepare with the need_event comparison off by one: the window (old, new] instead
    of [old, new), so a driver whose window starts at avail_event does not kick."""
    sp = orig(L, d, avail_event, used_flags)
    old = L.wrap(d.avail_idx - d.num_added, U16)
    late = L.ULT(L.wrap(d.avail_idx - avail_event, U16), L.wrap(d.avail_idx - old, U16))
    return replace(sp, out=L.If(d.event_idx, late, sp.out))


def _enable_notify_event_behind(orig, L, v, avail_idx):
    """Real split enable_notify writes avail_event = last_avail - 1 (an index already published)."""
    sp = orig(L, v, avail_idx)
    return replace(sp, new=replace(sp.new, avail_event=L.If(v.event_idx, L.wrap(v.last_avail - 1, U16),
                                                              sp.new.avail_event)))


def _enable_cb_event_ahead(orig, L, d, used_idx):
    """Real split enable_cb writes used_event = last_used + 1: the next used entry interrupts no one."""
    sp = orig(L, d, used_idx)
    return replace(sp, new=replace(sp.new, used_event=L.wrap(d.last_used + 1, U16)))


def _add_buf_no_count(orig, L, d, *a):
    """Real split add_buf publishes the idx but does not count the buffer in num_added (window empty)."""
    sp = orig(L, d, *a)
    return replace(sp, new=replace(sp.new, num_added=d.num_added))


def _packed_enable_cb_wrong_wrap(orig, L, d):
    """Real packed enable_cb publishes off_wrap with the wrap counter inverted (a lap away)."""
    sp = orig(L, d)
    slot, wrap = sp.out
    return replace(sp, out=(slot, L.Not(wrap)))


def _packed_kick_ignores_wrap(orig, L, d, flags, off, ewrap):
    """Real packed kick_prepare takes the event offset as is, whatever its wrap counter says."""
    return orig(L, d, flags, off, d.avail_wrap)


def _flags_kick_only_if_event(orig, L, s, mode):
    """In flag mode the driver ignores NO_NOTIFY == 0 and never kicks (as if EVENT_IDX were on)."""
    return L.And(orig(L, s, mode), mode == "event_idx")


_P = "proof:virtio_races:"
_LOST_EVENT = _P + "event_idx⊢no-lost-notification"
_LOST_FLAGS = _P + "flags⊢no-lost-notification"
_LOST = "VIRTIO/model/notify#no-lost-notification"
_BARRIER = "VIRTIO/driver/Virtqueues/Supplying Buffers to The Device/Notifying The Device#barrier"
_AVAIL = "VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression"

MUTANTS = [
    Mutant("race-sleep-without-recheck", "VIRTIO/model/notify#recheck", _LOST_EVENT, "VIRTIO/model/notify#recheck",
           replace_fn(R, "consumer_recheck", _sleep_without_recheck), "lost wakeup (cloud-hypervisor PR #2179 class)"),
    Mutant("race-sleep-without-recheck-flags", "VIRTIO/model/notify#no-lost-notification", _LOST_FLAGS,
           "VIRTIO/model/notify#recheck", replace_fn(R, "consumer_recheck", _sleep_without_recheck),
           "lost wakeup with NO_NOTIFY (ACRN PR #2623 class)"),
    Mutant("race-read-event-before-publish", _BARRIER, _LOST_EVENT, _BARRIER,
           replace_fn(R, "producer_program", _read_before_publish), "missing barrier (Hermit PR #2669, SPDK #3178 class)"),
    Mutant("race-read-flags-before-publish", _BARRIER, _LOST_FLAGS, _BARRIER,
           replace_fn(R, "producer_program", _read_before_publish), "missing barrier with NO_NOTIFY"),
    Mutant("need-event-le-spurious", "VIRTIO/model/notify#exactly-once", _P + "event_idx⊢notify-exactly-at-event",
           "VIRTIO/model/notify#exactly-once", _need_event_everywhere(_need_event_le),
           "synthetic: <= instead of <"),
    Mutant("need-event-le-window", "VIRTIO/model/notify#need-event-window", _P + "vring_need_event⊢window",
           "VIRTIO/model/notify#need-event-window", _need_event_everywhere(_need_event_le),
           "synthetic: <= instead of <"),
    Mutant("need-event-no-minus-one-lost", f"{_AVAIL}#event-idx-notify", _LOST_EVENT, f"{_AVAIL}#event-idx-notify",
           _need_event_everywhere(_need_event_no_minus_one), "synthetic: - 1 dropped"),
    Mutant("need-event-no-minus-one-window", "VIRTIO/model/notify#need-event-window", _P + "vring_need_event⊢window",
           "VIRTIO/model/notify#need-event-window", _need_event_everywhere(_need_event_no_minus_one),
           "synthetic: - 1 dropped"),
    Mutant("need-event-le-twice", "VIRTIO/model/notify#exactly-once", _P + "vring_need_event⊢split-window-once",
           "VIRTIO/model/notify#exactly-once", _need_event_everywhere(_need_event_le),
           "synthetic: <= makes consecutive windows overlap (two kicks for one crossing)"),
    Mutant("need-event-unwrapped", "VIRTIO/model/notify#need-event-window", _P + "vring_need_event⊢wrap-invariant",
           "VIRTIO/model/notify#need-event-window", _need_event_everywhere(_need_event_unwrapped),
           "synthetic: no u16 wrap-around"),
    Mutant("race-flags-never-kick", f"{_AVAIL}#flags-notify", _LOST_FLAGS, f"{_AVAIL}#flags-notify",
           replace_fn(R, "should_kick", _flags_kick_only_if_event), "synthetic: NO_NOTIFY clear ignored"),
    # the same race properties in the other direction and over the packed ring
    Mutant("race-used-sleep-without-recheck", "VIRTIO/model/notify#recheck", _P + "used_event_idx⊢no-lost-notification",
           "VIRTIO/model/notify#recheck", replace_fn(R, "consumer_recheck", _sleep_without_recheck),
           "lost used-buffer wakeup (virtqueue_enable_cb without the re-check)"),
    Mutant("race-read-used-event-before-publish", "VIRTIO/model/notify#publish-before-read",
           _P + "used_event_idx⊢no-lost-notification", "VIRTIO/model/notify#publish-before-read",
           replace_fn(R, "producer_program", _read_before_publish), "missing device barrier before reading used_event"),
    Mutant("race-packed-sleep-without-recheck", "VIRTIO/model/notify#recheck", _P + "packed_enable⊢no-lost-notification",
           "VIRTIO/model/notify#recheck", replace_fn(R, "consumer_recheck", _sleep_without_recheck),
           "lost wakeup over the packed ring"),
    # bugs in the REAL transitions the races call
    Mutant("split-kick-prepare-window-late", f"{_AVAIL}#event-idx-notify", _LOST_EVENT, f"{_AVAIL}#event-idx-notify",
           replace_fn(S, "kick_prepare", _kick_prepare_window_late), "synthetic: need_event off by one in kick_prepare"),
    Mutant("split-enable-notify-event-behind", _LOST, _LOST_EVENT, _LOST,
           replace_fn(S, "enable_notify", _enable_notify_event_behind), "synthetic: avail_event written one behind"),
    Mutant("split-enable-cb-event-ahead", _LOST, _P + "used_event_idx⊢no-lost-notification", _LOST,
           replace_fn(S, "enable_cb", _enable_cb_event_ahead), "synthetic: used_event written one ahead"),
    Mutant("split-add-buf-no-count", _LOST, _LOST_EVENT, _LOST,
           replace_fn(S, "add_buf", _add_buf_no_count), "synthetic: num_added not counted"),
    Mutant("packed-enable-cb-wrong-wrap", _LOST, _P + "packed_used_desc⊢no-lost-notification", _LOST,
           replace_fn(PK, "packed_enable_cb", _packed_enable_cb_wrong_wrap), "synthetic: off_wrap with the wrong wrap"),
    Mutant("packed-kick-ignores-wrap-race", "VIRTIO/model/packed/events#kick-rule",
           _P + "packed_desc⊢no-lost-notification", "VIRTIO/model/packed/events#kick-rule",
           replace_fn(PK, "packed_kick_prepare", _packed_kick_ignores_wrap),
           "synthetic: event offset's wrap counter ignored (Linux vring_need_event on packed)"),
]
