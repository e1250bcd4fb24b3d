"""The system's own configuration path: a register block in the shared region plus two doorbells per device.

A deliberately simple transport (ivshmem-virtio in spirit, facts §5.3 / §6.8), so the whole system runs
before the transports of ``model/transport/`` are ready; those plug in behind the same two interfaces
(docs/system.md "Plugging in a transport"):

- ``DriverTransport`` (the secondary's side): ``read_config``, ``device_features``, ``write_features``,
  ``write_status``/``status``, ``queue_max``, ``setup_queue(q, layout)``, ``notify(q)`` (QueueNotify) and
  ``take_interrupts()`` (the used-buffer interrupts since the last call, acknowledged);
- ``Bell`` (the device's side of notifications): ``take()`` returns the queue-notify bits the driver rang
  (and ``CONFIG_BIT`` for a register write) and ``ring(bits)`` raises the driver's interrupts.
  ``DeviceEnd`` reads the register block through the device context's view and builds the ``SplitDevice``s.

Register block of device ``d`` at region offset ``d * BLOCK`` (little-endian, virtio-mmio-like fields)::

    0 magic "vshm"  4 version  8 device id  12 num queues  16 status  20 device features (le64)
    28 driver features (le64)  36 queue max  48 + 32*q: queue q {size le16, ready le16, pad le32,
    desc le64, driver le64, device le64}  176.. device configuration space (80 bytes)

The driver writes status, features and queue entries, then rings ``CONFIG_BIT``; the device applies them
with ``virtio/status.py``'s state machine (FEATURES_OK may be refused) and writes the status back.
Queue addresses are region offsets (DMA addresses, ``swiotlb/dma.py`` OFFSET). Doorbell bits: queue ``q``
is bit ``q``, the register write is the top bit.
"""
from __future__ import annotations

import struct
from typing import Any, Protocol

from t1virtio import errors
from t1virtio.hyp.memview import read_le, write_le
from t1virtio.virtio import split
from t1virtio.virtio import status as vstatus

MAGIC = 0x6D687376            # "vshm"
VERSION = 1
BLOCK = 256                   # bytes of one device's register block
MAX_QUEUES = 4
QUEUES_AT = 48
QUEUE_ENTRY = 32
CONFIG_AT = QUEUES_AT + MAX_QUEUES * QUEUE_ENTRY
CONFIG_SIZE = BLOCK - CONFIG_AT


def config_bit(width: int) -> int:
    return 1 << (width - 1)


class Bell(Protocol):
    def take(self) -> int: ...

    def ring(self, bits: int) -> None: ...


class DriverTransport(Protocol):
    def read_config(self) -> bytes: ...

    def device_features(self) -> int: ...

    def write_features(self, value: int) -> None: ...

    def write_status(self, value: int) -> None: ...

    def status(self) -> int: ...

    def queue_max(self) -> int: ...

    def setup_queue(self, q: int, layout: split.SplitLayout) -> None: ...

    def notify(self, q: int) -> None: ...

    def take_interrupts(self) -> int: ...


def _receive(db: Any) -> int:
    """The receiver protocol (hyp/doorbell.py ``RECEIVER_PROTOCOL``): take the VIRQ, clear every flag, EOI."""
    if not db.pending():
        return 0
    db.deliver()
    flags = db.state.flags
    if flags:
        db.receive(flags)
    db.eoi()
    return flags


class HypBell:
    """The device's notifications over two hypervisor doorbells (``to_device`` rung by the driver)."""

    def __init__(self, to_device: Any, to_driver: Any):
        self.to_device, self.to_driver = to_device, to_driver

    def take(self) -> int:
        return _receive(self.to_device)

    def ring(self, bits: int) -> None:
        if bits:
            self.to_driver.send(bits)


class ShmDriverTransport:
    """The secondary's side: the register block through the secondary's view (``mem`` at ``block``)."""

    def __init__(self, mem: Any, block: int, to_device: Any, to_driver: Any, width: int,
                 pump: Any = lambda: None):
        self.mem, self.block, self.to_device, self.to_driver = mem, block, to_device, to_driver
        self.cfg_bit = config_bit(width)
        self.pump = pump                        # lets the device side run after a register write (setup only)

    def _ring_config(self) -> None:
        self.to_device.send(self.cfg_bit)
        self.pump()

    def magic_ok(self) -> bool:
        return read_le(self.mem, self.block, 4) == MAGIC and read_le(self.mem, self.block + 4, 4) == VERSION

    def device_id(self) -> int:
        return read_le(self.mem, self.block + 8, 4)

    def num_queues(self) -> int:
        return min(read_le(self.mem, self.block + 12, 4), MAX_QUEUES)   # the honest driver bounds it

    def read_config(self) -> bytes:
        return self.mem.read(self.block + CONFIG_AT, CONFIG_SIZE)

    def device_features(self) -> int:
        return read_le(self.mem, self.block + 20, 8)

    def write_features(self, value: int) -> None:
        write_le(self.mem, self.block + 28, 8, value)

    def write_status(self, value: int) -> None:
        write_le(self.mem, self.block + 16, 4, value)
        self._ring_config()

    def status(self) -> int:
        return read_le(self.mem, self.block + 16, 4) & 0xFF

    def queue_max(self) -> int:
        return read_le(self.mem, self.block + 36, 4)

    def setup_queue(self, q: int, layout: split.SplitLayout) -> None:
        e = self.block + QUEUES_AT + QUEUE_ENTRY * q
        self.mem.write(e, struct.pack("<HHIQQQ", layout.size, 1, 0, layout.desc, layout.avail, layout.used))

    def notify(self, q: int) -> None:
        self.to_device.send(1 << q)

    def take_interrupts(self) -> int:
        return _receive(self.to_driver)


class DeviceEnd:
    """The device's side of the register block, driving a backend's queues; the same code runs in the
    primary and in an out-of-process backend (it sees only the device context and a ``Bell``)."""

    def __init__(self, backend: Any, ctx: Any, block: int, bell: Any, width: int, queue_max: int,
                 offered: int | None = None):
        from t1virtio.virtio import features
        self.backend, self.ctx, self.block, self.bell = backend, ctx, block, bell
        self.cfg_bit, self.qmax = config_bit(width), queue_max
        offer = features.bit(features.VIRTIO_F_VERSION_1) | features.bit(features.VIRTIO_F_ACCESS_PLATFORM) \
            | backend.FEATURES if offered is None else offered
        self.dev = vstatus.VirtioDevice(backend.DEVICE, offer, features.bit(features.VIRTIO_F_VERSION_1))
        self.broken: str | None = None
        self.live = False
        self.pending = 0                        # queue-notify bits not yet served
        backend.attach(ctx)
        ctx.queues = [None] * len(backend.QUEUES)
        lm = ctx.to_local(block)
        m = ctx.mem
        m.write(lm, struct.pack("<IIIIIQQI", MAGIC, VERSION, backend.DEVICE.device_id, len(backend.QUEUES), 0,
                                offer, 0, queue_max).ljust(QUEUES_AT, b"\0"))
        m.write(lm + QUEUES_AT, bytes(MAX_QUEUES * QUEUE_ENTRY))
        m.write(lm + CONFIG_AT, backend.config()[:CONFIG_SIZE].ljust(CONFIG_SIZE, b"\0"))

    def _notify(self, q: int) -> None:
        self.bell.ring(1 << q)

    def _registers(self) -> None:
        """Apply a register write: features, then status (with the device's checks), then queue setup."""
        ctx, lm = self.ctx, self.ctx.to_local(self.block)
        value = read_le(ctx.mem, lm + 16, 4) & 0xFF
        if value == 0:
            self.dev.write_status(0)
            self.live = False
            ctx.queues = [None] * len(self.backend.QUEUES)
            write_le(ctx.mem, lm + 16, 4, 0)
            return
        old = self.dev.read_status()
        if not old & vstatus.FEATURES_OK and value & vstatus.FEATURES_OK:
            self.dev.write_driver_features(read_le(ctx.mem, lm + 28, 8))
        shown = self.dev.write_status(value)
        if shown & vstatus.DRIVER_OK and not self.live:
            qs = []
            for q in range(len(self.backend.QUEUES)):     # bounded: the backend's queue count
                size, ready, _, desc, avail, used = struct.unpack(
                    "<HHIQQQ", ctx.mem.read(lm + QUEUES_AT + QUEUE_ENTRY * q, QUEUE_ENTRY))
                lay = split.SplitLayout(size, desc, avail, used)
                qs.append(split.SplitDevice(ctx.mem, split.SplitLayout(size, ctx.to_local(desc), ctx.to_local(avail),
                                                                       ctx.to_local(used)) if ctx.in_region(desc, 0)
                                            and ctx.in_region(avail, 0) and ctx.in_region(used, 0) else lay,
                                            driver_layout=lay, in_region=ctx.in_region, to_local=ctx.to_local,
                                            max_size=self.qmax, notify=lambda q=q: self._notify(q)) if ready else None)
            ctx.queues = qs
            self.live = True
        write_le(ctx.mem, lm + 16, 4, shown)

    def step(self, budget: int) -> int:
        """Take the driver's notifications, apply register writes, serve; return the chains served."""
        bits = self.bell.take()
        if self.broken:
            return 0
        try:
            if bits & self.cfg_bit:
                self._registers()
        except errors.PeerViolation as e:      # a bad status or queue: the device breaks, nothing else does
            self.broken = e.clause
            self.backend.refused.append(e.clause)
            return 0
        self.pending |= bits & ~self.cfg_bit
        if not self.live or not self.pending:
            return 0
        n = self.backend.serve(budget)
        if n < budget:
            self.pending = 0
        return n
