"""Virtio bounce DMA ops: every buffer the frontend hands to the device goes through the pool (facts §0.6, §1.12, §6.2).

The secondary's virtio devices get these ops (seed patch 5, ``virtio_dma_ops``) over one pool in
the shared region. Descriptors carry only DMA addresses of that pool, in one of two schemes
(``DmaPolicy.addressing``):

- ``OFFSET`` (seed): ``dma = tlb_addr - region base``; the backend sees region-relative addresses;
- ``IPA`` (mainline restricted-dma-pool): ``dma = phys_to_dma(tlb_addr)``, the secondary's IPA.

``map_page`` refuses more than ``max_mapping_size`` (seed: ``VIRTIO_MAX_BOUNCE_SIZE`` = 16 pages =
64 KiB, below swiotlb's 128 slots x 2 KiB); ``alloc`` (rings) rounds the size up to whole pages and
zeroes the memory it returns, as dma-direct does, unless the policy says otherwise (the seed did
neither: stale bytes of an earlier mapping reach the ring).
Address translation refuses a DMA address outside the region (``VIRTIO-BOUNCE-dma-addr``).
"""
from __future__ import annotations

from dataclasses import dataclass

from t1virtio import errors
from t1virtio.swiotlb import bounce

OFFSET, IPA = "offset", "ipa"
VIRTIO_MAX_BOUNCE_SIZE = 16 * 4096      # seed: 16 * PAGE_SIZE
DMA_ADDR = "VIRTIO-BOUNCE-dma-addr"
MAX_MAPPING = "VIRTIO-BOUNCE-max-mapping"


@dataclass(frozen=True, slots=True)
class DmaPolicy:
    """How the ops address the region and bound mappings (a policy, DESIGN.md §3)."""

    addressing: str = OFFSET
    max_mapping_size: int = VIRTIO_MAX_BOUNCE_SIZE
    zero_coherent: bool = True            # dma-direct memsets coherent memory; the seed did not
    page_align_coherent: bool = True      # dma-direct allocates PAGE_ALIGN(size); the seed passed size as is


SEED = DmaPolicy(addressing=OFFSET, zero_coherent=False, page_align_coherent=False)
RESTRICTED_DMA = DmaPolicy(addressing=IPA)


class VirtioBounceOps:
    """The DMA ops of one secondary's virtio devices over ``pool`` (a ``bounce.SwiotlbPool``) of ``swiotlb``.

    ``region_base`` is the shared region's address in the secondary (the pool starts there) and
    ``region_size`` its size; ``orig`` arguments are addresses in the secondary's private memory.
    """

    def __init__(self, swiotlb: "bounce.Swiotlb", pool: "bounce.SwiotlbPool", region_base: int,
                 region_size: int, policy: DmaPolicy = DmaPolicy()):
        self.swiotlb, self.pool, self.policy = swiotlb, pool, policy
        self.region_base, self.region_size = region_base, region_size

    # address translation
    def to_dma(self, tlb_addr: int) -> int:
        """Return the DMA address the device sees for pool address ``tlb_addr``."""
        return tlb_addr - self.region_base if self.policy.addressing == OFFSET else tlb_addr

    def to_tlb(self, dma: int, size: int = 1) -> int:
        """Return the pool address of DMA address ``dma``; refuse one outside the region."""
        off = dma if self.policy.addressing == OFFSET else dma - self.region_base
        if not (0 <= off and size >= 0 and off + max(size, 1) <= self.region_size):
            raise errors.fail(DMA_ADDR, f"dma {dma:#x} (+{size}) is outside the region of {self.region_size:#x} bytes "
                                        f"({self.policy.addressing} addressing)")
        return self.region_base + off

    def region_offset(self, dma: int) -> int:
        """Return where DMA address ``dma`` lies in the region (what the backend indexes its view with)."""
        return self.to_tlb(dma) - self.region_base

    def max_mapping_size(self) -> int:
        return self.policy.max_mapping_size

    # streaming mappings
    def map_page(self, orig: int, size: int, dir: int, attrs: int = 0) -> int:
        """Bounce ``size`` bytes at ``orig`` into the pool; return their DMA address."""
        if size > self.policy.max_mapping_size:
            raise errors.fail(MAX_MAPPING, f"{size} bytes > max mapping size {self.policy.max_mapping_size}")
        tlb = self.swiotlb.map_single(self.pool, orig, size, dir, attrs=attrs)
        return self.to_dma(tlb)

    def unmap_page(self, dma: int, size: int, dir: int, attrs: int = 0) -> None:
        self.swiotlb.unmap_single(self.to_tlb(dma, size), size, dir, attrs=attrs)

    def sync_single_for_cpu(self, dma: int, size: int, dir: int) -> None:
        self.swiotlb.sync_single_for_cpu(self.to_tlb(dma, size), size, dir)

    def sync_single_for_device(self, dma: int, size: int, dir: int) -> None:
        self.swiotlb.sync_single_for_device(self.to_tlb(dma, size), size, dir)

    # coherent memory (rings)
    def alloc(self, size: int) -> tuple[int, int]:
        """Allocate coherent memory; return (address in the secondary's view, DMA address)."""
        if self.policy.page_align_coherent:
            page = self.pool.preset.page_size
            size = (size + page - 1) // page * page
        tlb = self.swiotlb.alloc(self.pool, size)
        vaddr = self.pool.tlb_vaddr(tlb)
        if self.policy.zero_coherent:
            self.pool.vview.write(vaddr, bytes(size))
        return vaddr, self.to_dma(tlb)

    def free(self, dma: int, size: int) -> None:
        if self.policy.page_align_coherent:
            page = self.pool.preset.page_size
            size = (size + page - 1) // page * page
        self.swiotlb.free(self.to_tlb(dma, size), size)
