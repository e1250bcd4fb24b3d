"""Bounce-layer mutants: the historical swiotlb bounce bugs (facts §1.8, §1.11, formal §5.4) and one per clause."""
from __future__ import annotations

import importlib
from dataclasses import replace
from unittest import mock

from . import Mutant, drop_guard, replace_fn

B = "t1virtio.swiotlb.bounce"
D = "t1virtio.swiotlb.dma"
S = "scenario:test_swiotlb_bounce"


def _ath9k(orig, L, dir):
    """aa6f8dcbab47 (5.17-rc8, reverted in bddac7c1e02b): sync_for_device bounces whatever the direction."""
    return b_const("ORIG_TO_SLOT")


def b_const(name):
    import importlib
    return getattr(importlib.import_module(B), name)


def set_default(value_name):
    """A patch making the machine's map-time policy ``value_name`` (what a kernel build would ship)."""
    def patch():
        mach = importlib.import_module("t1virtio.machines.swiotlb")
        return mock.patch.object(mach, "MAP_BOUNCE", getattr(importlib.import_module(B), value_name))
    return patch


def _copy_back_dropped(orig, orig_view, pool, copy):
    """The byte layer drops slot -> orig copies: the device's bytes never reach the caller."""
    if copy.kind == b_const("SLOT_TO_ORIG"):
        return None
    return orig(orig_view, pool, copy)


def _copy_16_more(orig, orig_view, pool, copy):
    """The byte layer copies 16 bytes past the window it was given."""
    return orig(orig_view, pool, replace(copy, n=copy.n + 16) if copy.n else copy)


def _no_map_bounce(orig, L, map_bounce, dir, attrs):
    """Before ddbd89deb7d3: map copies orig -> slot only for TO_DEVICE/BIDIRECTIONAL (CVE-2022-0854)."""
    return orig(L, b_const("PRE_5_17"), dir, attrs)


def _always_map_bounce(orig, L, map_bounce, dir, attrs):
    """901c7280ca0d's unconditional map-time copy under the default policy: orig reaches the device for FROM_DEVICE."""
    return orig(L, b_const("LINUX_5_18"), dir, attrs)


def _unmap_copies_to_device(orig, L, dir, attrs):
    """Unmap copies slot -> orig for TO_DEVICE too: whatever the device left in the slot reaches the caller."""
    return L.If((attrs & 32) == 32, b_const("NO_COPY"), b_const("SLOT_TO_ORIG"))


def _unmap_whole_slots(orig, L, preset, s, tlb_addr, mapping_size, dir, attrs=0, min_align_mask=0, policy=None):
    """Unmap copies whole slots back (rounded up to 2 KiB), past the end of the mapping."""
    sp = orig(L, preset, s, tlb_addr, mapping_size, dir, attrs, min_align_mask, policy)
    rounded = (mapping_size + 2047) & ~2047 if not L.symbolic else (mapping_size + 2047) & L.BitNot(2047, 64)
    return replace(sp, out=replace(sp.out, n=L.If(mapping_size == 0, mapping_size, rounded + 1)))


def _ipa_off_by_base(orig, self, tlb_addr):
    """The seed's offset addressing forgotten: descriptors carry the secondary's IPA where the backend expects offsets."""
    return tlb_addr if self.policy.addressing == "offset" else tlb_addr - self.region_base


def _no_max(orig, self, orig_addr, size, dir, attrs=0):
    """``.max_mapping_size`` not enforced: any size goes to swiotlb."""
    return self.to_dma(self.swiotlb.map_single(self.pool, orig_addr, size, dir, attrs=attrs))


def _to_tlb_unchecked(orig, self, dma, size=1):
    off = dma if self.policy.addressing == "offset" else dma - self.region_base
    return self.region_base + off


def _find_pool_any(orig, self, addr):
    """is_swiotlb_buffer skipped: an address in no pool is handed to the last pool."""
    try:
        return orig(self, addr)
    except Exception:
        return self.pools[-1]


def _unmap_any_size(orig, self, tlb_addr, mapping_size, dir, attrs=0):
    """No dma-debug record check: unmap trusts the caller's size and direction."""
    self.mappings.pop(tlb_addr, None)
    return orig(self, tlb_addr, mapping_size, dir, attrs)



def _map_zero_fills(orig, L, map_bounce, dir, attrs):
    """Every map zero-fills the slot: a TO_DEVICE buffer reaches the device as zeroes (illegal)."""
    return b_const("ZERO_SLOT")


MUTANTS = [
    # the historical bugs
    Mutant("bounce-ath9k-sync-for-device", "SWIOTLB-BOUNCE-direction",
           "proof:swiotlb_bounce:sync_for_device⊨rule_sync_for_device_never_clobbers", "SWIOTLB-BOUNCE-direction",
           replace_fn(B, "sync_for_device_kind", _ath9k), "aa6f8dcbab47 (5.17-rc8), reverted bddac7c1e02b: ath9k"),
    Mutant("bounce-copy-back-dropped", "SWIOTLB-BOUNCE-transparent", f"{S}:machine_quick", "SWIOTLB-BOUNCE-transparent",
           replace_fn(B, "swiotlb_bounce", _copy_back_dropped), "synthetic: device data never reaches the caller",
           examples=60),
    Mutant("bounce-no-map-time-bounce", "SWIOTLB-BOUNCE-no-stale", f"{S}:machine_quick", "SWIOTLB-BOUNCE-no-stale",
           set_default("PRE_5_17"), "CVE-2022-0854 (before ddbd89deb7d3): pre-5.17 map bounce shipped", examples=200),
    Mutant("bounce-no-map-time-bounce-cve", "SWIOTLB-BOUNCE-no-stale", f"{S}:cve_2022_0854", "SWIOTLB-BOUNCE-no-stale",
           replace_fn(B, "map_copy_kind", _no_map_bounce), "CVE-2022-0854 (Halil Pasic's LTP reproducer, shape)"),
    Mutant("bounce-map-exports-from-device", "SWIOTLB-BOUNCE-no-export", f"{S}:machine_quick", "SWIOTLB-BOUNCE-no-export",
           set_default("LINUX_5_18"), "901c7280ca0d (5.18+, 6.1.y) map-time copy shipped as the default", examples=100),
    Mutant("bounce-map-ignores-policy", "SWIOTLB-BOUNCE-direction",
           "proof:swiotlb_bounce_map:map_single⊨exact_map_fills_per_policy", "SWIOTLB-BOUNCE-direction",
           replace_fn(B, "map_copy_kind", _no_map_bounce), "CVE-2022-0854: map skips the FROM_DEVICE bounce whatever the policy"),
    Mutant("bounce-unmap-copies-to-device", "SWIOTLB-BOUNCE-direction",
           "proof:swiotlb_bounce:unmap_single⊨rule_unmap_copies_back", "SWIOTLB-BOUNCE-direction",
           replace_fn(B, "unmap_copy_kind", _unmap_copies_to_device), "synthetic: TO_DEVICE unmap bounces back"),
    Mutant("bounce-copy-overruns-mapping", "SWIOTLB-BOUNCE-copy-inside",
           "proof:swiotlb_bounce:unmap_single⊨rule_unmap_copy_inside", "SWIOTLB-BOUNCE-copy-inside",
           replace_fn(B, "swiotlb_unmap_single", _unmap_whole_slots), "synthetic: unmap copies whole slots back"),
    Mutant("bounce-copy-overruns-caller-buffer", "SWIOTLB-BOUNCE-copy-inside", f"{S}:machine_quick", "SWIOTLB-BOUNCE-copy-inside",
           replace_fn(B, "swiotlb_bounce", _copy_16_more), "synthetic: bytes past the window overwritten", examples=60),
    # one per guard clause
    Mutant("bounce-sync-any-range", "SWIOTLB-BOUNCE-sync-range",
           "proof:swiotlb_bounce:sync_for_cpu⊨rule_sync_for_cpu_inside", "SWIOTLB-BOUNCE-copy-inside",
           drop_guard(B, "swiotlb_sync_single_for_cpu", "SWIOTLB-BOUNCE-sync-range"),
           "6.1 clamps instead of refusing; without either the copy leaves the mapping"),
    Mutant("bounce-sync-coherent", "SWIOTLB-BOUNCE-not-mapped",
           "proof:swiotlb_bounce:sync_for_device⊨rule_sync_for_device_inside", "SWIOTLB-BOUNCE-copy-inside",
           drop_guard(B, "swiotlb_sync_single_for_device", "SWIOTLB-BOUNCE-not-mapped"),
           "synthetic: a sync outside any streaming mapping copies"),
    Mutant("bounce-unmap-bigger", "SWIOTLB-BOUNCE-unmap-size",
           "proof:swiotlb_bounce:unmap_single⊨rule_unmap_copy_inside", "SWIOTLB-BOUNCE-copy-inside",
           drop_guard(B, "swiotlb_unmap_single", "SWIOTLB-BOUNCE-unmap-size"), "synthetic: unmap size past the allocation"),
    Mutant("bounce-unmap-size-unchecked", "SWIOTLB-BOUNCE-unmap-size", f"{S}:unmap_wrong_size",
           "SWIOTLB-BOUNCE-unmap-size", replace_fn(B, "Swiotlb.unmap_single", _unmap_any_size),
           "no dma-debug check_unmap"),
    Mutant("bounce-dma-none", "SWIOTLB-BOUNCE-dir", f"{S}:machine_quick", "SWIOTLB-BOUNCE-dir",
           drop_guard(B, "swiotlb_map_single", "SWIOTLB-BOUNCE-dir"), "synthetic: DMA_NONE mapped", examples=60),
    Mutant("bounce-no-pool-check", "SWIOTLB-BOUNCE-no-pool", f"{S}:unmap_in_no_pool", "SWIOTLB-BOUNCE-no-pool",
           replace_fn(B, "Swiotlb.find_pool", _find_pool_any), "mainline ignores is_swiotlb_buffer == false"),
    Mutant("virtio-bounce-no-max-mapping", "VIRTIO-BOUNCE-max-mapping", f"{S}:map_over_max", "VIRTIO-BOUNCE-max-mapping",
           replace_fn(D, "VirtioBounceOps.map_page", _no_max), "synthetic: .max_mapping_size ignored"),
    Mutant("virtio-bounce-dma-unchecked", "VIRTIO-BOUNCE-dma-addr", f"{S}:dma_outside_region", "VIRTIO-BOUNCE-dma-addr",
           replace_fn(D, "VirtioBounceOps.to_tlb", _to_tlb_unchecked), "synthetic: base + dma trusted"),
    Mutant("virtio-bounce-ipa-as-offset", "VIRTIO-BOUNCE-in-region", f"{S}:machine_quick", "VIRTIO-BOUNCE-in-region",
           replace_fn(D, "VirtioBounceOps.to_dma", _ipa_off_by_base), "synthetic: region base not subtracted",
           examples=60),
    # -- legality: the DMA API's map fills (any policy's choice is legal; this is none of them)
    Mutant("bounce-map-zero-fills-to-device", "SWIOTLB-BOUNCE-map-fill-safe",
           "proof:swiotlb_bounce_map:map_single⊨rule_map_fill_allowed", "SWIOTLB-BOUNCE-map-fill-safe",
           replace_fn(B, "map_copy_kind", _map_zero_fills), "synthetic: TO_DEVICE data replaced by zeroes"),
]
