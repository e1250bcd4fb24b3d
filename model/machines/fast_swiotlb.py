"""Side-by-side machine: the generated swiotlb fast path against the model (issue 12, docs/performance.md).

Each example builds a pool at the active preset (``--preset linux``: 32768 slots, 8 areas) under one
allocator policy, then runs random operations (maps that fail, bad frees, syncs out of range, every
transition) on the model and on the fast path: after every step the clause, the output and every state
word must be equal (``MODEL-reference-agrees``). The 6.1.y policy runs the numba-compiled code; the other
policies run the same generated text in pure Python (one compile, not four).
"""
from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from t1virtio import errors
from t1virtio.fast import swiotlb as fs
from t1virtio.fast.trace import to_arrays
from t1virtio.logic import CONCRETE
from t1virtio.machines.common import REFERENCE, active_preset, expect
from t1virtio.step import apply
from t1virtio.swiotlb import bounce, pool, slots
from t1virtio.swiotlb import policy as pol

TR = fs.Transitions(slots, bounce, pool)
U = (1 << 64) - 1
START = 0x100000
NAMES = ("map", "map", "release", "release", "alloc", "free", "find", "map_single", "unmap_single", "sync_for_cpu",
         "sync_for_device")


class FastSwiotlbMachine(RuleBasedStateMachine):
    """The model's swiotlb and the generated fast path, the same operations on both."""

    PRESETS = ("SMALL", "LINUX")

    @initialize(policy=st.sampled_from(sorted(pol.POLICIES)))
    def build(self, policy):
        self.preset, self.policy = active_preset(), pol.by_name(policy)
        mode = "numba" if self.policy is pol.V6_1 else "python"
        self.fast = fs.build(self.preset, self.policy, TR, mode)
        n = self.preset.io_tlb_max_areas if self.policy.has_areas else 1
        self.state = pool.swiotlb_init_pool(CONCRETE, self.preset, START, self.preset.pool_nslabs, n, None, None,
                                            self.policy).new
        self.pool = fs.FastPool(self.fast, self.state)
        self.specs = fs.specs(self.preset, self.policy, TR)
        self.live: list[int] = []

    def _arg(self, data):
        return data.draw(st.one_of(
            st.sampled_from(self.live or [0]).flatmap(lambda t: st.sampled_from([t, t + 1, t + 2048, t - 2048 & U])),
            st.sampled_from([0, 1, 2, 2047, 2048, 4095, 4096, 8192, 0x7ff, 0xfff, U, 1 << 52]),
            st.integers(START, START + self.preset.pool_nslabs * 2048 + 4096),
            st.integers(0, U)))

    @rule(name=st.sampled_from(NAMES), data=st.data())
    def step(self, name, data):
        """One transition on both sides; then clause, output and every state word must agree."""
        fn, nargs = self.specs[name]
        args = [self._arg(data) for _ in range(nargs)]
        if name in ("map", "map_single") and data.draw(st.booleans()):
            args[5 if name == "map" else 8] = U            # the common boundary mask, so that maps succeed
        if name == "map_single":
            args[3] = data.draw(st.sampled_from([0, 1, 2, 3]))
        try:
            new, out = apply(fn(CONCRETE, self.state, *args))
            clause = None
        except errors.ModelError as e:
            clause, out, new = e.clause, None, self.state
        fclause, fout = self.pool.call(name, args)
        expect(fclause == clause, REFERENCE, f"{name}{tuple(args)}: model {clause}, fast path {fclause}")
        expect(fout == out, REFERENCE, f"{name}{tuple(args)}: model out {out}, fast path {fout}")
        words = to_arrays(self.fast.layout, new)
        for t, arr in self.pool.arrays.items():
            expect([int(x) for x in arr] == words[t], REFERENCE, f"{name}{tuple(args)}: state table {t} differs")
        self.state = new
        if clause is None and name in ("map", "alloc"):
            self.live.append(out[1])
        if clause is None and name == "map_single":
            self.live.append(out[0])


MACHINES = {"fast_swiotlb": FastSwiotlbMachine}
