"""Clauses of the swiotlb slot allocator (Linux kernel/dma/swiotlb.c 6.1.y; facts/upstream.md §0.4-0.5, §1, §6.1)."""
from . import register

_SRC = "linux-6.1.y kernel/dma/swiotlb.c (Debian linux-source-6.1 6.1.192); facts/upstream.md"
_SEED = "seed series 2020 (vatsa@codeaurora.org) patches 3-4; facts/upstream.md §0.4-0.5"
_FIX = "7c3940bf81e5 'swiotlb: fix the deadlock in swiotlb_do_find_slots' (6.3); facts/formal.md §5.4 #18"

register([
    # pool creation (swiotlb_init_io_tlb_mem, swiotlb_register_pool)
    ("SWIOTLB-pool-nslabs", "caller", _SEED, "§0.5 swiotlb_register_pool",
     "a pool has at least one slot (nslabs == 0 is -EINVAL), fits the model's slot table and does not wrap the address space"),
    ("SWIOTLB-pool-align", "caller", _SRC, "§1.4 swiotlb_init_io_tlb_mem",
     "a pool starts on a page boundary, so slot and page alignment of allocations are absolute"),
    ("SWIOTLB-pool-areas", "caller", _SRC, "§1.4 swiotlb_adjust_nareas / limit_nareas",
     "nareas is a power of two dividing nslabs into areas of whole segments (one area without areas support)"),
    ("SWIOTLB-pool-segments", "caller", _SEED, "§0.5, §1.4 list = SEGSIZE - offset(i)",
     "with unclamped list[] initialisation (5.7, 6.1) the pool must be whole segments, or list[] reaches past its end"),
    # search (swiotlb_find_slots / swiotlb_do_find_slots)
    ("SWIOTLB-find-empty", "caller", _SRC, "§1.9 BUG_ON(!nslots)",
     "a slot search for 0 bytes is a kernel BUG"),
    ("SWIOTLB-find-too-large", "caller", _SRC, "§1.1 max mapping, §1.9 note",
     "a request over IO_TLB_SEGSIZE slots can never be served (list[] never spans a segment)"),
    ("SWIOTLB-find-boundary-mask", "caller", _SRC, "§1.9 iommu_is_span_boundary BUG_ON",
     "the segment boundary window (boundary_mask + 1 in slots) must be a power of two"),
    ("SWIOTLB-find-no-termination", "exhausted", _FIX, "§1.9 6.1 do {} while (index != wrap)",
     "6.1.y's search would spin forever holding the area lock (no fit, and the +1/+stride walk never returns to its start); the model reports it"),
    ("SWIOTLB-find-full", "exhausted", _SRC, "§1.9 not_found",
     "no free, aligned, in-segment, in-window run was found: swiotlb buffer is full"),
    ("SWIOTLB-search-bounded", "rule", _FIX, "§6.1 I8",
     "every slot search ends after at most area_nslabs steps per area, whatever the pool holds"),
    # map (swiotlb_tbl_map_single, slot half)
    ("SWIOTLB-map-sizes", "caller", _SRC, "§1.6 step 3",
     "mapping_size must not exceed alloc_size (DMA_MAPPING_ERROR), and orig_addr is a physical address (< 2**52)"),
    # release (swiotlb_release_slots, seed swiotlb_free)
    ("SWIOTLB-release-no-pool", "caller", _SRC, "§1.10, §1.12 is_swiotlb_buffer",
     "the released address lies in no pool"),
    ("SWIOTLB-release-not-mapped", "caller", _SRC, "§1.10 (Linux does not check)",
     "the released address is not the start of a live allocation"),
    ("SWIOTLB-release-size", "caller", _SEED, "§0.4 swiotlb_free(pool, tlb_addr, alloc_size)",
     "the slots released must be exactly the allocation's (the seed trusts a caller-supplied size)"),
    # invariants (facts §6.1 I1-I4)
    ("SWIOTLB-geometry", "invariant", _SRC, "§1.2, §1.4",
     "1 <= nslabs <= table, areas of whole segments partition the pool, each area's index < area_nslabs and used <= area_nslabs; padding untouched"),
    ("SWIOTLB-list", "invariant", _SRC, "§1.3, §6.1 I1",
     "list[i] == 0 iff slot i is taken; a free slot's list is 1 + the next slot's when that is free in the same segment and pool, else 1"),
    ("SWIOTLB-used", "invariant", _SRC, "§1.2, §6.1 I2",
     "each area's used equals the number of taken slots in that area"),
    ("SWIOTLB-alloc-run", "invariant", _SRC, "§6.1 I3",
     "every taken slot belongs to exactly one allocation: a contiguous run of run[head] slots inside one segment (hence one area) of the pool"),
    ("SWIOTLB-slot-meta", "invariant", _SRC, "§1.2, §6.1 I4",
     "inside an allocation orig_addr and alloc_size step by IO_TLB_SIZE from slot to slot; free slots hold INVALID_PHYS_ADDR and 0"),
    # rules (legality: what any allocator may do)
    ("SWIOTLB-find-rule", "rule", _SRC, "§6.1 I3",
     "an accepted search takes exactly nr_slots(alloc_size) free slots of one segment, area and pool, and nothing else changes owner"),
    ("SWIOTLB-find-boundary-rule", "rule", _SRC, "§1.9 iommu_is_span_boundary",
     "an accepted run does not cross a boundary_mask + 1 DMA window"),
    ("SWIOTLB-find-align-rule", "rule", _SRC, "§1.5, §1.9, §6.1 I3",
     "an accepted run keeps orig_addr's min_align_mask bits at tlb_addr, is alloc_align_mask aligned, and page aligned for >= page requests without masks"),
    ("SWIOTLB-map-rule", "rule", _SRC, "§1.6 steps 5-6",
     "a mapping records orig_addr + i*IO_TLB_SIZE in its i-th slot and returns start + index*IO_TLB_SIZE + offset"),
    ("SWIOTLB-alloc-rule", "rule", _SRC, "§1.12 swiotlb_alloc; facts/formal.md §5.4 #19",
     "the memory swiotlb_alloc hands out lies inside the slots it allocated (no double allocation)"),
    ("SWIOTLB-release-rule", "rule", _SRC, "§1.10, §6.1 I5",
     "a release frees exactly the allocation's slots and leaves every other allocation alone"),
    ("SWIOTLB-release-undoes", "rule", _SRC, "§6.1 I5",
     "releasing what a search just took restores list[], used and the slot records"),
])

# Exact rules: the model's choice among the legal steps (docs/overview.md "Legality and exactness")
register([
    ("SWIOTLB-find-linux-6.1", "rule", _SRC, "swiotlb_find_slots / swiotlb_do_find_slots",
     "exact (Linux 6.1.y): a search is refused iff 6.1's area walk finds no run, else it answers the run that walk "
     "finds first; any other free, aligned, in-window run is legal but not 6.1's"),
])
