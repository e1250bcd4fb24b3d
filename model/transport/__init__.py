"""Virtio transports without MMIO trapping: virtio-mmio over message queues, the emulated register page,
shared memory and doorbells, virtio-msg (facts/upstream.md §0.1, §3.5, §5)."""
