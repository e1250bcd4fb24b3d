"""swiotlb bounce layer: the per-direction table, typed refusals that change nothing, the leak table, scenarios.

Functions without the ``test_`` prefix are mutant scenarios (tests/mutants/swiotlb_bounce.py): each
returns the clause it sees broken, or None when the model behaves.
"""
import pytest

from t1virtio import errors
from t1virtio.swiotlb import bounce as b
from t1virtio.machines import swiotlb as swiotlb_machine
from t1virtio.swiotlb import dma, labels

FROM, TO, BIDI = b.DMA_FROM_DEVICE, b.DMA_TO_DEVICE, b.DMA_BIDIRECTIONAL


def _system(**kw):
    kw.setdefault("map_bounce", b.ZERO_FILL)
    return labels.LabeledSystem(pools=kw.pop("pools", (8, 8)), **kw)


def _refused(fn, clause):
    """Run ``fn``; return None if it raised ``clause``'s typed error, else ``clause``."""
    try:
        fn()
    except errors.ModelError as e:
        return None if e.clause == clause and isinstance(e, errors.error_class(clause)) else clause
    return clause


# ---------------------------------------------------------------- scenarios (mutant checks)

def cve_2022_0854():
    """A short device write into a FROM_DEVICE buffer must not hand the caller bytes of an earlier mapping."""
    return labels.NO_STALE if labels.leak_report(swiotlb_machine.MAP_BOUNCE)["stale bytes reach the caller"] else None


def unmap_wrong_size():
    s = _system()
    ops = s.ops[0]
    d = ops.map_page(s.ram, 600, FROM)
    before = s.ops[0].pool.state
    got = _refused(lambda: ops.unmap_page(d, 599, FROM), "SWIOTLB-BOUNCE-unmap-size")
    return got or (None if ops.pool.state == before else "SWIOTLB-BOUNCE-unmap-size")


def unmap_in_no_pool():
    s = _system(pools=(8,))
    s.ops[0].map_page(s.ram, 600, FROM)
    stray = s.sec + 8 * 2048 + 4096                   # in the region, past the only pool
    return _refused(lambda: s.swiotlb.unmap_single(stray, 100, FROM), "SWIOTLB-BOUNCE-no-pool")


def map_over_max():
    s = _system()
    ops = s.ops[0]
    return _refused(lambda: ops.map_page(s.ram, ops.max_mapping_size() + 1, TO), dma.MAX_MAPPING)


def dma_outside_region():
    s = _system(dma_policy=dma.DmaPolicy(addressing=dma.IPA))
    ops = s.ops[0]
    ops.map_page(s.ram, 100, TO)
    return _refused(lambda: ops.unmap_page(s.sec + s.size, 100, TO), dma.DMA_ADDR)


@pytest.mark.parametrize("scenario", [cve_2022_0854, unmap_wrong_size, unmap_in_no_pool, map_over_max, dma_outside_region])
def test_scenarios_see_nothing_broken(scenario):
    assert scenario() is None


# ---------------------------------------------------------------- the direction table (facts §1.11)

@pytest.mark.parametrize("dir", [TO, FROM, BIDI])
def test_round_trip_per_direction(dir):
    s = _system()
    ops = s.ops[1]
    s.fill(0, s.ram + 10, b"caller" * 100, 1)
    d = ops.map_page(s.ram + 10, 600, dir)
    slot = s.pri + ops.region_offset(d)
    seen = s.device.read(slot, 600)
    assert seen == (bytes(600) if dir == FROM else b"caller" * 100)       # zero-fill default for FROM_DEVICE
    s.device_write(d + 100, ops, b"DEV" * 10)
    ops.sync_single_for_cpu(d + 100, 30, dir)
    now = s.caller.read(s.ram + 110, 30)
    assert now == ((b"caller" * 100)[100:130] if dir == TO else b"DEV" * 10)
    ops.unmap_page(d, 600, dir)
    back = s.caller.read(s.ram + 10, 600)
    if dir == TO:
        assert back == b"caller" * 100
    elif dir == BIDI:
        assert back == (b"caller" * 100)[:100] + b"DEV" * 10 + (b"caller" * 100)[130:]
    else:
        assert back == bytes(100) + b"DEV" * 10 + bytes(470)


def test_sync_for_device_never_clobbers_from_device_data():
    """ath9k: the device's bytes in a FROM_DEVICE slot survive sync_for_device."""
    s = _system()
    ops = s.ops[0]
    d = ops.map_page(s.ram, 256, FROM)
    s.device_write(d, ops, b"x" * 256)
    ops.sync_single_for_device(d, 256, FROM)
    assert s.device.read(s.pri + ops.region_offset(d), 256) == b"x" * 256


def test_skip_cpu_sync_unmap_copies_nothing():
    s = _system()
    ops = s.ops[0]
    s.fill(0, s.ram, b"o" * 64, 1)
    d = ops.map_page(s.ram, 64, BIDI)
    s.device_write(d, ops, b"n" * 64)
    ops.unmap_page(d, 64, BIDI, attrs=b.DMA_ATTR_SKIP_CPU_SYNC)
    assert s.caller.read(s.ram, 64) == b"o" * 64


def test_non_linear_views():
    """The pool's start (IPA), the kernel's vaddr and the primary's address all differ, and name the same bytes."""
    s = _system()
    p = s.ops[0].pool
    assert len({p.state.start, p.state.vaddr, s.pri}) == 3
    s.fill(0, s.ram, b"q" * 8, 1)
    tlb = s.swiotlb.map_single(p, s.ram, 8, TO)
    assert s.kernel.read(p.tlb_vaddr(tlb), 8) == s.device.read(s.pri + tlb - s.sec, 8) == b"q" * 8


# ---------------------------------------------------------------- refusals are typed and change nothing

@pytest.mark.parametrize("call, clause", [
    (lambda s: s.swiotlb.map_single(s.ops[0].pool, s.ram, 10, b.DMA_NONE), "SWIOTLB-BOUNCE-dir"),
    (lambda s: s.swiotlb.map_single(s.ops[0].pool, s.ram, 10, TO, alloc_size=9), "SWIOTLB-map-sizes"),
    (lambda s: s.ops[0].map_page(s.ram, dma.VIRTIO_MAX_BOUNCE_SIZE + 1, TO), "VIRTIO-BOUNCE-max-mapping"),
    (lambda s: s.swiotlb.unmap_single(s.sec + 2048, 10, FROM), "SWIOTLB-release-not-mapped"),
    (lambda s: s.swiotlb.unmap_single(s.sec + s.size + 4096, 10, FROM), "SWIOTLB-BOUNCE-no-pool"),
    (lambda s: s.swiotlb.sync_single_for_cpu(s.sec + 3 * 2048 + 1, 10, FROM), "SWIOTLB-BOUNCE-not-mapped"),
    (lambda s: s.swiotlb.unmap_single(s.mapped, 99, FROM), "SWIOTLB-BOUNCE-unmap-size"),
    (lambda s: s.swiotlb.unmap_single(s.mapped, 100, TO), "SWIOTLB-BOUNCE-unmap-size"),
    (lambda s: s.swiotlb.sync_single_for_cpu(s.mapped + 50, 51, FROM), "SWIOTLB-BOUNCE-sync-range"),
    (lambda s: s.swiotlb.sync_single_for_cpu(s.mapped, 10, b.DMA_NONE), "SWIOTLB-BOUNCE-dir"),
    (lambda s: s.swiotlb.free(s.mapped, 100), "SWIOTLB-BOUNCE-not-mapped"),
])
def test_refusals_are_typed_and_change_nothing(call, clause):
    s = _system()
    s.mapped = s.swiotlb.map_single(s.ops[0].pool, s.ram + 4096, 100, FROM)
    states = [p.state for p in s.swiotlb.pools]
    mem = (s.hv.view(1).read(s.ram, s.ram_size), s.hv.view(0).read(s.pri, s.size))
    with pytest.raises(errors.ModelError) as e:
        call(s)
    assert e.value.clause == clause and isinstance(e.value, errors.error_class(clause))
    assert str(e.value).startswith(clause)
    assert [p.state for p in s.swiotlb.pools] == states
    assert (s.hv.view(1).read(s.ram, s.ram_size), s.hv.view(0).read(s.pri, s.size)) == mem


# ---------------------------------------------------------------- the leak table (computed, DESIGN.md §4)

def test_leak_table():
    table = dict(labels.leak_table())
    stale, export, coherent = labels.LEAKS
    assert table["pre-5.17 (coherent zeroed)"] == {stale: True, export: False, coherent: False, "transparent": False}
    assert table["5.18+ (coherent zeroed)"] == {stale: False, export: True, coherent: False, "transparent": True}
    assert table["zero-fill (coherent zeroed)"] == {stale: False, export: False, coherent: False, "transparent": False}
    assert table["seed: pre-5.17 map, coherent not zeroed"] == {stale: True, export: False, coherent: True,
                                                                "transparent": False}


def test_machine_policy_is_leak_free():
    report = labels.leak_report(swiotlb_machine.MAP_BOUNCE)
    assert not any(report[k] for k in labels.LEAKS)


# ---------------------------------------------------------------- against the real Linux 6.1.y swiotlb.c

def test_bounce_bytes_agree_with_linux_6_1():
    """Under the 5.18+ policy (6.1.y's), the caller's bytes after every map / device write / sync / unmap
    are those the real kernel/dma/swiotlb.c leaves, for the same operations on the same bytes."""
    import random

    from linuxpeer import swiotlb_peer
    from t1virtio.hyp.memview import FlatView
    from dataclasses import replace

    from t1virtio.preset import LINUX
    from t1virtio.swiotlb import pool as swpool
    peer = swiotlb_peer()
    one_segment = replace(LINUX, name="LINUX-128", pool_nslabs=LINUX.io_tlb_segsize, io_tlb_max_areas=1)
    swpool.register_geometry(one_segment)
    nslabs, orig_base, orig_size = one_segment.pool_nslabs, 0x80000, 0x8000
    mem = peer.GuestMemory(1 << 20)
    lx = peer.Pool(mem, start=0, nslabs=nslabs)
    lx.set_device(min_align_mask=0x3ff, segment_boundary_mask=(1 << 64) - 1)
    priv = FlatView(orig_size, base=orig_base)
    sw = b.Swiotlb(one_segment, priv, map_bounce=b.LINUX_5_18, min_align_mask=0x3ff)
    pool = sw.register_pool("p", 0, nslabs, FlatView(nslabs * 2048, base=0x4000_0000), 0x4000_0000)
    rng = random.Random(7)
    seed_bytes = bytes(rng.randrange(256) for _ in range(orig_size))
    mem.write(orig_base, seed_bytes)
    priv.write(orig_base, seed_bytes)
    live = []                                       # (orig, size, dir, linux tlb, model tlb)
    peer_dirs = {TO: peer.TO_DEVICE, FROM: peer.FROM_DEVICE, BIDI: peer.BIDIRECTIONAL}
    for _ in range(200):
        r = rng.random()
        if r < 0.35 or not live:
            size, off = rng.randrange(1, 5000), rng.randrange(0, orig_size - 5000)
            dir = rng.choice([TO, FROM, BIDI])
            t_lx = lx.map_single(orig_base + off, size, peer_dirs[dir])
            try:
                t_md = sw.map_single(pool, orig_base + off, size, dir)
            except errors.Exhausted:
                t_md = None
            assert (t_lx is None) == (t_md is None)
            if t_lx is not None:
                live.append((orig_base + off, size, dir, t_lx, t_md))
        elif r < 0.65:
            o, size, dir, t_lx, t_md = rng.choice(live)
            at, data = rng.randrange(size), bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            data = data[:size - at]
            mem.write(t_lx + at, data)                                   # the device, at its own address
            pool.vview.write(pool.tlb_vaddr(t_md + at), data)
        elif r < 0.85:
            o, size, dir, t_lx, t_md = rng.choice(live)
            lo = rng.randrange(size)
            n = rng.randrange(0, size - lo + 1)
            if rng.random() < 0.5:
                lx.sync_for_cpu(t_lx + lo, n, peer_dirs[dir])
                sw.sync_single_for_cpu(t_md + lo, n, dir)
            else:
                lx.sync_for_device(t_lx + lo, n, peer_dirs[dir])
                sw.sync_single_for_device(t_md + lo, n, dir)
        else:
            o, size, dir, t_lx, t_md = live.pop(rng.randrange(len(live)))
            lx.unmap_single(t_lx, size, peer_dirs[dir])
            sw.unmap_single(t_md, size, dir)
        assert mem.read(orig_base, orig_size) == priv.read(orig_base, orig_size)
        for o, size, dir, t_lx, t_md in live:
            assert mem.read(t_lx, size) == pool.vview.read(pool.tlb_vaddr(t_md), size)


def machine_quick():
    """Run machine ``swiotlb`` without shrinking (the mutant checks' fast path): the clause of its first
    failure, or None. Same rules and checks as ``t1virtio fuzz --machine swiotlb``; derandomized."""
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    from t1virtio.machines import load, runner
    quick = settings(max_examples=300, stateful_step_count=30, phases=[Phase.generate], derandomize=True,
                     database=None, deadline=None, suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    try:
        run_state_machine_as_test(load("swiotlb"), settings=quick)
    except Exception as e:  # noqa: BLE001 - the first failure is the finding
        return runner.clause_of(e)
    return None
