"""``t1virtio bench``: the model's ops/s at real sizes beside the real Linux 6.1 code on the same op sequences.

Rows (docs/bench.md has the exact sequences):

- ``swiotlb``: map+unmap pairs of 4 KiB mappings in a one-area pool of 2^10..2^18 slots at 0/50/90 %
  occupancy, 64 mappings live, the oldest unmapped first; no copy (mapping_size 0), plus a row with
  the 4 KiB bounce at map and unmap (DMA_BIDIRECTIONAL) at 0 %;
- ``split`` / ``packed``: ring round trips (1 readable + 1 writable 64-byte segment, EVENT_IDX, depth 1)
  at queue sizes 16..32768.

Each cell: the model runs the sequence for a time budget (at least one op) and does ``n`` ops; each
Linux side then runs the same ``n``-op sequence on a fresh state, repeated within its own budget, and
the best run is kept. Linux sides: the peer's C loops (``swpeer_bench``, ``vpeer_ring_bench``), a small C
loop of ours over the peer's exported calls where ``swpeer_bench`` cannot run the sequence (an occupied
pool), and the same sequence through the peer's ctypes wrappers. A cell that could not be computed
carries its reason; no row is ever dropped.
"""
from __future__ import annotations

import ctypes
import hashlib
import mmap
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from t1virtio.preset import VIRTQUEUE_MAX_SIZE

PEERS = Path(os.environ.get("T1VIRTIO_LINUX_PEERS", Path(__file__).resolve().parents[1].parent / "shared" / "peers" / "linux"))
COMPONENTS = ("swiotlb", "split", "packed")
SWIOTLB_SIZES = (1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18)
RING_SIZES = (64, 256, 1024, 4096, VIRTQUEUE_MAX_SIZE)
RING_VARIANTS = ("depth 1", "half ring", "indirect", "4 KiB copy")
OCCUPANCIES = (0, 50, 90)
LIVE, MAP_SIZE, NBUF, SEG = 64, 4096, 64, 64         # as the peer's swpeer_bench / vpeer_ring_bench
TARGET = {"swiotlb": 10_000, "split": 5_000, "packed": 5_000}   # issue 8: ops/s at every size
UNIT = {"swiotlb": "pairs/s", "split": "round trips/s", "packed": "round trips/s"}
PEER_LOOP = "swpeer_bench"
OUR_LOOP = "t1virtio C loop over the peer's guarded swpeer_map_single/swpeer_unmap_single"
PACKED_LINUX = "n/a (vringh has no packed ring: no Linux device side, so no Linux round trip to time)"
RING_PY_DEPTH1 = "not run: the ctypes column is measured on the depth-1 rows only"


@dataclass(frozen=True)
class Budget:
    """Seconds per cell: the model's timed part (at least one op), its untimed setup, each Linux side."""

    cell: float = 1.0
    setup: float = 60.0
    linux: float = 0.5
    fixed_ops: int = 20_000       # ops per run when the model side does not run (--no-model)
    max_ops: int = 1_000_000
    max_reps: int = 200


QUICK = Budget(cell=0.1, setup=5.0, linux=0.05, fixed_ops=1_000, max_ops=100_000, max_reps=20)


@dataclass(frozen=True)
class Config:
    """What to measure."""

    components: tuple = COMPONENTS
    swiotlb_sizes: tuple = SWIOTLB_SIZES
    ring_sizes: tuple = RING_SIZES
    occupancies: tuple = OCCUPANCIES
    model: bool = True
    fast: bool = True
    budget: Budget = Budget()


class NotComputed(Exception):
    """A cell that was not measured (budget, or by design); the message is the reason."""


def _ints(text: str, what: str) -> tuple:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected comma-separated integers") from None
    if not vals:
        raise ValueError(f"{what} {text!r}: no value")
    return vals


def parse(component: str | None = None, sizes: str | None = None, occupancy: str | None = None, model: bool = True,
          quick: bool = False, budget: float | None = None, setup_budget: float | None = None,
          fast: bool = True) -> Config:
    """Check the command-line options; ``ValueError`` with a one-line message for a bad one."""
    if component is not None and component not in COMPONENTS:
        raise ValueError(f"--component {component!r}: expected one of {', '.join(COMPONENTS)}")
    comps = (component,) if component else COMPONENTS
    b = QUICK if quick else Budget()
    for opt, val, key in (("--budget", budget, "cell"), ("--setup-budget", setup_budget, "setup")):
        if val is not None:
            if not val > 0:
                raise ValueError(f"{opt} {val}: must be > 0 seconds")
            b = replace(b, **{key: val})
    occ = _ints(occupancy, "--occupancy") if occupancy is not None else OCCUPANCIES
    if any(not 0 <= o <= 95 for o in occ):
        raise ValueError(f"--occupancy {occupancy!r}: percentages from 0 to 95")
    sw, ring = SWIOTLB_SIZES, RING_SIZES
    if sizes is not None:
        vals = _ints(sizes, "--sizes")
        for v in vals:
            if v < 2 or v & (v - 1):
                raise ValueError(f"--sizes: {v} is not a power of two")
            if "swiotlb" in comps and not 256 <= v <= 1 << 20:
                raise ValueError(f"--sizes: a swiotlb pool of {v} slots is outside 256..2^20 (64 live 2-slot mappings "
                                 "need room; choose --component for ring sizes)")
            if comps != ("swiotlb",) and v > VIRTQUEUE_MAX_SIZE:
                raise ValueError(f"--sizes: queue size {v} > {VIRTQUEUE_MAX_SIZE} (virtio 1.3 §2.7)")
        sw = ring = vals
    return Config(components=comps, swiotlb_sizes=sw, ring_sizes=ring, occupancies=occ, model=model, fast=fast, budget=b)


# ---------------------------------------------------------------------------------------------
# The op sequences

@dataclass(frozen=True)
class SwiotlbPlan:
    """One swiotlb cell's sequence, identical on every side.

    Setup: fill the pool with ``nslabs / 2`` 4 KiB (2-slot) mappings and unmap a seeded random subset,
    leaving ``round(occupancy / 100 * nslabs / 2) - 64`` long-lived mappings scattered over the pool (no
    prefill at 0 %); then map 64 live ones, so that ``occupancy`` % of the slots are held. Timed: pair ``i`` unmaps live mapping ``i % 64`` and maps buffer ``i % 64``
    in its place. Original buffers: 64 of 4 KiB right after the pool (+4 KiB), as ``swpeer_bench``.
    """

    nslabs: int
    occupancy: int = 0
    copy: bool = False

    def orig(self, i: int) -> int:
        return self.nslabs * 2048 + 4096 + (i % NBUF) * MAP_SIZE

    def prefill(self) -> tuple[int, list[int]]:
        """(fill maps, indices of the fill maps to unmap, in order)."""
        if not self.occupancy:
            return 0, []
        fill = self.nslabs // 2
        keep = max(0, round(self.occupancy * self.nslabs / 200) - LIVE)
        return fill, random.Random(f"t1virtio-bench-{self.nslabs}-{self.occupancy}").sample(range(fill), fill - keep)

    def setup_ops(self) -> int:
        fill, drop = self.prefill()
        return fill + len(drop) + LIVE


class Setup:
    """Untimed setup work against a budget: stops (``NotComputed``) as soon as its projected time exceeds it."""

    def __init__(self, total_ops: int, budget: float | None):
        self.total, self.budget, self.done, self.t0 = total_ops, budget, 0, time.perf_counter()

    def tick(self) -> None:
        self.done += 1
        if self.budget is None:
            return
        spent = time.perf_counter() - self.t0
        projected = spent / self.done * self.total
        if projected > self.budget and spent >= min(1.0, self.budget / 4):
            raise NotComputed(f"setup needs {self.total} model ops, projected {projected:.0f} s > setup budget "
                              f"{self.budget:.0f} s ({spent / self.done * 1e3:.1f} ms/op over the first {self.done})")


def run_swiotlb(plan: SwiotlbPlan, map_: Callable[[int], Any], unmap: Callable[[Any], None], n: int,
                seconds: float | None = None, setup: Setup | None = None) -> tuple[int, float]:
    """Run ``plan`` with ``map_(orig) -> handle`` and ``unmap(handle)``: (pairs done, seconds of the pairs)."""
    tick = setup.tick if setup else (lambda: None)
    fill, drop = plan.prefill()
    held = []
    for j in range(fill):
        held.append(map_(plan.orig(j)))
        tick()
    for j in drop:
        unmap(held[j])
        tick()
    ring = []
    for i in range(LIVE):
        ring.append(map_(plan.orig(i)))
        tick()
    t0 = now = time.perf_counter()
    i = 0
    while i < n and (seconds is None or now - t0 < seconds or i == 0):
        k = i % LIVE
        unmap(ring[k])
        ring[k] = map_(plan.orig(i))
        i += 1
        now = time.perf_counter()
    return i, now - t0


def run_rings(round_trip: Callable[[int], int], n: int, seconds: float | None = None) -> tuple[int, float]:
    """Run ``round_trip(i)`` (which returns the buffers the driver got back) ``n`` times or for ``seconds``."""
    t0 = now = time.perf_counter()
    i = 0
    while i < n and (seconds is None or now - t0 < seconds or i == 0):
        got = round_trip(i)
        if got != 1:
            raise RuntimeError(f"round trip {i} gave the driver {got} buffers back, expected 1")
        i += 1
        now = time.perf_counter()
    return i, now - t0


def split_addresses(num: int, ring_end: int) -> int:
    """The data buffers' address, as ``vpeer_ring_bench`` places them (after a 4-entry indirect arena)."""
    ind = (ring_end + 4095) & ~4095
    return (ind + 16 * 4 * num + 4095) & ~4095


# ---------------------------------------------------------------------------------------------
# The model side: (ops, seconds of the timed part, seconds of the setup)

def _pool_preset(nslabs: int) -> Any:
    from t1virtio.preset import LINUX
    from t1virtio.swiotlb import pool as swpool
    preset = replace(LINUX, name=f"bench-{nslabs}", pool_nslabs=nslabs, io_tlb_max_areas=1)
    if hasattr(swpool, "register_geometry"):
        swpool.register_geometry(preset)
    return preset


def model_swiotlb(plan: SwiotlbPlan, b: Budget) -> tuple[int, float, float]:
    """The model's pool (``SlotPool``; with the copy, the bounce layer ``Swiotlb`` over flat memories)."""
    preset = _pool_preset(plan.nslabs)
    t0 = time.perf_counter()
    if plan.copy:
        from t1virtio.hyp.memview import FlatView
        from t1virtio.swiotlb import bounce
        sw = bounce.Swiotlb(preset, FlatView(mmap.mmap(-1, NBUF * MAP_SIZE), base=plan.orig(0)),
                            map_bounce=bounce.LINUX_5_18)
        pool = sw.register_pool("bench", 0, plan.nslabs, FlatView(plan.nslabs * 2048), 0)    # resident, zeroed
        d = bounce.DMA_BIDIRECTIONAL
        map_ = lambda o: sw.map_single(pool, o, MAP_SIZE, d)          # noqa: E731
        unmap = lambda t: sw.unmap_single(t, MAP_SIZE, d)              # noqa: E731
    else:
        from t1virtio.swiotlb.slots import SlotPool
        p = SlotPool(preset, 0, plan.nslabs, 1)
        map_, unmap = (lambda o: p.map(o, 0, MAP_SIZE)), p.release
    setup = Setup(plan.setup_ops(), b.setup)
    ops, secs = run_swiotlb(plan, map_, unmap, b.max_ops, b.cell, setup)
    return ops, secs, time.perf_counter() - t0 - secs


@dataclass(frozen=True)
class RingPlan:
    """One ring row's sequence, ``vpeer_ring_bench``'s: buffers of one readable and one writable segment of
    ``seglen`` bytes; ``depth`` in flight (refill to depth, kick, the device serves every chain, the driver takes
    every used buffer back); ``indirect``: VIRTIO_F_INDIRECT_DESC (a 2-entry table per buffer); ``copy``: the
    device copies the readable bytes into the writable part. The geometry is the peer's: ring at 0, indirect
    arena (4 entries per descriptor) at the next page, data after it (buffer slot ``k`` at ``data + 2 k seglen``)."""

    component: str
    num: int
    variant: str = "depth 1"

    @property
    def depth(self) -> int:
        return max(1, self.num // 2) if self.variant == "half ring" else 1

    @property
    def indirect(self) -> bool:
        return self.variant == "indirect"

    @property
    def copy(self) -> bool:
        return self.variant == "4 KiB copy"

    @property
    def seglen(self) -> int:
        return 4096 if self.copy else SEG

    def geometry(self) -> tuple:
        """(ring layout, indirect arena, data address, memory size)."""
        if self.component == "split":
            from t1virtio.virtio import split
            lay = split.compute_layout(self.num, 0, 4096)
            end = split.ring_bytes(lay)
        else:
            from t1virtio.virtio import packed as pk
            lay = pk.PackedLayout.contiguous(self.num, 0)
            end = lay.device + 4
        arena = (end + 4095) & ~4095
        data = (arena + 16 * 4 * self.num + 4095) & ~4095
        return lay, arena, data, data + 2 * self.seglen * self.depth + 4096

    def sides(self, mem: Any) -> tuple:
        """The model's driver and device over ``mem`` (a ``MemoryView``), fresh."""
        lay, arena, data, size = self.geometry()
        if self.component == "split":
            from t1virtio.virtio import split
            drv = split.SplitDriver(mem, lay, event_idx=True, indirect=self.indirect, indirect_arena=(arena, 4))
            dev = split.SplitDevice(mem, lay, event_idx=True, indirect=self.indirect,
                                    in_region=lambda a, n: 0 <= a and a + n <= size)
        else:
            from t1virtio.virtio import packed as pk
            drv = pk.PackedDriver(mem, lay, self.num, event_idx=True, indirect=self.indirect, indirect_gpa=arena,
                                  indirect_max=4)
            dev = pk.PackedDevice(mem, lay, self.num, (0, size), event_idx=True, indirect=self.indirect)
        return drv, dev


def model_ring(plan: RingPlan, b: Budget) -> tuple[int, float, float]:
    """The model's driver and device on the plan: (buffers, seconds of the timed part, setup seconds). Whole
    refill-serve-drain rounds run until the cell budget is spent (at least one)."""
    from t1virtio import errors
    from t1virtio.hyp.memview import FlatView
    t0 = time.perf_counter()
    _, _, data, size = plan.geometry()
    drv, dev = plan.sides(FlatView(size))
    seg, depth = plan.seglen, plan.depth
    split = plan.component == "split"
    add = drv.add_buf if split else drv.add
    get = drv.get_buf if split else drv.get_used
    state = {"added": 0, "done": 0}

    def serve() -> None:
        while True:
            while (c := (dev.next_chain() if split else dev.pop())) is not None:
                if plan.copy:
                    dev.write(c, dev.read(c))
                dev.add_used(c.head, seg) if split else dev.push_used(c.id, seg)
            if not split or dev.enable_notify():
                return

    def round_() -> int:
        before = state["done"]
        while state["added"] - state["done"] < depth:
            a = data + (state["added"] % depth) * 2 * seg
            try:
                add([(a, seg)], [(a + seg, seg)], state["added"] + 1)
            except errors.Exhausted:
                break
            state["added"] += 1
        drv.kick_prepare()
        serve()
        dev.need_notify()
        while get() is not None:
            state["done"] += 1
        if state["done"] - before != depth:
            raise RuntimeError(f"a round gave the driver {state['done'] - before} buffers back, expected {depth}")
        return depth
    setup = time.perf_counter() - t0
    t1 = now = time.perf_counter()
    ops = 0
    while ops == 0 or (now - t1 < b.cell and ops < b.max_ops):
        ops += round_()
        now = time.perf_counter()
    return ops, now - t1, setup


def model_split(plan: Any, b: Budget) -> tuple[int, float, float]:
    """The model's split driver and device (``model_ring``; a queue size alone means the depth-1 row)."""
    return model_ring(plan if isinstance(plan, RingPlan) else RingPlan("split", plan), b)


def model_packed(plan: Any, b: Budget) -> tuple[int, float, float]:
    """The model's packed driver and device (``model_ring``)."""
    return model_ring(plan if isinstance(plan, RingPlan) else RingPlan("packed", plan), b)


MODEL = {"swiotlb": model_swiotlb, "split": model_split, "packed": model_packed}


# ---------------------------------------------------------------------------------------------
# The fast path (generated from the model's transitions, docs/performance.md)

FAST_NAMES = ["map", "release", "map_single", "unmap_single"]


def fast_handle(nslabs: int) -> Any:
    """The generated swiotlb module for a bench pool (one code for every pool size: its length is read at run time)."""
    from t1virtio.fast import swiotlb as fs
    from t1virtio.swiotlb import bounce, policy, pool, slots
    return fs.build(_pool_preset(nslabs), policy.V6_1, fs.Transitions(slots, bounce, pool), "numba", FAST_NAMES)


def fast_swiotlb(plan: SwiotlbPlan, b: Budget) -> tuple[int, float, float, float]:
    """The fast path on the plan's sequence: (pairs, seconds of the pairs, JIT/cache-load seconds, setup seconds).

    Setup (prefill, the 64 live mappings) runs op by op through the generated functions; the timed pairs run
    in one call of the batch driver (``pairs_nocopy`` / ``pairs_bounce``), doubling the count until the cell
    budget is spent (at most ``max_ops``); the best rate of the last count is kept."""
    import numpy as np

    from t1virtio.fast import swiotlb as fs
    from t1virtio.logic import CONCRETE
    from t1virtio.swiotlb import pool as swpool
    from t1virtio.swiotlb import policy
    preset = _pool_preset(plan.nslabs)
    fast = fast_handle(plan.nslabs)
    state0 = swpool.swiotlb_init_pool(CONCRETE, preset, 0, plan.nslabs, 1, None, None, policy.V6_1).new
    jit = fast.warm(fs.FastPool(fast, state0))
    mod = fast.module
    orig_mem = np.zeros(NBUF * MAP_SIZE, np.uint8)
    pool_mem = np.zeros(plan.nslabs * 2048, np.uint8)          # resident, zeroed
    U = np.uint64

    def one_run(n: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        fp = fs.FastPool(fast, state0)
        held: list = []
        msize = MAP_SIZE if plan.copy else 0

        def map_(o: int) -> int:
            if plan.copy:
                c, out = fp.call("map_single", [o, msize, MAP_SIZE, 0, 0, 1, 0, 0, (1 << 64) - 1, 0])
                return out[0] if c is None else (1 << 64) - 1
            c, out = fp.call("map", [o, 0, MAP_SIZE, 0, 0, (1 << 64) - 1, 0])
            return out[1] if c is None else (1 << 64) - 1

        def unmap(t: int) -> None:
            if t != (1 << 64) - 1:
                c, _ = fp.call("unmap_single", [t, msize, 0, 0, 0]) if plan.copy else fp.call("release", [t, 0, 0])
                if c is not None:
                    raise RuntimeError(f"fast path refused the unmap of {t:#x}: {c}")
        fill, drop = plan.prefill()
        for j in range(fill):
            held.append(map_(plan.orig(j)))
        for j in drop:
            unmap(held[j])
        ring = np.array([map_(plan.orig(i)) for i in range(LIVE)], np.uint64)
        fails = np.zeros(1, np.uint64)
        setup = time.perf_counter() - t0
        t1 = time.perf_counter()
        if plan.copy:
            c = mod.pairs_bounce(*fp.tabs, fp.args, fp.out, ring, U(n), U(plan.orig(0)), U(NBUF), U(MAP_SIZE),
                                 orig_mem, pool_mem, U(0), fails)
        else:
            c = mod.pairs_nocopy(*fp.tabs, fp.args, fp.out, ring, U(n), U(plan.orig(0)), U(NBUF), U(MAP_SIZE), fails)
        secs = time.perf_counter() - t1
        if c:
            raise RuntimeError(f"fast path refused an unmap: clause code {c}")
        if fails[0]:
            raise RuntimeError(f"{int(fails[0])} fast-path maps found no slot")
        return secs, setup
    n, setup_s = 1000, 0.0
    while True:
        secs, setup_s = one_run(n)
        if secs >= b.cell / 4 or n >= b.max_ops:
            break
        n = min(b.max_ops, max(n * 2, int(n * b.cell / 4 / max(secs, 1e-6))))
    best = secs
    for _ in range(2):
        best = min(best, one_run(n)[0])
    return n, best, jit, setup_s


def ring_models() -> Any:
    from t1virtio.fast import rings as fr
    from t1virtio.virtio import chain, packed, split
    return fr.Models(split, chain, packed)


def fast_ring(plan: RingPlan, b: Budget) -> tuple[int, float, float, float]:
    """The generated ring fast path on the plan: (buffers, seconds, JIT/cache-load seconds, setup seconds). The
    module of the queue size is built (traced, printed, compiled or loaded from numba's cache) and warmed by a
    short run, never timed; each run builds fresh sides (the model's constructors write the ring's initial
    bytes into the fast path's memory) and times one batch call, doubling n until a quarter of the cell budget."""
    import numpy as np

    from t1virtio.fast import rings as fr
    t0 = time.perf_counter()
    f = fr.build(ring_models(), plan.num)
    _, _, data, size = plan.geometry()
    split = plan.component == "split"

    def one_run(n: int) -> tuple[float, float]:
        t = time.perf_counter()
        mem = np.zeros(size, np.uint8)
        drv, dev = plan.sides(fr.Bytes(mem))
        if split:
            fd, fv = fr.FastSplitDriver(f, drv, mem), fr.FastSplitDevice(f, dev, mem, (0, size))
        else:
            fd, fv = fr.FastPackedDriver(f, drv, mem), fr.FastPackedDevice(f, dev, mem)
        go = fr.split_round_trips if split else fr.packed_round_trips
        setup = time.perf_counter() - t
        t1 = time.perf_counter()
        c = go(f, fd, fv, data, plan.seglen, n, plan.depth, int(plan.copy))
        secs = time.perf_counter() - t1
        if c:
            raise RuntimeError(f"fast path refused a step: code {c}")
        return secs, setup
    one_run(plan.depth)
    jit = time.perf_counter() - t0
    n = max(1000, plan.depth)
    while True:
        secs, setup_s = one_run(n)
        if secs >= b.cell / 4 or n >= b.max_ops * 10:
            break
        n = min(b.max_ops * 10, max(n * 2, int(n * b.cell / 4 / max(secs, 1e-6))))
    best = secs
    for _ in range(2):
        best = min(best, one_run(n)[0])
    return n, best, jit, setup_s


def copy_rates(sizes: tuple = (4096, 65536, 1 << 20), seconds: float = 0.05) -> list[dict]:
    """The bounce copy (the fast path's memcpy, uint64 indices) vs numpy's ``copyto``, GB/s, buffers in cache."""
    import numpy as np
    fast = fast_handle(1024)
    out = []
    for size in sizes:
        src, dst = np.full(size, 7, np.uint8), np.zeros(size, np.uint8)
        fast.module.memcpy(dst, np.uint64(0), src, np.uint64(0), np.uint64(size))

        def rate(f: Callable[[], None]) -> float:
            best = 0.0
            t_end = time.perf_counter() + seconds
            while time.perf_counter() < t_end:
                reps = max(1, (1 << 22) // size)
                t0 = time.perf_counter()
                for _ in range(reps):
                    f()
                best = max(best, reps * size / (time.perf_counter() - t0) / 1e9)
            return best
        z = np.uint64(0)
        n = np.uint64(size)
        fr = rate(lambda: fast.module.memcpy(dst, z, src, z, n))
        nr = rate(lambda: np.copyto(dst, src))
        out.append(dict(bytes=size, fast_gb_s=fr, numpy_gb_s=nr, ratio=fr / nr if nr else None))
    return out


# ---------------------------------------------------------------------------------------------
# The Linux side

HELPER_C = r"""
/* t1virtio bench: SwiotlbPlan's sequence on a fresh pool through libswiotlb_peer.so's exported (guarded)
 * swpeer_* calls, passed in as function pointers; with copies, the pool's pages are touched before timing.
 * Returns the seconds of the timed pairs (< 0: setup error). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
typedef void *(*create_fn)(void *, uint64_t, uint64_t, unsigned long, unsigned int, int, int *);
typedef void (*destroy_fn)(void *);
typedef int (*map_fn)(void *, uint64_t, size_t, size_t, unsigned int, int, unsigned long, uint64_t *);
typedef int (*unmap_fn)(void *, uint64_t, size_t, int, unsigned long);
#define BAD UINT64_MAX
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
double t1v_swiotlb_run(create_fn create, destroy_fn destroy, map_fn map, unmap_fn unmap, unsigned long nslabs,
		       long fill, const uint32_t *drop, long ndrop, long live, long pairs, uint64_t size, int copy,
		       int dir, long *fails)
{
	uint64_t pool = (uint64_t)nslabs << 11, base = pool + 4096, len = pool + 64 * size + 8192;
	uint64_t msize = copy ? size : 0, *held, *ring;
	double t0, t1;
	char *phys;
	long i;
	void *s;
	int err;

	if (posix_memalign((void **)&phys, 4096, len))
		return -1;
	memset(phys + (copy ? 0 : pool), 0x5a, len - (copy ? 0 : pool));	/* copies: pool pages resident, as at boot */
	s = create(phys, len, 0, nslabs, 1, 0, &err);
	held = calloc(fill ? fill : 1, sizeof(*held));
	ring = calloc(live, sizeof(*ring));
	if (!s || !held || !ring)
		return -2;
	*fails = 0;
#define MAP(dst, i) do { if (map(s, base + ((i) % 64) * size, msize, size, 0, dir, 0, &(dst))) { (dst) = BAD; ++*fails; } } while (0)
#define UNMAP(t) do { if ((t) != BAD) unmap(s, (t), msize, dir, 0); } while (0)
	for (i = 0; i < fill; i++)
		MAP(held[i], i);
	for (i = 0; i < ndrop; i++)
		UNMAP(held[drop[i]]);
	for (i = 0; i < live; i++)
		MAP(ring[i], i);
	t0 = now();
	for (i = 0; i < pairs; i++) {
		UNMAP(ring[i % live]);
		MAP(ring[i % live], i);
	}
	t1 = now();
	destroy(s);
	free(held);
	free(ring);
	free(phys);
	return t1 - t0;
}
"""


class Linux:
    """The Linux 6.1 peers (``../shared/peers/linux``), loaded on first use; ``reason`` says why they are not."""

    def __init__(self) -> None:
        self.sp: Any = None
        self.vp: Any = None
        self.reason: str | None = None
        self.kernel: str | None = None
        self.variant: str | None = None
        self._helper: Any = None
        self._loaded = False

    def load(self) -> "Linux":
        if self._loaded:
            return self
        self._loaded = True
        if not PEERS.is_dir():
            self.reason = f"Linux peers not found at {PEERS}"
            return self
        if str(PEERS) not in sys.path:
            sys.path.insert(0, str(PEERS))
        try:
            import swiotlb_peer
            import vring_peer
            lib = vring_peer.load()
            swiotlb_peer.load()
            self.sp, self.vp = swiotlb_peer, vring_peer
            self.kernel, self.variant = vring_peer.kernel_version(lib), getattr(lib, "peer_variant", "stock")
        except Exception as e:  # noqa: BLE001 - any build or load failure is the reason line
            msg = " ".join(str(e).split())
            self.reason = f"Linux peer cannot be built or loaded: {type(e).__name__}: {msg[:300]}"
        return self

    def helper(self) -> Any:
        """Our C loop over the peer's exported calls (``HELPER_C``), compiled once next to the peer's libraries."""
        if self._helper is None:
            import peerlib
            src = HELPER_C.encode()
            out = Path(peerlib.BUILD_DIR) / "t1virtio" / f"swbench-{hashlib.sha256(src).hexdigest()[:12]}.so"
            if not out.exists():
                out.parent.mkdir(parents=True, exist_ok=True)
                c = out.with_suffix(".c")
                c.write_bytes(src)
                tmp = out.with_suffix(f".{os.getpid()}.tmp")
                r = subprocess.run([os.environ.get("CC", "gcc"), "-O2", "-shared", "-fPIC", "-o", str(tmp), str(c)],
                                   capture_output=True, text=True)
                if r.returncode:
                    raise RuntimeError(f"compiling the swiotlb C loop failed: {' '.join(r.stderr.split())[:300]}")
                os.replace(tmp, out)
            h = ctypes.CDLL(str(out))
            f = h.t1v_swiotlb_run
            f.restype = ctypes.c_double
            f.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_ulong, ctypes.c_long, ctypes.POINTER(ctypes.c_uint32),
                                                   ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_uint64,
                                                   ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_long)]
            self._helper = h
        return self._helper

    # each returns the rate of one run of n ops on a fresh state
    def swiotlb_c(self, plan: SwiotlbPlan, n: int) -> float:
        """``swpeer_bench`` (the peer's unguarded loop): only for a plan without prefill (it starts empty)."""
        if plan.occupancy:
            raise NotComputed("swpeer_bench starts from an empty pool")
        return self.sp.c_bench(plan.nslabs, n, MAP_SIZE, LIVE, copy=plan.copy, pattern="fifo")[0]

    def swiotlb_guarded(self, plan: SwiotlbPlan, n: int) -> float:
        """Our C loop over ``swpeer_map_single``/``swpeer_unmap_single`` (each call guarded by the peer)."""
        lib, f = self.sp.load(), self.helper().t1v_swiotlb_run
        fill, drop = plan.prefill()
        arr = (ctypes.c_uint32 * max(1, len(drop)))(*drop)
        fails = ctypes.c_long()
        ptr = [ctypes.cast(getattr(lib, name), ctypes.c_void_p)
               for name in ("swpeer_create", "swpeer_destroy", "swpeer_map_single", "swpeer_unmap_single")]
        d = self.sp.BIDIRECTIONAL if plan.copy else self.sp.TO_DEVICE
        secs = f(*ptr, plan.nslabs, fill, arr, len(drop), LIVE, n, MAP_SIZE, int(plan.copy), d, ctypes.byref(fails))
        if secs < 0:
            raise RuntimeError(f"swiotlb C loop setup error {secs}")
        if fails.value:
            raise RuntimeError(f"{fails.value} Linux maps found no slot")
        return n / secs if secs > 0 else float("inf")

    def swiotlb_py(self, plan: SwiotlbPlan, n: int) -> float:
        """The same sequence through the ctypes wrapper ``swiotlb_peer.Pool``."""
        sp = self.sp
        size = plan.nslabs * 2048 + NBUF * MAP_SIZE + 8192     # copies: resident memory; else untouched pages
        mem = sp.GuestMemory(size) if plan.copy else sp.GuestMemory(buffer=mmap.mmap(-1, size))
        pool = sp.Pool(mem, 0, plan.nslabs)
        d, ms = (sp.BIDIRECTIONAL, MAP_SIZE) if plan.copy else (sp.TO_DEVICE, 0)

        def map_(o: int) -> int:
            t = pool.map_single(o, ms, d, alloc_size=MAP_SIZE)
            if t is None:
                raise RuntimeError(f"Linux map of {o:#x} found no slot")
            return t
        try:
            ops, secs = run_swiotlb(plan, map_, lambda t: pool.unmap_single(t, ms, d), n)
        finally:
            pool.close()
        return ops / secs if secs > 0 else float("inf")

    def split_c(self, num: Any, n: int) -> float:
        """``vpeer_ring_bench`` (virtio_ring.c driver + vringh.c device, EVENT_IDX) on a ``RingPlan`` (a queue size
        alone: depth 1): its depth, INDIRECT_DESC, segment length and device copy."""
        vp = self.vp
        plan = num if isinstance(num, RingPlan) else RingPlan("split", num)
        feats = vp.F_VERSION_1 | vp.F_EVENT_IDX | (vp.F_INDIRECT_DESC if plan.indirect else 0)
        return vp.c_bench(plan.num, n, feats, depth=plan.depth, seglen=plan.seglen, copy=plan.copy)[0]

    def split_py(self, num: int, n: int) -> float:
        """The same round trip through the ctypes wrappers ``vring_peer.Driver`` / ``Device``."""
        vp = self.vp
        feats = vp.F_VERSION_1 | vp.F_EVENT_IDX
        lay = vp.split_layout(num)
        data = split_addresses(num, lay["size"])
        mem = vp.GuestMemory(data + 2 * SEG + 4096)
        drv, dev = vp.Driver(mem, num, feats, layout=lay), vp.Device(mem, num, feats, layout=lay)
        out, inn = [(data, SEG)], [(data + SEG, SEG)]

        def rt(i: int) -> int:
            if drv.add(out, inn, i + 1):
                raise RuntimeError("virtqueue_add_sgs failed")
            drv.kick_prepare()
            while True:
                while (c := dev.getdesc()) is not None:
                    dev.complete(c.head, SEG)
                if dev.notify_enable():
                    break
            dev.need_notify()
            got = 0
            while drv.get_buf() is not None:
                got += 1
            return got
        try:
            ops, secs = run_rings(rt, n)
        finally:
            drv.close()
            dev.close()
        return ops / secs if secs > 0 else float("inf")


def best_rate(run_once: Callable[[], float], b: Budget) -> tuple[float, int]:
    """Best rate over repeated runs (at least one) within the Linux budget: (rate, runs)."""
    best, reps, t0 = 0.0, 0, time.perf_counter()
    while True:
        best, reps = max(best, run_once()), reps + 1
        if time.perf_counter() - t0 >= b.linux or reps >= b.max_reps:
            return best, reps


# ---------------------------------------------------------------------------------------------
# Cells, rows, the document

@dataclass
class Row:
    """One cell: the same sequence on every side; ``notes`` say why a figure is missing."""

    component: str
    size: int
    occupancy: int | None = None          # percent (swiotlb)
    variant: str | None = None           # swiotlb: "no copy" or "4 KiB bounce"
    model_ops: int | None = None          # ops per timed run, each side
    linux_c_ops: int | None = None
    linux_py_ops: int | None = None
    model_ops_s: float | None = None
    linux_c_ops_s: float | None = None
    linux_py_ops_s: float | None = None
    linux_c_loop: str | None = None
    linux_c_alt_loop: str | None = None   # the other C loop, where both can run the sequence
    linux_c_alt_ops_s: float | None = None
    model_setup_s: float | None = None
    fast_ops: int | None = None           # pairs of the fast path's timed run (its own n: far more than the model's)
    fast_ops_s: float | None = None
    fast_jit_s: float | None = None       # compile or cache load, never counted in fast_ops_s
    linux_c_at_fast_ops_s: float | None = None    # Linux C on the fast path's n (same sequence)
    linux_c_runs: int | None = None
    linux_py_runs: int | None = None
    notes: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """Linux C ops/s over model ops/s: how many times faster the kernel code is."""
        if self.model_ops_s and self.linux_c_ops_s:
            return self.linux_c_ops_s / self.model_ops_s
        return None

    @property
    def fast_vs_linux(self) -> float | None:
        """Fast path ops/s over Linux C ops/s on the same n (> 1: the fast path is faster)."""
        if self.fast_ops_s and self.linux_c_at_fast_ops_s:
            return self.fast_ops_s / self.linux_c_at_fast_ops_s
        return None

    @property
    def fast_vs_model(self) -> float | None:
        if self.fast_ops_s and self.model_ops_s:
            return self.fast_ops_s / self.model_ops_s
        return None

    def as_json(self) -> dict:
        d = asdict(self)
        d["ratio"] = self.ratio
        d["fast_vs_linux_c"] = self.fast_vs_linux
        d["fast_vs_model"] = self.fast_vs_model
        return d


def _note(row: Row, side: str, e: BaseException) -> None:
    if isinstance(e, NotComputed):
        row.notes[side] = f"not computed: {e}"
    else:
        msg = " ".join(str(e).split())[:300]
        row.notes[side] = f"error: {type(e).__name__}: {msg}"
        row.errors.append(side)


def _linux(row: Row, side: str, lx: Linux, fn: Callable[[], float], b: Budget, n: int) -> None:
    """Measure one Linux side of ``row`` (n ops per run) or note why not."""
    if lx.reason:
        row.notes[side] = "unavailable (see the Linux line)"
        return
    try:
        rate, reps = best_rate(fn, b)
    except Exception as e:  # noqa: BLE001 - a failed side is a note, never a dropped row
        _note(row, side, e)
        return
    setattr(row, f"{side}_ops_s", rate)
    setattr(row, f"{side}_ops", n)
    setattr(row, f"{side}_runs", reps)


def measure(row: Row, cfg: Config, lx: Linux) -> Row:
    """Fill ``row``: the model first (its op count sets n), then the Linux sides on the same n ops."""
    b = cfg.budget
    plan = SwiotlbPlan(row.size, row.occupancy or 0, row.variant == "4 KiB bounce") if row.component == "swiotlb" else None
    rplan = None if plan else RingPlan(row.component, row.size, row.variant or "depth 1")
    if cfg.model:
        try:
            ops, secs, setup = MODEL[row.component](plan if plan else rplan, b)
            row.model_ops, row.model_ops_s, row.model_setup_s = ops, ops / secs if secs > 0 else None, setup
        except Exception as e:  # noqa: BLE001 - a failed side is a note, never a dropped row
            _note(row, "model", e)
    else:
        row.notes["model"] = "not run (--no-model)"
    if not cfg.fast:
        row.notes["fast"] = "not run (--no-fast)"
    else:
        try:
            row.fast_ops, secs, row.fast_jit_s, _ = fast_swiotlb(plan, b) if plan else fast_ring(rplan, b)
            row.fast_ops_s = row.fast_ops / secs if secs > 0 else None
        except Exception as e:  # noqa: BLE001 - a failed side is a note, never a dropped row
            _note(row, "fast", e)
    n = row.model_ops or b.fixed_ops
    if row.component == "swiotlb":
        loops = [(PEER_LOOP, lx.swiotlb_c), (OUR_LOOP, lx.swiotlb_guarded)]
        if plan.copy or plan.occupancy:
            loops.reverse()          # swpeer_bench cannot prefill, and its fresh pool's pages fault on copies
        (row.linux_c_loop, primary), (alt_name, alt) = loops
        _linux(row, "linux_c", lx, lambda: primary(plan, n), b, n)
        if row.fast_ops and not lx.reason:
            try:
                row.linux_c_at_fast_ops_s = best_rate(lambda: primary(plan, row.fast_ops), b)[0]
            except Exception as e:  # noqa: BLE001 - a failed side is a note, never a dropped row
                _note(row, "linux_c_at_fast", e)
        if not plan.occupancy and not lx.reason:
            row.linux_c_alt_loop = alt_name
            try:
                row.linux_c_alt_ops_s = best_rate(lambda: alt(plan, n), b)[0]
            except Exception as e:  # noqa: BLE001 - a failed side is a note, never a dropped row
                _note(row, "linux_c_alt", e)
        _linux(row, "linux_py", lx, lambda: lx.swiotlb_py(plan, n), b, n)
    elif row.component == "split":
        row.linux_c_loop = "vpeer_ring_bench"
        _linux(row, "linux_c", lx, lambda: lx.split_c(rplan, n), b, n)
        if row.fast_ops and not lx.reason:
            try:
                row.linux_c_at_fast_ops_s = best_rate(lambda: lx.split_c(rplan, row.fast_ops), b)[0]
            except Exception as e:  # noqa: BLE001 - a failed side is a note, never a dropped row
                _note(row, "linux_c_at_fast", e)
        if rplan.variant == "depth 1" or lx.reason:
            _linux(row, "linux_py", lx, lambda: lx.split_py(row.size, n), b, n)
        else:
            row.notes["linux_py"] = RING_PY_DEPTH1
    else:
        row.notes["linux_c"] = row.notes["linux_py"] = PACKED_LINUX
    return row


def plan_rows(cfg: Config) -> list[Row]:
    """Every row the configuration asks for, in print order."""
    rows = []
    for comp in cfg.components:
        if comp == "swiotlb":
            rows += [Row("swiotlb", n, o, "no copy") for o in cfg.occupancies for n in cfg.swiotlb_sizes]
            rows += [Row("swiotlb", n, 0, "4 KiB bounce") for n in cfg.swiotlb_sizes]
        else:
            rows += [Row(comp, n, None, v) for v in RING_VARIANTS for n in cfg.ring_sizes]
    return rows


def growth(rows: list[Row]) -> list[dict]:
    """Per component (and swiotlb variant/occupancy): smallest-size rate over largest-size rate, and the
    lowest rate against the issue's target. Facts, not assertions."""
    groups: dict[tuple, list[Row]] = {}
    for r in rows:
        groups.setdefault((r.component, r.variant, r.occupancy), []).append(r)
    out = []
    for (comp, variant, occ), rs in groups.items():
        rs = sorted(rs, key=lambda r: r.size)
        g = dict(component=comp, variant=variant or None, occupancy=occ, smallest=rs[0].size, largest=rs[-1].size,
                 target_ops_s=TARGET[comp])
        for side in ("model", "linux_c", "fast", "linux_c_at_fast"):
            lo, hi = getattr(rs[0], f"{side}_ops_s"), getattr(rs[-1], f"{side}_ops_s")
            g[f"{side}_growth"] = lo / hi if lo and hi and len(rs) > 1 else None
        measured = [(r.model_ops_s, r.size) for r in rs if r.model_ops_s]
        g["model_lowest_ops_s"], g["model_lowest_at"] = min(measured) if measured else (None, None)
        g["model_sizes_measured"] = len(measured)
        g["model_sizes"] = len(rs)
        g["growth_within_2x"] = g["model_growth"] <= 2 if g["model_growth"] is not None else None
        fv = [r.fast_vs_linux for r in rs if r.fast_vs_linux]
        g["fast_vs_linux_c_min"] = min(fv) if fv else None
        fm = [r.fast_vs_model for r in rs if r.fast_vs_model]
        g["fast_vs_model_min"] = min(fm) if fm else None
        g["meets_target"] = (g["model_lowest_ops_s"] >= TARGET[comp]) if measured and len(measured) == len(rs) else None
        out.append(g)
    return out


def _revision() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "model", "specs"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (rev or "unknown") + ("+uncommitted model changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine(lx: Linux) -> dict:
    """Where the figures come from."""
    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                   if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return dict(platform=platform.platform(), python=platform.python_version(), cpu=cpu, cpus=os.cpu_count(),
                model_revision=_revision(), date=time.strftime("%Y-%m-%d %H:%M:%S %z"),
                linux_peer=dict(available=lx.reason is None, reason=lx.reason, kernel=lx.kernel, variant=lx.variant))


def run(cfg: Config, progress: Callable[[str, int, int], None] = lambda what, done, total: None) -> dict:
    """Measure every row; return the document (``rows``, ``growth``, ``machine``, ``budget``)."""
    lx = Linux().load()
    rows = plan_rows(cfg)
    for k, row in enumerate(rows):
        progress(label(row), k, len(rows))
        measure(row, cfg, lx)
    copies: Any = None
    if cfg.fast and "swiotlb" in cfg.components:
        progress("bounce copy GB/s", len(rows), len(rows))
        try:
            copies = copy_rates(seconds=0.02 if cfg.budget.cell < 0.5 else 0.1)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            copies = {"error": f"{type(e).__name__}: {e}"}
    hyp: Any = None
    if cfg.fast and cfg.components == COMPONENTS:
        progress("message queue and doorbell", len(rows), len(rows))
        try:
            from t1virtio.fast import hyp_bench
            from t1virtio.hyp import doorbell, msgq
            hyp = hyp_bench.bench_rows(cfg.budget.cell < 0.5, msgq, doorbell)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            hyp = {"error": f"{type(e).__name__}: {e}"}
    progress("done", len(rows), len(rows))
    return dict(format="t1virtio-bench/1", machine=machine(lx), budget=asdict(cfg.budget),
                rows=[r.as_json() for r in rows], growth=growth(rows), copy=copies, hyp=hyp)


def problems(doc: dict, ci: bool) -> list[str]:
    """What makes the run fail: a side that raised, or (in CI) a Linux peer that could not be built."""
    out = [f"{label_of(r)}: {side}: {r['notes'][side]}" for r in doc["rows"] for side in r["errors"]]
    if isinstance(doc.get("hyp"), dict):
        out.append(f"message queue and doorbell rows: {doc['hyp']['error']}")
    if ci and not doc["machine"]["linux_peer"]["available"]:
        out.insert(0, f"CI is set and the Linux columns are missing: {doc['machine']['linux_peer']['reason']}")
    return out


# ---------------------------------------------------------------------------------------------
# Text output

def size_text(comp: str, n: int) -> str:
    return f"2^{n.bit_length() - 1}" if comp == "swiotlb" else str(n)


def label_of(r: dict) -> str:
    occ = f" {r['occupancy']} %" if r["component"] == "swiotlb" else ""
    var = f" {r['variant']}" if r["variant"] else ""
    return f"{r['component']} {size_text(r['component'], r['size'])}{occ}{var}"


def label(row: Row) -> str:
    return label_of(asdict(row))


def rate_text(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.3g}"


def render(doc: dict, console: Any) -> None:
    """Print one table per component, the reasons for missing cells, and the growth facts."""
    from rich.table import Table
    m = doc["machine"]
    lp = m["linux_peer"]
    console.print(f"t1virtio bench: model {m['model_revision']}, Python {m['python']}, {m['cpu']} x{m['cpus']}, {m['date']}",
                  highlight=False, soft_wrap=True)
    console.print(f"Linux: {lp['kernel']} ({lp['variant']})" if lp["available"] else f"Linux: {lp['reason']}",
                  highlight=False, soft_wrap=True)
    titles = {"swiotlb": "swiotlb_tbl_map_single + unmap pairs/s, 4 KiB mappings, one area, 64 live (oldest unmapped first)",
              "split": "split ring round trips/s (buffers: add, kick, pop, used, notify, get; vpeer_ring_bench's loop), "
                       "EVENT_IDX, 1+1 segments of 64 B (4 KiB copy: 4 KiB, copied by the device)",
              "packed": "packed ring round trips/s (the same loop), EVENT_IDX, 1+1 segments of 64 B (4 KiB copy: 4 KiB)"}
    for comp in COMPONENTS:
        rows = [r for r in doc["rows"] if r["component"] == comp]
        if not rows:
            continue
        console.print(titles[comp], highlight=False, soft_wrap=True)
        t = Table()
        cols = (["slots", "occupancy", "variant"] if comp == "swiotlb" else ["queue size", "variant"]) + \
            ["ops/run", "model", "Linux C", "Linux ctypes", "C/model", "fast", "Linux C at fast n", "fast/C", "fast/model"]
        for c in cols:
            t.add_column(c, justify="left" if c == "variant" else "right")
        notes: list[str] = []
        for r in rows:
            cells = []
            for side in ("model", "linux_c", "linux_py"):
                txt = rate_text(r[f"{side}_ops_s"])
                if side in r["notes"]:
                    if r["notes"][side] not in notes:
                        notes.append(r["notes"][side])
                    txt += f" [{notes.index(r['notes'][side]) + 1}]"
                elif side == "linux_c" and r["linux_c_loop"] == OUR_LOOP:
                    txt += " *"
                cells.append(txt)
            ratio = f"{r['ratio']:,.0f}x" if r["ratio"] else "—"
            ops = str(r["model_ops"] or r["linux_c_ops"] or r["linux_py_ops"] or "—")
            lead = [size_text(comp, r["size"])] + ([f"{r['occupancy']} %", r["variant"]] if comp == "swiotlb" else
                                                   [r["variant"] or ""])
            ftxt = rate_text(r.get("fast_ops_s"))
            if "fast" in r["notes"]:
                if r["notes"]["fast"] not in notes:
                    notes.append(r["notes"]["fast"])
                ftxt += f" [{notes.index(r['notes']['fast']) + 1}]"
            fc = f"{r['fast_vs_linux_c']:.2f}x" if r.get("fast_vs_linux_c") else "—"
            fm = f"{r['fast_vs_model']:,.0f}x" if r.get("fast_vs_model") else "—"
            t.add_row(*lead, ops, *cells, ratio, ftxt, rate_text(r.get("linux_c_at_fast_ops_s")), fc, fm)
        console.print(t)
        for i, n in enumerate(notes):
            console.print(f"  [{i + 1}] {n}", highlight=False, soft_wrap=True)
        if any(r["linux_c_loop"] == OUR_LOOP for r in rows):
            console.print(f"  * Linux C from the {OUR_LOOP} (swpeer_bench cannot prefill a pool, and its fresh "
                          "pool's pages fault on the first copy into them; our loop touches them before timing)",
                          highlight=False, soft_wrap=True)
        if comp == "swiotlb":
            alt = [f"{size_text(comp, r['size'])} {r['variant']}: {'ours' if r['linux_c_alt_loop'] == OUR_LOOP else PEER_LOOP} "
                   f"{rate_text(r['linux_c_alt_ops_s'])}" for r in rows if r["linux_c_alt_ops_s"]]
            if alt:
                console.print(f"  the other C loop on the same ops: {'; '.join(alt)}", highlight=False, soft_wrap=True)
    jit = [r["fast_jit_s"] for r in doc["rows"] if r.get("fast_jit_s") is not None]
    if jit:
        console.print(f"fast path: generated from the model (t1virtio.fast); JIT compile or cache load {max(jit):.2f} s at "
                      f"most per cell, never timed; its ops run in one batch call with its own n (column 'Linux C at "
                      "fast n' is Linux C on that same n)", highlight=False, soft_wrap=True)
    if isinstance(doc.get("hyp"), list):
        from t1virtio.fast import hyp_bench
        console.print("message queue and doorbell (LINUX preset; Gunyah is hypervisor code: no Linux peer):",
                      highlight=False, soft_wrap=True)
        console.print(hyp_bench.format_rows(doc["hyp"]), highlight=False, soft_wrap=True, markup=False)
    elif isinstance(doc.get("hyp"), dict):
        console.print(f"message queue and doorbell: not computed: {doc['hyp']['error']}", highlight=False)
    if isinstance(doc.get("copy"), list):
        console.print("bounce copy GB/s (in cache): " + "; ".join(
            f"{c['bytes']} B fast {c['fast_gb_s']:.1f} vs numpy {c['numpy_gb_s']:.1f} ({c['ratio']:.2f}x)"
            for c in doc["copy"]), highlight=False, soft_wrap=True)
    console.print("growth (smallest-size rate / largest-size rate; issue 8 targets: within 2x, and at least "
                  "10,000 pairs/s or 5,000 round trips/s at every size):", highlight=False, soft_wrap=True)
    for g in doc["growth"]:
        comp = g["component"]
        name = comp + (f" {g['variant']} {g['occupancy']} %" if comp == "swiotlb" else
                       (f" {g['variant']}" if g["variant"] else ""))
        span = f"{size_text(comp, g['smallest'])} -> {size_text(comp, g['largest'])}"
        if g["model_growth"] is None:
            mg = "model growth unknown (a rate is missing)"
        else:
            mg = f"model {g['model_growth']:.2f}x ({'within' if g['growth_within_2x'] else 'not within'} 2x)"
        lowest = (f"lowest model rate {rate_text(g['model_lowest_ops_s'])} {UNIT[comp]} at "
                  f"{size_text(comp, g['model_lowest_at'])}" if g["model_lowest_ops_s"] else "no model rate")
        meets = {True: "at or above", False: "below", None: "unknown against"}[g["meets_target"]]
        lc = f"; Linux C {g['linux_c_growth']:.2f}x" if g["linux_c_growth"] is not None else ""
        if g.get("fast_growth") is not None:
            lc += f"; fast {g['fast_growth']:.2f}x"
        if g.get("fast_vs_linux_c_min") is not None:
            lc += f"; fast/Linux C at least {g['fast_vs_linux_c_min']:.2f}x"
        console.print(f"  {name}, {span}: {mg}; {lowest} ({g['model_sizes_measured']}/{g['model_sizes']} sizes "
                      f"measured: {meets} the {g['target_ops_s']:,} target){lc}", highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# The fast path against Linux 6.1 at the real pool size (``t1virtio bench --fast-vs-linux N``)

def fast_vs_linux(ops: int, seed: int = 12, nareas: int = 1, min_align: int = 0, check_every: int = 100_000,
                  peer: Any = None) -> dict:
    """``ops`` random maps (1 B..256 KiB, alignment masks 0/0x7ff/0xfff, cpus 0..7) and unmaps (random live
    mapping) on the fast path (numba, LINUX preset: 32768 slots) and on Linux 6.1's swiotlb.c: the same slot
    every map (or both refuse), every slot record and area every ``check_every`` ops and at the end.
    Requests the model reports as non-terminating or oversize are not sent to Linux (it would spin)."""
    from t1virtio.fast import swiotlb as fs
    from t1virtio.logic import CONCRETE
    from t1virtio.preset import LINUX
    from t1virtio.swiotlb import bounce, policy, pool, slots
    if peer is None:
        lx = Linux().load()
        if lx.reason:
            raise RuntimeError(lx.reason)
        peer = lx.sp
    n = LINUX.pool_nslabs
    start, orig_base = 0x100000, 0x100000 + n * 2048 + 0x100000
    fast = fs.build(LINUX, policy.V6_1, fs.Transitions(slots, bounce, pool), "numba", ["map", "release"])
    fp = fs.FastPool(fast, pool.swiotlb_init_pool(CONCRETE, LINUX, start, n, nareas, None, None, policy.V6_1).new)
    mem = peer.GuestMemory(orig_base + 0x200000)
    p = peer.Pool(mem, start=start, nslabs=n, nareas=nareas)
    p.set_device(min_align_mask=min_align or None, segment_boundary_mask=(1 << 64) - 1 if min_align else None)
    rnd = random.Random(seed)
    live: list[int] = []
    res = dict(ops=ops, maps=0, failed_maps=0, unmaps=0, skipped=0, mismatches=0, first_mismatch=None, checks=0)
    t0 = time.perf_counter()

    def mismatch(what: str) -> None:
        res["mismatches"] += 1
        if res["first_mismatch"] is None:
            res["first_mismatch"] = what

    def compare() -> None:
        res["checks"] += 1
        sl, s = p.slots(), fp.state
        if list(s.list[:n]) != list(sl["list"]) or list(s.alloc_size[:n]) != list(sl["alloc_size"]):
            mismatch("slot records differ")
        areas = p.areas()
        if [a["used"] for a in areas] != list(s.area_used[:nareas]) or \
                [a["index"] for a in areas] != list(s.area_index[:nareas]):
            mismatch("areas differ")
    for i in range(ops):
        if live and (rnd.random() < 0.48 or len(live) > 8000):
            tlb = live.pop(rnd.randrange(len(live)))
            p.unmap_single(tlb, 0, peer.TO_DEVICE)
            c, _ = fp.call("release", [tlb, min_align, 0])
            res["unmaps"] += 1
            if c is not None:
                mismatch(f"op {i}: fast path refused the unmap of {tlb:#x}: {c}")
        else:
            size = rnd.choice([1, 512, 2048, 4096, 4097, 8192, 16384, 65536, 1 << 18, rnd.randrange(1, 1 << 18)])
            align = rnd.choice([0, 0, 0x7ff, 0xfff])
            cpu = rnd.randrange(8)
            orig = orig_base + rnd.randrange(0, 0x100000)
            c, out = fp.call("map", [orig, 0, size, align, min_align, (1 << 64) - 1, cpu])
            if c in ("SWIOTLB-find-no-termination", "SWIOTLB-find-too-large"):
                res["skipped"] += 1
                continue
            p.set_cpu(cpu)
            got = p.map_single(orig, 0, peer.TO_DEVICE, alloc_size=size, alloc_align_mask=align)
            res["maps"] += 1
            if c is None:
                if got != out[1]:
                    mismatch(f"op {i}: map of {size} B: Linux {got}, fast path {out[1]:#x}")
                live.append(out[1])
            else:
                res["failed_maps"] += 1
                if got is not None:
                    mismatch(f"op {i}: Linux mapped {got:#x} where the fast path refused ({c})")
                    p.unmap_single(got, 0, peer.TO_DEVICE)
        if check_every and (i + 1) % check_every == 0:
            compare()
    compare()
    p.close()
    res["seconds"] = time.perf_counter() - t0
    return res


def fast_vs_linux_rings(ops: int, seed: int = 7, size: int = VIRTQUEUE_MAX_SIZE) -> dict:
    """``ops`` random ops (adds, kick decisions, pops, completions, need_notify / notify_enable decisions, gets) on
    the fast split driver + device and on Linux 6.1's virtio_ring.c + vringh.c at ``size``: the ring bytes after
    every op, every result and decision (``t1virtio.fast.rings.fast_vs_linux_split``)."""
    from t1virtio.fast import rings as fr
    lx = Linux().load()
    if lx.reason:
        raise RuntimeError(lx.reason)
    t0 = time.perf_counter()
    bad = fr.fast_vs_linux_split(lx.vp, ring_models(), ops, seed=seed, N=size)
    return dict(ops=ops, size=size, seed=seed, mismatches=len(bad), first_mismatch=str(bad[0]) if bad else None,
                seconds=time.perf_counter() - t0)
