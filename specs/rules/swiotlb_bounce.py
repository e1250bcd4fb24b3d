"""Rules of the bounce layer: which bytes any conforming swiotlb may copy, and where (facts §1.7, §1.11, §6.1 I6).

Each operation's ``out`` names the copy it asks for (``bounce.Copy``: kind, caller address, pool
address, length). The rules say, for every state and argument:

- *direction* (``SWIOTLB-BOUNCE-direction``): the copy's kind is the one the per-direction table
  allows: never orig -> slot on sync_for_device of a FROM_DEVICE buffer (ath9k), never slot -> orig
  for TO_DEVICE; map fills the slot as the policy names;
- *map fill* (legality ``SWIOTLB-BOUNCE-map-fill-safe``, exact ``SWIOTLB-BOUNCE-direction``): a
  map must copy the caller's data for TO_DEVICE/BIDIRECTIONAL (the device reads it), may skip that
  copy under SKIP_CPU_SYNC, and for FROM_DEVICE may copy orig -> slot, zero the slot or copy
  nothing, but never writes the caller's buffer; which one is the policy's choice (exact);
- *inside* (``SWIOTLB-BOUNCE-copy-inside``): a copy's pool bytes lie inside one live streaming
  mapping (read from its head slot's records) and its caller bytes at the same distance into the
  original buffer, so they stay inside the buffer the mapping was made for.
"""
from __future__ import annotations

from t1virtio.specs.rules import exact, rule
from t1virtio.swiotlb import bounce as b
from t1virtio.swiotlb import pool as swpool

C = "swiotlb_bounce"

# map's fill of the slot, by policy and direction (facts §1.8): rows PRE_5_17, LINUX_5_18, ZERO_FILL
_MAP_FILL_FROM_DEVICE = {b.PRE_5_17: b.NO_COPY, b.LINUX_5_18: b.ORIG_TO_SLOT, b.ZERO_FILL: b.ZERO_SLOT}


def expected_map_kind(L, policy, dir, attrs):
    """The map row of the table: TO_DEVICE/BIDIRECTIONAL copy orig (pre-5.17: not with SKIP_CPU_SYNC)."""
    skip = (attrs & b.DMA_ATTR_SKIP_CPU_SYNC) == b.DMA_ATTR_SKIP_CPU_SYNC
    from_dev = L.If(policy == b.PRE_5_17, _MAP_FILL_FROM_DEVICE[b.PRE_5_17],
                    L.If(policy == b.LINUX_5_18, _MAP_FILL_FROM_DEVICE[b.LINUX_5_18], _MAP_FILL_FROM_DEVICE[b.ZERO_FILL]))
    to_dev = L.If(L.And(policy == b.PRE_5_17, skip), b.NO_COPY, b.ORIG_TO_SLOT)
    return L.If(dir == b.DMA_FROM_DEVICE, from_dev, to_dev)


def copy_inside(L, s, c, min_align_mask):
    """The copy ``c`` touches only one streaming mapping of ``s`` and the matching bytes of its buffer."""
    k = swpool.get_slot_index(L, s, c.tlb, 0)
    h = L.at(s.head, k)
    o0 = L.at(s.orig_addr, h)
    a = L.at(s.alloc_size, h)
    t0 = swpool.u64(L, swpool.compute_slot_addr(L, s.start, h) + swpool.swiotlb_align_offset(L, o0, min_align_mask))
    into = swpool.u64(L, c.tlb - t0)
    return L.Or(c.kind == b.NO_COPY, L.And(
        swpool.is_swiotlb_buffer(L, s, c.tlb), L.ULT(k, s.nslabs), L.at(s.list, k) == 0,
        L.Not(o0 == swpool.INVALID_PHYS_ADDR), L.ULE(t0, c.tlb), L.ULE(c.n, a), L.ULE(into, a - c.n),
        swpool.u64(L, c.orig - o0) == into))


def allowed_map_kind(L, dir, attrs, kind):
    """The map fills the DMA API allows any implementation (facts §1.8, §1.11)."""
    skip = (attrs & b.DMA_ATTR_SKIP_CPU_SYNC) == b.DMA_ATTR_SKIP_CPU_SYNC
    from_dev = L.Or(kind == b.NO_COPY, kind == b.ORIG_TO_SLOT, kind == b.ZERO_SLOT)
    to_dev = L.Or(kind == b.ORIG_TO_SLOT, L.And(skip, kind == b.NO_COPY))
    return L.If(dir == b.DMA_FROM_DEVICE, from_dev, to_dev)


@rule(C, "map_single", "SWIOTLB-BOUNCE-map-fill-safe")
def rule_map_fill_allowed(L, old, args, ok, new, out):
    """An accepted map fills the slot at the returned address with one of the allowed kinds, never writing orig."""
    tlb, c = out
    return L.Implies(ok, L.And(allowed_map_kind(L, args["dir"], args["attrs"], c.kind),
                               c.tlb == tlb, c.orig == args["orig_addr"], c.n == args["mapping_size"]))


@exact(C, "map_single", "SWIOTLB-BOUNCE-direction", "map_bounce policy argument (pre-5.17 / 5.18+ / zero-fill)",
       refines="rule_map_fill_allowed")
def exact_map_fills_per_policy(L, old, args, ok, new, out):
    """An accepted map copies ``mapping_size`` bytes of the caller's buffer to the returned address, as the policy says."""
    tlb, c = out
    return L.Implies(ok, L.And(c.kind == expected_map_kind(L, args["map_bounce"], args["dir"], args["attrs"]),
                               c.tlb == tlb, c.orig == args["orig_addr"], c.n == args["mapping_size"]))


@rule(C, "map_single", "SWIOTLB-BOUNCE-copy-inside")
def rule_map_copy_inside(L, old, args, ok, new, out):
    """The map-time fill lies inside the new mapping."""
    return L.Implies(ok, copy_inside(L, new, out[1], args["min_align_mask"]))


@rule(C, "unmap_single", "SWIOTLB-BOUNCE-direction")
def rule_unmap_copies_back(L, old, args, ok, new, out):
    """Unmap copies slot -> orig for FROM_DEVICE/BIDIRECTIONAL without SKIP_CPU_SYNC, else nothing."""
    dir, skip = args["dir"], (args["attrs"] & b.DMA_ATTR_SKIP_CPU_SYNC) == b.DMA_ATTR_SKIP_CPU_SYNC
    back = L.And(L.Or(dir == b.DMA_FROM_DEVICE, dir == b.DMA_BIDIRECTIONAL), L.Not(skip))
    return L.Implies(ok, L.And(out.kind == L.If(back, b.SLOT_TO_ORIG, b.NO_COPY), out.tlb == args["tlb_addr"],
                               out.n == args["mapping_size"]))


@rule(C, "unmap_single", "SWIOTLB-BOUNCE-copy-inside")
def rule_unmap_copy_inside(L, old, args, ok, new, out):
    """Unmap's copy lies inside the mapping being unmapped (read before its slots are released)."""
    return L.Implies(ok, copy_inside(L, old, out, args["min_align_mask"]))


@rule(C, "sync_for_device", "SWIOTLB-BOUNCE-direction")
def rule_sync_for_device_never_clobbers(L, old, args, ok, new, out):
    """sync_for_device copies orig -> slot for TO_DEVICE/BIDIRECTIONAL; for FROM_DEVICE nothing (ath9k)."""
    dir = args["dir"]
    return L.Implies(ok, L.And(out.kind == L.If(dir == b.DMA_FROM_DEVICE, b.NO_COPY, b.ORIG_TO_SLOT),
                               out.tlb == args["tlb_addr"], out.n == args["size"]))


@rule(C, "sync_for_device", "SWIOTLB-BOUNCE-copy-inside")
def rule_sync_for_device_inside(L, old, args, ok, new, out):
    return L.Implies(ok, copy_inside(L, old, out, args["min_align_mask"]))


@rule(C, "sync_for_cpu", "SWIOTLB-BOUNCE-direction")
def rule_sync_for_cpu_copies_back(L, old, args, ok, new, out):
    """sync_for_cpu copies slot -> orig for FROM_DEVICE/BIDIRECTIONAL; for TO_DEVICE nothing."""
    dir = args["dir"]
    return L.Implies(ok, L.And(out.kind == L.If(dir == b.DMA_TO_DEVICE, b.NO_COPY, b.SLOT_TO_ORIG),
                               out.tlb == args["tlb_addr"], out.n == args["size"]))


@rule(C, "sync_for_cpu", "SWIOTLB-BOUNCE-copy-inside")
def rule_sync_for_cpu_inside(L, old, args, ok, new, out):
    return L.Implies(ok, copy_inside(L, old, out, args["min_align_mask"]))
