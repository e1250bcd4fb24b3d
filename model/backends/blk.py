"""virtio-blk backend over a disk image (virtio 1.3 §5.2): read, write, flush, get id, with the status byte.

A request is ``le32 type, le32 reserved, le64 sector`` (device-readable), then data (readable for OUT,
writable for IN and GET_ID), then one status byte (the last writable byte). The device checks (§5.2.6.1):
data of IN/OUT is a multiple of 512 bytes and ``sector + len/512`` is within the capacity, else IOERR;
an unknown type is UNSUPP; a request too malformed to hold a status byte is refused as a peer violation
with no used length. Every request is bounded by ``max_bytes`` (the seg_max x size_max the device offers).
"""
from __future__ import annotations

import struct
from typing import Any

from t1virtio import errors
from t1virtio.backends.context import Backend
from t1virtio.virtio import features

SECTOR = 512
T_IN, T_OUT, T_FLUSH, T_GET_ID = 0, 1, 4, 8
S_OK, S_IOERR, S_UNSUPP = 0, 1, 2
HDR = 16
ID_BYTES = 20                    # VIRTIO_BLK_ID_BYTES
BLK_F_FLUSH = 9
BLK_REQUEST = "SYSTEM-BLK-request"


class BlkBackend(Backend):
    """One disk image (a ``bytearray``, a ``mmap``, any writable buffer of whole sectors)."""

    QUEUES = ("requestq",)
    DEVICE = features.BLK
    FEATURES = features.bit(BLK_F_FLUSH)

    def __init__(self, image: Any, serial: bytes = b"t1virtio-blk", max_bytes: int = 64 * 1024):
        super().__init__()
        if len(image) % SECTOR:
            raise ValueError(f"disk image of {len(image)} bytes is not whole sectors")
        self.image, self.serial, self.max_bytes = image, serial[:ID_BYTES], max_bytes
        self.flushes = 0
        self.log: list[tuple[str, int, int, int]] = []   # (op, sector, bytes, status): what was served

    @property
    def capacity(self) -> int:
        return len(self.image) // SECTOR

    def config(self) -> bytes:
        return struct.pack("<Q", self.capacity)          # struct virtio_blk_config.capacity

    def shape_ok(self, c: Any) -> bool:
        """A 16-byte readable header and a writable status byte at the end (``SYSTEM-BLK-request``)."""
        return bool(c.writable) and c.writable[-1][1] >= 1 and sum(n for _, n in c.readable) >= HDR

    def in_range(self, sector: int, n: int) -> bool:
        """Whole sectors, within the request bound and the capacity (§5.2.6.1: else IOERR)."""
        return n % SECTOR == 0 and n <= self.max_bytes and sector + n // SECTOR <= self.capacity

    def store(self, off: int, data: bytes) -> None:
        self.image[off:off + len(data)] = data

    def handle(self, q: int, c: Any) -> int:
        ctx = self.ctx
        if not self.shape_ok(c):
            raise errors.fail(BLK_REQUEST, f"request {c.head}: no 16-byte header or no status byte")
        hdr = ctx.gather(c.readable, HDR, "blk header")
        typ, _, sector = struct.unpack("<IIQ", hdr)
        st_addr = c.writable[-1][0] + c.writable[-1][1] - 1
        wsegs = list(c.writable[:-1]) + ([(c.writable[-1][0], c.writable[-1][1] - 1)] if c.writable[-1][1] > 1 else [])
        rsegs = _skip(c.readable, HDR)
        status, written = S_OK, 0
        if typ == T_IN:
            n = sum(k for _, k in wsegs)
            if not self.in_range(sector, n):
                status = S_IOERR
            else:
                off = sector * SECTOR
                written = ctx.scatter(wsegs, bytes(self.image[off:off + n]), "blk read data")
        elif typ == T_OUT:
            n = sum(k for _, k in rsegs)
            if not self.in_range(sector, n):
                status = S_IOERR
            else:
                self.store(sector * SECTOR, ctx.gather(rsegs, n, "blk write data"))
        elif typ == T_FLUSH:
            self.flushes += 1
            if hasattr(self.image, "flush"):
                self.image.flush()
        elif typ == T_GET_ID:
            n = sum(k for _, k in wsegs)
            written = ctx.scatter(wsegs, self.serial.ljust(ID_BYTES, b"\0")[:min(n, ID_BYTES)], "blk id")
        else:
            status = S_UNSUPP
        ctx.write(st_addr, bytes([status]), "blk status")
        self.log.append(({T_IN: "read", T_OUT: "write", T_FLUSH: "flush", T_GET_ID: "get-id"}.get(typ, f"type {typ}"),
                         sector, sum(k for _, k in (wsegs if typ in (T_IN, T_GET_ID) else rsegs)), status))
        return written + 1


def _skip(segs: Any, n: int) -> list[tuple[int, int]]:
    """The segments after the first ``n`` bytes."""
    out = []
    for a, k in segs:
        if n >= k:
            n -= k
            continue
        out.append((a + n, k - n))
        n = 0
    return out
