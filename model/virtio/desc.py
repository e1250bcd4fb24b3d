"""Descriptor flags and sizes shared by split and packed virtqueues (virtio 1.3 §2.7.5, §2.8.13)."""

VIRTQ_DESC_F_NEXT = 1        # the buffer continues via the next field (split) / next descriptor (packed)
VIRTQ_DESC_F_WRITE = 2       # device write-only (otherwise device read-only)
VIRTQ_DESC_F_INDIRECT = 4    # the buffer holds a table of descriptors
VIRTQ_DESC_F_AVAIL = 1 << 7  # packed: driver's wrap-counter mark
VIRTQ_DESC_F_USED = 1 << 15  # packed: device's wrap-counter mark
DESC_SIZE = 16               # bytes per descriptor, split and packed (also each indirect entry)
