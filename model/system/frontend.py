"""The secondary's virtio drivers (frontends): every buffer bounced through the swiotlb pool of its region.

A ``Frontend`` negotiates over a ``DriverTransport``, allocates its rings from the pool (coherent memory,
``VirtioBounceOps.alloc``), and submits requests whose buffers live in the secondary's private memory:
each is mapped (``map_page``: bounced into the pool) and only the DMA address (a region offset) is put in a
descriptor. Completion unmaps (bounce back for FROM_DEVICE) and checks the labels of what the caller
received (no stale byte, CVE-2022-0854). A peer violation of the device marks the frontend broken.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from t1virtio import errors
from t1virtio.swiotlb import bounce
from t1virtio.swiotlb.labels import received_from
from t1virtio.virtio import features, split
from t1virtio.virtio import status as vstatus

TO_DEV, FROM_DEV = bounce.DMA_TO_DEVICE, bounce.DMA_FROM_DEVICE


@dataclass
class Buf:
    orig: int          # address in the secondary's private memory
    n: int
    dir: int
    dma: int = -1
    owner: int = 0     # label owner id of the caller buffer
    since: int = 0     # logical time of the mapping


@dataclass
class Request:
    kind: str
    bufs: list[Buf]
    meta: dict = field(default_factory=dict)
    done: bool = False
    length: int = 0
    inputs: list[bytes] = field(default_factory=list)
    failed: str | None = None


def ring_layout(size: int, base: int) -> split.SplitLayout:
    """Compact split layout (virtio 1.x: parts aligned 16, 2, 4): table, avail ring, used ring."""
    avail = base + 16 * size
    used = (avail + 6 + 2 * size + 3) & ~3
    return split.SplitLayout(size, base, avail, used)


class Frontend:
    """One virtio device of secondary ``sec`` (a ``system.Secondary``)."""

    def __init__(self, sec: Any, name: str, transport: Any, nqueues: int, queue_size: int, want: int = 0):
        self.sec, self.name, self.t = sec, name, transport
        self.broken: str | None = None
        self.inflight: dict[int, Request] = {}
        self.completed: list[Request] = []
        t = transport
        t.write_status(vstatus.ACKNOWLEDGE)
        t.write_status(vstatus.ACKNOWLEDGE | vstatus.DRIVER)
        offered = t.device_features()
        accept = offered & (features.bit(features.VIRTIO_F_VERSION_1) | features.bit(features.VIRTIO_F_ACCESS_PLATFORM)
                            | want)
        t.write_features(accept)
        t.write_status(vstatus.ACKNOWLEDGE | vstatus.DRIVER | vstatus.FEATURES_OK)
        if not t.status() & vstatus.FEATURES_OK:
            raise errors.fail("SYSTEM-PROGRESS", f"{name}: the device refused FEATURES_OK")
        self.config = t.read_config()
        size = min(queue_size, t.queue_max())
        self.queues: list[split.SplitDriver] = []
        for q in range(nqueues):
            nbytes = split.ring_bytes(ring_layout(size, 0))
            vaddr, dma = sec.ops.alloc(nbytes)
            sec.rings.append((dma, nbytes))
            local = ring_layout(size, vaddr)
            t.setup_queue(q, ring_layout(size, dma))
            self.queues.append(split.SplitDriver(sec.ring_view, local, notify=lambda q=q: t.notify(q)))
        t.write_status(vstatus.ACKNOWLEDGE | vstatus.DRIVER | vstatus.FEATURES_OK | vstatus.DRIVER_OK)

    # ---- buffers
    def _map(self, b: Buf) -> None:
        sec = self.sec
        b.since = sec.shadow.clock
        b.dma = sec.ops.map_page(b.orig, b.n, b.dir)

    def submit(self, q: int, kind: str, outs: list[bytes], in_lens: list[int], meta: dict | None = None) -> Request | None:
        """Bounce ``outs`` to the device and ``in_lens`` bytes back; None when memory, pool or ring is full."""
        if self.broken:
            return None
        sec = self.sec
        bufs: list[Buf] = []
        try:
            for data in outs:
                b = Buf(sec.alloc_private(len(data)), len(data), TO_DEV, owner=sec.new_owner())
                bufs.append(b)
                sec.fill(b, data)
                self._map(b)
            for n in in_lens:
                b = Buf(sec.alloc_private(n), n, FROM_DEV, owner=sec.new_owner())
                bufs.append(b)
                self._map(b)
            req = Request(kind, bufs, meta or {})
            head = self.queues[q].add_buf([(b.dma, b.n) for b in bufs if b.dir == TO_DEV],
                                          [(b.dma, b.n) for b in bufs if b.dir == FROM_DEV], req)
        except errors.Exhausted:
            self._release(bufs, check=False)
            return None
        except errors.PeerViolation as e:
            self.broken = e.clause
            self._release(bufs, check=False)
            return None
        self.inflight[id(req)] = req
        req.meta["queue"], req.meta["head"] = q, head
        try:
            self.queues[q].kick()
        except errors.PeerViolation as e:      # the device's flags are corrupt: the ring is broken
            self.broken = e.clause
            self.abandon()
        return req

    def _release(self, bufs: list[Buf], check: bool) -> list[bytes]:
        sec, out = self.sec, []
        for b in bufs:
            if b.dma >= 0:
                sec.ops.unmap_page(b.dma, b.n, b.dir)
            if b.dir == FROM_DEV and b.dma >= 0:
                data = sec.caller.read(b.orig, b.n)
                if check and sec.check_received:
                    received_from(sec.shadow, list(sec.shadow.get(sec.priv_name, b.orig - sec.ram, b.n)), b.owner,
                                  b.since, f"{self.name} buffer at {b.orig:#x}")
                out.append(bytes(data))
            sec.free_private(b.orig, b.n)
        return out

    def poll(self) -> list[Request]:
        """Take back every used buffer; return the requests completed now."""
        done = []
        for q in self.queues:
            if self.broken:
                break
            for _ in range(q.layout.size):          # bounded: at most the queue size per poll
                try:
                    got = q.get_buf()
                except errors.PeerViolation as e:
                    self.broken = e.clause
                    break
                if got is None:
                    break
                req, length = got
                self.inflight.pop(id(req), None)
                req.inputs = self._release(req.bufs, check=True)
                req.done, req.length = True, length
                done.append(req)
        if self.broken:
            self.abandon()
        self.completed.extend(done)
        return done

    def abandon(self) -> None:
        """After the device broke: unmap every buffer still in flight (what Linux does on remove)."""
        for req in list(self.inflight.values()):
            self._release(req.bufs, check=False)
            req.failed = self.broken
        self.inflight.clear()

    def dma_in_flight(self) -> list[tuple[int, int]]:
        return [(b.dma, b.n) for r in self.inflight.values() for b in r.bufs]


# ---- device-specific drivers

class BlkFrontend(Frontend):
    def __init__(self, sec: Any, transport: Any, queue_size: int):
        super().__init__(sec, "blk", transport, 1, queue_size, want=features.bit(9))
        self.capacity = int.from_bytes(self.config[:8], "little")

    def read(self, sector: int, nsect: int) -> Request | None:
        return self.submit(0, "read", [_hdr(0, sector)], [nsect * 512, 1], {"sector": sector, "n": nsect})

    def write(self, sector: int, data: bytes) -> Request | None:
        return self.submit(0, "write", [_hdr(1, sector), data], [1], {"sector": sector, "data": bytes(data)})

    def flush(self) -> Request | None:
        return self.submit(0, "flush", [_hdr(4, 0)], [1], {})

    def get_id(self) -> Request | None:
        return self.submit(0, "get-id", [_hdr(8, 0)], [20, 1], {})


def _hdr(typ: int, sector: int) -> bytes:
    return typ.to_bytes(4, "little") + bytes(4) + sector.to_bytes(8, "little")


def status_of(req: Request) -> int | None:
    """The status byte of a completed blk request (the last input byte); None if it never completed or the
    device's used length does not cover the status byte (it never wrote it)."""
    return req.inputs[-1][0] if req.done and req.length >= 1 and req.inputs and req.inputs[-1] else None


class StreamFrontend(Frontend):
    """Console or net: receive queue 0 kept full of ``rx_len``-byte buffers, transmit queue 1."""

    HDR = 0

    def __init__(self, sec: Any, name: str, transport: Any, queue_size: int, rx_len: int, rx_bufs: int,
                 want: int = 0):
        super().__init__(sec, name, transport, 2, queue_size, want)
        self.rx_len, self.rx_bufs = rx_len, rx_bufs
        self.received: list[bytes] = []
        self.refill()

    def refill(self) -> None:
        while not self.broken and sum(1 for r in self.inflight.values() if r.kind == "rx") < self.rx_bufs:
            if self.submit(0, "rx", [], [self.rx_len]) is None:
                break

    def poll(self) -> list[Request]:
        done = super().poll()
        for r in done:
            if r.kind == "rx":
                self.received.append(r.inputs[0][self.HDR:max(r.length, self.HDR)])
        self.refill()
        return done

    def send(self, payload: bytes) -> Request | None:
        return self.submit(1, "tx", [bytes(self.HDR) + payload], [], {"data": bytes(payload)})


class ConsoleFrontend(StreamFrontend):
    def __init__(self, sec: Any, transport: Any, queue_size: int, rx_bufs: int):
        super().__init__(sec, "console", transport, queue_size, 256, rx_bufs)


class NetFrontend(StreamFrontend):
    HDR = 12

    def __init__(self, sec: Any, transport: Any, queue_size: int, rx_bufs: int):
        super().__init__(sec, "net", transport, queue_size, 12 + 14 + 1500, rx_bufs, want=features.bit(5))
        self.mac = self.config[:6]

    def send_to(self, dst: bytes, payload: bytes) -> Request | None:
        return self.send(dst + self.mac + b"\x88\xb5" + payload)


class RngFrontend(Frontend):
    def __init__(self, sec: Any, transport: Any, queue_size: int):
        super().__init__(sec, "rng", transport, 1, queue_size)

    def request(self, n: int) -> Request | None:
        return self.submit(0, "rng", [], [n])
