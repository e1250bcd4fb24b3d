"""Invariants of the register transports (virtio 1.3 §4.2; facts/upstream.md §3.5, §5.2, §5.3, §6.6, §6.8).

The three register transports share one register file (``t1virtio.transport.regs``); each is its own
component (docs/transport.md), and every invariant below is registered for all three.
"""
from __future__ import annotations

from t1virtio.specs.invariants import invariant
from t1virtio.transport.regs import INT_DEFINED, NPARAM, P_NUM, nqueues
from t1virtio.virtio.status import (ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK, FEATURES_OK,
                                    STATUS_DEFINED, has)

COMPONENTS = ("transport_mmio_msgq", "transport_mmio_emul", "transport_ivshmem")


def every(clause):
    """Register an invariant for every register transport."""
    def deco(fn):
        for c in COMPONENTS:
            invariant(c, clause)(fn)
        return fn
    return deco


@every("TRANSPORT-one-in-flight")
def inv_one_in_flight(L, s):
    """Every request but the one in flight has had its reply: at most one is outstanding."""
    return L.And(s.answered >= 0, s.sent - s.answered == L.If(s.in_flight, 1, 0))


@every("TRANSPORT-status-monotone")
def inv_status_monotone(L, s):
    """Every status bit set since the last reset is still set."""
    return (s.seen & ~s.dev.status) == 0


@every("TRANSPORT-no-queue-before-driver-ok")
def inv_no_queue_before_driver_ok(L, s):
    """Without DRIVER_OK: no QueueNotify, no buffer consumed, no used-buffer interrupt since the last reset."""
    d = s.dev
    return L.Implies(L.Not(has(L, d.status, DRIVER_OK)),
                     L.And(d.avail_notifications == 0, d.consumed == 0, d.used_notifications == 0))


@every("TRANSPORT-queue-frozen-while-ready")
def inv_queue_frozen_while_ready(L, s):
    """A ready queue has the size and addresses it was enabled with."""
    return L.all_idx(nqueues(s), lambda q: L.Implies(
        s.ready[q], L.all_idx(NPARAM, lambda p: s.params[q * NPARAM + p] == s.armed[q * NPARAM + p])))


@every("TRANSPORT-interrupt-line")
def inv_interrupt_line(L, s):
    """The interrupt line is asserted exactly while InterruptStatus is non-zero."""
    return s.line == (s.interrupt_status != 0)


@every("TRANSPORT-MMIO-ready-params")
def inv_ready_params(L, s):
    """Selectors in range, InterruptStatus defined bits only, QueueNum at most QueueNumMax (non-zero when ready)."""
    n = nqueues(s)
    return L.And(0 <= s.queue_sel, s.queue_sel < n, 0 <= s.device_features_sel, s.device_features_sel < 2,
                 0 <= s.driver_features_sel, s.driver_features_sel < 2, (s.interrupt_status & ~INT_DEFINED) == 0,
                 L.all_idx(n, lambda q: L.And(
                     0 <= s.params[q * NPARAM + P_NUM], s.params[q * NPARAM + P_NUM] <= s.num_max[q],
                     L.Implies(s.ready[q], s.params[q * NPARAM + P_NUM] != 0))))


@every("TRANSPORT-MMIO-config-generation")
def inv_config_generation(L, s):
    """The configuration generation is odd exactly while an update runs."""
    return L.And(s.config_generation >= 0, s.config_updating == (L.mod(s.config_generation, 2) == 1))


@every("TRANSPORT-EMUL-reset-pending")
def inv_reset_pending(L, s):
    """A pending reset: two-phase page, DEVICE_NEEDS_RESET shown, no queue ready."""
    return L.Implies(s.reset_pending, L.And(s.two_phase, has(L, s.dev.status, DEVICE_NEEDS_RESET),
                                            L.all_idx(nqueues(s), lambda q: L.Not(s.ready[q]))))


# the device status invariants the transport relies on (virtio.status, reused on the register file's device)
@every("VIRTIO/model/status#reserved-bits")
def inv_status_defined_bits(L, s):
    """Device status holds only defined bits."""
    return (s.dev.status & ~STATUS_DEFINED) == 0


@every("VIRTIO/driver/General Initialization And Device Operation/Device Initialization#order")
def inv_init_order(L, s):
    """DRIVER needs ACKNOWLEDGE, FEATURES_OK needs DRIVER, DRIVER_OK needs FEATURES_OK (§3.1.1)."""
    st = s.dev.status
    return L.And(L.Implies(has(L, st, DRIVER), has(L, st, ACKNOWLEDGE)),
                 L.Implies(has(L, st, FEATURES_OK), has(L, st, DRIVER)),
                 L.Implies(has(L, st, DRIVER_OK), has(L, st, FEATURES_OK)))
