"""virtio core: device status, features, split and packed virtqueues (virtio 1.3 §2, §3)."""
