"""Proof subjects of the virtio component (filled by its issue)."""
SUBJECTS: list = []
