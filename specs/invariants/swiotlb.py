"""Invariants of a swiotlb pool's slot metadata (facts §1.3, §6.1 I1-I4).

Each is local (slot ``k`` against ``k + 1`` or its allocation's head), so it holds for any ``nslabs``
up to the table length. The segment and page sizes come from the pool's preset (``preset_of``).
"""
from __future__ import annotations

from t1virtio.specs.invariants import invariant
from t1virtio.swiotlb import pool
from t1virtio.swiotlb.pool import INVALID_PHYS_ADDR, IO_TLB_SIZE, NO_ALLOC, u64


def geometry_parts(L, s) -> list:
    """The conjuncts of SWIOTLB-geometry: the pool's shape, each area's hint and used, each padding slot."""
    P = pool.preset_of(s)
    T, M = len(s.list), len(s.area_used)
    shapes = [L.And(s.nareas == c, s.area_nslabs * c == s.nslabs) for c in (1 << e for e in range(M.bit_length()))
              if c <= M]
    shape = L.And(L.ULE(1, s.nslabs), L.ULE(s.nslabs, T), L.ULE(s.area_nslabs, s.nslabs),
                  L.ULE(s.start, pool.U64 - T * IO_TLB_SIZE), L.Or(*shapes),
                  L.Or(s.nareas == 1, L.mod(s.area_nslabs, P.io_tlb_segsize) == 0), L.mod(s.start, P.page_size) == 0)
    areas = [L.If(L.ULT(a, s.nareas),
                  L.And(L.ULT(s.area_index[a], s.area_nslabs), L.ULE(s.area_used[a], s.area_nslabs)),
                  L.And(s.area_index[a] == 0, s.area_used[a] == 0)) for a in range(M)]
    padding = [L.Implies(L.ULE(s.nslabs, k), L.And(s.list[k] == 0, s.orig_addr[k] == INVALID_PHYS_ADDR,
                                                   s.alloc_size[k] == 0, s.head[k] == NO_ALLOC, s.run[k] == 0))
               for k in range(T)]
    return [shape, *areas, *padding]


@invariant("swiotlb", "SWIOTLB-geometry")
def inv_pool_geometry(L, s):
    """1 <= nslabs <= table; nareas a power of two with areas of whole segments; hints and used in range; padding untouched."""
    return L.And(*geometry_parts(L, s))


def next_free_run(L, s, k: int):
    """``list[k + 1]`` when slot ``k + 1`` is free, in the pool and in ``k``'s segment, else 0."""
    if (k + 1) % pool.preset_of(s).io_tlb_segsize == 0:
        return 0
    return L.If(L.And(L.ULT(k + 1, s.nslabs), L.Not(s.list[k + 1] == 0)), s.list[k + 1], pool.const(L, 0))


def free_run_parts(L, s) -> list:
    """The conjuncts of SWIOTLB-list, one per slot."""
    return [L.Implies(L.And(L.ULT(k, s.nslabs), L.Not(s.list[k] == 0)), s.list[k] == 1 + next_free_run(L, s, k))
            for k in range(len(s.list))]


@invariant("swiotlb", "SWIOTLB-list")
def inv_free_runs(L, s):
    """For a free slot, ``list[k] == 1 + list[k+1]`` within the segment and pool, else 1 (I1)."""
    return L.And(*free_run_parts(L, s))


@invariant("swiotlb", "SWIOTLB-used")
def inv_area_used(L, s):
    """Each area's ``used`` is the total length of the allocations starting in it (I2).

    With SWIOTLB-alloc-run (every taken slot lies in exactly one run, inside its head's segment and
    so its area) this is the number of taken slots of the area.
    """
    return L.And(*area_used_parts(L, s))


def _count_bits(L, s) -> int:
    """Bits that hold any area's count once every run is at most a segment: ``len(list) * segsize`` fits."""
    return (len(s.list) * pool.preset_of(s).io_tlb_segsize).bit_length() + 1


def _narrow_sum(L, terms: list, bits: int):
    """``sum(terms)`` as a 64-bit value, added in ``bits``-bit words (each term below ``2**bits``, the total
    too): the same number, at a fraction of the adder width for z3. Concretely the plain sum."""
    if not L.symbolic:
        return sum(terms)
    z3 = L.z3
    total = sum((z3.Extract(bits - 1, 0, t) for t in terms), z3.BitVecVal(0, bits))
    return z3.ZeroExt(pool.W - bits, total)


def area_used_parts(L, s) -> list:
    """The conjuncts of SWIOTLB-used, one per area: every run starting in the area is at most a segment
    long, and ``used`` is their total (so the total fits in ``_count_bits`` bits, where it is added)."""
    P = pool.preset_of(s)
    zero, seg, bits = pool.const(L, 0), P.io_tlb_segsize, _count_bits(L, s)
    out = []
    for a in range(len(s.area_used)):
        inside = [pool.in_area(L, s, a, k) for k in range(len(s.list))]
        short = L.And(*[L.Implies(i, L.ULE(s.run[k], seg)) for k, i in enumerate(inside)])
        total = _narrow_sum(L, [L.If(i, s.run[k], zero) for k, i in enumerate(inside)], bits)
        out.append(L.Implies(L.ULT(a, s.nareas), L.And(short, s.area_used[a] == total)))
    return out


def _same_allocation_next(L, s, k: int, h):
    """Slot ``k + 1`` is in the table, the same segment, and belongs to head ``h``."""
    if (k + 1) % pool.preset_of(s).io_tlb_segsize == 0:
        return False
    return s.head[k + 1] == h


def alloc_run_parts(L, s) -> list:
    """The conjuncts of SWIOTLB-alloc-run, one per slot."""
    P = pool.preset_of(s)

    def slot(k: int):
        h = s.head[k]
        taken = L.And(L.ULT(k, s.nslabs), s.list[k] == 0)
        contiguous = True if k % P.io_tlb_segsize == 0 else L.Or(h == k, s.head[k - 1] == h)
        length = L.at(s.run, h)
        return L.And(taken == L.Not(h == NO_ALLOC),
                     (L.Not(s.run[k] == 0)) == L.And(taken, h == k),
                     L.Implies(taken, L.And(pool.is_in_segment(L, P, h, k), L.at(s.head, h) == h, contiguous,
                                            L.ULT(u64(L, k - h), length),
                                            (u64(L, k - h) + 1 == length) == L.Not(_same_allocation_next(L, s, k, h)))))
    return [slot(k) for k in range(len(s.list))]


@invariant("swiotlb", "SWIOTLB-alloc-run")
def inv_alloc_runs(L, s):
    """Taken slots form runs: head ``h`` in the same segment, contiguous to it, ``run[h]`` slots long (I3)."""
    return L.And(*alloc_run_parts(L, s))


@invariant("swiotlb", "SWIOTLB-slot-meta")
def inv_slot_metadata(L, s):
    """Free slots hold INVALID/0; inside an allocation orig_addr and alloc_size step by IO_TLB_SIZE (I4)."""
    return L.And(*slot_metadata_parts(L, s))


def slot_metadata_parts(L, s) -> list:
    """The conjuncts of SWIOTLB-slot-meta, one per slot."""
    P = pool.preset_of(s)

    def slot(k: int):
        free = L.And(L.ULT(k, s.nslabs), L.Not(s.list[k] == 0))
        rules = [L.Implies(free, L.And(s.orig_addr[k] == INVALID_PHYS_ADDR, s.alloc_size[k] == 0))]
        if k % P.io_tlb_segsize:
            follows = L.And(s.list[k] == 0, L.Not(s.head[k] == k), L.ULT(k, s.nslabs))
            prev_orig = s.orig_addr[k - 1]
            rules.append(L.Implies(follows, L.And(
                s.alloc_size[k] == u64(L, s.alloc_size[k - 1] - IO_TLB_SIZE),
                s.orig_addr[k] == L.If(prev_orig == INVALID_PHYS_ADDR, prev_orig, u64(L, prev_orig + IO_TLB_SIZE)))))
        return L.And(*rules)
    return [slot(k) for k in range(len(s.list))]


# Each invariant as its conjuncts, so a proof can discharge it one slot (or area) at a time.
PARTS = {"inv_pool_geometry": geometry_parts, "inv_free_runs": free_run_parts, "inv_area_used": area_used_parts,
         "inv_alloc_runs": alloc_run_parts, "inv_slot_metadata": slot_metadata_parts}
