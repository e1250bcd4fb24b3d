"""Clauses of the split virtqueue (virtio 1.3 §2.7; facts/formal.md §4.4, bug zoo §5.1-§5.2).

Ids: ``VIRTIO/<driver|device>/<normative label>#<suffix>`` name the party the normative block
binds (a hostile driver breaks a ``VIRTIO/driver/...`` clause and the honest device reports it);
``VIRTIO/model/...`` are model-level checks, invariants and rules that are not one MUST sentence.
The section field gives the virtio 1.3 section and the MUST number of facts/formal.md §4; a model-level
clause names the descriptive spec text it stands for ("desc."), or says "no normative sentence" and
what it rests on instead (a named policy, DESIGN.md, an implementation).
"""
from . import register

_SPEC = "oasis-tcs/virtio-spec split-ring.tex (virtio 1.3 csd01)"
_LINUX = "Linux 6.1 drivers/virtio/virtio_ring.c, drivers/vhost/vringh.c"
_QEMU = "QEMU hw/virtio/virtio.c (CVE-2016-5403 fix); rust-vmm/vm-virtio PR #196"
_MMIO = "oasis-tcs/virtio-spec transport-mmio.tex, transport-pci.tex (virtio 1.3 csd01)"
_MODEL = "t1virtio model (DESIGN.md §2, §4)"

register([
    # -- chain walk: what the honest device refuses in driver-written descriptors
    ("VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table#loop", "peer", _SPEC,
     "virtio-1.3:2.7.5.2#1, 2.7.5.3.1#3",
     "a chain has no loop: in the main table, or in an indirect table of at most queue-size entries, the walk reads "
     "at most as many descriptors as the table has (ttl)"),
    ("VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table#total-len", "peer", _SPEC, "virtio-1.3:2.7.5.2#1",
     "a chain describes at most 2^32 bytes in total (exactly 2^32 is legal; a device that writes all of a 2^32-byte "
     "writable part reports a used len of 2^32 - 1, the largest le32)"),
    ("VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#feature", "peer", _SPEC,
     "virtio-1.3:2.7.5.3.1#1", "VIRTQ_DESC_F_INDIRECT is set only if VIRTIO_F_INDIRECT_DESC was negotiated"),
    ("VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#nested", "peer", _SPEC,
     "virtio-1.3:2.7.5.3.1#2", "an indirect table holds no INDIRECT descriptor (one table per descriptor)"),
    ("VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#chain-len", "peer", _SPEC,
     "virtio-1.3:2.7.5.3.1#3", "the chain in an indirect table (entry 0 and its next links) has at most queue-size "
     "descriptors; the table itself may have more entries (len/16 of any size)"),
    ("VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#indirect-next", "peer", _SPEC,
     "virtio-1.3:2.7.5.3.1#4", "a descriptor never has both VIRTQ_DESC_F_INDIRECT and VIRTQ_DESC_F_NEXT"),
    ("VIRTIO/driver/Message Framing#order", "peer", _SPEC, "virtio-1.3:2.7.4.2#1",
     "every device-writable descriptor comes after every device-readable one"),
    ("VIRTIO/model/chain#next-range", "peer", _SPEC,
     "virtio-1.3:2.7.5 (desc.: the table has queue-size entries, chained via next), 2.7.5.3 (desc.: an indirect "
     "table has len/16 descriptors chained by next); no normative sentence",
     "a NEXT descriptor's next field indexes the table it is in (below queue size, or below len/16 in a table)"),
    ("VIRTIO/model/chain#table-len", "peer", _SPEC,
     "virtio-1.3:2.7.5.3 (desc.: struct indirect_descriptor_table holds desc[len / 16]); no normative sentence; "
     "vringh 'Strange indirect len'",
     "an indirect descriptor's len is a non-zero multiple of 16 (len/16 entries)"),
    ("VIRTIO/model/chain#in-region", "peer", _MODEL,
     "no normative sentence: the platform's limit on device access (virtio-1.3:6, VIRTIO_F_ACCESS_PLATFORM desc.: "
     "device access to memory may be limited) with DESIGN.md §2, §4 (the primary reaches only the shared region)",
     "every buffer and indirect table a descriptor names lies inside the shared region"),
    ("VIRTIO/model/chain#ttl", "invariant", "facts/formal.md §1.1 (vm-virtio ttl)",
     "virtio-1.3:2.7.5.2#1, 2.7.5.3.1#3 (the bounds the walk enforces)",
     "a walk has 0 <= ttl <= min(table length, queue size) (any indirect table length up to 2^32/16), and at most "
     "2^32 bytes so far"),
    ("VIRTIO/model/chain#progress", "rule", "facts/formal.md §1.1 (vm-virtio ttl)",
     "virtio-1.3:2.7.4.1 (the device MAY limit the descriptors it allows in a chain); 2.7.5.2#1",
     "each accepted read enters the indirect table once or spends one ttl: the walk ends within 2 * size + 1 reads"),
    # -- queue configuration: what the device checks when the driver makes the queue ready
    ("VIRTIO/driver/Virtio Over MMIO/MMIO Device Register Layout#queue-num-max", "peer", _MMIO,
     "virtio-1.3:4.2.2.2 (the driver MUST write to QueueNum a value <= QueueNumMax); 4.1.4.3 (PCI queue_size: the "
     "device's maximum on reset, the driver may only reduce it)",
     "the queue size the driver chose is at most the device's maximum (QueueNumMax / queue_size)"),
    ("VIRTIO/model/queue#size-pow2", "peer", _SPEC,
     "virtio-1.3:2.7 (desc.: 'Queue Size value is always a power of 2. The maximum Queue Size value is 32768'); "
     "no normative sentence",
     "a split queue's size is a power of two from 1 to 32768"),
    ("VIRTIO/driver/Virtqueues#align", "peer", _SPEC, "virtio-1.3:2.7.1#1",
     "the driver placed the table, available ring and used ring at multiples of 16, 2 and 4 (the device's check)"),
    ("VIRTIO/model/queue#in-region", "peer", _MODEL,
     "no normative sentence: virtio-1.3:2.7 (desc.: each part is physically contiguous in guest memory), 6 "
     "(VIRTIO_F_ACCESS_PLATFORM desc.: device access may be limited); DESIGN.md §2 (rings live in the shared region)",
     "when the driver makes the queue ready, its descriptor table, available ring and used ring lie inside the "
     "shared region (checked then, not at first access)"),
    # -- layout and the driver's own caller
    ("VIRTIO/driver/Virtqueues#layout", "caller", _SPEC, "virtio-1.3:2.7, 2.7.1#1",
     "the queue size is a power of two <= 32768 and the parts are aligned to 16 (table), 2 (avail), 4 (used)"),
    ("VIRTIO/model/driver#sg-count", "caller", _LINUX, "virtio-1.3:2.7.5.3.1#3, 2.7.5.2#1",
     "a buffer has 1..queue-size elements and fewer than 2^32 bytes (Linux BUG_ON(total_sg == 0))"),
    ("VIRTIO/model/driver#alloc", "caller", _LINUX, "virtio-1.3:2.7.13.1",
     "a buffer goes into free descriptors only, the head among them; an indirect table only if negotiated"),
    ("VIRTIO/model/driver#no-space", "exhausted", _LINUX,
     "no normative sentence (the driver's own allocator, Linux -ENOSPC); virtqueue_add_split",
     "a buffer needs as many free descriptors as it uses (-ENOSPC)"),
    ("VIRTIO/model/driver#detach", "caller", _LINUX,
     "virtio-1.3:3.3.1 (exposed buffers are taken back only after a reset); virtqueue_detach_unused_buf / "
     "virtqueue_reinit_split",
     "only a buffer in flight can be detached; a ring restarts only with every buffer back"),
    # -- what the honest driver refuses in device-written memory
    ("VIRTIO/model/used#empty", "exhausted", _LINUX, "no normative sentence (nothing to take); virtqueue_get_buf_ctx_split",
     "no used buffer is pending (used idx == last used)"),
    ("VIRTIO/model/used#idx", "peer", _SPEC,
     "virtio-1.3:2.7 (desc.: Queue Size is the most buffers queued), 2.7.8 (desc.: idx is where the device puts the "
     "next entry); no normative sentence",
     "the used idx runs at most as far ahead as the buffers in flight"),
    ("VIRTIO/model/used#id", "peer", _LINUX,
     "virtio-1.3:2.7.8 (desc.: id is the head of the used descriptor chain); no normative sentence; BAD_RING",
     "a used id is the head of a chain made available and not yet used"),
    ("VIRTIO/device/Virtqueues/The Virtqueue Used Ring#len", "peer", _SPEC, "virtio-1.3:2.7.8.2#2; CVE-2021-47352",
     "a used len is at most the buffer's device-writable bytes"),
    # -- what the honest device refuses in driver-written memory
    ("VIRTIO/driver/Virtqueues/The Virtqueue Available Ring#idx", "peer", _QEMU, "virtio-1.3:2.7.6.1#1",
     "the available idx never decreases and runs at most queue size ahead of the device"),
    ("VIRTIO/model/avail#empty", "exhausted", _LINUX, "no normative sentence (nothing to take); __vringh_get_head",
     "no available buffer is pending (avail idx == last avail)"),
    ("VIRTIO/model/avail#head-range", "peer", _LINUX,
     "virtio-1.3:2.7.6 (desc.: each ring entry refers to the head of a descriptor chain, an index of the "
     "queue-size table); no normative sentence; vringh 'Guest says index'",
     "an available ring entry is a descriptor index below the queue size"),
    ("VIRTIO/model/device#inuse", "peer", _QEMU,
     "no normative sentence: the model's policy HELD_HEAD_POLICY ('refuse'); nearest text virtio-1.3:2.7 (desc.: "
     "Queue Size is the most buffers queued at a time), 3.3.1 (exposed buffers stay as they are until used)",
     "policy: a head the device holds is not made available again (one buffer per head at a time), so the device "
     "holds at most queue-size buffers and never maps one chain twice"),
    # -- the device's own caller (its backend)
    ("VIRTIO/model/device#held", "caller", _LINUX,
     "virtio-1.3:2.7.8 (desc.: a used id is the head of a chain the driver made available); no normative sentence; "
     "vringh_complete",
     "the device returns only heads it holds"),
    ("VIRTIO/model/device#used-len", "caller", _SPEC, "virtio-1.3:2.7.8.2#2",
     "the device reports at most the writable bytes of the buffer as used len"),
    # -- invariants
    ("VIRTIO/model/index#u16", "invariant", _SPEC, "virtio-1.3:2.7.6, 2.7.8",
     "ring indices and event indices are u16 values (free-running, wrapping at 65536); used lens are le32 values"),
    ("VIRTIO/model/index#avail-window", "invariant", _QEMU, "virtio-1.3:2.7.6.1; CVE-2016-5403",
     "0 <= accepted avail idx - last avail <= queue size (mod 2^16)"),
    ("VIRTIO/model/ownership#free", "invariant", _LINUX, "virtio-1.3:2.7.13.1",
     "num_free counts exactly the descriptors on the driver's free list"),
    ("VIRTIO/model/ownership#chain", "invariant", _LINUX, "virtio-1.3:2.7.5",
     "every descriptor in use belongs to the chain of a head in use"),
    ("VIRTIO/model/ownership#in-flight", "invariant", _SPEC, "virtio-1.3:2.7.13",
     "avail idx - last used (mod 2^16) counts the heads in flight, at most queue size"),
    ("VIRTIO/model/ownership#device-held", "invariant", _QEMU, "virtio-1.3:2.7",
     "last avail - used idx (mod 2^16) counts the heads the device holds"),
    ("VIRTIO/model/ownership#exclusive", "invariant", _SPEC, "virtio-1.3:2.7.5.1, 2.7.8",
     "each head in flight is in exactly one place: the available window, held by the device, or the used window; "
     "used entries name heads made available and not yet used"),
    ("VIRTIO/model/ownership#lengths", "invariant", _SPEC, "virtio-1.3:2.7.8.2#2",
     "used lens and the device's writable lengths agree with the buffers the driver offered"),
    ("VIRTIO/driver/Virtqueues/Used Buffer Notification Suppression#flags", "invariant", _SPEC,
     "virtio-1.3:2.7.7.1#1, #2", "the driver writes avail flags 0 or 1, and 0 with EVENT_IDX"),
    ("VIRTIO/device/Virtqueues/Available Buffer Notification Suppression#flags", "invariant", _SPEC,
     "virtio-1.3:2.7.10.2#1, #2", "the device writes used flags 0 or 1, and 0 with EVENT_IDX"),
    # -- rules: what any conforming side may do in one step
    ("VIRTIO/model/rule#add-buf", "rule", _SPEC, "virtio-1.3:2.7.13",
     "add_buf moves exactly the chosen free descriptors to the device, puts the head in the next available slot "
     "and advances idx by one; refused only when malformed or out of descriptors"),
    ("VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression#notify", "rule", _SPEC,
     "virtio-1.3:2.7.10.1#3, #5", "the driver notifies when used flags are 0 (no EVENT_IDX) or when avail_event "
     "lies among the indices published since the last kick (EVENT_IDX)"),
    ("VIRTIO/model/rule#get-used", "rule", _SPEC, "virtio-1.3:2.7.8, 2.7.14",
     "get_used returns the next used entry, frees exactly its chain and advances last used; it accepts it iff "
     "the entry is pending, names a head in flight and reports at most its writable bytes"),
    ("VIRTIO/model/rule#pop-avail", "rule", _SPEC, "virtio-1.3:2.7.6, 2.7.13",
     "pop_avail takes exactly the next available head iff the idx is at most queue size ahead, the ring is not "
     "empty, and the head is in range and not held"),
    ("VIRTIO/model/rule#add-used", "rule", _SPEC, "virtio-1.3:2.7.8",
     "add_used writes (id, len) in the next used slot, advances used idx by one and releases the head"),
    ("VIRTIO/device/Virtqueues/Used Buffer Notification Suppression#notify", "rule", _SPEC,
     "virtio-1.3:2.7.7.2#2, #4", "the device notifies when avail flags are 0 (no EVENT_IDX) or when used_event "
     "lies among the used indices written since the last notification (EVENT_IDX)"),
])

# Exact rules: Linux 6.1.y's choice among the legal steps (docs/overview.md "Legality and exactness")
register([
    ("VIRTIO/model/exact#kick-only-when-asked", "rule", _LINUX, "virtqueue_kick_prepare_split; virtio-1.3:2.7.10.1",
     "exact (Linux 6.1.y): the driver kicks as vring_need_event (EVENT_IDX) or the used flags say, never when "
     "the device suppressed notifications; a spurious kick (a SHOULD NOT) is legal but not Linux's"),
])
