"""Rules of the swiotlb slot allocator: what ANY allocator may do in one step (facts §1.6, §1.9, §1.10, §6.1).

Legality, not Linux's choice: any free run of the right length in one segment, area and DMA
window, with the request's alignment, is a legal answer; Linux 6.1's is one of them. A search may
always refuse (a pool may be too fragmented for its walk); a refused step changes nothing.
Arguments are those of the proof operations (``proofs/swiotlb.py``).

The exact rule (``exact_find_linux_6_1``, kind ``"exact"``) is Linux 6.1.y's answer: the run its
area walk finds first (``slots.swiotlb_find_slots`` under ``policy.V6_1``), or its refusal. It pins
the step to the model's own search, so ``exact ⇒ legal`` is the legality obligations of ``find``.
"""
from __future__ import annotations

from t1virtio import step as stp
from t1virtio.specs.rules import exact, rule
from t1virtio.swiotlb import policy as swpolicy
from t1virtio.swiotlb import pool, slots
from t1virtio.swiotlb.pool import IO_TLB_SIZE, U64, nr_slots, u64


def _total_used(L, s):
    return sum((s.area_used[a] for a in range(len(s.area_used))), pool.const(L, 0))


def _takes_run(L, old, new, i, n):
    """Exactly slots ``[i, i+n)`` change from free to taken, in one segment, area and the pool."""
    P = pool.preset_of(old)
    seg = P.io_tlb_segsize
    last = i + n - 1
    one_area = L.any_idx(len(old.area_used), lambda a: L.And(pool.in_area(L, old, a, i), pool.in_area(L, old, a, last)))
    slots = L.all_idx(len(old.list), lambda k: L.If(
        L.And(L.ULE(i, k), L.ULT(k, i + n)),
        L.And(L.Not(old.list[k] == 0), new.list[k] == 0),
        L.And((old.list[k] == 0) == (new.list[k] == 0), old.head[k] == new.head[k])))
    return L.And(L.ULE(1, n), L.ULE(i + n, old.nslabs), L.div(i, seg) == L.div(last, seg), one_area, slots,
                 _total_used(L, new) == _total_used(L, old) + n)


@rule("swiotlb", "find", "SWIOTLB-find-rule")
def rule_find_takes_free_run(L, old, args, ok, new, out):
    """Accepted: nr_slots(alloc_size) free slots of one segment/area become the only new allocation."""
    return L.Implies(ok, L.And(_takes_run(L, old, new, out, nr_slots(L, args["alloc_size"])),
                               L.all_idx(len(old.list), lambda k: old.orig_addr[k] == new.orig_addr[k])))


@exact("swiotlb", "find", "SWIOTLB-find-linux-6.1", "Linux 6.1.y swiotlb_find_slots (policy V6_1)")
def exact_find_linux_6_1(L, old, args, ok, new, out):
    """Linux 6.1.y's choice: accepted iff its walk finds a run, and then the run it finds first."""
    sp = slots.swiotlb_find_slots(L, pool.preset_of(old), old, args["orig_addr"], args["alloc_size"],
                                  args["alloc_align_mask"], args["min_align_mask"], args["boundary_mask"],
                                  args["cpu"], swpolicy.V6_1)
    found = stp.ok(L, sp)
    return L.And(ok == found, L.Implies(ok, out == sp.out))


def window_bytes(L, boundary_mask):
    """The DMA window a run may not cross: boundary_mask + 1 rounded up to whole slots."""
    return nr_slots(L, u64(L, boundary_mask + 1)) * IO_TLB_SIZE


@rule("swiotlb", "find", "SWIOTLB-find-boundary-rule")
def rule_find_in_window(L, old, args, ok, new, out):
    """Accepted: ``[slot_addr(i), slot_addr(i + n))`` does not cross a ``boundary_mask + 1`` window."""
    bm, n = args["boundary_mask"], nr_slots(L, args["alloc_size"])
    w = window_bytes(L, bm)
    addr = pool.compute_slot_addr(L, old.start, out)
    return L.Implies(L.And(ok, L.Not(bm == U64)), L.ULE((addr & (w - 1)) + n * IO_TLB_SIZE, w))


def is_aligned_run(L, preset, start, i, orig_addr, alloc_size, alloc_align_mask, min_align_mask):
    """The alignment a request asks of slot ``i``: min_align_mask bits kept, alloc_align_mask and page alignment."""
    addr = pool.compute_slot_addr(L, start, i)
    tlb = addr + pool.swiotlb_align_offset(L, orig_addr, min_align_mask)
    plain_page = L.And(alloc_align_mask == 0, min_align_mask == 0, L.ULE(preset.page_size, alloc_size))
    return L.And(L.Implies(L.Not(orig_addr == 0), (tlb & min_align_mask) == (orig_addr & min_align_mask)),
                 (addr & alloc_align_mask) == 0,
                 L.Implies(plain_page, (addr & (preset.page_size - 1)) == 0))


@rule("swiotlb", "find_aligned", "SWIOTLB-find-align-rule")
def rule_find_alignment(L, old, args, ok, new, out):
    """Accepted: the run has the request's alignment (proved for 6.1 on its domain, proofs/swiotlb.py)."""
    return L.Implies(ok, is_aligned_run(L, pool.preset_of(old), old.start, out, args["orig_addr"], args["alloc_size"],
                                        args["alloc_align_mask"], args["min_align_mask"]))


@rule("swiotlb", "map", "SWIOTLB-map-rule")
def rule_map_records(L, old, args, ok, new, out):
    """Accepted: slot ``i + k`` records ``orig_addr + k*IO_TLB_SIZE``, the head ``alloc_size``; tlb = slot + offset."""
    i, tlb = out
    off = pool.swiotlb_align_offset(L, args["orig_addr"], args["min_align_mask"])
    n = nr_slots(L, u64(L, args["alloc_size"] + off))
    recorded = L.all_idx(len(old.list), lambda k: L.Implies(
        L.And(L.ULE(i, k), L.ULT(k, i + n)), new.orig_addr[k] == u64(L, args["orig_addr"] + (k - i) * IO_TLB_SIZE)))
    return L.Implies(ok, L.And(_takes_run(L, old, new, i, n), recorded, L.at(new.alloc_size, i) == args["alloc_size"],
                               tlb == pool.compute_slot_addr(L, old.start, i) + off,
                               L.ULE(args["mapping_size"], args["alloc_size"])))


@rule("swiotlb", "alloc_owned", "SWIOTLB-alloc-rule")
def rule_alloc_owned(L, old, args, ok, new, out):
    """Accepted: ``[addr, addr + size)`` lies inside the slots just allocated (no double allocation)."""
    i, addr = out
    n = nr_slots(L, args["size"])
    lo = pool.compute_slot_addr(L, old.start, i)
    return L.Implies(ok, L.And(_takes_run(L, old, new, i, n), L.ULE(lo, addr),
                               L.ULE(addr + args["size"], lo + n * IO_TLB_SIZE)))


@rule("swiotlb", "release", "SWIOTLB-release-rule")
def rule_release_frees_allocation(L, old, args, ok, new, out):
    """Accepted: exactly the slots of the allocation at the address become free; everything else stays."""
    n = out
    i = pool.get_slot_index(L, old, args["tlb_addr"],
                            pool.swiotlb_align_offset(L, args["tlb_addr"], args["min_align_mask"]))
    slots = L.all_idx(len(old.list), lambda k: L.If(
        L.And(L.ULE(i, k), L.ULT(k, i + n)),
        L.And(old.list[k] == 0, old.head[k] == i, L.Not(new.list[k] == 0)),
        L.And((old.list[k] == 0) == (new.list[k] == 0), old.head[k] == new.head[k],
              old.orig_addr[k] == new.orig_addr[k], old.alloc_size[k] == new.alloc_size[k])))
    return L.Implies(ok, L.And(L.ULE(1, n), L.at(old.run, i) == n, slots,
                               _total_used(L, new) + n == _total_used(L, old)))
