"""Message-queue mutants (facts §3.0, §3.1): one or more per clause, caught by a proof or the machine."""
from __future__ import annotations

import importlib
from dataclasses import replace

from t1virtio.state import evolve

from . import Mutant, drop_guard, replace_fn

M = "t1virtio.hyp.msgq"


def _m():
    return importlib.import_module(M)


def _send_no_count(orig, L, s, *a, **k):
    sp = orig(L, s, *a, **k)
    return replace(sp, new=replace(sp.new, count=s.count))


def _receive_tail_not_head(orig, L, s, *a, **k):
    sp = orig(L, s, *a, **k)
    return replace(sp, new=replace(sp.new, head=s.head))


def _send_no_rx_assert(orig, L, s, *a, **k):
    sp = orig(L, s, *a, **k)
    return replace(sp, new=replace(sp.new, rx=s.rx))


def _receive_no_tx_assert(orig, L, s, *a, **k):
    sp = orig(L, s, *a, **k)
    return replace(sp, new=replace(sp.new, tx=s.tx))


def _no_guards(orig, L, s, *a, **k):
    sp = orig(L, s, *a, **k)
    return replace(sp, guards=())


def _send_oversize_truncates(orig, L, s, *a, **k):
    sp = orig(L, s, *a, **k)
    return replace(sp, new=replace(sp.new, sizes=L.update(sp.new.sizes, s.head, s.max_size + 1)))


def _flush_keeps_rx(orig, L, s):
    sp = orig(L, s)
    return replace(sp, new=replace(sp.new, rx=s.rx))


def _depth_thd_off_by_one(orig, L, s, notempty_thd, *a, **k):
    sp = orig(L, s, notempty_thd, *a, **k)
    return replace(sp, new=replace(sp.new, notempty_thd=L.If(notempty_thd == -2, s.depth + 1, sp.new.notempty_thd)))


def _keep_reevaluates_rx(orig, L, s, notempty_thd, *a, **k):
    """The pre-issue-9 model: configure_receive(-1) re-evaluates the line (drops a PUSH-raised one)."""
    sp = orig(L, s, notempty_thd, *a, **k)
    m = _m()
    again = evolve(s, rx=m.line_reevaluate(L, s.rx, m.line_condition(L, s, "rx")))
    return replace(sp, new=L.If(notempty_thd == m.KEEP, again, sp.new))


def _keep_reevaluates_tx(orig, L, s, notfull_thd, *a, **k):
    sp = orig(L, s, notfull_thd, *a, **k)
    m = _m()
    again = evolve(s, tx=m.line_reevaluate(L, s.tx, m.line_condition(L, s, "tx")))
    return replace(sp, new=L.If(notfull_thd == m.KEEP, again, sp.new))


def _depth_path_no_reevaluate(orig, L, s, notempty_thd, *a, **k):
    """Gunyah @36ca3a2's code: the -2 path stores depth without re-evaluating the line."""
    sp = orig(L, s, notempty_thd, *a, **k)
    return replace(sp, new=L.If(notempty_thd == _m().DEPTH, evolve(sp.new, rx=s.rx), sp.new))


def _activate_keeps_thresholds(orig, L, s):
    sp = orig(L, s)
    return replace(sp, new=replace(sp.new, notfull_thd=s.notfull_thd, notempty_thd=s.notempty_thd))


def _destroy_keeps_lines(orig, L, s):
    sp = orig(L, s)
    return replace(sp, new=replace(sp.new, tx=s.tx, rx=s.rx))


def _bind_signals(orig, L, s, line, *a, **k):
    """A bind that asserts a line whose condition already holds (Gunyah's vic_bind_shared does not)."""
    sp = orig(L, s, line, *a, **k)
    m = _m()
    ln = getattr(sp.new, line)
    return replace(sp, new=evolve(sp.new, **{line: m.line_assert(L, ln, ln.unsignalled)}))


def _unbind_leaves_in_service(orig, L, s, line):
    sp = orig(L, s, line)
    return replace(sp, new=evolve(sp.new, **{line: replace(getattr(sp.new, line), active=getattr(s, line).active)}))


def _deliver_keeps_edge(orig, L, s, line):
    sp = orig(L, s, line)
    return replace(sp, new=evolve(sp.new, **{line: replace(getattr(sp.new, line), edge=getattr(s, line).edge)}))


def _eoi_ignores_reassert(orig, L, s, line):
    """check_pending without its reasserted case: the level follows the condition alone."""
    sp = orig(L, s, line)
    ln, new = getattr(s, line), getattr(sp.new, line)
    level = L.If(ln.active, L.And(ln.level, _m().line_condition(L, s, line)), new.level)
    return replace(sp, new=evolve(sp.new, **{line: replace(new, level=level)}))


def _guard(op, clause):
    return drop_guard(M, op, clause)


P = "proof:msgq:"
MUTANTS = [
    Mutant("msgq-send-fault-ignored-machine", "HYP-MSGQ-send-fault", "machine:msgq", "HYP-MSGQ-send-rule",
           _guard("msgq_send", "HYP-MSGQ-send-fault"), "synthetic: the machine's read-only/unmapped pages", examples=100),
    Mutant("msgq-depth-threshold-off-by-one", "HYP-MSGQ-thresholds", P + "configure_receive⊢inv_thresholds",
           "HYP-MSGQ-thresholds", replace_fn(M, "msgq_configure_receive", _depth_thd_off_by_one), "synthetic"),
    Mutant("msgq-send-past-depth", "HYP-MSGQ-full", P + "send⊢inv_count_within_depth", "HYP-MSGQ-count",
           _guard("msgq_send", "HYP-MSGQ-full"), "synthetic: no MSGQUEUE_FULL check"),
    Mutant("msgq-send-any-size", "HYP-MSGQ-size", P + "send⊨rule_send_appends_one", "HYP-MSGQ-send-rule",
           _guard("msgq_send", "HYP-MSGQ-size"), "synthetic: no ARGUMENT_SIZE check"),
    Mutant("msgq-send-reserved-flags", "HYP-MSGQ-flags", P + "send⊨rule_send_appends_one", "HYP-MSGQ-send-rule",
           _guard("msgq_send", "HYP-MSGQ-flags"), "gunyah @36ca3a2 code: the hypercall reads only the PUSH bit"),
    Mutant("msgq-receive-empty", "HYP-MSGQ-empty", P + "receive⊢inv_count_within_depth", "HYP-MSGQ-count",
           _guard("msgq_receive", "HYP-MSGQ-empty"), "synthetic: receive underflows count"),
    Mutant("msgq-receive-truncates", "HYP-MSGQ-overflow", P + "receive⊨rule_receive_takes_head", "HYP-MSGQ-receive-rule",
           _guard("msgq_receive", "HYP-MSGQ-overflow"), "synthetic: a short buffer truncates instead of ADDR_OVERFLOW"),
    Mutant("msgq-configure-send-any", "HYP-MSGQ-notfull-thd", P + "configure_send⊢inv_thresholds",
           "HYP-MSGQ-thresholds", replace_fn(M, "msgq_configure_send", _no_guards), "synthetic"),
    Mutant("msgq-configure-receive-zero", "HYP-MSGQ-notempty-thd", P + "configure_receive⊢inv_thresholds",
           "HYP-MSGQ-thresholds", _guard("msgq_configure_receive", "HYP-MSGQ-notempty-thd"), "synthetic"),
    Mutant("msgq-configure-any-depth", "HYP-MSGQ-configure", P + "configure⊢inv_lifecycle", "HYP-MSGQ-lifecycle",
           _guard("msgq_configure", "HYP-MSGQ-configure"), "synthetic: depth 256 or size 1024 accepted"),
    Mutant("msgq-send-forgets-count", "HYP-MSGQ-send-rule", P + "send⊨rule_send_appends_one",
           "HYP-MSGQ-send-rule", replace_fn(M, "msgq_send", _send_no_count), "synthetic"),
    Mutant("msgq-send-count-drift", "HYP-MSGQ-count", P + "send⊢inv_count_within_depth",
           "HYP-MSGQ-count", replace_fn(M, "msgq_send", _send_no_count), "synthetic"),
    Mutant("msgq-receive-stuck-head", "HYP-MSGQ-fifo", P + "receive⊢inv_fifo_order", "HYP-MSGQ-fifo",
           replace_fn(M, "msgq_receive", _receive_tail_not_head), "synthetic: head not advanced"),
    Mutant("msgq-receive-wrong-message", "HYP-MSGQ-receive-rule", P + "receive⊨rule_receive_takes_head",
           "HYP-MSGQ-receive-rule",
           replace_fn(M, "msgq_receive", _receive_tail_not_head), "synthetic"),
    Mutant("msgq-send-oversize-slot", "HYP-MSGQ-msg-size", P + "send⊢inv_msg_size", "HYP-MSGQ-msg-size",
           replace_fn(M, "msgq_send", _send_oversize_truncates), "synthetic"),
    Mutant("msgq-lost-rx-wakeup", "HYP-MSGQ-rx-virq", P + "send⊢inv_rx_virq_level", "HYP-MSGQ-rx-virq",
           replace_fn(M, "msgq_send", _send_no_rx_assert), "lost wakeup: not-empty not asserted at the threshold"),
    Mutant("msgq-lost-tx-wakeup", "HYP-MSGQ-tx-virq", P + "receive⊢inv_tx_virq_level", "HYP-MSGQ-tx-virq",
           replace_fn(M, "msgq_receive", _receive_no_tx_assert), "lost wakeup: not-full not asserted at the threshold"),
    Mutant("msgq-flush-keeps-rx", "HYP-MSGQ-flush-rule", P + "flush⊨rule_flush_empties", "HYP-MSGQ-flush-rule",
           replace_fn(M, "msgq_flush", _flush_keeps_rx), "synthetic"),
    Mutant("msgq-keep-reevaluates-rx", "HYP-MSGQ-keep", P + "configure_receive⊨rule_configure_receive_keep",
           "HYP-MSGQ-keep", replace_fn(M, "msgq_configure_receive", _keep_reevaluates_rx),
           "issue 9: configure_receive(-1) lowered a line a PUSH raised below the threshold"),
    Mutant("msgq-keep-reevaluates-tx", "HYP-MSGQ-keep", P + "configure_send⊨rule_configure_send_keep",
           "HYP-MSGQ-keep", replace_fn(M, "msgq_configure_send", _keep_reevaluates_tx), "issue 9, send side"),
    Mutant("msgq-holdoff-ignored", "HYP-MSGQ-holdoff", P + "configure_send⊨rule_configure_send",
           "HYP-MSGQ-threshold-rule", _guard("msgq_configure_send", "HYP-MSGQ-holdoff"),
           "synthetic: a holdoff other than -1 accepted (Gunyah: UNIMPLEMENTED)"),
    Mutant("msgq-depth-path-not-reevaluated", "HYP-MSGQ-threshold-rule",
           P + "configure_receive⊨rule_configure_receive", "HYP-MSGQ-threshold-rule",
           replace_fn(M, "msgq_configure_receive", _depth_path_no_reevaluate),
           "gunyah @36ca3a2 code: configure_receive(-2) does not re-evaluate the line"),
    Mutant("msgq-send-before-activate", "HYP-MSGQ-object-state", P + "send⊢inv_lifecycle", "HYP-MSGQ-lifecycle",
           _guard("msgq_send", "HYP-MSGQ-object-state"), "synthetic: send on an INIT or destroyed object"),
    Mutant("msgq-configure-after-activate", "HYP-MSGQ-object-state", P + "configure⊨rule_configure_stores",
           "HYP-MSGQ-lifecycle-rule", _guard("msgq_configure", "HYP-MSGQ-object-state"),
           "synthetic: configure of an ACTIVE object (Gunyah: OBJECT_STATE)"),
    Mutant("msgq-activate-unconfigured", "HYP-MSGQ-object-config", P + "activate⊢inv_lifecycle", "HYP-MSGQ-lifecycle",
           _guard("msgq_activate", "HYP-MSGQ-object-config"), "synthetic: activation with depth 0 (Gunyah: OBJECT_CONFIG)"),
    Mutant("msgq-activate-keeps-thresholds", "HYP-MSGQ-lifecycle-rule", P + "activate⊨rule_activate_empty",
           "HYP-MSGQ-lifecycle-rule", replace_fn(M, "msgq_activate", _activate_keeps_thresholds), "synthetic"),
    Mutant("msgq-destroy-keeps-lines", "HYP-MSGQ-lifecycle", P + "destroy⊢inv_lifecycle", "HYP-MSGQ-lifecycle",
           replace_fn(M, "msgq_destroy", _destroy_keeps_lines), "synthetic: destroy does not unbind (vic_unbind_sync)"),
    Mutant("msgq-send-fault-ignored", "HYP-MSGQ-send-fault", P + "send⊨rule_send_appends_one", "HYP-MSGQ-send-rule",
           _guard("msgq_send", "HYP-MSGQ-send-fault"), "synthetic: an unreadable buffer is queued"),
    Mutant("msgq-receive-fault-consumes", "HYP-MSGQ-receive-fault", P + "receive⊨rule_receive_takes_head",
           "HYP-MSGQ-receive-rule", _guard("msgq_receive", "HYP-MSGQ-receive-fault"),
           "synthetic: the message is consumed although the caller's buffer faulted"),
    Mutant("msgq-bind-twice", "HYP-MSGQ-virq-bound", P + "bind_rx⊨rule_bind_rx", "HYP-MSGQ-bind-rule",
           _guard("_bind", "HYP-MSGQ-virq-bound"), "synthetic: a second bind rebinds (no VIRQ_BOUND)"),
    Mutant("msgq-bind-signals", "HYP-MSGQ-bind-rule", P + "bind_rx⊨rule_bind_rx", "HYP-MSGQ-bind-rule",
           replace_fn(M, "_bind", _bind_signals), "synthetic: bind asserts a condition that already holds"),
    Mutant("msgq-unbind-leaves-in-service", "HYP-MSGQ-line-unbound", P + "unbind_rx⊢inv_lines_quiet",
           "HYP-MSGQ-line-unbound", replace_fn(M, "_unbind", _unbind_leaves_in_service), "synthetic"),
    Mutant("msgq-deliver-keeps-edge", "HYP-MSGQ-deliver", P + "deliver_rx⊨rule_deliver_rx", "HYP-MSGQ-deliver",
           replace_fn(M, "_deliver", _deliver_keeps_edge), "synthetic: taking the line does not consume the reassertion"),
    Mutant("msgq-eoi-ignores-reassert", "HYP-MSGQ-check-pending", P + "eoi_rx⊨rule_eoi_rx", "HYP-MSGQ-check-pending",
           replace_fn(M, "_eoi", _eoi_ignores_reassert), "check_pending without its reasserted case"),
    Mutant("msgq-bind-busy-virq", "HYP-MSGQ-virq-busy", P + "bind_tx⊨rule_bind_tx", "HYP-MSGQ-bind-rule",
           _guard("_bind", "HYP-MSGQ-virq-busy"),
           "synthetic: a line takes over a VIRQ number that already has a source (no BUSY)"),
    Mutant("msgq-bind-missing-virq", "HYP-MSGQ-virq-number", P + "bind_rx⊨rule_bind_rx", "HYP-MSGQ-bind-rule",
           _guard("_bind", "HYP-MSGQ-virq-number"),
           "synthetic: a VIRQ number the VM does not have is accepted (no ARGUMENT_INVALID)"),
    Mutant("msgq-bind-busy-virq-machine", "HYP-MSGQ-virq-busy", "machine:msgq", "HYP-MSGQ-bind-rule",
           _guard("_bind", "HYP-MSGQ-virq-busy"),
           "synthetic: the machine binds a line to the other line's number or one another source holds", examples=100),
]
