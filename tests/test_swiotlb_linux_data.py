"""Differential on the bytes: the model's bounce layer against the real Linux 6.1.y kernel/dma/swiotlb.c.

Model (``model/swiotlb/bounce.py`` ``Swiotlb`` and ``model/swiotlb/dma.py`` ``VirtioBounceOps``) and
the peer (``../shared/peers/linux``) get the same pool, the same initial bytes and the same operation
sequence: map, device writes into a mapping, sync_for_cpu, sync_for_device and unmap with
DMA_TO_DEVICE, DMA_FROM_DEVICE and DMA_BIDIRECTIONAL (sync and unmap also with a size smaller or
larger than the mapping's, and with another direction than the mapping's), CPU writes into the
original buffers, and on a restricted pool swiotlb_alloc / swiotlb_free (also through
``VirtioBounceOps.alloc/free`` = dma-direct: page-aligned size, memset 0).

Both sides own one flat memory of the same size and layout (the model's pool view and caller view
are windows of one bytearray; the pool is seen at another virtual address, as seed patch 2 does):

    [sentinels] [pool: START .. START + nslabs*2 KiB] [sentinels] [guard|buf0|guard|buf1|...|guard] [sentinels]

Every byte starts as the same pseudo-random pattern, so the unused pool slots, the guards before
and after each buffer and everything else are sentinels: after every step the two memories must be
equal byte for byte (pool, buffers, guards, the rest), and the slot records (list, orig_addr,
alloc_size, area used/index) equal. ``differential`` returns the first difference as text (which
op, which field or byte offset: pool slot / buffer / guard, the clause the model reported) with the
op sequence, or None: the tests assert on it, and the mutation tests call it directly.

Where Linux 6.1.y and the model disagree by design, the differential checks both halves of the
documented divergence (docs/swiotlb-bounce.md, "Byte differential"):

- D1 map FROM_DEVICE: 6.1.y bounces orig -> slot (901c7280ca0d); the model's default ``ZERO_FILL``
  zeroes the slot instead. The differential runs the model with ``LINUX_5_18`` (6.1.y's policy);
  ``test_default_zero_fill_differs_only_where_documented`` shows the default's difference.
- D2 sync past the end of the allocation: Linux warns "Buffer overflow detected" and clamps the copy
  to the allocation; the model refuses (``SWIOTLB-BOUNCE-sync-range``, nothing changes). The
  differential asserts the refusal and Linux's warning, then runs the clamped sync on the model and
  compares: the model follows the spec (refuse), Linux's clamp is reproduced by the clamped call.
- D3 unmap with another size or direction than the mapping's: Linux uses the size it is given
  (smaller: copies back fewer bytes; larger: warns and clamps to the allocation) and releases all the
  slots. The model's ``Swiotlb`` refuses (``SWIOTLB-BOUNCE-unmap-size``, dma-debug's check_unmap);
  without that record (dma-debug off) its core follows Linux for a smaller size and refuses a size
  past the allocation (``SWIOTLB-BOUNCE-unmap-size``), which is then unmapped clamped.
- D4 a sync starting in the 2nd or later slot of a mapping at an in-slot offset below orig's
  min_align offset: 6.1.y warns "Access before mapping start" and copies nothing (upstream's
  swiotlb_bounce counts from the mapping's start since 6.9); the model copies (it follows 6.9+). Linux alone runs that op; the model must
  accept it (checked on the core step) and the bytes must be unchanged on Linux.
- D5 swiotlb_free of an address the model refuses (a sub-page allocation whose page is another
  allocation's slot, or a streaming mapping, finding 2 of the peer README): Linux is not called
  (it would release whatever allocation starts at that page).
- A 6.1.y slot search that never terminates (``SWIOTLB-find-no-termination``, min_align_mask >= 0x800)
  is not run on the peer (as tests/test_swiotlb_linux.py does).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from linuxpeer import swiotlb_peer
from t1virtio import errors
from t1virtio.hyp.memview import FlatView
from t1virtio.logic import CONCRETE
from t1virtio.preset import LINUX
from t1virtio.specs import invariants
from t1virtio.step import Step, apply
from t1virtio.swiotlb import bounce as b
from t1virtio.swiotlb import dma
from t1virtio.swiotlb import pool as swpool

SLOT = 2048
PAGE = 4096
START = 0x100000                    # pool (physical = DMA address on both sides)
VBASE = 0x4000_0000                 # the model's kernel view of the pool (non-linear, seed patch 2)
NBUF, BUF, GUARD = 4, 0x12000, 256  # original buffers: 72 KiB each, 256 sentinel bytes around each
TO, FROM, BIDI = b.DMA_TO_DEVICE, b.DMA_FROM_DEVICE, b.DMA_BIDIRECTIONAL
DIRS = (TO, FROM, BIDI)
DNAME = {TO: "TO", FROM: "FROM", BIDI: "BIDI"}
SKIP = b.DMA_ATTR_SKIP_CPU_SYNC
SMALLP = replace(LINUX, name="LINUX/256", pool_nslabs=256, io_tlb_max_areas=2)   # as test_swiotlb_linux.DIFF
SIZES = (1, 100, 2047, 2048, 2049, 4096, 5000, 8192, 20000, 65536)
ALLOC_SIZES = (2048, 4096, 6000, 8192, 16384, 65536)
COVER: dict = {}
_PATTERNS: dict = {}                # memory size -> the initial pseudo-random bytes (64 MiB for LINUX)                    # (op, dir) -> how many were compared (all tests of this file)


@dataclass(frozen=True)
class Config:
    preset: object
    nslabs: int
    nareas: int = 1
    restricted: bool = False
    min_align: int = 0
    map_bounce: int = b.LINUX_5_18
    full_every: int = 1             # compare the whole memory and the records every n steps (and at the end)

    def __str__(self):
        kind = "restricted" if self.restricted else f"{self.nareas} area(s)"
        pol = "" if self.map_bounce == b.LINUX_5_18 else f", map_bounce {b.MAP_BOUNCE_NAMES[self.map_bounce]}"
        return f"{self.nslabs} slots, {kind}, min_align_mask {self.min_align:#x}{pol}"


@dataclass
class Live:
    """A live streaming mapping (both sides have it at ``tlb``: the slot choice is compared at map)."""

    tlb: int
    orig: int
    size: int
    alloc: int
    dir: int
    via_ops: bool
    op: int


@dataclass
class Coherent:
    addr: int
    size: int
    via_ops: bool
    op: int


class Mismatch(Exception):
    pass


@dataclass
class Rig:
    cfg: Config
    sp: object = None
    log: list = field(default_factory=list)
    live: list = field(default_factory=list)
    coherent: list = field(default_factory=list)

    def __post_init__(self):
        c = self.cfg
        self.pool_bytes = c.nslabs * SLOT
        self.orig_base = START + self.pool_bytes + 0x10000
        self.orig_len = NBUF * (BUF + GUARD) + GUARD
        self.size = (self.orig_base + self.orig_len + 0x10000 + PAGE - 1) // PAGE * PAGE
        pattern = _PATTERNS.get(self.size) or _PATTERNS.setdefault(self.size, random.Random(self.size).randbytes(self.size))
        self.X = bytearray(pattern)             # Linux's memory
        self.M = bytearray(pattern)             # the model's memory
        sp = self.sp
        self.mem = sp.GuestMemory(buffer=self.X)
        if c.restricted:
            self.lx = sp.Pool.restricted(self.mem, START, self.pool_bytes)
        else:
            self.lx = sp.Pool(self.mem, start=START, nslabs=c.nslabs, nareas=c.nareas)
        self.lx.set_device(min_align_mask=c.min_align, segment_boundary_mask=(1 << 64) - 1)
        # swiotlb_init_io_tlb_mem memsets the pool (the model's region is hypervisor-zeroed): check it,
        # then fill the pool with the sentinel pattern on both sides (a primary that wrote the region at boot)
        if self.X.count(0, START, START + self.pool_bytes) != self.pool_bytes:
            raise AssertionError("Linux did not zero the pool at swiotlb_init_io_tlb_mem")
        self.X[START:START + self.pool_bytes] = pattern[START:START + self.pool_bytes]
        info = self.lx.info()
        assert (info["nslabs"], info["nareas"]) == (c.nslabs, 1 if c.restricted else c.nareas), info
        swpool.register_geometry(c.preset)
        mv = memoryview(self.M)
        self.orig_view = FlatView(mv[self.orig_base:self.orig_base + self.orig_len], base=self.orig_base)
        self.sw = b.Swiotlb(c.preset, self.orig_view, map_bounce=c.map_bounce, min_align_mask=c.min_align)
        self.pool = self.sw.register_pool("restricted" if c.restricted else "default", START, c.nslabs,
                                          FlatView(mv[START:START + self.pool_bytes], base=VBASE), VBASE,
                                          1 if c.restricted else c.nareas)
        self.ops = dma.VirtioBounceOps(self.sw, self.pool, START, self.pool_bytes, dma.RESTRICTED_DMA)

    # ------------------------------------------------------------------ both sides' bytes
    def buf(self, k: int) -> int:
        return self.orig_base + GUARD + k * (BUF + GUARD)

    def write_both(self, addr: int, data: bytes) -> None:
        self.X[addr:addr + len(data)] = data
        self.M[addr:addr + len(data)] = data

    def model_pool_write(self, tlb: int, data: bytes) -> None:
        """The device writes at DMA address ``tlb`` (IPA addressing): the model's pool through its view."""
        self.pool.vview.write(self.pool.tlb_vaddr(self.ops.to_tlb(tlb, len(data))), data)

    def where(self, a: int) -> str:
        if START <= a < START + self.pool_bytes:
            s, off = divmod(a - START, SLOT)
            who = [f"mapping of op #{m.op} ({DNAME[m.dir]}, tlb {m.tlb:#x} +{a - m.tlb:#x})"
                   for m in self.live if m.tlb <= a < m.tlb + m.alloc]
            who += [f"coherent allocation of op #{c.op}" for c in self.coherent if c.addr <= a < c.addr + c.size]
            taken = self.pool.state.list[s] == 0
            return (f"pool slot {s} byte {off} (address {a:#x}; "
                    f"{', '.join(who) if who else ('taken slot' if taken else 'free slot: sentinel')})")
        if self.orig_base <= a < self.orig_base + self.orig_len:
            r = a - self.orig_base
            k, o = divmod(r - GUARD, BUF + GUARD) if r >= GUARD else (-1, r - GUARD)
            if 0 <= o < BUF:
                return f"original buffer {k} byte {o:#x} (address {a:#x})"
            return f"sentinel guard {'after' if k >= 0 else 'before'} buffer {max(k, 0)} (address {a:#x})"
        return f"sentinel outside the pool and the buffers (address {a:#x})"

    def bytes_diff(self) -> str | None:
        if self.X == self.M:
            return None
        mx, mm = memoryview(self.X), memoryview(self.M)
        step = 1 << 14
        i = next(i for i in range(0, self.size, step) if mx[i:i + step] != mm[i:i + step])
        j = next(j for j in range(i, i + step) if self.X[j] != self.M[j])
        end = j
        while end < self.size and end < j + (1 << 16) and self.X[end] != self.M[end]:
            end += 1
        return (f"bytes differ at {self.where(j)}: Linux {bytes(self.X[j:j + 8]).hex()}, model "
                f"{bytes(self.M[j:j + 8]).hex()} ({end - j} differing bytes from there)")

    def records_diff(self) -> str | None:
        s, n = self.pool.state, self.cfg.nslabs
        sl = self.lx.slots()
        orig = [None if x == swpool.INVALID_PHYS_ADDR else x for x in s.orig_addr[:n]]
        for name, mine in (("list", list(s.list[:n])), ("orig_addr", orig), ("alloc_size", list(s.alloc_size[:n]))):
            if mine != list(sl[name]):
                i = next(i for i in range(n) if mine[i] != sl[name][i])
                return f"slot record {name}[{i}] differs: Linux {sl[name][i]}, model {mine[i]}"
        areas = self.lx.areas()
        for f, mine in (("used", s.area_used), ("index", s.area_index)):
            if [a[f] for a in areas] != list(mine[:len(areas)]):
                return f"area {f} differs: Linux {[a[f] for a in areas]}, model {list(mine[:len(areas)])}"
        try:                                # (about 1 s at 32768 slots: small pools only)
            if n <= 512:
                invariants.check("swiotlb", s)
        except errors.ModelError as e:
            return f"model invariant broken: {e.clause} ({e})"
        return None

    # ------------------------------------------------------------------ Linux's warnings
    def warned(self, before: int, expect: str | None) -> None:
        count, last = self.sp.log()
        if expect is None and count != before:
            raise Mismatch(f"Linux warned unexpectedly: {last!r}")
        if expect is not None and (count == before or expect not in last):
            raise Mismatch(f"Linux did not warn {expect!r} (last: {last!r})")

    # ------------------------------------------------------------------ ops
    def run_op(self, i: int, op: tuple) -> str:
        kind = op[0]
        return getattr(self, "op_" + kind)(i, *op[1:])

    def op_map(self, i, k, off, size, extra, dir, skip, cpu):
        alloc = size + extra
        off = off % (BUF - alloc + 1)
        orig, attrs = self.buf(k) + off, SKIP if skip else 0
        via_ops = extra == 0 and not skip and size <= dma.VIRTIO_MAX_BOUNCE_SIZE
        desc = (f"map buf{k}+{off:#x} size {size} alloc {alloc} {DNAME[dir]}{' SKIP_CPU_SYNC' if skip else ''} "
                f"cpu {cpu}{' (VirtioBounceOps.map_page)' if via_ops else ''}")
        self.lx.set_cpu(cpu)
        try:
            if via_ops and cpu == 0:
                t_md = self.ops.map_page(orig, size, dir)
            else:
                via_ops = False
                t_md = self.sw.map_single(self.pool, orig, size, dir, alloc_size=alloc, attrs=attrs, cpu=cpu)
        except errors.ModelError as e:
            if e.clause in ("SWIOTLB-find-no-termination", "SWIOTLB-find-too-large"):
                return desc + f": model {e.clause}, 6.1.y would spin: Linux not called"
            if e.clause != "SWIOTLB-find-full":
                raise Mismatch(f"{desc}: model refused with {e.clause} ({e.detail})")
            t_md = None
        t_lx = self.lx.map_single(orig, size, dir, alloc_size=alloc, attrs=attrs)
        if t_lx != t_md:
            raise Mismatch(f"{desc}: slot choice differs: Linux {t_lx and hex(t_lx)}, model {t_md and hex(t_md)}")
        if t_md is None:
            return desc + ": full on both"
        self.live.append(Live(t_md, orig, size, alloc, dir, via_ops, i))
        self.cover("map", dir)
        return desc + f" -> {t_md:#x}"

    def pick(self, k):
        return self.live[k % len(self.live)] if self.live else None

    def op_dev(self, i, k, at, n, seed):
        m = self.pick(k)
        if m is None:
            return "device write: nothing mapped"
        at = at % m.alloc
        n = min(n, m.alloc - at)
        data = random.Random(seed).randbytes(n)
        self.X[m.tlb + at:m.tlb + at + n] = data        # the device, at its DMA address
        self.model_pool_write(m.tlb + at, data)
        return f"device writes {n} bytes at {m.tlb:#x}+{at:#x} (op #{m.op})"

    def op_cpu(self, i, k, off, n, seed):
        off = off % BUF
        n = min(n, BUF - off)
        self.write_both(self.buf(k) + off, random.Random(seed).randbytes(n))
        return f"cpu writes {n} bytes at buf{k}+{off:#x}"

    def _access_before_start(self, m: Live, tlb: int) -> bool:
        """6.1.y's swiotlb_bounce false positive (D4): 2nd+ slot, in-slot offset below orig's offset."""
        off = m.orig & self.cfg.min_align & (SLOT - 1)
        head = (m.tlb - off - START) // SLOT
        return (tlb - START) // SLOT > head and (tlb - START) % SLOT < off

    def op_sync(self, i, k, which, lo, nmode, nval, dmode):
        m = self.pick(k)
        if m is None:
            return "sync: nothing mapped"
        lo = lo % m.alloc
        rem = m.alloc - lo
        n = {"part": nval % (rem + 1), "end": rem, "zero": 0, "over": rem + 1 + nval % 4096}[nmode]
        dir = m.dir if dmode == "same" else dmode
        tlb = m.tlb + lo
        desc = f"sync_for_{which} {m.tlb:#x}+{lo:#x} size {n} ({nmode}) {DNAME[dir]} (op #{m.op})"
        copies = dir != (TO if which == "cpu" else FROM)
        before = self.sp.log()[0]
        model_call = self.ops.sync_single_for_cpu if which == "cpu" else self.ops.sync_single_for_device
        core = b.swiotlb_sync_single_for_cpu if which == "cpu" else b.swiotlb_sync_single_for_device
        (self.lx.sync_for_cpu if which == "cpu" else self.lx.sync_for_device)(tlb, n, dir)
        if copies and self._access_before_start(m, tlb):           # D4
            self.warned(before, "Access before mapping start")
            try:
                apply(core(CONCRETE, self.pool.state, tlb, min(n, rem), dir, self.cfg.min_align), "D4 probe")
            except errors.ModelError as e:
                raise Mismatch(f"{desc}: model refused with {e.clause} a sync 6.9+ performs ({e.detail})")
            self.cover("sync_" + which + " D4", dir)
            return desc + ": D4 Linux 6.1.y copies nothing (access before mapping start), model not run"
        self.warned(before, "Buffer overflow detected" if copies and n > rem else None)
        if n > rem:                                                   # D2
            try:                                                      # (bounce.py: dma.py would refuse
                (self.sw.sync_single_for_cpu if which == "cpu" else   # a window past the region first)
                 self.sw.sync_single_for_device)(tlb, n, dir)
            except errors.ModelError as e:
                if e.clause != "SWIOTLB-BOUNCE-sync-range":
                    raise Mismatch(f"{desc}: model refused with {e.clause}, expected SWIOTLB-BOUNCE-sync-range")
            else:
                raise Mismatch(f"{desc}: model accepted a sync past the allocation")
            desc += f": D2 model refuses SWIOTLB-BOUNCE-sync-range, Linux clamps to {rem}; model clamped"
            self.cover("sync_" + which + " D2", dir)
            n = rem
        try:
            model_call(tlb, n, dir)
        except errors.ModelError as e:
            raise Mismatch(f"{desc}: model refused with {e.clause} ({e.detail})")
        self.cover("sync_" + which + ("" if nmode in ("end", "part", "zero") and lo == 0 and n == m.alloc
                                      else " partial"), dir)
        return desc

    def op_unmap(self, i, k, smode, val, dmode, skip):
        m = self.pick(k)
        if m is None:
            return "unmap: nothing mapped"
        self.live.remove(m)
        size = {"same": m.size, "smaller": val % m.size, "larger": m.size + 1 + val % 4096}[smode]
        dir = m.dir if dmode == "same" else dmode
        attrs = SKIP if skip else 0
        desc = (f"unmap {m.tlb:#x} size {size} ({smode}, mapped {m.size}/{m.alloc}) {DNAME[dir]}"
                f"{' SKIP_CPU_SYNC' if skip else ''} (op #{m.op})")
        copies = dir != TO and not skip
        before = self.sp.log()[0]
        self.lx.unmap_single(m.tlb, size, dir, attrs)
        self.warned(before, "Buffer overflow detected" if copies and size > m.alloc else None)
        if size == m.size and dir == m.dir:
            try:
                if m.via_ops and not skip:
                    self.ops.unmap_page(m.tlb, size, dir)
                else:
                    self.sw.unmap_single(m.tlb, size, dir, attrs)
            except errors.ModelError as e:
                raise Mismatch(f"{desc}: model refused with {e.clause} ({e.detail})")
            self.cover("unmap", dir)
            return desc
        # D3: dma-debug's record refuses; then without it (the core) as Linux, clamped past the allocation
        state = self.pool.state
        try:
            self.sw.unmap_single(m.tlb, size, dir, attrs)
        except errors.ModelError as e:
            if e.clause != "SWIOTLB-BOUNCE-unmap-size":
                raise Mismatch(f"{desc}: model refused with {e.clause}, expected SWIOTLB-BOUNCE-unmap-size")
        else:
            raise Mismatch(f"{desc}: model accepted an unmap whose size/direction differs from the mapping's")
        if self.pool.state is not state:
            raise Mismatch(f"{desc}: refused unmap changed the slot records")
        self.sw.mappings.pop(m.tlb)
        if size > m.alloc:
            try:
                self.sw.unmap_single(m.tlb, size, dir, attrs)
            except errors.ModelError as e:
                if e.clause != "SWIOTLB-BOUNCE-unmap-size":
                    raise Mismatch(f"{desc}: core refused with {e.clause}, expected SWIOTLB-BOUNCE-unmap-size")
            else:
                raise Mismatch(f"{desc}: core accepted an unmap past the allocation")
            size = m.alloc
            desc += f": D3 refused, Linux clamps to {size}; model clamped"
        else:
            desc += ": D3 refused (dma-debug record); model without it"
        try:
            self.sw.unmap_single(m.tlb, size, dir, attrs)
        except errors.ModelError as e:
            raise Mismatch(f"{desc}: model refused with {e.clause} ({e.detail})")
        self.cover("unmap " + smode, dir)
        return desc

    def op_alloc(self, i, size, via_ops, cpu):
        if not self.cfg.restricted:
            return "alloc: not a restricted pool"
        desc = f"alloc {size}{' (VirtioBounceOps.alloc: dma-direct)' if via_ops else f' cpu {cpu}'}"
        lsize = (size + PAGE - 1) // PAGE * PAGE if via_ops else size
        self.lx.set_cpu(0 if via_ops else cpu)
        try:
            if via_ops:
                _, a_md = self.ops.alloc(size)
            else:
                a_md = self.sw.alloc(self.pool, size, cpu=cpu)
        except errors.ModelError as e:
            if e.clause == "SWIOTLB-find-no-termination":
                return desc + ": model SWIOTLB-find-no-termination: Linux not called"
            if e.clause != "SWIOTLB-find-full":
                raise Mismatch(f"{desc}: model refused with {e.clause} ({e.detail})")
            a_md = None
        a_lx = self.lx.alloc(lsize)
        if a_lx != a_md:
            raise Mismatch(f"{desc}: alloc address differs: Linux {a_lx and hex(a_lx)}, model {a_md and hex(a_md)}")
        if a_md is None:
            return desc + ": full on both"
        if via_ops:
            self.X[a_lx:a_lx + lsize] = bytes(lsize)          # dma_direct_alloc's memset
        self.coherent.append(Coherent(a_md, lsize, via_ops, i))
        self.cover("alloc", None)
        return desc + f" -> {a_md:#x}"

    def op_free(self, i, k):
        if not self.coherent:
            return "free: nothing allocated"
        c = self.coherent.pop(k % len(self.coherent))
        desc = f"free {c.addr:#x} size {c.size} (op #{c.op})"
        try:
            if c.via_ops:
                self.ops.free(c.addr, c.size)
            else:
                self.sw.free(c.addr, c.size)
        except errors.ModelError as e:                                  # D5
            if e.clause not in ("SWIOTLB-release-not-mapped", "SWIOTLB-BOUNCE-not-mapped"):
                raise Mismatch(f"{desc}: model refused with {e.clause} ({e.detail})")
            return desc + f": D5 model refuses {e.clause}: Linux not called"
        if not self.lx.free(c.addr, c.size):
            raise Mismatch(f"{desc}: Linux says {c.addr:#x} is not a pool page")
        self.cover("free", None)
        return desc

    def cover(self, what, dir):
        key = (what, DNAME.get(dir, "-"))
        COVER[key] = COVER.get(key, 0) + 1


def differential(cfg: Config, ops: list, sp=None) -> str | None:
    """Run ``ops`` on the model and on Linux 6.1.y from the same bytes; None, or the first difference
    (op, field or byte offset, the clause the model reported) followed by the resolved op sequence."""
    rig = Rig(cfg, sp or swiotlb_peer())
    try:
        for i, op in enumerate(ops):
            try:
                rig.log.append(f"#{i} " + rig.run_op(i, op))
            except Mismatch as e:
                rig.log.append(f"#{i} {op!r}")
                raise Mismatch(f"op #{i}: {e}") from None
            last = i == len(ops) - 1
            if last or i % cfg.full_every == 0:
                d = rig.bytes_diff() or rig.records_diff()
                if d:
                    raise Mismatch(f"after op #{i}: {d}")
        # end: unmap what is left, as the mapping's own size and direction, and compare everything
        for m in list(rig.live):
            rig.log.append("end " + rig.op_unmap(len(ops), rig.live.index(m), "same", 0, "same", False))
        d = rig.bytes_diff() or rig.records_diff()
        if d:
            raise Mismatch(f"after the final unmaps: {d}")
    except Mismatch as e:
        return f"{cfg}: {e}\nop sequence:\n  " + "\n  ".join(rig.log)
    return None


# ------------------------------------------------------------------------------------------------ ops
IDX = st.integers(0, 63)
MAP = st.tuples(st.just("map"), st.integers(0, NBUF - 1), st.integers(0, 0x3fff), st.sampled_from(SIZES),
              st.sampled_from((0, 0, 0, 1, 2048, 4096)), st.sampled_from(DIRS), st.booleans(), st.integers(0, 7))
SYNC = st.tuples(st.just("sync"), IDX, st.sampled_from(("cpu", "device")), st.integers(0, 1 << 17),
              st.sampled_from(("part", "end", "zero", "over")), st.integers(0, 1 << 17),
              st.sampled_from(("same", "same", TO, FROM, BIDI)))
OPS = st.one_of(
    MAP, SYNC, MAP, SYNC,
    st.tuples(st.just("dev"), IDX, st.integers(0, 1 << 17), st.integers(1, 5000), st.integers(0, 1 << 16)),
    st.tuples(st.just("unmap"), IDX, st.sampled_from(("same", "same", "smaller", "larger")), st.integers(0, 1 << 17),
              st.sampled_from(("same", "same", "same", TO, FROM, BIDI)), st.booleans()),
    st.tuples(st.just("cpu"), st.integers(0, NBUF - 1), st.integers(0, BUF), st.integers(1, 3000), st.integers(0, 1 << 16)),
    st.tuples(st.just("alloc"), st.sampled_from(ALLOC_SIZES), st.booleans(), st.integers(0, 3)),
    st.tuples(st.just("free"), IDX),
)
MIN_ALIGN = st.sampled_from((0, 0x3ff, 0x7ff, 0xfff))
SMALL_POOLS = st.sampled_from(((128, 1, False), (256, 2, False), (256, 1, True)))
# Shrinking is bounded by the input: at most 40 abstract ops (10 to 40: Hypothesis lists average min_size * 2), indices reduced modulo the live set, and
# no explain phase (it reruns every example); a failure here shrinks in seconds.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)


@settings(deadline=None, phases=PHASES)
@given(pool=SMALL_POOLS, min_align=MIN_ALIGN, ops=st.lists(OPS, min_size=10, max_size=40))
def test_bytes_agree_with_linux_small_pools(pool, min_align, ops):
    nslabs, nareas, restricted = pool
    cfg = Config(SMALLP, nslabs, nareas, restricted, min_align)
    msg = differential(cfg, ops)
    assert msg is None, msg


@settings(deadline=None, phases=PHASES, max_examples=max(4, settings().max_examples // 6))
@given(pool=st.sampled_from(((1, False), (8, False), (1, True))), min_align=MIN_ALIGN,
       ops=st.lists(OPS, min_size=6, max_size=20))
def test_bytes_agree_with_linux_at_the_default_pool_size(pool, min_align, ops):
    """LINUX preset: 32768 slots (64 MiB, Linux's default pool; the restricted pool of that size too)."""
    nareas, restricted = pool
    cfg = Config(LINUX, LINUX.pool_nslabs, nareas, restricted, min_align, full_every=4)
    msg = differential(cfg, ops)
    assert msg is None, msg


# ------------------------------------------------------------------------------------------------ fixed
def every_entry_point(dirs=DIRS) -> list:
    """map, device write, partial and whole syncs both ways, the sizes around the mapping's, unmap: per dir."""
    ops = []
    for d in dirs:
        ops += [("cpu", 0, 0, 3000, 1), ("map", 0, 0x123, 5000, 0, d, False, 0), ("dev", -1, 100, 700, 2),
                ("sync", -1, "cpu", 50, "part", 400, "same"), ("cpu", 0, 0x123, 2000, 3),
                ("sync", -1, "device", 10, "part", 1000, "same"), ("sync", -1, "cpu", 0, "end", 0, "same"),
                ("sync", -1, "device", 0, "end", 0, "same"), ("sync", -1, "cpu", 4000, "over", 100, "same"),
                ("sync", -1, "device", 4000, "over", 100, "same"), ("dev", -1, 0, 5000, 4),
                ("unmap", -1, "same", 0, "same", False),
                ("map", 1, 0x7ff, 8192, 0, d, False, 1), ("dev", -1, 0, 8192, 5), ("unmap", -1, "smaller", 3000, "same", False),
                ("map", 1, 0x10, 4096, 2048, d, False, 2), ("dev", -1, 0, 6144, 6), ("unmap", -1, "larger", 5000, "same", False),
                ("map", 2, 0, 100, 0, d, True, 0), ("dev", -1, 0, 100, 7), ("unmap", -1, "same", 0, "same", True)]
    return ops


@pytest.mark.parametrize("min_align", [0, 0x3ff])
def test_every_entry_point_and_direction(min_align):
    """A fixed sequence that reaches map / sync_for_cpu / sync_for_device / unmap in the three directions,
    with smaller and larger sizes; then the coherent alloc/free on a restricted pool."""
    COVER.clear()
    assert differential(Config(SMALLP, 256, 2, False, min_align), every_entry_point()) is None
    rops = [("alloc", 2048, False, 0), ("alloc", 2048, False, 0), ("map", 3, 5, 3000, 0, BIDI, False, 0),
            ("alloc", 6000, True, 0), ("free", 1), ("free", 0), ("alloc", 8192, False, 0), ("free", 0),
            ("dev", 0, 0, 3000, 9), ("unmap", 0, "same", 0, "same", False), ("alloc", 65536, True, 0)]
    assert differential(Config(SMALLP, 256, 1, True, min_align), rops) is None
    for what in ("map", "sync_cpu", "sync_cpu partial", "sync_device", "sync_device partial", "unmap",
                 "unmap smaller", "unmap larger"):
        for d in DIRS:
            assert COVER.get((what, DNAME[d]), 0) > 0, (what, DNAME[d], COVER)
    for what in ("sync_cpu D2", "sync_device D2"):
        assert any(COVER.get((what, DNAME[d])) for d in DIRS), (what, COVER)
    assert COVER[("alloc", "-")] >= 3 and COVER[("free", "-")] >= 1


def test_access_before_mapping_start_divergence():
    """D4: 6.1.y copies nothing for a sync starting in the 2nd slot below orig's min-align offset;
    the model (as 6.9+) would copy: the differential runs it on Linux only and checks the warning."""
    ops = [("map", 0, 0x200, 4096, 0, BIDI, False, 0), ("dev", 0, 0, 4096, 1),
           ("sync", 0, "cpu", SLOT - 0x300 + 0x10, "part", 500, "same")]
    COVER.clear()
    assert differential(Config(SMALLP, 128, 1, False, 0x3ff), ops) is None
    assert COVER.get(("sync_cpu D4", "BIDI")) == 1


def test_default_zero_fill_differs_only_where_documented():
    """D1: with the model's default map policy (ZERO_FILL) a FROM_DEVICE map leaves zeros in the slot
    where 6.1.y bounced the caller's bytes: the only difference, inside the mapping."""
    ops = [("map", 0, 0, 3000, 0, FROM, False, 0)]
    msg = differential(Config(SMALLP, 128, 1, False, 0, map_bounce=b.ZERO_FILL), ops)
    assert msg is not None and "pool slot 0 byte 0" in msg and "mapping of op #0 (FROM" in msg, msg
    assert differential(Config(SMALLP, 128, 1, False, 0, map_bounce=b.ZERO_FILL),
                        [("map", 0, 0, 3000, 0, TO, False, 0), ("map", 1, 0, 3000, 0, BIDI, False, 0)]) is None


# ------------------------------------------------------------------------------------------------ mutants
CFG = Config(SMALLP, 256, 2, False, 0x3ff)


def test_mutant_no_copy_back_is_caught(monkeypatch):
    """A model that drops slot -> orig copies (sync_for_cpu and unmap of FROM_DEVICE/BIDIRECTIONAL)."""
    real = b.swiotlb_bounce

    def broken(orig_view, pool, copy):
        if copy.kind != b.SLOT_TO_ORIG:
            real(orig_view, pool, copy)
    monkeypatch.setattr(b, "swiotlb_bounce", broken)
    ops = [("map", 0, 0x40, 3000, 0, FROM, False, 0), ("dev", 0, 0, 3000, 1), ("sync", 0, "cpu", 0, "end", 0, "same")]
    msg = differential(CFG, ops)
    assert msg is not None and "after op #2: bytes differ at original buffer 0 byte 0x40" in msg, msg


def test_mutant_partial_sync_wrong_length_is_caught(monkeypatch):
    """A model whose partial sync_for_device copies 16 bytes more than asked."""
    real = b.swiotlb_sync_single_for_device

    def broken(L, s, tlb_addr, size, dir, min_align_mask=0):
        sp = real(L, s, tlb_addr, size, dir, min_align_mask)
        return Step(sp.guards, sp.__dict__["new"], replace(sp.out, n=sp.out.n + 16))
    monkeypatch.setattr(b, "swiotlb_sync_single_for_device", broken)
    ops = [("map", 0, 0, 4096, 0, TO, False, 0), ("cpu", 0, 0, 4096, 1),
           ("sync", 0, "device", 100, "part", 1000, "same")]
    msg = differential(CFG, ops)
    assert msg is not None and "after op #2: bytes differ at pool slot 0 byte 1356" in msg, msg


def test_mutant_unmap_copies_back_to_device_direction_is_caught(monkeypatch):
    """A model that copies slot -> orig at unmap for TO_DEVICE too."""
    monkeypatch.setattr(b, "unmap_copy_kind", lambda L, dir, attrs: b.SLOT_TO_ORIG)
    ops = [("map", 1, 0, 2048, 0, TO, False, 0), ("dev", 0, 0, 10, 1), ("unmap", 0, "same", 0, "same", False)]
    msg = differential(CFG, ops)
    assert msg is not None and "original buffer 1 byte 0x0" in msg, msg


def test_mutant_subpage_alloc_not_page_rounded_is_caught(monkeypatch):
    """A model whose swiotlb_alloc returns the slot, not its page (6.9+'s answer under the 6.1 policy)."""
    from t1virtio.swiotlb import policy, slots
    monkeypatch.setattr(b, "swiotlb_alloc", lambda L, preset, s, size, *a, **k:
                        slots.swiotlb_alloc_slots(L, preset, s, size, 0, swpool.U64, 0, policy.V6_9))
    msg = differential(Config(SMALLP, 256, 1, True, 0), [("alloc", 2048, False, 0), ("alloc", 2048, False, 0)])
    assert msg is not None and "op #1: alloc 2048 cpu 0: alloc address differs" in msg, msg
