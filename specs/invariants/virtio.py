"""Invariants of the virtio component (filled by its issue)."""
