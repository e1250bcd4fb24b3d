"""Register transport mutants: virtio-mmio over a message-queue pair, the emulated page, ivshmem2-virtio."""
from __future__ import annotations

from t1virtio.state import evolve

from . import Mutant, drop_guard, replace_fn

M = "t1virtio.transport.regs"
ST = "t1virtio.virtio.status"
Q = "proof:transport_mmio_msgq:"
E = "proof:transport_mmio_emul:"
V = "proof:transport_ivshmem:"
SC = "scenario:test_transport_mmio:"
_INIT = "VIRTIO/driver/General Initialization And Device Operation/Device Initialization"


def _ack_clears_all(orig, L, s, value):
    """InterruptACK clears every bit, written or not."""
    sp = orig(L, s, value)
    return evolve_step(sp, evolve(sp.new, interrupt_status=s.interrupt_status & 0, line=False))


def _ack_keeps_line(orig, L, s, value):
    """InterruptACK updates InterruptStatus but leaves the line as it was."""
    sp = orig(L, s, value)
    return evolve_step(sp, evolve(sp.new, line=s.line))


def _reset_keeps_interrupts(orig, L, s):
    """A reset that forgets to clear InterruptStatus."""
    return evolve(orig(L, s), interrupt_status=s.interrupt_status, line=s.line)


def _config_end_stays_odd(orig, L, s):
    """The update ends without advancing the generation: it stays odd."""
    sp = orig(L, s)
    return evolve_step(sp, evolve(sp.new, config_generation=s.config_generation))


def _reply_keeps_in_flight(orig, L, s, seq):
    """A reply that counts as answered but leaves the request in flight."""
    sp = orig(L, s, seq)
    return evolve_step(sp, evolve(sp.new, in_flight=s.in_flight))


def _one_phase_reset(orig, L, s, value):
    """The emulated page resets at once, without waiting for the backend."""
    return orig(L, evolve(s, two_phase=False), value)


def _pending_keeps_queues(orig, L, s, value):
    """A reset request that leaves the queues ready."""
    sp = orig(L, s, value)
    return evolve_step(sp, L.If(sp.new.reset_pending, evolve(sp.new, ready=s.ready), sp.new))


def evolve_step(sp, new):
    from dataclasses import replace
    return replace(sp, new=new)


MUTANTS = [
    # the five transport properties
    Mutant("mmio-second-request-in-flight", "TRANSPORT-CHAN-busy", Q + "chan_request⊢inv_one_in_flight",
           "TRANSPORT-one-in-flight", drop_guard(M, "chan_request", "TRANSPORT-CHAN-busy"), "synthetic"),
    Mutant("mmio-reply-keeps-in-flight", "TRANSPORT-one-in-flight", Q + "chan_reply⊢inv_one_in_flight",
           "TRANSPORT-one-in-flight", replace_fn(M, "chan_reply", _reply_keeps_in_flight), "synthetic"),
    Mutant("mmio-unsolicited-reply", "TRANSPORT-CHAN-reply-unsolicited", V + "chan_reply⊢inv_one_in_flight",
           "TRANSPORT-one-in-flight", drop_guard(M, "chan_reply", "TRANSPORT-CHAN-reply-unsolicited"), "synthetic"),
    Mutant("mmio-reply-out-of-order", "TRANSPORT-CHAN-reply-order", Q + "chan_reply⊨rule_reply_in_order",
           "TRANSPORT-CHAN-reply-order", drop_guard(M, "chan_reply", "TRANSPORT-CHAN-reply-order"), "synthetic"),
    Mutant("mmio-status-bit-cleared", "TRANSPORT-status-monotone", Q + "write_status⊢inv_status_monotone",
           "TRANSPORT-status-monotone", drop_guard(ST, "write_status", "VIRTIO/driver/Device Status Field#never-clear"),
           "synthetic"),
    Mutant("mmio-notify-before-driver-ok", "TRANSPORT-no-queue-before-driver-ok",
           Q + "write_queue_notify⊢inv_no_queue_before_driver_ok", "TRANSPORT-no-queue-before-driver-ok",
           drop_guard(ST, "driver_notify", f"{_INIT}#notify"), "legacy drivers kicked before DRIVER_OK"),
    Mutant("mmio-queue-change-while-ready", "TRANSPORT-queue-frozen-while-ready",
           Q + "write_queue_param⊢inv_queue_frozen_while_ready", "TRANSPORT-queue-frozen-while-ready",
           drop_guard(M, "write_queue_param", "TRANSPORT-queue-frozen-while-ready"), "issue 13"),
    Mutant("emul-queue-change-while-ready", "TRANSPORT-queue-frozen-while-ready",
           E + "write_queue_param⊨rule_param_frozen_while_ready", "TRANSPORT-queue-frozen-while-ready",
           drop_guard(M, "write_queue_param", "TRANSPORT-queue-frozen-while-ready"), "issue 13"),
    Mutant("mmio-queue-change-while-ready-machine", "TRANSPORT-queue-frozen-while-ready",
           "machine:transport_mmio_msgq", "TRANSPORT-queue-frozen-while-ready",
           drop_guard(M, "write_queue_param", "TRANSPORT-queue-frozen-while-ready"), "issue 13"),
    Mutant("mmio-ack-keeps-line", "TRANSPORT-interrupt-line", Q + "write_interrupt_ack⊢inv_interrupt_line",
           "TRANSPORT-interrupt-line", replace_fn(M, "write_interrupt_ack", _ack_keeps_line), "synthetic"),
    Mutant("mmio-ack-clears-unwritten", "TRANSPORT-MMIO-ack-written-only",
           Q + "write_interrupt_ack⊨rule_ack_written_only", "TRANSPORT-MMIO-ack-written-only",
           replace_fn(M, "write_interrupt_ack", _ack_clears_all), "issue 13"),
    Mutant("msgq-ack-clears-unwritten-scenario", "TRANSPORT-MMIO-ack-written-only", SC + "msgq_ack_clears_unwritten",
           "TRANSPORT-MMIO-ack-written-only", replace_fn(M, "write_interrupt_ack", _ack_clears_all), "issue 13"),
    # register file
    Mutant("mmio-queue-sel-unbanked", "TRANSPORT-MMIO-selector", Q + "write_queue_sel⊢inv_ready_params",
           "TRANSPORT-MMIO-ready-params", drop_guard(M, "write_queue_sel", "TRANSPORT-MMIO-selector"), "synthetic"),
    Mutant("mmio-queue-num-above-max", "TRANSPORT-MMIO-queue-size", Q + "write_queue_param⊢inv_ready_params",
           "TRANSPORT-MMIO-ready-params", drop_guard(M, "write_queue_param", "TRANSPORT-MMIO-queue-size"), "synthetic"),
    Mutant("mmio-enable-empty-queue", "TRANSPORT-MMIO-ready-params", Q + "write_queue_ready⊢inv_ready_params",
           "TRANSPORT-MMIO-ready-params", drop_guard(M, "write_queue_ready", "TRANSPORT-MMIO-queue-size"), "synthetic"),
    Mutant("mmio-param-register-unknown", "TRANSPORT-MMIO-param", Q + "write_queue_param⊢index-safe",
           "MODEL-index-in-range", drop_guard(M, "write_queue_param", "TRANSPORT-MMIO-param"), "synthetic"),
    Mutant("mmio-notify-unbanked", "TRANSPORT-MMIO-notify-index", Q + "write_queue_notify⊨rule_notify_banked_queue",
           "TRANSPORT-MMIO-notify-index", drop_guard(M, "write_queue_notify", "TRANSPORT-MMIO-notify-index"), "synthetic"),
    Mutant("mmio-device-uses-stopped-queue", "TRANSPORT-MMIO-queue-not-ready", Q + "device_use_queue⊨rule_use_ready_queue",
           "TRANSPORT-MMIO-queue-not-ready", drop_guard(M, "device_use_queue", "TRANSPORT-MMIO-queue-not-ready"),
           "synthetic"),
    Mutant("mmio-undefined-interrupt-bit", "TRANSPORT-MMIO-interrupt-bits", Q + "device_interrupt⊢inv_ready_params",
           "TRANSPORT-MMIO-ready-params", drop_guard(M, "device_interrupt", "TRANSPORT-MMIO-interrupt-bits"), "synthetic"),
    Mutant("mmio-reset-keeps-interrupts", "TRANSPORT-MMIO-reset-clears", Q + "write_status⊨rule_reset_clears",
           "TRANSPORT-MMIO-reset-clears", replace_fn(M, "_after_reset", _reset_keeps_interrupts), "synthetic"),
    Mutant("ivshmem-generation-stays-odd", "TRANSPORT-MMIO-config-generation", V + "config_end⊢inv_config_generation",
           "TRANSPORT-MMIO-config-generation", replace_fn(M, "config_end", _config_end_stays_odd), "synthetic"),
    Mutant("ivshmem-nested-config-update", "TRANSPORT-MMIO-config-update", V + "config_begin⊢inv_config_generation",
           "TRANSPORT-MMIO-config-generation", drop_guard(M, "config_begin", "TRANSPORT-MMIO-config-update"), "synthetic"),
    Mutant("ivshmem-read-during-update", "TRANSPORT-MMIO-config-stable", V + "driver_config_read⊨rule_config_read_stable",
           "TRANSPORT-MMIO-config-stable", drop_guard(M, "driver_config_read", "TRANSPORT-MMIO-config-stable"), "synthetic"),
    Mutant("mmio-wire-accepts-malformed", "TRANSPORT-WIRE-malformed", SC + "wire_accepts_malformed",
           "TRANSPORT-WIRE-malformed",
           replace_fn("t1virtio.transport.mmio_msgq", "decode",
                      lambda orig, data, reply: orig(bytes([1]) + data[1:], reply)), "synthetic"),
    # Gunyah emulated page
    Mutant("emul-one-phase-reset", "TRANSPORT-EMUL-two-phase", E + "write_status⊨rule_two_phase_reset",
           "TRANSPORT-EMUL-two-phase", replace_fn(M, "write_status", _one_phase_reset), "synthetic"),
    Mutant("emul-write-during-reset", "TRANSPORT-EMUL-reset-wait", E + "write_queue_ready⊢inv_reset_pending",
           "TRANSPORT-EMUL-reset-pending", drop_guard(M, "write_queue_ready", "TRANSPORT-EMUL-reset-wait"), "synthetic"),
    Mutant("emul-ack-without-request", "TRANSPORT-EMUL-ack-unrequested", E + "backend_ack_reset⊨rule_ack_only_pending",
           "TRANSPORT-EMUL-ack-unrequested", drop_guard(M, "backend_ack_reset", "TRANSPORT-EMUL-ack-unrequested"),
           "synthetic"),
    Mutant("emul-interrupt-during-reset", "TRANSPORT-EMUL-assert-denied",
           E + "device_interrupt⊨rule_no_interrupt_while_reset", "TRANSPORT-EMUL-assert-denied",
           drop_guard(M, "device_interrupt", "TRANSPORT-EMUL-assert-denied"), "Gunyah backend_assert_virq DENIED"),
    Mutant("emul-reset-request-keeps-queues", "TRANSPORT-EMUL-reset-pending", E + "write_status⊢inv_reset_pending",
           "TRANSPORT-EMUL-reset-pending", replace_fn(M, "write_status", _pending_keeps_queues), "synthetic"),
    Mutant("emul-byte-write-to-register", "TRANSPORT-EMUL-access", SC + "emul_accepts_bad_access",
           "TRANSPORT-EMUL-access",
           replace_fn("t1virtio.transport.emulated", "EmulatedPage.trap_write",
                      lambda orig, self, offset, value, width=4: orig(self, offset, value, 4)), "synthetic"),
    Mutant("emul-page-not-mirrored", "TRANSPORT-EMUL-page-mirror", SC + "emul_page_stale",
           "TRANSPORT-EMUL-page-mirror",
           replace_fn("t1virtio.transport.emulated", "EmulatedPage.sync", lambda orig, self: None), "synthetic"),
    # ivshmem
    Mutant("ivshmem-ignores-dead-peer", "TRANSPORT-IVSHMEM-peer-ready", SC + "ivshmem_writes_to_dead_peer",
           "TRANSPORT-IVSHMEM-peer-ready",
           replace_fn("t1virtio.transport.ivshmem", "IvshmemFrontend._wait", lambda orig, self, done: None),
           "virtio_ivshmem.c: backend failed"),
]
