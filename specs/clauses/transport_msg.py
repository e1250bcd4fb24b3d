"""Clauses of virtio-msg, the OASIS message transport (draft ``transport-msg.tex``, facts/upstream.md §5.4, §6.7)."""
from . import register

_MSG = "wmamills/virtio-msg-spec@7891b6b transport-msg.tex (facts/upstream.md §5.4)"
_MODEL = "t1virtio model (docs/transport.md)"

register([
    ("TRANSPORT-MSG-in-order", "peer", _MSG, "facts §5.4 Ordering",
     "per device number, responses come in request order: a response matches the oldest outstanding request's id and token"),
    ("TRANSPORT-MSG-window", "invariant", _MSG, "facts §5.4, §6.7",
     "every forwarded request has exactly one response: outstanding requests number between 0 and the window"),
    ("TRANSPORT-MSG-window-full", "exhausted", _MODEL, "facts §6.7 (outstanding request FIFO per device)",
     "a request is sent only while the outstanding FIFO has room"),
    ("TRANSPORT-MSG-unsolicited", "peer", _MSG, "facts §5.4 (one response per request)",
     "no response arrives while no request is outstanding"),
    ("TRANSPORT-MSG-header", "peer", _MSG, "facts §5.4 (common header), §6.7",
     "a message has reserved type bits 0, msg_size equal to its length and within the bus maximum, and a known id"),
    ("TRANSPORT-MSG-stale-generation", "rule", _MSG, "facts §5.4 (SET_CONFIG with a stale generation MUST be rejected)",
     "SET_CONFIG with a stale generation is rejected (length 0) and changes nothing"),
    ("TRANSPORT-MSG-queue-size", "peer", _MSG, "facts §6.7 (SET_VQUEUE size <= max_size)",
     "SET_VQUEUE names a queue of the device and a size from 1 to its max_size"),
    ("TRANSPORT-MSG-queue-live", "peer", _MSG, "facts §5.4 SET_VQUEUE/RESET_VQUEUE; virtio-1.3:4.2.3.2",
     "a configured queue of a live device (DRIVER_OK) is changed only after RESET_VQUEUE"),
    ("TRANSPORT-MSG-event-queue", "peer", _MSG, "facts §5.4 EVENT_AVAIL/EVENT_USED",
     "EVENT_AVAIL and EVENT_USED name a configured queue of the device"),
    ("TRANSPORT-MSG-reset-invalidates", "rule", _MSG, "facts §6.7 (reset invalidates queues and config state)",
     "SET_DEVICE_STATUS 0 leaves status 0, no queue configured and no event pending"),
    ("TRANSPORT-MSG-event-ack", "rule", _MODEL, "facts §5.4 (bus may turn events into doorbells)",
     "the driver's event acknowledgement clears exactly the reasons it handled"),
])
