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


def received_from(shadow: Shadow, labels: list[int], owner: int, since: int, where: str) -> None:
    """Raise ``SWIOTLB-BOUNCE-no-stale`` if the caller buffer ``owner`` received a stale byte."""
    for k, i in enumerate(labels):
        lab = shadow.label(i)
        if not acceptable_for_caller(lab, owner, since):
            raise errors.fail(NO_STALE, f"{where}: byte {k} of buffer {owner} came from {lab} "
                                        f"(mapping made at time {since})")


def observable_ok(shadow: Shadow, i: int) -> bool:
    """Whether the primary may observe a byte with label id ``i``: exported, device's own, or content-free."""
    lab = shadow.label(i)
    if lab.kind in (ZERO, FILL, DEVICE, COHERENT):
        return True
    return lab.kind == PRIVATE and i in shadow.exported


def exported_only(shadow: Shadow, region: str) -> None:
    """Raise ``SWIOTLB-BOUNCE-no-export`` if the shared ``region`` holds a byte the secondary never exported."""
    seen = set(shadow.regions[region])
    bad = [i for i in seen if not observable_ok(shadow, i)]
    if bad:
        off = next(k for k, i in enumerate(shadow.regions[region]) if i in bad)
        raise errors.fail(NO_EXPORT, f"{region}+{off:#x} holds {shadow.label(shadow.regions[region][off])}, "
                                     f"which the secondary never exported")
