"""Rules of virtio-msg: what any conforming device number and driver may do in one step (facts §5.4, §6.7)."""
from __future__ import annotations

from t1virtio.specs.rules import rule
from t1virtio.transport.msg import QP, TOKENS, WINDOW
from t1virtio.virtio.status import DRIVER_OK, has

C = "transport_msg"


@rule(C, "response", "TRANSPORT-MSG-in-order")
def rule_response_in_order(L, old, args, ok, new, out):
    """An accepted response carries the oldest outstanding request's id and token."""
    head = L.mod(old.answered, WINDOW)
    return L.Implies(ok, L.And(old.sent > old.answered, args["token"] == L.mod(old.answered, TOKENS),
                               L.any_idx(WINDOW, lambda k: L.And(head == k, args["msg_id"] == old.ids[k]))))


@rule(C, "set_config", "TRANSPORT-MSG-stale-generation")
def rule_stale_generation(L, old, args, ok, new, out):
    """SET_CONFIG at a stale generation is rejected and changes nothing."""
    return L.Implies(args["generation"] != old.generation, L.And(L.Not(L.And(ok, out)), new.generation == old.generation))


@rule(C, "set_vqueue", "TRANSPORT-queue-frozen-while-ready")
def rule_live_queue_frozen(L, old, args, ok, new, out):
    """No accepted SET_VQUEUE changes a configured queue of a live (DRIVER_OK) device."""
    live = has(L, old.dev.status, DRIVER_OK)
    return L.all_idx(len(old.max_size), lambda q: L.Implies(L.And(ok, live, old.configured[q]), L.And(
        new.configured[q], L.all_idx(QP, lambda p: new.params[q * QP + p] == old.params[q * QP + p]))))


@rule(C, "set_device_status", "TRANSPORT-MSG-reset-invalidates")
def rule_reset_invalidates(L, old, args, ok, new, out):
    """SET_DEVICE_STATUS 0: status 0, no queue configured, no event pending, doorbell low."""
    return L.Implies(args["value"] == 0, L.And(ok, new.dev.status == 0, new.events == 0, L.Not(new.line),
                                               L.all_idx(len(new.max_size), lambda q: L.Not(new.configured[q]))))


@rule(C, "driver_take_events", "TRANSPORT-MSG-event-ack")
def rule_event_ack(L, old, args, ok, new, out):
    """Handling clears exactly the handled events."""
    return L.Implies(ok, new.events == old.events & ~args["mask"])


@rule(C, "event_used", "TRANSPORT-MSG-event-queue")
def rule_event_used_configured(L, old, args, ok, new, out):
    """EVENT_USED names a configured queue."""
    q = args["queue"]
    return L.Implies(ok, L.any_idx(len(old.max_size), lambda k: L.And(q == k, old.configured[k])))
