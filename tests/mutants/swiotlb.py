"""swiotlb slot-allocator mutants: the historical bugs of facts §0.4-0.5, §1.9, formal.md §5.4, and one per clause."""
from __future__ import annotations

from dataclasses import replace
from unittest import mock

from . import Mutant, drop_guard, patches, replace_fn

S = "t1virtio.swiotlb.slots"
PO = "t1virtio.swiotlb.pool"
PROOF = "proof:swiotlb:"
SCEN = "scenario:test_swiotlb_slots:"


def _policy(name):
    """A patch making the proofs' allocator policy ``name`` (the proof subject's ``POLICY``)."""
    def patch():
        from t1virtio.proofs import swiotlb as proof
        from t1virtio.swiotlb import policy
        return mock.patch.object(proof, "POLICY", policy.by_name(name))
    return patch


def _linux_61_do_while(orig, L, preset, p, s, a, q):
    """6.1.y's search loop as written: ``do { ... } while (index != wrap)``, no step bound (concrete only)."""
    from t1virtio.swiotlb import slots
    base = s.area_nslabs * a
    if a >= s.nareas or not L.ULE(q.nslots, s.area_nslabs - s.area_used[a]):
        return slots.AreaResult(False, False, 0)
    index = wrap = slots.search_start(L, p, s, a, q)
    shift = slots.nr_slots(L, q.tbl_dma_addr)
    while True:
        mis, _, nxt = slots.walk_step(L, s, q, base, index)
        if not mis and not slots.iommu_is_span_boundary(L, base + index, q.nslots, shift, q.max_slots) \
                and q.nslots <= L.at(s.list, base + index):
            return slots.AreaResult(True, False, base + index)
        index = nxt
        if index == wrap:
            return slots.AreaResult(False, False, 0)


def _merge_across_segment(orig, L, preset, s, index, nslots):
    return L.at(s.list, index + nslots)


def _no_span_check(orig, L, index, nr, shift, boundary_size):
    return False


def _hint_not_wrapped(orig, L, preset, s, *a, **k):
    sp = orig(L, preset, s, *a, **k)
    return replace(sp, new=replace(sp.new, area_index=tuple(x + s.area_nslabs for x in sp.new.area_index)))


def _release_keeps_used(orig, L, preset, s, *a, **k):
    sp = orig(L, preset, s, *a, **k)
    return replace(sp, new=replace(sp.new, area_used=s.area_used))


def _short_run(orig, L, preset, s, *a, **k):
    sp = orig(L, preset, s, *a, **k)
    from t1virtio.swiotlb.pool import NO_ALLOC, const
    last = sp.out + L.at(sp.new.run, sp.out) - 1
    return replace(sp, new=replace(sp.new, head=tuple(L.If(last == k, const(L, NO_ALLOC), h)
                                                      for k, h in enumerate(sp.new.head))))


def _wrong_slot(orig, L, preset, s, *a, **k):
    sp = orig(L, preset, s, *a, **k)
    return replace(sp, out=sp.out + 1)


def _no_min_align(orig, L, *a, **k):
    q = orig(L, *a, **k)
    from t1virtio.swiotlb.pool import const
    return replace(q, iotlb_align_mask=const(L, 0))


def _tlb_without_offset(orig, L, preset, s, orig_addr, *a, **k):
    sp = orig(L, preset, s, orig_addr, *a, **k)
    from t1virtio.swiotlb import pool
    return replace(sp, out=(sp.out[0], pool.compute_slot_addr(L, s.start, sp.out[0])))


def _release_keeps(field):
    def fn(orig, L, preset, s, *a, **k):
        sp = orig(L, preset, s, *a, **k)
        return replace(sp, new=replace(sp.new, **{field: getattr(s, field)}))
    return fn


def _quarter_steps(orig, preset):
    return max(1, preset.pool_nslabs // 4)


MUTANTS = [
    # historical bugs
    Mutant("swiotlb-6.1-do-while-deadlock", "SWIOTLB-search-bounded", SCEN + "scenario_search_terminates",
           "SWIOTLB-search-bounded", replace_fn(S, "search_area", _linux_61_do_while),
           "6.1.y swiotlb_do_find_slots do/while (fixed upstream by 7c3940bf81e5, 6.3)"),
    Mutant("swiotlb-search-bound-too-short", "SWIOTLB-search-bounded", PROOF + "search-bound-suffices",
           "SWIOTLB-search-bounded", replace_fn(S, "search_steps", _quarter_steps), "synthetic: unroll below area_nslabs"),
    Mutant("swiotlb-6.3-6.8-double-allocation", "SWIOTLB-alloc-rule", PROOF + "alloc⊨rule_alloc_owned[size >= page]",
           "SWIOTLB-alloc-rule", _policy("v6.3-6.8"),
           "6.3-6.8 swiotlb_alloc skips alignment for orig_addr 0 (fixed by 04867a7a3332, 6.9)"),
    Mutant("swiotlb-seed-unclamped-list", "SWIOTLB-pool-segments", PROOF + "init⊢inv_free_runs", "SWIOTLB-list",
           patches(_policy("seed-v5.7"), drop_guard(PO, "swiotlb_init_pool", "SWIOTLB-pool-segments")),
           "seed patch 4 swiotlb_register_pool: list[] not clamped at the pool end"),
    Mutant("swiotlb-seed-free-wrong-size", "SWIOTLB-release-size", PROOF + "release⊢inv_alloc_runs[slot 1]",
           "SWIOTLB-alloc-run",
           patches(_policy("seed-v5.7"), drop_guard(S, "swiotlb_release_slots", "SWIOTLB-release-size")),
           "seed patch 3 swiotlb_free trusts the caller's alloc_size"),
    Mutant("swiotlb-release-merge-across-segment", "SWIOTLB-list", PROOF + "release⊢inv_free_runs[slot 3]", "SWIOTLB-list",
           replace_fn(S, "following_free", _merge_across_segment), "synthetic: release merges with the next segment"),
    Mutant("swiotlb-no-boundary-check", "SWIOTLB-find-boundary-rule", PROOF + "find⊨rule_find_in_window",
           "SWIOTLB-find-boundary-rule", replace_fn(S, "iommu_is_span_boundary", _no_span_check),
           "synthetic: segment boundary mask ignored"),
    Mutant("swiotlb-release-no-relink", "SWIOTLB-list", "machine:swiotlb_slots", "SWIOTLB-list",
           replace_fn(S, "relink_preceding", lambda orig, L, preset, lst, index, count: lst),
           "synthetic: the backward walk that renumbers the free slots before a run is skipped"),
    # one per clause
    Mutant("swiotlb-pool-zero-slots", "SWIOTLB-pool-nslabs", PROOF + "init⊢inv_pool_geometry", "SWIOTLB-geometry",
           drop_guard(PO, "swiotlb_init_pool", "SWIOTLB-pool-nslabs"), "seed patch 4: nslabs == 0 is -EINVAL"),
    Mutant("swiotlb-pool-misaligned", "SWIOTLB-pool-align", PROOF + "init⊢inv_pool_geometry", "SWIOTLB-geometry",
           drop_guard(PO, "swiotlb_init_pool", "SWIOTLB-pool-align"), "synthetic"),
    Mutant("swiotlb-pool-bad-areas", "SWIOTLB-pool-areas", PROOF + "init⊢inv_pool_geometry", "SWIOTLB-geometry",
           drop_guard(PO, "swiotlb_init_pool", "SWIOTLB-pool-areas"), "synthetic"),
    Mutant("swiotlb-hint-not-wrapped", "SWIOTLB-geometry", PROOF + "find⊑take", "SWIOTLB-find-rule",
           replace_fn(S, "swiotlb_find_slots", _hint_not_wrapped), "synthetic: area->index past the area"),
    Mutant("swiotlb-find-zero-bytes", "SWIOTLB-find-empty", PROOF + "find⊑take",
           "SWIOTLB-find-rule", drop_guard(S, "swiotlb_find_slots", "SWIOTLB-find-empty"), "BUG_ON(!nslots) removed"),
    Mutant("swiotlb-find-too-large-unreported", "SWIOTLB-find-too-large", SCEN + "scenario_too_large",
           "SWIOTLB-find-too-large", drop_guard(S, "swiotlb_find_slots", "SWIOTLB-find-too-large"), "synthetic"),
    Mutant("swiotlb-find-boundary-not-pow2", "SWIOTLB-find-boundary-mask", SCEN + "scenario_bad_boundary",
           "SWIOTLB-find-boundary-mask", drop_guard(S, "swiotlb_find_slots", "SWIOTLB-find-boundary-mask"),
           "iommu_is_span_boundary BUG_ON removed"),
    Mutant("swiotlb-hang-reported-as-full", "SWIOTLB-find-no-termination", SCEN + "scenario_hang_reported",
           "SWIOTLB-find-no-termination", drop_guard(S, "swiotlb_find_slots", "SWIOTLB-find-no-termination"),
           "synthetic: the 6.1 non-termination reported as a plain full pool"),
    Mutant("swiotlb-find-full-accepted", "SWIOTLB-find-full", PROOF + "find⊑take", "SWIOTLB-find-rule",
           drop_guard(S, "swiotlb_find_slots", "SWIOTLB-find-full"), "synthetic: not_found falls through"),
    Mutant("swiotlb-find-wrong-slot", "SWIOTLB-find-rule", PROOF + "find⊑take",
           "SWIOTLB-find-rule", replace_fn(S, "swiotlb_find_slots", _wrong_slot), "synthetic"),
    Mutant("swiotlb-find-short-run", "SWIOTLB-alloc-run", PROOF + "find⊑take", "SWIOTLB-find-rule",
           replace_fn(S, "swiotlb_find_slots", _short_run), "synthetic: last slot of a run not recorded"),
    Mutant("swiotlb-find-ignores-min-align", "SWIOTLB-find-align-rule", PROOF + "find⊨rule_find_alignment[6.1 domain]",
           "SWIOTLB-find-align-rule", replace_fn(S, "compute_request", _no_min_align),
           "synthetic: min_align_mask not honoured (NVMe breaks)"),
    Mutant("swiotlb-map-sizes-unchecked", "SWIOTLB-map-sizes", PROOF + "map⊨rule_map_records", "SWIOTLB-map-rule",
           drop_guard(S, "swiotlb_tbl_map_slots", "SWIOTLB-map-sizes"), "synthetic: mapping_size > alloc_size accepted"),
    Mutant("swiotlb-map-tlb-without-offset", "SWIOTLB-map-rule", PROOF + "map⊨rule_map_records", "SWIOTLB-map-rule",
           replace_fn(S, "swiotlb_tbl_map_slots", _tlb_without_offset), "synthetic: tlb_addr loses the min-align offset"),
    Mutant("swiotlb-release-outside-pool", "SWIOTLB-release-no-pool", SCEN + "scenario_release_outside",
           "SWIOTLB-release-no-pool", drop_guard(S, "swiotlb_release_slots", "SWIOTLB-release-no-pool"), "synthetic"),
    Mutant("swiotlb-release-free-slot", "SWIOTLB-release-not-mapped", PROOF + "release⊨rule_release_frees_allocation",
           "SWIOTLB-release-rule", drop_guard(S, "swiotlb_release_slots", "SWIOTLB-release-not-mapped"),
           "Linux 6.1 checks nothing on release"),
    Mutant("swiotlb-release-anything", "SWIOTLB-release-rule", PROOF + "release⊨rule_release_frees_allocation",
           "SWIOTLB-release-rule", patches(drop_guard(S, "swiotlb_release_slots", "SWIOTLB-release-not-mapped"),
                                           drop_guard(S, "swiotlb_release_slots", "SWIOTLB-release-size")), "synthetic"),
    Mutant("swiotlb-release-keeps-used", "SWIOTLB-used", PROOF + "release⊢inv_area_used[area 1]", "SWIOTLB-used",
           replace_fn(S, "swiotlb_release_slots", _release_keeps_used), "synthetic: area->used not decremented"),
    Mutant("swiotlb-release-keeps-orig", "SWIOTLB-slot-meta", PROOF + "release⊢inv_slot_metadata[slot 1]", "SWIOTLB-slot-meta",
           replace_fn(S, "swiotlb_release_slots", _release_keeps("orig_addr")), "synthetic: orig_addr not invalidated"),
    Mutant("swiotlb-release-keeps-alloc-size", "SWIOTLB-release-undoes", PROOF + "take;release-restores[alloc_size]",
           "SWIOTLB-release-undoes", replace_fn(S, "swiotlb_release_slots", _release_keeps("alloc_size")), "synthetic"),
    # -- legality vs exactness (docs/overview.md): legal, but not Linux 6.1.y's choice
    Mutant("swiotlb-find-6.9-search", "SWIOTLB-find-linux-6.1", PROOF + "find⊨exact_find_linux_6_1",
           "SWIOTLB-find-linux-6.1", _policy("v6.9+"),
           "6.9's search answers another free, aligned, in-window run than 6.1's (legal, not 6.1.y)"),
]
