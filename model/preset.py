"""Presets: every size comes from here, never from literals in code (anchors lesson 2).

``SMALL`` keeps proofs and CI machines fast; ``LINUX`` carries the real constants.
"""
from __future__ import annotations

from dataclasses import dataclass

# Constants of the ABI, the same in every preset; defined here and nowhere else (tests/test_presets.py).
IO_TLB_SHIFT = 11               # include/linux/swiotlb.h: 2 KiB slots, a compile-time constant of every kernel
VIRTQUEUE_MAX_SIZE = 32768      # virtio 1.3 §2.7 / §2.8: a queue has at most 2^15 entries (split: a power of two)


@dataclass(frozen=True, slots=True)
class Preset:
    """Sizes of every modeled table."""

    name: str
    # hypervisor
    n_pages: int            # physical pages
    n_vms: int              # VM ids 0..n_vms-1; VM 0 is the primary
    page_size: int
    msgq_max_depth: int     # Gunyah MSGQUEUE_MAX_QUEUE_DEPTH - 1 = 255
    msgq_max_msg_size: int  # Gunyah MSGQUEUE_MAX_MAX_MSG_SIZE - 1 = 1023
    doorbell_bits: int      # width of doorbell flags (u64)
    max_parcels: int        # memory-parcel table entries (Gunyah MAX_MEMPARCEL_PER_VM = 64 per owner)
    # swiotlb
    io_tlb_segsize: int     # slots per segment (128)
    pool_nslabs: int        # slots of a pool in proofs/machines
    io_tlb_max_areas: int   # areas table length of a pool (power of two; Linux: roundup_pow_of_two(CPUs))
    # virtio
    queue_size: int         # default virtqueue size in proofs/machines
    max_queue_size: int     # the largest queue machines and benchmarks build (at most VIRTQUEUE_MAX_SIZE)

    def __post_init__(self) -> None:
        if not 1 <= self.queue_size <= self.max_queue_size <= VIRTQUEUE_MAX_SIZE:
            raise ValueError(f"preset {self.name}: queue sizes {self.queue_size} <= {self.max_queue_size} must lie in "
                             f"1..{VIRTQUEUE_MAX_SIZE} (virtio 1.3 §2.7)")
        if self.pool_nslabs % self.io_tlb_segsize or self.io_tlb_max_areas & (self.io_tlb_max_areas - 1):
            raise ValueError(f"preset {self.name}: a pool is whole segments and its area count a power of two")


SMALL = Preset(name="SMALL", n_pages=4, n_vms=3, page_size=4096, msgq_max_depth=4,
               msgq_max_msg_size=8, doorbell_bits=8, max_parcels=4, io_tlb_segsize=8,
               pool_nslabs=16, io_tlb_max_areas=2, queue_size=4, max_queue_size=VIRTQUEUE_MAX_SIZE)

# Linux's defaults: a 64 MiB default pool (IO_TLB_DEFAULT_SIZE = 32768 slots of 2 KiB, segments of
# 128), areas up to roundup_pow_of_two(CPUs) for 8 CPUs; virtqueues of 256 entries (virtio-net/blk
# defaults), up to the spec's 32768; Gunyah's message-queue limits; 64-bit doorbell flags.
LINUX = Preset(name="LINUX", n_pages=64, n_vms=3, page_size=4096, msgq_max_depth=255,
               msgq_max_msg_size=1023, doorbell_bits=64, max_parcels=64, io_tlb_segsize=128,
               pool_nslabs=32768, io_tlb_max_areas=8, queue_size=256, max_queue_size=VIRTQUEUE_MAX_SIZE)

PRESETS = {p.name: p for p in (SMALL, LINUX)}


def by_name(name: str) -> Preset:
    """The preset called ``name`` (case-insensitive); ``KeyError`` lists the known ones."""
    for p in PRESETS.values():
        if p.name.lower() == name.lower():
            return p
    raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(p.name.lower() for p in PRESETS.values())}")
