"""Rules of the register transports: what any conforming virtio-mmio register file may do in one step."""
from __future__ import annotations

from t1virtio.specs.rules import rule
from t1virtio.transport.regs import NPARAM, nqueues
from t1virtio.virtio.status import DEVICE_NEEDS_RESET, has

COMPONENTS = ("transport_mmio_msgq", "transport_mmio_emul", "transport_ivshmem")


def every(op, clause):
    def deco(fn):
        for c in COMPONENTS:
            rule(c, op, clause)(fn)
        return fn
    return deco


def _quiet(L, new):
    return L.And(new.dev.status == 0, new.interrupt_status == 0, L.Not(new.line),
                 L.all_idx(nqueues(new), lambda q: L.Not(new.ready[q])))


@every("write_queue_param", "TRANSPORT-queue-frozen-while-ready")
def rule_param_frozen_while_ready(L, old, args, ok, new, out):
    """No accepted write changes a parameter of a queue that is ready."""
    return L.all_idx(nqueues(old), lambda q: L.Implies(old.ready[q], L.all_idx(
        NPARAM, lambda p: new.params[q * NPARAM + p] == old.params[q * NPARAM + p])))


@every("write_interrupt_ack", "TRANSPORT-MMIO-ack-written-only")
def rule_ack_written_only(L, old, args, ok, new, out):
    """InterruptACK clears exactly the written bits; the line follows."""
    return L.Implies(ok, L.And(new.interrupt_status == old.interrupt_status & ~args["value"],
                               new.line == (new.interrupt_status != 0)))


@every("write_status", "TRANSPORT-MMIO-reset-clears")
def rule_reset_clears(L, old, args, ok, new, out):
    """A one-phase reset (or 0 over 0) completes at once: status, InterruptStatus, line and QueueReady cleared."""
    one_phase = L.Or(L.Not(old.two_phase), old.dev.status == 0)
    return L.Implies(L.And(ok, args["value"] == 0, one_phase), _quiet(L, new))


@every("backend_ack_reset", "TRANSPORT-MMIO-reset-clears")
def rule_ack_reset_clears(L, old, args, ok, new, out):
    """The backend's acknowledgement completes the reset."""
    return L.Implies(ok, L.And(_quiet(L, new), L.Not(new.reset_pending)))


@every("write_status", "TRANSPORT-EMUL-two-phase")
def rule_two_phase_reset(L, old, args, ok, new, out):
    """On a two-phase page a reset of a non-zero status shows DEVICE_NEEDS_RESET and stops every queue, pending."""
    asked = L.And(ok, old.two_phase, args["value"] == 0, old.dev.status != 0)
    return L.Implies(asked, L.And(has(L, new.dev.status, DEVICE_NEEDS_RESET), new.reset_pending,
                                  L.all_idx(nqueues(new), lambda q: L.Not(new.ready[q]))))


@every("device_use_queue", "TRANSPORT-MMIO-queue-not-ready")
def rule_use_ready_queue(L, old, args, ok, new, out):
    """The device uses only a ready queue."""
    q = args["queue"]
    return L.Implies(ok, L.any_idx(nqueues(old), lambda k: L.And(q == k, old.ready[k])))


@every("device_interrupt", "TRANSPORT-EMUL-assert-denied")
def rule_no_interrupt_while_reset(L, old, args, ok, new, out):
    """No interrupt is raised while a reset is pending."""
    return L.Implies(ok, L.Not(old.reset_pending))


@every("chan_reply", "TRANSPORT-CHAN-reply-order")
def rule_reply_in_order(L, old, args, ok, new, out):
    """An accepted reply answers the request in flight."""
    return L.Implies(ok, L.And(old.in_flight, args["seq"] == old.req_seq))


@every("write_queue_notify", "TRANSPORT-MMIO-notify-index")
def rule_notify_banked_queue(L, old, args, ok, new, out):
    """An accepted QueueNotify names a banked queue."""
    return L.Implies(ok, L.And(0 <= args["queue"], args["queue"] < nqueues(old)))


@every("driver_config_read", "TRANSPORT-MMIO-config-stable")
def rule_config_read_stable(L, old, args, ok, new, out):
    """A kept configuration read saw an even, unchanged generation."""
    return L.Implies(ok, L.And(L.Not(old.config_updating), args["before"] == old.config_generation))


@every("backend_ack_reset", "TRANSPORT-EMUL-ack-unrequested")
def rule_ack_only_pending(L, old, args, ok, new, out):
    """The backend's acknowledgement is accepted only for a pending reset."""
    return L.Implies(ok, old.reset_pending)
