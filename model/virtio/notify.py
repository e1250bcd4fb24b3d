"""Notification suppression arithmetic shared by driver and device (virtio 1.3 §2.7.7, §2.7.10).

``vring_need_event`` is the spec's (and Linux's ``include/uapi/linux/virtio_ring.h``) test: notify
iff the event index lies in the window of indices published since the last notification, in
free-running 16-bit arithmetic.
"""
from __future__ import annotations

from typing import Any

U16 = 16


def vring_need_event(L: Any, event_idx: Any, new_idx: Any, old_idx: Any) -> Any:
    """Return whether moving an index from ``old_idx`` to ``new_idx`` passes ``event_idx``.

    ``(u16)(new_idx - event_idx - 1) < (u16)(new_idx - old_idx)`` (virtio 1.3 §2.7.10).
    """
    return L.ULT(L.wrap(new_idx - event_idx - 1, U16), L.wrap(new_idx - old_idx, U16))
