"""virtio-msg mutants (facts/upstream.md §5.4, §6.7)."""
from __future__ import annotations

from dataclasses import replace

from t1virtio.state import evolve

from . import Mutant, drop_guard, replace_fn

M = "t1virtio.transport.msg"
P = "proof:transport_msg:"


def _answer_twice(orig, L, s, msg_id, token):
    sp = orig(L, s, msg_id, token)
    return replace(sp, new=evolve(sp.new, answered=s.answered + 2))


def _config_always_accepted(orig, L, s, generation):
    return orig(L, s, s.generation)


def _reset_keeps_queues(orig, L, s, value):
    sp = orig(L, s, value)
    return replace(sp, new=evolve(sp.new, configured=s.configured))


def _take_all_events(orig, L, s, mask):
    return orig(L, s, mask | 0xFF)


MUTANTS = [
    Mutant("msg-response-out-of-order", "TRANSPORT-MSG-in-order", P + "response⊨rule_response_in_order",
           "TRANSPORT-MSG-in-order", drop_guard(M, "response", "TRANSPORT-MSG-in-order"), "issue 13"),
    Mutant("msg-response-out-of-order-machine", "TRANSPORT-MSG-in-order", "machine:transport_msg",
           "TRANSPORT-MSG-in-order", drop_guard(M, "response", "TRANSPORT-MSG-in-order"), "issue 13"),
    Mutant("msg-response-answers-two", "TRANSPORT-MSG-window", P + "response⊢inv_replies_in_order",
           "TRANSPORT-MSG-window", replace_fn(M, "response", _answer_twice), "synthetic"),
    Mutant("msg-window-overrun", "TRANSPORT-MSG-window-full", P + "request⊢inv_replies_in_order",
           "TRANSPORT-MSG-window", drop_guard(M, "request", "TRANSPORT-MSG-window-full"), "synthetic"),
    Mutant("msg-unsolicited-response", "TRANSPORT-MSG-unsolicited", P + "response⊢inv_replies_in_order",
           "TRANSPORT-MSG-window", drop_guard(M, "response", "TRANSPORT-MSG-unsolicited"), "synthetic"),
    Mutant("msg-reserved-type-bits", "TRANSPORT-MSG-header", "scenario:test_transport_msg:malformed_accepted",
           "TRANSPORT-MSG-header",
           replace_fn(M, "decode", lambda orig, data, size, response: orig(bytes([data[0] & 3]) + data[1:], size,
                                                                              response)), "synthetic"),
    Mutant("msg-stale-config-accepted", "TRANSPORT-MSG-stale-generation", P + "set_config⊨rule_stale_generation",
           "TRANSPORT-MSG-stale-generation", replace_fn(M, "set_config", _config_always_accepted), "synthetic"),
    Mutant("msg-queue-above-max", "TRANSPORT-MSG-queue-size", P + "set_vqueue⊢inv_queue_sizes",
           "TRANSPORT-MSG-queue-size", drop_guard(M, "set_vqueue", "TRANSPORT-MSG-queue-size"), "synthetic"),
    Mutant("msg-live-queue-changed", "TRANSPORT-MSG-queue-live", P + "set_vqueue⊨rule_live_queue_frozen",
           "TRANSPORT-queue-frozen-while-ready", drop_guard(M, "set_vqueue", "TRANSPORT-MSG-queue-live"), "issue 13"),
    Mutant("msg-event-unconfigured-queue", "TRANSPORT-MSG-event-queue", P + "event_used⊨rule_event_used_configured",
           "TRANSPORT-MSG-event-queue", drop_guard(M, "event_used", "TRANSPORT-MSG-event-queue"), "synthetic"),
    Mutant("msg-reset-keeps-queues", "TRANSPORT-MSG-reset-invalidates", P + "set_device_status⊨rule_reset_invalidates",
           "TRANSPORT-MSG-reset-invalidates", replace_fn(M, "set_device_status", _reset_keeps_queues), "synthetic"),
    Mutant("msg-event-ack-clears-all", "TRANSPORT-MSG-event-ack", P + "driver_take_events⊨rule_event_ack",
           "TRANSPORT-MSG-event-ack", replace_fn(M, "driver_take_events", _take_all_events), "synthetic"),
]
