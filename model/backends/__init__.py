"""Standalone virtio backends (blk, console, rng, net): each sees only a device context (the shared region,
its queues and a notify function), never the transport or the hypervisor (seed problem 3)."""
