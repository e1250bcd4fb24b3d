"""The generated swiotlb fast path: every slot and bounce transition of the model, traced and compiled.

The fast path may not import the model's transitions (they reach the clause registry; the layer
contract keeps ``t1virtio.fast`` below the specs), so the caller hands them in: ``Transitions(slots,
bounce, pool)`` with the modules ``t1virtio.swiotlb.slots``, ``.bounce`` and ``.pool``. ``build(preset,
policy, tr, mode)`` traces each transition for that preset and policy, generates one module with them
(plus the hand-written batch drivers and memcpy below) and returns a ``Fast`` handle. ``FastPool`` holds
one pool's state as arrays and calls the generated functions one op at a time (tests); the drivers run
whole op sequences in one call (bench).

Generated transitions (argument order = the model's, preset and policy bound):

===================  =======================================================================
``find``             ``slots.swiotlb_find_slots(orig, alloc_size, alloc_align, min_align, boundary, cpu)``
``map``              ``slots.swiotlb_tbl_map_slots(orig, mapping_size, alloc_size, alloc_align, min_align, boundary, cpu)``
``alloc``            ``slots.swiotlb_alloc_slots(size, min_align, boundary, cpu)``
``release``          ``slots.swiotlb_release_slots(tlb, min_align, size)``
``map_single``       ``bounce.swiotlb_map_single(orig, mapping_size, alloc_size, dir, attrs, map_bounce, alloc_align, min_align, boundary, cpu)``
``unmap_single``     ``bounce.swiotlb_unmap_single(tlb, mapping_size, dir, attrs, min_align)``
``sync_for_device``  ``bounce.swiotlb_sync_single_for_device(tlb, size, dir, min_align)``
``sync_for_cpu``     ``bounce.swiotlb_sync_single_for_cpu(tlb, size, dir, min_align)``
``free``             ``bounce.swiotlb_free(tlb, size, min_align)``
===================  =======================================================================
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from t1virtio.fast import codegen
from t1virtio.fast.codegen import GeneratedModule
from t1virtio.fast.trace import Layout, SizeInt, from_arrays, layout_of, rebuild_out, to_arrays, trace

U64 = (1 << 64) - 1


@dataclass(frozen=True)
class Transitions:
    """The model modules the transitions come from (passed in: the fast path does not import them)."""

    slots: Any
    bounce: Any
    pool: Any


def specs(preset: Any, policy: Any, tr: Transitions) -> dict[str, tuple[Callable, int]]:
    """name -> (``fn(L, state, *args)``, number of args) for every generated transition."""
    s, b = tr.slots, tr.bounce
    return {
        "find": (lambda L, st, o, a, aam, mam, bm, cpu:
                 s.swiotlb_find_slots(L, preset, st, o, a, aam, mam, bm, cpu, policy), 6),
        "map": (lambda L, st, o, ms, a, aam, mam, bm, cpu:
                s.swiotlb_tbl_map_slots(L, preset, st, o, ms, a, aam, mam, bm, cpu, policy), 7),
        "alloc": (lambda L, st, size, mam, bm, cpu: s.swiotlb_alloc_slots(L, preset, st, size, mam, bm, cpu, policy), 4),
        "release": (lambda L, st, tlb, mam, size: s.swiotlb_release_slots(L, preset, st, tlb, mam, size, policy), 3),
        "map_single": (lambda L, st, o, ms, a, d, attrs, mb, aam, mam, bm, cpu:
                       b.swiotlb_map_single(L, preset, st, o, ms, a, d, attrs, mb, aam, mam, bm, cpu, policy), 10),
        "unmap_single": (lambda L, st, tlb, ms, d, attrs, mam:
                         b.swiotlb_unmap_single(L, preset, st, tlb, ms, d, attrs, mam, policy), 5),
        "sync_for_device": (lambda L, st, tlb, size, d, mam:
                            b.swiotlb_sync_single_for_device(L, st, tlb, size, d, mam), 4),
        "sync_for_cpu": (lambda L, st, tlb, size, d, mam: b.swiotlb_sync_single_for_cpu(L, st, tlb, size, d, mam), 4),
        "free": (lambda L, st, tlb, size, mam: b.swiotlb_free(L, preset, st, tlb, size, mam, policy), 3),
    }


# ---------------------------------------------------------------------------------------------
# Hand-written parts: memcpy and the batch drivers ({T} = the state tables, in the layout's order)

DRIVERS = '''

@njit(cache=True, boundscheck=False, _nrt=False)
def memcpy(dst, doff, src, soff, n):
    """dst[doff:doff+n] = src[soff:soff+n] with unsigned indices (the bounce copy)."""
    for i in range(U(0), n):
        dst[doff + i] = src[soff + i]


@njit(cache=True, boundscheck=False, _nrt=False)
def memzero(dst, doff, n):
    for i in range(U(0), n):
        dst[doff + i] = 0


@njit(cache=True, boundscheck=False, _nrt=False)
def bounce(kind, orig, tlb, n, orig_mem, orig_base, pool_mem, pool_base):
    """Perform a Copy (kind: 1 orig->slot, 2 slot->orig, 3 zero the slot) between two flat memories;
    addresses are physical, ``*_base`` the address of byte 0 of each memory."""
    if n == U(0) or kind == U(0):
        return
    if kind == U(1):
        memcpy(pool_mem, tlb - pool_base, orig_mem, orig - orig_base, n)
    elif kind == U(2):
        memcpy(orig_mem, orig - orig_base, pool_mem, tlb - pool_base, n)
    else:
        memzero(pool_mem, tlb - pool_base, n)


@njit(cache=True, boundscheck=False, _nrt=False)
def pairs_nocopy({T}, args, out, ring, n, base, nbuf, size, fails):
    """The bench's timed part: pair i unmaps ring[i % live] (release) and maps buffer i % nbuf in its place
    (map: mapping_size 0, alloc_size size). Returns 0 or the first refusal's clause code."""
    live = U(len(ring))
    for i in range(U(0), n):
        k = i % live
        if ring[k] != M64:
            args[0] = ring[k]
            args[1] = U(0)
            args[2] = U(0)
            c = release({T}, args, out)
            if c != 0:
                return c
        args[0] = base + (i % nbuf) * size
        args[1] = U(0)
        args[2] = size
        args[3] = U(0)
        args[4] = U(0)
        args[5] = M64
        args[6] = U(0)
        c = map({T}, args, out)
        if c != 0:
            fails[0] += U(1)
            ring[k] = M64
        else:
            ring[k] = out[1]
    return 0


@njit(cache=True, boundscheck=False, _nrt=False)
def pairs_bounce({T}, args, out, ring, n, base, nbuf, size, orig_mem, pool_mem, pool_base, fails):
    """As pairs_nocopy with the bounce layer: map_single/unmap_single of ``size`` bytes, BIDIRECTIONAL,
    map bounce 5.18+, and the copies each step returns."""
    live = U(len(ring))
    for i in range(U(0), n):
        k = i % live
        if ring[k] != M64:
            args[0] = ring[k]
            args[1] = size
            args[2] = U(0)
            args[3] = U(0)
            args[4] = U(0)
            c = unmap_single({T}, args, out)
            if c != 0:
                return c
            bounce(out[0], out[1], out[2], out[3], orig_mem, base, pool_mem, pool_base)
        args[0] = base + (i % nbuf) * size
        args[1] = size
        args[2] = size
        args[3] = U(0)
        args[4] = U(0)
        args[5] = U(1)
        args[6] = U(0)
        args[7] = U(0)
        args[8] = M64
        args[9] = U(0)
        c = map_single({T}, args, out)
        if c != 0:
            fails[0] += U(1)
            ring[k] = M64
        else:
            ring[k] = out[0]
            bounce(out[1], out[2], out[3], out[4], orig_mem, base, pool_mem, pool_base)
    return 0


@njit(cache=True, boundscheck=False, _nrt=False)
def run_ops({T}, args, out, ops, results):
    """A whole op sequence: row r of ``ops`` is (op code, up to 10 args); op codes index NAMES. results[r] =
    (clause code, out words...)."""
    for r in range(len(ops)):
        code = ops[r, 0]
        for j in range(len(args)):
            args[j] = ops[r, 1 + j]
        c = 0
{DISPATCH}
        results[r, 0] = U(c)
        for j in range(len(out)):
            results[r, 1 + j] = out[j]
    return 0
'''


@dataclass
class Fast(GeneratedModule):
    """A generated swiotlb module for one preset and policy, in one mode."""

    preset: Any
    policy: Any
    mode: str
    layout: Layout
    functions: dict
    module: Any
    names: list
    trace_s: float
    compile_s: float = 0.0


    def warm(self, pool: "FastPool") -> float:
        """Compile (or load from numba's cache) every function by one refused call each; return the seconds."""
        t0 = time.perf_counter()
        for name in self.names:
            pool.call(name, [0] * self.functions[name].nargs)
        if self.mode == "numba":
            import numpy as np
            tabs = [pool.arrays[t] for t in self.table_names()]
            z = np.zeros(1, np.uint64)
            self.module.pairs_nocopy(*tabs, pool.args, pool.out, np.full(1, U64, np.uint64), np.uint64(0),
                                     np.uint64(0), np.uint64(1), np.uint64(4096), z)
            m = np.zeros(8, np.uint8)
            self.module.pairs_bounce(*tabs, pool.args, pool.out, np.full(1, U64, np.uint64), np.uint64(0),
                                     np.uint64(0), np.uint64(1), np.uint64(4096), m, m, np.uint64(0), z)
            ops = np.zeros((0, 11), np.uint64)
            self.module.run_ops(*tabs, pool.args, pool.out, ops, np.zeros((0, 1 + len(pool.out)), np.uint64))
        self.compile_s = time.perf_counter() - t0
        return self.compile_s


_BUILT: dict = {}


def build(preset: Any, policy: Any, tr: Transitions, mode: str = "numba", names: list | None = None) -> Fast:
    """Trace every transition of ``specs`` for ``preset``/``policy`` and generate their module (memoised)."""
    key = (preset, policy.name, mode, tuple(names) if names else None)
    if key in _BUILT:
        return _BUILT[key]
    t0 = time.perf_counter()
    template = tr.pool.swiotlb_init_pool(_concrete(), preset, 0, preset.pool_nslabs, 1, None, None, policy).new
    layout = layout_of(template)
    # the slot tables' length (pool_nslabs) is a size parameter: one code for every pool size
    dynamic = frozenset(t for t, n in layout.tables.items() if n == preset.pool_nslabs)
    traced = replace(preset, pool_nslabs=SizeInt(preset.pool_nslabs, "t_list"))
    sp = specs(traced, policy, tr)
    names = names or list(sp)
    funcs = {n: trace(sp[n][0], layout, sp[n][1], n, dynamic) for n in names}
    tabs = ", ".join(["sc", *layout.tables])
    disp = []
    for i, n in enumerate(names):
        disp.append(f"        {'if' if i == 0 else 'elif'} code == U({i}):")
        disp.append(f"            c = {n}({tabs}, args, out)")
    extra = DRIVERS.replace("{T}", tabs).replace("{DISPATCH}", "\n".join(disp))
    if not {"map", "release", "map_single", "unmap_single"} <= set(names):
        extra = extra[:extra.index("@njit(cache=True, boundscheck=False, _nrt=False)\ndef pairs_nocopy")] + \
            extra[extra.index("@njit(cache=True, boundscheck=False, _nrt=False)\ndef run_ops"):]
    mod = codegen.build_module(list(funcs.values()), mode, extra,
                               title=f"swiotlb, preset {preset.name}, policy {policy.name}", stem="t1vfast_swiotlb",
                               inline=True)
    mod.NAMES = names
    fast = Fast(preset, policy, mode, layout, funcs, mod, names, time.perf_counter() - t0)
    _BUILT[key] = fast
    return fast


def _concrete() -> Any:
    from t1virtio.logic import CONCRETE
    return CONCRETE


class FastPool:
    """One pool's state as arrays, stepped by the generated functions (one call per op)."""

    def __init__(self, fast: Fast, state: Any):
        self.fast = fast
        self.arrays = fast.arrays(state)
        self.tabs = [self.arrays[t] for t in fast.table_names()]
        n_args = max(f.nargs for f in fast.functions.values())
        n_out = max(max(f.nout for f in fast.functions.values()), 1)
        if fast.mode == "numba":
            import numpy as np
            self.args, self.out = np.zeros(max(n_args, 10), np.uint64), np.zeros(max(n_out, 5), np.uint64)
        else:
            self.args, self.out = [0] * max(n_args, 10), [0] * max(n_out, 5)

    def call(self, name: str, args: list) -> tuple[str | None, Any]:
        """Run transition ``name``: (failed clause or None, the step's out rebuilt as the model's value)."""
        for i, a in enumerate(args):
            self.args[i] = a & U64
        f = self.fast.functions[name]
        code = int(getattr(self.fast.module, name)(*self.tabs, self.args, self.out))
        if code:
            return f.clauses[code - 1], None
        return None, rebuild_out(f.out_tree, [int(x) for x in self.out[:f.nout]])[0]

    @property
    def state(self) -> Any:
        return self.fast.state(self.arrays)
