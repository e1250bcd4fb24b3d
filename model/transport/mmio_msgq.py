"""virtio-mmio v2 over a message-queue pair: the seed's ``mmio_ops`` (facts/upstream.md §0.1 option b, §5.5).

Each register access of the frontend (the secondary's virtio_mmio.c with readl/writel replaced) is a request
message on the request queue (secondary -> primary); the backend answers every request, in order, on the reply
queue (primary -> secondary), and the frontend sends the next request only after the reply (one in flight:
``regs.chan_request``/``chan_reply``). QueueNotify is a doorbell to the primary (flag bit = queue index);
used-buffer and configuration interrupts are a doorbell to the secondary (flags = InterruptStatus reasons).
The wire format (version 1, little-endian) is in docs/transport.md.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable

from t1virtio import errors
from t1virtio import preset as presets
from t1virtio.hyp.doorbell import Doorbell
from t1virtio.hyp.msgq import MessageQueue
from t1virtio.logic import CONCRETE
from t1virtio.step import apply
from t1virtio.transport import regs
from t1virtio.virtio import status as S

WIRE_VERSION = 1
READ, WRITE = 1, 2
REPLY = 0x80
OK, REFUSED, MALFORMED = 0, 1, 2
WIDTHS = (1, 2, 4)
FORMAT = struct.Struct("<BBHHBBI")      # version, kind, seq, offset, width, result (0 in requests), value
MSG_SIZE = FORMAT.size                  # 12 bytes: well under Gunyah's 240-byte messages
QUEUE_DEPTH = 4                         # one request in flight needs one slot; headroom for a hostile peer
MAX_WAIT = 64                           # bound on the polls a frontend waits for one reply
CONFIG_SPACE = 0x1000 - regs.CONFIG     # config bytes of one 4 KiB register page


@dataclass(frozen=True)
class Message:
    """One decoded request or reply."""

    kind: int
    seq: int
    offset: int
    width: int
    value: int
    result: int = OK

    def encode(self) -> bytes:
        return FORMAT.pack(WIRE_VERSION, self.kind, self.seq, self.offset, self.width, self.result, self.value)


def decode(data: bytes, reply: bool) -> Message:
    """Decode a request (``reply`` False) or reply; ``PeerViolation`` TRANSPORT-WIRE-malformed otherwise."""
    kinds = (READ | REPLY, WRITE | REPLY) if reply else (READ, WRITE)
    if len(data) != MSG_SIZE:
        raise errors.fail("TRANSPORT-WIRE-malformed", f"{len(data)} bytes, not {MSG_SIZE}")
    version, kind, seq, offset, width, result, value = FORMAT.unpack(data)
    if version != WIRE_VERSION or kind not in kinds or width not in WIDTHS or offset % width \
            or (not reply and result != 0) or result not in (OK, REFUSED, MALFORMED) or value >> (8 * width):
        raise errors.fail("TRANSPORT-WIRE-malformed", f"version {version} kind {kind:#x} width {width} "
                          f"offset {offset:#x} result {result} value {value:#x}")
    return Message(kind, seq, offset, width, value, result)


def carriers(preset: presets.Preset = presets.LINUX) -> dict[str, Any]:
    """The hypervisor objects one device needs: two message queues and two doorbells."""
    return {"requests": MessageQueue(preset, QUEUE_DEPTH), "replies": MessageQueue(preset, QUEUE_DEPTH),
            "notify": Doorbell(preset), "interrupt": Doorbell(preset)}


class MmioMsgqBackend:
    """The device side (in the primary): a register file served over the request queue.

    ``poll()`` answers one request; ``take_notifications()`` turns the notify doorbell into QueueNotify writes;
    ``raise_interrupt(reasons)`` sets InterruptStatus and rings the secondary. A refused request (the driver
    broke a MUST) is answered REFUSED with the state unchanged; a malformed one MALFORMED: the honest backend
    never stops serving.
    """

    def __init__(self, regfile: regs.RegisterFile, requests: MessageQueue, replies: MessageQueue,
                 notify: Doorbell, interrupt: Doorbell):
        self.regs, self.requests, self.replies = regfile, requests, replies
        self.notify_db, self.interrupt_db = notify, interrupt
        self.refusals: list[errors.ModelError] = []     # what the peer got wrong, newest last

    @property
    def state(self) -> regs.RegFileState:
        return self.regs.state

    def _serve(self, m: Message) -> Message:
        if m.offset >= regs.CONFIG:
            off = m.offset - regs.CONFIG
            if off + m.width > CONFIG_SPACE:
                raise errors.fail("TRANSPORT-WIRE-malformed", f"config offset {off:#x}")
            if m.kind == READ:
                return Message(READ | REPLY, m.seq, m.offset, m.width, self.regs.read_config(off, m.width))
            self.regs.write_config_bytes(off, m.value, m.width)
            return Message(WRITE | REPLY, m.seq, m.offset, m.width, 0)
        if m.width != 4:
            raise errors.fail("TRANSPORT-WIRE-malformed", f"{m.width}-byte register access at {m.offset:#x}")
        if m.kind == READ:
            if m.offset not in regs.READABLE:
                raise errors.fail("TRANSPORT-WIRE-malformed", f"read of {m.offset:#x}")
            return Message(READ | REPLY, m.seq, m.offset, 4, self.regs.read(m.offset))
        if m.offset not in regs.WRITABLE or m.offset == regs.QUEUE_NOTIFY:
            raise errors.fail("TRANSPORT-WIRE-malformed", f"write of {m.offset:#x} (QueueNotify is the doorbell)")
        self.regs.write(m.offset, m.value)
        return Message(WRITE | REPLY, m.seq, m.offset, 4, 0)

    def poll(self) -> bool:
        """Answer the oldest request, if any; return whether one was served."""
        if self.requests.state.count == 0:
            return False
        data, _ = self.requests.receive()
        try:
            m = decode(data, reply=False)
        except errors.PeerViolation as e:
            self.refusals.append(e)
            seq = int.from_bytes(data[2:4], "little") if len(data) >= 4 else 0
            self.replies.send(Message(READ | REPLY, seq, 0, 4, 0, MALFORMED).encode())
            return True
        try:
            r = self._serve(m)
        except errors.ModelError as e:
            if isinstance(e, errors.InvariantViolation):
                raise
            self.refusals.append(e)
            code = MALFORMED if e.clause == "TRANSPORT-WIRE-malformed" else REFUSED
            r = Message(m.kind | REPLY, m.seq, m.offset, m.width, 0, code)
        self.replies.send(r.encode())
        return True

    def take_notifications(self) -> list[int]:
        """Receive the notify doorbell; return the queues notified (each a checked QueueNotify)."""
        flags = self.notify_db.receive(self.notify_db.state.flags) if self.notify_db.state.flags else 0
        out = []
        for q in range(min(flags.bit_length(), 64)):          # bounded by the doorbell's width
            if flags >> q & 1:
                try:
                    self.regs.write(regs.QUEUE_NOTIFY, q)
                    out.append(q)
                except errors.PeerViolation as e:
                    self.refusals.append(e)
        return out

    def raise_interrupt(self, reasons: int) -> None:
        """InterruptStatus |= reasons (a checked ``device_interrupt``) and ring the secondary."""
        self.regs.run(regs.device_interrupt, f"reasons {reasons:#x}", reasons=reasons)
        self.interrupt_db.send(reasons)


class MmioMsgqFrontend:
    """The driver side (in the secondary): ``mmio_ops`` readl/writel as request messages.

    ``read``/``write`` send one request and wait for its reply, polling ``pump`` (the composition's scheduler:
    e.g. the backend's ``poll``) at most ``MAX_WAIT`` times. A reply that does not answer the request in
    flight is a ``PeerViolation`` (TRANSPORT-CHAN-reply-order / -unsolicited); a REFUSED reply raises
    ``PeerViolation`` TRANSPORT-WIRE-malformed at the caller only if the reply itself is bad.
    """

    def __init__(self, requests: MessageQueue, replies: MessageQueue, notify: Doorbell, interrupt: Doorbell,
                 pump: Callable[[], Any] | None = None):
        self.requests, self.replies, self.notify_db, self.interrupt_db = requests, replies, notify, interrupt
        self.pump = pump
        self.state = regs.ChannelState()
        self.last_out: Any = None
        self.seq = 0

    def _run(self, fn: Any, seq: int) -> None:
        sp = fn(CONCRETE, self.state, seq=seq)
        self.last_out = True
        self.state, _ = apply(sp, f"seq {seq}, in flight {self.state.req_seq if self.state.in_flight else None}")

    def send(self, kind: int, offset: int, value: int = 0, width: int = 4) -> int:
        """Send one request; return its sequence number (``PeerViolation`` TRANSPORT-CHAN-busy if one is in flight)."""
        seq = self.seq
        self._run(regs.chan_request, seq)
        self.requests.send(Message(kind, seq, offset, width, value).encode())
        self.seq = (seq + 1) & 0xFFFF
        return seq

    def take_reply(self) -> Message | None:
        """The reply to the request in flight, once it has arrived (None before)."""
        if self.replies.state.count == 0:
            return None
        data, _ = self.replies.receive()
        m = decode(data, reply=True)
        self._run(regs.chan_reply, m.seq)
        return m

    def _transact(self, kind: int, offset: int, value: int, width: int) -> Message:
        self.send(kind, offset, value, width)
        for _ in range(MAX_WAIT):
            m = self.take_reply()
            if m is not None:
                return m
            if self.pump is not None:
                self.pump()
        raise errors.fail("TRANSPORT-CHAN-reply-unsolicited", f"no reply after {MAX_WAIT} polls")

    def read(self, offset: int, width: int = 4) -> int:
        """readl: the register's value (0 if the device refused the access)."""
        return self._transact(READ, offset, 0, width).value

    def write(self, offset: int, value: int, width: int = 4) -> int:
        """writel: return the reply's result (OK, REFUSED, MALFORMED)."""
        return self._transact(WRITE, offset, value, width).result

    def notify(self, queue: int) -> None:
        """QueueNotify: ring the primary with the queue's flag bit."""
        self.notify_db.send(1 << queue)

    def take_interrupt(self) -> int:
        """Receive the interrupt doorbell; return its reasons (then read InterruptStatus and write InterruptACK)."""
        flags = self.interrupt_db.state.flags
        return self.interrupt_db.receive(flags) if flags else 0


def connect(dev: S.DeviceStatusState, num_max: tuple, config: bytes = b"", vendor_id: int = 0,
            preset: presets.Preset = presets.LINUX) -> tuple[MmioMsgqFrontend, MmioMsgqBackend]:
    """A frontend and a backend for device ``dev`` over fresh carriers; the frontend's pump is the backend's poll."""
    c = carriers(preset)
    back = MmioMsgqBackend(regs.RegisterFile(dev, num_max, config, vendor_id), **c)
    front = MmioMsgqFrontend(c["requests"], c["replies"], c["notify"], c["interrupt"], pump=back.poll)
    return front, back
