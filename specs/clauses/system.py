"""Clauses of the whole system: standalone backends, their device context, and the composed checks (DESIGN.md §2, §4;
seed problem 3; virtio 1.3 §5.1-§5.4)."""
from . import register

register([
    ("SYSTEM-BACKEND-in-region", "peer", "DESIGN.md §4 (hostile peers); facts §6.6", "device context",
     "a backend follows only guest addresses whose whole range lies in its device's shared region; any other is refused"),
    ("SYSTEM-ISOLATION-window", "access", "DESIGN.md §4 (isolation); seed §0.1", "system monitor",
     "the primary, serving secondary v, touches only bytes of v's shared-region window"),
    ("SYSTEM-ISOLATION-private", "invariant", "DESIGN.md §2, §4; seed clarification (facts §0.1)", "system",
     "no page of a secondary's private memory is ever mapped in the primary: every IO byte goes through the region"),
    ("SYSTEM-BOUNCE-pool", "invariant", "DESIGN.md §2 (virtio bounce DMA ops); facts §0.6", "system",
     "every buffer a secondary hands to a device is a live mapping of its swiotlb pool in the shared region"),
    ("SYSTEM-NI-observation", "invariant", "DESIGN.md §4 (noninterference, Serval style)", "system",
     "two runs differing only in a secondary's unexported private bytes are identical to everything the primary observes"),
    ("SYSTEM-BLK-request", "peer", "virtio 1.3 §5.2.6 (struct virtio_blk_req)", "virtio-blk backend",
     "a request has a 16-byte device-readable header and ends with a device-writable status byte; another is refused"),
    ("SYSTEM-BLK-data", "invariant", "virtio 1.3 §5.2.6", "virtio-blk",
     "a completed read returns the bytes last written to those sectors (the shadow disk); a flush loses nothing"),
    ("SYSTEM-BLK-status", "invariant", "virtio 1.3 §5.2.6.1", "virtio-blk",
     "the device sets the status byte: OK for a served request, IOERR beyond capacity or for a bad length, UNSUPP for an unknown type"),
    ("SYSTEM-STREAM-data", "invariant", "virtio 1.3 §5.1.6, §5.3.6", "virtio-net, virtio-console",
     "a packet or console line sent by one secondary reaches its destination whole, once, and in order"),
    ("SYSTEM-PROGRESS", "invariant", "DESIGN.md §4 (no hang); virtio 1.3 §2.9", "system",
     "with honest peers every submitted request completes within the system's step bound (no lost notification)"),
])
