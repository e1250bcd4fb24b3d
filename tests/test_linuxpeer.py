"""A Linux peer that cannot be built skips its tests with the reason, except in CI, where it fails the run."""
from __future__ import annotations

import pytest

import linuxpeer


@pytest.fixture
def missing_peers(monkeypatch, tmp_path):
    monkeypatch.setattr(linuxpeer, "PEERS", tmp_path / "no-such-peers")
    monkeypatch.setattr(linuxpeer, "_cache", {})


@pytest.mark.parametrize("value,ci", [("true", True), ("1", True), ("", False), ("0", False), ("false", False)])
def test_ci_detection(monkeypatch, value, ci):
    monkeypatch.setenv("CI", value)
    assert linuxpeer.in_ci() is ci


@pytest.mark.parametrize("load", [linuxpeer.vring_peer, linuxpeer.swiotlb_peer])
def test_missing_peer_fails_in_ci(monkeypatch, missing_peers, load):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="fails the run"):
        load()
    with pytest.raises(pytest.fail.Exception, match="not found"):   # cached reason, same verdict
        load()


@pytest.mark.parametrize("load", [linuxpeer.vring_peer, linuxpeer.swiotlb_peer])
def test_missing_peer_skips_elsewhere(monkeypatch, missing_peers, load):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not found"):
        load()


def test_broken_build_fails_in_ci(monkeypatch, tmp_path):
    """A peer folder whose module raises on import (a failed build) is a failure in CI, not a skip."""
    (tmp_path / "vring_peer.py").write_text("raise OSError('build.sh failed: gcc not found')\n")
    monkeypatch.setattr(linuxpeer, "PEERS", tmp_path)
    monkeypatch.setattr(linuxpeer, "_cache", {})
    monkeypatch.setattr("sys.path", [str(tmp_path)] + [p for p in __import__("sys").path])
    monkeypatch.delitem(__import__("sys").modules, "vring_peer", raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="gcc not found"):
        linuxpeer.vring_peer()
