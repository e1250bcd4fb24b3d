"""The generated doorbell fast path: every doorbell transition of the model, traced and compiled.

As ``fast/swiotlb.py``: the fast path may not import the model's transitions (they reach the clause
registry), so the caller passes the module in, ``Transitions(t1virtio.hyp.doorbell)``; ``build(preset,
tr, mode)`` traces each transition for that preset (the flag width is the preset's), generates one
module with them and the hand-written batch drivers below, and returns a ``Fast`` handle.
``FastObject`` holds one object's state as arrays and steps it one call at a time (tests).

This file also holds the pieces shared with ``fast/msgq.py`` (the message queue's VIRQ lines are the
doorbell's, and the model's ``hyp/msgq.py`` imports ``hyp/doorbell.py`` the same way): ``Fast``,
``FastObject`` and ``build_component``.

Generated transitions; every argument is a u64 register word, a bool argument is ``word != 0``:

=============  ==========================================================================
``activate``   ``doorbell_activate()``
``destroy``    ``doorbell_destroy()``
``send``       ``doorbell_send(new_flags)``; out = old flags
``receive``    ``doorbell_receive(clear_flags)``; out = old flags
``mask``       ``doorbell_mask(enable_mask, ack_mask)``
``reset``      ``doorbell_reset()``
``bind``       ``doorbell_bind_virq(edge_trigger, virq, virq_exists, virq_free)``
``unbind``     ``doorbell_unbind_virq()``
``deliver``    ``virq_deliver()``; out = taken
``eoi``        ``virq_eoi()``; out = was in service
=============  ==========================================================================
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from t1virtio.fast import codegen
from t1virtio.fast.codegen import GeneratedModule
from t1virtio.fast.trace import Layout, from_arrays, layout_of, rebuild_out, to_arrays, trace

U64 = (1 << 64) - 1


@dataclass(frozen=True)
class Transitions:
    """The model module the transitions come from (passed in: the fast path does not import it)."""

    doorbell: Any


def specs(preset: Any, tr: Transitions) -> dict[str, tuple[Callable, int]]:
    """name -> (``fn(L, state, *args)``, number of args) for every generated transition."""
    d = tr.doorbell
    return {
        "activate": (lambda L, s: d.doorbell_activate(L, s), 0),
        "destroy": (lambda L, s: d.doorbell_destroy(L, s), 0),
        "send": (lambda L, s, f: d.doorbell_send(L, s, f), 1),
        "receive": (lambda L, s, f: d.doorbell_receive(L, s, f), 1),
        "mask": (lambda L, s, e, a: d.doorbell_mask(L, s, e, a), 2),
        "reset": (lambda L, s: d.doorbell_reset(L, s), 0),
        "bind": (lambda L, s, edge, virq, ex, free: d.doorbell_bind_virq(L, s, edge != 0, virq, ex != 0, free != 0), 4),
        "unbind": (lambda L, s: d.doorbell_unbind_virq(L, s), 0),
        "deliver": (lambda L, s: d.virq_deliver(L, s), 0),
        "eoi": (lambda L, s: d.virq_eoi(L, s), 0),
    }


# ---------------------------------------------------------------------------------------------
# Shared with fast/msgq.py

@dataclass
class Fast(GeneratedModule):
    """A generated module for one component and preset, in one mode."""

    component: str
    preset: Any
    mode: str
    layout: Layout
    functions: dict
    module: Any
    names: list
    trace_s: float
    compile_s: float = 0.0
    warm_drivers: Any = None        # fn(fast, obj): one call of each hand-written driver (numba mode)


    def words(self, n: int) -> Any:
        if self.mode == "numba":
            import numpy as np
            return np.zeros(n, np.uint64)
        return [0] * n

    def warm(self) -> float:
        """Compile (or load from numba's cache) every generated function and driver; return the seconds."""
        t0 = time.perf_counter()
        obj = FastObject(self, self.layout.template)
        for name in self.names:
            obj.call(name, [0] * self.functions[name].nargs)
        if self.warm_drivers is not None and self.mode == "numba":
            self.warm_drivers(self, obj)
        self.compile_s = time.perf_counter() - t0
        return self.compile_s


def dispatch_source(names: list, tabs: str) -> str:
    """The body of ``run_ops``'s dispatch: op code i calls ``names[i]``."""
    lines = []
    for i, n in enumerate(names):
        lines.append(f"        {'if' if i == 0 else 'elif'} code == U({i}):")
        lines.append(f"            c = {n}({tabs}, args, out)")
    return "\n".join(lines)


RUN_OPS = '''

@njit(cache=True, boundscheck=False)
def run_ops({T}, args, out, ops, results):
    """A whole op sequence: row r of ``ops`` is (op code, args...); op codes index NAMES. results[r] =
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

_BUILT: dict = {}


def build_component(component: str, preset: Any, template: Any, sp: dict, mode: str, drivers: str,
                    warm_drivers: Any = None) -> Fast:
    """Trace every transition of ``sp`` over the layout of ``template`` and generate one module of them,
    ``drivers`` (hand-written source; ``{T}`` = the state tables) and ``run_ops`` (memoised)."""
    key = (component, preset, mode)
    if key in _BUILT:
        return _BUILT[key]
    t0 = time.perf_counter()
    layout = layout_of(template)
    names = list(sp)
    funcs = {n: trace(sp[n][0], layout, sp[n][1], n) for n in names}
    tabs = ", ".join(["sc", *layout.tables])
    extra = (drivers + RUN_OPS).replace("{T}", tabs).replace("{DISPATCH}", dispatch_source(names, tabs))
    mod = codegen.build_module(list(funcs.values()), mode, extra, title=f"{component}, preset {preset.name}",
                               stem=f"t1vfast_{component}")
    mod.NAMES = names
    fast = Fast(component, preset, mode, layout, funcs, mod, names, time.perf_counter() - t0, 0.0, warm_drivers)
    _BUILT[key] = fast
    return fast


class FastObject:
    """One object's state as arrays, stepped by the generated functions (one call per op)."""

    def __init__(self, fast: Fast, state: Any):
        self.fast = fast
        self.arrays = fast.arrays(state)
        self.tabs = [self.arrays[t] for t in fast.table_names()]
        self.args = fast.words(max(8, max(f.nargs for f in fast.functions.values())))
        self.out = fast.words(max(4, max(f.nout for f in fast.functions.values())))

    def code(self, name: str, args: list) -> int:
        """Run transition ``name`` on u64 words; return its code (0, or the failed guard's 1-based number)."""
        for i, a in enumerate(args):
            self.args[i] = a & U64
        return int(getattr(self.fast.module, name)(*self.tabs, self.args, self.out))

    def call(self, name: str, args: list) -> tuple[str | None, Any]:
        """Run transition ``name``: (failed clause or None, the step's out rebuilt as the model's value)."""
        code = self.code(name, args)
        f = self.fast.functions[name]
        if code:
            return f.clauses[code - 1], None
        return None, rebuild_out(f.out_tree, [int(x) for x in self.out[:f.nout]])[0]

    @property
    def state(self) -> Any:
        return self.fast.state(self.arrays)


# ---------------------------------------------------------------------------------------------
# Hand-written: the bench's batch driver ({T} = sc)

DRIVERS = '''

@njit(cache=True, boundscheck=False)
def pairs({T}, args, out, n, flags):
    """The bench's timed part: n pairs of send(flags) and receive(flags). Returns 0 or the first refusal's
    code (send's, or 100 + receive's)."""
    for i in range(U(0), n):
        args[0] = flags
        c = send({T}, args, out)
        if c != 0:
            return c
        args[0] = flags
        c = receive({T}, args, out)
        if c != 0:
            return 100 + c
    return 0
'''


def warm_run_ops(fast: Fast, obj: FastObject) -> None:
    import numpy as np
    fast.module.run_ops(*obj.tabs, obj.args, obj.out, np.zeros((0, 1 + len(obj.args)), np.uint64),
                        np.zeros((0, 1 + len(obj.out)), np.uint64))


def _warm(fast: Fast, obj: FastObject) -> None:
    import numpy as np
    fast.module.pairs(*obj.tabs, obj.args, obj.out, np.uint64(0), np.uint64(1))
    warm_run_ops(fast, obj)


def build(preset: Any, tr: Transitions, mode: str = "numba") -> Fast:
    """Trace every doorbell transition for ``preset`` and generate their module (memoised)."""
    return build_component("doorbell", preset, tr.doorbell.doorbell_create(preset), specs(preset, tr), mode, DRIVERS,
                           _warm)
