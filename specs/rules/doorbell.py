"""Rules of the hypervisor doorbell: what any conforming doorbell may do in one step (facts §3.2)."""
from __future__ import annotations

from t1virtio.hyp.doorbell import OBJ_ACTIVE, OBJ_DESTROYED, OBJ_INIT, compute_level, compute_word_mask, is_active, \
    is_virq_deliverable, is_word
from t1virtio.specs.rules import rule


def _same_masks(L, old, new):
    return L.And(new.enable_mask == old.enable_mask, new.ack_mask == old.ack_mask)


def _same_virq(L, old, new):
    return L.And(new.virq_bound == old.virq_bound, new.virq_edge_trigger == old.virq_edge_trigger,
                 new.virq_level == old.virq_level, new.virq_edge == old.virq_edge,
                 new.virq_active == old.virq_active)


def _sent(L, old, args):
    return old.flags | args["new_flags"]


@rule("doorbell", "send", "HYP-DBL-send-or")
def rule_send_is_monotone_or(L, old, args, ok, new, out):
    """Accepted iff ACTIVE, for every word; returns the old flags; flags outside the ack mask become old | new; no
    flag appears that was neither set nor sent; the masks do not change."""
    sent = _sent(L, old, args)
    keep = L.BitNot(old.ack_mask, old.width)
    return L.And(ok == L.And(is_active(L, old), is_word(L, old, args["new_flags"])), L.Implies(ok, L.And(
        out == old.flags, (new.flags & keep) == (sent & keep), (new.flags & L.BitNot(sent, old.width)) == 0,
        _same_masks(L, old, new))))


@rule("doorbell", "send", "HYP-DBL-auto-ack")
def rule_send_auto_ack_on_level(L, old, args, ok, new, out):
    """The ack-masked flags are cleared exactly when the send makes a level assertion."""
    sent = _sent(L, old, args)
    level = compute_level(sent, old.enable_mask)
    return L.Implies(ok, (new.flags & old.ack_mask) == L.If(level, 0, sent & old.ack_mask))


@rule("doorbell", "send", "HYP-DBL-send-virq")
def rule_send_asserts(L, old, args, ok, new, out):
    """Bound: edge bit set, level asserted iff enabled flags are set (else kept); unbound: no VIRQ change."""
    level = compute_level(_sent(L, old, args), old.enable_mask)
    return L.Implies(ok, L.And(
        new.virq_bound == old.virq_bound, new.virq_edge_trigger == old.virq_edge_trigger,
        new.virq_active == old.virq_active,
        L.If(old.virq_bound, L.And(new.virq_edge, new.virq_level == L.Or(old.virq_level, level)),
             L.And(new.virq_edge == old.virq_edge, new.virq_level == old.virq_level))))


@rule("doorbell", "receive", "HYP-DBL-receive")
def rule_receive_clears(L, old, args, ok, new, out):
    """Accepted iff ACTIVE and clear_flags is a non-zero word; returns old flags, clears exactly those; VIRQ, masks untouched."""
    clear = args["clear_flags"]
    legal = L.And(is_active(L, old), is_word(L, old, clear), clear != 0)
    return L.And(ok == legal, L.Implies(ok, L.And(
        out == old.flags, new.flags == (old.flags & L.BitNot(clear, old.width)),
        _same_masks(L, old, new), _same_virq(L, old, new))))


@rule("doorbell", "mask", "HYP-DBL-mask")
def rule_mask_was_now(L, old, args, ok, new, out):
    """Accepted iff ACTIVE and both are words; stores both masks; was and not now: level down; now and not was: level up (bound); else the VIRQ is kept."""
    enable, ack = args["enable_mask"], args["ack_mask"]
    was = compute_level(old.flags, old.enable_mask)
    now = compute_level(old.flags, enable)
    level = L.If(L.And(was, L.Not(now)), False,
                 L.If(L.And(L.Not(was), now), L.Or(old.virq_level, old.virq_bound), old.virq_level))
    return L.And(ok == L.And(is_active(L, old), is_word(L, old, enable), is_word(L, old, ack)), L.Implies(ok, L.And(
        new.enable_mask == enable, new.ack_mask == ack, new.virq_level == level,
        new.virq_bound == old.virq_bound, new.virq_active == old.virq_active)))


@rule("doorbell", "mask", "HYP-DBL-auto-ack")
def rule_mask_auto_ack_when_enabled(L, old, args, ok, new, out):
    """Flags in the new ack mask are cleared exactly when enabled flags are set under the new enable mask."""
    now = compute_level(old.flags, args["enable_mask"])
    ack = args["ack_mask"]
    return L.Implies(ok, L.And((new.flags & ack) == L.If(now, 0, old.flags & ack),
                               (new.flags & L.BitNot(ack, old.width)) == (old.flags & L.BitNot(ack, old.width))))


@rule("doorbell", "reset", "HYP-DBL-reset")
def rule_reset_defaults(L, old, args, ok, new, out):
    """Accepted iff ACTIVE: flags 0, ack 0, enable all ones, level deasserted; binding and trigger kept."""
    return L.And(ok == is_active(L, old), L.Implies(ok, L.And(new.flags == 0, new.ack_mask == 0, new.enable_mask == compute_word_mask(old.width),
                 L.Not(new.virq_level), new.virq_bound == old.virq_bound,
                 new.virq_edge_trigger == old.virq_edge_trigger)))


@rule("doorbell", "bind", "HYP-DBL-bind")
def rule_bind_fresh(L, old, args, ok, new, out):
    """Accepted iff ACTIVE, unbound and the VIRQ number exists and has no source; binds a fresh, unasserted VIRQ
    with the chosen trigger and number; doorbell words unchanged."""
    legal = L.And(is_active(L, old), L.Not(old.virq_bound), args["virq_exists"], args["virq_free"])
    return L.And(ok == legal, L.Implies(ok, L.And(
        new.virq_bound, new.virq == args["virq"], new.virq_edge_trigger == args["edge_trigger"], L.Not(new.virq_level),
        L.Not(new.virq_edge), L.Not(new.virq_active), new.flags == old.flags, _same_masks(L, old, new))))


@rule("doorbell", "unbind", "HYP-DBL-bind")
def rule_unbind_clears(L, old, args, ok, new, out):
    """Accepted iff ACTIVE (also when unbound); the source is unbound and cleared; doorbell words unchanged."""
    return L.And(ok == is_active(L, old), L.Implies(ok, L.And(
        L.Not(new.virq_bound), L.Not(new.virq_level), L.Not(new.virq_edge), L.Not(new.virq_active),
        new.flags == old.flags, _same_masks(L, old, new))))


@rule("doorbell", "deliver", "HYP-DBL-deliver")
def rule_deliver_takes_pending(L, old, args, ok, new, out):
    """Taken iff deliverable: then in service with the edge bit clear, level kept; else nothing changes."""
    take = is_virq_deliverable(L, old)
    return L.And(ok, out == take, new.flags == old.flags, _same_masks(L, old, new),
                 L.If(take, L.And(new.virq_active, L.Not(new.virq_edge), new.virq_level == old.virq_level,
                                  new.virq_bound),
                      _same_virq(L, old, new)))


@rule("doorbell", "eoi", "HYP-DBL-check-pending")
def rule_eoi_check_pending(L, old, args, ok, new, out):
    """In service: ends it; the level stays iff it was up and (reasserted or enabled flags set). Else no change."""
    stays = L.And(old.virq_level, L.Or(old.virq_edge, compute_level(old.flags, old.enable_mask)))
    return L.And(ok, out == old.virq_active, new.flags == old.flags, _same_masks(L, old, new),
                 L.If(old.virq_active, L.And(L.Not(new.virq_active), new.virq_level == stays,
                                             new.virq_edge == old.virq_edge, new.virq_bound == old.virq_bound),
                      _same_virq(L, old, new)))


@rule("doorbell", "activate", "HYP-DBL-lifecycle-rule")
def rule_activate(L, old, args, ok, new, out):
    """Accepted iff INIT (never OBJECT_CONFIG: a doorbell has nothing to configure); ACTIVE, nothing else changes."""
    return L.And(ok == (old.lifecycle == OBJ_INIT), L.Implies(ok, L.And(
        new.lifecycle == OBJ_ACTIVE, new.flags == old.flags, _same_masks(L, old, new), _same_virq(L, old, new))))


@rule("doorbell", "destroy", "HYP-DBL-lifecycle-rule")
def rule_destroy(L, old, args, ok, new, out):
    """Accepted iff not destroyed already; destroyed, the VIRQ source unbound and cleared."""
    return L.And(ok == (old.lifecycle != OBJ_DESTROYED), L.Implies(ok, L.And(
        new.lifecycle == OBJ_DESTROYED, L.Not(new.virq_bound), L.Not(new.virq_level), L.Not(new.virq_edge),
        L.Not(new.virq_active))))
