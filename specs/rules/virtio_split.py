"""Rules of the split virtqueue: what any conforming driver or device may do in one step (virtio 1.3 §2.7).

Written over the side states (``DriverRing``, ``DeviceRing``) and the values a step read from
the other side's memory, so the oracle can check a foreign driver or device on the same bytes.
The notification rules state only the MUST half (a SHOULD NOT is never a failure); the exact rules
(``exact_*``, kind ``"exact"``) state Linux 6.1.y's choices: notify as ``vring_need_event`` / the
flags say (never when suppressed), refuse an add only when it is malformed or does not fit. The rules use
the whole-table forms (a scan of every descriptor for the head, the chosen descriptors, a chain's
members), so each ``op ⊨ rule`` obligation also shows that the model's guards and effects, which
touch only what an operation needs, mean the same.
"""
from __future__ import annotations

from typing import Any

from t1virtio.specs.rules import exact, rule
from t1virtio.virtio.chain import MAX_CHAIN_BYTES, U32_MAX
from t1virtio.virtio.split import VRING_AVAIL_F_NO_INTERRUPT, VRING_USED_F_NO_NOTIFY, u16


def _in_window(L: Any, event: Any, new: Any, old: Any) -> Any:
    """Return whether u16 index ``event`` lies in ``[old, new)`` modulo 2^16."""
    return L.ULT(u16(L, event - old), u16(L, new - old))


def _unchanged_except(L: Any, old: tuple, new: tuple, k: Any) -> Any:
    return L.all_idx(len(old), lambda i: L.Implies(L.Not(k == i), new[i] == old[i]))


def _head_in_flight(L: Any, d: Any, h: Any) -> Any:
    """Whether ``h`` is a head in flight, by a scan of every descriptor (the whole-table form)."""
    return L.any_idx(d.size, lambda i: L.And(h == i, d.in_use[i], d.chain_of[i] == i))


def _add_buf_legal(L, old, args):
    """The requests a driver may accept: well formed, the chosen descriptors free, enough of them."""
    head, sel, n_in, n_out = args["head"], args["sel"], args["n_in"], args["n_out"]
    n = n_out + n_in
    used = L.If(args["indirect_used"], 1, n)
    picked = [L.sel_has(sel, i) for i in range(old.size)]
    legal = L.And(L.ULE(1, n), L.ULE(n, old.size), L.ULE(0, n_out), L.ULE(0, n_in), L.ULE(0, args["wlen"]),
                  L.ULE(args["wlen"], args["total"]), L.ULE(args["total"], MAX_CHAIN_BYTES), L.ULE(used, old.num_free),
                  L.any_idx(old.size, lambda i: L.And(head == i, picked[i])), L.sel_only_below(sel, old.size),
                  L.all_idx(old.size, lambda i: L.Implies(picked[i], L.Not(old.in_use[i]))),
                  sum(L.If(p, 1, 0) for p in picked) == used,
                  L.Implies(args["indirect_used"], L.And(old.indirect, L.ULT(1, n))))
    return legal, picked, used


@rule("virtio_split.driver", "add_buf", "VIRTIO/model/rule#add-buf")
def rule_add_buf_moves_chosen_descriptors(L, old, args, ok, new, out):
    """Accepted only if well-formed and enough descriptors are free; then exactly the chosen free ones go to
    the device. A driver may refuse any request (an add is the OS asking, not a MUST of the spec)."""
    head = args["head"]
    legal, picked, used = _add_buf_legal(L, old, args)
    slot = L.mod(old.avail_idx, old.size)
    moved = L.all_idx(old.size, lambda i: L.If(picked[i], L.And(new.in_use[i], new.chain_of[i] == head),
                                               L.And(new.in_use[i] == old.in_use[i], new.chain_of[i] == old.chain_of[i])))
    return L.Implies(ok, L.And(
        legal, moved, new.num_free == old.num_free - used, out == head, L.at(new.avail_ring, slot) == head,
        _unchanged_except(L, old.avail_ring, new.avail_ring, slot), new.avail_idx == u16(L, old.avail_idx + 1),
        new.last_used == old.last_used))


@exact("virtio_split.driver", "add_buf", "VIRTIO/model/rule#add-buf", "Linux 6.1.y virtqueue_add_split",
       refines="rule_add_buf_moves_chosen_descriptors")
def exact_add_buf_refuses_only_illegal(L, old, args, ok, new, out):
    """Linux refuses an add only when it is malformed or does not fit (-EINVAL / -ENOSPC): accepted iff legal."""
    legal, _, _ = _add_buf_legal(L, old, args)
    return L.And(ok == legal, rule_add_buf_moves_chosen_descriptors(L, old, args, ok, new, out))


@rule("virtio_split.driver", "kick_prepare",
      "VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression#notify")
def rule_kick_when_device_asks(L, old, args, ok, new, out):
    """Kick if used flags are 0 after adding (no EVENT_IDX), or if avail_event lies in the published window."""
    first = u16(L, old.avail_idx - old.num_added)
    must = L.If(old.event_idx, _in_window(L, args["avail_event"], old.avail_idx, first),
                L.And(L.Not(old.num_added == 0), (args["used_flags"] & VRING_USED_F_NO_NOTIFY) == 0))
    return L.And(ok, L.Implies(must, out), new.num_added == 0, new.avail_idx == old.avail_idx)


def _linux_kicks(L, old, args):
    """virtqueue_kick_prepare_split: vring_need_event with EVENT_IDX, else the used flags alone (it kicks
    even when nothing was added since the last kick)."""
    first = u16(L, old.avail_idx - old.num_added)
    return L.If(old.event_idx, _in_window(L, args["avail_event"], old.avail_idx, first),
                (args["used_flags"] & VRING_USED_F_NO_NOTIFY) == 0)


@exact("virtio_split.driver", "kick_prepare", "VIRTIO/model/exact#kick-only-when-asked",
       "Linux 6.1.y virtqueue_kick_prepare_split", refines="rule_kick_when_device_asks")
def exact_kick_only_when_asked(L, old, args, ok, new, out):
    """Linux kicks when the device asks and, without EVENT_IDX, whenever NO_NOTIFY is clear; never when the
    device suppressed notifications (a kick then is legal: the spec says SHOULD NOT)."""
    return L.And(ok, out == _linux_kicks(L, old, args), new.num_added == 0, new.avail_idx == old.avail_idx)


@rule("virtio_split.driver", "get_used", "VIRTIO/model/rule#get-used")
def rule_get_used_frees_one_chain(L, old, args, ok, new, out):
    """Accepted iff pending, within the buffers in flight, a head in flight, len within its writable bytes."""
    id_, length = args["id"], args["length"]
    pending = u16(L, args["used_idx"] - old.last_used)
    legal = L.And(L.Not(pending == 0), L.ULE(pending, u16(L, old.avail_idx - old.last_used)),
                  L.ULE(0, id_), L.ULT(id_, old.size), _head_in_flight(L, old, id_),
                  L.ULE(0, length), L.ULE(length, L.at(old.wlen, id_)))
    mine = [L.And(old.in_use[i], old.chain_of[i] == id_) for i in range(old.size)]
    freed = L.all_idx(old.size, lambda i: new.in_use[i] == L.And(old.in_use[i], L.Not(mine[i])))
    return L.And(ok == legal, L.Implies(ok, L.And(
        out[0] == id_, out[1] == length, freed, new.num_free == old.num_free + sum(L.If(m, 1, 0) for m in mine),
        new.last_used == u16(L, old.last_used + 1), new.avail_idx == old.avail_idx)))


@rule("virtio_split.device", "pop_avail", "VIRTIO/model/rule#pop-avail")
def rule_pop_avail_takes_next_head(L, old, args, ok, new, out):
    """Accepted iff 0 < avail idx - last avail <= size, the head is in range and not held, and its chain is
    valid (``chain_ok``: the walk's verdict, reported by a concrete device); then the head is held."""
    head = args["head"]
    window = u16(L, args["avail_idx"] - old.last_avail)
    legal = L.And(L.ULE(window, old.size), L.Not(window == 0), L.ULE(0, head), L.ULT(head, old.size),
                  L.Not(L.at(old.held, head)), args.get("chain_ok", True))
    return L.And(ok == legal, L.Implies(ok, L.And(
        out == head, L.at(new.held, head), _unchanged_except(L, old.held, new.held, head),
        new.last_avail == u16(L, old.last_avail + 1), new.used_idx == old.used_idx)))


@rule("virtio_split.device", "add_used", "VIRTIO/model/rule#add-used")
def rule_add_used_publishes_one_entry(L, old, args, ok, new, out):
    """Accepted iff the head is held and len fits; then (id, len) fills the next used slot and the head is released.

    The used entry's len is le32: a device that wrote all of a 2^32-byte writable part reports 2^32 - 1 (2.7.8.2
    lets len under-estimate what was written); any other len is reported as written."""
    id_, length = args["id"], args["length"]
    legal = L.And(L.ULE(0, id_), L.ULT(id_, old.size), L.at(old.held, id_), L.ULE(0, length),
                  L.ULE(length, L.at(old.wlen, id_)))
    slot = L.mod(old.used_idx, old.size)
    return L.And(ok == legal, L.Implies(ok, L.And(
        L.at(new.used_id, slot) == id_, L.at(new.used_len, slot) == L.If(L.ULE(length, U32_MAX), length, U32_MAX),
        _unchanged_except(L, old.used_id, new.used_id, slot), new.used_idx == u16(L, old.used_idx + 1),
        L.Not(L.at(new.held, id_)), _unchanged_except(L, old.held, new.held, id_),
        new.last_avail == old.last_avail)))


@rule("virtio_split.device", "need_notify", "VIRTIO/device/Virtqueues/Used Buffer Notification Suppression#notify")
def rule_notify_when_driver_asks(L, old, args, ok, new, out):
    """Notify if avail flags are 0 after using (no EVENT_IDX), or if used_event lies among the new used indices."""
    must = L.If(old.event_idx, _in_window(L, args["used_event"], old.used_idx, old.signalled),
                L.And(L.Not(old.used_idx == old.signalled), (args["avail_flags"] & VRING_AVAIL_F_NO_INTERRUPT) == 0))
    return L.And(ok, L.Implies(must, out), new.signalled == old.used_idx)


@exact("virtio_split.device", "need_notify", "VIRTIO/device/Virtqueues/Used Buffer Notification Suppression#notify",
       "Linux 6.1.y vringh_need_notify", refines="rule_notify_when_driver_asks")
def exact_notify_only_when_asked(L, old, args, ok, new, out):
    """vringh_need_notify: vring_need_event with EVENT_IDX, else the avail flags alone; never an interrupt the
    driver suppressed (legal: the spec says SHOULD NOT)."""
    linux = L.If(old.event_idx, _in_window(L, args["used_event"], old.used_idx, old.signalled),
                 (args["avail_flags"] & VRING_AVAIL_F_NO_INTERRUPT) == 0)
    return L.And(ok, out == linux, new.signalled == old.used_idx)


@rule("virtio_split.chain", "walk_step", "VIRTIO/model/chain#progress")
def rule_walk_step_progress(L, old, args, ok, new, out):
    """An accepted read enters the (single) indirect table or spends one ttl in the current table."""
    return L.Implies(ok, L.Or(L.And(L.Not(old.in_table), new.in_table),
                              L.And(new.in_table == old.in_table, new.ttl == old.ttl - 1)))
