"""Hypervisor message queue: one-way, bounded, FIFO, copied (Gunyah msgqueue; facts §3.1, §6.4).

The symbolic core tracks sizes, ring position, thresholds and the two level VIRQ lines, plus two
ghost counters (``sent``, ``received``) and a ghost sequence number per slot that let the FIFO
invariant be stated. Payload bytes are an effect held by ``MessageQueue`` beside the core.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from t1virtio.logic import CONCRETE
from t1virtio.preset import Preset
from t1virtio.state import table
from t1virtio.step import Step, apply, step

GUNYAH_MAX_DEPTH = 255      # MSGQUEUE_MAX_QUEUE_DEPTH (256) - 1: "depth < 256"
GUNYAH_MAX_MSG_SIZE = 1023  # MSGQUEUE_MAX_MAX_MSG_SIZE (1024) - 1: "size < 1024"
GH_MSGQ_MAX_MSG_SIZE = 240  # what Linux and the RM use per message
MSGQ_PUSH = 1               # send flags bit 0
KEEP = -1                   # configure_send/receive: keep the current threshold
DEPTH = -2                  # configure_receive: threshold = depth


@dataclass(frozen=True, slots=True)
class MsgQueueState:
    """One queue's state; ``sizes``/``seqs`` are ring slots of fixed (preset) length."""

    depth: int
    max_size: int
    count: int
    head: int
    sent: int                 # ghost: messages accepted so far
    received: int             # ghost: messages delivered so far
    sizes: tuple[int, ...] = table()
    seqs: tuple[int, ...] = table()  # ghost: which message (by ``sent`` number) sits in each slot
    notfull_thd: int
    notempty_thd: int
    tx_virq: bool             # sender's "not full" line
    rx_virq: bool             # receiver's "not empty" line


def compute_slot(L: Any, s: MsgQueueState, k: Any) -> Any:
    """Return the ring slot ``k`` places after the head (``k <= depth``)."""
    return L.If(L.ULE(s.depth, s.head + k), s.head + k - s.depth, s.head + k)


def msgq_configure(L: Any, preset: Preset, depth: Any, max_size: Any) -> Step:
    """Create an empty queue (msgqueue_configure + activate): depth and size bounds, default thresholds."""
    n = min(GUNYAH_MAX_DEPTH, preset.msgq_max_depth)
    zeros = (0,) * preset.msgq_max_depth
    guards = [(L.And(L.ULE(1, depth), L.ULE(depth, n), L.ULE(1, max_size),
                     L.ULE(max_size, min(GUNYAH_MAX_MSG_SIZE, preset.msgq_max_msg_size))), "HYP-MSGQ-configure")]
    new = MsgQueueState(depth=depth, max_size=max_size, count=0, head=0, sent=0, received=0,
                        sizes=zeros, seqs=zeros, notfull_thd=depth - 1, notempty_thd=1,
                        tx_virq=True, rx_virq=False)
    return step(guards, new)


def msgq_send(L: Any, s: MsgQueueState, size: Any, flags: Any) -> Step:
    """Queue one message of ``size`` bytes at the tail; out = not_full (hypercall msgqueue_send)."""
    push = (flags & MSGQ_PUSH) == MSGQ_PUSH
    tail = compute_slot(L, s, s.count)
    count = s.count + 1
    guards = [((flags & ~MSGQ_PUSH) == 0, "HYP-MSGQ-flags"),
              (L.ULT(s.count, s.depth), "HYP-MSGQ-full"),
              (L.And(L.ULE(1, size), L.ULE(size, s.max_size)), "HYP-MSGQ-size")]
    new = replace(s, count=count, sent=s.sent + 1,
                  sizes=L.update(s.sizes, tail, size), seqs=L.update(s.seqs, tail, s.sent),
                  rx_virq=L.Or(s.rx_virq, push, L.ULE(s.notempty_thd, count)),
                  tx_virq=L.ULE(count, s.notfull_thd))
    return step(guards, new, out=L.Not(count == s.depth))


def msgq_receive(L: Any, s: MsgQueueState, bufsize: Any) -> Step:
    """Take the head message into a ``bufsize``-byte buffer; out = (size, seq, not_empty)."""
    size = L.at(s.sizes, s.head)
    count = s.count - 1
    guards = [(L.ULT(0, s.count), "HYP-MSGQ-empty"),
              (L.ULE(size, bufsize), "HYP-MSGQ-overflow")]
    new = replace(s, count=count, received=s.received + 1, head=compute_slot(L, s, 1),
                  tx_virq=L.ULE(count, s.notfull_thd), rx_virq=L.ULE(s.notempty_thd, count))
    return step(guards, new, out=(size, L.at(s.seqs, s.head), L.ULT(0, count)))


def msgq_flush(L: Any, s: MsgQueueState) -> Step:
    """Discard every queued message (msgqueue_flush): not-full asserted, not-empty cleared."""
    return step([], replace(s, count=0, head=0, received=s.sent, tx_virq=True, rx_virq=False))


def msgq_configure_send(L: Any, s: MsgQueueState, notfull_thd: Any) -> Step:
    """Set the not-full threshold (``-1`` keeps it) and re-evaluate the send VIRQ."""
    thd = L.If(notfull_thd == KEEP, s.notfull_thd, notfull_thd)
    guards = [(L.Or(notfull_thd == KEEP, L.And(L.ULE(0, notfull_thd), L.ULT(notfull_thd, s.depth))),
               "HYP-MSGQ-notfull-thd")]
    return step(guards, replace(s, notfull_thd=thd, tx_virq=L.ULE(s.count, thd)))


def msgq_configure_receive(L: Any, s: MsgQueueState, notempty_thd: Any) -> Step:
    """Set the not-empty threshold (``-1`` keeps it, ``-2`` means depth) and re-evaluate the receive VIRQ.

    Gunyah @36ca3a2 does not re-evaluate the VIRQ on the ``-2`` path; the model re-evaluates on
    every path (documented divergence, docs/msgq.md).
    """
    thd = L.If(notempty_thd == KEEP, s.notempty_thd, L.If(notempty_thd == DEPTH, s.depth, notempty_thd))
    guards = [(L.Or(notempty_thd == KEEP, notempty_thd == DEPTH,
                    L.And(L.ULE(1, notempty_thd), L.ULE(notempty_thd, s.depth))), "HYP-MSGQ-notempty-thd")]
    return step(guards, replace(s, notempty_thd=thd, rx_virq=L.ULE(thd, s.count)))


class MessageQueue:
    """A concrete queue: the core state plus the payload bytes of each ring slot."""

    def __init__(self, preset: Preset, depth: int, max_size: int = GH_MSGQ_MAX_MSG_SIZE):
        self.state, _ = apply(msgq_configure(CONCRETE, preset, depth, max_size))
        self.payloads: list[bytes] = [b""] * preset.msgq_max_depth
        self.last_out: Any = None   # the core step's out, for rule checks

    def send(self, data: bytes, push: bool = False, flags: int | None = None) -> bool:
        """Queue ``data``; return not_full. Raises ``Exhausted`` when full, ``CallerError`` on a bad size."""
        tail = compute_slot(CONCRETE, self.state, self.state.count)
        f = (MSGQ_PUSH if push else 0) if flags is None else flags
        sp = msgq_send(CONCRETE, self.state, len(data), f)
        self.last_out = sp.out
        self.state, not_full = apply(sp, f"{len(data)} bytes, {self.state.count}/{self.state.depth} queued")
        self.payloads[tail] = bytes(data)
        return not_full

    def receive(self, bufsize: int | None = None) -> tuple[bytes, bool]:
        """Return (head message, not_empty). Raises ``Exhausted`` when empty."""
        head = self.state.head
        buf = self.state.max_size if bufsize is None else bufsize
        sp = msgq_receive(CONCRETE, self.state, buf)
        self.last_out = sp.out
        self.state, (size, _, not_empty) = apply(sp, f"buffer of {buf} bytes")
        return self.payloads[head][:size], not_empty

    def flush(self) -> None:
        """Discard every queued message."""
        self.state, _ = apply(msgq_flush(CONCRETE, self.state))

    def configure_send(self, notfull_thd: int) -> None:
        self.state, _ = apply(msgq_configure_send(CONCRETE, self.state, notfull_thd), f"threshold {notfull_thd}")

    def configure_receive(self, notempty_thd: int) -> None:
        self.state, _ = apply(msgq_configure_receive(CONCRETE, self.state, notempty_thd), f"threshold {notempty_thd}")
