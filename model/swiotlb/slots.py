"""swiotlb slot search and release: Linux's allocator over a pool's ``list[]`` (facts §1.6, §1.9, §1.10).

``swiotlb_find_slots`` is the kernel's search for every policy (``policy.py``), written as a fixed
unrolled scan: each area is walked for at most ``pool_nslabs`` steps of the kernel's own index
sequence (+1 past a misaligned slot, +stride otherwise, wrap to 0 at the area end). Because that
sequence depends only on the request, never on ``list[]``, it returns to its start within
``area_nslabs`` steps or never: 6.1's unbounded ``do {} while (index != wrap)`` therefore ends here
either with Linux's exact choice, with "full", or with ``SWIOTLB-find-no-termination`` where the
kernel would spin forever holding the area lock (7c3940bf81e5, not in 6.1.y). That IS the bounded
search: each step is visited once, no loop over peer data is open-ended.

``swiotlb_tbl_map_slots`` is the slot half of ``swiotlb_tbl_map_single`` (size check, offset, search,
``orig_addr`` records, ``tlb_addr``); the bounce layer (``bounce.py``) adds the byte copies.
``swiotlb_alloc_slots`` is the slot half of ``swiotlb_alloc`` (coherent memory: ``orig_addr = 0``).
``swiotlb_release_slots`` returns an allocation and relinks the free runs of its segment.
Every function takes the ``Preset`` (segment size, table lengths) and an optional ``SwiotlbPolicy``
(each transition takes it as an argument; ``policy.require`` refuses a missing one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t1virtio.logic import CONCRETE
from t1virtio.preset import Preset
from t1virtio.state import evolve
from t1virtio.step import Step, apply, step
from t1virtio.swiotlb import policy as pol
from t1virtio.swiotlb import pool
from t1virtio.swiotlb.pool import (INVALID_PHYS_ADDR, IO_TLB_SHIFT, IO_TLB_SIZE, NO_ALLOC, U64, PoolState,
                                   const, nr_slots, shr, u64, umax)

DMA_BIT_MASK_64 = U64           # dma_get_seg_boundary() of a device without dma_parms: ULONG_MAX
U32 = (1 << 32) - 1             # min_align_mask and alloc_align_mask are unsigned int
MAX_PHYSMEM_BITS = 52           # arm64 with 52-bit PA: no original buffer lies above 2**52


@dataclass(frozen=True, slots=True)
class Request:
    """What the search is asked for, with the policy's derived masks (``swiotlb_do_find_slots`` locals)."""

    orig_addr: Any
    alloc_size: Any          # bytes including the min-align offset
    nslots: Any
    offset: Any              # swiotlb_align_offset(orig_addr)
    iotlb_align_mask: Any    # slot-address bits that must equal orig_addr's
    alloc_align_mask: Any    # slot-address bits that must be 0 (v6.9+ tests it; others rely on stride)
    stride: Any
    tbl_dma_addr: Any        # pool start & boundary_mask
    max_slots: Any           # boundary window in slots


@dataclass(frozen=True, slots=True)
class AreaResult:
    """Outcome of searching one area: found (at ``slot``) or hang."""

    found: Any
    hang: Any
    slot: Any


def get_max_slots(L: Any, boundary_mask: Any) -> Any:
    """Slots in one boundary window; ``ULONG_MAX`` means 2**53 (``get_max_slots``)."""
    return L.If(boundary_mask == U64, const(L, 1 << (64 - IO_TLB_SHIFT)), nr_slots(L, u64(L, boundary_mask + 1)))


def iommu_is_span_boundary(L: Any, index: Any, nr: Any, shift: Any, boundary_size: Any) -> Any:
    """Whether slots ``[index, index + nr)`` cross a ``boundary_size``-slot window (iommu-helper.h)."""
    return L.ULT(boundary_size, ((shift + index) & (boundary_size - 1)) + nr)


def compute_request(L: Any, preset: Preset, p: pol.SwiotlbPolicy, s: PoolState, orig_addr: Any,
                    alloc_size: Any, alloc_align_mask: Any, min_align_mask: Any, boundary_mask: Any) -> Request:
    """The search's derived values for policy ``p`` (facts §1.9, one block per version)."""
    page_mask = preset.page_size - 1
    page_factor = preset.page_size // IO_TLB_SIZE
    big = L.ULE(preset.page_size, alloc_size)
    low = IO_TLB_SIZE - 1
    if not p.uses_min_align:                      # seed-v5.7: no min_align_mask, no alloc_align_mask
        min_align_mask = alloc_align_mask = const(L, 0)
    if p.search in (pol.Search.V6_1, pol.Search.SEED_V5_7):
        a = alloc_align_mask | low
        iot = min_align_mask & L.BitNot(a, 64)
        stride = shr(L, iot, IO_TLB_SHIFT) + 1
        stride = L.If(big, umax(L, stride, stride * page_factor), stride)
        stride = umax(L, stride, shr(L, a, IO_TLB_SHIFT) + 1)
        align_test = const(L, 0)
    elif p.search is pol.Search.V6_3_TO_6_8:
        iot = min_align_mask | alloc_align_mask
        iot = L.If(big, iot | page_mask, iot) & L.BitNot(low, 64)
        stride = shr(L, iot, IO_TLB_SHIFT) + 1
        align_test = const(L, 0)
    else:                                         # v6.9+
        a = L.If(L.And(alloc_align_mask == 0, min_align_mask == 0, big), const(L, page_mask), alloc_align_mask) | low
        iot = min_align_mask & L.BitNot(a, 64)
        stride = get_max_slots(L, umax(L, a, iot))
        align_test = a
    tbl = s.start & boundary_mask
    return Request(orig_addr=orig_addr, alloc_size=alloc_size, nslots=nr_slots(L, alloc_size),
                   offset=pool.swiotlb_align_offset(L, orig_addr, min_align_mask), iotlb_align_mask=iot,
                   alloc_align_mask=align_test, stride=stride, tbl_dma_addr=tbl,
                   max_slots=get_max_slots(L, boundary_mask))


def is_misaligned(L: Any, q: Request, slot: Any) -> Any:
    """The search steps over ``slot`` by one: its DMA address breaks the request's alignment."""
    addr = pool.compute_slot_addr(L, q.tbl_dma_addr, slot)
    return L.Or(L.Not((addr & q.alloc_align_mask) == 0),
                L.And(L.Not(q.orig_addr == 0), L.Not((addr & q.iotlb_align_mask) == (q.orig_addr & q.iotlb_align_mask))))


def wrap_area_index(L: Any, s: PoolState, i: Any) -> Any:
    """``i >= area_nslabs ? 0 : i`` (an overshoot wraps to 0, not modulo)."""
    return L.If(L.ULE(s.area_nslabs, i), const(L, 0), i)


def search_steps(preset: Preset) -> int:
    """The search bound: steps walked per area. ``pool_nslabs >= area_nslabs`` covers every index the
    kernel's walk can reach (proofs/swiotlb.py, obligation ``swiotlb:search-bound-suffices``)."""
    return preset.pool_nslabs


def walk_step(L: Any, s: PoolState, q: Request, base: Any, index: Any) -> tuple:
    """One step of the kernel's walk from area-relative ``index``: (misaligned, step, next index)."""
    mis = is_misaligned(L, q, base + index)
    step_by = L.If(mis, const(L, 1), q.stride)
    return mis, step_by, wrap_area_index(L, s, index + step_by)


def search_start(L: Any, p: pol.SwiotlbPolicy, s: PoolState, a: int, q: Request) -> Any:
    """Where the walk of area ``a`` starts: ``ALIGN(area->index, stride)`` wrapped (6.1, 5.7) or the hint."""
    hint = s.area_index[a]
    if p.search in (pol.Search.V6_1, pol.Search.SEED_V5_7):
        return wrap_area_index(L, s, u64(L, (hint + q.stride - 1) & L.BitNot(q.stride - 1, 64)))
    return hint


def search_area(L: Any, preset: Preset, p: pol.SwiotlbPolicy, s: PoolState, a: int, q: Request) -> AreaResult:
    """Walk area ``a`` as the kernel does, at most ``search_steps`` steps (the search bound), stopping
    at the first fit (``L.loop``: concretely an early-exit loop, for z3 the unrolled chain)."""
    base = s.area_nslabs * a
    unbounded = p.search in (pol.Search.V6_1, pol.Search.SEED_V5_7)
    start = search_start(L, p, s, a, q)
    shift = nr_slots(L, q.tbl_dma_addr)

    def body(c: tuple) -> tuple:
        alive, index, checked, found, slot_found = c
        slot = base + index
        mis, step_by, nxt = walk_step(L, s, q, base, index)
        fits = L.And(L.Not(mis), L.Not(iommu_is_span_boundary(L, slot, q.nslots, shift, q.max_slots)),
                     L.ULE(q.nslots, L.at(s.list, slot)))
        hit = L.And(alive, fits)
        checked = checked + step_by
        more = L.Not(nxt == start) if unbounded else L.ULT(checked, s.area_nslabs)
        return (L.And(alive, L.Not(fits), more), nxt, checked, L.Or(found, hit), L.If(hit, slot, slot_found))
    alive = L.ULE(q.nslots, s.area_nslabs - s.area_used[a])
    alive, _, _, found, slot_found = L.loop(search_steps(preset), (alive, start, const(L, 0), False, const(L, 0)), body)
    return AreaResult(found=found, hang=alive if unbounded else False, slot=slot_found)


def relink_preceding(L: Any, preset: Preset, lst: Any, index: Any, count: Any) -> Any:
    """The kernel's backward walk: from ``index - 1`` while in the segment and free, ``list[i] = ++count``."""
    seg = preset.io_tlb_segsize                # k % seg is io_tlb_offset(k); the walk never leaves the segment
    return L.map_while_back(lst, index, lambda k, x: L.Not(x == 0) if k % seg != seg - 1 else False,
                            lambda k, x: count + (index - k))


def in_run(L: Any, lo: Any, n: Any, k: int) -> Any:
    """``lo <= k < lo + n`` for a constant slot ``k``."""
    return L.And(L.ULE(lo, k), L.ULT(k, lo + n))


def swiotlb_find_slots(L: Any, preset: Preset, s: PoolState, orig_addr: Any, alloc_size: Any,
                       alloc_align_mask: Any = 0, min_align_mask: Any = 0, boundary_mask: Any = U64,
                       cpu: Any = 0, policy: Any = None) -> Step:
    """Allocate ``nr_slots(alloc_size)`` slots (``alloc_size`` includes the offset); out = first slot.

    Areas are tried from ``cpu & (nareas - 1)`` round robin (``swiotlb_find_slots``); in each, the
    version's walk (``search_area``). Found: the run is taken (``occupy_run``).
    """
    p = pol.require(policy)
    M = preset.io_tlb_max_areas
    q = compute_request(L, preset, p, s, orig_addr, alloc_size, alloc_align_mask, min_align_mask, boundary_mask)
    searched: dict = {}

    def area(c: int) -> AreaResult:                # each area is searched at most once, and only if it exists
        if c not in searched:
            with L.assuming(L.ULT(c, s.nareas)):
                searched[c] = search_area(L, preset, p, s, c, q)
        return searched[c]
    first = cpu & (s.nareas - 1)

    def try_area(c: tuple) -> tuple:
        undecided, j, found, hang, slot = c
        a = u64(L, first + j) & (s.nareas - 1)
        r = L.cases(M, a, area)
        act = L.And(L.ULT(j, s.nareas), undecided)
        hit = L.And(act, r.found)
        return (L.And(undecided, L.Not(L.And(act, L.Or(r.found, r.hang)))), j + 1, L.Or(found, hit),
                L.Or(hang, L.And(act, r.hang)), L.If(hit, r.slot, slot))
    _, _, found, hang, slot = L.loop(M, (True, 0, False, False, const(L, 0)), try_area)
    n = q.nslots
    guards = [(L.Not(alloc_size == 0), "SWIOTLB-find-empty"),
              (L.ULE(alloc_size, preset.io_tlb_segsize * IO_TLB_SIZE), "SWIOTLB-find-too-large"),
              (pool.is_power_of_two(L, q.max_slots), "SWIOTLB-find-boundary-mask"),
              (L.Not(hang), "SWIOTLB-find-no-termination"),
              (found, "SWIOTLB-find-full")]
    return step(guards, L.effect(guards, lambda: occupy_run(L, preset, s, slot, n, alloc_size, q.offset), s), out=slot)


def is_free_run(L: Any, s: PoolState, index: Any, nslots: Any) -> Any:
    """Slots ``[index, index + nslots)`` are free and in one segment of the pool: the kernel's test
    ``nslots <= list[index]`` (with SWIOTLB-list, ``list[index]`` counts the free slots from ``index``
    to the end of its free run inside the segment)."""
    return L.And(L.ULT(index, s.nslabs), L.ULE(1, nslots), L.ULE(nslots, L.at(s.list, index)))


def occupy_run(L: Any, preset: Preset, s: PoolState, index: Any, nslots: Any, alloc_size: Any,
               offset: Any) -> PoolState:
    """The slot records after taking the free run ``[index, index + nslots)`` (6.1 ``found:`` block).

    ``list`` drops to 0 on the run and the free slots before it in the segment are relinked; slot
    ``index + j`` records ``alloc_size - offset - j * IO_TLB_SIZE`` bytes left; the ghost ``head``/``run``
    name the new allocation; the area holding ``index`` moves its hint past the run (0 at the area
    end) and counts ``nslots`` more used. Every allocation path (search, map, alloc) ends here.
    """
    M = preset.io_tlb_max_areas
    lst = L.fill(s.list, index, nslots, const(L, 0))

    def hint(c: int) -> Any:
        after = index - s.area_nslabs * c + nslots
        return L.If(L.ULT(after, s.area_nslabs), after, const(L, 0))
    top = u64(L, alloc_size - offset + index * IO_TLB_SIZE)      # what slot 0 would record
    return evolve(
        s, list=relink_preceding(L, preset, lst, index, const(L, 0)),
        alloc_size=L.map_range(s.alloc_size, index, nslots, lambda k, x: u64(L, top - k * IO_TLB_SIZE)),
        head=L.fill(s.head, index, nslots, index),
        run=L.update(s.run, index, nslots),
        area_index=tuple(L.If(pool.in_area(L, s, c, index), hint(c), s.area_index[c]) for c in range(M)),
        area_used=tuple(L.If(pool.in_area(L, s, c, index), s.area_used[c] + nslots, s.area_used[c])
                        for c in range(M)))


def record_orig(L: Any, preset: Preset, s: PoolState, index: Any, nslots: Any, orig_addr: Any) -> PoolState:
    """Slot ``index + j`` of a streaming mapping records ``orig_addr + j * IO_TLB_SIZE`` (§1.6 step 5)."""
    base = u64(L, orig_addr - index * IO_TLB_SIZE)                # what slot 0 would record
    return evolve(s, orig_addr=L.map_range(s.orig_addr, index, nslots, lambda k, x: u64(L, base + k * IO_TLB_SIZE)))


def select(L: Any, i: Any, values: list) -> Any:
    """``values[i]`` (the last one when ``i`` is out of range, as ``L.at``)."""
    return L.at(tuple(values), i)


def swiotlb_tbl_map_slots(L: Any, preset: Preset, s: PoolState, orig_addr: Any, mapping_size: Any,
                          alloc_size: Any, alloc_align_mask: Any = 0, min_align_mask: Any = 0,
                          boundary_mask: Any = U64, cpu: Any = 0, policy: Any = None) -> Step:
    """The slot half of ``swiotlb_tbl_map_single``: out = (first slot, tlb_addr) (facts §1.6 steps 3-6).

    ``mapping_size > alloc_size`` is refused; the search gets ``alloc_size + offset``; slot ``i`` of the
    mapping records ``orig_addr + i * IO_TLB_SIZE`` (the original address itself, not rounded down).
    """
    p = pol.require(policy)
    offset = pool.swiotlb_align_offset(L, orig_addr, min_align_mask) if p.uses_min_align else const(L, 0)
    total = u64(L, alloc_size + offset)
    found = swiotlb_find_slots(L, preset, s, orig_addr, total, alloc_align_mask, min_align_mask,
                               boundary_mask, cpu, p)
    idx, n = found.out, nr_slots(L, total)
    guards = [(L.And(L.ULE(mapping_size, alloc_size), L.ULT(orig_addr, 1 << MAX_PHYSMEM_BITS)), "SWIOTLB-map-sizes"),
              (L.ULE(alloc_size, preset.io_tlb_segsize * IO_TLB_SIZE), "SWIOTLB-find-too-large"), *found.guards]
    new = L.effect(guards, lambda: record_orig(L, preset, found.new, idx, n, orig_addr), s)
    return step(guards, new, out=(idx, u64(L, pool.compute_slot_addr(L, s.start, idx) + offset)))


def compute_alloc_align(L: Any, preset: Preset, p: pol.SwiotlbPolicy, size: Any) -> Any:
    """The alignment ``swiotlb_alloc`` asks for: 0, or ``(PAGE_SIZE << get_order(size)) - 1`` (6.9+)."""
    if p.alloc_align is pol.AllocAlign.NONE:
        return const(L, 0)
    mask = const(L, preset.page_size - 1)
    order_pages = preset.page_size
    while order_pages < preset.io_tlb_segsize * IO_TLB_SIZE:
        mask = L.If(L.ULT(order_pages, size), const(L, 2 * order_pages - 1), mask)
        order_pages *= 2
    return mask


def swiotlb_alloc_slots(L: Any, preset: Preset, s: PoolState, size: Any, min_align_mask: Any = 0,
                        boundary_mask: Any = U64, cpu: Any = 0, policy: Any = None) -> Step:
    """The slot half of ``swiotlb_alloc`` (coherent memory, restricted pools): out = (first slot, address).

    The search runs with ``orig_addr = 0`` (slots keep INVALID_PHYS_ADDR: nothing to bounce). The
    address is the page holding the first slot (``pfn_to_page``, 5.15-6.8) or the slot itself.
    """
    p = pol.require(policy)
    found = swiotlb_find_slots(L, preset, s, const(L, 0), size, compute_alloc_align(L, preset, p, size),
                               min_align_mask, boundary_mask, cpu, p)
    addr = pool.compute_slot_addr(L, s.start, found.out)
    if p.alloc_page is pol.AllocPage.PFN:
        addr = addr & L.BitNot(preset.page_size - 1, 64)
    return step(found.guards, L.effect(found.guards, lambda: found.new, s), out=(found.out, addr))


def following_free(L: Any, preset: Preset, s: PoolState, index: Any, nslots: Any) -> Any:
    """``list[index + nslots]`` when that slot is in the same segment, else 0 (release step 2)."""
    seg = preset.io_tlb_segsize
    seg_end = u64(L, index + seg) & L.BitNot(seg - 1, 64)          # ALIGN(index + 1, SEGSIZE)
    return L.If(L.ULT(index + nslots, seg_end), L.at_or(s.list, index + nslots, const(L, 0)), const(L, 0))


def swiotlb_release_slots(L: Any, preset: Preset, s: PoolState, tlb_addr: Any, min_align_mask: Any = 0,
                          size: Any = 0, policy: Any = None) -> Step:
    """Return the allocation holding ``tlb_addr`` (``swiotlb_release_slots``; seed ``swiotlb_free``).

    ``nslots`` comes from the first slot's ``alloc_size`` (5.12+) or from the caller's ``size``
    (seed). The run is relinked onto the free run that follows it in the segment, then the free
    slots before it in the segment are renumbered; ``orig_addr``/``alloc_size`` are cleared and the
    area's ``used`` drops. Linux checks nothing; the model refuses an address outside the pool, one
    that is not the start of a live allocation, and a size that is not the allocation's.
    """
    p = pol.require(policy)
    M = preset.io_tlb_max_areas
    offset = pool.swiotlb_align_offset(L, tlb_addr, min_align_mask) if p.uses_min_align else const(L, 0)
    index = pool.get_slot_index(L, s, tlb_addr, offset)
    if p.free_size is pol.FreeSize.RECORDED:
        nslots = nr_slots(L, u64(L, L.at(s.alloc_size, index) + offset))
    else:
        nslots = nr_slots(L, size)
    count = following_free(L, preset, s, index, nslots)
    guards = [(pool.is_swiotlb_buffer(L, s, tlb_addr), "SWIOTLB-release-no-pool"),
              (L.And(L.ULT(index, s.nslabs), L.at(s.head, index) == index), "SWIOTLB-release-not-mapped"),
              (nslots == L.at(s.run, index), "SWIOTLB-release-size")]

    def release() -> PoolState:
        lst = L.map_range(s.list, index, nslots, lambda k, x: count + (index + nslots - k))
        return evolve(
            s, list=relink_preceding(L, preset, lst, index, count + nslots),
            orig_addr=L.fill(s.orig_addr, index, nslots, const(L, INVALID_PHYS_ADDR)),
            alloc_size=L.fill(s.alloc_size, index, nslots, const(L, 0)),
            head=L.fill(s.head, index, nslots, const(L, NO_ALLOC)),
            run=L.update(s.run, index, const(L, 0)),
            area_used=tuple(L.If(pool.in_area(L, s, c, index), s.area_used[c] - nslots, s.area_used[c])
                            for c in range(M)))
    return step(guards, L.effect(guards, release, s), out=nslots)


# ---------------------------------------------------------------------------------------------
# Concrete wrapper (differential tests, the bounce layer's building block)

class SlotPool:
    """A concrete pool: its ``PoolState`` and the last step's ``out`` (for rule checks)."""

    def __init__(self, preset: Preset, start: int, nslabs: int, nareas: int = 1, policy: Any = pol.LINUX_6_1,
                 vaddr: int | None = None, primary_vaddr: int | None = None):
        self.preset, self.policy = preset, pol.require(policy)
        self.state, _ = apply(pool.swiotlb_init_pool(CONCRETE, preset, start, nslabs, nareas, vaddr,
                                                     primary_vaddr, policy), f"pool of {nslabs} slots at {start:#x}")
        self.last_out: Any = None

    def map(self, orig_addr: int, mapping_size: int, alloc_size: int | None = None, alloc_align_mask: int = 0,
            min_align_mask: int = 0, boundary_mask: int = U64, cpu: int = 0) -> int:
        """Map ``orig_addr``; return tlb_addr (raises the clause's error when refused)."""
        a = mapping_size if alloc_size is None else alloc_size
        sp = swiotlb_tbl_map_slots(CONCRETE, self.preset, self.state, orig_addr, mapping_size, a,
                                   alloc_align_mask, min_align_mask, boundary_mask, cpu, self.policy)
        self.last_out = sp.out
        self.state, (_, tlb) = apply(sp, f"map {a} bytes of {orig_addr:#x}")
        return tlb

    def alloc(self, size: int, min_align_mask: int = 0, boundary_mask: int = U64, cpu: int = 0) -> int:
        """Coherent allocation; return the address handed to the caller."""
        sp = swiotlb_alloc_slots(CONCRETE, self.preset, self.state, size, min_align_mask, boundary_mask, cpu,
                                 self.policy)
        self.last_out = sp.out
        self.state, (_, addr) = apply(sp, f"alloc {size} bytes")
        return addr

    def release(self, tlb_addr: int, min_align_mask: int = 0, size: int = 0) -> int:
        """Release the allocation at ``tlb_addr``; return the number of slots freed."""
        sp = swiotlb_release_slots(CONCRETE, self.preset, self.state, tlb_addr, min_align_mask, size, self.policy)
        self.last_out = sp.out
        self.state, n = apply(sp, f"release {tlb_addr:#x}")
        return n
