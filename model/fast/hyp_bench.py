"""Bench rows for the generated message queue and doorbell (issue 12), for ``t1virtio bench`` to print.

``bench_rows(quick, msgq, doorbell)`` measures send+receive pairs per second at LINUX sizes on the model
(``MessageQueue.send``/``receive``, ``Doorbell.send``/``receive``: the concrete transitions with
``step.apply``) and on the generated fast path (the hand-written ``pairs`` driver: n pairs in one njit
call; the pure-Python mode of the same source as a third column). The caller passes the model modules
``t1virtio.hyp.msgq`` and ``t1virtio.hyp.doorbell`` (the fast path may not import them: layer contract).

There is no Linux peer for these rows: Gunyah's message queue and doorbell are hypervisor code (C in
gunyah-hypervisor, not in Linux), and ``linuxpeer`` builds Linux's own C only, so ``linux_c_ops_s`` is
None with a note. Timings: best of three runs at an n that takes at least a quarter of the cell's
budget; the numba compile or cache load is measured apart (``fast_jit_s``), never in a rate.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from t1virtio.fast import doorbell as fd
from t1virtio.fast import msgq as fm

NO_PEER = ("no Linux peer: Gunyah's message queue and doorbell are hypervisor code (gunyah-hypervisor C), "
           "not Linux; linuxpeer builds Linux's C only")



class BenchError(RuntimeError):
    """A benchmark loop did not do what it measures (a refused step, wrong bytes): its figure would be a lie."""


def _refused(clause_number: Any) -> None:
    if clause_number != 0:
        raise BenchError(f"a benchmark step was refused (clause number {int(clause_number)})")

def _rate(run: Callable[[int], None], budget: float, n0: int = 16) -> tuple[int, float]:
    """(n, best pairs/s of three runs at n), n doubled until a run takes a quarter of ``budget``."""
    n = n0
    while True:
        t0 = time.perf_counter()
        run(n)
        dt = time.perf_counter() - t0
        if dt >= budget / 4 or n >= 1 << 30:
            break
        n *= 2
    best = dt
    for _ in range(2):
        t0 = time.perf_counter()
        run(n)
        best = min(best, time.perf_counter() - t0)
    return n, n / best if best > 0 else float("inf")


def _msgq_row(msgq: Any, preset: Any, size: int, budget: float) -> dict:
    import numpy as np
    data = bytes(i & 0xff for i in range(size))
    row: dict = dict(component="msgq", size=size, variant="send+receive pairs", preset=preset.name,
                     depth=preset.msgq_max_depth, notes={"linux": NO_PEER})
    model = msgq.MessageQueue(preset, preset.msgq_max_depth, preset.msgq_max_msg_size)

    def model_run(n: int) -> None:
        for _ in range(n):
            model.send(data)
            model.receive()
    row["model_ops"], row["model_ops_s"] = _rate(model_run, budget)

    tr = fm.Transitions(msgq)
    out = {}
    for mode in ("numba", "python"):
        fast = fm.build(preset, tr, mode)
        if mode == "numba":
            row["fast_jit_s"] = fast.warm()
        q = fm.FastMessageQueue(fast, msgq.MessageQueue(preset, preset.msgq_max_depth,
                                                          preset.msgq_max_msg_size).state)
        if mode == "numba":
            u = np.uint64
            src, dst = np.frombuffer(data, np.uint8).copy(), np.zeros(q.stride, np.uint8)
            args = (q.payload, u(q.stride), src, dst)

            def fast_run(n: int, args: tuple = args) -> None:
                c = fast.module.pairs(*q.tabs, q.args, q.out, *args, u(n), u(size), u(0))
                _refused(c)
        else:
            dst = bytearray(q.stride)
            args = (q.payload, q.stride, data, dst)

            def fast_run(n: int, args: tuple = args) -> None:
                c = fast.module.pairs(*q.tabs, q.args, q.out, *args, n, size, 0)
                _refused(c)
        out[mode] = _rate(fast_run, budget, 256)
        if bytes(dst[:size]) != data:
            raise BenchError(f"the fast path's {mode} msgq returned other bytes than it was sent")
    row["fast_ops"], row["fast_ops_s"] = out["numba"]
    row["fast_py_ops"], row["fast_py_ops_s"] = out["python"]
    return _ratios(row)


def _doorbell_row(doorbell: Any, preset: Any, budget: float) -> dict:
    import numpy as np
    flag = 1 << (preset.doorbell_bits - 1)
    row: dict = dict(component="doorbell", size=preset.doorbell_bits, variant="send+receive pairs",
                     preset=preset.name, notes={"linux": NO_PEER})
    model = doorbell.Doorbell(preset)

    def model_run(n: int) -> None:
        for _ in range(n):
            model.send(flag)
            model.receive(flag)
    row["model_ops"], row["model_ops_s"] = _rate(model_run, budget)

    tr = fd.Transitions(doorbell)
    out = {}
    for mode in ("numba", "python"):
        fast = fd.build(preset, tr, mode)
        if mode == "numba":
            row["fast_jit_s"] = fast.warm()
        obj = fd.FastObject(fast, doorbell.Doorbell(preset).state)
        u = np.uint64 if mode == "numba" else int

        def fast_run(n: int, obj: Any = obj, fast: Any = fast, u: Any = u) -> None:
            c = fast.module.pairs(*obj.tabs, obj.args, obj.out, u(n), u(flag))
            _refused(c)
        out[mode] = _rate(fast_run, budget, 256)
    row["fast_ops"], row["fast_ops_s"] = out["numba"]
    row["fast_py_ops"], row["fast_py_ops_s"] = out["python"]
    return _ratios(row)


def _ratios(row: dict) -> dict:
    row["linux_c_ops_s"] = None
    row["fast_vs_model"] = row["fast_ops_s"] / row["model_ops_s"] if row.get("model_ops_s") else None
    row["fast_py_vs_model"] = row["fast_py_ops_s"] / row["model_ops_s"] if row.get("model_ops_s") else None
    return row


def bench_rows(quick: bool, msgq: Any, doorbell: Any) -> list[dict]:
    """Rows (dicts, ``bench.Row``'s field names where they match) of msgq and doorbell send+receive pairs/s
    at LINUX: model, fast (numba) and fast (pure Python); ``msgq``/``doorbell`` are the model modules
    ``t1virtio.hyp.msgq`` / ``t1virtio.hyp.doorbell``. ``quick``: 0.4 s per side and cell, else 2 s."""
    from t1virtio.preset import LINUX
    budget = 0.4 if quick else 2.0
    return [_msgq_row(msgq, LINUX, 240, budget), _msgq_row(msgq, LINUX, LINUX.msgq_max_msg_size, budget),
            _doorbell_row(doorbell, LINUX, budget)]


def format_rows(rows: list[dict]) -> str:
    """A plain table of ``bench_rows``' result."""
    def f(x: Any) -> str:
        if x is None:
            return "—"
        for div, unit in ((1e6, "M"), (1e3, "k")):
            if x >= div:
                return f"{x / div:.3g} {unit}"
        return f"{x:.3g}"
    lines = ["| component | size | model pairs/s | fast pairs/s | fast/model | fast (pure Python) | Linux C |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        size = f"{r['size']} B messages" if r["component"] == "msgq" else f"{r['size']}-bit flags"
        lines.append(f"| {r['component']} | {size} | {f(r['model_ops_s'])} | {f(r['fast_ops_s'])} | "
                     f"{r['fast_vs_model']:.0f}x | {f(r['fast_py_ops_s'])} | — (no peer) |")
    return "\n".join(lines)
