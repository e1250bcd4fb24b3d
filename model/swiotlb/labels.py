"""Information-flow labels: the origin of every byte of guest memory (DESIGN.md §4, facts §1.8).

A ``Shadow`` keeps one label per byte of each tracked region (the secondary's private memory, each
shared region). ``LabeledView`` wraps any ``MemoryView`` window of a region: ``read`` returns
``LabeledBytes`` (bytes that carry their labels) and ``write`` stores the labels of what it is
given, so labels travel with the very copies the code under test makes. Data that carries no
labels gets the view's *fresh* label: the device's view marks it device-written, the secondary's
bounce code may only write zeros (``FILL``); anything else is ``UNTRACKED``, always a finding.

Origins (``Label.kind``):

- ``ZERO``: never written since the hypervisor zeroed the region;
- ``PRIVATE``: a byte of the secondary's buffer ``owner`` as the caller wrote it (``gen``-th write);
- ``DEVICE``: written by the primary (the device) at logical time ``time``;
- ``FILL``: zeros written by the secondary's swiotlb code at ``time`` (zero-fill policy, coherent
  allocations): derived from no secret;
- ``COHERENT``: written by the secondary into coherent (ring) memory ``owner``: exported by design;
- ``UNTRACKED``: written with data the labels cannot trace.

The checks a machine runs after each step (``exported_only``, ``received_from``) and the per-policy
leak table (``leak_report``, computed by running ``scenarios``) are here too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from t1virtio import errors

ZERO, PRIVATE, DEVICE, FILL, COHERENT, UNTRACKED = "zero", "private", "device", "fill", "coherent", "untracked"

NO_STALE = "SWIOTLB-BOUNCE-no-stale"
NO_EXPORT = "SWIOTLB-BOUNCE-no-export"


@dataclass(frozen=True, slots=True)
class Label:
    """The origin of one byte."""

    kind: str
    owner: int = 0      # PRIVATE: caller buffer id; COHERENT: allocation id
    gen: int = 0        # PRIVATE: how many times the caller had written that buffer
    time: int = 0       # DEVICE, FILL, COHERENT: logical time of the write


class LabeledBytes(bytes):
    """Bytes read through a ``LabeledView``: ``labels[i]`` is the label id of byte ``i``."""

    labels: list[int]

    def __new__(cls, data: bytes, labels: list[int]) -> "LabeledBytes":
        obj = super().__new__(cls, data)
        obj.labels = labels
        return obj

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return LabeledBytes(bytes.__getitem__(self, key), self.labels[key])
        return bytes.__getitem__(self, key)


class Shadow:
    """Labels of every byte of the tracked regions, the logical clock and the exported set."""

    def __init__(self) -> None:
        self.table: list[Label] = []
        self.ids: dict[Label, int] = {}
        self.regions: dict[str, list[int]] = {}
        self.clock = 0
        self.exported: set[int] = set()      # label ids the secondary deliberately exported
        self.received: list[tuple[str, int, list[int]]] = []   # (region, offset, labels) the bounce code wrote
        self.dirty: dict[str, list[tuple[int, int]]] = {}     # ranges written since the last exported_only

    def intern(self, label: Label) -> int:
        """Return the id of ``label`` (ids are dense, stable for the shadow's life)."""
        i = self.ids.get(label)
        if i is None:
            i = self.ids[label] = len(self.table)
            self.table.append(label)
        return i

    def label(self, i: int) -> Label:
        return self.table[i]

    def add_region(self, name: str, size: int) -> None:
        """Track ``size`` bytes named ``name``, all ``ZERO`` (the hypervisor zeroes new memory)."""
        self.regions[name] = [self.intern(Label(ZERO))] * size

    def tick(self) -> int:
        """Advance and return the logical clock (one tick per machine step)."""
        self.clock += 1
        return self.clock

    def set(self, region: str, off: int, labels: list[int]) -> None:
        self.regions[region][off:off + len(labels)] = labels
        self.dirty.setdefault(region, []).append((off, len(labels)))

    def get(self, region: str, off: int, n: int) -> list[int]:
        return self.regions[region][off:off + n]

    def export(self, region: str, off: int, n: int) -> None:
        """Record that the secondary exported the bytes now at ``region[off:off+n]`` (TO_DEVICE intent)."""
        self.exported.update(self.get(region, off, n))

    def drain_received(self) -> list[tuple[str, int, list[int]]]:
        """Return and forget what the bounce code wrote into tracked private memory since the last drain."""
        out, self.received = self.received, []
        return out


class LabeledView:
    """A ``MemoryView`` over ``inner`` whose addresses ``[base, base+size)`` are bytes of ``region``.

    ``fresh(data)`` labels written data that carries no labels. ``log`` records every write into the
    shadow's ``received`` list (set for the secondary's private memory: what the caller receives).
    """

    def __init__(self, inner: Any, shadow: Shadow, region: str, base: int,
                 fresh: Callable[[bytes], Label], log: bool = False):
        self.inner, self.shadow, self.region, self.base = inner, shadow, region, base
        self.fresh, self.log = fresh, log

    def read(self, addr: int, n: int) -> bytes:
        data = self.inner.read(addr, n)
        return LabeledBytes(data, self.shadow.get(self.region, addr - self.base, n))

    def write(self, addr: int, data: bytes) -> None:
        self.inner.write(addr, data)
        labels = data.labels if isinstance(data, LabeledBytes) and len(data.labels) == len(data) \
            else [self.shadow.intern(self.fresh(bytes(data)))] * len(data)
        self.shadow.set(self.region, addr - self.base, labels)
        if self.log:
            self.shadow.received.append((self.region, addr - self.base, labels))

    def write_as(self, addr: int, data: bytes, label: Label) -> None:
        """Write ``data`` with an explicit origin (the caller filling its own buffer, the device)."""
        self.inner.write(addr, data)
        self.shadow.set(self.region, addr - self.base, [self.shadow.intern(label)] * len(data))


def code_fresh(shadow: Shadow) -> Callable[[bytes], Label]:
    """Fresh labels for the secondary's swiotlb code: zeros are ``FILL``, anything else ``UNTRACKED``."""
    return lambda data: Label(FILL, time=shadow.clock) if not any(data) else Label(UNTRACKED, time=shadow.clock)


def device_fresh(shadow: Shadow) -> Callable[[bytes], Label]:
    """Fresh labels for the primary: every byte it writes is device-written now."""
    return lambda data: Label(DEVICE, time=shadow.clock)


def acceptable_for_caller(label: Label, owner: int, since: int) -> bool:
    """Whether buffer ``owner`` may receive a byte labelled ``label`` from a mapping made at ``since``.

    Its own bytes, zeros, and what the device wrote during this mapping's life; never bytes of an
    earlier mapping (another buffer's, an earlier device write, ring memory): CVE-2022-0854.
    """
    if label.kind in (ZERO, FILL):
        return True
    if label.kind == PRIVATE:
        return label.owner == owner
    if label.kind == DEVICE:
        return label.time >= since
    return False


def received_from(shadow: Shadow, labels: list[int], owner: int, since: int, where: str,
                  own: frozenset | set = frozenset()) -> None:
    """Raise ``SWIOTLB-BOUNCE-no-stale`` if the caller buffer ``owner`` received a stale byte.

    ``own`` are label ids the buffer itself held when it was bounced to the slot (at map or
    sync_for_device): getting them back is no leak, whatever their origin.
    """
    for i in set(labels) - set(own):
        lab = shadow.label(i)
        if not acceptable_for_caller(lab, owner, since):
            raise errors.fail(NO_STALE, f"{where}: byte {labels.index(i)} of buffer {owner} came from {lab} "
                                        f"(mapping made at time {since})")


def observable_ok(shadow: Shadow, i: int) -> bool:
    """Whether the primary may observe a byte with label id ``i``: exported, device's own, or content-free."""
    lab = shadow.label(i)
    if lab.kind in (ZERO, FILL, DEVICE, COHERENT):
        return True
    return lab.kind == PRIVATE and i in shadow.exported


def exported_only(shadow: Shadow, region: str) -> None:
    """Raise ``SWIOTLB-BOUNCE-no-export`` if the shared ``region`` holds a byte the secondary never exported.

    Only bytes written since the last call are looked at: a byte that was observable stays so (exports
    are never withdrawn), and the region starts all ``ZERO``.
    """
    labels = shadow.regions[region]
    for off, n in shadow.dirty.pop(region, []):
        for i in set(labels[off:off + n]):
            if not observable_ok(shadow, i):
                k = off + labels[off:off + n].index(i)
                raise errors.fail(NO_EXPORT, f"{region}+{k:#x} holds {shadow.label(i)}, which the secondary never exported")


# ---------------------------------------------------------------------------------------------
# A labelled system: one secondary, its pools in its shared region, the primary as the device

class RemapView:
    """A kernel virtual window over IPAs (``memremap``): address ``va`` is IPA ``va - delta`` (seed patch 2)."""

    def __init__(self, inner: Any, delta: int):
        self.inner, self.delta = inner, delta

    def read(self, addr: int, n: int) -> bytes:
        return self.inner.read(addr - self.delta, n)

    def write(self, addr: int, data: bytes) -> None:
        self.inner.write(addr - self.delta, data)


SECONDARY = 1
PRIVATE_PAGES = 6                  # the secondary's private memory (caller buffers)
SHARED_PAGES = 16                  # its shared region: 32 slots of 2 KiB
REGION_VA = 0xffff_8000_4000_0000  # where the secondary's kernel memremaps the region


_BOOTED: list = []


def booted_hypervisor() -> Any:
    """A freshly booted hypervisor with the rig's layout (booted once per process, then cloned: the core
    state is immutable, the page bytes and TLBs are copied)."""
    import copy

    from t1virtio.hyp.memory import Hypervisor, Layout
    from t1virtio.preset import LINUX
    if not _BOOTED:
        _BOOTED.append(Hypervisor(LINUX, Layout(private=(1, PRIVATE_PAGES, 1), shared=(0, SHARED_PAGES, 1))))
    base = _BOOTED[0]
    hv = copy.copy(base)
    hv.pages = [bytearray(p) for p in base.pages]
    hv.tlb = [dict(t) for t in base.tlb]
    return hv


class LabeledSystem:
    """The hypervisor with one secondary: its swiotlb pools carved from its shared region, each with the
    DMA ops (``dma.VirtioBounceOps``), the primary's view of the region as the device, and every
    byte of the secondary's private memory and of the region labelled.

    ``pools`` lists each pool's slots (whole pages; their sum at most the region's slots).
    """

    def __init__(self, pools: tuple = (16,), *, map_bounce: Any, dma_policy: Any = None,
                 min_align_mask: int = 0, preset: Any = None):
        from t1virtio.preset import SMALL
        from t1virtio.swiotlb import bounce, dma
        self.hv = booted_hypervisor()
        self.pri, self.sec, self.size = self.hv.shared_region(SECONDARY)
        self.ram, self.ram_size = self.hv.private_region(SECONDARY)
        self.shadow = sh = Shadow()
        sh.add_region("priv", self.ram_size)
        sh.add_region("shared", self.size)
        secondary, primary = self.hv.view(SECONDARY), self.hv.view(0)
        self.caller = LabeledView(secondary, sh, "priv", self.ram, code_fresh(sh), log=True)
        self.device = LabeledView(primary, sh, "shared", self.pri, device_fresh(sh))
        self.kernel = LabeledView(RemapView(secondary, REGION_VA - self.sec), sh, "shared", REGION_VA, code_fresh(sh))
        self.swiotlb = bounce.Swiotlb(preset or SMALL, self.caller, map_bounce, min_align_mask)
        self.ops = []
        off = 0
        for i, nslabs in enumerate(pools):
            p = self.swiotlb.register_pool(f"pool{i}", self.sec + off, nslabs, self.kernel, REGION_VA + off)
            self.ops.append(dma.VirtioBounceOps(self.swiotlb, p, self.sec, self.size, dma_policy or dma.DmaPolicy()))
            off += nslabs * (1 << 11)

    def fill(self, buf: int, addr: int, data: bytes, gen: int) -> None:
        """The caller writes its own buffer ``buf`` (its ``gen``-th write) at private address ``addr``."""
        self.caller.write_as(addr, data, Label(PRIVATE, owner=buf, gen=gen))

    def device_write(self, dma_addr: int, ops: Any, data: bytes) -> None:
        """The primary writes ``data`` at DMA address ``dma_addr`` of ``ops``'s addressing."""
        self.shadow.tick()
        self.device.write(self.pri + ops.region_offset(dma_addr), data)


# ---------------------------------------------------------------------------------------------
# The leak table: run each scenario under a policy and report what leaked (DESIGN.md §4)

def _leaks_stale_to_caller(map_bounce: int, dma_policy: Any) -> bool:
    """A FROM_DEVICE buffer the device writes only half of receives bytes of an earlier mapping (CVE-2022-0854)."""
    from t1virtio.swiotlb import bounce as b
    s = LabeledSystem(pools=(8,), map_bounce=map_bounce, dma_policy=dma_policy)
    ops, whole = s.ops[0], 8 * (1 << 11)
    s.fill(1, s.ram, b"\xa5" * whole, 1)                         # buffer 1: a secret the device may read
    d = ops.map_page(s.ram, whole, b.DMA_TO_DEVICE)
    ops.unmap_page(d, whole, b.DMA_TO_DEVICE)
    s.fill(2, s.ram + whole, b"\x11" * 512, 1)                  # buffer 2: receives from the device
    since = s.shadow.tick()
    d = ops.map_page(s.ram + whole, 512, b.DMA_FROM_DEVICE)
    s.device_write(d, ops, b"\xdd" * 100)                        # a short write
    s.shadow.drain_received()
    ops.unmap_page(d, 512, b.DMA_FROM_DEVICE)
    try:
        for _, _, labels in s.shadow.drain_received():
            received_from(s.shadow, labels, 2, since, "unmap")
    except errors.ModelError as e:
        return e.clause == NO_STALE
    return False


def _leaks_private_to_device(map_bounce: int, dma_policy: Any) -> bool:
    """Mapping a FROM_DEVICE buffer puts its old (never exported) contents where the primary reads."""
    from t1virtio.swiotlb import bounce as b
    s = LabeledSystem(pools=(8,), map_bounce=map_bounce, dma_policy=dma_policy)
    s.fill(1, s.ram, b"\x5a" * 512, 1)
    s.ops[0].map_page(s.ram, 512, b.DMA_FROM_DEVICE)
    try:
        exported_only(s.shadow, "shared")
    except errors.ModelError as e:
        return e.clause == NO_EXPORT
    return False


def _transparent(map_bounce: int, dma_policy: Any) -> bool:
    """After a short device write and unmap, the caller's bytes the device did not write are its own."""
    from t1virtio.swiotlb import bounce as b
    s = LabeledSystem(pools=(8,), map_bounce=map_bounce, dma_policy=dma_policy)
    ops = s.ops[0]
    d = ops.map_page(s.ram, 2048, b.DMA_TO_DEVICE)                # leave device bytes in the slot
    s.device_write(d, ops, b"\xee" * 2048)
    ops.unmap_page(d, 2048, b.DMA_TO_DEVICE)
    s.fill(1, s.ram + 4096, b"\x11" * 2048, 1)
    d = ops.map_page(s.ram + 4096, 2048, b.DMA_FROM_DEVICE)
    s.device_write(d, ops, b"\xdd" * 100)
    ops.unmap_page(d, 2048, b.DMA_FROM_DEVICE)
    return s.caller.read(s.ram + 4096, 2048) == b"\xdd" * 100 + b"\x11" * 1948


def _leaks_stale_coherent(map_bounce: int, dma_policy: Any) -> bool:
    """Coherent memory (a ring) handed out over freed slots shows the caller bytes of an earlier mapping."""
    from t1virtio.swiotlb import bounce as b
    s = LabeledSystem(pools=(8,), map_bounce=map_bounce, dma_policy=dma_policy)
    ops, whole = s.ops[0], 8 * (1 << 11)
    s.fill(1, s.ram, b"\xa5" * whole, 1)
    d = ops.map_page(s.ram, whole, b.DMA_TO_DEVICE)
    ops.unmap_page(d, whole, b.DMA_TO_DEVICE)
    since = s.shadow.tick()
    vaddr, _ = ops.alloc(4096)
    labels = s.shadow.get("shared", vaddr - REGION_VA, 4096)
    return any(not acceptable_for_caller(s.shadow.label(i), -1, since) for i in labels)


LEAKS = {
    "stale bytes reach the caller": _leaks_stale_to_caller,
    "caller's private bytes reach the device": _leaks_private_to_device,
    "stale bytes in coherent memory": _leaks_stale_coherent,
}


def leak_report(map_bounce: int, dma_policy: Any = None) -> dict[str, bool]:
    """Run every leak scenario under a map-time bounce policy (and DMA ops policy); True = it leaks.

    ``transparent`` (not a leak) says whether the bytes a short device write did not cover are the
    caller's own afterwards.
    """
    out = {name: fn(map_bounce, dma_policy) for name, fn in LEAKS.items()}
    out["transparent"] = _transparent(map_bounce, dma_policy)
    return out


def leak_table() -> list[tuple[str, dict[str, bool]]]:
    """The leak table of docs/swiotlb-bounce.md, computed: each map-time policy, and the seed's ops."""
    from t1virtio.swiotlb import bounce as b
    from t1virtio.swiotlb import dma
    rows = [(f"{b.MAP_BOUNCE_NAMES[p]} (coherent zeroed)", leak_report(p)) for p in (b.PRE_5_17, b.LINUX_5_18, b.ZERO_FILL)]
    rows.append(("seed: pre-5.17 map, coherent not zeroed", leak_report(b.PRE_5_17, dma.SEED)))
    return rows
