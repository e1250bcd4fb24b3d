"""Clauses of notification suppression and its races (virtio 1.3 §2.7.10, §2.7.13.4, §2.7.14, App. A).

The race model (model/virtio/races.py) checks both directions over the real split and packed
transitions: a producer publishes buffers and decides whether to notify from the consumer's
suppression state; the consumer drains the ring, re-enables notifications, re-checks and sleeps. MUST numbers are those of
facts/formal.md §4.4.
"""
from . import register

_SPEC = "oasis-tcs/virtio-spec@15f488c split-ring.tex"
_MODEL = "t1virtio model (docs/virtio-notify.md)"
_AVAIL = "VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression"

register([
    (f"{_AVAIL}#flags-notify", "peer", _SPEC, "virtio-1.3:2.7.10.1 MUST 3",
     "without EVENT_IDX, after publishing an available entry the driver notifies if used flags is 0"),
    (f"{_AVAIL}#event-idx-notify", "peer", _SPEC, "virtio-1.3:2.7.10.1 MUST 5",
     "with EVENT_IDX the driver notifies when the published window of avail idx crosses avail_event"),
    ("VIRTIO/driver/Virtqueues/Supplying Buffers to The Device/Notifying The Device#barrier", "peer", _SPEC,
     "virtio-1.3:2.7.13.4.1 MUST 1",
     "the driver publishes avail idx and then (after a memory barrier) reads flags / avail_event, never before"),
    ("VIRTIO/model/notify#publish-before-read", "rule", _MODEL, "virtio-1.3:2.7.7.2, 2.8.21 (the device's mirror of 2.7.13.4.1)",
     "a device publishes used idx / marks descriptors used and then (after a memory barrier) reads the driver's "
     "suppression state, never before"),
    ("VIRTIO/model/notify#recheck", "rule", _MODEL, "virtio-1.3:2.7.14 (note), 2.7.10",
     "a side that re-enables notifications re-checks the index before sleeping; it never sleeps with work published"),
    ("VIRTIO/model/notify#no-lost-notification", "invariant", _MODEL, "virtio-1.3:2.7.10, 2.7.13.4",
     "when the device sleeps with no notification pending and the driver is idle, every published buffer was consumed"),
    ("VIRTIO/model/notify#exactly-once", "rule", _MODEL, "virtio-1.3:2.7.10.1 MUST 5 and SHOULD NOT",
     "with EVENT_IDX the driver notifies exactly when the window crosses avail_event: no miss, no spurious kick"),
    ("VIRTIO/model/notify#need-event-window", "invariant", "Linux include/uapi/linux/virtio_ring.h; virtio App. A",
     "virtio-1.3:2.7.10, App. A",
     "vring_need_event(e, new, old) holds iff e lies in [old, new) modulo 2^16, at every wrap position"),
])
