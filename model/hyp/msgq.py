"""Hypervisor message queue: one-way, bounded, FIFO, copied (Gunyah msgqueue; facts §3.0, §3.1, §6.4).

The symbolic core tracks the object's lifecycle (INIT -> configure -> activate -> ACTIVE -> destroy),
sizes, ring position, thresholds and the two VIRQ lines, plus two ghost counters (``sent``,
``received``) and a ghost sequence number per slot that let the FIFO invariant be stated. Payload
bytes are an effect held by ``MessageQueue`` beside the core.

Each VIRQ line (``tx``: the sender's "not full", ``rx``: the receiver's "not empty") is modelled as
the part of the vGIC delivery state its source can affect, the same way as the doorbell's
(``hyp/doorbell.py``): Gunyah asserts a line only on a transition (send: PUSH or ``count ==
notempty_thd``; receive: ``count == notfull_thd``; flush; configure_send/receive) and deasserts it
lazily, when ``check_pending`` returns false at EOI (pending while the condition holds, or while
reasserted since taken). A line is bound late with ``bind_*_virq``: ``vic_bind_shared`` starts it
unasserted, so a condition that already holds raises nothing until the next assertion (the ghost
``unsignalled``; docs/msgq.md). Binding names a VIRQ number of the VM's interrupt controller, with
the checks of ``vic_bind_shared`` that the doorbell has too (``hyp/doorbell.py`` ``Vic``): the line
is already bound (VIRQ_BOUND), no such shared VIRQ (ARGUMENT_INVALID), the number has another source
(BUSY). ``MessageQueue`` shares a ``Vic`` per VM with the doorbells of that VM.

Copy faults: send and receive take whether the caller's buffer could be read (send) or written
(receive); ``MessageQueue.send_from``/``receive_into`` compute it from the caller's ``MemoryView``
(a VM-bound view of ``hyp/memory.py`` checks the VM's stage-2 rights) after every other guard held.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t1virtio import errors
from t1virtio.hyp.doorbell import OBJ_ACTIVE, OBJ_DESTROYED, OBJ_INIT, VIRQ_FIRST_SPI, Vic
from t1virtio.logic import CONCRETE
from t1virtio.preset import Preset
from t1virtio.state import evolve, table
from t1virtio.step import Step, apply, first_failed, step

GUNYAH_MAX_DEPTH = 255      # MSGQUEUE_MAX_QUEUE_DEPTH (256) - 1: "depth < 256"
GUNYAH_MAX_MSG_SIZE = 1023  # MSGQUEUE_MAX_MAX_MSG_SIZE (1024) - 1: "size < 1024"
GH_MSGQ_MAX_MSG_SIZE = 240  # what Linux and the RM use per message
MSGQ_PUSH = 1               # send flags bit 0
KEEP = -1                   # configure_send/receive: keep the current threshold (no change at all)
DEPTH = -2                  # configure_receive: threshold = depth
HOLDOFF_DEFAULT = -1        # configure_send/receive holdoff: anything else is ERROR_UNIMPLEMENTED

LINES = ("tx", "rx")


@dataclass(frozen=True, slots=True)
class VirqLine:
    """One VIRQ source of the queue and the vGIC delivery bits it can affect (level-triggered)."""

    bound: bool               # a VIRQ is bound to the source (bind_send_virq / bind_receive_virq)
    virq: int                 # the bound VIRQ number (meaningful while bound)
    level: bool               # level assertion (vgic level_src): set by an assertion, cleared by virq_clear or at EOI
    edge: bool                # asserted since last taken ("reasserted" for check_pending)
    active: bool              # taken by the VM, not yet EOI'd
    unsignalled: bool         # ghost: the line's condition already held when it was bound, no assertion since


QUIET = VirqLine(bound=False, virq=0, level=False, edge=False, active=False, unsignalled=False)


@dataclass(frozen=True, slots=True)
class MsgQueueState:
    """One queue's state; ``sizes``/``seqs`` are ring slots of fixed (preset) length."""

    lifecycle: int            # OBJ_INIT, OBJ_ACTIVE or OBJ_DESTROYED
    size_limit: int           # largest max_size configure accepts: min(1023, preset) (a constant of the queue)
    depth: int                # 0 until configured
    max_size: int             # 0 until configured
    count: int
    head: int
    sent: int                 # ghost: messages accepted so far
    received: int             # ghost: messages delivered so far
    sizes: tuple[int, ...] = table()
    seqs: tuple[int, ...] = table()  # ghost: which message (by ``sent`` number) sits in each slot
    notfull_thd: int
    notempty_thd: int
    tx: VirqLine              # sender's "not full" line
    rx: VirqLine              # receiver's "not empty" line


def compute_slot(L: Any, s: MsgQueueState, k: Any) -> Any:
    """Return the ring slot ``k`` places after the head (``k <= depth``)."""
    return L.If(L.ULE(s.depth, s.head + k), s.head + k - s.depth, s.head + k)


def line_condition(L: Any, s: MsgQueueState, line: str) -> Any:
    """Return check_pending's condition of ``line``: tx ``count <= notfull_thd``, rx ``count >= notempty_thd``."""
    if line == "tx":
        return L.ULE(s.count, s.notfull_thd)
    return L.ULE(s.notempty_thd, s.count)


def is_line_pending(L: Any, ln: VirqLine) -> Any:
    """Return whether a (level-triggered) line is pending: bound and level-asserted."""
    return L.And(ln.bound, ln.level)


def is_line_deliverable(L: Any, ln: VirqLine) -> Any:
    """Return whether the VM can take the line now: pending and not in service."""
    return L.And(is_line_pending(L, ln), L.Not(ln.active))


def line_assert(L: Any, ln: VirqLine, when: Any) -> VirqLine:
    """Assert the line if ``when`` (virq_assert, level): level and edge set; nothing on an unbound source."""
    a = L.And(when, ln.bound)
    return VirqLine(bound=ln.bound, virq=ln.virq, level=L.Or(ln.level, a), edge=L.Or(ln.edge, a), active=ln.active,
                    unsignalled=L.And(ln.unsignalled, L.Not(a)))


def line_clear(L: Any, ln: VirqLine) -> VirqLine:
    """Deassert the level (virq_clear)."""
    return VirqLine(bound=ln.bound, virq=ln.virq, level=False, edge=ln.edge, active=ln.active, unsignalled=False)


def line_reevaluate(L: Any, ln: VirqLine, cond: Any) -> VirqLine:
    """configure_send/receive: assert the line if ``cond`` holds, else clear it."""
    return L.If(cond, line_assert(L, ln, True), line_clear(L, ln))


def is_active(L: Any, s: MsgQueueState) -> Any:
    return s.lifecycle == OBJ_ACTIVE


def msgq_create(preset: Preset) -> MsgQueueState:
    """Return a new, unconfigured queue object (INIT): no depth, no size, both lines unbound."""
    n = preset.msgq_max_depth
    return MsgQueueState(lifecycle=OBJ_INIT, size_limit=min(GUNYAH_MAX_MSG_SIZE, preset.msgq_max_msg_size), depth=0,
                         max_size=0, count=0, head=0, sent=0, received=0, sizes=CONCRETE.tabulate(n, lambda k: 0),
                         seqs=CONCRETE.tabulate(n, lambda k: 0), notfull_thd=0, notempty_thd=0, tx=QUIET, rx=QUIET)


def msgq_configure(L: Any, s: MsgQueueState, depth: Any, max_size: Any) -> Step:
    """Store depth and maximum message size (msgqueue_configure, hypercall 0x6021); the object must be INIT."""
    n = min(GUNYAH_MAX_DEPTH, len(s.sizes))
    guards = [(s.lifecycle == OBJ_INIT, "HYP-MSGQ-object-state"),
              (L.And(L.ULE(1, depth), L.ULE(depth, n), L.ULE(1, max_size), L.ULE(max_size, s.size_limit)),
               "HYP-MSGQ-configure")]
    return step(guards, L.effect(guards, lambda: evolve(s, depth=depth, max_size=max_size), s))


def msgq_activate(L: Any, s: MsgQueueState) -> Step:
    """Activate a configured queue (object_activate): empty ring, default thresholds.

    INIT only (OBJECT_STATE); depth or size 0, i.e. never configured, is OBJECT_CONFIG.
    """
    guards = [(s.lifecycle == OBJ_INIT, "HYP-MSGQ-object-state"),
              (L.And(s.depth != 0, s.max_size != 0), "HYP-MSGQ-object-config")]
    return step(guards, L.effect(guards, lambda: evolve(
        s, lifecycle=OBJ_ACTIVE, count=0, head=0, sent=0, received=0, notfull_thd=s.depth - 1, notempty_thd=1), s))


def msgq_destroy(L: Any, s: MsgQueueState) -> Step:
    """Destroy the object (last capability deleted): both lines unbound, queued messages dropped."""
    guards = [(s.lifecycle != OBJ_DESTROYED, "HYP-MSGQ-object-state")]
    return step(guards, L.effect(guards, lambda: evolve(s, lifecycle=OBJ_DESTROYED, count=0, head=0, received=s.sent,
                                                        tx=QUIET, rx=QUIET), s))


def msgq_send(L: Any, s: MsgQueueState, size: Any, flags: Any, readable: Any = True) -> Step:
    """Queue one message of ``size`` bytes at the tail; out = not_full (hypercall msgqueue_send 0x601b).

    ``readable``: the caller's buffer could be read (else ADDR_INVALID, nothing queued). The receive
    line is asserted on PUSH or when ``count`` reaches ``notempty_thd``; the send line is not touched.
    """
    push = (flags & MSGQ_PUSH) == MSGQ_PUSH
    count = s.count + 1
    guards = [(is_active(L, s), "HYP-MSGQ-object-state"),
              ((flags & ~MSGQ_PUSH) == 0, "HYP-MSGQ-flags"),
              (L.ULT(s.count, s.depth), "HYP-MSGQ-full"),
              (L.And(L.ULE(1, size), L.ULE(size, s.max_size)), "HYP-MSGQ-size"),
              (readable, "HYP-MSGQ-send-fault")]

    def make() -> MsgQueueState:
        tail = compute_slot(L, s, s.count)
        return evolve(s, count=count, sent=s.sent + 1,
                      sizes=L.update(s.sizes, tail, size), seqs=L.update(s.seqs, tail, s.sent),
                      rx=line_assert(L, s.rx, L.Or(push, count == s.notempty_thd)))
    return step(guards, L.effect(guards, make, s), out=L.Not(count == s.depth))


def msgq_receive(L: Any, s: MsgQueueState, bufsize: Any, writable: Any = True) -> Step:
    """Take the head message into a ``bufsize``-byte buffer; out = (size, seq, not_empty) (0x601c).

    ``writable``: the caller's buffer could be written for the message's length (else ADDR_INVALID,
    the message stays queued). The send line is asserted when ``count`` drops to ``notfull_thd``.
    """
    size = L.at(s.sizes, s.head)
    count = s.count - 1
    guards = [(is_active(L, s), "HYP-MSGQ-object-state"),
              (L.ULT(0, s.count), "HYP-MSGQ-empty"),
              (L.ULE(size, bufsize), "HYP-MSGQ-overflow"),
              (writable, "HYP-MSGQ-receive-fault")]
    new = L.effect(guards, lambda: evolve(s, count=count, received=s.received + 1, head=compute_slot(L, s, 1),
                                          tx=line_assert(L, s.tx, count == s.notfull_thd)), s)
    return step(guards, new, out=(size, L.at(s.seqs, s.head), L.Not(count == 0)))


def msgq_flush(L: Any, s: MsgQueueState) -> Step:
    """Discard every queued message (msgqueue_flush 0x601d): if any was queued, assert not-full, clear not-empty."""
    guards = [(is_active(L, s), "HYP-MSGQ-object-state")]
    some = s.count != 0
    return step(guards, L.effect(guards, lambda: evolve(
        s, count=0, head=0, received=s.sent, tx=line_assert(L, s.tx, some),
        rx=L.If(some, line_clear(L, s.rx), s.rx)), s))


def msgq_configure_send(L: Any, s: MsgQueueState, notfull_thd: Any, holdoff: Any = HOLDOFF_DEFAULT) -> Step:
    """Set the not-full threshold and re-evaluate the send line (msgqueue_configure_send 0x601f).

    ``-1`` changes nothing at all (the line is not re-evaluated). Holdoff other than -1 is
    UNIMPLEMENTED, before any other check.
    """
    keep = notfull_thd == KEEP
    guards = [(holdoff == HOLDOFF_DEFAULT, "HYP-MSGQ-holdoff"),
              (is_active(L, s), "HYP-MSGQ-object-state"),
              (L.Or(keep, L.And(L.ULE(0, notfull_thd), L.ULT(notfull_thd, s.depth))), "HYP-MSGQ-notfull-thd")]
    return step(guards, L.effect(guards, lambda: L.If(keep, s, evolve(
        s, notfull_thd=notfull_thd, tx=line_reevaluate(L, s.tx, L.ULE(s.count, notfull_thd)))), s))


def msgq_configure_receive(L: Any, s: MsgQueueState, notempty_thd: Any, holdoff: Any = HOLDOFF_DEFAULT) -> Step:
    """Set the not-empty threshold (``-2`` means depth) and re-evaluate the receive line (0x6020).

    ``-1`` changes nothing at all. Gunyah @36ca3a2 does not re-evaluate the line on the ``-2``
    path; the model follows the documented behaviour and re-evaluates (docs/msgq.md). Holdoff other
    than -1 is UNIMPLEMENTED, before any other check.
    """
    keep = notempty_thd == KEEP
    thd = L.If(notempty_thd == DEPTH, s.depth, notempty_thd)
    guards = [(holdoff == HOLDOFF_DEFAULT, "HYP-MSGQ-holdoff"),
              (is_active(L, s), "HYP-MSGQ-object-state"),
              (L.Or(keep, notempty_thd == DEPTH, L.And(L.ULE(1, notempty_thd), L.ULE(notempty_thd, s.depth))),
               "HYP-MSGQ-notempty-thd")]
    return step(guards, L.effect(guards, lambda: L.If(keep, s, evolve(
        s, notempty_thd=thd, rx=line_reevaluate(L, s.rx, L.ULE(thd, s.count)))), s))


def _bind(L: Any, s: MsgQueueState, line: str, virq: Any, virq_exists: Any, virq_free: Any) -> Step:
    """Bind ``line`` to VIRQ ``virq`` (msgqueue_bind -> vic_bind_shared), in vic_bind_shared's order of checks.

    ``virq_exists``/``virq_free``: the VM's vGIC has that shared VIRQ, and no other source holds it.
    """
    ln = getattr(s, line)
    guards = [(is_active(L, s), "HYP-MSGQ-object-state"),
              (L.Not(ln.bound), "HYP-MSGQ-virq-bound"),
              (virq_exists, "HYP-MSGQ-virq-number"),
              (virq_free, "HYP-MSGQ-virq-busy")]
    fresh = VirqLine(bound=True, virq=virq, level=False, edge=False, active=False, unsignalled=line_condition(L, s, line))
    return step(guards, L.effect(guards, lambda: evolve(s, **{line: fresh}), s))


def _unbind(L: Any, s: MsgQueueState, line: str) -> Step:
    guards = [(is_active(L, s), "HYP-MSGQ-object-state")]
    return step(guards, L.effect(guards, lambda: evolve(s, **{line: QUIET}), s))


def msgq_bind_send_virq(L: Any, s: MsgQueueState, virq: Any = VIRQ_FIRST_SPI, virq_exists: Any = True,
                        virq_free: Any = True) -> Step:
    """Bind the sender's not-full VIRQ (0x6017; vic_bind_shared): starts unasserted.

    OBJECT_STATE unless ACTIVE, VIRQ_BOUND if bound, ARGUMENT_INVALID if no such VIRQ, BUSY if it has a source.
    """
    return _bind(L, s, "tx", virq, virq_exists, virq_free)


def msgq_bind_receive_virq(L: Any, s: MsgQueueState, virq: Any = VIRQ_FIRST_SPI, virq_exists: Any = True,
                           virq_free: Any = True) -> Step:
    """Bind the receiver's not-empty VIRQ (0x6018): as ``msgq_bind_send_virq``."""
    return _bind(L, s, "rx", virq, virq_exists, virq_free)


def msgq_unbind_send_virq(L: Any, s: MsgQueueState) -> Step:
    """Unbind and clear the not-full VIRQ (0x6019; vic_unbind_sync); OK when unbound."""
    return _unbind(L, s, "tx")


def msgq_unbind_receive_virq(L: Any, s: MsgQueueState) -> Step:
    """Unbind and clear the not-empty VIRQ (0x601a); OK when unbound."""
    return _unbind(L, s, "rx")


def _deliver(L: Any, s: MsgQueueState, line: str) -> Step:
    ln = getattr(s, line)
    take = is_line_deliverable(L, ln)
    taken = VirqLine(bound=ln.bound, virq=ln.virq, level=ln.level, edge=False, active=True, unsignalled=ln.unsignalled)
    return step([], L.effect([], lambda: evolve(s, **{line: L.If(take, taken, ln)}), s), out=take)


def _eoi(L: Any, s: MsgQueueState, line: str) -> Step:
    """EOI: check_pending runs again: the level stays iff reasserted since taken or the condition holds."""
    ln = getattr(s, line)
    stays = L.And(ln.level, L.Or(ln.edge, line_condition(L, s, line)))
    ended = VirqLine(bound=ln.bound, virq=ln.virq, level=stays, edge=ln.edge, active=False, unsignalled=ln.unsignalled)
    return step([], L.effect([], lambda: evolve(s, **{line: L.If(ln.active, ended, ln)}), s), out=ln.active)


def msgq_virq_deliver_send(L: Any, s: MsgQueueState) -> Step:
    """The sender's VM takes the not-full VIRQ; out = whether one was taken (else spurious)."""
    return _deliver(L, s, "tx")


def msgq_virq_deliver_receive(L: Any, s: MsgQueueState) -> Step:
    """The receiver's VM takes the not-empty VIRQ; out = whether one was taken."""
    return _deliver(L, s, "rx")


def msgq_virq_eoi_send(L: Any, s: MsgQueueState) -> Step:
    """EOI of the not-full VIRQ; out = whether it was in service."""
    return _eoi(L, s, "tx")


def msgq_virq_eoi_receive(L: Any, s: MsgQueueState) -> Step:
    """EOI of the not-empty VIRQ; out = whether it was in service."""
    return _eoi(L, s, "rx")


BIND = {"tx": msgq_bind_send_virq, "rx": msgq_bind_receive_virq}
UNBIND = {"tx": msgq_unbind_send_virq, "rx": msgq_unbind_receive_virq}
DELIVER = {"tx": msgq_virq_deliver_send, "rx": msgq_virq_deliver_receive}
EOI = {"tx": msgq_virq_eoi_send, "rx": msgq_virq_eoi_receive}


class MessageQueue:
    """A concrete queue: the core state plus the payload bytes of each ring slot.

    ``MessageQueue(preset, depth, max_size)`` creates, configures and activates; ``depth=None``
    leaves the object INIT (``configure``, ``activate``). ``send``/``receive`` copy trusted bytes;
    ``send_from``/``receive_into`` copy through the caller's ``MemoryView`` (copy faults are
    ADDR_INVALID, ``HYP-MSGQ-send-fault`` / ``-receive-fault``).

    ``vic`` is the interrupt controller a line binds to by default (one ``Vic`` per VM, shared with
    that VM's doorbells); ``bind(line, virq, vic)`` names the VM's VIC as the hypercall does (the
    sender's for ``tx``, the receiver's for ``rx``).
    """

    def __init__(self, preset: Preset, depth: int | None = None, max_size: int = GH_MSGQ_MAX_MSG_SIZE,
                 vic: Vic | None = None):
        self.state = msgq_create(preset)
        self.vic = vic if vic is not None else Vic()
        self.bound_vics: dict[str, Vic] = {}   # the Vic holding each bound line's number
        self.owners = {line: (self, line) for line in LINES}   # each line's identity as a VIRQ source
        self.payloads: list[bytes] = [b""] * preset.msgq_max_depth
        self.last_out: Any = None   # the core step's out, for rule checks
        if depth is not None:
            self.configure(depth, max_size)
            self.activate()

    def _run(self, sp: Step, detail: str = "") -> Any:
        self.last_out = sp.out
        self.state, out = apply(sp, detail)
        return out

    # --- lifecycle
    def configure(self, depth: int, max_size: int) -> None:
        self._run(msgq_configure(CONCRETE, self.state, depth, max_size), f"depth {depth}, max size {max_size}")

    def activate(self) -> None:
        self._run(msgq_activate(CONCRETE, self.state), f"depth {self.state.depth}, max size {self.state.max_size}")

    def destroy(self) -> None:
        """Destroy the object: both lines unbound (object deactivation: vic_unbind), their numbers released."""
        s = self.state
        self._run(msgq_destroy(CONCRETE, s))
        for line in LINES:
            self._release(s, line)

    def _release(self, was: MsgQueueState, line: str) -> None:
        if getattr(was, line).bound and not getattr(self.state, line).bound and line in self.bound_vics:
            self.bound_vics.pop(line).release(getattr(was, line).virq, self.owners[line])

    # --- data
    def _send(self, size: int, flags: int, fetch: Any) -> bool:
        s = self.state
        sp = msgq_send(CONCRETE, s, size, flags, True)
        detail, data = f"{size} bytes, {s.count}/{s.depth} queued", b""
        if first_failed(sp) is None:
            try:
                data = fetch()
            except errors.AccessFault as e:
                sp, detail = msgq_send(CONCRETE, s, size, flags, False), f"ADDR_INVALID: {e}"
        not_full = self._run(sp, detail)
        self.payloads[compute_slot(CONCRETE, s, s.count)] = bytes(data)
        return not_full

    def send(self, data: bytes, push: bool = False, flags: int | None = None) -> bool:
        """Queue ``data`` (a buffer the hypervisor can read); return not_full."""
        f = (MSGQ_PUSH if push else 0) if flags is None else flags
        return self._send(len(data), f, lambda: data)

    def send_from(self, view: Any, addr: int, size: int, push: bool = False, flags: int | None = None) -> bool:
        """Queue ``size`` bytes read at ``addr`` through the caller's view; ``AccessFault`` (ADDR_INVALID) if unreadable."""
        f = (MSGQ_PUSH if push else 0) if flags is None else flags
        return self._send(size, f, lambda: view.read(addr, size))

    def _receive(self, bufsize: int, store: Any) -> tuple[bytes, bool]:
        s = self.state
        sp = msgq_receive(CONCRETE, s, bufsize, True)
        detail, data = f"buffer of {bufsize} bytes", b""
        if first_failed(sp) is None:
            data = self.payloads[s.head][:sp.out[0]]
            try:
                store(data)
            except errors.AccessFault as e:
                sp, detail = msgq_receive(CONCRETE, s, bufsize, False), f"ADDR_INVALID: {e}"
        _, _, not_empty = self._run(sp, detail)
        return data, not_empty

    def receive(self, bufsize: int | None = None) -> tuple[bytes, bool]:
        """Return (head message, not_empty). Raises ``Exhausted`` when empty."""
        return self._receive(self.state.max_size if bufsize is None else bufsize, lambda data: None)

    def receive_into(self, view: Any, addr: int, bufsize: int) -> tuple[bytes, bool]:
        """Copy the head message to ``addr`` through the caller's view; ``AccessFault`` (ADDR_INVALID) if unwritable."""
        return self._receive(bufsize, lambda data: view.write(addr, data))

    def flush(self) -> None:
        """Discard every queued message."""
        self._run(msgq_flush(CONCRETE, self.state))

    def configure_send(self, notfull_thd: int, holdoff: int = HOLDOFF_DEFAULT) -> None:
        self._run(msgq_configure_send(CONCRETE, self.state, notfull_thd, holdoff), f"threshold {notfull_thd}")

    def configure_receive(self, notempty_thd: int, holdoff: int = HOLDOFF_DEFAULT) -> None:
        self._run(msgq_configure_receive(CONCRETE, self.state, notempty_thd, holdoff), f"threshold {notempty_thd}")

    # --- VIRQ lines ("tx": the sender's not-full, "rx": the receiver's not-empty)
    def bind(self, line: str, virq: int | None = None, vic: Vic | None = None) -> None:
        """Bind ``line`` to VIRQ ``virq`` of ``vic`` (default: ``self.vic`` and its first free number).
        ``CallerError``: OBJECT_STATE, VIRQ_BOUND, ARGUMENT_INVALID (no such VIRQ), BUSY (it has a source)."""
        v = self.vic if vic is None else vic
        n = v.first_free() if virq is None else virq
        self._run(BIND[line](CONCRETE, self.state, n, v.exists(n), v.is_free(n)), f"{line} line, VIRQ {n}")
        v.claim(n, self.owners[line])
        self.bound_vics[line] = v

    def unbind(self, line: str) -> None:
        """Unbind ``line`` (OK when unbound) and release its number."""
        s = self.state
        self._run(UNBIND[line](CONCRETE, s))
        self._release(s, line)

    def deliver(self, line: str) -> bool:
        return self._run(DELIVER[line](CONCRETE, self.state))

    def eoi(self, line: str) -> bool:
        return self._run(EOI[line](CONCRETE, self.state))

    def pending(self, line: str) -> bool:
        return is_line_pending(CONCRETE, getattr(self.state, line))
