"""Access to the real Linux 6.1.y peers in ../shared/peers/linux (virtio_ring.c, vringh.c, swiotlb.c).

``vring_peer()`` / ``swiotlb_peer()`` return the peer module. Where a peer is unavailable (folder
missing, build or load failed) the calling test skips with the reason, except in CI (``CI`` set to
a true value): there the exactness claims must not pass untested, so the test fails with the reason.
The peers build themselves on first import (see their README); a build takes under a minute.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parents[1].parent / "shared" / "peers" / "linux"
_cache: dict[str, object] = {}


def in_ci() -> bool:
    """Whether this run is CI (``CI`` set and not 0/false/empty), where a missing peer is a failure."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail with it in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI: a Linux peer that cannot be built fails the run)", pytrace=False)
    pytest.skip(reason)


def _load(name: str):
    if name in _cache:
        if isinstance(_cache[name], str):
            unavailable(_cache[name])
        return _cache[name]
    if not PEERS.is_dir():
        _cache[name] = f"Linux peers not found at {PEERS} (../shared/peers/linux beside the project)"
        unavailable(_cache[name])
    if str(PEERS) not in sys.path:
        sys.path.insert(0, str(PEERS))
    try:
        mod = importlib.import_module(name)
        if name == "swiotlb_peer":
            mod.Pool  # noqa: B018 - force the library load
    except Exception as e:  # noqa: BLE001 - any build or load failure is a reason (skip, or fail in CI)
        _cache[name] = f"Linux peer {name} cannot be built or loaded here: {type(e).__name__}: {e}"
        unavailable(_cache[name])
    _cache[name] = mod
    return mod


def vring_peer():
    """Return ``vring_peer`` (real virtio_ring.c + vringh.c), or skip (fail in CI)."""
    return _load("vring_peer")


def swiotlb_peer():
    """Return ``swiotlb_peer`` (real kernel/dma/swiotlb.c), or skip (fail in CI)."""
    return _load("swiotlb_peer")
