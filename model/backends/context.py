"""What a standalone backend sees: a device context (seed problem 3; DESIGN.md §2 "Standalone backends").

A ``DeviceContext`` is the shared region as a ``MemoryView`` (``mem``, the region's bytes at local addresses
``base .. base+size``), the device's queues (``SplitDevice`` objects over that view) and a ``notify(q)``
function that raises the used-buffer interrupt of queue ``q``. Nothing else: the backend does not know which
transport carries its queue layout and notifications, nor which hypervisor (or OS process) provides the view.

Guest addresses (what descriptors carry) are region offsets (the seed's ``OFFSET`` DMA addressing,
``swiotlb/dma.py``). Every address a backend follows goes through ``check``: its whole range must lie in
the region, else ``PeerViolation`` ``SYSTEM-BACKEND-in-region``; ``read``/``write`` translate to the local
view only after it. The queues' chain walks use the same ``in_region`` (``chain.walk_chain``).
"""
from __future__ import annotations

from typing import Any, Callable

from t1virtio import errors

IN_REGION = "SYSTEM-BACKEND-in-region"


class DeviceContext:
    """The region view, the queues and the notify function of one device."""

    def __init__(self, mem: Any, base: int, size: int, notify: Callable[[int], None]):
        self.mem, self.base, self.size, self.notify = mem, base, size, notify
        self.queues: list[Any] = []
        self.touched: list[tuple[int, int]] = []   # (offset, n) of region bytes the backend wrote (remote reports)

    # addresses
    def in_region(self, addr: int, n: int) -> bool:
        """Whether the guest range ``[addr, addr+n)`` lies in the region (an empty range at its end counts)."""
        return isinstance(addr, int) and isinstance(n, int) and 0 <= addr and 0 <= n and addr + n <= self.size

    def check(self, addr: int, n: int, what: str = "") -> int:
        """Return the local address of guest range ``[addr, addr+n)``; refuse one outside the region."""
        if not self.in_region(addr, n):
            raise errors.fail(IN_REGION, f"{what or 'access'}: {n} bytes at guest address {addr:#x} "
                                         f"outside the region of {self.size:#x} bytes")
        return self.base + addr

    def to_local(self, addr: int) -> int:
        return self.base + addr

    def read(self, addr: int, n: int, what: str = "") -> bytes:
        return self.mem.read(self.check(addr, n, what), n)

    def write(self, addr: int, data: bytes, what: str = "") -> None:
        self.mem.write(self.check(addr, len(data), what), data)
        self.touched.append((addr, len(data)))

    # chains
    def gather(self, segs: Any, limit: int, what: str = "") -> bytes:
        """The bytes of the readable segments ``segs`` (at most ``limit`` bytes: a named bound)."""
        out, total = [], 0
        for a, n in segs:                       # bounded: a chain has at most the queue size of segments
            k = min(n, limit - total)
            if k <= 0:
                break
            out.append(self.read(a, k, what))
            total += k
        return b"".join(out)

    def scatter(self, segs: Any, data: bytes, what: str = "") -> int:
        """Write ``data`` into the writable segments ``segs`` from their start; return bytes written."""
        done = 0
        for a, n in segs:                       # bounded: one iteration per segment
            part = data[done:done + n]
            if not part:
                break
            self.write(a, part, what)
            done += len(part)
        return done


class Backend:
    """A device's behaviour over its context: ``serve()`` handles what the driver made available.

    Subclasses set ``QUEUES`` (their names, in queue order), ``DEVICE`` (a ``features.DeviceType``) and
    implement ``handle(q, chain) -> used length`` for driver-to-device queues; device-to-driver queues
    (``RX``) are filled by ``deliver``. ``config()`` returns the device configuration space bytes.
    """

    QUEUES: tuple[str, ...] = ()
    RX: tuple[int, ...] = ()
    DEVICE: Any = None
    FEATURES = 0

    def __init__(self) -> None:
        self.ctx: DeviceContext | None = None
        self.served = 0
        self.refused: list[str] = []            # clauses of requests refused as peer violations

    def attach(self, ctx: DeviceContext) -> None:
        self.ctx = ctx

    def config(self) -> bytes:
        return b""

    def handle(self, q: int, c: Any) -> int:
        raise NotImplementedError

    def serve(self, budget: int) -> int:
        """Serve at most ``budget`` chains from the driver-to-device queues; return how many were served."""
        ctx, n = self.ctx, 0
        for q, dev in enumerate(ctx.queues):
            if q in self.RX or dev is None or dev.broken:
                continue
            done = False
            while n < budget:                   # bounded by budget
                try:
                    c = dev.next_chain()
                except errors.PeerViolation as e:
                    self.refused.append(e.clause)
                    break
                if c is None:
                    break
                try:
                    length = self.handle(q, c)
                except errors.PeerViolation as e:   # a bad buffer: refuse this request, the ring stays usable
                    self.refused.append(e.clause)
                    length = 0
                dev.add_used(c.head, length)
                n += 1
                done = True
            if done and not dev.broken and self._need_notify(dev):
                ctx.notify(q)
        self.served += n
        return n

    def rx_ready(self, q: int) -> bool:
        dev = self.ctx.queues[q] if self.ctx and q < len(self.ctx.queues) else None
        return dev is not None and not dev.broken

    def deliver(self, q: int, payload: bytes) -> bool:
        """Put ``payload`` into the next buffer of device-to-driver queue ``q``; False when none is available."""
        dev = self.ctx.queues[q]
        if dev is None or dev.broken:
            return False
        try:
            c = dev.next_chain()
        except errors.PeerViolation as e:
            self.refused.append(e.clause)
            return False
        if c is None:
            return False
        try:
            n = self.ctx.scatter(c.writable, payload, "rx buffer")
        except errors.PeerViolation as e:
            self.refused.append(e.clause)
            n = 0
        dev.add_used(c.head, n)
        if self._need_notify(dev):
            self.ctx.notify(q)
        return True

    def _need_notify(self, dev: Any) -> bool:
        """Whether the driver asked for an interrupt; a ring the driver's flags break is refused, not raised."""
        try:
            return dev.need_notify()
        except errors.PeerViolation as e:
            self.refused.append(e.clause)
            return False
