"""Split-virtqueue mutants: the historical bugs of facts/formal.md §5.1-§5.2, and one per other clause."""
from __future__ import annotations

from dataclasses import replace

from . import Mutant, drop_guard, patches, replace_fn

M = "t1virtio.virtio.split"
C = "t1virtio.virtio.chain"
S = "scenario:test_virtio_split:"
DRV, DEV, PAIR, WALK = "proof:virtio_split.driver:", "proof:virtio_split.device:", "proof:virtio_split:", \
    "proof:virtio_split.chain:"

LOOP = "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table#loop"
TOTAL_LEN = "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table#total-len"
IND = "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#"
ORDER = "VIRTIO/driver/Message Framing#order"
AVAIL_IDX = "VIRTIO/driver/Virtqueues/The Virtqueue Available Ring#idx"
USED_LEN = "VIRTIO/device/Virtqueues/The Virtqueue Used Ring#len"
KICK = "VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression#notify"
IRQ = "VIRTIO/device/Virtqueues/Used Buffer Notification Suppression#notify"
AVAIL_FLAGS = "VIRTIO/driver/Virtqueues/Used Buffer Notification Suppression#flags"
USED_FLAGS = "VIRTIO/device/Virtqueues/Available Buffer Notification Suppression#flags"
QNM = "VIRTIO/driver/Virtio Over MMIO/MMIO Device Register Layout#queue-num-max"


def _with_new(fn):
    """Return a replace_fn body that edits the step's new state with ``fn(L, old, new, *args)``."""
    def body(orig, L, s, *a, **k):
        sp = orig(L, s, *a, **k)
        return replace(sp, new=fn(L, s, sp.new, *a, **k))
    return body


def _pop_empty_by_compare(orig, L, v, avail_idx, head, wlen):
    """'avail_idx > last_avail' as the emptiness test: after 65536 buffers the device sees an empty ring."""
    sp = orig(L, v, avail_idx, head, wlen)
    guards = tuple((L.ULT(v.last_avail, avail_idx), c) if c == "VIRTIO/model/avail#empty" else (g, c)
                   for g, c in sp.guards)
    return replace(sp, guards=guards)


def _no_walk_bound(orig, size):
    return 1 << 30


def _walk_ttl_reset_too_far(orig, L, w, length, flags, next, in_region):
    sp = orig(L, w, length, flags, next, in_region)
    return replace(sp, new=replace(sp.new, ttl=L.If(sp.new.in_table, sp.new.table_len + 1, sp.new.ttl)))


def _walk_ttl_not_spent(orig, L, w, length, flags, next, in_region):
    sp = orig(L, w, length, flags, next, in_region)
    return replace(sp, new=replace(sp.new, ttl=L.If(sp.new.in_table == w.in_table, w.ttl, sp.new.ttl)))


def _walk_table_len_bounded(orig, L, w, length, flags, next, in_region):
    """The old check: an indirect table of more than queue-size entries is refused, whatever its chain."""
    sp = orig(L, w, length, flags, next, in_region)
    big = L.And((flags & 4) != 0, L.ULT(w.size, L.div(length, 16)))
    return replace(sp, guards=tuple(sp.guards) + ((L.Not(big), IND + "chain-len"),))


def _walk_ttl_table_len(orig, L, w, length, flags, next, in_region):
    sp = orig(L, w, length, flags, next, in_region)
    return replace(sp, new=replace(sp.new, ttl=L.If(L.And(sp.new.in_table, L.Not(w.in_table)), sp.new.table_len,
                                                     sp.new.ttl)))


def _walk_total_below_2_32(orig, L, w, length, flags, next, in_region):
    """'fewer than 2^32 bytes': the chain of exactly 2^32 bytes is refused."""
    sp = orig(L, w, length, flags, next, in_region)
    direct = (flags & 4) == 0
    return replace(sp, guards=tuple(sp.guards) + ((L.Implies(direct, L.ULE(w.total + length, (1 << 32) - 1)),
                                                   TOTAL_LEN),))


def _kick_never(orig, L, d, avail_event, used_flags):
    return replace(orig(L, d, avail_event, used_flags), out=False)


def _notify_window_empty(orig, L, v, used_event, avail_flags):
    """Decide on the window [used_idx, used_idx): the used_event test never fires (a lost interrupt)."""
    sp = orig(L, v, used_event, avail_flags)
    from t1virtio.virtio.notify import vring_need_event
    return replace(sp, out=L.If(v.event_idx, vring_need_event(L, used_event, v.used_idx, v.used_idx), sp.out))


def _get_used_len_lost(orig, L, d, used_idx, id, length):
    sp = orig(L, d, used_idx, id, length)
    return replace(sp, out=(sp.out[0], 0))


def _pop_wrong_head(orig, L, v, avail_idx, head, wlen):
    sp = orig(L, v, avail_idx, head, wlen)
    return replace(sp, out=head + 1)



def _kick_always(orig, L, d, avail_event, used_flags):
    """A spurious kick after every publish: legal (the spec's SHOULD NOT), not Linux's choice."""
    return replace(orig(L, d, avail_event, used_flags), out=True)


MUTANTS = [
    # -- historical bugs (facts/formal.md §5.1, §5.2)
    Mutant("split-index-compare-without-wrap", "VIRTIO/model/index#u16",
           DEV + "pop_avail⊨rule_pop_avail_takes_next_head", "VIRTIO/model/rule#pop-avail",
           replace_fn(M, "pop_avail", _pop_empty_by_compare),
           "ring indices compared as integers, not mod 2^16: the device stalls after 65536 buffers "
           "(machine:split also finds it from its near-65535 starts, in about 90 s with shrinking)"),
    Mutant("split-unbounded-chain-walk", LOOP, S + "descriptor_loop_is_refused", LOOP,
           patches(drop_guard(C, "walk_step", LOOP), replace_fn(C, "walk_bound", _no_walk_bound)),
           "QEMU CVE-2016-6490 class / vhost: a descriptor loop hangs a walk without ttl"),
    Mutant("split-nested-indirect-accepted", IND + "nested", S + "nested_indirect_is_refused", IND + "nested",
           drop_guard(C, "walk_step", IND + "nested"), "vm-virtio issue #95; vringh 'Multilevel indirect'"),
    Mutant("split-indirect-len-unchecked", "VIRTIO/model/chain#table-len",
           S + "indirect_len_not_multiple_of_16_is_refused", "VIRTIO/model/chain#table-len",
           drop_guard(C, "walk_step", "VIRTIO/model/chain#table-len"), "vringh 'Strange indirect len'"),
    Mutant("split-avail-idx-runs-ahead", AVAIL_IDX, S + "avail_idx_jump_is_refused", AVAIL_IDX,
           drop_guard(M, "pop_avail", AVAIL_IDX), "QEMU CVE-2016-5403; rust-vmm/vm-virtio PR #196"),
    Mutant("split-total-len-overflow", TOTAL_LEN, S + "total_length_overflow_is_refused", TOTAL_LEN,
           drop_guard(C, "walk_step", TOTAL_LEN), "vm-virtio chain.rs u32 overflow check; OpenBSD vmd 0759b25c"),
    Mutant("split-driver-trusts-used-id", "VIRTIO/model/used#id", S + "used_id_not_in_flight_is_refused",
           "VIRTIO/model/used#id", drop_guard(M, "get_used", "VIRTIO/model/used#id"),
           "Linux BAD_RING 'id is not a head' (confidential-guest hardening)"),
    Mutant("split-driver-trusts-used-len", USED_LEN, S + "used_len_larger_than_buffer_is_refused", USED_LEN,
           drop_guard(M, "get_used", USED_LEN), "CVE-2021-47352: virtio-net trusted the used len"),
    # -- chain walk, one per clause
    Mutant("split-indirect-without-feature", IND + "feature", S + "indirect_without_feature_is_refused",
           IND + "feature", drop_guard(C, "walk_step", IND + "feature"), "synthetic"),
    Mutant("split-indirect-table-too-long", IND + "chain-len", S + "indirect_chain_longer_than_queue_is_refused",
           IND + "chain-len", drop_guard(C, "walk_step", IND + "chain-len"), "synthetic"),
    Mutant("split-indirect-table-bounded-by-queue", IND + "chain-len",
           S + "long_indirect_table_with_short_chain_is_accepted", IND + "chain-len",
           replace_fn(C, "walk_step", _walk_table_len_bounded),
           "issue 9: the table's len/16 (not its chain) held to the queue size refuses a legal 256-entry table"),
    Mutant("split-indirect-ttl-is-table-len", "VIRTIO/model/chain#ttl", WALK + "walk_step⊢inv_walk_bounded",
           "VIRTIO/model/chain#ttl", replace_fn(C, "walk_step", _walk_ttl_table_len),
           "synthetic: a long table's walk bounded by its length (2^28 reads), not by the chain's"),
    Mutant("split-total-len-below-2-32", TOTAL_LEN, S + "chain_of_exactly_2_32_bytes_is_accepted", TOTAL_LEN,
           replace_fn(C, "walk_step", _walk_total_below_2_32),
           "issue 9: 'fewer than 2^32' refuses the legal chain of exactly 2^32 bytes"),
    Mutant("split-used-len-not-capped", "VIRTIO/model/index#u16", DEV + "add_used⊢inv_device_indices_u16",
           "VIRTIO/model/index#u16", replace_fn(M, "add_used", _with_new(lambda L, v, n, *a, **k: replace(
               n, used_len=L.update(v.used_len, L.mod(v.used_idx, v.size), k["length"])))),
           "synthetic: 2^32 written, 2^32 put in a le32 len"),
    # -- queue configuration (the device's checks when the driver makes the queue ready)
    Mutant("split-queue-size-above-max", QNM, S + "queue_size_above_device_max_is_refused", QNM,
           drop_guard(M, "queue_ready", QNM), "issue 9: only 32768 bounded the size"),
    Mutant("split-queue-size-not-pow2", "VIRTIO/model/queue#size-pow2", S + "queue_size_not_a_power_of_two_is_refused",
           "VIRTIO/model/queue#size-pow2", drop_guard(M, "queue_ready", "VIRTIO/model/queue#size-pow2"),
           "vm-virtio 0.4 queue size 0 (#173)"),
    Mutant("split-ring-misaligned-accepted", "VIRTIO/driver/Virtqueues#align", S + "misaligned_ring_is_refused_by_device",
           "VIRTIO/driver/Virtqueues#align", drop_guard(M, "queue_ready", "VIRTIO/driver/Virtqueues#align"),
           "synthetic"),
    Mutant("split-ring-outside-region", "VIRTIO/model/queue#in-region", S + "ring_outside_region_is_refused",
           "VIRTIO/model/queue#in-region", drop_guard(M, "queue_ready", "VIRTIO/model/queue#in-region"),
           "issue 9: a misplaced ring met later as a memory fault"),
    Mutant("split-indirect-with-next", IND + "indirect-next", S + "indirect_with_next_is_refused",
           IND + "indirect-next", drop_guard(C, "walk_step", IND + "indirect-next"), "vm-virtio issue #95"),
    Mutant("split-readable-after-writable", ORDER, S + "readable_after_writable_is_refused", ORDER,
           drop_guard(C, "walk_step", ORDER), "Kani firecracker-block-example (2.6.4.2 of 1.1)"),
    Mutant("split-next-out-of-range", "VIRTIO/model/chain#next-range", S + "next_out_of_range_is_refused",
           "VIRTIO/model/chain#next-range", drop_guard(C, "walk_step", "VIRTIO/model/chain#next-range"), "synthetic"),
    Mutant("split-buffer-outside-region", "VIRTIO/model/chain#in-region", S + "buffer_outside_region_is_refused",
           "VIRTIO/model/chain#in-region", drop_guard(C, "walk_step", "VIRTIO/model/chain#in-region"),
           "cloud-hypervisor #8197, #8232 (descriptor past the end of RAM)"),
    Mutant("split-walk-ttl-reset-too-far", "VIRTIO/model/chain#ttl", WALK + "walk_step⊢inv_walk_bounded",
           "VIRTIO/model/chain#ttl", replace_fn(C, "walk_step", _walk_ttl_reset_too_far), "synthetic"),
    Mutant("split-walk-ttl-not-spent", "VIRTIO/model/chain#progress", WALK + "walk_step⊨rule_walk_step_progress",
           "VIRTIO/model/chain#progress", replace_fn(C, "walk_step", _walk_ttl_not_spent), "synthetic"),
    # -- layout and the driver's caller
    Mutant("split-layout-unchecked", "VIRTIO/driver/Virtqueues#layout", S + "misaligned_layout_is_refused",
           "VIRTIO/driver/Virtqueues#layout", drop_guard(M, "check_layout", "VIRTIO/driver/Virtqueues#layout"),
           "vm-virtio 0.4 queue size 0 (#173)"),
    Mutant("split-add-any-sg-count", "VIRTIO/model/driver#sg-count", DRV + "add_buf⊨rule_add_buf_moves_chosen_descriptors",
           "VIRTIO/model/rule#add-buf", drop_guard(M, "add_buf", "VIRTIO/model/driver#sg-count"), "synthetic"),
    Mutant("split-add-used-descriptors", "VIRTIO/model/driver#alloc", DRV + "add_buf⊨rule_add_buf_moves_chosen_descriptors",
           "VIRTIO/model/rule#add-buf", drop_guard(M, "add_buf", "VIRTIO/model/driver#alloc"),
           "synthetic: a descriptor still in flight is reused"),
    Mutant("split-add-past-free", "VIRTIO/model/driver#no-space", DRV + "add_buf⊢inv_driver_free_count",
           "VIRTIO/model/ownership#free", patches(drop_guard(M, "add_buf", "VIRTIO/model/driver#no-space"),
                                                   drop_guard(M, "add_buf", "VIRTIO/model/driver#alloc")),
           "synthetic: no free-count check (alloc alone implies it, so both are dropped)"),
    Mutant("split-detach-anything", "VIRTIO/model/driver#detach", DRV + "detach_unused⊢inv_driver_in_flight",
           "VIRTIO/model/ownership#in-flight", drop_guard(M, "detach_unused", "VIRTIO/model/driver#detach"),
           "synthetic"),
    # -- states built mid-stream (from_state): each check cites the invariant it keeps
    Mutant("split-from-state-held-count-unchecked", "VIRTIO/model/ownership#device-held",
           S + "device_state_with_wrong_held_count_is_refused", "VIRTIO/model/ownership#device-held",
           drop_guard(M, "device_state_check", "VIRTIO/model/ownership#device-held"),
           "issue 9: a device started mid-stream holding fewer heads than its indices say"),
    Mutant("split-from-state-avail-window-unchecked", "VIRTIO/model/index#avail-window",
           S + "device_state_with_avail_seen_too_far_is_refused", "VIRTIO/model/index#avail-window",
           drop_guard(M, "device_state_check", "VIRTIO/model/index#avail-window"), "synthetic"),
    Mutant("split-from-state-in-flight-unchecked", "VIRTIO/model/ownership#in-flight",
           S + "driver_state_with_wrong_last_used_is_refused", "VIRTIO/model/ownership#in-flight",
           drop_guard(M, "driver_state_check", "VIRTIO/model/ownership#in-flight"), "synthetic"),
    # -- the driver against the used ring
    Mutant("split-get-used-when-empty", "VIRTIO/model/used#empty", DRV + "get_used⊨rule_get_used_frees_one_chain",
           "VIRTIO/model/rule#get-used", drop_guard(M, "get_used", "VIRTIO/model/used#empty"), "synthetic"),
    Mutant("split-used-idx-runs-ahead", "VIRTIO/model/used#idx", DRV + "get_used⊨rule_get_used_frees_one_chain",
           "VIRTIO/model/rule#get-used", drop_guard(M, "get_used", "VIRTIO/model/used#idx"), "synthetic"),
    Mutant("split-used-id-frees-non-head", "VIRTIO/model/ownership#in-flight", DRV + "get_used⊢inv_driver_in_flight",
           "VIRTIO/model/ownership#in-flight", drop_guard(M, "get_used", "VIRTIO/model/used#id"),
           "Linux BAD_RING, proved: freeing a non-head breaks the in-flight count"),
    # -- the device against the available ring, and its own caller
    Mutant("split-pop-when-empty", "VIRTIO/model/avail#empty", DEV + "pop_avail⊢inv_device_avail_window",
           "VIRTIO/model/index#avail-window", drop_guard(M, "pop_avail", "VIRTIO/model/avail#empty"), "synthetic"),
    Mutant("split-head-out-of-range", "VIRTIO/model/avail#head-range", DEV + "pop_avail⊢inv_device_held_count",
           "VIRTIO/model/ownership#device-held", drop_guard(M, "pop_avail", "VIRTIO/model/avail#head-range"),
           "vringh 'Guest says index > num'"),
    Mutant("split-head-popped-twice", "VIRTIO/model/device#inuse", DEV + "pop_avail⊢inv_device_held_count",
           "VIRTIO/model/ownership#device-held", drop_guard(M, "pop_avail", "VIRTIO/model/device#inuse"),
           "QEMU CVE-2016-5403 (inuse >= num); CVE-2021-3748 (a chain mapped twice)"),
    Mutant("split-add-used-unheld", "VIRTIO/model/device#held", DEV + "add_used⊢inv_device_held_count",
           "VIRTIO/model/ownership#device-held", drop_guard(M, "add_used", "VIRTIO/model/device#held"),
           "cloud-hypervisor #8401 class"),
    Mutant("split-add-used-overlong", "VIRTIO/model/device#used-len", PAIR + "add_used⊢inv_pair_lengths",
           "VIRTIO/model/ownership#lengths", drop_guard(M, "add_used", "VIRTIO/model/device#used-len"), "synthetic"),
    # -- invariants
    Mutant("split-avail-idx-no-wrap", "VIRTIO/model/index#u16", DRV + "add_buf⊢inv_driver_indices_u16",
           "VIRTIO/model/index#u16", replace_fn(M, "add_buf", _with_new(lambda L, d, n, *a, **k: replace(
               n, avail_idx=d.avail_idx + 1))), "synthetic: idx kept as an unbounded integer"),
    Mutant("split-avail-seen-ahead", "VIRTIO/model/index#avail-window", DEV + "pop_avail⊢inv_device_avail_window",
           "VIRTIO/model/index#avail-window", replace_fn(M, "pop_avail", _with_new(lambda L, v, n, *a, **k: replace(
               n, avail_seen=(a[0] if a else k["avail_idx"]) + v.size))), "synthetic"),
    Mutant("split-add-keeps-num-free", "VIRTIO/model/ownership#free", DRV + "add_buf⊢inv_driver_free_count",
           "VIRTIO/model/ownership#free", replace_fn(M, "add_buf", _with_new(lambda L, d, n, *a, **k: replace(
               n, num_free=d.num_free))), "synthetic"),
    Mutant("split-chain-of-wrong-head", "VIRTIO/model/ownership#chain", DRV + "add_buf⊢inv_driver_chains",
           "VIRTIO/model/ownership#chain", replace_fn(M, "add_buf", _with_new(lambda L, d, n, *a, **k: replace(
               n, chain_of=tuple(L.If(L.And(u, L.Not(o)), (k["head"] + 1) % d.size, c) for u, o, c in
                                 zip(n.in_use, d.in_use, n.chain_of))))), "synthetic"),
    Mutant("split-chain-record-stale", "VIRTIO/model/ownership#chain", DRV + "add_buf⊢inv_driver_chain_record",
           "VIRTIO/model/ownership#chain", replace_fn(M, "add_buf", _with_new(lambda L, d, n, *a, **k: replace(
               n, chain_sel=d.chain_sel))),
           "synthetic: the head's chain record is not written, so freeing the chain later frees other descriptors"),
    Mutant("split-get-used-keeps-last-used", "VIRTIO/model/ownership#in-flight", DRV + "get_used⊢inv_driver_in_flight",
           "VIRTIO/model/ownership#in-flight", replace_fn(M, "get_used", _with_new(lambda L, d, n, *a, **k: replace(
               n, last_used=d.last_used))), "synthetic"),
    Mutant("split-add-used-keeps-held", "VIRTIO/model/ownership#device-held", DEV + "add_used⊢inv_device_held_count",
           "VIRTIO/model/ownership#device-held", replace_fn(M, "add_used", _with_new(lambda L, v, n, *a, **k: replace(
               n, held=v.held))), "synthetic"),
    Mutant("split-avail-slot-off-by-one", "VIRTIO/model/ownership#exclusive", PAIR + "add_buf⊢inv_pair_exclusive",
           "VIRTIO/model/ownership#exclusive", replace_fn(M, "add_buf", _with_new(lambda L, d, n, *a, **k: replace(
               n, avail_ring=L.update(d.avail_ring, L.mod(d.avail_idx + 1, d.size), k["head"])))),
           "synthetic: the head lands in the wrong available slot"),
    Mutant("split-device-wlen-drift", "VIRTIO/model/ownership#lengths", PAIR + "pop_avail⊢inv_pair_lengths",
           "VIRTIO/model/ownership#lengths", replace_fn(M, "pop_avail", _with_new(lambda L, v, n, *a, **k: replace(
               n, wlen=tuple(w + 1 for w in n.wlen)))), "synthetic"),
    Mutant("split-disable-cb-flags-with-event-idx", AVAIL_FLAGS, DRV + "disable_cb⊢inv_driver_avail_flags",
           AVAIL_FLAGS, replace_fn(M, "disable_cb", _with_new(lambda L, d, n: replace(n, avail_flags=1))),
           "synthetic: flags = 1 although EVENT_IDX was negotiated (2.7.7.1#2)"),
    Mutant("split-disable-notify-flags-with-event-idx", USED_FLAGS, DEV + "disable_notify⊢inv_device_used_flags",
           USED_FLAGS, replace_fn(M, "disable_notify", _with_new(lambda L, v, n: replace(n, used_flags=1))),
           "synthetic: flags = 1 although EVENT_IDX was negotiated (2.7.10.2#2)"),
    # -- rules
    Mutant("split-add-skips-avail-ring", "VIRTIO/model/rule#add-buf", DRV + "add_buf⊨rule_add_buf_moves_chosen_descriptors",
           "VIRTIO/model/rule#add-buf", replace_fn(M, "add_buf", _with_new(lambda L, d, n, *a, **k: replace(
               n, avail_ring=d.avail_ring))), "synthetic"),
    Mutant("split-kick-never", KICK, DRV + "kick_prepare⊨rule_kick_when_device_asks", KICK,
           replace_fn(M, "kick_prepare", _kick_never), "synthetic: a lost kick"),
    Mutant("split-get-used-drops-len", "VIRTIO/model/rule#get-used", DRV + "get_used⊨rule_get_used_frees_one_chain",
           "VIRTIO/model/rule#get-used", replace_fn(M, "get_used", _get_used_len_lost), "synthetic"),
    Mutant("split-pop-returns-wrong-head", "VIRTIO/model/rule#pop-avail", DEV + "pop_avail⊨rule_pop_avail_takes_next_head",
           "VIRTIO/model/rule#pop-avail", replace_fn(M, "pop_avail", _pop_wrong_head), "synthetic"),
    Mutant("split-used-slot-off-by-one", "VIRTIO/model/rule#add-used", DEV + "add_used⊨rule_add_used_publishes_one_entry",
           "VIRTIO/model/rule#add-used", replace_fn(M, "add_used", _with_new(lambda L, v, n, *a, **k: replace(
               n, used_id=L.update(v.used_id, L.mod(v.used_idx + 1, v.size), k["id"])))), "synthetic"),
    Mutant("split-lost-used-notification", IRQ, DEV + "need_notify⊨rule_notify_when_driver_asks", IRQ,
           replace_fn(M, "need_notify", _notify_window_empty),
           "cloud-hypervisor PR #897 class: the used_event window test misses the event"),
    # -- legality vs exactness (docs/overview.md): legal, but not Linux 6.1.y's choice
    Mutant("split-kick-spurious", "VIRTIO/model/exact#kick-only-when-asked",
           DRV + "kick_prepare⊨exact_kick_only_when_asked", "VIRTIO/model/exact#kick-only-when-asked",
           replace_fn(M, "kick_prepare", _kick_always), "synthetic: kicks although the device suppressed notifications"),
]
