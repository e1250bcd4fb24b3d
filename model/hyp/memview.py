"""A VM's view of memory: the only way model code reads or writes guest bytes (DESIGN.md §2).

Every component that touches guest memory (swiotlb bounce copies, rings, backends) takes a
``MemoryView``. The hypervisor model hands out views bound to one VM that check the VM's live
rights on every access; ``FlatView`` is a bounded flat buffer with the same contract, for unit use
and for pairing with foreign implementations over one flat memory (``../shared/peers/linux``).
Little-endian helpers follow the virtio byte order (virtio 1.3 §1.4).
"""
from __future__ import annotations

from typing import Protocol

from t1virtio import errors

NO_RIGHT = "HYP-MEM-no-right"


class MemoryView(Protocol):
    """Read and write bytes at addresses of one VM's address space; faults raise ``AccessFault``."""

    def read(self, addr: int, n: int) -> bytes: ...

    def write(self, addr: int, data: bytes) -> None: ...


class FlatView:
    """A flat, bounded buffer: addresses ``[base, base+len)`` are readable and writable."""

    def __init__(self, size_or_buffer: int | bytearray, base: int = 0):
        self.buf = bytearray(size_or_buffer) if isinstance(size_or_buffer, int) else size_or_buffer
        self.base = base

    def _off(self, addr: int, n: int) -> int:
        off = addr - self.base
        if n < 0 or off < 0 or off + n > len(self.buf):
            raise errors.fail(NO_RIGHT, f"access of {n} bytes at {addr:#x} outside [{self.base:#x}, {self.base + len(self.buf):#x})")
        return off

    def read(self, addr: int, n: int) -> bytes:
        off = self._off(addr, n)
        return bytes(self.buf[off:off + n])

    def write(self, addr: int, data: bytes) -> None:
        off = self._off(addr, len(data))
        self.buf[off:off + len(data)] = data


def read_le(view: MemoryView, addr: int, width: int) -> int:
    """Return the little-endian unsigned integer of ``width`` bytes at ``addr``."""
    return int.from_bytes(view.read(addr, width), "little")


def write_le(view: MemoryView, addr: int, width: int, value: int) -> None:
    """Store ``value`` as a little-endian unsigned integer of ``width`` bytes at ``addr``."""
    view.write(addr, (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little"))
