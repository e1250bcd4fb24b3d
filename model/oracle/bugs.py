"""Buggy implementations behind the live interface: the oracle's teeth (``tests/test_oracle_bugs.py``).

Each class recreates one historical bug class (``docs/oracle.md`` "Teeth"; the bug zoo of the project's facts,
§5, and the swiotlb history) as an ``Implementation`` (``step(op, args) -> result``, raising ``Refused``).
Most are the model itself (``ModelImplementation``) with one check removed or one choice replaced, so that
everything else conforms and the bug is the first thing the oracle sees. ``BUGGY`` lists them with the
component and the clause the oracle must catch each with; ``LEGAL`` lists implementations that make other
legal choices than the model and must never be flagged in legality mode.
"""
from __future__ import annotations

from typing import Any

from t1virtio.hyp.memview import read_le
from t1virtio.logic import CONCRETE
from t1virtio.oracle import components as comp
from t1virtio.oracle.live import ModelImplementation, Refused
from t1virtio.swiotlb import pool as swpool
from t1virtio.swiotlb import slots as swslots
from t1virtio.virtio import chain as vchain
from t1virtio.virtio import packed as pk
from t1virtio.virtio import split as sp

U64 = (1 << 64) - 1


# ------------------------------------------------------------------ the model with one thing changed

class Wrapped(ModelImplementation):
    """The model, with one behaviour replaced by ``patch(op, args) -> result | None`` (None: the model's)."""

    def step(self, op: str, a: dict) -> dict:
        r = self.patch(op, a)
        return r if r is not None else ModelImplementation.step(self, op, a)

    def patch(self, op: str, a: dict) -> dict | None:
        return None


class AcceptDespite(Wrapped):
    """Accepts ``OP`` where the model refuses it with one of ``CLAUSES`` (the check the bug left out):
    ``fake(args)`` is what the buggy implementation returns instead."""

    OP = ""
    CLAUSES: tuple = ()

    def patch(self, op: str, a: dict) -> dict | None:
        if op != self.OP:
            return None
        try:
            return ModelImplementation.step(self, op, a)
        except Refused as e:
            if e.error not in self.CLAUSES:
                raise
            obj = self.runner.obj if hasattr(self.runner, "obj") else None
            if obj is not None and getattr(obj, "broken", None):
                obj.broken = None
            return self.fake(a)

    def fake(self, a: dict) -> dict:
        return {}


# -- split device: parsing what the driver wrote (facts §5.1)

class _SplitDevicePop(AcceptDespite):
    OP = "pop_avail"

    def fake(self, a: dict) -> dict:
        r = self.runner
        return {"head": read_le(r.mem, r.layout.avail_ring_at(r.obj.state.last_avail % r.size), 2)}


class DeviceHeadUnchecked(_SplitDevicePop):
    """A split device that accepts an available head >= queue size (QEMU/vhost head validation)."""

    CLAUSES = (sp.HEAD_RANGE,)


class DeviceAvailIdxUnchecked(_SplitDevicePop):
    """A split device that trusts an avail idx more than the queue size ahead (CVE-2016-5403; vm-virtio < 0.6.1)."""

    CLAUSES = (sp.AVAIL_IDX,)


class DeviceHeadTwice(_SplitDevicePop):
    """A split device that pops a head it already holds (a chain mapped twice: CVE-2021-3748's class)."""

    CLAUSES = (sp.INUSE,)


class DeviceLoopFollowed(_SplitDevicePop):
    """A split device that follows a descriptor loop (no ttl: the vm-virtio/QEMU hang class)."""

    CLAUSES = (vchain.LOOP,)


class DeviceNextUnchecked(_SplitDevicePop):
    """A split device that follows ``next`` >= queue size (reads past the descriptor table)."""

    CLAUSES = (vchain.NEXT_RANGE,)


class DeviceTotalLenOverflow(_SplitDevicePop):
    """A split device whose chain length sum overflows (more than 2^32 bytes; OpenBSD vmd / Firecracker class)."""

    CLAUSES = (vchain.TOTAL_LEN,)


class DeviceRegionUnchecked(_SplitDevicePop):
    """A split device that maps a buffer outside the shared region (a Type-1 isolation break)."""

    CLAUSES = (vchain.IN_REGION,)


class DeviceLenUnchecked(AcceptDespite):
    """A split device that publishes a used len above the buffer's writable bytes."""

    OP, CLAUSES = "add_used", (sp.DEV_LEN,)


class DeviceUsedNotHeld(AcceptDespite):
    """A split device that publishes a used id it does not hold (a buffer never made available)."""

    OP, CLAUSES = "add_used", (sp.HELD,)


class DeviceNeverNotifies(Wrapped):
    """A split device that never sends a used-buffer notification (lost notification, facts §5.3)."""

    def patch(self, op: str, a: dict) -> dict | None:
        if op == "need_notify":
            ModelImplementation.step(self, op, a)
            return {"notify": False}
        return None


class DeviceEventIdxOffByOne(Wrapped):
    """With EVENT_IDX, a split device that notifies only when ``used_event`` equals the new used idx (not the
    window ``[old, new)``: cloud-hypervisor PR #897's too-narrow window, facts §5.3)."""

    def patch(self, op: str, a: dict) -> dict | None:
        if op == "need_notify":
            r = self.runner
            ev = read_le(r.mem, r.layout.used_event(), 2)
            new = r.obj.state.used_idx
            ModelImplementation.step(self, op, a)
            return {"notify": ev == new}
        return None


# -- split driver: the device is hostile (facts §5.2)

class _SplitDriverGet(AcceptDespite):
    OP = "get_used"

    def fake(self, a: dict) -> dict:
        r = self.runner
        at = r.layout.used_elem_at(r.obj.state.last_used % r.size)
        return {"id": read_le(r.mem, at, 4), "len": read_le(r.mem, at + 4, 4)}


class DriverIdUnchecked(_SplitDriverGet):
    """A split driver that takes back a used id that is not in flight."""

    CLAUSES = (sp.USED_ID,)


class DriverLenUnchecked(_SplitDriverGet):
    """A split driver that accepts a used len above the buffer's writable bytes (CVE-2021-47352)."""

    CLAUSES = (sp.USED_LEN,)


class DriverUsedIdxUnchecked(_SplitDriverGet):
    """A split driver that trusts a used idx running past the buffers in flight."""

    CLAUSES = (sp.USED_IDX,)


class DriverReadsPastUsedIdx(_SplitDriverGet):
    """A split driver that reads the used entry at last_used before the device published it (used idx)."""

    CLAUSES = (sp.USED_EMPTY,)


class DriverNeverKicks(Wrapped):
    """A split driver that never notifies the device (lost available-buffer notification)."""

    def patch(self, op: str, a: dict) -> dict | None:
        if op == "kick_prepare":
            ModelImplementation.step(self, op, a)
            return {"kick": False}
        return None


class DriverKickEventOffByOne(Wrapped):
    """With EVENT_IDX, a split driver that kicks only if ``avail_event`` names the last buffer it added (not any
    in the window it published since the last kick): a lost kick after a batch."""

    def patch(self, op: str, a: dict) -> dict | None:
        if op == "kick_prepare":
            r = self.runner
            ev = read_le(r.mem, r.layout.avail_event(), 2)
            new = r.obj.state.avail_idx
            ModelImplementation.step(self, op, a)
            return {"kick": ev == (new - 1) & 0xFFFF}
        return None


# -- packed driver

class _PackedDriverGet(AcceptDespite):
    OP = "get_used"

    def fake(self, a: dict) -> dict:
        r = self.runner
        raw = pk.read_desc(r.mem, r.layout.desc + pk.DESC_SIZE * r.obj.state.last_used)
        return {"id": raw.id, "len": raw.len if raw.flags & pk.VIRTQ_DESC_F_WRITE else 0}


class PackedWrapIgnored(Wrapped):
    """A packed driver that reads a descriptor as used from its AVAIL/USED bits being equal, ignoring the wrap
    counter (the Linux 1acfe2c12258 class of wrap-counter confusion)."""

    def patch(self, op: str, a: dict) -> dict | None:
        if op == "get_used":
            try:
                return ModelImplementation.step(self, op, a)
            except Refused as e:
                if e.error != "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#used-flags":
                    raise
                r = self.runner
                s = r.obj.state
                raw = pk.read_desc(r.mem, r.layout.desc + pk.DESC_SIZE * s.last_used)
                av, us = bool(raw.flags & pk.VIRTQ_DESC_F_AVAIL), bool(raw.flags & pk.VIRTQ_DESC_F_USED)
                if av == us and raw.id < r.size and s.ndesc[raw.id]:
                    return {"id": raw.id, "len": raw.len if raw.flags & pk.VIRTQ_DESC_F_WRITE else 0}
                raise
        return None


class PackedDriverUsedIdUnchecked(_PackedDriverGet):
    """A packed driver that takes back a used buffer id outside the queue (no id range check)."""

    CLAUSES = (pk.USED_ID_RANGE,) if hasattr(pk, "USED_ID_RANGE") else ("VIRTIO/model/packed/ids#used-id-range",)


class PackedDriverUsedIdNotOutstanding(_PackedDriverGet):
    """A packed driver that takes back a used buffer id it has not made available."""

    CLAUSES = ("VIRTIO/model/packed/ids#used-id-not-outstanding",)


class PackedDriverUsedLenUnchecked(_PackedDriverGet):
    """A packed driver that accepts a used len above the buffer's writable bytes (CVE-2021-47352, packed)."""

    CLAUSES = ("VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#used-len",)


class PackedDriverIdReuse(Wrapped):
    """A packed driver that hands out buffer id 0 again while it is still in flight."""

    def patch(self, op: str, a: dict) -> dict | None:
        if op == "add" and self.runner.obj.state.ndesc[0]:
            if not (a.get("out") or a.get("in")):
                return None
            ModelImplementation.step(self, op, a)
            return {"id": 0}
        return None


class PackedDriverNeverKicks(Wrapped):
    """A packed driver that never notifies the device (lost notification)."""

    def patch(self, op: str, a: dict) -> dict | None:
        if op == "kick_prepare":
            ModelImplementation.step(self, op, a)
            return {"kick": False}
        return None


# -- packed device

class _PackedDevicePop(AcceptDespite):
    OP = "pop"

    def fake(self, a: dict) -> dict:
        r = self.runner
        raw = pk.read_desc(r.mem, r.layout.desc + pk.DESC_SIZE * r.obj.state.next_avail)
        return {"id": raw.id}


class PackedDeviceWrapIgnored(_PackedDevicePop):
    """A packed device that takes a descriptor as available when AVAIL != USED, ignoring its wrap counter."""

    CLAUSES = (pk.NOTHING_AVAILABLE,)

    def fake(self, a: dict) -> dict:
        r = self.runner
        raw = pk.read_desc(r.mem, r.layout.desc + pk.DESC_SIZE * r.obj.state.next_avail)
        if bool(raw.flags & pk.VIRTQ_DESC_F_AVAIL) == bool(raw.flags & pk.VIRTQ_DESC_F_USED):
            raise Refused(pk.NOTHING_AVAILABLE)
        return {"id": raw.id}


class PackedDeviceIdUnchecked(_PackedDevicePop):
    """A packed device that accepts a buffer id outside the queue (indexes its per-id table out of bounds)."""

    CLAUSES = (pk.ID_RANGE,)


class PackedDeviceIdTwice(_PackedDevicePop):
    """A packed device that pops a buffer id already in flight (a buffer mapped twice: CVE-2021-3748's class)."""

    CLAUSES = ("VIRTIO/model/packed/ids#id-in-flight",)


class PackedDevicePushNotHeld(AcceptDespite):
    """A packed device that marks used an id it does not hold."""

    OP, CLAUSES = "push_used", ("VIRTIO/model/packed/device#not-in-flight",)


class PackedDeviceLenUnchecked(AcceptDespite):
    """A packed device that reports a used len above the buffer's writable bytes."""

    OP, CLAUSES = "push_used", ("VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#len-beyond-writable",)


class PackedDeviceNeverNotifies(Wrapped):
    """A packed device that never notifies the driver (lost used-buffer notification)."""

    def patch(self, op: str, a: dict) -> dict | None:
        if op == "need_notify":
            ModelImplementation.step(self, op, a)
            return {"notify": False}
        return None


# -- msgq

class LifoQueue(Wrapped):
    """A message queue that returns the newest message first."""

    def __init__(self, header: dict, memory: Any = None):
        super().__init__(header, memory)
        self.msgs: list = []

    def patch(self, op: str, a: dict) -> dict | None:
        if op == "send":
            r = ModelImplementation.step(self, op, a)
            self.msgs.append(a["hex"])
            return r
        if op == "receive" and len(self.msgs) >= 2:
            ModelImplementation.step(self, op, a)
            self.msgs.pop(0)
            m = self.msgs.pop()
            self.msgs.insert(0, m)
            return {"hex": m, "not_empty": bool(self.msgs)}
        if op == "receive" and self.msgs:
            self.msgs.pop(0)
        if op == "flush":
            self.msgs.clear()
        return None


class OversizeQueue(Wrapped):
    """A message queue that accepts a message longer than max_size (and drops it)."""

    def patch(self, op: str, a: dict) -> dict | None:
        if op == "send" and len(a["hex"]) // 2 > self.runner.q.state.max_size:
            return {"not_full": True}
        return None


class SizeOffByOneQueue(Wrapped):
    """A message queue whose size check is ``>`` one too late: it accepts exactly max_size + 1 bytes (and drops
    the last byte)."""

    def patch(self, op: str, a: dict) -> dict | None:
        m = self.runner.q.state.max_size
        if op == "send" and len(a["hex"]) // 2 == m + 1:
            return ModelImplementation.step(self, op, dict(a, hex=a["hex"][: 2 * m]))
        return None


class SizeOffByOneShortQueue(Wrapped):
    """A message queue whose size check is ``>=``: it refuses a message of exactly max_size bytes."""

    def patch(self, op: str, a: dict) -> dict | None:
        if op == "send" and len(a["hex"]) // 2 == self.runner.q.state.max_size:
            raise Refused("HYP-MSGQ-size")
        return None


class OverflowQueue(Wrapped):
    """A message queue that accepts a send when full (and drops the message)."""

    def patch(self, op: str, a: dict) -> dict | None:
        try:
            return ModelImplementation.step(self, op, a) if op == "send" else None
        except Refused as e:
            if e.error != "HYP-MSGQ-full":
                raise
            return {"not_full": False}


class NotFullThresholdQueue(Wrapped):
    """A message queue reporting not_full by the send threshold (``count < notfull_thd``) instead of the depth."""

    def patch(self, op: str, a: dict) -> dict | None:
        if op == "send":
            r = ModelImplementation.step(self, op, a)
            s = self.runner.q.state
            return {"not_full": s.count < s.notfull_thd}
        return None


class FlushKeepsQueue(Wrapped):
    """A message queue whose flush forgets to empty it (the next receive returns a flushed message)."""

    def __init__(self, header: dict, memory: Any = None):
        super().__init__(header, memory)
        self.shadow = ModelImplementation(header)

    def step(self, op: str, a: dict) -> dict:
        if op == "flush":
            return ModelImplementation.step(self, op, a)       # the model empties; the shadow keeps its messages
        if op == "receive":
            try:
                return self.shadow.step(op, a)
            finally:
                try:
                    ModelImplementation.step(self, op, a)
                except Refused:
                    pass
        r = ModelImplementation.step(self, op, a)
        try:
            self.shadow.step(op, a)
        except Refused:
            pass
        return r


# ------------------------------------------------------------------ swiotlb: a first-fit pool of its own

class FirstFitPool:
    """A legal swiotlb allocator of its own (not the model's search): the first free run, lowest slot first,
    that satisfies every constraint of the legality rules (one segment, the alignments, the DMA window).
    Subclasses drop one constraint (the bug) or change the search order (a legal choice)."""

    ORDER = 1
    SEGMENTS = ALIGN = MIN_ALIGN = BOUNDARY = True

    def __init__(self, header: dict, memory: Any = None):
        self.r = comp.SwiotlbRunner(header)

    def candidates(self, n: int) -> range:
        N = self.r.nslabs
        return range(N - 1, -1, -1) if self.ORDER < 0 else range(N)

    def fits(self, i: int, n: int, orig: int, total: int, a: dict, off: int) -> bool:
        from t1virtio.specs.rules import swiotlb as rsw
        r, P = self.r, self.r.preset
        s = r.pool.state
        if i + n > r.nslabs or n < 1:
            return False
        if self.SEGMENTS and i // P.io_tlb_segsize != (i + n - 1) // P.io_tlb_segsize:
            return False
        if not all(s.list[k] != 0 for k in range(i, i + n)):      # every slot free (list[k] > 0)
            return False
        aa, mm = a.get("alloc_align_mask", 0), a.get("min_align_mask", 0)
        addr = swpool.compute_slot_addr(CONCRETE, r.start, i)      # the parts of rules.swiotlb.is_aligned_run
        min_ok = orig == 0 or ((addr + off) & mm) == (orig & mm)
        page_ok = not (aa == 0 and mm == 0 and total >= P.page_size) or (addr & (P.page_size - 1)) == 0
        if (self.MIN_ALIGN and not min_ok) or (self.ALIGN and not ((addr & aa) == 0 and page_ok)):
            return False
        bm = a.get("boundary_mask", U64)
        if self.BOUNDARY and bm != U64:
            w = rsw.window_bytes(CONCRETE, bm)
            addr = swpool.compute_slot_addr(CONCRETE, r.start, i)
            if (addr & (w - 1)) + n * swpool.IO_TLB_SIZE > w:
                return False
        return True

    def step(self, op: str, a: dict) -> dict:
        r = self.r
        args = comp.check_args(r.OPS[op], a, op, r.max_items)
        P, old, pol = r.preset, r.pool.state, r.policy
        if op == "release":
            err, res = r.exact("release", args)
            if err:
                raise Refused(err)
            return self.released(args, res)
        if op == "map":
            alloc_size = args["mapping_size"] if args["alloc_size"] is None else args["alloc_size"]
            st = swslots.swiotlb_tbl_map_slots(CONCRETE, P, old, args["orig_addr"], args["mapping_size"], alloc_size,
                                               args["alloc_align_mask"], args["min_align_mask"], args["boundary_mask"],
                                               args["cpu"], pol)
            off = swpool.swiotlb_align_offset(CONCRETE, args["orig_addr"], args["min_align_mask"]) if pol.uses_min_align else 0
            orig, total = args["orig_addr"], (alloc_size + off) & U64
        else:
            st = swslots.swiotlb_alloc_slots(CONCRETE, P, old, args["size"], args["min_align_mask"], args["boundary_mask"],
                                             args["cpu"], pol)
            off, orig, total = 0, 0, args["size"]
        clause = swslots.first_failed(st) if hasattr(swslots, "first_failed") else _first_failed(st)
        if clause is not None and comp.kind_of(clause) != "exhausted":
            raise Refused(clause)                 # a caller error: refused as the model does
        n = swpool.nr_slots(CONCRETE, total)
        for i in self.candidates(n):
            if self.fits(i, n, orig, total, args, off):
                base = swpool.compute_slot_addr(CONCRETE, r.start, i)
                res = ({"tlb_addr": self.tlb(base, off), "slot": i} if op == "map" else {"addr": self.addr(base, args), "slot": i})
                try:
                    r.legal(op, args, None, res, None)
                except comp.Flag:
                    pass                          # the bug: the oracle flags it; the run ends there
                return res
        raise Refused("ENOMEM")

    def tlb(self, base: int, off: int) -> int:
        return base + off

    def addr(self, base: int, a: dict) -> int:
        return base

    def released(self, args: dict, res: dict) -> dict:
        return res


def _first_failed(st: Any) -> Any:
    from t1virtio.step import first_failed
    return first_failed(st)


class LastFitPool(FirstFitPool):
    """A legal allocator with another choice than Linux's: the last free run that satisfies every constraint."""

    ORDER = -1


class SegmentCrossingPool(FirstFitPool):
    """First-fit ignoring segment boundaries (a run across two segments: the seed series' list[] not clamped)."""

    SEGMENTS = False


class DoubleSlotPool(FirstFitPool):
    """Hands out slot 0 every time (the 6.3-6.8 double allocation, in its crudest form)."""

    def fits(self, i: int, n: int, orig: int, total: int, a: dict, off: int) -> bool:
        return i == 0


class UnalignedPool(FirstFitPool):
    """Ignores page alignment and alloc_align_mask (6.3-6.8 ``swiotlb_alloc`` skipped the alignment test)."""

    ALIGN = False


class MinAlignLostPool(FirstFitPool):
    """Keeps the min_align_mask offset out of the slot choice: the low bits NVMe relies on are lost
    (the 5.12-era min_align_mask bugs: 1f221a0d0dbf, 5f89468e2f06)."""

    MIN_ALIGN = False


class BoundaryIgnoredPool(FirstFitPool):
    """Ignores the device's DMA segment boundary (boundary_mask): a run crosses the window."""

    BOUNDARY = False


class ReleaseWrongSizePool(FirstFitPool):
    """Releases one slot whatever the allocation's size (trusting a size, not the per-slot record: the seed
    series' ``swiotlb_free``)."""

    def released(self, args: dict, res: dict) -> dict:
        return {"nslots": 1}


class DoubleReleasePool(FirstFitPool):
    """Accepts a release of an address that is not mapped (a double unmap goes unnoticed)."""

    def step(self, op: str, a: dict) -> dict:
        try:
            return FirstFitPool.step(self, op, a)
        except Refused as e:
            if op == "release" and e.error == "SWIOTLB-release-not-mapped":
                return {"nslots": 1}
            raise


class TlbOffsetPool(FirstFitPool):
    """Adds the in-slot offset twice (tlb_addr = slot + 2 * offset; 5.16's min_align_mask offset fixes)."""

    def tlb(self, base: int, off: int) -> int:
        return base + 2 * off if off else base + 64


class AllocOverlapPool(FirstFitPool):
    """A coherent alloc returning the page around its slot (6.3-6.8 ``swiotlb_alloc``: ``phys_to_page`` of an
    unaligned slot): the buffer starts inside the previous allocation."""

    def addr(self, base: int, a: dict) -> int:
        return base - 2048 if (base - self.r.start) % 4096 else base


class DriverDescriptorInUse(Wrapped):
    """A split driver whose free list hands out a descriptor still in flight (a corrupted free list)."""

    def patch(self, op: str, a: dict) -> dict | None:
        if op != "add_buf":
            return None
        s = self.runner.obj.state
        busy = [i for i in range(self.runner.size) if s.in_use[i]]
        if not busy or not (a.get("out") or a.get("in")):
            return None
        r = ModelImplementation.step(self, op, a)
        return {"head": r["head"], "descs": [r["head"]] + busy[:1] + r["descs"][1:-1]} if len(r["descs"]) > 1 else \
            {"head": busy[0], "descs": [busy[0]]}


BUGGY: list[tuple[type, str, str, str]] = [  # (implementation, component, clause, the bug class it recreates)
    (SegmentCrossingPool, "swiotlb", "SWIOTLB-find-rule", "seed series: a run off the segment"),
    (DoubleSlotPool, "swiotlb", "SWIOTLB-find-rule", "6.3-6.8 double allocation (04867a7a3332)"),
    (UnalignedPool, "swiotlb", "SWIOTLB-find-align-rule", "6.3-6.8 swiotlb_alloc skipped alignment"),
    (MinAlignLostPool, "swiotlb", "SWIOTLB-find-align-rule", "min_align_mask offset lost (NVMe)"),
    (BoundaryIgnoredPool, "swiotlb", "SWIOTLB-find-boundary-rule", "DMA boundary ignored"),
    (ReleaseWrongSizePool, "swiotlb", "SWIOTLB-release-rule", "release of a wrong size (seed swiotlb_free)"),
    (DoubleReleasePool, "swiotlb", "SWIOTLB-release-not-mapped", "double unmap accepted"),
    (TlbOffsetPool, "swiotlb", "SWIOTLB-map-rule", "tlb_addr offset applied twice"),
    (AllocOverlapPool, "swiotlb", "SWIOTLB-alloc-rule", "6.3-6.8 alloc returns the page around its slot"),
    (DeviceHeadUnchecked, "split_device", sp.HEAD_RANGE, "head >= queue size followed"),
    (DeviceAvailIdxUnchecked, "split_device", sp.AVAIL_IDX, "avail idx jump (CVE-2016-5403, vm-virtio #196)"),
    (DeviceHeadTwice, "split_device", sp.INUSE, "a chain mapped twice (CVE-2021-3748 class)"),
    (DeviceLoopFollowed, "split_device", vchain.LOOP, "descriptor loop followed (CVE-2016-6490 class)"),
    (DeviceNextUnchecked, "split_device", vchain.NEXT_RANGE, "next >= size followed"),
    (DeviceTotalLenOverflow, "split_device", vchain.TOTAL_LEN, "chain length overflow (OpenBSD vmd, CVE-2019-18960)"),
    (DeviceRegionUnchecked, "split_device", vchain.IN_REGION, "buffer outside the shared region"),
    (DeviceLenUnchecked, "split_device", sp.DEV_LEN, "used len above the writable bytes"),
    (DeviceUsedNotHeld, "split_device", sp.HELD, "used id never made available"),
    (DeviceNeverNotifies, "split_device", "VIRTIO/device/Virtqueues/Used Buffer Notification Suppression#notify",
     "lost used notification (ACRN #2623, SPDK #3178)"),
    (DeviceEventIdxOffByOne, "split_device", "VIRTIO/device/Virtqueues/Used Buffer Notification Suppression#notify",
     "used_event window too narrow (cloud-hypervisor #897)"),
    (DriverIdUnchecked, "split_driver", sp.USED_ID, "used id not validated (BAD_RING)"),
    (DriverLenUnchecked, "split_driver", sp.USED_LEN, "used len trusted (CVE-2021-47352)"),
    (DriverUsedIdxUnchecked, "split_driver", sp.USED_IDX, "used idx jump trusted"),
    (DriverReadsPastUsedIdx, "split_driver", sp.USED_EMPTY, "used entry read before its idx"),
    (DriverDescriptorInUse, "split_driver", "VIRTIO/model/driver#alloc", "free list hands out a busy descriptor"),
    (DriverNeverKicks, "split_driver", "VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression#notify",
     "lost kick"),
    (DriverKickEventOffByOne, "split_driver", "VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression#notify",
     "kick without the event_idx window (cloud-hypervisor #2179 class)"),
    (PackedWrapIgnored, "packed_driver", "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#used-flags",
     "driver ignoring the wrap counter (1acfe2c12258 class)"),
    (PackedDriverUsedIdUnchecked, "packed_driver", "VIRTIO/model/packed/ids#used-id-range", "used id out of range"),
    (PackedDriverUsedIdNotOutstanding, "packed_driver", "VIRTIO/model/packed/ids#used-id-not-outstanding",
     "used id not in flight"),
    (PackedDriverUsedLenUnchecked, "packed_driver",
     "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#used-len", "used len trusted (packed)"),
    (PackedDriverIdReuse, "packed_driver", "VIRTIO/model/packed/driver#id-in-use", "an id reused while in flight"),
    (PackedDriverNeverKicks, "packed_driver", "VIRTIO/model/packed/events#kick-rule", "lost kick (packed)"),
    (PackedDeviceWrapIgnored, "packed_device", pk.NOTHING_AVAILABLE, "device ignoring the wrap counter"),
    (PackedDeviceIdUnchecked, "packed_device", pk.ID_RANGE, "buffer id out of range"),
    (PackedDeviceIdTwice, "packed_device", "VIRTIO/model/packed/ids#id-in-flight", "an id popped twice"),
    (PackedDevicePushNotHeld, "packed_device", "VIRTIO/model/packed/device#not-in-flight", "used id not held"),
    (PackedDeviceLenUnchecked, "packed_device",
     "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#len-beyond-writable", "used len too large"),
    (PackedDeviceNeverNotifies, "packed_device", "VIRTIO/model/packed/events#notify-rule", "lost notification (packed)"),
    (LifoQueue, "msgq", "HYP-MSGQ-receive-rule", "not FIFO"),
    (OversizeQueue, "msgq", "HYP-MSGQ-size", "no size limit"),
    (SizeOffByOneQueue, "msgq", "HYP-MSGQ-size", "size limit off by one (accepts max + 1)"),
    (SizeOffByOneShortQueue, "msgq", comp.HONEST, "size limit off by one (refuses max)"),
    (OverflowQueue, "msgq", "HYP-MSGQ-full", "a send to a full queue accepted"),
    (NotFullThresholdQueue, "msgq", "HYP-MSGQ-send-rule", "not_full from the threshold, not the depth"),
    (FlushKeepsQueue, "msgq", "HYP-MSGQ-empty", "flush does not empty"),
]

FEATURES = {DeviceEventIdxOffByOne: {"event_idx": True}, DriverKickEventOffByOne: {"event_idx": True}}

LEGAL: list[tuple[type, str]] = [(LastFitPool, "swiotlb")]
