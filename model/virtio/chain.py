"""Bounded descriptor-chain walk: the device's hardened reader (virtio 1.3 §2.7.4, §2.7.5, §2.7.5.3).

A chain is read one descriptor at a time. ``walk_step`` is the symbolic core of one read: its
guards are the checks an honest device makes on driver-written descriptors, each naming the
clause the driver broke; its state carries the time-to-live that bounds the walk. The main table
gets ``ttl = queue size``. An indirect table of ``len / 16`` entries may be longer than the queue
(§2.7.5.3.1#3 limits the *chain*: entry 0 and its ``next`` links, not the table); ``next`` stays
below its entry count, and its walk gets ``ttl = min(len / 16, queue size)``: a chain that needs
more reads than the table has entries revisits one (a loop, ``#loop``), one that needs more than
the queue size is longer than the queue (``#chain-len``). The table may be entered once, so every
walk ends within ``2 * size + 1`` reads (``walk_bound``) whatever the table's length.
``proofs/virtio_split.py`` proves that each accepted step decreases the measure
``(not in_table, ttl)`` lexicographically and that ``0 <= ttl <= size`` always.

The module is generic over where descriptors come from: ``walk_chain`` takes a reader for the
main table and one for indirect tables, plus the device context's ``in_region(addr, len)``
predicate, so other ring formats can reuse it.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable

from t1virtio import errors
from t1virtio.logic import CONCRETE
from t1virtio.state import evolve
from t1virtio.step import Step, apply, first_failed, step
from t1virtio.virtio.desc import DESC_SIZE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE

U32_MAX = (1 << 32) - 1           # the largest le32: a descriptor's len, a used entry's len
MAX_CHAIN_BYTES = 1 << 32         # §2.7.5.2#1: a chain of at most 2^32 bytes (exactly 2^32 is legal)
MAX_TABLE_ENTRIES = U32_MAX // DESC_SIZE   # an indirect table's le32 len / 16

LOOP = "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table#loop"
TOTAL_LEN = "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table#total-len"
FEATURE = "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#feature"
NESTED = "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#nested"
CHAIN_LEN = "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#chain-len"
INDIRECT_NEXT = "VIRTIO/driver/Virtqueues/The Virtqueue Descriptor Table/Indirect Descriptors#indirect-next"
ORDER = "VIRTIO/driver/Message Framing#order"
NEXT_RANGE = "VIRTIO/model/chain#next-range"
TABLE_LEN = "VIRTIO/model/chain#table-len"
IN_REGION = "VIRTIO/model/chain#in-region"


@dataclass(frozen=True, slots=True)
class Desc:
    """One 16-byte descriptor: ``le64 addr; le32 len; le16 flags; le16 next`` (§2.7.5)."""

    addr: int
    len: int
    flags: int
    next: int

    @staticmethod
    def decode(raw: bytes) -> "Desc":
        return Desc(*struct.unpack("<QIHH", raw))

    def encode(self) -> bytes:
        return struct.pack("<QIHH", self.addr, self.len, self.flags, self.next)


@dataclass(frozen=True, slots=True)
class WalkState:
    """Where a chain walk stands; ``ttl`` is the named bound on reads left in the current table."""

    size: int            # queue size: main-table length, the longest chain in any table (§2.7.5.3.1#3)
    indirect_ok: bool    # VIRTIO_F_INDIRECT_DESC negotiated
    ttl: int             # descriptors the walk may still read in the current table (at most size)
    table_len: int       # entries of the table being walked (size, or len/16 of the indirect table: any)
    in_table: bool       # walking an indirect table
    index: int           # next descriptor to read in the current table
    total: int           # bytes described so far
    seen_writable: bool  # a device-writable descriptor was seen
    done: bool           # the last descriptor (no NEXT) was read


def walk_start(size: int, head: Any, indirect_ok: Any) -> WalkState:
    """Return the walk of the chain whose head is ``head`` in a main table of ``size`` entries."""
    return WalkState(size=size, indirect_ok=indirect_ok, ttl=size, table_len=size, in_table=False,
                     index=head, total=0, seen_writable=False, done=False)


def walk_bound(size: int) -> int:
    """Return the most reads any walk makes: ``size`` main descriptors, one indirect, ``size`` table entries.

    The bound is the chain's, not the table's: an indirect table of any length is read at most
    ``min(entries, size)`` times (its ``ttl``).
    """
    return 2 * size + 1


def walk_step(L: Any, w: WalkState, length: Any, flags: Any, next: Any, in_region: Any) -> Step:
    """Read one descriptor (``length``, ``flags``, ``next``; ``in_region``: its buffer lies in the shared region).

    Out of ttl in the main table or in an indirect table of at most ``size`` entries, the chain
    revisits a descriptor (``#loop``); out of ttl in a longer table, it has more than ``size``
    descriptors (``#chain-len``). Either way the read is refused before it happens.
    """
    is_indirect = (flags & VIRTQ_DESC_F_INDIRECT) != 0
    has_next = (flags & VIRTQ_DESC_F_NEXT) != 0
    writable = (flags & VIRTQ_DESC_F_WRITE) != 0
    direct = L.Not(is_indirect)
    entries = L.div(length, DESC_SIZE)
    long_table = L.And(w.in_table, L.ULT(w.size, w.table_len))   # a table longer than the queue
    guards = [(L.Or(L.ULT(0, w.ttl), long_table), LOOP),
              (L.Implies(long_table, L.ULT(0, w.ttl)), CHAIN_LEN),
              (L.Implies(is_indirect, w.indirect_ok), FEATURE),
              (L.Implies(is_indirect, L.Not(w.in_table)), NESTED),
              (L.Implies(is_indirect, L.Not(has_next)), INDIRECT_NEXT),
              (L.Implies(is_indirect, L.And(L.mod(length, DESC_SIZE) == 0, L.ULT(0, length))), TABLE_LEN),
              (in_region, IN_REGION),
              (L.Implies(direct, L.Or(writable, L.Not(w.seen_writable))), ORDER),
              (L.Implies(direct, L.ULE(w.total + length, MAX_CHAIN_BYTES)), TOTAL_LEN),
              (L.Implies(L.And(direct, has_next), L.ULT(next, w.table_len)), NEXT_RANGE)]

    def taken(indirect: int) -> WalkState:       # case 1: enter the indirect table; case 0: read one descriptor
        if indirect:
            return evolve(w, ttl=L.If(L.ULE(entries, w.size), entries, w.size), table_len=entries,
                                in_table=True, index=0)
        return evolve(w, ttl=w.ttl - 1, total=w.total + length, index=next,
                            seen_writable=L.Or(w.seen_writable, writable), done=L.Not(has_next))
    # concretely only the case taken is built, and only once the guards hold
    return step(guards, L.effect(guards, lambda: L.cases(2, L.If(is_indirect, 1, 0), taken), w))


@dataclass(frozen=True, slots=True)
class Chain:
    """A validated chain: device-readable then device-writable segments ``(addr, len)`` (driver addresses)."""

    head: int
    readable: tuple[tuple[int, int], ...]
    writable: tuple[tuple[int, int], ...]
    descs: tuple[int, ...]       # main-table descriptors the chain occupies
    table: int | None            # address of its indirect table, if any

    @property
    def wlen(self) -> int:
        """Device-writable bytes of the buffer (at most 2^32; the most a used ``len`` may say, §2.7.8.2)."""
        return sum(n for _, n in self.writable)


def walk_chain(head: int, size: int, indirect_ok: bool, read_desc: Callable[[int], Desc],
               read_table: Callable[[int, int], Desc], in_region: Callable[[int, int], bool]) -> Chain:
    """Walk and validate the chain at ``head``; raise ``PeerViolation`` naming the broken clause.

    ``read_desc(i)`` reads main-table entry ``i``; ``read_table(addr, j)`` reads entry ``j`` of the
    indirect table at ``addr`` (only called after ``in_region(addr, len)`` accepted the table).
    """
    w = walk_start(size, head, indirect_ok)
    readable, writable, descs, table = [], [], [], None
    for _ in range(walk_bound(size)):
        d = read_table(table, w.index) if w.in_table else read_desc(w.index)
        if not w.in_table:
            descs.append(w.index)
        sp = walk_step(CONCRETE, w, d.len, d.flags, d.next, in_region(d.addr, d.len))
        if first_failed(sp) is not None:
            apply(sp, f"descriptor {w.index} of {'the indirect table' if w.in_table else 'the ring'} (chain {head})")
        w2 = sp.new
        if w2.in_table and not w.in_table:
            table = d.addr
        else:
            (writable if d.flags & VIRTQ_DESC_F_WRITE else readable).append((d.addr, d.len))
        w = w2
        if w.done:
            return Chain(head, tuple(readable), tuple(writable), tuple(descs), table)
    raise errors.ModelBug(f"chain {head}: walk passed its bound {walk_bound(size)} (the ttl guard must stop it)")
