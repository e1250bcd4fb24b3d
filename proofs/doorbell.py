"""Proof subjects: the hypervisor doorbell at the SMALL width (8-bit flags) and the Gunyah width (u64).

Besides the generated obligations, two bounded races over the receiver's handler
(``doorbell.RECEIVER_PROTOCOL``), from any state satisfying every invariant:

- ``lost-wakeup``: one send, placed at every point of the handler; if it comes after the receive
  and sends an enabled flag, the VIRQ is pending when both are done (HYP-DBL-lost-wakeup);
- ``receiver-protocol``: a taken VIRQ handled by the protocol, receiving every enabled flag, leaves
  nothing pending and nothing in service (HYP-DBL-receiver-protocol). EOI before receive breaks it.
"""
from __future__ import annotations

from typing import Any

from t1virtio import state as st, step as stp
from t1virtio.hyp import doorbell
from t1virtio.logic import CONCRETE, z3_logic
from t1virtio.preset import LINUX, SMALL, Preset
from t1virtio.proofs.engine import Custom, Op, Subject, check_clause
from t1virtio.specs import invariants

M = "t1virtio.hyp.doorbell"


def _ops(width: int) -> tuple[Op, ...]:
    return (Op("send", M, "doorbell_send", {"new_flags": width}),
            Op("receive", M, "doorbell_receive", {"clear_flags": width}),
            Op("mask", M, "doorbell_mask", {"enable_mask": width, "ack_mask": width}),
            Op("reset", M, "doorbell_reset"),
            Op("bind", M, "doorbell_bind_virq", {"edge_trigger": "bool", "virq": "int", "virq_exists": "bool",
                                                  "virq_free": "bool"}),
            Op("unbind", M, "doorbell_unbind_virq"),
            Op("deliver", M, "virq_deliver"),
            Op("eoi", M, "virq_eoi"),
            Op("activate", M, "doorbell_activate"),
            Op("destroy", M, "doorbell_destroy"))


def _run(L: Any, s: Any, actions: tuple[str, ...], send_flags: Any, clear_flags: Any) -> tuple[Any, Any]:
    """Run ``actions`` (receiver actions and "send") from ``s``; return (final state, enable mask at the send)."""
    enable_at_send = s.enable_mask
    for a in actions:
        if a == "send":
            enable_at_send = s.enable_mask
            sp = doorbell.doorbell_send(L, s, send_flags)
        else:
            sp = doorbell.receiver_step(L, s, a, clear_flags)
        s = stp.commit(L, sp, s)
    return s, enable_at_send


def _interleavings() -> list[tuple[tuple[str, ...], bool]]:
    """Every placement of one send in the receiver's handler, with whether it comes after the receive."""
    proto = tuple(doorbell.RECEIVER_PROTOCOL)
    after = proto.index("receive") + 1
    return [(proto[:k] + ("send",) + proto[k:], k >= after) for k in range(len(proto) + 1)]


def _lost_wakeup(L: Any, s0: Any, f: Any, c: Any, actions: tuple[str, ...], after_receive: bool) -> Any:
    """Return the condition under which this interleaving loses the send's wakeup."""
    final, enable = _run(L, s0, actions, f, c)
    return L.And(after_receive, s0.virq_bound, (f & enable) != 0, L.Not(doorbell.is_virq_pending(L, final)))


def _re_raised(L: Any, s0: Any, c: Any) -> Any:
    """Return the condition under which handling a taken VIRQ leaves it pending or in service."""
    final, _ = _run(L, s0, tuple(doorbell.RECEIVER_PROTOCOL), 0, c)
    return L.And(doorbell.is_virq_deliverable(L, s0), (c & s0.enable_mask) == s0.enable_mask,
                 L.Or(doorbell.is_virq_pending(L, final), final.virq_active))


def _symbolic_start(preset: Preset):
    import z3
    L = z3_logic()
    s0 = st.symbolize(doorbell.doorbell_create(preset), "s0")
    f = z3.BitVec("send_flags", preset.doorbell_bits)
    c = z3.BitVec("clear_flags", preset.doorbell_bits)
    pre = L.And(*[inv.fn(L, s0) for inv in invariants.of("doorbell")])
    return L, s0, f, c, pre


def _decoder(s0: Any, f: Any, c: Any):
    def decode(m: Any) -> dict:
        v = lambda x: m.eval(x, model_completion=True).as_long()  # noqa: E731
        return {"state": st.to_json(st.decode(m, s0)), "args": {"send_flags": v(f), "clear_flags": v(c)}}
    return decode


def _lost_wakeup_custom(preset: Preset) -> Custom:
    def negated():
        L, s0, f, c, pre = _symbolic_start(preset)
        return L.And(pre, L.Or(*[_lost_wakeup(L, s0, f, c, acts, after) for acts, after in _interleavings()])), \
            _decoder(s0, f, c)

    def replay(cex: dict) -> str | None:
        s0 = st.from_json(doorbell.doorbell_create(preset), cex["state"])
        f, c = cex["args"]["send_flags"], cex["args"]["clear_flags"]
        lost = any(_lost_wakeup(CONCRETE, s0, f, c, acts, after) for acts, after in _interleavings())
        return check_clause("HYP-DBL-lost-wakeup") if lost else None
    return Custom("lost-wakeup", check_clause("HYP-DBL-lost-wakeup"), negated, replay)


def _receiver_protocol_custom(preset: Preset) -> Custom:
    def negated():
        L, s0, f, c, pre = _symbolic_start(preset)
        return L.And(pre, _re_raised(L, s0, c)), _decoder(s0, f, c)

    def replay(cex: dict) -> str | None:
        s0 = st.from_json(doorbell.doorbell_create(preset), cex["state"])
        raised = _re_raised(CONCRETE, s0, cex["args"]["clear_flags"])
        return check_clause("HYP-DBL-receiver-protocol") if raised else None
    return Custom("receiver-protocol", check_clause("HYP-DBL-receiver-protocol"), negated, replay)


def _subject(component: str, preset: Preset, reach: str) -> Subject:
    return Subject(component=component, template=lambda: doorbell.doorbell_create(preset), preset=reach,
                   ops=_ops(preset.doorbell_bits), invariant_component="doorbell",
                   customs=(_lost_wakeup_custom(preset), _receiver_protocol_custom(preset)))


SUBJECTS = [_subject("doorbell", SMALL, f"SMALL ({SMALL.doorbell_bits}-bit flags, every value)"),
            _subject("doorbell64", LINUX, f"LINUX ({LINUX.doorbell_bits}-bit flags, every value)")]
