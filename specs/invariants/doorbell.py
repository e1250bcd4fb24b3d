"""Invariants of the hypervisor doorbell and its VIRQ source (facts §3.2, §6.5)."""
from __future__ import annotations

from t1virtio.hyp.doorbell import OBJ_ACTIVE, OBJ_DESTROYED, OBJ_INIT, compute_level
from t1virtio.specs.invariants import invariant


@invariant("doorbell", "HYP-DBL-unbound")
def inv_unbound_source_quiet(L, s):
    """An unbound source has no level assertion, no edge bit, nothing in service and no unsignalled flags."""
    return L.Implies(L.Not(s.virq_bound), L.And(L.Not(s.virq_level), L.Not(s.virq_edge), L.Not(s.virq_active),
                                                L.Not(s.unsignalled)))


@invariant("doorbell", "HYP-DBL-level")
def inv_level_covers_enabled_flags(L, s):
    """Bound: enabled flags set means the level is asserted, unless they were already set at bind and
    not signalled since (then the level is down, by construction of bind)."""
    return L.And(L.Implies(L.And(s.virq_bound, compute_level(s.flags, s.enable_mask), L.Not(s.unsignalled)),
                           s.virq_level),
                 L.Implies(s.unsignalled, L.Not(s.virq_level)))


@invariant("doorbell", "HYP-DBL-lifecycle")
def inv_lifecycle(L, s):
    """INIT, ACTIVE or destroyed; only an ACTIVE doorbell has its VIRQ bound."""
    active = s.lifecycle == OBJ_ACTIVE
    return L.And(L.Or(s.lifecycle == OBJ_INIT, active, s.lifecycle == OBJ_DESTROYED),
                 L.Implies(L.Not(active), L.Not(s.virq_bound)))
