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
from enum import StrEnum

from t1virtio import errors

POLICY_KNOWN = "MODEL-policy-known"


class Search(StrEnum):
    """``search``: which kernel's ``swiotlb_do_find_slots``."""
    V6_1 = "v6.1"
    V6_3_TO_6_8 = "v6.3-6.8"
    V6_9 = "v6.9+"
    SEED_V5_7 = "seed-v5.7"


class FreeSize(StrEnum):
    """``free_size``: where release takes the run length from."""
    RECORDED = "recorded"
    CALLER = "caller"


class ListInit(StrEnum):
    """``list_init``: how ``list[]`` starts."""
    SEGMENT = "segment"
    CLAMPED = "clamped"


class AllocPage(StrEnum):
    """``alloc_page``: what ``swiotlb_alloc`` returns."""
    PFN = "pfn"
    SLOT = "slot"


class AllocAlign(StrEnum):
    """``alloc_align``: the alignment ``swiotlb_alloc`` asks of the search."""
    NONE = "none"
    ORDER = "order"


SEARCHES = tuple(Search)


def _field(enum: type[StrEnum], field: str, value: object) -> StrEnum:
    """``value`` as a member of ``enum``; any other value is refused with ``MODEL-policy-known``."""
    try:
        return enum(value)
    except ValueError:
        raise errors.fail(POLICY_KNOWN, f"{field} {value!r} is not one of {', '.join(m.value for m in enum)}") \
            from None


@dataclass(frozen=True, slots=True)
class SwiotlbPolicy:
    """One allocator variant; see the module docstring for each field's values and sources. Every field is
    one of its enum's values (a plain string is accepted only if it names one)."""

    name: str
    search: Search
    free_size: FreeSize
    list_init: ListInit
    alloc_page: AllocPage
    alloc_align: AllocAlign

    def __post_init__(self) -> None:
        for field, enum in (("search", Search), ("free_size", FreeSize), ("list_init", ListInit),
                            ("alloc_page", AllocPage), ("alloc_align", AllocAlign)):
            object.__setattr__(self, field, _field(enum, field, getattr(self, field)))

    @property
    def has_areas(self) -> bool:
        """Whether the version splits a pool into areas (v5.7 and the seed had one lock, one index)."""
        return self.search is not Search.SEED_V5_7

    @property
    def uses_min_align(self) -> bool:
        """Whether the device's ``min_align_mask`` exists in this version (5.12+)."""
        return self.search is not Search.SEED_V5_7


V6_1 = SwiotlbPolicy("v6.1", search=Search.V6_1, free_size=FreeSize.RECORDED, list_init=ListInit.SEGMENT,
                     alloc_page=AllocPage.PFN, alloc_align=AllocAlign.NONE)
V6_3_TO_6_8 = SwiotlbPolicy("v6.3-6.8", search=Search.V6_3_TO_6_8, free_size=FreeSize.RECORDED,
                            list_init=ListInit.CLAMPED, alloc_page=AllocPage.PFN, alloc_align=AllocAlign.NONE)
V6_9 = SwiotlbPolicy("v6.9+", search=Search.V6_9, free_size=FreeSize.RECORDED, list_init=ListInit.CLAMPED,
                     alloc_page=AllocPage.SLOT, alloc_align=AllocAlign.ORDER)
SEED_V5_7 = SwiotlbPolicy("seed-v5.7", search=Search.SEED_V5_7, free_size=FreeSize.CALLER,
                          list_init=ListInit.SEGMENT, alloc_page=AllocPage.SLOT, alloc_align=AllocAlign.NONE)

POLICIES = {p.name: p for p in (V6_1, V6_3_TO_6_8, V6_9, SEED_V5_7)}

# Linux 6.1 as maintained in 6.1.y (DESIGN.md §2): what a concrete pool uses when its constructor is not told
# otherwise. It is a constant, never a switch: every transition takes its policy as an argument.
LINUX_6_1 = V6_1


def by_name(name: str) -> SwiotlbPolicy:
    """The policy called ``name``; an unknown name is refused with ``MODEL-policy-known``."""
    if name not in POLICIES:
        raise errors.fail(POLICY_KNOWN, f"swiotlb policy {name!r} is not one of {', '.join(POLICIES)}")
    return POLICIES[name]


def require(policy: object) -> SwiotlbPolicy:
    """``policy`` itself, which every transition must be given: a missing or foreign one is refused."""
    if not isinstance(policy, SwiotlbPolicy):
        raise errors.fail(POLICY_KNOWN, f"a swiotlb transition needs a SwiotlbPolicy, got {policy!r}")
    return policy
