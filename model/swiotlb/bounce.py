"""Bounce buffering over swiotlb pools: map, unmap, sync and coherent alloc/free (facts §0.3-0.4, §1.6-1.8, §1.11).

The symbolic core decides, from a pool's slot records, which slots a step takes or gives back,
what it records, and which bytes it copies (a ``Copy``); ``Swiotlb`` performs the copies through
``MemoryView``s: the caller's buffers in the secondary's private memory, the pool's bytes through
the pool's own view (seed patch 2: ``vaddr + (tlb_addr - start)``, non-linear).

Per-direction bounce table (facts §1.11, unchanged since 5.18; the map row is a policy)::

    call              TO_DEVICE      FROM_DEVICE          BIDIRECTIONAL
    map               orig -> slot   policy (below)       orig -> slot
    sync_for_device   orig -> slot   nothing (ath9k)      orig -> slot
    sync_for_cpu      nothing        slot -> orig         slot -> orig
    unmap             nothing        slot -> orig *       slot -> orig *     (* unless SKIP_CPU_SYNC)

Map-time bounce policy for FROM_DEVICE (``map_bounce``, DESIGN.md §4):
``PRE_5_17`` copies nothing (nor for any direction with SKIP_CPU_SYNC): stale slot bytes reach the
caller on a partial device write (CVE-2022-0854); ``LINUX_5_18`` copies orig -> slot for every
direction (6.1 as maintained): the caller's old buffer reaches the device; ``ZERO_FILL`` (the model's
choice for its machine and system) clears the slot: leaks neither, and a partial device write returns zeros elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from t1virtio import errors
from t1virtio.logic import CONCRETE
from t1virtio.step import Step, apply, step
from t1virtio.swiotlb import policy as pol
from t1virtio.swiotlb import pool as swpool
from t1virtio.swiotlb import slots

# enum dma_data_direction (include/linux/dma-direction.h)
DMA_BIDIRECTIONAL, DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_NONE = 0, 1, 2, 3
DMA_ATTR_SKIP_CPU_SYNC = 1 << 5



class MapBounce(IntEnum):
    """Map-time bounce policies (the module docstring); every map is given one explicitly."""
    PRE_5_17 = 0
    LINUX_5_18 = 1
    ZERO_FILL = 2


PRE_5_17, LINUX_5_18, ZERO_FILL = MapBounce.PRE_5_17, MapBounce.LINUX_5_18, MapBounce.ZERO_FILL
MAP_BOUNCE_NAMES = {PRE_5_17: "pre-5.17", LINUX_5_18: "5.18+", ZERO_FILL: "zero-fill"}


def map_bounce_policy(value: Any) -> MapBounce:
    """``value`` as a ``MapBounce`` (a member, its number or its name in ``MAP_BOUNCE_NAMES``); anything else,
    ``None`` included, is refused with ``MODEL-policy-known``."""
    for m, name in MAP_BOUNCE_NAMES.items():
        if value is m or (not isinstance(value, bool) and isinstance(value, int) and value == m) or value == name:
            return m
    raise errors.fail(pol.POLICY_KNOWN, f"map bounce policy {value!r} is not one of {', '.join(MAP_BOUNCE_NAMES.values())}")

# what a step copies
NO_COPY, ORIG_TO_SLOT, SLOT_TO_ORIG, ZERO_SLOT = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Copy:
    """The byte effect of a step: ``kind`` over ``n`` bytes at ``orig`` (caller) and ``tlb`` (pool)."""

    kind: Any
    orig: Any
    tlb: Any
    n: Any


def valid_direction(L: Any, dir: Any) -> Any:
    """Return whether ``dir`` is TO_DEVICE, FROM_DEVICE or BIDIRECTIONAL (``valid_dma_direction``)."""
    return L.Or(dir == DMA_BIDIRECTIONAL, dir == DMA_TO_DEVICE, dir == DMA_FROM_DEVICE)


def skips_cpu_sync(L: Any, attrs: Any) -> Any:
    return (attrs & DMA_ATTR_SKIP_CPU_SYNC) == DMA_ATTR_SKIP_CPU_SYNC


def map_copy_kind(L: Any, map_bounce: Any, dir: Any, attrs: Any) -> Any:
    """What map puts in the slot: the policy's row of the table."""
    to_dev = L.And(L.Not(dir == DMA_FROM_DEVICE), L.Not(skips_cpu_sync(L, attrs)))
    pre = L.If(to_dev, ORIG_TO_SLOT, NO_COPY)
    zero = L.If(dir == DMA_FROM_DEVICE, ZERO_SLOT, ORIG_TO_SLOT)
    return L.If(map_bounce == PRE_5_17, pre, L.If(map_bounce == ZERO_FILL, zero, ORIG_TO_SLOT))


def sync_for_device_kind(L: Any, dir: Any) -> Any:
    """orig -> slot for TO_DEVICE and BIDIRECTIONAL; nothing for FROM_DEVICE (901c7280ca0d, ath9k)."""
    return L.If(dir == DMA_FROM_DEVICE, NO_COPY, ORIG_TO_SLOT)


def sync_for_cpu_kind(L: Any, dir: Any) -> Any:
    """slot -> orig for FROM_DEVICE and BIDIRECTIONAL; nothing for TO_DEVICE."""
    return L.If(dir == DMA_TO_DEVICE, NO_COPY, SLOT_TO_ORIG)


def unmap_copy_kind(L: Any, dir: Any, attrs: Any) -> Any:
    """slot -> orig for FROM_DEVICE and BIDIRECTIONAL unless SKIP_CPU_SYNC."""
    return L.If(L.Or(dir == DMA_TO_DEVICE, skips_cpu_sync(L, attrs)), NO_COPY, SLOT_TO_ORIG)



# ---------------------------------------------------------------------------------------------
# Where a copy lands: a mapping's window in mapping coordinates (facts §1.7)

@dataclass(frozen=True, slots=True)
class Window:
    """The mapping holding a pool address: its head slot, first byte, original buffer and size."""

    slot: Any       # slot holding the address
    head: Any       # first slot of the allocation (ghost ``head``)
    tlb0: Any       # pool address of the mapping's first byte (head slot + min-align offset)
    orig0: Any      # the caller's buffer the mapping bounces (INVALID_PHYS_ADDR: coherent)
    size: Any       # bytes of the allocation from tlb0 (the head slot's ``alloc_size``)


def window_at(L: Any, s: swpool.PoolState, tlb_addr: Any, min_align_mask: Any) -> Window:
    """The mapping that holds ``tlb_addr``, read from its head slot's records."""
    k = swpool.get_slot_index(L, s, tlb_addr, 0)
    h = L.at(s.head, k)
    orig0 = L.at(s.orig_addr, h)
    tlb0 = swpool.u64(L, swpool.compute_slot_addr(L, s.start, h) + swpool.swiotlb_align_offset(L, orig0, min_align_mask))
    return Window(slot=k, head=h, tlb0=tlb0, orig0=orig0, size=L.at(s.alloc_size, h))


def is_streaming(L: Any, s: swpool.PoolState, w: Window) -> Any:
    """The address is in a live streaming mapping: its slot is taken and its head records an original buffer."""
    return L.And(L.ULT(w.slot, s.nslabs), L.at(s.list, w.slot) == 0, L.Not(w.head == swpool.NO_ALLOC),
                 L.Not(w.orig0 == swpool.INVALID_PHYS_ADDR))


def inside(L: Any, w: Window, tlb_addr: Any, size: Any) -> Any:
    """``[tlb_addr, tlb_addr + size)`` lies inside the mapping ``w`` (no wrap-around)."""
    c = swpool.u64(L, tlb_addr - w.tlb0)
    return L.And(L.ULE(w.tlb0, tlb_addr), L.ULE(size, w.size), L.ULE(c, w.size - size))


def window_copy(L: Any, kind: Any, w: Window, tlb_addr: Any, size: Any) -> Copy:
    """``swiotlb_bounce``: the caller's byte for ``tlb_addr`` is as far into orig as tlb_addr is into the mapping."""
    return Copy(kind=kind, orig=swpool.u64(L, w.orig0 + (tlb_addr - w.tlb0)), tlb=tlb_addr, n=size)


# ---------------------------------------------------------------------------------------------
# Transitions (each: guards, the pool after, and out = the copy to perform)

def swiotlb_map_single(L: Any, preset: Any, s: swpool.PoolState, orig_addr: Any, mapping_size: Any,
                       alloc_size: Any, dir: Any, attrs: Any, map_bounce: Any,
                       alloc_align_mask: Any = 0, min_align_mask: Any = 0, boundary_mask: Any = swpool.U64,
                       cpu: Any = 0, policy: Any = None) -> Step:
    """``swiotlb_tbl_map_single``: take slots, record orig, then fill them per the map policy; out = (tlb, Copy)."""
    sp = slots.swiotlb_tbl_map_slots(L, preset, s, orig_addr, mapping_size, alloc_size, alloc_align_mask,
                                     min_align_mask, boundary_mask, cpu, policy)
    tlb = sp.out[1]
    guards = [(valid_direction(L, dir), "SWIOTLB-BOUNCE-dir"), *sp.guards]
    return step(guards, L.effect(guards, lambda: sp.new, s), out=(tlb, Copy(map_copy_kind(L, map_bounce, dir, attrs), orig_addr, tlb, mapping_size)))


def swiotlb_unmap_single(L: Any, preset: Any, s: swpool.PoolState, tlb_addr: Any, mapping_size: Any, dir: Any,
                         attrs: Any = 0, min_align_mask: Any = 0, policy: Any = None) -> Step:
    """``swiotlb_tbl_unmap_single``: copy back per the table from the mapping's start, then release its slots."""
    w = window_at(L, s, tlb_addr, min_align_mask)
    rel = slots.swiotlb_release_slots(L, preset, s, tlb_addr, min_align_mask, mapping_size, policy)
    guards = [(valid_direction(L, dir), "SWIOTLB-BOUNCE-dir"), *rel.guards,
              (L.And(is_streaming(L, s, w), w.tlb0 == tlb_addr), "SWIOTLB-BOUNCE-not-mapped"),
              (L.ULE(mapping_size, w.size), "SWIOTLB-BOUNCE-unmap-size")]
    return step(guards, L.effect(guards, lambda: rel.new, s), out=window_copy(L, unmap_copy_kind(L, dir, attrs), w, tlb_addr, mapping_size))


def _sync(L: Any, s: swpool.PoolState, tlb_addr: Any, size: Any, dir: Any, min_align_mask: Any, kind: Any) -> Step:
    w = window_at(L, s, tlb_addr, min_align_mask)
    guards = [(valid_direction(L, dir), "SWIOTLB-BOUNCE-dir"),
              (L.And(swpool.is_swiotlb_buffer(L, s, tlb_addr), is_streaming(L, s, w)), "SWIOTLB-BOUNCE-not-mapped"),
              (inside(L, w, tlb_addr, size), "SWIOTLB-BOUNCE-sync-range")]
    return step(guards, s, out=window_copy(L, kind, w, tlb_addr, size))


def swiotlb_sync_single_for_device(L: Any, s: swpool.PoolState, tlb_addr: Any, size: Any, dir: Any,
                                   min_align_mask: Any = 0) -> Step:
    """Hand ``[tlb_addr, +size)`` to the device: orig -> slot unless FROM_DEVICE."""
    return _sync(L, s, tlb_addr, size, dir, min_align_mask, sync_for_device_kind(L, dir))


def swiotlb_sync_single_for_cpu(L: Any, s: swpool.PoolState, tlb_addr: Any, size: Any, dir: Any,
                                min_align_mask: Any = 0) -> Step:
    """Take ``[tlb_addr, +size)`` back from the device: slot -> orig unless TO_DEVICE."""
    return _sync(L, s, tlb_addr, size, dir, min_align_mask, sync_for_cpu_kind(L, dir))


def swiotlb_alloc(L: Any, preset: Any, s: swpool.PoolState, size: Any, min_align_mask: Any = 0,
                  boundary_mask: Any = swpool.U64, cpu: Any = 0, policy: Any = None) -> Step:
    """Coherent memory (seed patch 3, ``swiotlb_alloc``): slots with no original buffer; out = (slot, address)."""
    return slots.swiotlb_alloc_slots(L, preset, s, size, min_align_mask, boundary_mask, cpu, policy)


def swiotlb_free(L: Any, preset: Any, s: swpool.PoolState, tlb_addr: Any, size: Any, min_align_mask: Any = 0,
                 policy: Any = None) -> Step:
    """Return coherent memory (``swiotlb_free``); a streaming mapping must be unmapped instead."""
    w = window_at(L, s, tlb_addr, min_align_mask)
    rel = slots.swiotlb_release_slots(L, preset, s, tlb_addr, min_align_mask, size, policy)
    guards = [*rel.guards, (w.orig0 == swpool.INVALID_PHYS_ADDR, "SWIOTLB-BOUNCE-not-mapped")]
    return step(guards, L.effect(guards, lambda: rel.new, s), out=rel.out)


# ---------------------------------------------------------------------------------------------
# Bytes: the concrete pools and the copies

@dataclass(frozen=True, slots=True)
class Mapping:
    """What a live streaming mapping was made with (the dma-debug record the wrapper checks unmap against)."""

    pool: int
    orig: int
    size: int
    dir: int


class SwiotlbPool:
    """A registered pool: slot records (``state``) and its bytes as the owner sees them (``vview`` at ``vaddr``)."""

    def __init__(self, name: str, preset: Any, start: int, nslabs: int, vview: Any, vaddr: int,
                 nareas: int = 1, policy: Any = None):
        self.name, self.preset, self.policy, self.vview = name, preset, pol.require(policy), vview
        self.state, _ = apply(swpool.swiotlb_init_pool(CONCRETE, preset, start, nslabs, nareas, vaddr, None, policy),
                              f"pool {name}: {nslabs} slots at {start:#x}")
        self.last_out: Any = None

    def tlb_vaddr(self, tlb_addr: int) -> int:
        """Seed patch 2: ``io_tlb_vstart + (tlb_addr - io_tlb_start)``."""
        return self.state.vaddr + (tlb_addr - self.state.start)

    def run(self, sp: Step, detail: str) -> Any:
        """Apply a core step to this pool; return its out."""
        self.last_out = sp.out
        self.state, out = apply(sp, f"pool {self.name}: {detail}")
        return out


def swiotlb_bounce(orig_view: Any, pool: SwiotlbPool, copy: Copy) -> None:
    """Perform ``copy`` between the caller's memory and the pool's bytes (``swiotlb_bounce``)."""
    if copy.kind == NO_COPY or copy.n == 0:
        return
    vaddr = pool.tlb_vaddr(copy.tlb)
    if copy.kind == ORIG_TO_SLOT:
        pool.vview.write(vaddr, orig_view.read(copy.orig, copy.n))
    elif copy.kind == SLOT_TO_ORIG:
        orig_view.write(copy.orig, pool.vview.read(vaddr, copy.n))
    else:
        pool.vview.write(vaddr, bytes(copy.n))


class Swiotlb:
    """One secondary's swiotlb: its pools, its private memory (``orig_view``), its device and bounce policy.

    ``min_align_mask``/``boundary_mask`` are the device's DMA parameters; ``map_bounce`` the map-time
    bounce policy; ``policy`` the slot allocator's (``policy.SwiotlbPolicy``, default 6.1.y).
    """

    def __init__(self, preset: Any, orig_view: Any, map_bounce: Any, min_align_mask: int = 0,
                 boundary_mask: int = swpool.U64, policy: Any = pol.LINUX_6_1):
        self.preset, self.orig_view, self.policy = preset, orig_view, pol.require(policy)
        self.map_bounce = map_bounce_policy(map_bounce)
        self.min_align_mask, self.boundary_mask = min_align_mask, boundary_mask
        self.pools: list[SwiotlbPool] = []
        self.mappings: dict[int, Mapping] = {}
        self.last_copy: Copy | None = None

    def register_pool(self, name: str, start: int, nslabs: int, vview: Any, vaddr: int, nareas: int = 1) -> SwiotlbPool:
        """Seed patch 4 ``swiotlb_register_pool``: a pool over ``nslabs`` slots at ``start``, seen at ``vaddr``."""
        p = SwiotlbPool(name, self.preset, start, nslabs, vview, vaddr, nareas, self.policy)
        self.pools.append(p)
        return p

    def find_pool(self, addr: int) -> SwiotlbPool:
        """The pool holding ``addr`` (``swiotlb_find_pool``); none is the caller's error."""
        i = swpool.find_pool(CONCRETE, tuple(p.state for p in self.pools), addr)
        if i < 0:
            raise errors.fail("SWIOTLB-BOUNCE-no-pool", f"{addr:#x} is in none of {len(self.pools)} pools")
        return self.pools[i]

    def _bounce(self, pool: SwiotlbPool, copy: Copy) -> None:
        self.last_copy = copy
        swiotlb_bounce(self.orig_view, pool, copy)

    def map_single(self, pool: SwiotlbPool, orig: int, mapping_size: int, dir: int, alloc_size: int | None = None,
                   alloc_align_mask: int = 0, attrs: int = 0, cpu: int = 0) -> int:
        """Map ``mapping_size`` bytes at ``orig`` through ``pool``; return tlb_addr."""
        a = mapping_size if alloc_size is None else alloc_size
        sp = swiotlb_map_single(CONCRETE, self.preset, pool.state, orig, mapping_size, a, dir, attrs, self.map_bounce,
                                alloc_align_mask, self.min_align_mask, self.boundary_mask, cpu, self.policy)
        tlb, copy = pool.run(sp, f"map {mapping_size}/{a} bytes of {orig:#x} dir {dir}")
        self._bounce(pool, copy)
        self.mappings[tlb] = Mapping(self.pools.index(pool), orig, mapping_size, dir)
        return tlb

    def unmap_single(self, tlb_addr: int, mapping_size: int, dir: int, attrs: int = 0) -> None:
        """Unmap the mapping at ``tlb_addr``: copy back per the table, release the slots."""
        pool = self.find_pool(tlb_addr)
        rec = self.mappings.get(tlb_addr)
        if rec is not None and (rec.size != mapping_size or rec.dir != dir):
            raise errors.fail("SWIOTLB-BOUNCE-unmap-size", f"unmap of {mapping_size} bytes dir {dir} at {tlb_addr:#x}, "
                                                           f"mapped {rec.size} bytes dir {rec.dir}")
        sp = swiotlb_unmap_single(CONCRETE, self.preset, pool.state, tlb_addr, mapping_size, dir, attrs,
                                  self.min_align_mask, self.policy)
        copy = pool.run(sp, f"unmap {mapping_size} bytes at {tlb_addr:#x} dir {dir}")
        self._bounce(pool, copy)
        self.mappings.pop(tlb_addr, None)

    def sync_single_for_device(self, tlb_addr: int, size: int, dir: int) -> None:
        pool = self.find_pool(tlb_addr)
        copy = pool.run(swiotlb_sync_single_for_device(CONCRETE, pool.state, tlb_addr, size, dir, self.min_align_mask),
                        f"sync_for_device {size} bytes at {tlb_addr:#x} dir {dir}")
        self._bounce(pool, copy)

    def sync_single_for_cpu(self, tlb_addr: int, size: int, dir: int) -> None:
        pool = self.find_pool(tlb_addr)
        copy = pool.run(swiotlb_sync_single_for_cpu(CONCRETE, pool.state, tlb_addr, size, dir, self.min_align_mask),
                        f"sync_for_cpu {size} bytes at {tlb_addr:#x} dir {dir}")
        self._bounce(pool, copy)

    def alloc(self, pool: SwiotlbPool, size: int, cpu: int = 0) -> int:
        """Coherent memory from ``pool``; return its pool address."""
        self.last_copy = None
        _, addr = pool.run(swiotlb_alloc(CONCRETE, self.preset, pool.state, size, self.min_align_mask,
                                         self.boundary_mask, cpu, self.policy), f"alloc {size} bytes")
        return addr

    def free(self, tlb_addr: int, size: int) -> None:
        """Return coherent memory at ``tlb_addr``."""
        self.last_copy = None
        pool = self.find_pool(tlb_addr)
        pool.run(swiotlb_free(CONCRETE, self.preset, pool.state, tlb_addr, size, self.min_align_mask, self.policy),
                 f"free {size} bytes at {tlb_addr:#x}")
