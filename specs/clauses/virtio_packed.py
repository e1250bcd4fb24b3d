"""Clauses of the packed virtqueue (virtio 1.3 §2.8; facts/formal.md §4.5, §5.2 #11).

Ids follow the virtio helpers' convention: ``VIRTIO/<driver|device>/<normative label>#<suffix>``
for the spec's normative blocks (the spec's own typo "PAcked" kept in the 2.8.16 label), and
``VIRTIO/model/packed/<topic>#<suffix>`` for model-level rules, invariants and hardening.
The ``section`` field carries ``virtio-1.3:<section>`` and the MUST number of facts/formal.md §4.5.
"""
from . import register

_SPEC = "oasis-tcs/virtio-spec packed-ring.tex"
_LINUX = "linux-6.1.y drivers/virtio/virtio_ring.c (packed)"
_MMIO = "oasis-tcs/virtio-spec transport-mmio.tex, transport-pci.tex (virtio 1.3 csd01)"
_D_SG = "VIRTIO/driver/Packed Virtqueues/Scatter-Gather Support"
_D_IND = "VIRTIO/driver/Packed Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors"
_V_DT = "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table"
_M = "VIRTIO/model/packed"

register([
    # ---- queue creation (both sides) -----------------------------------------------------------
    (f"{_M}/ring#queue-size", "caller", _SPEC, "virtio-1.3:2.8, 2.8.10.1",
     "a packed virtqueue has 1..32768 entries (2^15); the size need not be a power of two"),
    # ---- queue configuration: what the device checks when the driver makes the queue ready ------
    (f"{_M}/queue#size", "peer", _SPEC, "virtio-1.3:2.8 (desc.: packed virtqueues support up to 2^15 entries), "
     "2.8.10.1 (desc.: Queue Size need not be a power of 2); no normative sentence",
     "the queue size the driver wrote for a packed queue is 1..32768; it need not be a power of two"),
    (f"{_M}/queue#num-max", "peer", _MMIO, "virtio-1.3:4.2.2.2 (the driver MUST write to QueueNum a value <= "
     "QueueNumMax); 4.1.4.3 (PCI queue_size: the device's maximum on reset, the driver may only reduce it)",
     "the packed queue's size is at most the device's maximum (QueueNumMax / queue_size)"),
    ("VIRTIO/driver/Packed Virtqueues#align", "peer", _SPEC, "virtio-1.3:2.8.11 #1 (table in 2.8.10.1)",
     "the driver placed the descriptor ring at a multiple of 16 and the driver and device event suppression "
     "structures at multiples of 4 (the device's check at queue ready)"),
    (f"{_M}/queue#in-region", "peer", "DESIGN.md §2, §4 (rings live in the shared region)",
     "no normative sentence: virtio-1.3:2.8.10.1 (desc.: each part is physically contiguous in guest memory), 6 "
     "(VIRTIO_F_ACCESS_PLATFORM desc.: device access may be limited)",
     "the descriptor ring (16 x size bytes), Driver Area and Device Area (4 bytes each) lie wholly in the shared "
     "region, so a misplaced ring is refused at queue ready, never met later as a memory fault"),
    # ---- what the honest device refuses in a driver-written chain (driver MUSTs) ----------------
    (f"{_D_SG}#chain-too-long", "peer", _SPEC, "virtio-1.3:2.8.17 #2",
     "a descriptor list is no longer than the queue size (no loops); the device stops its walk at that bound"),
    (f"{_D_SG}#write-before-read", "peer", _SPEC, "virtio-1.3:2.8.17 #3",
     "device-writable elements come after every device-readable element of a buffer"),
    (f"{_D_SG}#expose-first-last", "peer", _SPEC, "virtio-1.3:2.8.17 #5, 2.8.1",
     "every descriptor of a list is available (AVAIL = wrap counter, USED = inverse) when its first one is"),
    (f"{_D_SG}#total-length", "peer", _SPEC, "virtio-1.3:2.8.17, 2.8.4 (split 2.7.5.2 #1)",
     "the elements of one buffer total at most 2^32 - 1 bytes (the used length is le32)"),
    (f"{_D_IND}#not-negotiated", "peer", _SPEC, "virtio-1.3:2.8.19 #1",
     "INDIRECT is set only if VIRTIO_F_INDIRECT_DESC was negotiated"),
    (f"{_D_IND}#nested", "peer", _SPEC, "virtio-1.3:2.8.19 #2",
     "no descriptor inside an indirect table has INDIRECT set (no nesting)"),
    (f"{_D_IND}#in-list", "peer", _SPEC, "virtio-1.3:2.8.19 #4",
     "an INDIRECT descriptor is never part of a NEXT-linked list (no NEXT on it, none before it)"),
    (f"{_D_IND}#chain-limit", "peer", _SPEC, "virtio-1.3:2.8.19 #3, 2.8.5",
     "an indirect table holds at most the device's limit of descriptors (the queue size when unlimited)"),
    (f"{_D_IND}#table-length", "peer", _SPEC, "virtio-1.3:2.8.7",
     "an indirect table's length is a non-zero multiple of 16 (len / sizeof(struct pvirtq_desc) entries)"),
    (f"{_M}/device#address-outside-region", "peer", "DESIGN.md §4 (hostile peers)", "virtio-1.3:2.8.4; DESIGN §4",
     "every element and indirect table the driver names lies inside the shared region"),
    (f"{_M}/ids#id-range", "peer", _SPEC, "virtio-1.3:2.8.6, 2.8.21.1",
     "a buffer id made available is below the queue size"),
    (f"{_M}/ids#id-in-flight", "peer", _SPEC, "virtio-1.3:2.8.6, 2.8.16 #2",
     "a buffer id is not made available again while the device still holds it"),
    (f"{_M}/device#in-flight-bound", "peer", "CVE-2016-5403 (QEMU virtqueue_pop)", "virtio-1.3:2.8.17 #4; formal §5.1 #1",
     "the device never holds more descriptors than the queue size"),
    # ---- what the honest driver refuses in a device-written used descriptor (device MUSTs) ------
    (f"{_V_DT}#used-flags", "peer", _SPEC, "virtio-1.3:2.8.15 #2-#3, 2.8.1",
     "at a live position a used descriptor has AVAIL = USED = the wrap counter; nothing is used where nothing was available"),
    (f"{_M}/ids#used-id-range", "peer", _LINUX, "virtio-1.3:2.8.6 (BAD_RING 'id out of range')",
     "a used descriptor names a buffer id below the queue size"),
    (f"{_M}/ids#used-id-not-outstanding", "peer", _LINUX, "virtio-1.3:2.8.6 (BAD_RING 'is not a head')",
     "a used descriptor names a buffer the driver made available and has not taken back"),
    (f"{_V_DT}#used-len", "peer", "CVE-2021-47352 (virtio-net used length)", "virtio-1.3:2.8.15 #1, 2.8.4",
     "a used length never exceeds the buffer's device-writable bytes"),
    # ---- own-caller errors and empty/full outcomes ---------------------------------------------
    (f"{_M}/driver#empty-buffer", "caller", _SPEC, "virtio-1.3:2.8",
     "a buffer has at least one element"),
    (f"{_D_SG}#ring-space", "exhausted", _SPEC, "virtio-1.3:2.8.17 #4",
     "the driver makes a list available only if the ring has room for all of it (-ENOSPC otherwise)"),
    (f"{_M}/driver#id-in-use", "caller", _LINUX, "virtio-1.3:2.8.21.1 (next free buffer id)",
     "the driver gives a new buffer an id below the queue size that is not outstanding"),
    (f"{_M}/driver#detached", "caller", _LINUX, "virtio-1.3:3.3.1",
     "after detach_unused (device reset) the queue takes no new buffers and reports no used ones"),
    (f"{_M}/driver#no-used", "exhausted", _SPEC, "virtio-1.3:2.8.22",
     "get_used finds nothing when the next descriptor is not used for the driver's wrap counter"),
    (f"{_M}/device#nothing-available", "exhausted", _SPEC, "virtio-1.3:2.8.15 #2",
     "the device uses a descriptor only once it sees it available for its wrap counter"),
    (f"{_M}/device#not-in-flight", "caller", _SPEC, "virtio-1.3:2.8.12 #2",
     "the device marks used only a buffer it holds"),
    (f"{_V_DT}#len-beyond-writable", "caller", _SPEC, "virtio-1.3:2.8.15 #1",
     "the device reports no more written bytes than the buffer's device-writable length"),
    (f"{_M}/events#mode", "caller", _SPEC, "virtio-1.3:2.8.10, 2.8.14",
     "an event suppression mode is ENABLE, DISABLE or DESC, and DESC only with VIRTIO_F_RING_EVENT_IDX"),
    # ---- invariants ----------------------------------------------------------------------------
    (f"{_M}/driver#bounds", "invariant", _LINUX, "virtio-1.3:2.8, 2.8.10",
     "driver positions lie in the ring, 0 <= num_free <= size, its event mode is valid (DESC only with EVENT_IDX)"),
    (f"{_M}/driver#accounting", "invariant", _LINUX, "virtio-1.3:2.8.17 #4, 2.8.6",
     "descriptors held by outstanding buffers plus num_free equal the queue size; each id is outstanding at most once"),
    (f"{_M}/driver#wrap-positions", "invariant", _SPEC, "virtio-1.3:2.8.1, 2.8.21.1",
     "the distance from (last_used, used wrap) to (next_avail, avail wrap) in 2N positions is the descriptors outstanding"),
    (f"{_M}/device#bounds", "invariant", _SPEC, "virtio-1.3:2.8, 2.8.10",
     "device positions lie in the ring and its published event mode is valid"),
    (f"{_M}/device#in-flight", "invariant", _SPEC, "virtio-1.3:2.8.1, 2.8.12, 2.8.17 #4",
     "descriptors of buffers in flight equal the distance from (next_used, used wrap) to (next_avail, avail wrap), at most the queue size"),
    (f"{_M}/walk#bounded", "invariant", "DESIGN.md §4", "virtio-1.3:2.8.17 #2, 2.8.19 #3",
     "a chain walk reads at most the queue size of ring descriptors and the limit of table entries, totalling < 2^32 bytes"),
    (f"{_M}/ring#order", "invariant", _SPEC, "virtio-1.3:2.8.1, 2.8.2, 2.8.6",
     "driver used <= device used <= device avail <= driver avail in ring order, each gap holding exactly its buffers' descriptors"),
    (f"{_M}/ring#ids", "invariant", _SPEC, "virtio-1.3:2.8.6",
     "a buffer the device holds or has used is outstanding at the driver with the same length; used slots name distinct used ids"),
    (f"{_M}/ring#flags", "invariant", _SPEC, "virtio-1.3:2.8.1 (AVAIL/USED vs wrap counters)",
     "live slots carry AVAIL = their lap's wrap counter, unconsumed ones USED = its inverse, free ones AVAIL = the inverse: "
     "the device sees available exactly what was published and the driver sees used only what was completed"),
    # ---- rules ---------------------------------------------------------------------------------
    (f"{_M}/driver#add-rule", "rule", _SPEC, "virtio-1.3:2.8.21.1, 2.8.17 #4",
     "an add is accepted iff the buffer fits in num_free with a free id; it makes that id outstanding with n "
     "descriptors and advances next_avail by n, flipping the wrap counter when it passes the ring end"),
    (f"{_M}/driver#get-used-rule", "rule", _SPEC, "virtio-1.3:2.8.22, 2.8.6",
     "get_used returns only an outstanding id with a length within its writable bytes, frees it and skips its descriptors"),
    (f"{_M}/events#kick-rule", "rule", _SPEC, "virtio-1.3:2.8.10, 2.8.21.2 (RING_EVENT_IDX)",
     "no kick under DISABLE; a kick under ENABLE; under DESC a kick iff the named descriptor was made available since the last kick"),
    (f"{_M}/device#pop-rule", "rule", _SPEC, "virtio-1.3:2.8.12 #1, 2.8.15 #2",
     "a pop takes the next available list in ring order: the id becomes held with its n descriptors, next_avail advances by n"),
    (f"{_M}/device#push-used-rule", "rule", _SPEC, "virtio-1.3:2.8.12 #2, 2.8.6",
     "marking a held buffer used writes one used descriptor at next_used and skips the buffer's n descriptors"),
    (f"{_M}/events#notify-rule", "rule", _SPEC, "virtio-1.3:2.8.10 (RING_EVENT_IDX)",
     "no used notification under DISABLE; one under ENABLE; under DESC iff the named descriptor was used since the last one"),
])
