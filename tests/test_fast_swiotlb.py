"""The generated swiotlb fast path equals the model (issue 12; docs/performance.md "Equality").

(a) Hypothesis: random op sequences (maps that fail, bad frees, syncs out of range, every transition) run on
the model and on the fast path side by side: same clause, same out, same state words after every step, at
SMALL and LINUX sizes, numba for 6.1 and the pure-Python mode (the same function text) for every policy;
(b) exhaustive at a tiny preset: every state reachable in DEPTH steps from a fresh pool over a fixed op
alphabet, every op from every one of them; (c) against the Linux peer at the real pool size.
"""
from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from t1virtio import errors
from t1virtio.fast import codegen
from t1virtio.fast import swiotlb as fs
from t1virtio.fast.trace import to_arrays
from t1virtio.logic import CONCRETE
from t1virtio.preset import LINUX, SMALL
from t1virtio.step import apply
from t1virtio.swiotlb import bounce, pool, slots
from t1virtio.swiotlb import policy as pol

TR = fs.Transitions(slots, bounce, pool)
U = (1 << 64) - 1
START = 0x100000
TINY = replace(SMALL, name="TINY", pool_nslabs=4, io_tlb_segsize=2, io_tlb_max_areas=1)
pool.register_geometry(TINY)


def _state(preset, p, nareas=None):
    n = nareas if nareas is not None else (preset.io_tlb_max_areas if p.has_areas else 1)
    return pool.swiotlb_init_pool(CONCRETE, preset, START, preset.pool_nslabs, n, None, None, p).new


def _model(preset, p, name, st_, args):
    fn, _ = fs.specs(preset, p, TR)[name]
    try:
        new, out = apply(fn(CONCRETE, st_, *args))
        return None, out, new
    except errors.ModelError as e:
        return e.clause, None, st_


def _step(fast, fp, preset, p, name, st_, args):
    """One op on both sides; assert equal; return the model's (clause, out, new state)."""
    clause, out, new = _model(preset, p, name, st_, args)
    fclause, fout = fp.call(name, args)
    assert fclause == clause, (name, args, clause, fclause)
    assert fout == out, (name, args, out, fout)
    words = to_arrays(fast.layout, new)
    for t, arr in fp.arrays.items():
        assert [int(x) for x in arr] == words[t], (name, args, t)
    return clause, out, new


NAMES = ["map", "map", "release", "release", "alloc", "free", "find", "map_single", "unmap_single", "sync_for_cpu",
         "sync_for_device"]


def _arg(data, nslabs, live):
    return data.draw(st.one_of(
        st.sampled_from(live or [0]).flatmap(lambda t: st.sampled_from([t, t + 1, t + 2048, t - 2048 & U])),
        st.sampled_from([0, 1, 2, 2047, 2048, 4095, 4096, 8192, 0x7ff, 0xfff, U, 1 << 52]),
        st.integers(START, START + nslabs * 2048 + 4096),
        st.integers(0, U)))


def _run_ops(data, fast, preset, p, nops):
    st_ = _state(preset, p)
    fp = fs.FastPool(fast, st_)
    live: list = []
    sp = fs.specs(preset, p, TR)
    for _ in range(nops):
        name = data.draw(st.sampled_from(NAMES))
        args = [_arg(data, preset.pool_nslabs, live) for _ in range(sp[name][1])]
        if name in ("map", "map_single") and data.draw(st.booleans()):
            args[5 if name == "map" else 8] = U          # the common boundary mask, so that maps succeed
        if name == "map_single":
            args[3] = data.draw(st.sampled_from([0, 1, 2, 3]))
        clause, out, st_ = _step(fast, fp, preset, p, name, st_, args)
        if clause is None and name in ("map", "alloc"):
            live.append(out[1])
        if clause is None and name == "map_single":
            live.append(out[0])


@pytest.mark.parametrize("preset", [SMALL, LINUX], ids=["SMALL", "LINUX"])
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(data=st.data())
def test_numba_matches_the_model_61(preset, data):
    fast = fs.build(preset, pol.V6_1, TR, "numba")
    _run_ops(data, fast, preset, pol.V6_1, 25)


@pytest.mark.parametrize("policy", list(pol.POLICIES.values()), ids=list(pol.POLICIES))
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(data=st.data())
def test_pure_python_matches_the_model_every_policy(policy, data):
    fast = fs.build(SMALL, policy, TR, "python")
    _run_ops(data, fast, SMALL, policy, 25)


def test_both_modes_print_the_same_functions():
    a = fs.build(SMALL, pol.V6_9, TR, "python")
    fns = list(a.functions.values())
    assert codegen.generate(fns)[0] in codegen.module_source(fns, "numba")
    assert codegen.generate(fns)[0] in codegen.module_source(fns, "python")
    assert "numba" not in codegen.prelude("python", {})


def _alphabet():
    maps = [("map", [START * 2 + o, ms, a, aa, 0, U, 0]) for o in (0, 0x800) for (ms, a) in ((1, 1), (2048, 4096), (0, 2049))
            for aa in (0, 0xfff)]
    rel = [("release", [START + k * 2048 + off, 0, size]) for k in range(4) for off in (0, 1) for size in (0, 4096)]
    other = [("alloc", [s, 0, U, 0]) for s in (1, 4096)] + [("free", [START + k * 2048, 2048, 0]) for k in range(4)]
    bnc = [("map_single", [START * 2, 100, 100, d, 0, 1, 0, 0, U, 0]) for d in (0, 2, 3)] + \
        [("unmap_single", [START + k * 2048, 100, d, 0, 0]) for k in range(4) for d in (0, 1)] + \
        [("sync_for_cpu", [START + k * 2048 + 50, 50, 0, 0]) for k in range(2)]
    return maps + rel + other + bnc


@pytest.mark.parametrize("policy", [pol.V6_1, pol.SEED_V5_7], ids=["v6.1", "seed-v5.7"])
def test_exhaustive_at_a_tiny_preset(policy):
    """Every state reachable in 3 steps of the alphabet (4 slots, 2-slot segments), every op from each."""
    fast = fs.build(TINY, policy, TR, "python")
    ops = _alphabet()
    frontier = {to_arrays(fast.layout, _state(TINY, policy, 1))["sc"].__repr__(): _state(TINY, policy, 1)}
    seen: dict = {}
    steps = 0
    for _depth in range(3):
        nxt = {}
        for st_ in frontier.values():
            key = repr(to_arrays(fast.layout, st_))
            if key in seen:
                continue
            seen[key] = st_
            for name, args in ops:
                fp = fs.FastPool(fast, st_)
                clause, _, new = _step(fast, fp, TINY, policy, name, st_, args)
                steps += 1
                if clause is None:
                    nxt[repr(to_arrays(fast.layout, new))] = new
        frontier = nxt
    assert len(seen) > 20 and steps > 1000, (len(seen), steps)
    print(f"\nexhaustive {policy.name}: {len(seen)} states, {steps} steps compared")


def test_fast_path_matches_linux_at_the_default_pool_size():
    from linuxpeer import swiotlb_peer
    from t1virtio import bench
    res = bench.fast_vs_linux(3000, seed=7, check_every=1000, peer=swiotlb_peer())
    assert res["mismatches"] == 0, res
    assert res["maps"] > 1000 and res["unmaps"] > 1000, res


def test_random_long_sequence_numba_linux_preset():
    """A longer plain-random run at LINUX (32768 slots, 8 areas): the batch driver's ops through run_ops."""
    import numpy as np
    fast = fs.build(LINUX, pol.V6_1, TR, "numba")
    st_ = _state(LINUX, pol.V6_1)
    fp = fs.FastPool(fast, st_)
    rnd = random.Random(3)
    rows = []
    for _ in range(300):
        rows.append([fast.names.index("map"), START * 70 + rnd.randrange(1 << 20), 0, rnd.choice([1, 4096, 9000]),
                     rnd.choice([0, 0xfff]), 0, U, rnd.randrange(8), 0, 0, 0])
    ops = np.array(rows, np.uint64)
    res = np.zeros((len(ops), 1 + len(fp.out)), np.uint64)
    fast.module.run_ops(*fp.tabs, fp.args, fp.out, ops, res)
    for r in range(len(rows)):
        clause, out, st_ = _model(LINUX, pol.V6_1, "map", st_, [int(x) for x in rows[r][1:8]])
        assert (fast.clause("map", int(res[r, 0]))) == clause
        if clause is None:
            assert int(res[r, 2]) == out[1]
    words = to_arrays(fast.layout, st_)
    for t, arr in fp.arrays.items():
        assert [int(x) for x in arr] == words[t], t
