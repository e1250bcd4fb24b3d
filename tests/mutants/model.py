"""Mutants of properties every transition has (``MODEL-*`` clauses)."""
from . import Mutant, drop_guard, patches, replace_fn

S = "t1virtio.swiotlb.slots"
POL = "t1virtio.swiotlb.policy"


def _typo_reads_as_newest(orig, enum, field, value):
    """The pre-issue-10 behaviour: an unknown search name silently selects the 6.9 search."""
    try:
        return orig(enum, field, value)
    except Exception:  # noqa: BLE001 - the mutant swallows the refusal
        return list(enum)[-2] if field == "search" else list(enum)[0]


MUTANTS = [
    Mutant("model-release-index-unchecked", "MODEL-index-in-range", "proof:swiotlb:release⊢index-safe",
           "MODEL-index-in-range", patches(drop_guard(S, "swiotlb_release_slots", "SWIOTLB-release-no-pool"),
                                           drop_guard(S, "swiotlb_release_slots", "SWIOTLB-release-not-mapped")),
           "synthetic: release trusts the address (Linux checks nothing): its slot index may leave the pool"),
    Mutant("model-policy-typo-defaults", "MODEL-policy-known", "scenario:test_swiotlb_slots:scenario_policy_typo_refused",
           "MODEL-policy-known", replace_fn(POL, "_field", _typo_reads_as_newest),
           "issue 10: a typo in a swiotlb search policy silently selected the 6.9 search"),
]


def _device_reads_one_byte_more(orig, self, c):
    """The device hands the backend the driver's bytes plus one it never wrote."""
    return orig(self, c) + b"\x00"


def _empty_ring_is_a_violation(orig, L, v, *a, **k):
    """The device blames the driver for an empty ring (a peer violation instead of Exhausted)."""
    from dataclasses import replace
    sp = orig(L, v, *a, **k)
    return replace(sp, guards=tuple((g, "VIRTIO/model/avail#head-range" if c == "VIRTIO/model/avail#empty" else c)
                                    for g, c in sp.guards))


MUTANTS += [
    Mutant("model-split-device-reads-extra-byte", "MODEL-reference-agrees", "machine:split", "MODEL-reference-agrees",
           replace_fn("t1virtio.virtio.split", "SplitDevice.read", _device_reads_one_byte_more),
           "synthetic: the backend sees bytes the driver never wrote", examples=100),
    Mutant("model-split-empty-ring-blames-driver", "MODEL-honest-accepted", "machine:split", "MODEL-honest-accepted",
           replace_fn("t1virtio.virtio.split", "pop_avail", _empty_ring_is_a_violation),
           "synthetic: an empty ring refused as the driver's violation (an honest driver would be torn down)",
           examples=100),
]
