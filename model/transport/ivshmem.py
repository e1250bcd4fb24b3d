"""Shared memory and doorbells in the style of ivshmem2-virtio (facts/upstream.md §5.3, §6.8).

Two peers (frontend id 0, backend id 1) share a state table (one u32 per peer, READY = 1) and a R/W section
that starts with ``virtio_ivshmem_header``. A register write: wait until ``write_transaction`` is 0 (bounded;
abort if the peer leaves READY), store the field, set ``write_transaction`` to the field's offset, ring the
backend's doorbell (vector 0). The backend applies the field to its register file (``regs``) and clears
``write_transaction``. Reads are plain loads of the header. The device signals by setting ``queue_event`` or
``config_event`` and ringing the frontend; the frontend clears the byte (InterruptACK) and handles it.
``config_generation`` is odd while the backend updates the configuration.
"""
from __future__ import annotations

import struct
from typing import Any

from t1virtio import errors
from t1virtio import preset as presets
from t1virtio.hyp.doorbell import Doorbell
from t1virtio.logic import CONCRETE
from t1virtio.step import apply
from t1virtio.transport import regs
from t1virtio.virtio import status as S

READY = 1
FRONTEND, BACKEND = 0, 1
REVISION = 1
# virtio_ivshmem_header: (offset, struct format) of each field
HEADER = {"revision": (0, "<I"), "size": (4, "<I"), "write_transaction": (8, "<I"),
          "device_features": (12, "<I"), "device_features_sel": (16, "<I"), "driver_features": (20, "<I"),
          "driver_features_sel": (24, "<I"), "queue_sel": (28, "<I"), "queue_size": (32, "<H"),
          "queue_device_vector": (34, "<H"), "queue_driver_vector": (36, "<H"), "queue_enable": (38, "<H"),
          "queue_desc": (40, "<Q"), "queue_driver": (48, "<Q"), "queue_device": (56, "<Q"),
          "config_event": (64, "<B"), "queue_event": (65, "<B"), "device_status": (68, "<I"),
          "config_generation": (72, "<I")}
CONFIG_OFFSET = 76
SECTION = 2 * 4096                # the R/W section: at least two pages (virtio_ivshmem.c)
MAX_WAIT = 64                     # bound on the polls of write_transaction or an odd generation
MAX_RETRIES = 8                   # bound on configuration re-reads

# header field -> register writes it stands for: (offset, value of the 64-bit field's word)
_FIELD_REGS = {"device_features_sel": regs.DEVICE_FEATURES_SEL, "driver_features": regs.DRIVER_FEATURES,
               "driver_features_sel": regs.DRIVER_FEATURES_SEL, "queue_sel": regs.QUEUE_SEL,
               "queue_size": regs.QUEUE_NUM, "queue_enable": regs.QUEUE_READY, "device_status": regs.STATUS}
_WIDE = {"queue_desc": (regs.QUEUE_DESC_LOW, regs.QUEUE_DESC_HIGH),
         "queue_driver": (regs.QUEUE_DRIVER_LOW, regs.QUEUE_DRIVER_HIGH),
         "queue_device": (regs.QUEUE_DEVICE_LOW, regs.QUEUE_DEVICE_HIGH)}
_BY_OFFSET = {off: name for name, (off, _) in HEADER.items()}


class SharedRegion:
    """The shared memory: the state table and the R/W section (both peers map it; no copy)."""

    def __init__(self, config_size: int = 0):
        self.state_table = [0, 0]
        self.rw = bytearray(SECTION)
        self.put("revision", REVISION)
        self.put("size", CONFIG_OFFSET + config_size)

    def get(self, name: str) -> int:
        off, fmt = HEADER[name]
        return struct.unpack_from(fmt, self.rw, off)[0]

    def put(self, name: str, value: int) -> None:
        off, fmt = HEADER[name]
        struct.pack_into(fmt, self.rw, off, value & ((1 << (8 * struct.calcsize(fmt))) - 1))


class IvshmemBackend:
    """The device side: a register file behind the header; ``poll()`` applies the pending write."""

    def __init__(self, region: SharedRegion, dev: S.DeviceStatusState, num_max: tuple, to_frontend: Doorbell,
                 from_frontend: Doorbell, config: bytes = b""):
        self.region, self.to_frontend, self.from_frontend = region, to_frontend, from_frontend
        self.regs = regs.RegisterFile(dev, num_max, config)
        self.refusals: list[errors.ModelError] = []
        region.rw[CONFIG_OFFSET:CONFIG_OFFSET + len(config)] = config
        self.publish()
        region.state_table[BACKEND] = READY

    @property
    def state(self) -> regs.RegFileState:
        return self.regs.state

    def publish(self) -> None:
        """Show the register file in the header (device_features of the selection, queue of the selection)."""
        s, r = self.state, self.region
        r.put("device_features", self.regs.read(regs.DEVICE_FEATURES))
        q = s.queue_sel
        r.put("queue_enable", int(s.ready[q]))
        r.put("queue_device_vector", q + 1)
        r.put("device_status", s.dev.status)
        r.put("config_generation", s.config_generation)
        r.put("queue_event", s.interrupt_status & regs.INT_USED)
        r.put("config_event", (s.interrupt_status & regs.INT_CONFIG) >> 1)

    def poll(self) -> list[int]:
        """Take the doorbell: apply a pending register write (clearing write_transaction); return notified queues."""
        flags = self.from_frontend.state.flags
        if flags:
            self.from_frontend.receive(flags)
        shown = self.region.get("queue_event") | self.region.get("config_event") << 1
        cleared = self.state.interrupt_status & ~shown
        if cleared:
            self.regs.write(regs.INTERRUPT_ACK, cleared)
        wt = self.region.get("write_transaction")
        if wt:
            self._apply(_BY_OFFSET.get(wt))
            self.region.put("write_transaction", 0)
            self.publish()
        queues = []
        for v in range(1, min(flags.bit_length(), 64)):          # bounded by the doorbell's width
            if flags >> v & 1:
                try:
                    self.regs.write(regs.QUEUE_NOTIFY, v - 1)
                    queues.append(v - 1)
                except errors.PeerViolation as e:
                    self.refusals.append(e)
        return queues

    def _apply(self, name: str | None) -> None:
        try:
            if name in _FIELD_REGS:
                self.regs.write(_FIELD_REGS[name], self.region.get(name))
            elif name in _WIDE:
                v = self.region.get(name)
                lo, hi = _WIDE[name]
                self.regs.write(lo, v & regs.WORD)
                self.regs.write(hi, v >> 32)
            else:
                raise errors.fail("TRANSPORT-WIRE-malformed", f"write_transaction names no writable field ({name})")
        except errors.ModelError as e:
            if isinstance(e, errors.InvariantViolation):
                raise
            self.refusals.append(e)

    def raise_interrupt(self, reasons: int) -> None:
        """Set queue_event/config_event and ring the frontend (vector 0)."""
        self.regs.run(regs.device_interrupt, f"reasons {reasons:#x}", reasons=reasons)
        self.publish()
        self.to_frontend.send(1)

    def update_config(self, offset: int, data: bytes) -> None:
        """Change the configuration: generation odd while the bytes change, even after."""
        self.regs.run(regs.config_begin)
        self.region.put("config_generation", self.state.config_generation)
        self.region.rw[CONFIG_OFFSET + offset:CONFIG_OFFSET + offset + len(data)] = data
        self.regs.config[offset:offset + len(data)] = data
        self.regs.run(regs.config_end)
        self.publish()


class IvshmemFrontend:
    """The driver side (virtio_ivshmem.c): header writes under ``write_transaction``, plain reads."""

    def __init__(self, region: SharedRegion, to_backend: Doorbell, from_backend: Doorbell, pump: Any = None):
        self.region, self.to_backend, self.from_backend, self.pump = region, to_backend, from_backend, pump
        self.state = regs.ChannelState()
        self.last_out: Any = None
        if region.state_table[BACKEND] != READY:
            raise errors.fail("TRANSPORT-IVSHMEM-peer-ready", "backend not READY at probe")
        region.state_table[FRONTEND] = READY

    def _chan(self, fn: Any, seq: int) -> None:
        self.last_out = True
        self.state, _ = apply(fn(CONCRETE, self.state, seq=seq), f"write_transaction {seq:#x}")

    def _wait(self, done: Any) -> None:
        for _ in range(MAX_WAIT):
            if self.region.state_table[BACKEND] != READY:
                raise errors.fail("TRANSPORT-IVSHMEM-peer-ready", "backend failed")
            if done():
                return
            if self.pump is not None:
                self.pump()
        raise errors.fail("TRANSPORT-IVSHMEM-peer-ready", f"no progress after {MAX_WAIT} polls: backend failed")

    def write(self, name: str, value: int) -> None:
        """Write header field ``name``: one write in flight, completed when the backend clears write_transaction."""
        off, _ = HEADER[name]
        self._wait(lambda: self.region.get("write_transaction") == 0)
        self.region.put(name, value)
        self._chan(regs.chan_request, off)
        self.region.put("write_transaction", off)
        self.to_backend.send(1)
        self._wait(lambda: self.region.get("write_transaction") == 0)
        self._chan(regs.chan_reply, off)

    def read(self, name: str) -> int:
        return self.region.get(name)

    def notify(self, queue: int) -> None:
        """Ring the backend with the queue's vector (read from queue_device_vector after selecting it)."""
        self.to_backend.send(1 << (queue + 1))

    def take_events(self) -> int:
        """Receive the doorbell; clear and return the event bytes (bit 0 queue, bit 1 config)."""
        if self.from_backend.state.flags:
            self.from_backend.receive(self.from_backend.state.flags)
        ev = self.region.get("queue_event") | self.region.get("config_event") << 1
        self.region.put("queue_event", 0)       # clearing the bytes is the InterruptACK (the backend applies it)
        self.region.put("config_event", 0)
        return ev

    def read_config(self, offset: int, size: int) -> bytes:
        """Read ``size`` config bytes between two equal even generations (bounded spin and retries)."""
        for _ in range(MAX_RETRIES):
            self._wait(lambda: self.region.get("config_generation") % 2 == 0)
            before = self.region.get("config_generation")
            data = bytes(self.region.rw[CONFIG_OFFSET + offset:CONFIG_OFFSET + offset + size])
            if self.region.get("config_generation") == before:
                return data
        raise errors.fail("TRANSPORT-MMIO-config-stable", f"generation kept changing over {MAX_RETRIES} reads")


def connect(dev: S.DeviceStatusState, num_max: tuple, config: bytes = b"",
            preset: presets.Preset = presets.LINUX) -> tuple[IvshmemFrontend, IvshmemBackend]:
    """A frontend and a backend over a fresh shared region and a doorbell each way."""
    region = SharedRegion(len(config))
    to_back, to_front = Doorbell(preset), Doorbell(preset)
    back = IvshmemBackend(region, dev, num_max, to_front, to_back, config)
    front = IvshmemFrontend(region, to_back, to_front, pump=back.poll)
    return front, back
