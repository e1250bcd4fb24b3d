"""Slot-allocation policies of swiotlb: which Linux (or seed) version's search and release to model.

Every version difference of the allocator is a named field (DESIGN.md §3 "Presets and policies");
the bounce layer keeps its own policy fields in ``bounce.py``. Sources: facts/upstream.md §0.4-0.5
(seed), §1.4 (list initialisation), §1.9 (the four searches), §1.10 (release).

``search``
    ``"v6.1"``: 6.1.y as maintained (Debian linux-source-6.1 6.1.192): ``alloc_align_mask |= 2047``,
    ``iotlb_align_mask = min_align_mask & ~alloc_align_mask``, stride doubled for >= page requests,
    start at ``ALIGN(area->index, stride)``, ``do {} while (index != wrap)`` with no bound (the model
    reports the non-terminating case as ``SWIOTLB-find-no-termination`` instead of looping).
    ``"v6.3-6.8"``: Petr Tesarik's "fix slot alignment checks" (torvalds/linux@009fbfc9):
    ``iotlb_align_mask = (min_align_mask | alloc_align_mask | page mask if >= page) & ~2047``,
    start at ``area->index``, alignment tested only when ``orig_addr != 0``, ``slots_checked`` bound.
    ``"v6.9+"``: Will Deacon's rework (04867a7a3332 and friends, 14cebf689a78): absolute
    ``alloc_align_mask`` test on every slot, page alignment only when no mask is given.
    ``"seed-v5.7"``: the seed series' ``swiotlb_alloc`` (Linux 5.7 search: no min_align_mask, no
    alloc_align_mask, no areas; page stride for >= page requests).
``free_size``
    ``"recorded"``: release recovers ``nslots`` from the per-slot ``alloc_size`` (5.12+);
    ``"caller"``: the seed's ``swiotlb_free(pool, tlb_addr, alloc_size)`` trusts the caller's size.
``list_init``
    ``"segment"``: ``list[i] = SEGSIZE - (i % SEGSIZE)`` (5.7 and 6.1): only correct when the pool is
    whole segments, so the model refuses other sizes (``SWIOTLB-pool-segments``);
    ``"clamped"``: ``min(SEGSIZE - (i % SEGSIZE), nslabs - i)`` (later mainline), any size.
``alloc_page``
    What ``swiotlb_alloc`` returns: ``"pfn"`` the page holding the first slot
    (``pfn_to_page(PFN_DOWN(tlb_addr))``, 5.15-6.8), ``"slot"`` the slot address itself (seed patch 3,
    6.9+ where it is page aligned by construction).
``alloc_align``
    Alignment ``swiotlb_alloc`` asks of the search: ``"none"`` (0; seed, 6.1-6.8) or ``"order"``
    (``(PAGE_SIZE << get_order(size)) - 1``, 6.9+ "Enforce page alignment in swiotlb_alloc()").
"""
from __future__ import annotations

from dataclasses import dataclass

SEARCHES = ("v6.1", "v6.3-6.8", "v6.9+", "seed-v5.7")


@dataclass(frozen=True, slots=True)
class SwiotlbPolicy:
    """One allocator variant; see the module docstring for each field's values and sources."""

    name: str
    search: str
    free_size: str
    list_init: str
    alloc_page: str
    alloc_align: str

    @property
    def has_areas(self) -> bool:
        """Whether the version splits a pool into areas (v5.7 and the seed had one lock, one index)."""
        return self.search != "seed-v5.7"

    @property
    def uses_min_align(self) -> bool:
        """Whether the device's ``min_align_mask`` exists in this version (5.12+)."""
        return self.search != "seed-v5.7"


V6_1 = SwiotlbPolicy("v6.1", search="v6.1", free_size="recorded", list_init="segment",
                     alloc_page="pfn", alloc_align="none")
V6_3_TO_6_8 = SwiotlbPolicy("v6.3-6.8", search="v6.3-6.8", free_size="recorded", list_init="clamped",
                            alloc_page="pfn", alloc_align="none")
V6_9 = SwiotlbPolicy("v6.9+", search="v6.9+", free_size="recorded", list_init="clamped",
                     alloc_page="slot", alloc_align="order")
SEED_V5_7 = SwiotlbPolicy("seed-v5.7", search="seed-v5.7", free_size="caller", list_init="segment",
                          alloc_page="slot", alloc_align="none")

POLICIES = {p.name: p for p in (V6_1, V6_3_TO_6_8, V6_9, SEED_V5_7)}

# The default: Linux 6.1 as maintained in 6.1.y (DESIGN.md §2). Functions read this module attribute
# at call time, so a mutant or a campaign can swap the allocator version in one place.
DEFAULT = V6_1


def current(policy: SwiotlbPolicy | None) -> SwiotlbPolicy:
    """Return ``policy``, or the module's ``DEFAULT`` read now."""
    return DEFAULT if policy is None else policy
