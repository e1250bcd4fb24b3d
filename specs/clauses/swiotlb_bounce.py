"""Clauses of the swiotlb bounce layer and the virtio bounce DMA ops (facts/upstream.md §0.4, §0.6, §1.6-1.8, §1.11, §1.12, §6.1-6.2)."""
from . import register

_LX = "linux v6.1.y kernel/dma/swiotlb.c"
_SEED = "seed series [PATCH 5/5] drivers/virtio/virtio_bounce.c (vatsa, 2020)"
_CVE = "CVE-2022-0854: ddbd89deb7d3, aa6f8dcbab47, bddac7c1e02b, 901c7280ca0d"
_DEBUG = "linux v6.1.y kernel/dma/debug.c check_unmap / check_sync"

register([
    ("SWIOTLB-BOUNCE-dir", "caller", _LX, "swiotlb_tbl_map_single / sync / unmap (BUG_ON(!valid_dma_direction))",
     "a bounce direction is DMA_TO_DEVICE, DMA_FROM_DEVICE or DMA_BIDIRECTIONAL; DMA_NONE and unknown values are refused"),
    ("SWIOTLB-BOUNCE-no-pool", "caller", _LX, "is_swiotlb_buffer / swiotlb_find_pool",
     "unmap, sync and free take an address inside a registered pool"),
    ("SWIOTLB-BOUNCE-not-mapped", "caller", _DEBUG, "check_unmap: 'device driver tries to free DMA memory it has not allocated'",
     "unmap and sync take the address a live streaming mapping returned; free takes a live coherent allocation"),
    ("SWIOTLB-BOUNCE-unmap-size", "caller", _DEBUG, "check_unmap: 'frees DMA memory with different size'",
     "unmap gives the size and direction the mapping was made with"),
    ("SWIOTLB-BOUNCE-sync-range", "caller", _LX, "swiotlb_bounce: 'Access before mapping start' / 'Buffer overflow'",
     "a sync window [tlb_addr, tlb_addr+size) lies inside the mapping (6.1 warns and clamps; the model refuses)"),
    ("SWIOTLB-BOUNCE-copy-inside", "rule", _LX, "swiotlb_bounce (facts §6.1 I6)",
     "every bounce copy stays inside the mapping's slots and inside the caller's buffer"),
    ("SWIOTLB-BOUNCE-direction", "rule", _LX + "; " + _CVE, "facts §1.11 unmap/sync per direction table",
     "map fills the slot per the map-bounce policy; sync_for_device copies orig->slot only for TO_DEVICE/BIDIRECTIONAL "
     "(never FROM_DEVICE: ath9k); sync_for_cpu and unmap copy slot->orig only for FROM_DEVICE/BIDIRECTIONAL"),
    ("SWIOTLB-BOUNCE-transparent", "invariant", _CVE, "901c7280ca0d 'swiotlb must be transparent'",
     "after sync_for_cpu/unmap the caller's buffer holds what the device wrote where it wrote and its own bytes elsewhere "
     "(zeros elsewhere under the zero-fill policy for FROM_DEVICE); the device sees what the caller bounced"),
    ("SWIOTLB-BOUNCE-no-stale", "invariant", _CVE, "ddbd89deb7d3 'fix info leak with DMA_FROM_DEVICE'",
     "a caller never receives bytes of an earlier mapping: only its own bytes, zeros, or what the device wrote during this mapping"),
    ("SWIOTLB-BOUNCE-no-export", "invariant", "DESIGN.md §4; seed cover letter (private memory)", "information flow through bounce buffers",
     "the primary only observes bytes the secondary exported: bounced TO_DEVICE/BIDIRECTIONAL, or written into coherent memory"),
    ("VIRTIO-BOUNCE-max-mapping", "caller", _SEED, ".max_mapping_size = VIRTIO_MAX_BOUNCE_SIZE (16 pages)",
     "map_page of more than the DMA ops' max mapping size (seed: 64 KiB) is refused"),
    ("VIRTIO-BOUNCE-dma-addr", "caller", _SEED + "; linux restricted-dma-pool", "unmap_page / free: base + dma",
     "a DMA address given back to the ops lies inside the shared region (offset < size, or an IPA of the region)"),
    ("VIRTIO-BOUNCE-in-region", "invariant", _SEED, "facts §6.2",
     "every DMA address handed to the device is a live allocation whose [dma, dma+size) lies inside the shared region"),
])

# Legality of the map-time fill (the policy's choice is SWIOTLB-BOUNCE-direction, exact)
register([
    ("SWIOTLB-BOUNCE-map-fill-safe", "rule", _LX + "; Documentation/core-api/dma-api.rst", "facts §1.8, §1.11",
     "a map copies the caller's data for TO_DEVICE/BIDIRECTIONAL (may skip it under DMA_ATTR_SKIP_CPU_SYNC); "
     "for FROM_DEVICE it copies orig -> slot, zeroes the slot or copies nothing; it never writes the caller's buffer"),
])
