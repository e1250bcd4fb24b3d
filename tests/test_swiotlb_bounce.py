"""swiotlb bounce layer: the per-direction table, typed refusals that change nothing, the leak table, scenarios.

Functions without the ``test_`` prefix are mutant scenarios (tests/mutants/swiotlb_bounce.py): each
returns the clause it sees broken, or None when the model behaves.
"""
import pytest

from t1virtio import errors
from t1virtio.swiotlb import bounce as b
from t1virtio.swiotlb import dma, labels

FROM, TO, BIDI = b.DMA_FROM_DEVICE, b.DMA_TO_DEVICE, b.DMA_BIDIRECTIONAL


def _system(**kw):
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
    return labels.NO_STALE if labels.leak_report(b.DEFAULT_MAP_BOUNCE)["stale bytes reach the caller"] else None


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


def test_default_policy_is_leak_free():
    report = labels.leak_report(b.DEFAULT_MAP_BOUNCE)
    assert not any(report[k] for k in labels.LEAKS)
