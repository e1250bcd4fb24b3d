"""swiotlb slot allocator: typed refusals, policies, the 6.1 findings, and the scenarios mutants use."""
from __future__ import annotations

import sys

import pytest

from t1virtio import errors
from t1virtio.logic import CONCRETE
from t1virtio.step import apply
from t1virtio.preset import SMALL
from t1virtio.specs import invariants
from t1virtio.swiotlb import policy, slots
from t1virtio.swiotlb.slots import SlotPool

START = 0x100000
# A pool state where 6.1.y's do/while never returns to its start (min_align_mask 0xfff, no fit):
# the walk cycles 5, 9, 13, 0, 1, 5, ... and never meets wrap = 4.
HANG_MAPS = [(0x204f8, 2048), (0x3c5fd, 3000), (0xe623b, 4096), (0xc25ce, 4096), (0x300e5, 2048)]
HANG_NEXT = (0xe838, 4096)
NVME = 0xfff


def hang_pool() -> SlotPool:
    p = SlotPool(SMALL, START, 16, 1)
    for orig, size in HANG_MAPS:
        p.map(orig, size, min_align_mask=NVME)
    return p


def _clause_of(fn):
    try:
        fn()
    except errors.ModelError as e:
        return e.clause
    return None


# ---------------------------------------------------------------------------------------------
# Scenarios: each returns the clause it sees broken, or None when all is well (tests/mutants)

def scenario_search_terminates():
    """Run the hanging request with a line budget (a watchdog, like the Linux peer's KernelHang)."""
    p = hang_pool()
    budget = [200_000]

    class Hang(Exception):
        pass

    def tracer(frame, event, arg):
        budget[0] -= 1
        if budget[0] < 0:
            raise Hang
        return tracer
    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        p.map(*HANG_NEXT, min_align_mask=NVME)
    except Hang:
        return "SWIOTLB-search-bounded"
    except errors.ModelError:
        return None
    finally:
        sys.settrace(old)
    return None


def scenario_hang_reported():
    got = _clause_of(lambda: hang_pool().map(*HANG_NEXT, min_align_mask=NVME))
    return None if got == "SWIOTLB-find-no-termination" else "SWIOTLB-find-no-termination"


def scenario_too_large():
    st = SlotPool(SMALL, START, 16, 1).state
    got = _clause_of(lambda: apply(slots.swiotlb_find_slots(CONCRETE, SMALL, st, 0x1000, SMALL.io_tlb_segsize * 2048 + 1,
                                                             policy=policy.V6_1)))
    return None if got == "SWIOTLB-find-too-large" else "SWIOTLB-find-too-large"


def scenario_bad_boundary():
    got = _clause_of(lambda: SlotPool(SMALL, START, 16, 1).map(0x1000, 100, boundary_mask=0x17ff))
    return None if got == "SWIOTLB-find-boundary-mask" else "SWIOTLB-find-boundary-mask"


def scenario_release_outside():
    p = SlotPool(SMALL, START, 16, 1)
    p.map(0x1000, 100)
    got = _clause_of(lambda: p.release(START + 16 * 2048 + 0x1000))
    return None if got == "SWIOTLB-release-no-pool" else "SWIOTLB-release-no-pool"


@pytest.mark.parametrize("scenario", [scenario_search_terminates, scenario_hang_reported, scenario_too_large,
                                      scenario_bad_boundary, scenario_release_outside])
def test_scenarios_pass_on_the_model(scenario):
    assert scenario() is None


# ---------------------------------------------------------------------------------------------
# Pool creation and bad calls

@pytest.mark.parametrize("start,nslabs,nareas,clause", [
    (START, 0, 1, "SWIOTLB-pool-nslabs"), (START, 17, 1, "SWIOTLB-pool-nslabs"),
    (START + 2048, 16, 1, "SWIOTLB-pool-align"), (START, 16, 3, "SWIOTLB-pool-areas"),
    (START, 12, 2, "SWIOTLB-pool-areas"), (START, 12, 1, "SWIOTLB-pool-segments")])
def test_bad_pools_are_refused(start, nslabs, nareas, clause):
    with pytest.raises(errors.CallerError) as e:
        SlotPool(SMALL, start, nslabs, nareas)
    assert e.value.clause == clause


def test_clamped_policy_accepts_partial_segment():
    p = SlotPool(SMALL, START, 12, 1, policy=policy.V6_9)
    assert p.state.list[8:12] == (4, 3, 2, 1)
    invariants.check("swiotlb", p.state)


def test_bad_calls_leave_state_alone():
    p = SlotPool(SMALL, START, 16, 2)
    tlb = p.map(0x1234, 3000)
    before = p.state
    for call, clause in [(lambda: p.release(START - 2048), "SWIOTLB-release-no-pool"),
                         (lambda: p.release(START + 8 * 2048), "SWIOTLB-release-not-mapped"),
                         (lambda: p.map(0x1000, 200, alloc_size=100), "SWIOTLB-map-sizes"),
                         (lambda: p.map(0x1000, 0), "SWIOTLB-find-empty"),
                         (lambda: p.map(0x1000, 9 * 2048), "SWIOTLB-find-too-large")]:
        assert _clause_of(call) == clause
        assert p.state == before
    assert p.release(tlb) == 2
    invariants.check("swiotlb", p.state)


def test_full_pool_is_exhausted():
    p = SlotPool(SMALL, START, 16, 2)
    for i in range(4):
        p.map(0x10000 * i, 4 * 2048)
    with pytest.raises(errors.Exhausted) as e:
        p.map(0x1000, 100)
    assert e.value.clause == "SWIOTLB-find-full"


def test_hang_is_reported_not_looped():
    with pytest.raises(errors.Exhausted) as e:
        hang_pool().map(*HANG_NEXT, min_align_mask=NVME)
    assert e.value.clause == "SWIOTLB-find-no-termination"
    # the bounded later versions simply fail on the same pool
    p = hang_pool()
    with pytest.raises(errors.Exhausted) as e:
        apply(slots.swiotlb_tbl_map_slots(CONCRETE, SMALL, p.state, *HANG_NEXT, HANG_NEXT[1], 0, NVME,
                                          policy=policy.V6_9))
    assert e.value.clause == "SWIOTLB-find-full"


def test_61_subpage_alloc_shares_a_page():
    """Finding (peer README #2): two sub-page coherent allocations come back as the same page."""
    p = SlotPool(SMALL, START, 16, 1)
    a, b = p.alloc(2048), p.alloc(2048)
    assert a == b == START
    q = SlotPool(SMALL, START, 16, 1, policy=policy.V6_9)
    assert q.alloc(2048) != q.alloc(2048)


def test_61_drops_bit_11_with_alloc_align_and_min_align():
    """Finding: 6.1.y with alloc_align_mask 0xfff and min_align_mask 0xfff does not keep orig's bit 11."""
    p = SlotPool(SMALL, START, 16, 1)
    orig = 0x4800 + 0x123
    tlb = p.map(orig, 1000, alloc_align_mask=0xfff, min_align_mask=NVME)
    assert (tlb & NVME) != (orig & NVME)


def test_seed_policy_frees_the_callers_size():
    p = SlotPool(SMALL, START, 16, 1, policy=policy.SEED_V5_7)
    tlb = p.map(0x1000, 3 * 2048)
    assert _clause_of(lambda: p.release(tlb, size=2048)) == "SWIOTLB-release-size"
    assert p.release(tlb, size=3 * 2048) == 3


# ---------------------------------------------------------------- policies are named, explicit, never defaulted

def scenario_policy_typo_refused():
    """A policy field that names no version ("v6.l") is refused, never read as some other version."""
    got = _clause_of(lambda: policy.SwiotlbPolicy("typo", search="v6.l", free_size="recorded", list_init="segment",
                                                  alloc_page="pfn", alloc_align="none"))
    return None if got == policy.POLICY_KNOWN else policy.POLICY_KNOWN


def test_policy_typo_refused():
    assert scenario_policy_typo_refused() is None


@pytest.mark.parametrize("make", [
    lambda: policy.by_name("v6.10"),
    lambda: policy.SwiotlbPolicy("x", search="v6.9", free_size="recorded", list_init="segment", alloc_page="pfn",
                                 alloc_align="none"),
    lambda: policy.SwiotlbPolicy("x", search="v6.1", free_size="callers", list_init="segment", alloc_page="pfn",
                                 alloc_align="none"),
    lambda: SlotPool(SMALL, START, 16, 1, policy="v6.1"),              # a name where the policy belongs
    lambda: apply(slots.swiotlb_alloc_slots(CONCRETE, SMALL, SlotPool(SMALL, START, 16, 1).state, 2048)),  # none given
])
def test_unknown_or_missing_policy_is_refused(make):
    with pytest.raises(errors.CallerError) as e:
        make()
    assert e.value.clause == policy.POLICY_KNOWN


def test_policy_fields_are_enums():
    for p in policy.POLICIES.values():
        assert isinstance(p.search, policy.Search) and isinstance(p.list_init, policy.ListInit)
    assert policy.by_name("v6.9+") is policy.V6_9
