"""Doorbell mutants (facts §3.2, §6.5): one or more per clause, caught by a proof or the machine."""
from __future__ import annotations

import importlib
from dataclasses import replace
from unittest import mock

from . import Mutant, drop_guard, replace_fn

M = "t1virtio.hyp.doorbell"


def _db():
    return importlib.import_module(M)


def _protocol(order):
    """Return a patch that runs the receiver's handler in ``order``."""
    return lambda: mock.patch.object(_db(), "RECEIVER_PROTOCOL", tuple(order))


def _unbind_leaves_in_service(orig, L, s):
    sp = orig(L, s)
    return replace(sp, new=replace(sp.new, virq_active=s.virq_active))


def _unbind_stays_bound(orig, L, s):
    sp = orig(L, s)
    return replace(sp, new=replace(sp.new, virq_bound=s.virq_bound))


def _send_level_from_old_flags(orig, L, s, new_flags):
    """The assertion decided on the flags before the OR: the first enabled flag raises nothing."""
    sp = orig(L, s, new_flags)
    db = _db()
    level_before = db.compute_level(s.flags, s.enable_mask)
    return replace(sp, new=replace(sp.new, virq_level=L.Or(s.virq_level, L.And(s.virq_bound, level_before))))


def _send_overwrites(orig, L, s, new_flags):
    sp = orig(L, s, new_flags)
    return replace(sp, new=replace(sp.new, flags=new_flags))


def _send_acks_always(orig, L, s, new_flags):
    sp = orig(L, s, new_flags)
    return replace(sp, new=replace(sp.new, flags=sp.new.flags & L.BitNot(s.ack_mask, s.width)))


def _edge_only_without_edge_bit(orig, L, s, new_flags):
    sp = orig(L, s, new_flags)
    level = _db().compute_level(s.flags | new_flags, s.enable_mask)
    return replace(sp, new=replace(sp.new, virq_edge=L.If(level, sp.new.virq_edge, s.virq_edge)))


def _receive_returns_new(orig, L, s, clear_flags):
    sp = orig(L, s, clear_flags)
    return replace(sp, out=sp.new.flags)


def _mask_never_deasserts(orig, L, s, enable_mask, ack_mask):
    sp = orig(L, s, enable_mask, ack_mask)
    was = _db().compute_level(s.flags, s.enable_mask)
    return replace(sp, new=replace(sp.new, virq_level=L.Or(sp.new.virq_level, L.And(was, s.virq_level))))


def _reset_keeps_ack(orig, L, s):
    sp = orig(L, s)
    return replace(sp, new=replace(sp.new, ack_mask=s.ack_mask))


def _reset_keeps_level(orig, L, s):
    sp = orig(L, s)
    return replace(sp, new=replace(sp.new, virq_level=s.virq_level))


def _deliver_keeps_edge(orig, L, s):
    sp = orig(L, s)
    return replace(sp, new=replace(sp.new, virq_edge=s.virq_edge))


def _check_pending_ignores_reassert(orig, L, s, reasserted):
    """check_pending that trusts the flags alone (the race the doorbell's comment warns about)."""
    return orig(L, s, reasserted=False)


def _send_acks_without_asserting(orig, L, s, new_flags):
    """A send that auto-acks but does not set the level: the wakeup is consumed with no interrupt."""
    sp = orig(L, s, new_flags)
    return replace(sp, new=replace(sp.new, virq_level=s.virq_level))


def _destroy_keeps_binding(orig, L, s):
    """Destroy without object_deactivate's vic_unbind: the VIRQ number stays bound to a dead object."""
    sp = orig(L, s)
    return replace(sp, new=replace(sp.new, virq_bound=s.virq_bound))


def _destroy_stays_active(orig, L, s):
    sp = orig(L, s)
    return replace(sp, new=replace(sp.new, lifecycle=s.lifecycle))


_IGNORE_REASSERT = replace_fn(M, "doorbell_check_pending", _check_pending_ignores_reassert)

MUTANTS = [
    Mutant("dbl-receive-zero-accepted", "HYP-DBL-receive-zero", "proof:doorbell:receive⊨rule_receive_clears",
           "HYP-DBL-receive", drop_guard(M, "doorbell_receive", "HYP-DBL-receive-zero"),
           "synthetic: receive(0) accepted instead of ARGUMENT_INVALID"),
    Mutant("dbl-bind-twice", "HYP-DBL-virq-bound", "proof:doorbell:bind⊨rule_bind_fresh", "HYP-DBL-bind",
           drop_guard(M, "doorbell_bind_virq", "HYP-DBL-virq-bound"),
           "synthetic: a second bind silently rebinds (no VIRQ_BOUND)"),
    Mutant("dbl-bind-busy-virq", "HYP-DBL-virq-busy", "proof:doorbell:bind⊨rule_bind_fresh", "HYP-DBL-bind",
           drop_guard(M, "doorbell_bind_virq", "HYP-DBL-virq-busy"),
           "synthetic: a VIRQ number that already has a source is taken over (no BUSY)"),
    Mutant("dbl-bind-missing-virq", "HYP-DBL-virq-number", "proof:doorbell:bind⊨rule_bind_fresh", "HYP-DBL-bind",
           drop_guard(M, "doorbell_bind_virq", "HYP-DBL-virq-number"),
           "synthetic: a VIRQ number the receiver does not have is accepted (no ARGUMENT_INVALID)"),
    Mutant("dbl-bind-busy-virq-machine", "HYP-DBL-virq-busy", "machine:doorbell", "HYP-DBL-bind",
           drop_guard(M, "doorbell_bind_virq", "HYP-DBL-virq-busy"),
           "synthetic: the machine binds the number another source holds", examples=200),
    Mutant("dbl-send-wide-word", "HYP-DBL-word", "machine:doorbell", "HYP-DBL-send-or",
           drop_guard(M, "doorbell_send", "HYP-DBL-word"),
           "synthetic: a word wider than the register is accepted", examples=60),
    Mutant("dbl-unbind-leaves-in-service", "HYP-DBL-unbound", "proof:doorbell:unbind⊢inv_unbound_source_quiet",
           "HYP-DBL-unbound", replace_fn(M, "doorbell_unbind_virq", _unbind_leaves_in_service), "synthetic"),
    Mutant("dbl-send-level-from-old-flags", "HYP-DBL-level", "proof:doorbell:send⊢inv_level_covers_enabled_flags",
           "HYP-DBL-level", replace_fn(M, "doorbell_send", _send_level_from_old_flags),
           "lost wakeup: the first enabled flag does not raise the level"),
    Mutant("dbl-send-level-from-old-flags-64", "HYP-DBL-level",
           "proof:doorbell64:send⊢inv_level_covers_enabled_flags", "HYP-DBL-level",
           replace_fn(M, "doorbell_send", _send_level_from_old_flags), "same bug at the Gunyah width (u64)"),
    Mutant("dbl-send-consumes-without-interrupt", "HYP-DBL-level", "machine:doorbell", "HYP-DBL-send-virq",
           replace_fn(M, "doorbell_send", _send_acks_without_asserting),
           "lost wakeup: flags auto-acked with no level assertion", examples=60),
    Mutant("dbl-send-overwrites", "HYP-DBL-send-or", "proof:doorbell:send⊨rule_send_is_monotone_or",
           "HYP-DBL-send-or", replace_fn(M, "doorbell_send", _send_overwrites), "synthetic: flags = new_flags"),
    Mutant("dbl-send-acks-on-edge-only", "HYP-DBL-auto-ack", "proof:doorbell:send⊨rule_send_auto_ack_on_level",
           "HYP-DBL-auto-ack", replace_fn(M, "doorbell_send", _send_acks_always),
           "synthetic: ack-masked flags cleared without a level assertion"),
    Mutant("dbl-send-edge-only-no-edge", "HYP-DBL-send-virq", "proof:doorbell:send⊨rule_send_asserts",
           "HYP-DBL-send-virq", replace_fn(M, "doorbell_send", _edge_only_without_edge_bit),
           "synthetic: the edge-only assertion is dropped (an edge-triggered receiver misses the send)"),
    Mutant("dbl-receive-returns-new", "HYP-DBL-receive", "proof:doorbell:receive⊨rule_receive_clears",
           "HYP-DBL-receive", replace_fn(M, "doorbell_receive", _receive_returns_new),
           "synthetic: receive returns the flags after clearing"),
    Mutant("dbl-mask-never-deasserts", "HYP-DBL-mask", "proof:doorbell:mask⊨rule_mask_was_now", "HYP-DBL-mask",
           replace_fn(M, "doorbell_mask", _mask_never_deasserts),
           "synthetic: masking every set flag leaves the level up"),
    Mutant("dbl-reset-keeps-ack", "HYP-DBL-reset", "proof:doorbell:reset⊨rule_reset_defaults", "HYP-DBL-reset",
           replace_fn(M, "doorbell_reset", _reset_keeps_ack), "synthetic"),
    Mutant("dbl-reset-keeps-level", "HYP-DBL-reset", "proof:doorbell:reset⊨rule_reset_defaults", "HYP-DBL-reset",
           replace_fn(M, "doorbell_reset", _reset_keeps_level), "synthetic: reset does not virq_clear"),
    Mutant("dbl-unbind-stays-bound", "HYP-DBL-bind", "proof:doorbell:unbind⊨rule_unbind_clears", "HYP-DBL-bind",
           replace_fn(M, "doorbell_unbind_virq", _unbind_stays_bound), "synthetic"),
    Mutant("dbl-deliver-keeps-edge", "HYP-DBL-deliver", "proof:doorbell:deliver⊨rule_deliver_takes_pending",
           "HYP-DBL-deliver", replace_fn(M, "virq_deliver", _deliver_keeps_edge),
           "synthetic: taking the VIRQ does not consume the edge (double delivery)"),
    Mutant("dbl-check-pending-ignores-reassert", "HYP-DBL-check-pending", "proof:doorbell:eoi⊨rule_eoi_check_pending",
           "HYP-DBL-check-pending", _IGNORE_REASSERT,
           "doorbell_handle_virq_check_pending without its `reasserted` case"),
    Mutant("dbl-lost-wakeup-at-eoi", "HYP-DBL-lost-wakeup", "proof:doorbell:lost-wakeup", "HYP-DBL-lost-wakeup",
           _IGNORE_REASSERT, "an auto-acked send between receive and EOI is lost when check_pending ignores it"),
    Mutant("dbl-lost-wakeup-at-eoi-64", "HYP-DBL-lost-wakeup", "proof:doorbell64:lost-wakeup",
           "HYP-DBL-lost-wakeup", _IGNORE_REASSERT, "the same race at the Gunyah width (u64)"),
    Mutant("dbl-eoi-before-receive", "HYP-DBL-receiver-protocol", "proof:doorbell:receiver-protocol",
           "HYP-DBL-receiver-protocol", _protocol(("deliver", "eoi", "receive")),
           "receiver protocol broken: EOI before receive re-raises the VIRQ (facts §3.2)"),
    Mutant("dbl-send-before-activate", "HYP-DBL-object-state", "proof:doorbell:send⊨rule_send_is_monotone_or",
           "HYP-DBL-send-or", drop_guard(M, "doorbell_send", "HYP-DBL-object-state"),
           "synthetic: send on an INIT or destroyed doorbell (Gunyah: OBJECT_STATE from the active-only lookup)"),
    Mutant("dbl-bind-before-activate", "HYP-DBL-object-state", "proof:doorbell:bind⊢inv_lifecycle",
           "HYP-DBL-lifecycle", drop_guard(M, "doorbell_bind_virq", "HYP-DBL-object-state"),
           "synthetic: a VIRQ bound to an INIT or destroyed doorbell"),
    Mutant("dbl-activate-twice", "HYP-DBL-object-state", "proof:doorbell:activate⊨rule_activate",
           "HYP-DBL-lifecycle-rule", drop_guard(M, "doorbell_activate", "HYP-DBL-object-state"),
           "synthetic: object_activate of an ACTIVE or destroyed doorbell accepted"),
    Mutant("dbl-receive-after-destroy-machine", "HYP-DBL-object-state", "machine:doorbell", "HYP-DBL-receive",
           drop_guard(M, "doorbell_receive", "HYP-DBL-object-state"),
           "synthetic: receive on a destroyed or INIT doorbell accepted", examples=100),
    Mutant("dbl-destroy-keeps-binding", "HYP-DBL-lifecycle", "proof:doorbell:destroy⊢inv_lifecycle",
           "HYP-DBL-lifecycle", replace_fn(M, "doorbell_destroy", _destroy_keeps_binding),
           "synthetic: destroy without vic_unbind (object_deactivate_doorbell)"),
    Mutant("dbl-destroy-stays-active", "HYP-DBL-lifecycle-rule", "proof:doorbell:destroy⊨rule_destroy",
           "HYP-DBL-lifecycle-rule", replace_fn(M, "doorbell_destroy", _destroy_stays_active),
           "synthetic: a destroyed doorbell still answers hypercalls"),
]
