"""The transports of ``model/transport/`` in the whole system (issue 13): thin adapters behind the system's two
interfaces (``system/transport.py``), so frontends and backends stay unaware of the transport.

- driver side (the secondary's ``DriverTransport``): ``RegDriver`` over a register transport's frontend
  (virtio-mmio v2 registers as messages over a message-queue pair, ``mmio_msgq``; or the hypervisor-emulated
  page, ``emulated``), ``MsgDriver`` over a virtio-msg frontend;
- device side (in the primary): ``MmioMsgqEnd``, ``EmulatedEnd``, ``MsgEnd`` take the transport's
  notifications and register state and drive a ``Queues``: the backend's ``SplitDevice``s built from the queue
  parameters the driver set, served on QueueNotify, the used-buffer interrupt raised through the transport.

The carriers (message queues, doorbells) are the system's hypervisor objects between that secondary and the
primary, created with the system's preset and bound to the VMs' interrupt controllers (``System.carriers``).
"""
from __future__ import annotations

import struct
from typing import Any

from t1virtio import errors
from t1virtio.hyp.doorbell import Doorbell
from t1virtio.hyp.msgq import MessageQueue
from t1virtio.transport import emulated, mmio_msgq, msg, regs
from t1virtio.virtio import features, split
from t1virtio.virtio import status as vstatus

TRANSPORTS = ("shm", "mmio-msgq", "emulated", "ivshmem", "msg")
# what carries the registers, for the demo's narrative
CARRIES = {"shm": "a register block in the shared region, QueueNotify and interrupts as two doorbells",
           "mmio-msgq": "virtio-mmio v2 registers as 12-byte messages over a Gunyah message-queue pair, "
                        "QueueNotify and interrupts as doorbells (the seed's mmio_ops)",
           "emulated": "the hypervisor-emulated virtio-mmio page (reads from the page, writes trapped), "
                       "notifications by hypercall, the interrupt as the page's VIRQ",
           "msg": "virtio-msg transport messages over a Gunyah message-queue pair (EVENT_AVAIL / EVENT_USED)"}
REFUSED = {"ivshmem": "ivshmem keeps its header in a private 8 KiB SharedRegion bytearray per device "
                      "(model/transport/ivshmem.py), not in the system's hypervisor-shared region: refused"}
CONFIG_BYTES = 80          # configuration bytes a driver reads (the shm block's config space)


def check_transport(name: str) -> None:
    """Refuse an unknown or unsupported transport with a one-line reason (``ValueError``)."""
    if name in REFUSED:
        raise ValueError(f"transport {name!r}: {REFUSED[name]}")
    if name not in TRANSPORTS:
        raise ValueError(f"transport {name!r}: unknown (one of {', '.join(t for t in TRANSPORTS if t not in REFUSED)})")


def offer_of(backend: Any) -> Any:
    """The device's negotiation state as ``DeviceEnd`` offers it (VERSION_1 required)."""
    offer = features.bit(features.VIRTIO_F_VERSION_1) | features.bit(features.VIRTIO_F_ACCESS_PLATFORM) \
        | backend.FEATURES
    return vstatus.VirtioDevice(backend.DEVICE, offer, features.bit(features.VIRTIO_F_VERSION_1)).state


# ------------------------------------------------------------------ device side

class Queues:
    """The backend's queues over its device context: built when the driver sets DRIVER_OK (from the queue
    parameters the transport holds), dropped at reset, served while notified. ``raise_used(q)`` is the
    transport's used-buffer interrupt."""

    def __init__(self, backend: Any, ctx: Any, qmax: int, raise_used: Any):
        self.backend, self.ctx, self.qmax, self.raise_used = backend, ctx, qmax, raise_used
        self.live = False
        self.pending = 0
        backend.attach(ctx)
        ctx.queues = [None] * len(backend.QUEUES)
        ctx.notify = lambda q: self.raise_used(q)

    def start(self, params: list) -> None:
        """``params[q] = (size, ready, desc, avail, used)`` (DMA addresses: region offsets)."""
        ctx, qs = self.ctx, []
        for q, (size, ready, desc, avail, used) in enumerate(params[:len(self.backend.QUEUES)]):
            lay = split.SplitLayout(size, desc, avail, used)
            inside = ctx.in_region(desc, 0) and ctx.in_region(avail, 0) and ctx.in_region(used, 0)
            local = split.SplitLayout(size, ctx.to_local(desc), ctx.to_local(avail), ctx.to_local(used)) \
                if inside else lay
            qs.append(split.SplitDevice(ctx.mem, local, driver_layout=lay, in_region=ctx.in_region,
                                        to_local=ctx.to_local, max_size=self.qmax,
                                        notify=lambda q=q: ctx.notify(q)) if ready and size else None)
        ctx.queues = qs + [None] * (len(self.backend.QUEUES) - len(qs))
        self.live = True

    def stop(self) -> None:
        self.live, self.pending = False, 0
        self.ctx.queues = [None] * len(self.backend.QUEUES)

    def serve(self, bits: int, budget: int) -> int:
        self.pending |= bits
        if not self.live or not self.pending:
            return 0
        n = self.backend.serve(budget)
        if n < budget:
            self.pending = 0
        return n


class _End:
    """What every device end shares: ``step(budget)``, ``live``, ``broken``, ``backend``, ``refusals``."""

    def __init__(self, backend: Any, ctx: Any, qmax: int):
        self.backend = backend
        # a backend in its own process (system/remote.py) brings its own queue server
        self.queues = backend.remote_queues(self._raise_used) if hasattr(backend, "remote_queues") \
            else Queues(backend, ctx, qmax, self._raise_used)
        self.broken: str | None = None
        self.refusals: list[errors.ModelError] = []

    @property
    def live(self) -> bool:
        return self.queues.live

    def _raise_used(self, q: int) -> None:
        try:
            self._interrupt(q)
        except errors.PeerViolation as e:       # e.g. the driver reset meanwhile: no interrupt, nothing else
            self.refusals.append(e)

    def _sync(self, status: int, params: Any) -> None:
        """Follow the driver's status: queues live at DRIVER_OK, dropped at reset."""
        if status & vstatus.DRIVER_OK and not self.queues.live:
            self.queues.start(params())
        elif not status & vstatus.DRIVER_OK and self.queues.live:
            self.queues.stop()

    def step(self, budget: int) -> int:
        if self.broken:
            return 0
        try:
            bits = self._take()
        except errors.PeerViolation as e:
            self.broken = e.clause
            self.backend.refused.append(e.clause)
            return 0
        return self.queues.serve(bits, budget)


def _regfile_params(s: regs.RegFileState) -> list:
    out = []
    for q in range(len(s.num_max)):
        p = s.params[q * regs.NPARAM:(q + 1) * regs.NPARAM]
        out.append((p[0], s.ready[q], p[1] | p[2] << 32, p[3] | p[4] << 32, p[5] | p[6] << 32))
    return out


class MmioMsgqEnd(_End):
    """The primary's end of virtio-mmio over a message-queue pair: answers register messages (``registers``, the
    frontend's pump), takes QueueNotify from the notify doorbell, raises InterruptStatus + the interrupt doorbell."""

    def __init__(self, back: mmio_msgq.MmioMsgqBackend, backend: Any, ctx: Any, qmax: int):
        self.back = back
        super().__init__(backend, ctx, qmax)

    def registers(self) -> None:
        for _ in range(self.back.requests.state.depth):        # bounded: the request queue's depth
            if not self.back.poll():
                break
            self._sync(self.back.state.dev.status, lambda: _regfile_params(self.back.state))

    def _take(self) -> int:
        self.registers()
        db = self.back.notify_db
        took = db.pending() and db.deliver()
        qs = self.back.take_notifications()
        if took:
            db.eoi()
        return sum(1 << q for q in qs)

    def _interrupt(self, q: int) -> None:
        self.back.raise_interrupt(regs.INT_USED)


class EmulatedEnd(_End):
    """The backend of the hypervisor-emulated page: ``get_notification`` (queues, reasons), ``acknowledge_reset``,
    ``get_queue_info``, ``assert_virq``."""

    def __init__(self, page: emulated.EmulatedPage, backend: Any, ctx: Any, qmax: int):
        self.page = page
        self.pending_bits = 0      # queues notified, not yet served
        super().__init__(backend, ctx, qmax)

    def registers(self) -> None:
        bitmap, reason = self.page.get_notification()
        self.pending_bits |= bitmap
        if reason & emulated.RESET_RQST and self.page.state.reset_pending:
            self.page.acknowledge_reset()
        self._sync(self.page.state.dev.status, lambda: [
            (i["num"], i["ready"], i["desc"], i["driver"], i["device"])
            for i in (self.page.get_queue_info(q) for q in range(len(self.page.state.num_max)))])

    def _take(self) -> int:
        self.registers()
        bits, self.pending_bits = self.pending_bits, 0
        return bits

    def _interrupt(self, q: int) -> None:
        self.page.assert_virq(regs.INT_USED)


class MsgEnd(_End):
    """The device side of one virtio-msg device number: answers requests in order, EVENT_AVAIL notifies,
    EVENT_USED on the response queue (held while the queue lacks room for the driver's window)."""

    def __init__(self, back: msg.MsgBackend, backend: Any, ctx: Any, qmax: int):
        self.back = back
        self.events = 0            # EVENT_USED queues not yet sent
        super().__init__(backend, ctx, qmax)

    def registers(self) -> int:
        avail = self.back.state.dev.avail_notifications
        for _ in range(self.back.requests.state.depth):        # bounded: the request queue's depth
            if not self.back.poll():
                break
            self._sync(self.back.state.dev.status, self._params)
        return self.back.state.dev.avail_notifications != avail

    def _params(self) -> list:
        s = self.back.state
        return [tuple(s.params[q * msg.QP:(q + 1) * msg.QP][:1]) + (s.configured[q],)
                + tuple(s.params[q * msg.QP + 1:(q + 1) * msg.QP]) for q in range(len(s.max_size))]

    def _take(self) -> int:
        notified = self.registers()
        self._flush()
        return (1 << len(self.backend.QUEUES)) - 1 if notified else 0

    def _flush(self) -> None:
        r = self.back.responses.state
        if r.count == 0 and self.back.state.events:         # the driver took every event: handled
            self.back.run(msg.driver_take_events, mask=msg.EV_DEFINED)
        for q in range(len(self.backend.QUEUES)):               # bounded: the backend's queues
            if self.events >> q & 1 and r.count < r.depth - msg.WINDOW:
                self.events &= ~(1 << q)
                self.back.send_event("EVENT_USED", q)

    def _interrupt(self, q: int) -> None:
        self.events |= 1 << q
        self._flush()


# ------------------------------------------------------------------ driver side

class RegDriver:
    """``DriverTransport`` over virtio-mmio v2 register accesses (``read(off, width)``, ``write(off, v, width)``)
    of a message-queue or emulated-page frontend; ``irq()`` tells whether an interrupt is signalled."""

    def __init__(self, front: Any, irq: Any):
        self.front, self.irq = front, irq

    def _write(self, off: int, value: int) -> None:
        self.front.write(off, value)

    def read_config(self) -> bytes:
        return b"".join(self.front.read(regs.CONFIG + k, 4).to_bytes(4, "little") for k in range(0, CONFIG_BYTES, 4))

    def device_features(self) -> int:
        words = []
        for sel in (0, 1):
            self._write(regs.DEVICE_FEATURES_SEL, sel)
            words.append(self.front.read(regs.DEVICE_FEATURES))
        return words[0] | words[1] << 32

    def write_features(self, value: int) -> None:
        for sel in (0, 1):
            self._write(regs.DRIVER_FEATURES_SEL, sel)
            self._write(regs.DRIVER_FEATURES, (value >> (32 * sel)) & regs.WORD)

    def write_status(self, value: int) -> None:
        self._write(regs.STATUS, value)

    def status(self) -> int:
        return self.front.read(regs.STATUS) & 0xFF

    def queue_max(self) -> int:
        self._write(regs.QUEUE_SEL, 0)
        return self.front.read(regs.QUEUE_NUM_MAX)

    def setup_queue(self, q: int, layout: split.SplitLayout) -> None:
        self._write(regs.QUEUE_SEL, q)
        self._write(regs.QUEUE_NUM, layout.size)
        for lo, addr in ((regs.QUEUE_DESC_LOW, layout.desc), (regs.QUEUE_DRIVER_LOW, layout.avail),
                         (regs.QUEUE_DEVICE_LOW, layout.used)):
            self._write(lo, addr & regs.WORD)
            self._write(lo + 4, addr >> 32)
        self._write(regs.QUEUE_READY, 1)

    def notify(self, q: int) -> None:
        self.front.notify(q)

    def take_interrupts(self) -> int:
        if not self.irq():
            return 0
        isr = self.front.read(regs.INTERRUPT_STATUS)
        if isr:
            self._write(regs.INTERRUPT_ACK, isr)
        return isr


def mmio_irq(front: mmio_msgq.MmioMsgqFrontend) -> Any:
    """The interrupt doorbell, taken with the receiver protocol (VIRQ taken, flags cleared, EOI)."""
    def take() -> bool:
        db = front.interrupt_db
        took = db.pending() and db.deliver()
        reasons = front.take_interrupt()
        if took:
            db.eoi()
        return bool(reasons)
    return take


class MsgDriver:
    """``DriverTransport`` over virtio-msg requests (one outstanding at a time: ``call``)."""

    def __init__(self, front: msg.MsgFrontend):
        self.front = front

    def read_config(self) -> bytes:
        out = b""
        while len(out) < CONFIG_BYTES:                 # bounded: CONFIG_BYTES / 64 requests
            n = min(64, CONFIG_BYTES - len(out))
            p = self.front.call("GET_CONFIG", len(out), n)
            _, _, k = struct.unpack_from("<III", p)
            out += p[12:12 + k].ljust(n, b"\0")
        return out

    def device_features(self) -> int:
        p = self.front.call("GET_DEVICE_FEATURES", 0, 2)
        _, k = struct.unpack_from("<II", p)
        words = struct.unpack_from(f"<{min(k, 2)}I", p, 8)
        return sum(w << (32 * i) for i, w in enumerate(words))

    def write_features(self, value: int) -> None:
        self.front.call("SET_DRIVER_FEATURES", 0, 2, tail=struct.pack("<II", value & regs.WORD, value >> 32))

    def write_status(self, value: int) -> None:
        self.front.call("SET_DEVICE_STATUS", value)

    def status(self) -> int:
        return struct.unpack("<I", self.front.call("GET_DEVICE_STATUS"))[0] & 0xFF

    def queue_max(self) -> int:
        return struct.unpack_from("<IIIIQQQ", self.front.call("GET_VQUEUE", 0))[1]

    def setup_queue(self, q: int, layout: split.SplitLayout) -> None:
        self.front.call("SET_VQUEUE", q, 0, layout.size, 0, layout.desc, layout.avail, layout.used)

    def notify(self, q: int) -> None:
        """EVENT_AVAIL, coalesced: while the request queue holds unread events the device has yet to look (and
        then serves every queue); one slot always stays free for a request."""
        r = self.front.requests.state
        if r.count < r.depth - 1:
            self.front.send("EVENT_AVAIL", q, 0)

    def take_interrupts(self) -> int:
        for _ in range(self.front.responses.state.depth):     # bounded: the response queue's depth
            if self.front.take() is None:
                break
        bits = 0
        for m in self.front.events:
            if m.msg_id == msg.BY_NAME["EVENT_USED"]:
                bits |= 1 << struct.unpack_from("<I", m.payload)[0]
        self.front.events.clear()
        return bits


# ------------------------------------------------------------------ construction

def build(system: Any, v: int, name: str, backend: Any, ctx: Any, qmax: int, pump: Any) -> tuple[Any, Any, dict]:
    """Driver transport, device end and carriers of device ``name`` of secondary ``v`` over ``system.cfg.transport``.

    The carriers are hypervisor objects of the system's preset: a message queue's receive line and a doorbell's
    VIRQ are bound in the receiving VM's interrupt controller (the primary's for requests and QueueNotify)."""
    hp, vics, kind = system.hyp_preset, system.vics, system.cfg.transport
    nq = len(backend.QUEUES)
    dev, config = offer_of(backend), backend.config()[:CONFIG_BYTES]

    def queue(depth: int, size: int, to: int) -> MessageQueue:
        mq = MessageQueue(hp, depth, size, vic=vics[to])
        mq.bind("rx")
        return mq

    if kind == "mmio-msgq":
        c = {"requests": queue(mmio_msgq.QUEUE_DEPTH, mmio_msgq.MSG_SIZE, 0),
             "replies": queue(mmio_msgq.QUEUE_DEPTH, mmio_msgq.MSG_SIZE, v),
             "notify": Doorbell(hp, vics[0]), "interrupt": Doorbell(hp, vics[v])}
        c["notify"].bind_virq()
        c["interrupt"].bind_virq()
        back = mmio_msgq.MmioMsgqBackend(regs.RegisterFile(dev, (qmax,) * nq, config), **c)
        end = MmioMsgqEnd(back, backend, ctx, qmax)
        front = mmio_msgq.MmioMsgqFrontend(c["requests"], c["replies"], c["notify"], c["interrupt"], pump=pump)
        return RegDriver(front, mmio_irq(front)), end, c
    if kind == "emulated":
        front, page = emulated.connect(dev, (qmax,) * nq, config)
        return RegDriver(front, page.frontend_irq), EmulatedEnd(page, backend, ctx, qmax), {"page": page}
    if kind == "msg":
        size = 2 * msg.MIN_MSG_SIZE
        c = {"requests": queue(msg.WINDOW + 2, size, 0), "responses": queue(msg.WINDOW + 2, size, v)}
        back = msg.MsgBackend(dev, (qmax,) * nq, c["requests"], c["responses"], config=config, max_msg_size=size)
        front = msg.MsgFrontend(c["requests"], c["responses"], max_msg_size=size, pump=pump)
        return MsgDriver(front), MsgEnd(back, backend, ctx, qmax), c
    check_transport(kind)
    raise ValueError(f"transport {kind!r}: not built by adapters (shm is the system's own)")
