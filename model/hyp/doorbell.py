"""Hypervisor doorbell: flags OR-ed by send, cleared by receive, enable and ack masks, one VIRQ
(Gunyah doorbell, gunyah-hypervisor@36ca3a2 hyp/ipc/doorbell; facts/upstream.md §3.0, §3.2, §6.5).

The doorbell's own state is three flag words of the preset's width (u64 in Gunyah). Its VIRQ
source is modelled as the part of the vGIC delivery state one source can affect
(hyp/vm/vgic/vgic.tc, deliver.c):

- ``virq_level`` ("level_src"): set by a level assertion ``virq_assert(edge_only=false)``; cleared
  by ``virq_clear`` or when ``check_pending`` returns false at EOI. It deasserts *lazily*: receive()
  clears flags without touching it.
- ``virq_edge`` ("edge"): set by every assertion, cleared when the receiver takes the VIRQ; at EOI it
  is the ``reasserted`` argument of ``check_pending``.
- ``virq_active``: taken by the receiver (acknowledged) and not yet EOI'd.
- pending = edge bit for an edge-triggered VIRQ, level assertion for a level-triggered one.

The trigger (edge or level) is the receiving VM's interrupt configuration; the model fixes it
when the VIRQ is bound. A ghost, ``unsignalled``, remembers that enabled flags were already set
when the VIRQ was bound: Gunyah's bind does not assert, so those flags raise nothing until the next
send or mask (docs/doorbell.md).

Object lifecycle (Gunyah object_standard, cspace_twolevel): ``partition_create_doorbell`` makes an
INIT object; ``object_activate`` makes it ACTIVE (a doorbell has no configure call and no activate
handler, so activation of an INIT doorbell cannot fail); deleting its last capability destroys it
(``object_deactivate_doorbell`` unbinds the VIRQ). Every doorbell hypercall looks the capability up
with ``active_only``, so each one refuses a doorbell that is not ACTIVE with OBJECT_STATE.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import replace
from typing import Any

from t1virtio.logic import CONCRETE
from t1virtio.preset import Preset
from t1virtio.state import bits
from t1virtio.step import Step, apply, step

RECEIVER_PROTOCOL = ("deliver", "receive", "eoi")
"""The receiver's interrupt handler, in order: take the VIRQ, clear the flags with receive(), EOI.

Flags that are not auto-acked must be received *before* EOI, or check_pending finds them still set
and the VIRQ is raised again (facts §3.2, "receiver protocol").
"""


OBJ_INIT, OBJ_ACTIVE, OBJ_DESTROYED = 0, 1, 2   # object lifecycle (Gunyah OBJECT_STATE_INIT / ACTIVE; destroyed)

VIRQ_FIRST_SPI = 32        # GIC shared peripheral interrupts: INTIDs 32..1019
VIRQ_LAST_SPI = 1019


class Vic:
    """The receiving VM's virtual interrupt controller, as far as binding goes: which shared VIRQ
    numbers exist (``first .. first+count-1``; GICv3 SPIs by default) and which already have a source."""

    def __init__(self, first: int = VIRQ_FIRST_SPI, count: int = VIRQ_LAST_SPI - VIRQ_FIRST_SPI + 1):
        self.first, self.count = first, count
        self.sources: dict[int, Any] = {}

    def exists(self, virq: int) -> bool:
        return isinstance(virq, int) and self.first <= virq < self.first + self.count

    def is_free(self, virq: int) -> bool:
        return virq not in self.sources

    def first_free(self) -> int:
        return next((v for v in range(self.first, self.first + self.count) if v not in self.sources), self.first)

    def claim(self, virq: int, owner: Any) -> None:
        self.sources[virq] = owner

    def release(self, virq: int, owner: Any) -> None:
        if self.sources.get(virq) is owner:
            del self.sources[virq]


def compute_word_mask(width: int) -> int:
    """Return the all-ones word of ``width`` bits (the reset enable mask)."""
    return (1 << width) - 1


@functools.cache
def doorbell_state_type(width: int) -> type:
    """Return the frozen state class whose flag words are ``width``-bit vectors in proofs."""
    fields = [
        ("lifecycle", int),                   # OBJ_INIT, OBJ_ACTIVE or OBJ_DESTROYED
        ("flags", int, bits(width)),          # pending flag bits
        ("enable_mask", int, bits(width)),    # flags that assert the VIRQ (reset: all ones)
        ("ack_mask", int, bits(width)),       # flags cleared automatically on a level assertion (reset: 0)
        ("virq_bound", bool),                 # a VIRQ is bound to the doorbell's source
        ("virq", int),                        # the bound VIRQ number (meaningful while bound)
        ("virq_edge_trigger", bool),          # the VM configured the VIRQ edge-triggered (else level)
        ("virq_level", bool),                 # level assertion by the doorbell (vgic level_src)
        ("virq_edge", bool),                  # asserted since last taken (vgic edge; "reasserted")
        ("virq_active", bool),                # taken by the receiver, not yet EOI'd
        ("unsignalled", bool),                # ghost: enabled flags already set at bind, not yet signalled
    ]
    return dataclasses.make_dataclass(f"DoorbellState{width}", fields, frozen=True, slots=True,
                                      namespace={"width": width, "__doc__": "One doorbell and its VIRQ source."})


def doorbell_create(preset: Preset) -> Any:
    """Return a new doorbell object (partition_create_doorbell, doorbell_handle_object_create_doorbell):
    INIT, no flags, enable all, ack none, unbound."""
    w = preset.doorbell_bits
    return doorbell_state_type(w)(lifecycle=OBJ_INIT, flags=0, enable_mask=compute_word_mask(w), ack_mask=0, virq_bound=False, virq=0,
                                  virq_edge_trigger=False, virq_level=False, virq_edge=False,
                                  virq_active=False, unsignalled=False)


def is_active(L: Any, s: Any) -> Any:
    """Return whether the doorbell is ACTIVE (what cspace_lookup_doorbell requires)."""
    return s.lifecycle == OBJ_ACTIVE


def is_word(L: Any, s: Any, word: Any) -> Any:
    """Return whether ``word`` fits one flag register of the doorbell's width."""
    return L.And(L.ULE(0, word), L.ULE(word, compute_word_mask(s.width)))


def compute_level(flags: Any, enable_mask: Any) -> Any:
    """Return whether any enabled flag is set: the doorbell's level, ``(flags & enable_mask) != 0``."""
    return (flags & enable_mask) != 0


def is_virq_pending(L: Any, s: Any) -> Any:
    """Return whether the bound VIRQ is pending (edge bit if edge-triggered, level assertion if level)."""
    return L.And(s.virq_bound, L.If(s.virq_edge_trigger, s.virq_edge, s.virq_level))


def is_virq_deliverable(L: Any, s: Any) -> Any:
    """Return whether the receiver can take the VIRQ now: pending and not in service."""
    return L.And(is_virq_pending(L, s), L.Not(s.virq_active))


def virq_assert(L: Any, s: Any, edge_only: Any) -> Any:
    """Assert the source (virq_assert): sets the edge bit; a level assertion also sets level_src.

    On an unbound source it does nothing (VIRQ_NOT_BOUND, which the doorbell ignores).
    """
    return replace(s, virq_edge=L.Or(s.virq_edge, s.virq_bound),
                   virq_level=L.Or(s.virq_level, L.And(s.virq_bound, L.Not(edge_only))))


def virq_clear(L: Any, s: Any) -> Any:
    """Deassert the level (virq_clear); the edge bit of an edge-triggered VIRQ is not affected."""
    return replace(s, virq_level=False)


def doorbell_check_pending(L: Any, s: Any, reasserted: Any) -> Any:
    """Return whether the level stays asserted (doorbell_handle_virq_check_pending).

    A VIRQ reasserted since it was taken stays pending, else a concurrent send or mask could be
    lost; otherwise it follows the doorbell's level.
    """
    return L.Or(reasserted, compute_level(s.flags, s.enable_mask))


def doorbell_send(L: Any, s: Any, new_flags: Any) -> Step:
    """Set ``new_flags``; out = old flags (hypercall doorbell_send 0x6012; always OK).

    A level assertion if enabled flags are now set, and then the ack-masked flags are cleared;
    otherwise an edge-only assertion.
    """
    flags = s.flags | new_flags
    level = compute_level(flags, s.enable_mask)
    asserted = virq_assert(L, replace(s, flags=flags), edge_only=L.Not(level))
    new = replace(asserted, flags=L.If(level, flags & L.BitNot(s.ack_mask, s.width), flags),
                  unsignalled=L.And(s.unsignalled, L.Not(level)))
    guards = [(is_active(L, s), "HYP-DBL-object-state"), (is_word(L, s, new_flags), "HYP-DBL-word")]
    return step(guards, new, out=s.flags)


def doorbell_receive(L: Any, s: Any, clear_flags: Any) -> Step:
    """Clear ``clear_flags``; out = old flags (hypercall doorbell_receive 0x6013). The VIRQ is not touched."""
    guards = [(is_active(L, s), "HYP-DBL-object-state"),
              (is_word(L, s, clear_flags), "HYP-DBL-word"),
              (clear_flags != 0, "HYP-DBL-receive-zero")]
    return step(guards, replace(s, flags=s.flags & L.BitNot(clear_flags, s.width)), out=s.flags)


def doorbell_mask(L: Any, s: Any, enable_mask: Any, ack_mask: Any) -> Step:
    """Store both masks and re-evaluate the VIRQ (hypercall doorbell_mask 0x6015).

    was/now = enabled flags set under the old/new enable mask: was and not now deasserts; now and
    not was asserts (level); whenever now, the ack-masked flags are cleared.
    """
    was = compute_level(s.flags, s.enable_mask)
    now = compute_level(s.flags, enable_mask)
    stored = replace(s, enable_mask=enable_mask, ack_mask=ack_mask)
    virq = L.If(L.And(was, L.Not(now)), virq_clear(L, stored),
                L.If(L.And(L.Not(was), now), virq_assert(L, stored, edge_only=False), stored))
    new = replace(virq, flags=L.If(now, s.flags & L.BitNot(ack_mask, s.width), s.flags),
                  unsignalled=L.And(s.unsignalled, L.Not(L.And(L.Not(was), now))))
    guards = [(is_active(L, s), "HYP-DBL-object-state"),
              (L.And(is_word(L, s, enable_mask), is_word(L, s, ack_mask)), "HYP-DBL-word")]
    return step(guards, new)


def doorbell_reset(L: Any, s: Any) -> Step:
    """Clear every flag, restore the default masks and deassert the level (hypercall doorbell_reset 0x6014)."""
    cleared = virq_clear(L, s)
    return step([(is_active(L, s), "HYP-DBL-object-state")], replace(cleared, flags=0, ack_mask=0, enable_mask=compute_word_mask(s.width),
                            unsignalled=False))


def doorbell_bind_virq(L: Any, s: Any, edge_trigger: Any, virq: Any = VIRQ_FIRST_SPI, virq_exists: Any = True,
                       virq_free: Any = True) -> Step:
    """Bind VIRQ number ``virq`` to the doorbell's source (hypercall doorbell_bind_virq 0x6010; vic_bind_shared).

    ``virq_exists``/``virq_free``: the receiving VM's vGIC has that shared VIRQ, and no other source
    is bound to it (``Vic`` answers both concretely). Refused in this order: the doorbell is not
    ACTIVE (OBJECT_STATE), the source is bound (VIRQ_BOUND), the number does not exist
    (ARGUMENT_INVALID), it has a source (BUSY). The new VIRQ starts unasserted: flags already set are
    not signalled until the next send or mask.
    """
    guards = [(is_active(L, s), "HYP-DBL-object-state"),
              (L.Not(s.virq_bound), "HYP-DBL-virq-bound"),
              (virq_exists, "HYP-DBL-virq-number"),
              (virq_free, "HYP-DBL-virq-busy")]
    return step(guards, L.effect(guards, lambda: replace(
        s, virq_bound=True, virq=virq, virq_edge_trigger=edge_trigger, virq_level=False, virq_edge=False,
        virq_active=False, unsignalled=compute_level(s.flags, s.enable_mask)), s))


def doorbell_unbind_virq(L: Any, s: Any) -> Step:
    """Release the VIRQ and clear the source (hypercall doorbell_unbind_virq 0x6011; vic_unbind_sync).

    OK when already unbound; OBJECT_STATE unless ACTIVE.
    """
    guards = [(is_active(L, s), "HYP-DBL-object-state")]
    return step(guards, L.effect(guards, lambda: _unbound(s), s))


def _unbound(s: Any) -> Any:
    return replace(s, virq_bound=False, virq_level=False, virq_edge=False, virq_active=False, unsignalled=False)


def doorbell_activate(L: Any, s: Any) -> Step:
    """Activate the doorbell (object_activate, hvc 0x600c): INIT -> ACTIVE, else OBJECT_STATE.

    A doorbell has no configure call and no activate handler, so there is no OBJECT_CONFIG.
    """
    guards = [(s.lifecycle == OBJ_INIT, "HYP-DBL-object-state")]
    return step(guards, L.effect(guards, lambda: replace(s, lifecycle=OBJ_ACTIVE), s))


def doorbell_destroy(L: Any, s: Any) -> Step:
    """Destroy the doorbell (its last capability deleted; object_deactivate_doorbell unbinds the VIRQ).

    A destroyed doorbell refuses every call (OBJECT_STATE; the model's stand-in for the lookup of a
    deleted capability, docs/doorbell.md).
    """
    guards = [(s.lifecycle != OBJ_DESTROYED, "HYP-DBL-object-state")]
    return step(guards, L.effect(guards, lambda: replace(_unbound(s), lifecycle=OBJ_DESTROYED), s))


def virq_deliver(L: Any, s: Any) -> Step:
    """The receiver takes the VIRQ (acknowledge); out = whether one was taken (else spurious)."""
    take = is_virq_deliverable(L, s)
    return step([], L.If(take, replace(s, virq_active=True, virq_edge=False), s), out=take)


def virq_eoi(L: Any, s: Any) -> Step:
    """The receiver ends the VIRQ (EOI); check_pending re-evaluates the level. out = whether one was in service."""
    level = L.And(s.virq_level, doorbell_check_pending(L, s, reasserted=s.virq_edge))
    return step([], L.If(s.virq_active, replace(s, virq_active=False, virq_level=level), s), out=s.virq_active)


def receiver_step(L: Any, s: Any, action: str, clear_flags: Any) -> Step:
    """Return the step of one receiver action named in ``RECEIVER_PROTOCOL``."""
    if action == "deliver":
        return virq_deliver(L, s)
    if action == "receive":
        return doorbell_receive(L, s, clear_flags)
    if action == "eoi":
        return virq_eoi(L, s)
    raise ValueError(f"unknown receiver action {action!r}")


class Doorbell:
    """A concrete doorbell: the core state, each call applied as a guarded step.

    ``Doorbell(preset, vic)`` creates and activates (``active=False`` leaves the object INIT:
    ``activate``). ``vic`` is the receiving VM's interrupt controller, shared with every other
    source that VM's VIRQs can have (other doorbells, message-queue lines: one ``Vic`` per VM).
    """

    def __init__(self, preset: Preset, vic: Vic | None = None, active: bool = True):
        self.state = doorbell_create(preset)
        self.vic = vic if vic is not None else Vic()
        self.bound_vic: Vic | None = None   # the Vic holding our VIRQ number while bound
        self.last_out: Any = None   # the core step's out, for rule checks
        if active:
            self.activate()

    def _run(self, sp: Step, detail: str = "") -> Any:
        self.last_out = sp.out
        self.state, out = apply(sp, detail)
        return out

    def _release(self, was: Any) -> None:
        if was.virq_bound and not self.state.virq_bound and self.bound_vic is not None:
            self.bound_vic.release(was.virq, self)
            self.bound_vic = None

    # --- lifecycle
    def activate(self) -> None:
        """INIT -> ACTIVE (object_activate); ``CallerError`` OBJECT_STATE otherwise."""
        self._run(doorbell_activate(CONCRETE, self.state))

    def destroy(self) -> None:
        """Destroy the object: the VIRQ is unbound and its number released; every later call is refused."""
        s = self.state
        self._run(doorbell_destroy(CONCRETE, s))
        self._release(s)

    # --- hypercalls
    def send(self, new_flags: int) -> int:
        """Set ``new_flags``; return the old flags."""
        return self._run(doorbell_send(CONCRETE, self.state, new_flags), f"new_flags {new_flags:#x}")

    def receive(self, clear_flags: int) -> int:
        """Clear ``clear_flags``; return the old flags. ``CallerError`` when ``clear_flags`` is 0."""
        return self._run(doorbell_receive(CONCRETE, self.state, clear_flags), f"clear_flags {clear_flags:#x}")

    def mask(self, enable_mask: int, ack_mask: int) -> None:
        """Set the enable and ack masks."""
        self._run(doorbell_mask(CONCRETE, self.state, enable_mask, ack_mask),
                  f"enable {enable_mask:#x} ack {ack_mask:#x}")

    def reset(self) -> None:
        """Restore the doorbell's defaults."""
        self._run(doorbell_reset(CONCRETE, self.state))

    def bind_virq(self, edge_trigger: bool = False, virq: int | None = None, vic: Vic | None = None) -> None:
        """Bind VIRQ ``virq`` of ``vic`` (default: the receiver's ``Vic`` and its first free number),
        level-triggered unless ``edge_trigger``. ``CallerError``: OBJECT_STATE unless ACTIVE, VIRQ_BOUND if
        bound, ARGUMENT_INVALID if no such VIRQ, BUSY if the number has a source."""
        v = self.vic if vic is None else vic
        n = v.first_free() if virq is None else virq
        self._run(doorbell_bind_virq(CONCRETE, self.state, edge_trigger, n, v.exists(n), v.is_free(n)),
                  f"VIRQ {n}")
        v.claim(n, self)
        self.bound_vic = v

    def unbind_virq(self) -> None:
        """Release the VIRQ (and its number in the ``Vic``)."""
        s = self.state
        self._run(doorbell_unbind_virq(CONCRETE, s))
        self._release(s)

    # --- the receiving VM
    def deliver(self) -> bool:
        """Take the VIRQ if it is deliverable; return whether it was taken."""
        return self._run(virq_deliver(CONCRETE, self.state))

    def eoi(self) -> bool:
        """EOI the VIRQ in service; return whether there was one."""
        return self._run(virq_eoi(CONCRETE, self.state))

    def pending(self) -> bool:
        """Return whether the VIRQ is pending."""
        return is_virq_pending(CONCRETE, self.state)
