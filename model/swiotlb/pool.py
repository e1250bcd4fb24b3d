"""A swiotlb pool's slot metadata, exactly as Linux keeps it (struct io_tlb_mem; facts §1.1-1.4, §6.1).

State (``PoolState``), all 64-bit vectors in proofs (unsigned arithmetic, like the kernel's):
``start`` the pool's physical = DMA base (``io_tlb_mem.start``); ``vaddr`` and ``primary_vaddr`` the
owner's and the primary's views of the same bytes (seed patch 2: ``tlb_vaddr = vaddr + (tlb_addr -
start)``, non-linear); ``nslabs``, ``nareas``, ``area_nslabs``; per area ``area_index`` (next search
hint, area-relative) and ``area_used``; per slot ``list`` (free-run counter, 0 = allocated),
``orig_addr`` (INVALID_PHYS_ADDR when free or coherent) and ``alloc_size`` (bytes left to the end of
the allocation). Two ghost tables, not in Linux, name the allocation each slot belongs to, so the
invariants can speak of allocations: ``head`` (first slot, NO_ALLOC when free) and ``run`` (slot
count, at the head only).

Tables have the preset's fixed length (``pool_nslabs`` slots, ``io_tlb_max_areas`` areas); entries at
and beyond ``nslabs`` / ``nareas`` are padding that no operation touches. Every function takes the
``Preset`` whose constants (segment size, table lengths) it unrolls over.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t1virtio.preset import IO_TLB_SHIFT, LINUX, SMALL, Preset
from t1virtio.state import bits
from t1virtio.step import Step, step

IO_TLB_SIZE = 1 << IO_TLB_SHIFT         # 2 KiB slots (IO_TLB_SHIFT: include/linux/swiotlb.h, in preset.py)
INVALID_PHYS_ADDR = (1 << 64) - 1       # "slot has no original buffer" (~0)
NO_ALLOC = (1 << 64) - 1                # ghost head of a free slot
U64 = (1 << 64) - 1
W = 64                                  # width of every field and argument in proofs


@dataclass(frozen=True, slots=True)
class PoolState:
    """One pool (``struct io_tlb_mem`` + ``io_tlb_slot[]`` + ``io_tlb_area[]``) plus two ghost tables."""

    start: int = bits(W)
    vaddr: int = bits(W)
    primary_vaddr: int = bits(W)
    nslabs: int = bits(W)
    nareas: int = bits(W)
    area_nslabs: int = bits(W)
    area_index: tuple = bits(W)
    area_used: tuple = bits(W)
    list: tuple = bits(W)
    orig_addr: tuple = bits(W)
    alloc_size: tuple = bits(W)
    head: tuple = bits(W)      # ghost: first slot of the allocation holding this slot
    run: tuple = bits(W)       # ghost: slots of the allocation starting here (0 elsewhere)

    @property
    def segsize(self) -> int:
        """IO_TLB_SEGSIZE of the preset this pool's tables were built for (``preset_of``)."""
        return preset_of(self).io_tlb_segsize

    @property
    def end(self) -> Any:
        """``io_tlb_mem.end``: one past the pool's last byte."""
        return self.start + self.nslabs * IO_TLB_SIZE


_GEOMETRY: dict[tuple[int, int], Preset] = {}


def register_geometry(preset: Preset) -> None:
    """Remember which preset a pool of ``pool_nslabs`` slots and ``io_tlb_max_areas`` areas belongs to
    (one per pair of table lengths)."""
    known = _GEOMETRY.setdefault((preset.pool_nslabs, preset.io_tlb_max_areas), preset)
    if (known.io_tlb_segsize, known.page_size) != (preset.io_tlb_segsize, preset.page_size):
        raise ValueError(f"presets {known.name} and {preset.name} both have {preset.pool_nslabs}-slot, "
                         f"{preset.io_tlb_max_areas}-area pools with different segment or page sizes")


def preset_of(s: "PoolState") -> Preset:
    """The preset whose constants shape ``s`` (found by its table lengths), for invariants and rules."""
    return _GEOMETRY[(len(s.list), len(s.area_used))]


for _p in (SMALL, LINUX):
    register_geometry(_p)


# ---------------------------------------------------------------------------------------------
# Arithmetic helpers (unsigned 64-bit like the kernel's; concrete values are masked to match)

def u64(L: Any, x: Any) -> Any:
    """Return ``x`` modulo 2**64 (z3 bit-vectors already wrap)."""
    return x if L.symbolic else x & U64


def const(L: Any, v: int) -> Any:
    """Return the 64-bit constant ``v`` in ``L``'s representation."""
    return L.z3.BitVecVal(v, W) if L.symbolic else v


def shr(L: Any, x: Any, n: int) -> Any:
    """Logical right shift by a constant."""
    return L.z3.LShR(x, n) if L.symbolic else x >> n


def umax(L: Any, a: Any, b: Any) -> Any:
    """Unsigned ``max``."""
    return L.If(L.ULE(a, b), b, a)


def nr_slots(L: Any, size: Any) -> Any:
    """``nr_slots(x) = DIV_ROUND_UP(x, IO_TLB_SIZE)`` on unsigned long."""
    return shr(L, u64(L, size + (IO_TLB_SIZE - 1)), IO_TLB_SHIFT)


def compute_slot_addr(L: Any, base: Any, idx: Any) -> Any:
    """``slot_addr(base, idx) = base + (idx << IO_TLB_SHIFT)``."""
    return u64(L, base + idx * IO_TLB_SIZE)


def io_tlb_offset(preset: Preset, i: int) -> int:
    """A slot's position inside its segment (``i & (IO_TLB_SEGSIZE - 1)``), for a constant slot."""
    return i % preset.io_tlb_segsize


def swiotlb_align_offset(L: Any, addr: Any, min_align_mask: Any) -> Any:
    """6.1's offset of a mapping inside its first slot: ``addr & min_align_mask & (IO_TLB_SIZE - 1)`` (§1.5)."""
    return addr & min_align_mask & (IO_TLB_SIZE - 1)


def get_slot_index(L: Any, s: PoolState, tlb_addr: Any, offset: Any) -> Any:
    """Slot of pool address ``tlb_addr`` once ``offset`` is taken off (``(tlb_addr - offset - start) >> 11``)."""
    return shr(L, u64(L, tlb_addr - offset - s.start), IO_TLB_SHIFT)


def is_swiotlb_buffer(L: Any, s: PoolState, addr: Any) -> Any:
    """``start <= addr < end`` (``is_swiotlb_buffer``)."""
    return L.And(L.ULE(s.start, addr), L.ULT(addr, s.start + s.nslabs * IO_TLB_SIZE))


def find_pool(L: Any, pools: tuple, addr: Any) -> Any:
    """Index of the pool whose ``[start, end)`` holds ``addr``, or -1 (``swiotlb_find_pool``, 6.6).

    Pools are tried in order, as Linux walks its pool list; the first match wins.
    """
    out: Any = -1
    for i in range(len(pools) - 1, -1, -1):
        out = L.If(is_swiotlb_buffer(L, pools[i], addr), i, out)
    return out


def is_in_segment(L: Any, preset: Preset, lo: Any, k: int) -> Any:
    """Slot ``lo`` lies in the segment of the constant slot ``k``, at or before it."""
    return L.And(L.ULE(k - io_tlb_offset(preset, k), lo), L.ULE(lo, k))


def in_area(L: Any, s: PoolState, a: int, k: Any) -> Any:
    """Whether slot ``k`` lies in area ``a`` (``a * area_nslabs <= k < (a + 1) * area_nslabs``)."""
    return L.And(L.ULT(a, s.nareas), L.ULE(s.area_nslabs * a, k), L.ULT(k, s.area_nslabs * (a + 1)))


def is_allocated(L: Any, s: PoolState, k: int) -> Any:
    """Slot ``k`` (a constant) is in the pool and taken (``list[k] == 0``)."""
    return L.And(L.ULT(k, s.nslabs), s.list[k] == 0)


# ---------------------------------------------------------------------------------------------
# Pool creation

def initial_list(L: Any, preset: Preset, nslabs: Any, k: int, clamped: bool) -> Any:
    """``list[k]`` of a fresh pool: ``SEGSIZE - offset(k)``, clamped at ``nslabs - k`` if asked (§1.4)."""
    seg_left = preset.io_tlb_segsize - io_tlb_offset(preset, k)
    value = L.If(L.ULE(nslabs, k + seg_left), nslabs - k, const(L, seg_left)) if clamped else const(L, seg_left)
    return L.If(L.ULT(k, nslabs), value, const(L, 0))


def is_power_of_two(L: Any, x: Any) -> Any:
    """``x`` is 1, 2, 4, ... (``is_power_of_2``)."""
    return L.And(L.Not(x == 0), u64(L, x & (x - 1)) == 0)


def swiotlb_init_pool(L: Any, preset: Preset, start: Any, nslabs: Any, nareas: Any = 1,
                      vaddr: Any = None, primary_vaddr: Any = None, policy: Any = None) -> Step:
    """Create a pool of ``nslabs`` slots at ``start`` with ``nareas`` areas (``swiotlb_init_io_tlb_mem``).

    Guards: at least one slot and no more than the table (seed patch 4: ``nslabs == 0`` is -EINVAL);
    ``start`` page aligned (every kernel pool is; slot and page alignment of allocations are
    relative to it); ``nareas`` a power of two dividing ``nslabs`` and no segment spanning two areas
    (what ``swiotlb_adjust_nareas``/``limit_nareas`` guarantee); under ``list_init = "segment"``
    (6.1, seed) a whole number of segments, else ``list`` would reach past the pool end.
    """
    from t1virtio.swiotlb import policy as pol
    p = pol.require(policy)
    register_geometry(preset)
    seg, T, M = preset.io_tlb_segsize, preset.pool_nslabs, preset.io_tlb_max_areas
    area_nslabs = L.If(nareas == 0, 0, L.div(nslabs, L.If(nareas == 0, 1, nareas)))
    clamped = p.list_init is pol.ListInit.CLAMPED
    areas_ok = L.Or(nareas == 1, L.And(p.has_areas, is_power_of_two(L, nareas), L.ULE(nareas, M),
                                       u64(L, area_nslabs * nareas) == nslabs,
                                       L.mod(area_nslabs, seg) == 0))
    guards = [(L.And(L.ULE(1, nslabs), L.ULE(nslabs, T), L.ULE(start, U64 - T * IO_TLB_SIZE)), "SWIOTLB-pool-nslabs"),
              (L.mod(start, preset.page_size) == 0, "SWIOTLB-pool-align"),
              (areas_ok, "SWIOTLB-pool-areas")]
    if not clamped:
        guards.append((L.mod(nslabs, seg) == 0, "SWIOTLB-pool-segments"))
    new = PoolState(
        start=start, vaddr=start if vaddr is None else vaddr,
        primary_vaddr=start if primary_vaddr is None else primary_vaddr,
        nslabs=nslabs, nareas=nareas, area_nslabs=area_nslabs,
        area_index=(0,) * M, area_used=(0,) * M,
        list=L.tabulate(T, lambda k: initial_list(L, preset, nslabs, k, clamped)),
        orig_addr=L.tabulate(T, lambda k: INVALID_PHYS_ADDR), alloc_size=L.tabulate(T, lambda k: 0),
        head=L.tabulate(T, lambda k: NO_ALLOC), run=L.tabulate(T, lambda k: 0))
    return step(guards, new)
