"""Rules of the packed virtqueue: what any conforming driver or device may do in one step (§2.8).

Notification rules are stated on positions, independently of Linux's u16 ``vring_need_event``
arithmetic that the model uses: the event descriptor ``E`` is in the window of the last ``k``
descriptors before ``P`` iff ``1 <= distance(E, P) <= k``.

Legality and exactness: a notification the other side asked for is a MUST; one it did not ask for
(under DESC) is only a SHOULD NOT, so the legality rules allow it and the exact rules (Linux 6.1.y)
forbid it. A driver may refuse an add; Linux refuses only what does not fit (exact).
"""
from __future__ import annotations

from t1virtio.virtio.packed import (RING_EVENT_FLAGS_DESC, RING_EVENT_FLAGS_DISABLE, distance, is_avail, is_used)
from t1virtio.specs.rules import exact, rule


def _others_kept(L, old, new, id):
    """Every entry but ``id`` unchanged (the whole table; iterated in one pass over each version)."""
    return L.And(*[L.Implies(L.Not(id == k), y == x) for k, (x, y) in enumerate(zip(old, new, strict=True))])


def _passed(L, num, off, ewrap, slot, wrap, count):
    """The event position (off, ewrap) is one of the ``count`` positions before (slot, wrap)."""
    dist = distance(L, num, off, ewrap, slot, wrap)
    return L.And(L.ULE(1, dist), L.ULE(dist, count))


def _add_legal(L, old, args):
    n, id = args["n"], args["id"]
    return L.And(L.Not(old.detached), L.ULE(1, n), L.ULE(n, old.num_free),
                 L.ULE(0, id), L.ULT(id, old.num), L.at(old.ndesc, id) == 0)


@rule("virtio_packed_driver", "add", "VIRTIO/model/packed/driver#add-rule")
def rule_add_publishes(L, old, args, ok, new, out):
    """Accepted only if it fits with a free id; the id becomes outstanding with n descriptors, the head is
    the old next_avail, next_avail moves n positions (wrap flip included), nothing else changes. A
    driver may refuse any add."""
    n, id = args["n"], args["id"]
    return L.Implies(ok, L.And(
        _add_legal(L, old, args),
        L.at(new.ndesc, id) == n, _others_kept(L, old.ndesc, new.ndesc, id),
        new.num_free == old.num_free - n,
        distance(L, old.num, old.next_avail, old.avail_wrap, new.next_avail, new.avail_wrap) == n,
        new.last_used == old.last_used, new.used_wrap == old.used_wrap,
        out[0] == old.next_avail, out[1] == old.avail_wrap))


@exact("virtio_packed_driver", "add", "VIRTIO/model/packed/driver#add-rule", "Linux 6.1.y virtqueue_add_packed",
       refines="rule_add_publishes")
def exact_add_refuses_only_illegal(L, old, args, ok, new, out):
    """Linux refuses an add only when it does not fit or is malformed: accepted iff legal."""
    return L.And(ok == _add_legal(L, old, args), rule_add_publishes(L, old, args, ok, new, out))


@rule("virtio_packed_driver", "get_used", "VIRTIO/model/packed/driver#get-used-rule")
def rule_get_used_validates(L, old, args, ok, new, out):
    """Accepted only for a used descriptor naming an outstanding id with a length within its writable
    bytes; that id is freed and last_used skips its descriptors."""
    id, length = args["id"], args["length"]
    n = L.at(old.ndesc, id)
    return L.Implies(ok, L.And(
        L.Not(old.detached), is_used(L, args["avail"], args["used"], old.used_wrap),
        L.ULE(0, id), L.ULT(id, old.num), L.ULT(0, n), L.ULE(0, length), L.ULE(length, L.at(old.wlen, id)),
        L.at(new.ndesc, id) == 0, _others_kept(L, old.ndesc, new.ndesc, id),
        new.num_free == old.num_free + n,
        distance(L, old.num, old.last_used, old.used_wrap, new.last_used, new.used_wrap) == n,
        out[0] == id, out[1] == length))


@rule("virtio_packed_driver", "kick_prepare", "VIRTIO/model/packed/events#kick-rule")
def rule_kick_by_event(L, old, args, ok, new, out):
    """No kick under DISABLE, a kick under ENABLE (or a reserved mode); under DESC, for a valid
    offset and at most num new descriptors, a kick iff the named position was just published."""
    flags, off, ewrap = args["flags"], args["off"], args["ewrap"]
    named = _passed(L, old.num, off, ewrap, old.next_avail, old.avail_wrap, old.num_added)
    return L.And(ok, new.num_added == 0,
                 L.Implies(flags == RING_EVENT_FLAGS_DISABLE, L.Not(out)),
                 L.Implies(L.And(L.Not(flags == RING_EVENT_FLAGS_DISABLE), L.Not(flags == RING_EVENT_FLAGS_DESC)), out),
                 L.Implies(L.And(flags == RING_EVENT_FLAGS_DESC, L.ULE(old.num_added, old.num), L.ULT(off, old.num)),
                           L.Implies(named, out)))


@exact("virtio_packed_driver", "kick_prepare", "VIRTIO/model/packed/events#kick-rule",
       "Linux 6.1.y virtqueue_kick_prepare_packed", refines="rule_kick_by_event")
def exact_kick_only_at_event(L, old, args, ok, new, out):
    """Under DESC (valid offset, at most num new descriptors) Linux kicks iff the named position was just published."""
    flags, off = args["flags"], args["off"]
    named = _passed(L, old.num, off, args["ewrap"], old.next_avail, old.avail_wrap, old.num_added)
    return L.And(rule_kick_by_event(L, old, args, ok, new, out),
                 L.Implies(L.And(flags == RING_EVENT_FLAGS_DESC, L.ULE(old.num_added, old.num), L.ULT(off, old.num)),
                           out == named))


@rule("virtio_packed_device", "pop", "VIRTIO/model/packed/device#pop-rule")
def rule_pop_in_order(L, old, args, ok, new, out):
    """Accepted only for an available head and a free id within the in-flight bound; the id is held
    with n descriptors and next_avail moves n positions from the head."""
    n, id = args["n"], args["id"]
    return L.Implies(ok, L.And(
        is_avail(L, args["avail"], args["used"], old.avail_wrap),
        L.ULE(0, id), L.ULT(id, old.num), L.at(old.ndesc, id) == 0, L.at(new.ndesc, id) == n,
        _others_kept(L, old.ndesc, new.ndesc, id), L.ULE(old.in_flight + n, old.num),
        distance(L, old.num, old.next_avail, old.avail_wrap, new.next_avail, new.avail_wrap) == n,
        out[0] == old.next_avail, out[1] == old.avail_wrap))


@rule("virtio_packed_device", "push_used", "VIRTIO/model/packed/device#push-used-rule")
def rule_push_used_skips(L, old, args, ok, new, out):
    """Accepted iff the id is held and the length within its writable bytes; the used descriptor goes
    at the old next_used, which then skips the buffer's descriptors."""
    id, length = args["id"], args["length"]
    n = L.at(old.ndesc, id)
    legal = L.And(L.ULE(0, id), L.ULT(id, old.num), L.ULT(0, n), L.ULE(0, length), L.ULE(length, L.at(old.wlen, id)))
    return L.And(ok == legal, L.Implies(ok, L.And(
        L.at(new.ndesc, id) == 0, _others_kept(L, old.ndesc, new.ndesc, id),
        distance(L, old.num, old.next_used, old.used_wrap, new.next_used, new.used_wrap) == n,
        out[0] == old.next_used, out[1] == old.used_wrap)))


@rule("virtio_packed_device", "need_notify", "VIRTIO/model/packed/events#notify-rule")
def rule_notify_by_event(L, old, args, ok, new, out):
    """No notification under DISABLE; one otherwise unless DESC (with EVENT_IDX) names a position not
    used since the last decision (for a valid offset and at most num descriptors used)."""
    flags, off, ewrap = args["flags"], args["off"], args["ewrap"]
    named = _passed(L, old.num, off, ewrap, old.next_used, old.used_wrap, old.num_used)
    desc = L.And(flags == RING_EVENT_FLAGS_DESC, old.event)
    return L.And(ok, new.num_used == 0,
                 L.Implies(flags == RING_EVENT_FLAGS_DISABLE, L.Not(out)),
                 L.Implies(L.And(L.Not(flags == RING_EVENT_FLAGS_DISABLE), L.Not(desc)), out),
                 L.Implies(L.And(desc, L.ULE(old.num_used, old.num), L.ULT(off, old.num)), L.Implies(named, out)))


@exact("virtio_packed_device", "need_notify", "VIRTIO/model/packed/events#notify-rule",
       "Linux 6.1.y vring_need_event (the model's device)", refines="rule_notify_by_event")
def exact_notify_only_at_event(L, old, args, ok, new, out):
    """Under DESC with EVENT_IDX (valid offset, at most num used) the model notifies iff the named position was used."""
    flags, off = args["flags"], args["off"]
    named = _passed(L, old.num, off, args["ewrap"], old.next_used, old.used_wrap, old.num_used)
    desc = L.And(flags == RING_EVENT_FLAGS_DESC, old.event)
    return L.And(rule_notify_by_event(L, old, args, ok, new, out),
                 L.Implies(L.And(desc, L.ULE(old.num_used, old.num), L.ULT(off, old.num)), out == named))
