"""Mutants of properties every transition has (``MODEL-*`` clauses)."""
from . import Mutant, drop_guard, patches

S = "t1virtio.swiotlb.slots"

MUTANTS = [
    Mutant("model-release-index-unchecked", "MODEL-index-in-range", "proof:swiotlb:release⊢index-safe",
           "MODEL-index-in-range", patches(drop_guard(S, "swiotlb_release_slots", "SWIOTLB-release-no-pool"),
                                           drop_guard(S, "swiotlb_release_slots", "SWIOTLB-release-not-mapped")),
           "synthetic: release trusts the address (Linux checks nothing): its slot index may leave the pool"),
]
