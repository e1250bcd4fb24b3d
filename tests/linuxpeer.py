"""Access to the real Linux 6.1.y peers in ../shared/peers/linux (virtio_ring.c, vringh.c, swiotlb.c).

``vring_peer()`` / ``swiotlb_peer()`` return the peer module, or skip the calling test with the
reason the peer is unavailable (folder missing, build failed). The peers build themselves on
first import (see their README); a build takes about a minute once per machine.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parents[1].parent / "shared" / "peers" / "linux"
_cache: dict[str, object] = {}


def _load(name: str):
    if name in _cache:
        if isinstance(_cache[name], str):
            pytest.skip(_cache[name])
        return _cache[name]
    if not PEERS.is_dir():
        _cache[name] = f"Linux peers not found at {PEERS} (../shared/peers/linux beside the project)"
        pytest.skip(_cache[name])
    if str(PEERS) not in sys.path:
        sys.path.insert(0, str(PEERS))
    try:
        mod = importlib.import_module(name)
        if name == "swiotlb_peer":
            mod.Pool  # noqa: B018 - force the library load
    except Exception as e:  # noqa: BLE001 - any build or load failure is a skip reason
        _cache[name] = f"Linux peer {name} cannot be built or loaded here: {type(e).__name__}: {e}"
        pytest.skip(_cache[name])
    _cache[name] = mod
    return mod


def vring_peer():
    """Return ``vring_peer`` (real virtio_ring.c + vringh.c) or skip."""
    return _load("vring_peer")


def swiotlb_peer():
    """Return ``swiotlb_peer`` (real kernel/dma/swiotlb.c) or skip."""
    return _load("swiotlb_peer")
