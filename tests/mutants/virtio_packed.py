"""Packed virtqueue mutants (virtio 1.3 §2.8; facts/formal.md §5.1-§5.2).

Historical: the avail wrap counter not flipped when a list ends exactly at the ring end (Linux
1acfe2c12258), a buffer id reused while outstanding, the device holding more than the queue size
(CVE-2016-5403), the driver trusting a used length (CVE-2021-47352), AVAIL/USED mis-encoding.
The chain-walk checks a proof cannot see (they protect memory, not counters) are caught by
scenarios in tests/test_virtio_packed.py that feed the honest side a crafted ring.
"""
from __future__ import annotations

from dataclasses import replace

from . import Mutant, drop_guard, replace_fn

M = "t1virtio.virtio.packed"
P = "VIRTIO/model/packed"
D_SG = "VIRTIO/driver/Packed Virtqueues/Scatter-Gather Support"
D_IND = "VIRTIO/driver/Packed Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors"
V_DT = "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table"
DRV, DEV, WALK, RING = "virtio_packed_driver", "virtio_packed_device", "virtio_packed_walk", "virtio_packed"
SC = "scenario:test_virtio_packed"


def _wrap_not_flipped_at_exact_end(orig, L, d, n, wlen, id):
    """Linux before 1acfe2c12258: `if (i < head)` misses the flip when the list ends at the ring end."""
    sp = orig(L, d, n, wlen, id)
    exact = d.next_avail + n == d.num
    return replace(sp, new=replace(sp.new, avail_wrap=L.If(exact, d.avail_wrap, sp.new.avail_wrap)))


def _enable_cb_desc_always(orig, L, d):
    sp = orig(L, d)
    return replace(sp, new=replace(sp.new, event_flags=L.If(d.event_flags == 1, 2, sp.new.event_flags)))


def _get_used_keeps_id(orig, L, d, avail, used, id, length):
    sp = orig(L, d, avail, used, id, length)
    return replace(sp, new=replace(sp.new, ndesc=d.ndesc))


def _get_used_reports_capacity(orig, L, d, avail, used, id, length):
    sp = orig(L, d, avail, used, id, length)
    return replace(sp, out=(id, L.at(d.wlen, id)))


def _get_used_skips_one(orig, L, r, length):
    sp = orig(L, r, length)
    d = r.drv
    slot = L.If(L.ULE(d.num, d.last_used + 1), 0, d.last_used + 1)
    wrap = L.If(L.ULE(d.num, d.last_used + 1), L.Not(d.used_wrap), d.used_wrap)
    return replace(sp, new=replace(sp.new, drv=replace(sp.new.drv, last_used=slot, used_wrap=wrap)))


def _push_used_unwrapped(orig, L, v, id, length):
    sp = orig(L, v, id, length)
    return replace(sp, new=replace(sp.new, next_used=v.next_used + L.at(v.ndesc, id)))


def _push_used_keeps_in_flight(orig, L, v, id, length):
    sp = orig(L, v, id, length)
    return replace(sp, new=replace(sp.new, in_flight=v.in_flight))


def _ring_push_forgets_done(orig, L, r, id, length):
    sp = orig(L, r, id, length)
    return replace(sp, new=replace(sp.new, done=r.done))


def _avail_flags_same_bits(orig, L, wrap):
    """AVAIL/USED mis-encoding: both bits set to the wrap counter (reads as used, not available)."""
    return wrap, wrap


def _walk_table_total_lost(orig, L, w, has_write, has_indirect, length, in_region):
    sp = orig(L, w, has_write, has_indirect, length, in_region)
    return replace(sp, new=replace(sp.new, total=w.total))


def _add_reports_next(orig, L, d, n, wlen, id):
    sp = orig(L, d, n, wlen, id)
    return replace(sp, out=(sp.new.next_avail, sp.new.avail_wrap))


def _pop_reports_next(orig, L, v, avail, used, n, id, wlen):
    sp = orig(L, v, avail, used, n, id, wlen)
    return replace(sp, out=(sp.new.next_avail, sp.new.avail_wrap))


def _push_reports_next(orig, L, v, id, length):
    sp = orig(L, v, id, length)
    return replace(sp, out=(sp.new.next_used, sp.new.used_wrap))


def _kick_ignores_event_wrap(orig, L, d, flags, off, ewrap):
    """The DESC offset taken without moving it back a ring when its wrap differs."""
    return orig(L, d, flags, off, d.avail_wrap)


def _notify_ignores_disable(orig, L, v, flags, off, ewrap):
    return orig(L, v, L.If(flags == 1, 0, flags), off, ewrap)


def _window_one_short(orig, L, num, slot, wrap, count, off, ewrap):
    """The event window taken as distance < count: the last position used is not in it (lost notification)."""
    dist = L.If(L.ULE(count, 0), 0, count - 1)
    return orig(L, num, slot, wrap, dist, off, ewrap)


def _span_unclamped(orig, L, num, start, n):
    """A list length over the queue size not clamped: the wrapped range reaches slots >= num."""
    fits = L.ULE(start + n, num)
    return L.If(fits, n, num - start), L.If(fits, 0, start + n - num)


def _fill_no_flip(orig, L, seq, num, start, n, value, wrap):
    """Slots after the ring end written with this lap's values (the wrap counter not flipped)."""
    return orig(L, seq, num, start, n, lambda lw: value(wrap), wrap)


def _wrap_check_ignores_wrap(orig, L, d):
    """from_state's wrap check on slots alone ((next_avail - last_used) mod num): a full ring (distance num,
    slots equal) is refused, so a legal state cannot be started from."""
    sp = orig(L, d)
    span = L.If(L.ULE(d.last_used, d.next_avail), d.next_avail - d.last_used, d.next_avail - d.last_used + d.num)
    return replace(sp, guards=tuple((L.And(c, span == d.num - d.num_free), k) if k == f"{P}/driver#wrap-positions"
                                    else (c, k) for c, k in sp.guards))


def _form(component, name, table=4):
    return f"proof:{component}:{name}[table {table}]"


def _proof(component, op, target):
    sep = "⊨" if target.startswith("rule_") else "⊢"
    return f"proof:{component}:{op}{sep}{target}"



def _kick_unless_disabled(orig, L, d, flags, off, ewrap):
    """Under DESC, a kick whatever position the device named: legal (SHOULD NOT), not Linux's choice."""
    from t1virtio.virtio.packed import RING_EVENT_FLAGS_DISABLE
    sp = orig(L, d, flags, off, ewrap)
    return replace(sp, out=L.Not(flags == RING_EVENT_FLAGS_DISABLE))


MUTANTS = [
    # ---- historical -----------------------------------------------------------------------------
    Mutant("packed-wrap-not-flipped-at-ring-end", f"{P}/driver#wrap-positions",
           _proof(DRV, "add", "inv_driver_wrap_positions"), f"{P}/driver#wrap-positions",
           replace_fn(M, "packed_add", _wrap_not_flipped_at_exact_end),
           "Linux 1acfe2c12258 'virtio_ring: fix avail_wrap_counter in virtqueue_add_packed' (formal §5.2 #11)"),
    Mutant("packed-wrap-not-flipped-ring-flags", f"{P}/ring#flags", _proof(RING, "add", "inv_ring_flags"),
           f"{P}/ring#flags", replace_fn(M, "packed_add", _wrap_not_flipped_at_exact_end),
           "Linux 1acfe2c12258: the device then sees the next list's AVAIL polarity wrong (hang)"),
    Mutant("packed-driver-reuses-outstanding-id", f"{P}/driver#id-in-use", _proof(DRV, "add", "inv_driver_accounting"),
           f"{P}/driver#accounting", drop_guard(M, "packed_add", f"{P}/driver#id-in-use"),
           "buffer id reused while outstanding (double use of desc_state[id])"),
    Mutant("packed-device-accepts-id-in-flight", f"{P}/ids#id-in-flight", _proof(DEV, "pop", "inv_device_in_flight"),
           f"{P}/device#in-flight", drop_guard(M, "packed_pop", f"{P}/ids#id-in-flight"),
           "QEMU CVE-2021-3748 class: a buffer mapped twice"),
    Mutant("packed-device-unbounded-in-flight", f"{P}/device#in-flight-bound", _proof(DEV, "pop", "inv_device_in_flight"),
           f"{P}/device#in-flight", drop_guard(M, "packed_pop", f"{P}/device#in-flight-bound"),
           "QEMU CVE-2016-5403: more requests in flight than the queue size"),
    Mutant("packed-driver-trusts-used-len", f"{V_DT}#used-len", _proof(DRV, "get_used", "rule_get_used_validates"),
           f"{P}/driver#get-used-rule", drop_guard(M, "packed_get_used", f"{V_DT}#used-len"),
           "CVE-2021-47352: virtio-net trusted the device's used length"),
    Mutant("packed-avail-used-mis-encoded", f"{P}/ring#flags", _proof(RING, "add", "inv_ring_flags"), f"{P}/ring#flags",
           replace_fn(M, "avail_flags", _avail_flags_same_bits), "synthetic: AVAIL/USED flag mis-encoding"),
    Mutant("packed-walk-no-loop-bound", f"{D_SG}#chain-too-long", _proof(WALK, "ring_desc", "inv_walk_bounded"),
           f"{P}/walk#bounded", drop_guard(M, "packed_walk_ring_desc", f"{D_SG}#chain-too-long"),
           "QEMU CVE-2016-6490 / vhost CVE-2019-14835 class: an unbounded walk over driver-written descriptors"),
    # ---- driver guards --------------------------------------------------------------------------
    Mutant("packed-add-empty-buffer", f"{P}/driver#empty-buffer", _proof(DRV, "add", "rule_add_publishes"),
           f"{P}/driver#add-rule", drop_guard(M, "packed_add", f"{P}/driver#empty-buffer"), "synthetic"),
    Mutant("packed-add-overfills-ring", f"{D_SG}#ring-space", _proof(DRV, "add", "inv_driver_bounds"),
           f"{P}/driver#bounds", drop_guard(M, "packed_add", f"{D_SG}#ring-space"), "synthetic: no -ENOSPC"),
    Mutant("packed-add-after-detach", f"{P}/driver#detached", _proof(DRV, "add", "rule_add_publishes"),
           f"{P}/driver#add-rule", drop_guard(M, "packed_add", f"{P}/driver#detached"), "synthetic"),
    Mutant("packed-driver-used-id-out-of-range", f"{P}/ids#used-id-range", _proof(DRV, "get_used", "inv_driver_accounting"),
           f"{P}/driver#accounting", drop_guard(M, "packed_get_used", f"{P}/ids#used-id-range"),
           "Linux BAD_RING 'id out of range' removed"),
    Mutant("packed-driver-trusts-used-id", f"{P}/ids#used-id-not-outstanding",
           _proof(DRV, "get_used", "rule_get_used_validates"), f"{P}/driver#get-used-rule",
           drop_guard(M, "packed_get_used", f"{P}/ids#used-id-not-outstanding"), "Linux BAD_RING 'is not a head' removed"),
    Mutant("packed-get-used-ignores-wrap", f"{P}/driver#no-used", _proof(DRV, "get_used", "rule_get_used_validates"),
           f"{P}/driver#get-used-rule", drop_guard(M, "packed_get_used", f"{P}/driver#no-used"),
           "synthetic: a descriptor taken as used without AVAIL == USED == wrap"),
    Mutant("packed-driver-ignores-inconsistent-flags", f"{V_DT}#used-flags", f"{SC}:scenario_used_flags",
           f"{V_DT}#used-flags", drop_guard(M, "packed_get_used", f"{V_DT}#used-flags"),
           "synthetic: a used descriptor with AVAIL cleared at a live position passes silently"),
    Mutant("packed-create-size-zero", f"{P}/ring#queue-size", _proof(DRV, "init", "inv_driver_bounds"),
           f"{P}/driver#bounds", drop_guard(M, "packed_driver_create", f"{P}/ring#queue-size"),
           "vm-virtio #173: queue size 0"),
    # ---- device guards --------------------------------------------------------------------------
    Mutant("packed-device-id-out-of-range", f"{P}/ids#id-range", _proof(DEV, "pop", "inv_device_in_flight"),
           f"{P}/device#in-flight", drop_guard(M, "packed_pop", f"{P}/ids#id-range"), "synthetic"),
    Mutant("packed-device-pops-unavailable", f"{P}/device#nothing-available", _proof(DEV, "pop", "rule_pop_in_order"),
           f"{P}/device#pop-rule", drop_guard(M, "packed_pop", f"{P}/device#nothing-available"),
           "synthetic: use without seeing AVAIL change (2.8.15 #2)"),
    Mutant("packed-push-not-held", f"{P}/device#not-in-flight", _proof(DEV, "push_used", "rule_push_used_skips"),
           f"{P}/device#push-used-rule", drop_guard(M, "packed_push_used", f"{P}/device#not-in-flight"), "synthetic"),
    Mutant("packed-push-len-beyond-writable", f"{V_DT}#len-beyond-writable",
           _proof(DEV, "push_used", "rule_push_used_skips"), f"{P}/device#push-used-rule",
           drop_guard(M, "packed_push_used", f"{V_DT}#len-beyond-writable"), "synthetic"),
    Mutant("packed-event-desc-without-event-idx", f"{P}/events#mode", _proof(DEV, "set_event", "inv_device_bounds"),
           f"{P}/device#bounds", drop_guard(M, "packed_set_event", f"{P}/events#mode"), "synthetic"),
    Mutant("packed-walk-total-overflow", f"{D_SG}#total-length", _proof(WALK, "ring_desc", "inv_walk_bounded"),
           f"{P}/walk#bounded", drop_guard(M, "packed_walk_ring_desc", f"{D_SG}#total-length"),
           "Firecracker CVE-2019-18960 class: length arithmetic overflow"),
    Mutant("packed-walk-table-unbounded", f"{D_IND}#chain-limit", _proof(WALK, "table_desc", "inv_walk_bounded"),
           f"{P}/walk#bounded", drop_guard(M, "packed_walk_table_desc", f"{D_IND}#chain-limit"),
           "synthetic: an indirect table longer than the device's limit"),
    Mutant("packed-walk-write-before-read", f"{D_SG}#write-before-read", f"{SC}:scenario_write_before_read",
           f"{D_SG}#write-before-read", drop_guard(M, "packed_walk_ring_desc", f"{D_SG}#write-before-read"), "synthetic"),
    Mutant("packed-walk-partial-list", f"{D_SG}#expose-first-last", f"{SC}:scenario_partial_list",
           f"{D_SG}#expose-first-last", drop_guard(M, "packed_walk_ring_desc", f"{D_SG}#expose-first-last"),
           "synthetic: the device follows NEXT into a descriptor that is not available"),
    Mutant("packed-walk-indirect-not-negotiated", f"{D_IND}#not-negotiated", f"{SC}:scenario_indirect_not_negotiated",
           f"{D_IND}#not-negotiated", drop_guard(M, "packed_walk_ring_desc", f"{D_IND}#not-negotiated"), "synthetic"),
    Mutant("packed-walk-nested-indirect", f"{D_IND}#nested", f"{SC}:scenario_nested_indirect", f"{D_IND}#nested",
           drop_guard(M, "packed_walk_table_desc", f"{D_IND}#nested"), "synthetic: nested indirect tables"),
    Mutant("packed-walk-indirect-with-next", f"{D_IND}#in-list", f"{SC}:scenario_indirect_with_next", f"{D_IND}#in-list",
           drop_guard(M, "packed_walk_ring_desc", f"{D_IND}#in-list"), "synthetic: INDIRECT together with NEXT"),
    Mutant("packed-walk-table-length", f"{D_IND}#table-length", f"{SC}:scenario_table_length", f"{D_IND}#table-length",
           drop_guard(M, "packed_walk_ring_desc", f"{D_IND}#table-length"), "synthetic: table length not a multiple of 16"),
    Mutant("packed-walk-outside-region", f"{P}/device#address-outside-region", f"{SC}:scenario_outside_region",
           f"{P}/device#address-outside-region",
           drop_guard(M, "packed_walk_ring_desc", f"{P}/device#address-outside-region"),
           "OpenBSD vmd / QEMU class: a guest-chosen address outside shared memory"),
    # ---- invariants -----------------------------------------------------------------------------
    Mutant("packed-enable-cb-desc-without-event-idx", f"{P}/driver#bounds", _proof(DRV, "enable_cb", "inv_driver_bounds"),
           f"{P}/driver#bounds", replace_fn(M, "packed_enable_cb", _enable_cb_desc_always), "synthetic"),
    Mutant("packed-get-used-keeps-id", f"{P}/driver#accounting", _proof(DRV, "get_used", "inv_driver_accounting"),
           f"{P}/driver#accounting", replace_fn(M, "packed_get_used", _get_used_keeps_id), "synthetic: id never freed"),
    Mutant("packed-push-used-unwrapped", f"{P}/device#bounds", _proof(DEV, "push_used", "inv_device_bounds"),
           f"{P}/device#bounds", replace_fn(M, "packed_push_used", _push_used_unwrapped),
           "synthetic: next_used runs past the ring end"),
    Mutant("packed-push-used-keeps-in-flight", f"{P}/device#in-flight", _proof(DEV, "push_used", "inv_device_in_flight"),
           f"{P}/device#in-flight", replace_fn(M, "packed_push_used", _push_used_keeps_in_flight), "synthetic"),
    Mutant("packed-walk-table-total-lost", f"{P}/walk#bounded", _proof(WALK, "table_desc", "inv_walk_bounded"),
           f"{P}/walk#bounded", replace_fn(M, "packed_walk_table_desc", _walk_table_total_lost), "synthetic"),
    Mutant("packed-get-used-skips-one", f"{P}/ring#order", _proof(RING, "get_used", "inv_ring_order"), f"{P}/ring#order",
           replace_fn(M, "ring_get_used", _get_used_skips_one),
           "synthetic: the driver skips one descriptor instead of the list's length (2.8.6)"),
    Mutant("packed-push-forgets-used-id", f"{P}/ring#ids", _proof(RING, "push_used", "inv_ring_ids"), f"{P}/ring#ids",
           replace_fn(M, "ring_push_used", _ring_push_forgets_done), "synthetic"),
    # ---- forms: what a transition computes over its slots = the whole-table form ------------------
    Mutant("packed-window-one-short", f"{P}/events#notify-rule",
           _form(DEV, "need_notify:in_window≡window_by_search"), f"{P}/events#notify-rule",
           replace_fn(M, "in_window", _window_one_short), "synthetic: off-by-one in the event window (lost notification)"),
    Mutant("packed-span-unclamped", f"{D_SG}#expose-first-last", _form(RING, "pop:lap_reads≡slot_in"),
           f"{D_SG}#expose-first-last", replace_fn(M, "span", _span_unclamped),
           "synthetic: a range split that reads past the queue size for an over-long list"),
    Mutant("packed-fill-no-flip-at-ring-end", f"{P}/ring#flags", _form(RING, "add:lap_fill≡slot_in"),
           f"{P}/ring#flags", replace_fn(M, "lap_fill", _fill_no_flip),
           "synthetic: the range update after the ring end keeps the old lap's AVAIL/USED polarity"),
    # ---- rules ----------------------------------------------------------------------------------
    Mutant("packed-add-reports-next", f"{P}/driver#add-rule", _proof(DRV, "add", "rule_add_publishes"),
           f"{P}/driver#add-rule", replace_fn(M, "packed_add", _add_reports_next), "synthetic"),
    Mutant("packed-get-used-reports-capacity", f"{P}/driver#get-used-rule",
           _proof(DRV, "get_used", "rule_get_used_validates"), f"{P}/driver#get-used-rule",
           replace_fn(M, "packed_get_used", _get_used_reports_capacity), "synthetic: buffer size instead of used length"),
    Mutant("packed-kick-ignores-event-wrap", f"{P}/events#kick-rule", _proof(DRV, "kick_prepare", "rule_kick_by_event"),
           f"{P}/events#kick-rule", replace_fn(M, "packed_kick_prepare", _kick_ignores_event_wrap),
           "synthetic: DESC offset compared without its wrap counter (lost or spurious kicks)"),
    Mutant("packed-pop-reports-next", f"{P}/device#pop-rule", _proof(DEV, "pop", "rule_pop_in_order"),
           f"{P}/device#pop-rule", replace_fn(M, "packed_pop", _pop_reports_next), "synthetic"),
    Mutant("packed-push-reports-next", f"{P}/device#push-used-rule", _proof(DEV, "push_used", "rule_push_used_skips"),
           f"{P}/device#push-used-rule", replace_fn(M, "packed_push_used", _push_reports_next), "synthetic"),
    Mutant("packed-notify-ignores-disable", f"{P}/events#notify-rule", _proof(DEV, "need_notify", "rule_notify_by_event"),
           f"{P}/events#notify-rule", replace_fn(M, "packed_need_notify", _notify_ignores_disable), "synthetic"),
    # ---- queue ready (the device's checks of the size and placement the driver chose) --------------
    Mutant("packed-queue-size-above-max", f"{P}/queue#num-max", f"{SC}:scenario_queue_size_above_max",
           f"{P}/queue#num-max", drop_guard(M, "packed_queue_ready", f"{P}/queue#num-max"),
           "issue 9: only 32768 bounded the size (QueueNumMax ignored)"),
    Mutant("packed-queue-size-zero", f"{P}/queue#size", f"{SC}:scenario_queue_size_range", f"{P}/queue#size",
           drop_guard(M, "packed_queue_ready", f"{P}/queue#size"), "vm-virtio 0.4 queue size 0 (#173)"),
    Mutant("packed-ring-misaligned-accepted", "VIRTIO/driver/Packed Virtqueues#align", f"{SC}:scenario_ring_misaligned",
           "VIRTIO/driver/Packed Virtqueues#align",
           drop_guard(M, "packed_queue_ready", "VIRTIO/driver/Packed Virtqueues#align"), "synthetic"),
    Mutant("packed-ring-outside-region", f"{P}/queue#in-region", f"{SC}:scenario_ring_outside_region",
           f"{P}/queue#in-region", drop_guard(M, "packed_queue_ready", f"{P}/queue#in-region"),
           "issue 9: a misplaced ring met later as a memory fault"),
    # ---- states built mid-stream (from_state): each check keeps its invariant, and refuses no legal state --
    Mutant("packed-from-state-driver-bounds-unchecked", f"{P}/driver#bounds",
           _proof(DRV + "_from_state", "init", "inv_driver_bounds"), f"{P}/driver#bounds",
           drop_guard(M, "packed_driver_state_check", f"{P}/driver#bounds"),
           "synthetic: a driver started outside the ring or with DESC without EVENT_IDX"),
    Mutant("packed-from-state-driver-accounting-unchecked", f"{P}/driver#accounting",
           _proof(DRV + "_from_state", "init", "inv_driver_accounting"), f"{P}/driver#accounting",
           drop_guard(M, "packed_driver_state_check", f"{P}/driver#accounting"),
           "issue 9: a driver started with an id outstanding twice"),
    Mutant("packed-from-state-driver-wrap-unchecked", f"{P}/driver#wrap-positions",
           _proof(DRV + "_from_state", "init", "inv_driver_wrap_positions"), f"{P}/driver#wrap-positions",
           drop_guard(M, "packed_driver_state_check", f"{P}/driver#wrap-positions"),
           "issue 9: a driver started with last_used not counting its outstanding descriptors"),
    Mutant("packed-from-state-wrap-check-slots-only", f"{P}/driver#wrap-positions",
           f"proof:{DRV}_from_state:from_state:invariants⇒packed_driver_state_check", f"{P}/driver#wrap-positions",
           replace_fn(M, "packed_driver_state_check", _wrap_check_ignores_wrap),
           "synthetic: positions compared without wrap counters (a full ring cannot be started from)"),
    Mutant("packed-from-state-device-bounds-unchecked", f"{P}/device#bounds",
           _proof(DEV + "_from_state", "init", "inv_device_bounds"), f"{P}/device#bounds",
           drop_guard(M, "packed_device_state_check", f"{P}/device#bounds"), "synthetic"),
    Mutant("packed-from-state-device-in-flight-unchecked", f"{P}/device#in-flight",
           _proof(DEV + "_from_state", "init", "inv_device_in_flight"), f"{P}/device#in-flight",
           drop_guard(M, "packed_device_state_check", f"{P}/device#in-flight"),
           "issue 9: a device started holding fewer descriptors than its positions say (CVE-2016-5403 class)"),
    # ---- legality vs exactness (docs/overview.md): legal, but not Linux 6.1.y's choice ----------
    Mutant("packed-kick-spurious-under-desc", f"{P}/events#kick-rule",
           f"proof:{DRV}:kick_prepare⊨exact_kick_only_at_event", f"{P}/events#kick-rule",
           replace_fn(M, "packed_kick_prepare", _kick_unless_disabled),
           "synthetic: kicks under DESC although the named position was not published"),
]
