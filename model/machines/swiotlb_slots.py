"""swiotlb slot machine: the allocator alone, at the active preset's pool size (``--preset linux``: 32768 slots).

The bounce machine (``swiotlb``) checks bytes and labels of a small shared region; this one checks the
slot allocator at the sizes Linux runs it: a pool of ``pool_nslabs`` slots (Linux's default 64 MiB
pool under ``LINUX``), one to eight areas, every search policy, long-lived and short-lived mappings
and coherent allocations, releases of live, stale and made-up addresses. After every step: the
allocator's rules (component ``swiotlb``: ``map``, ``release``; a refused step changes nothing) and
invariants (free runs, allocations, area counters, slot records) on the whole pool. Whole-pool checks
cost ``O(pool)`` per step (about 0.4 s at 32768 slots): a campaign command, not a test.
"""
from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from t1virtio import errors
from t1virtio.machines.common import active_preset, check_invariants, checked_call
from t1virtio.swiotlb import policy as pol
from t1virtio.swiotlb.pool import IO_TLB_SIZE
from t1virtio.swiotlb.slots import SlotPool

START = 1 << 32                 # page aligned pool base
ORIG = 1 << 40                  # caller buffers live above the pool
REFUSALS = {"SWIOTLB-find-full", "SWIOTLB-find-no-termination", "SWIOTLB-find-too-large", "SWIOTLB-map-sizes"}


class SwiotlbSlotsMachine(RuleBasedStateMachine):
    """map / alloc / release on one pool of the preset's size, every policy, with rules and invariants."""

    PRESETS = ("SMALL", "LINUX")

    @initialize(areas=st.sampled_from([1, 1, 2, 4, 8]), policy=st.sampled_from(sorted(pol.POLICIES)),
                min_align=st.sampled_from([0, 0, 0x7ff, 0xfff]), full=st.sampled_from([0, 0, 50, 90]))
    def boot(self, areas, policy, min_align, full):
        """A pool of ``pool_nslabs`` slots; ``full`` percent of it taken by long-lived 4 KiB mappings."""
        P = active_preset()
        p = pol.POLICIES[policy]
        nareas = min(areas, P.io_tlb_max_areas, P.pool_nslabs // P.io_tlb_segsize) if p.has_areas else 1
        self.pool = SlotPool(P, START, P.pool_nslabs, max(nareas, 1), policy=p)
        self.preset, self.min_align = P, min_align if p.uses_min_align else 0
        self.live: list[tuple[int, int]] = []          # (tlb_addr, alloc_size) of live mappings
        self.gone: list[int] = []                      # released addresses (a stale unmap must be refused)
        for k in range(P.pool_nslabs * full // 200):   # 2 slots each
            self.live.append((self.pool.map(ORIG + k * 8192, 4096, 4096), 4096))

    def _call(self, op: str, call, args: dict):
        return checked_call("swiotlb", op, self.pool, call, args, unchanged_on_refusal=True)

    @rule(buf=st.integers(0, 1 << 20), off=st.integers(0, 4095), size=st.integers(1, 4096 * 3),
          extra=st.sampled_from([0, 0, 1, 2048, 100000]), align=st.sampled_from([0, 0, 0x7ff, 0xfff, 0x3fff]),
          cpu=st.integers(0, 7))
    def map(self, buf, off, size, extra, align, cpu):
        """``swiotlb_tbl_map_single`` of ``size`` bytes (allocation ``size + extra``); refusals are exhaustion or size."""
        orig = ORIG + buf * 4096 + off
        alloc = size + extra
        args = {"orig_addr": orig, "mapping_size": size, "alloc_size": alloc, "alloc_align_mask": align,
                "min_align_mask": self.min_align, "boundary_mask": (1 << 64) - 1, "cpu": cpu}
        ok, err = self._call("map", lambda: self.pool.map(orig, size, alloc, align, self.min_align, cpu=cpu), args)
        if ok:
            self.live.append((self.pool.last_out[1], alloc))
        elif err.clause not in REFUSALS:
            raise err

    @precondition(lambda self: self.live)
    @rule(pick=st.integers(0, 1 << 16))
    def unmap(self, pick):
        """Release a live mapping at its tlb_addr: always accepted."""
        tlb, alloc = self.live.pop(pick % len(self.live))
        args = {"tlb_addr": tlb, "min_align_mask": self.min_align, "size": alloc}
        ok, err = self._call("release", lambda: self.pool.release(tlb, self.min_align, alloc), args)
        if not ok:
            raise errors.fail("SWIOTLB-release-rule", f"release of the live mapping at {tlb:#x} refused: {err}")
        self.gone.append(tlb)

    @rule(slot=st.integers(0, 1 << 16), off=st.sampled_from([0, 1, 2047]), stale=st.booleans())
    def unmap_bogus(self, slot, off, stale):
        """Release an address that is not a live mapping's start: refused, nothing changes."""
        def head_slot(addr: int) -> int:               # the slot an address names once its min-align offset is off
            return (addr - (addr & self.min_align & (IO_TLB_SIZE - 1)) - START) // IO_TLB_SIZE
        tlb = self.gone[slot % len(self.gone)] if stale and self.gone else START + (slot % self.preset.pool_nslabs) * IO_TLB_SIZE + off
        if head_slot(tlb) in {head_slot(t) for t, _ in self.live}:
            return
        args = {"tlb_addr": tlb, "min_align_mask": self.min_align, "size": 4096}
        ok, _ = self._call("release", lambda: self.pool.release(tlb, self.min_align, 4096), args)
        if ok:
            raise errors.fail("SWIOTLB-release-not-mapped", f"release of {tlb:#x}: no live mapping starts in its slot")

    @invariant()
    def pool_invariants(self):
        if hasattr(self, "pool"):
            check_invariants("swiotlb", self.pool.state)


MACHINES = {"swiotlb_slots": SwiotlbSlotsMachine}
