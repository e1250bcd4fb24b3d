"""Invariants of virtio-msg (facts/upstream.md §5.4, §6.7): one device number of a bus."""
from __future__ import annotations

from t1virtio.specs.invariants import invariant
from t1virtio.transport.msg import EV_DEFINED, QP, WINDOW
from t1virtio.virtio.status import (ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, STATUS_DEFINED, has)

C = "transport_msg"


@invariant(C, "TRANSPORT-MSG-window")
def inv_replies_in_order(L, s):
    """Responses answer requests in order, one each: between 0 and WINDOW requests are outstanding."""
    return L.And(s.answered >= 0, s.answered <= s.sent, s.sent - s.answered <= WINDOW)


@invariant(C, "TRANSPORT-status-monotone")
def inv_status_monotone(L, s):
    """Every status bit set since the last reset is still set."""
    return (s.seen & ~s.dev.status) == 0


@invariant(C, "TRANSPORT-no-queue-before-driver-ok")
def inv_no_queue_before_driver_ok(L, s):
    """Without DRIVER_OK: no EVENT_AVAIL, no buffer consumed, no EVENT_USED since the last reset."""
    d = s.dev
    return L.Implies(L.Not(has(L, d.status, DRIVER_OK)),
                     L.And(d.avail_notifications == 0, d.consumed == 0, d.used_notifications == 0))


@invariant(C, "TRANSPORT-interrupt-line")
def inv_interrupt_line(L, s):
    """The event doorbell is asserted exactly while an event is unhandled; only defined events."""
    return L.And(s.line == (s.events != 0), (s.events & ~EV_DEFINED) == 0)


@invariant(C, "TRANSPORT-MSG-queue-size")
def inv_queue_sizes(L, s):
    """A configured queue has a size from 1 to its max_size."""
    return L.all_idx(len(s.max_size), lambda q: L.Implies(
        s.configured[q], L.And(1 <= s.params[q * QP], s.params[q * QP] <= s.max_size[q])))


@invariant(C, "VIRTIO/model/status#reserved-bits")
def inv_status_defined_bits(L, s):
    """Device status holds only defined bits."""
    return (s.dev.status & ~STATUS_DEFINED) == 0


@invariant(C, "VIRTIO/driver/General Initialization And Device Operation/Device Initialization#order")
def inv_init_order(L, s):
    """DRIVER needs ACKNOWLEDGE, FEATURES_OK needs DRIVER, DRIVER_OK needs FEATURES_OK (§3.1.1)."""
    st = s.dev.status
    return L.And(L.Implies(has(L, st, DRIVER), has(L, st, ACKNOWLEDGE)),
                 L.Implies(has(L, st, FEATURES_OK), has(L, st, DRIVER)),
                 L.Implies(has(L, st, DRIVER_OK), has(L, st, FEATURES_OK)))
