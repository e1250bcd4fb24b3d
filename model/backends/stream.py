"""Stream backends: virtio-console (§5.3), virtio-net (§5.1) and the primary's hub that bridges secondaries.

Both devices have a receive queue (0, device-to-driver) and a transmit queue (1). What a secondary
transmits goes to the ``Hub`` the primary runs (a console line to every other console, a frame to the
port of its destination MAC, a broadcast to every other port); the hub delivers into the receive queues
when the driver has buffers there. The hub holds at most ``depth`` items per port (a named bound;
the overflow is counted as dropped, as a full NIC ring drops). Payloads cross the hub as plain bytes:
what the primary writes into another secondary's region is the primary's own (device-written) data.
"""
from __future__ import annotations

import collections
import struct
from typing import Any

from t1virtio.backends.context import Backend
from t1virtio.virtio import features

NET_HDR = 12                  # struct virtio_net_hdr with VIRTIO_F_VERSION_1 (num_buffers included)
ETH_HDR = 14
MTU = 1500
BROADCAST = b"\xff" * 6
HUB_DEPTH = 64                # items a port may hold before the hub drops (a named bound)
CONSOLE_LINE_MAX = 4096       # bytes of one console transmit buffer the backend reads


class Hub:
    """Ports by name; ``send(src, dst, payload)`` queues for ``dst`` (None: every other port)."""

    def __init__(self, depth: int = HUB_DEPTH):
        self.depth = depth
        self.ports: dict[Any, collections.deque] = {}
        self.dropped = 0
        self.forwarded = 0

    def port(self, name: Any) -> collections.deque:
        return self.ports.setdefault(name, collections.deque())

    def send(self, src: Any, dst: Any, payload: bytes) -> None:
        for name in ([dst] if dst is not None else [p for p in self.ports if p != src]):
            if name not in self.ports or name == src:     # no such port, or a hairpin: dropped
                self.dropped += 1
                continue
            q = self.ports[name]
            if len(q) >= self.depth:
                self.dropped += 1
                continue
            q.append(bytes(payload))
            self.forwarded += 1


class StreamBackend(Backend):
    """Receive queue 0, transmit queue 1, attached to a hub port."""

    QUEUES = ("receiveq", "transmitq")
    RX = (0,)

    def __init__(self, hub: Hub, name: Any):
        super().__init__()
        self.hub, self.name = hub, name
        hub.port(name)
        self.sent: list[bytes] = []

    def route(self, payload: bytes) -> None:
        raise NotImplementedError

    def handle(self, q: int, c: Any) -> int:
        self.route(self.ctx.gather(c.readable, self.limit(), f"{self.DEVICE.name} transmit"))
        return 0

    def limit(self) -> int:
        raise NotImplementedError

    def pump(self, budget: int) -> int:
        """Deliver queued payloads into receive buffers (at most ``budget``); return how many."""
        port, n = self.hub.ports[self.name], 0
        while port and n < budget and self.rx_ready(0):
            if not self.deliver(0, self.frame(port[0])):
                break
            port.popleft()
            n += 1
        return n

    def frame(self, payload: bytes) -> bytes:
        return payload


class ConsoleBackend(StreamBackend):
    """virtio-console, port 0 only (no MULTIPORT): lines go to every other console on the hub."""

    DEVICE = features.CONSOLE

    def config(self) -> bytes:
        return struct.pack("<HHII", 80, 25, 1, 0)        # cols, rows, max_nr_ports, emerg_wr

    def limit(self) -> int:
        return CONSOLE_LINE_MAX

    def route(self, payload: bytes) -> None:
        self.sent.append(payload)
        self.hub.send(self.name, None, payload)


class NetBackend(StreamBackend):
    """virtio-net with a MAC (VIRTIO_NET_F_MAC): the transmit buffer is the header then the frame."""

    DEVICE = features.NET
    FEATURES = features.bit(features.NET_MAC)

    def __init__(self, hub: Hub, mac: bytes):
        super().__init__(hub, bytes(mac))
        self.mac = bytes(mac)
        self.bad = 0

    def config(self) -> bytes:
        return self.mac + struct.pack("<HHH", 1, 1, MTU)     # mac, status LINK_UP, max_virtqueue_pairs, mtu

    def limit(self) -> int:
        return NET_HDR + ETH_HDR + MTU

    def route(self, payload: bytes) -> None:
        frame = payload[NET_HDR:]
        if len(payload) < NET_HDR + ETH_HDR:     # runt: dropped, as a NIC drops it
            self.bad += 1
            return
        self.sent.append(frame)
        dst = frame[:6]
        self.hub.send(self.name, None if dst == BROADCAST else dst, frame)

    def frame(self, payload: bytes) -> bytes:
        return struct.pack("<BBHHHHH", 0, 0, 0, 0, 0, 0, 1) + payload   # num_buffers = 1


class RngBackend(Backend):
    """virtio-rng (entropy device, §5.4): fills each request buffer with bytes of a seeded generator
    (deterministic, so runs replay; a real backend reads /dev/urandom)."""

    QUEUES = ("requestq",)
    DEVICE = features.RNG
    MAX = 4096                    # bytes served per request (a named bound; the device may return fewer)

    def __init__(self, seed: int = 0):
        super().__init__()
        import random
        self.rand = random.Random(seed)
        self.given = 0

    def handle(self, q: int, c: Any) -> int:
        n = min(c.wlen, self.MAX)
        data = self.rand.randbytes(n)
        self.given += n
        return self.ctx.scatter(c.writable, data, "rng buffer")
