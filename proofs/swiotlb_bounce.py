"""Proof subject: the bounce layer's copies (direction table, copies inside the mapping) on the SMALL pool.

Every state satisfying the slot allocator's invariants (component ``swiotlb``, assumed here: the
bounce layer changes slot records only through the allocator's own transitions, whose preservation
the ``swiotlb`` subject proves) and every argument: each accepted map, unmap, sync_for_device and
sync_for_cpu asks for exactly the copy the per-direction table allows, and that copy lies inside
one live mapping and the matching bytes of its original buffer. Policies are arguments too, so one
obligation covers the three map-time bounce policies.
"""
from __future__ import annotations

from dataclasses import replace

from t1virtio.logic import CONCRETE
from t1virtio.preset import SMALL
from t1virtio.proofs.engine import Op, Subject
from t1virtio.specs import invariants
from t1virtio.step import apply
from t1virtio.swiotlb import bounce
from t1virtio.swiotlb import policy as pol
from t1virtio.swiotlb import pool as swpool

M = "t1virtio.proofs.swiotlb_bounce"
W = swpool.W


# map runs the whole slot search; one segment and one area keep its obligations small
TINY = replace(SMALL, name="TINY", pool_nslabs=SMALL.io_tlb_segsize, io_tlb_max_areas=1)
swpool.register_geometry(TINY)


def _template():
    # the shape only; built with the default policy's pool rules whatever policy a mutant makes current
    state, _ = apply(swpool.swiotlb_init_pool(CONCRETE, SMALL, 0, SMALL.pool_nslabs, 2, policy=pol.V6_1))
    return state


def _tiny_template():
    state, _ = apply(swpool.swiotlb_init_pool(CONCRETE, TINY, 0, TINY.pool_nslabs, 1, policy=pol.V6_1))
    return state


def _assume(L, s):
    """States the allocator's invariants admit (proved for its own transitions by the ``swiotlb`` subject),
    for a pool that does not wrap around the 64-bit address space (every registered region is below 2**64)."""
    no_wrap = L.ULE(s.start, swpool.const(L, swpool.U64) - s.nslabs * swpool.IO_TLB_SIZE)
    return L.And(no_wrap, *[inv.fn(L, s) for inv in invariants.of("swiotlb")])


def _policy(L, s, args):
    return L.ULE(args["map_bounce"], bounce.ZERO_FILL)


def map_single(L, s, orig_addr, mapping_size, alloc_size, dir, attrs, map_bounce, alloc_align_mask, min_align_mask, cpu):
    return bounce.swiotlb_map_single(L, TINY, s, orig_addr, mapping_size, alloc_size, dir, attrs, map_bounce,
                                     alloc_align_mask, min_align_mask, swpool.const(L, swpool.U64), cpu, pol.V6_1)


def unmap_single(L, s, tlb_addr, mapping_size, dir, attrs, min_align_mask):
    return bounce.swiotlb_unmap_single(L, SMALL, s, tlb_addr, mapping_size, dir, attrs, min_align_mask, pol.V6_1)


def sync_for_device(L, s, tlb_addr, size, dir, min_align_mask):
    return bounce.swiotlb_sync_single_for_device(L, s, tlb_addr, size, dir, min_align_mask)


def sync_for_cpu(L, s, tlb_addr, size, dir, min_align_mask):
    return bounce.swiotlb_sync_single_for_cpu(L, s, tlb_addr, size, dir, min_align_mask)


_SYNC = {"tlb_addr": W, "size": W, "dir": W, "min_align_mask": W}

SUBJECTS = [
    Subject(component="swiotlb_bounce", template=_template, preset="SMALL (16 slots, 2 areas; any policy)",
            assume=_assume,
            ops=(Op("unmap_single", M, "unmap_single", {"tlb_addr": W, "mapping_size": W, "dir": W, "attrs": W,
                                                         "min_align_mask": W}),
                 Op("sync_for_device", M, "sync_for_device", _SYNC),
                 Op("sync_for_cpu", M, "sync_for_cpu", _SYNC))),
    Subject(component="swiotlb_bounce_map", invariant_component="swiotlb_bounce", template=_tiny_template,
            preset="TINY (one 8-slot segment, 1 area; any policy)", assume=_assume,
            ops=(Op("map_single", M, "map_single", {"orig_addr": W, "mapping_size": W, "alloc_size": W, "dir": W,
                                                     "attrs": W, "map_bounce": W, "alloc_align_mask": W,
                                                     "min_align_mask": W, "cpu": W}, assume=_policy),)),
]
