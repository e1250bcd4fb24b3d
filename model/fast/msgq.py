"""The generated message-queue fast path: every message-queue transition of the model, traced and compiled.

As ``fast/swiotlb.py``: the caller passes the model module in, ``Transitions(t1virtio.hyp.msgq)``;
``build(preset, tr, mode)`` traces each transition for that preset (ring length = the preset's
``msgq_max_depth``), generates one module with them and the hand-written payload copies and batch
drivers below, and returns a ``Fast`` handle (``fast/doorbell.py``). ``FastMessageQueue`` is one queue
(state arrays plus a flat ``uint8`` payload memory of ``size_limit`` bytes per ring slot) stepped one call
at a time, with payload bytes copied like ``hyp.msgq.MessageQueue``.

Generated transitions; every argument is a u64 register word, a bool argument is ``word != 0``:

=====================  ==================================================================
``configure``          ``msgq_configure(depth, max_size)``
``activate``           ``msgq_activate()``
``destroy``            ``msgq_destroy()``
``send``               ``msgq_send(size, flags, readable)``; out = not_full
``receive``            ``msgq_receive(bufsize, writable)``; out = (size, seq, not_empty)
``flush``              ``msgq_flush()``
``configure_send``     ``msgq_configure_send(notfull_thd, holdoff)``
``configure_receive``  ``msgq_configure_receive(notempty_thd, holdoff)``
``bind_send``          ``msgq_bind_send_virq(virq, virq_exists, virq_free)`` (and ``bind_receive``)
``unbind_send``        ``msgq_unbind_send_virq()`` (and ``unbind_receive``)
``deliver_send``       ``msgq_virq_deliver_send()``; out = taken (and ``deliver_receive``)
``eoi_send``           ``msgq_virq_eoi_send()``; out = was in service (and ``eoi_receive``)
``slots``              no transition: out = (``compute_slot(s, s.count)``, ``s.head``), the ring slots
                       the next send and receive use (for the payload copy; from the model's helper)
=====================  ==================================================================

Register words and the model's sentinels: the thresholds' KEEP (-1) and DEPTH (-2) and the default
holdoff (-1) are negative Python ints in the concrete model, which compares them with ``==``; the
generated code (as the z3 backend) sees the 64-bit register, where -1 is ``2**64 - 1``. So the model
is called with the signed reading of those words (``model_args``), every other word unsigned.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from t1virtio.fast.doorbell import Fast, FastObject, build_component, warm_run_ops

U64 = (1 << 64) - 1

SIGNED = {"configure_send": (0, 1), "configure_receive": (0, 1)}
"""Arguments the model reads as signed (its sentinels are negative ints): name -> argument positions."""


@dataclass(frozen=True)
class Transitions:
    """The model module the transitions come from (passed in: the fast path does not import it)."""

    msgq: Any


@dataclass(frozen=True)
class _Query:
    """A step with no guard and no change, only an out (the ``slots`` query)."""

    new: Any
    out: Any
    guards: tuple = ()


def specs(preset: Any, tr: Transitions) -> dict[str, tuple[Callable, int]]:
    """name -> (``fn(L, state, *args)``, number of args) for every generated function."""
    m = tr.msgq
    return {
        "configure": (lambda L, s, depth, size: m.msgq_configure(L, s, depth, size), 2),
        "activate": (lambda L, s: m.msgq_activate(L, s), 0),
        "destroy": (lambda L, s: m.msgq_destroy(L, s), 0),
        "send": (lambda L, s, size, flags, readable: m.msgq_send(L, s, size, flags, readable != 0), 3),
        "receive": (lambda L, s, bufsize, writable: m.msgq_receive(L, s, bufsize, writable != 0), 2),
        "flush": (lambda L, s: m.msgq_flush(L, s), 0),
        "configure_send": (lambda L, s, thd, holdoff: m.msgq_configure_send(L, s, thd, holdoff), 2),
        "configure_receive": (lambda L, s, thd, holdoff: m.msgq_configure_receive(L, s, thd, holdoff), 2),
        "bind_send": (lambda L, s, virq, ex, free: m.msgq_bind_send_virq(L, s, virq, ex != 0, free != 0), 3),
        "bind_receive": (lambda L, s, virq, ex, free: m.msgq_bind_receive_virq(L, s, virq, ex != 0, free != 0), 3),
        "unbind_send": (lambda L, s: m.msgq_unbind_send_virq(L, s), 0),
        "unbind_receive": (lambda L, s: m.msgq_unbind_receive_virq(L, s), 0),
        "deliver_send": (lambda L, s: m.msgq_virq_deliver_send(L, s), 0),
        "deliver_receive": (lambda L, s: m.msgq_virq_deliver_receive(L, s), 0),
        "eoi_send": (lambda L, s: m.msgq_virq_eoi_send(L, s), 0),
        "eoi_receive": (lambda L, s: m.msgq_virq_eoi_receive(L, s), 0),
        "slots": (lambda L, s: _Query(s, (m.compute_slot(L, s, s.count), s.head)), 0),
    }


def model_args(name: str, words: list) -> list:
    """The model's arguments for the register ``words`` of a call (signed where ``SIGNED`` says)."""
    out = [w & U64 for w in words]
    for i in SIGNED.get(name, ()):
        if i < len(out) and out[i] >> 63:
            out[i] -= 1 << 64
    return out


# ---------------------------------------------------------------------------------------------
# Hand-written: the payload copy and the bench's batch driver ({T} = sc, t_sizes, t_seqs)

DRIVERS = '''

@njit(cache=True, boundscheck=False)
def memcpy(dst, doff, src, soff, n):
    """dst[doff:doff+n] = src[soff:soff+n] with unsigned indices (a message's bytes)."""
    for i in range(U(0), n):
        dst[doff + i] = src[soff + i]


@njit(cache=True, boundscheck=False)
def send_bytes({T}, args, out, payload, stride, src, size, flags, readable):
    """send(size, flags, readable), then, if it was accepted, copy src[0:size] into the slot it filled
    (``slots`` before the send: the tail). Returns send's code; out = not_full."""
    slots({T}, args, out)
    tail = out[0]
    args[0] = size
    args[1] = flags
    args[2] = readable
    c = send({T}, args, out)
    if c == 0:
        memcpy(payload, tail * stride, src, U(0), size)
    return c


@njit(cache=True, boundscheck=False)
def receive_bytes({T}, args, out, payload, stride, dst, bufsize, writable):
    """receive(bufsize, writable), then, if it was accepted, copy the head message into dst[0:size].
    Returns receive's code; out = (size, seq, not_empty)."""
    slots({T}, args, out)
    head = out[1]
    args[0] = bufsize
    args[1] = writable
    c = receive({T}, args, out)
    if c == 0:
        memcpy(dst, U(0), payload, head * stride, out[0])
    return c


@njit(cache=True, boundscheck=False)
def pairs({T}, args, out, payload, stride, src, dst, n, size, flags):
    """The bench's timed part: n pairs of send(src[0:size], flags) and receive into dst (buffer of
    ``stride`` bytes). Returns 0 or the first refusal's code (send's, or 100 + receive's)."""
    for i in range(U(0), n):
        c = send_bytes({T}, args, out, payload, stride, src, size, flags, U(1))
        if c != 0:
            return c
        c = receive_bytes({T}, args, out, payload, stride, dst, stride, U(1))
        if c != 0:
            return 100 + c
    return 0
'''


def _warm(fast: Fast, obj: FastObject) -> None:
    import numpy as np
    z = np.zeros(1, np.uint8)
    fast.module.send_bytes(*obj.tabs, obj.args, obj.out, z, np.uint64(1), z, np.uint64(0), np.uint64(0), np.uint64(1))
    fast.module.receive_bytes(*obj.tabs, obj.args, obj.out, z, np.uint64(1), z, np.uint64(0), np.uint64(1))
    fast.module.pairs(*obj.tabs, obj.args, obj.out, z, np.uint64(1), z, z, np.uint64(0), np.uint64(1), np.uint64(0))
    warm_run_ops(fast, obj)


def build(preset: Any, tr: Transitions, mode: str = "numba") -> Fast:
    """Trace every message-queue transition for ``preset`` and generate their module (memoised)."""
    return build_component("msgq", preset, tr.msgq.msgq_create(preset), specs(preset, tr), mode, DRIVERS, _warm)


class FastMessageQueue(FastObject):
    """One queue: the state arrays and the payload bytes (``size_limit`` bytes per ring slot)."""

    def __init__(self, fast: Fast, state: Any):
        super().__init__(fast, state)
        self.stride = state.size_limit
        n = len(state.sizes) * self.stride
        if fast.mode == "numba":
            import numpy as np
            self.payload, self._np = np.zeros(n, np.uint8), np
        else:
            self.payload, self._np = bytearray(n), None

    def _u(self, x: int) -> Any:
        return self._np.uint64(x & U64) if self._np is not None else x & U64

    def _buf(self, data: bytes) -> Any:
        return self._np.frombuffer(bytes(data) or b"\0", self._np.uint8) if self._np is not None else data

    def send(self, data: bytes, flags: int = 0, readable: bool = True) -> tuple[str | None, Any]:
        """Queue ``data``: (failed clause or None, not_full)."""
        c = int(self.fast.module.send_bytes(*self.tabs, self.args, self.out, self.payload, self._u(self.stride),
                                            self._buf(data), self._u(len(data)), self._u(flags),
                                            self._u(int(bool(readable)))))
        return (self.fast.clause("send", c), None) if c else (None, bool(self.out[0]))

    def receive(self, bufsize: int, writable: bool = True) -> tuple[str | None, Any]:
        """Take the head message: (failed clause or None, (bytes, not_empty))."""
        dst = self._np.zeros(max(self.stride, 1), self._np.uint8) if self._np is not None else bytearray(self.stride)
        c = int(self.fast.module.receive_bytes(*self.tabs, self.args, self.out, self.payload, self._u(self.stride),
                                               dst, self._u(bufsize), self._u(int(bool(writable)))))
        if c:
            return self.fast.clause("receive", c), None
        return None, (bytes(dst[:int(self.out[0])]), bool(self.out[2]))
