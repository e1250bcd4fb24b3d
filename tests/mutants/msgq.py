"""Message-queue mutants (facts §3.1)."""
from __future__ import annotations

from dataclasses import replace

from . import Mutant, drop_guard, replace_fn

M = "t1virtio.hyp.msgq"


def _send_no_count(orig, L, s, size, flags):
    sp = orig(L, s, size, flags)
    return replace(sp, new=replace(sp.new, count=s.count))


def _receive_tail_not_head(orig, L, s, bufsize):
    sp = orig(L, s, bufsize)
    return replace(sp, new=replace(sp.new, head=s.head))


def _send_no_rx_assert(orig, L, s, size, flags):
    sp = orig(L, s, size, flags)
    return replace(sp, new=replace(sp.new, rx_virq=s.rx_virq))


def _send_sticky_tx(orig, L, s, size, flags):
    sp = orig(L, s, size, flags)
    return replace(sp, new=replace(sp.new, tx_virq=s.tx_virq))


def _configure_send_any(orig, L, s, notfull_thd):
    sp = orig(L, s, notfull_thd)
    return replace(sp, guards=())


def _send_oversize_truncates(orig, L, s, size, flags):
    sp = orig(L, s, size, flags)
    return replace(sp, new=replace(sp.new, sizes=L.update(sp.new.sizes, s.head, s.max_size + 1)))


def _flush_keeps_rx(orig, L, s):
    sp = orig(L, s)
    return replace(sp, new=replace(sp.new, rx_virq=s.rx_virq))


def _depth_thd_off_by_one(orig, L, s, notempty_thd):
    sp = orig(L, s, notempty_thd)
    return replace(sp, new=replace(sp.new, notempty_thd=L.If(notempty_thd == -2, s.depth + 1, sp.new.notempty_thd)))


MUTANTS = [
    Mutant("msgq-depth-threshold-off-by-one", "HYP-MSGQ-thresholds", "proof:msgq:configure_receive⊢inv_thresholds",
           "HYP-MSGQ-thresholds", replace_fn(M, "msgq_configure_receive", _depth_thd_off_by_one), "synthetic"),
    Mutant("msgq-send-past-depth", "HYP-MSGQ-full", "proof:msgq:send⊢inv_count_within_depth", "HYP-MSGQ-count",
           drop_guard(M, "msgq_send", "HYP-MSGQ-full"), "synthetic: no MSGQUEUE_FULL check"),
    Mutant("msgq-send-any-size", "HYP-MSGQ-size", "proof:msgq:send⊨rule_send_appends_one", "HYP-MSGQ-send-rule",
           drop_guard(M, "msgq_send", "HYP-MSGQ-size"), "synthetic: no ARGUMENT_SIZE check"),
    Mutant("msgq-send-reserved-flags", "HYP-MSGQ-flags", "proof:msgq:send⊨rule_send_appends_one", "HYP-MSGQ-send-rule",
           drop_guard(M, "msgq_send", "HYP-MSGQ-flags"), "synthetic: reserved flag bits ignored"),
    Mutant("msgq-receive-empty", "HYP-MSGQ-empty", "proof:msgq:receive⊢inv_count_within_depth", "HYP-MSGQ-count",
           drop_guard(M, "msgq_receive", "HYP-MSGQ-empty"), "synthetic: receive underflows count"),
    Mutant("msgq-receive-truncates", "HYP-MSGQ-overflow", "machine:msgq", "HYP-MSGQ-receive-rule",
           drop_guard(M, "msgq_receive", "HYP-MSGQ-overflow"), "synthetic: a short buffer truncates instead of ADDR_OVERFLOW"),
    Mutant("msgq-configure-send-any", "HYP-MSGQ-notfull-thd", "proof:msgq:configure_send⊢inv_thresholds",
           "HYP-MSGQ-thresholds", replace_fn(M, "msgq_configure_send", _configure_send_any), "synthetic"),
    Mutant("msgq-configure-receive-zero", "HYP-MSGQ-notempty-thd", "proof:msgq:configure_receive⊢inv_thresholds",
           "HYP-MSGQ-thresholds", drop_guard(M, "msgq_configure_receive", "HYP-MSGQ-notempty-thd"), "synthetic"),
    Mutant("msgq-configure-depth-zero", "HYP-MSGQ-configure", "proof:msgq:init⊢inv_count_within_depth", "HYP-MSGQ-count",
           drop_guard(M, "msgq_configure", "HYP-MSGQ-configure"), "synthetic: depth 0 accepted"),
    Mutant("msgq-send-forgets-count", "HYP-MSGQ-send-rule", "proof:msgq:send⊨rule_send_appends_one",
           "HYP-MSGQ-send-rule", replace_fn(M, "msgq_send", _send_no_count), "synthetic"),
    Mutant("msgq-send-count-drift", "HYP-MSGQ-count", "proof:msgq:send⊢inv_count_within_depth",
           "HYP-MSGQ-count", replace_fn(M, "msgq_send", _send_no_count), "synthetic"),
    Mutant("msgq-receive-stuck-head", "HYP-MSGQ-fifo", "proof:msgq:receive⊢inv_fifo_order", "HYP-MSGQ-fifo",
           replace_fn(M, "msgq_receive", _receive_tail_not_head), "synthetic: head not advanced"),
    Mutant("msgq-receive-wrong-message", "HYP-MSGQ-receive-rule", "machine:msgq", "HYP-MSGQ-receive-rule",
           replace_fn(M, "msgq_receive", _receive_tail_not_head), "synthetic"),
    Mutant("msgq-send-oversize-slot", "HYP-MSGQ-msg-size", "proof:msgq:send⊢inv_msg_size", "HYP-MSGQ-msg-size",
           replace_fn(M, "msgq_send", _send_oversize_truncates), "synthetic"),
    Mutant("msgq-lost-rx-wakeup", "HYP-MSGQ-rx-virq", "proof:msgq:send⊢inv_rx_virq_level", "HYP-MSGQ-rx-virq",
           replace_fn(M, "msgq_send", _send_no_rx_assert), "lost wakeup: not-empty not asserted at the threshold"),
    Mutant("msgq-sticky-tx", "HYP-MSGQ-tx-virq", "proof:msgq:send⊢inv_tx_virq_level", "HYP-MSGQ-tx-virq",
           replace_fn(M, "msgq_send", _send_sticky_tx), "synthetic: not-full stays pending on a full queue"),
    Mutant("msgq-flush-keeps-rx", "HYP-MSGQ-flush-rule", "proof:msgq:flush⊨rule_flush_empties", "HYP-MSGQ-flush-rule",
           replace_fn(M, "msgq_flush", _flush_keeps_rx), "synthetic"),
]
