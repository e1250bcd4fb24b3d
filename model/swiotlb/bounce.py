"""Bounce buffering over swiotlb pools: map, unmap, sync and coherent alloc/free (facts §0.3-0.4, §1.6-1.8, §1.11).

The symbolic core decides, from a pool's slot records, which slots a step takes or gives back,
what it records, and which bytes it copies (a ``Copy``); ``Swiotlb`` performs the copies through
``MemoryView``s: the caller's buffers in the secondary's private memory, the pool's bytes through
the pool's own view (seed patch 2: ``vaddr + (tlb_addr - start)``, non-linear).

Per-direction bounce table (facts §1.11, unchanged since 5.18; the map row is a policy)::

    call              TO_DEVICE      FROM_DEVICE          BIDIRECTIONAL
    map               orig -> slot   policy (below)       orig -> slot
    sync_for_device   orig -> slot   nothing (ath9k)      orig -> slot
    sync_for_cpu      nothing        slot -> orig         slot -> orig
    unmap             nothing        slot -> orig *       slot -> orig *     (* unless SKIP_CPU_SYNC)

Map-time bounce policy for FROM_DEVICE (``map_bounce``, DESIGN.md §4):
``PRE_5_17`` copies nothing (nor for any direction with SKIP_CPU_SYNC): stale slot bytes reach the
caller on a partial device write (CVE-2022-0854); ``LINUX_5_18`` copies orig -> slot for every
direction (6.1 as maintained): the caller's old buffer reaches the device; ``ZERO_FILL`` (default)
clears the slot: leaks neither, and a partial device write returns zeros elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from t1virtio import errors
from t1virtio.logic import CONCRETE
from t1virtio.step import Step, apply, step
from t1virtio.swiotlb import pool as swpool
from t1virtio.swiotlb import slots

# enum dma_data_direction (include/linux/dma-direction.h)
DMA_BIDIRECTIONAL, DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_NONE = 0, 1, 2, 3
DMA_ATTR_SKIP_CPU_SYNC = 1 << 5

# map-time bounce policies
PRE_5_17, LINUX_5_18, ZERO_FILL = 0, 1, 2
MAP_BOUNCE_NAMES = {PRE_5_17: "pre-5.17", LINUX_5_18: "5.18+", ZERO_FILL: "zero-fill"}
DEFAULT_MAP_BOUNCE = ZERO_FILL

# what a step copies
NO_COPY, ORIG_TO_SLOT, SLOT_TO_ORIG, ZERO_SLOT = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Copy:
    """The byte effect of a step: ``kind`` over ``n`` bytes at ``orig`` (caller) and ``tlb`` (pool)."""

    kind: Any
    orig: Any
    tlb: Any
    n: Any


def valid_direction(L: Any, dir: Any) -> Any:
    """Return whether ``dir`` is TO_DEVICE, FROM_DEVICE or BIDIRECTIONAL (``valid_dma_direction``)."""
    return L.Or(dir == DMA_BIDIRECTIONAL, dir == DMA_TO_DEVICE, dir == DMA_FROM_DEVICE)


def skips_cpu_sync(L: Any, attrs: Any) -> Any:
    return (attrs & DMA_ATTR_SKIP_CPU_SYNC) == DMA_ATTR_SKIP_CPU_SYNC


def map_copy_kind(L: Any, map_bounce: Any, dir: Any, attrs: Any) -> Any:
    """What map puts in the slot: the policy's row of the table."""
    to_dev = L.And(L.Not(dir == DMA_FROM_DEVICE), L.Not(skips_cpu_sync(L, attrs)))
    pre = L.If(to_dev, ORIG_TO_SLOT, NO_COPY)
    zero = L.If(dir == DMA_FROM_DEVICE, ZERO_SLOT, ORIG_TO_SLOT)
    return L.If(map_bounce == PRE_5_17, pre, L.If(map_bounce == ZERO_FILL, zero, ORIG_TO_SLOT))


def sync_for_device_kind(L: Any, dir: Any) -> Any:
    """orig -> slot for TO_DEVICE and BIDIRECTIONAL; nothing for FROM_DEVICE (901c7280ca0d, ath9k)."""
    return L.If(dir == DMA_FROM_DEVICE, NO_COPY, ORIG_TO_SLOT)


def sync_for_cpu_kind(L: Any, dir: Any) -> Any:
    """slot -> orig for FROM_DEVICE and BIDIRECTIONAL; nothing for TO_DEVICE."""
    return L.If(dir == DMA_TO_DEVICE, NO_COPY, SLOT_TO_ORIG)


def unmap_copy_kind(L: Any, dir: Any, attrs: Any) -> Any:
    """slot -> orig for FROM_DEVICE and BIDIRECTIONAL unless SKIP_CPU_SYNC."""
    return L.If(L.Or(dir == DMA_TO_DEVICE, skips_cpu_sync(L, attrs)), NO_COPY, SLOT_TO_ORIG)
