"""Doorbell machine: the model against a plain reference doorbell, with hostile senders.

The reference is written the way gunyah-hypervisor@36ca3a2 hyp/ipc/doorbell/src/doorbell.c and the
vGIC delivery state read (plain ints and bools, imperative), so it is an independent encoding of
the same contract. Senders pass arbitrary words (including words wider than the register and
negative ones), masks change at any time, a sender or a mask change can land at any point of
the receiver's handler, and the object's lifecycle (destroy, create, activate) runs at any point.
"""
from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from t1virtio import errors
from t1virtio.hyp.doorbell import RECEIVER_PROTOCOL, Doorbell, Vic
from t1virtio.machines.common import check_invariants, checked_call
from t1virtio.preset import SMALL

VIRQS = (32, 33, 34, 35)       # the receiver's shared VIRQs in this machine
TAKEN = 33                     # one of them already has another source
WIDTH = SMALL.doorbell_bits
ONES = (1 << WIDTH) - 1

# Which clause a disagreement with the reference is reported under, per operation.
REFERENCE_CLAUSE = {"send": "HYP-DBL-send-or", "receive": "HYP-DBL-receive", "mask": "HYP-DBL-mask",
                    "reset": "HYP-DBL-reset", "bind": "HYP-DBL-bind", "unbind": "HYP-DBL-bind",
                    "deliver": "HYP-DBL-deliver", "eoi": "HYP-DBL-check-pending",
                    "activate": "HYP-DBL-lifecycle-rule", "destroy": "HYP-DBL-lifecycle-rule",
                    "create": "HYP-DBL-lifecycle-rule"}
PHASES = {"init": 0, "active": 1, "destroyed": 2}


class Refused(Exception):
    """The reference doorbell refuses a call (the Gunyah error name is the message)."""


class ReferenceDoorbell:
    """A plain doorbell object: its phase, three words and the VIRQ delivery bits one source can affect.

    ``held`` is the receiving VM's set of VIRQ numbers that have a source, shared by every doorbell of
    the machine (created with ``TAKEN`` held by another source).
    """

    def __init__(self, held: set, phase: str = "active") -> None:
        self.phase, self.held, self.virq = phase, held, None
        self.flags, self.enable, self.ack = 0, ONES, 0
        self.bound = self.edge_trigger = self.level_src = self.edge = self.active = False

    def _lookup(self) -> None:
        """cspace_lookup_doorbell is active_only."""
        if self.phase != "active":
            raise Refused("OBJECT_STATE")

    def activate(self) -> None:
        if self.phase != "init":
            raise Refused("OBJECT_STATE")
        self.phase = "active"

    def destroy(self) -> None:
        if self.phase == "destroyed":
            raise Refused("OBJECT_STATE")
        if self.phase == "active":
            self._release()
        self.phase = "destroyed"

    def _release(self) -> None:
        if self.bound:
            self.held.discard(self.virq)
        self.bound = self.level_src = self.edge = self.active = False

    @staticmethod
    def _word(w: int) -> None:
        if not 0 <= w <= ONES:
            raise Refused("ARGUMENT_INVALID")

    def _virq_assert(self, edge_only: bool) -> None:
        if self.bound:
            self.edge = True
            if not edge_only:
                self.level_src = True

    def send(self, new_flags: int) -> int:
        self._lookup()
        self._word(new_flags)
        old = self.flags
        self.flags |= new_flags
        edge_only = (self.flags & self.enable) == 0
        self._virq_assert(edge_only)
        if not edge_only:
            self.flags &= ~self.ack
        return old

    def receive(self, clear_flags: int) -> int:
        self._lookup()
        self._word(clear_flags)
        if clear_flags == 0:
            raise Refused("ARGUMENT_INVALID")
        old = self.flags
        self.flags &= ~clear_flags
        return old

    def mask(self, enable: int, ack: int) -> None:
        self._lookup()
        self._word(enable)
        self._word(ack)
        was, now = (self.flags & self.enable) != 0, (self.flags & enable) != 0
        self.enable, self.ack = enable, ack
        if was and not now:
            self.level_src = False
        elif now and not was:
            self._virq_assert(False)
        if now:
            self.flags &= ~ack

    def reset(self) -> None:
        self._lookup()
        self.level_src = False
        self.flags, self.ack, self.enable = 0, 0, ONES

    def bind(self, edge_trigger: bool, virq: int) -> None:
        self._lookup()
        if self.bound:
            raise Refused("VIRQ_BOUND")
        if virq not in VIRQS:
            raise Refused("ARGUMENT_INVALID")
        if virq in self.held:
            raise Refused("BUSY")
        self.held.add(virq)
        self.bound, self.edge_trigger, self.virq = True, edge_trigger, virq
        self.level_src = self.edge = self.active = False

    def unbind(self) -> None:
        self._lookup()
        self._release()

    def pending(self) -> bool:
        return self.bound and (self.edge if self.edge_trigger else self.level_src)

    def deliver(self) -> bool:
        if not self.pending() or self.active:
            return False
        self.active, self.edge = True, False
        return True

    def eoi(self) -> bool:
        if not self.active:
            return False
        self.active = False
        if self.level_src and not (self.edge or (self.flags & self.enable) != 0):
            self.level_src = False
        return True


def _hostile_words():
    """Mostly register words (often one flag), sometimes wider than the register or negative."""
    one_flag = st.integers(0, WIDTH - 1).map(lambda b: 1 << b)
    hostile = st.sampled_from([0, 1 << WIDTH, (1 << WIDTH) | 1, -1, 1 << 63, 1 << 64])
    return st.one_of(one_flag, one_flag, st.integers(0, ONES), st.integers(0, ONES), st.just(ONES), hostile)


def _enable_masks():
    return st.one_of(st.just(ONES), _hostile_words())


def _ack_masks():
    return st.one_of(st.just(0), st.just(ONES), _hostile_words())


class DoorbellMachine(RuleBasedStateMachine):
    """One doorbell driven by a hostile sender and a receiver; every result is compared with the reference."""

    @initialize(trigger=st.sampled_from(["level", "edge", "unbound"]), auto_ack=st.booleans())
    def create(self, trigger, auto_ack):
        """A doorbell, maybe bound, maybe set up to auto-ack every flag (how irqfd makes it edge-like)."""
        vic = Vic(first=VIRQS[0], count=len(VIRQS))
        vic.claim(TAKEN, "another source")
        self.db = Doorbell(SMALL, vic)
        self.ref = ReferenceDoorbell({TAKEN})
        if trigger != "unbound":
            self.bind(trigger == "edge", VIRQS[0])
        if auto_ack:
            self.mask(ONES, ONES)

    def _call(self, op: str, args: dict, model_call, ref_call) -> None:
        got: list = []
        ok, err = checked_call("doorbell", op, self.db, lambda: got.append(model_call()), args)
        try:
            expected, ref_ok = ref_call(), True
        except Refused as e:
            expected, ref_ok = str(e), False
        if ok != ref_ok or (ok and got[0] != expected):
            model = f"OK {got[0]!r}" if ok else str(err)
            ref = f"OK {expected!r}" if ref_ok else expected
            raise errors.InvariantViolation(REFERENCE_CLAUSE[op], f"{op}({args}): model {model}, reference {ref}")
        self._compare(op)

    def _compare(self, op: str) -> None:
        s, r = self.db.state, self.ref
        model = (s.lifecycle, s.flags, s.enable_mask, s.ack_mask, s.virq_bound, s.virq_level, s.virq_edge,
                 s.virq_active, frozenset(self.db.vic.sources))
        ref = (PHASES[r.phase], r.flags, r.enable, r.ack, r.bound, r.level_src, r.edge, r.active, frozenset(r.held))
        if model != ref or (s.virq_bound and s.virq_edge_trigger != r.edge_trigger):
            raise errors.InvariantViolation(REFERENCE_CLAUSE[op], f"after {op}: model {model}, reference {ref}")

    @rule(new_flags=_hostile_words())
    def send(self, new_flags):
        self._call("send", {"new_flags": new_flags}, lambda: self.db.send(new_flags), lambda: self.ref.send(new_flags))

    @rule(clear_flags=_hostile_words())
    def receive(self, clear_flags):
        self._call("receive", {"clear_flags": clear_flags}, lambda: self.db.receive(clear_flags),
                   lambda: self.ref.receive(clear_flags))

    @rule(enable_mask=_enable_masks(), ack_mask=_ack_masks())
    def mask(self, enable_mask, ack_mask):
        self._call("mask", {"enable_mask": enable_mask, "ack_mask": ack_mask},
                   lambda: self.db.mask(enable_mask, ack_mask), lambda: self.ref.mask(enable_mask, ack_mask))

    @rule()
    def reset(self):
        self._call("reset", {}, self.db.reset, self.ref.reset)

    def bind(self, edge_trigger, virq):
        vic = self.db.vic
        args = {"edge_trigger": edge_trigger, "virq": virq, "virq_exists": vic.exists(virq),
                "virq_free": vic.is_free(virq)}
        self._call("bind", args, lambda: self.db.bind_virq(edge_trigger, virq), lambda: self.ref.bind(edge_trigger, virq))

    def unbind(self):
        self._call("unbind", {}, self.db.unbind_virq, self.ref.unbind)

    @rule(action=st.sampled_from(["bind", "bind", "unbind"]), edge_trigger=st.booleans(),
          virq=st.sampled_from(VIRQS + (VIRQS[0], 31, 36, -1)))
    def binding(self, action, edge_trigger, virq):
        """Bind (VIRQ_BOUND when bound, ARGUMENT_INVALID for a VIRQ the receiver lacks, BUSY for one with
        another source) or unbind the VIRQ; one rule, so unbinding stays rare."""
        if action == "bind":
            self.bind(edge_trigger, virq)
        else:
            self.unbind()

    @rule(action=st.sampled_from(["destroy", "create", "activate", "activate"]))
    def lifecycle(self, action):
        """Destroy the doorbell, create a fresh INIT one on the same receiver (a doorbell left bound keeps
        its VIRQ number), or activate it (OBJECT_STATE unless INIT), at any point."""
        if action == "create":
            self.db, self.ref = Doorbell(SMALL, self.db.vic, active=False), ReferenceDoorbell(self.ref.held, "init")
            self._compare("create")
        else:
            self._call(action, {}, getattr(self.db, action), getattr(self.ref, action))

    @rule()
    def deliver(self):
        self._call("deliver", {}, self.db.deliver, self.ref.deliver)

    @rule()
    def eoi(self):
        self._call("eoi", {}, self.db.eoi, self.ref.eoi)

    @rule(clear_flags=st.one_of(st.just(ONES), _hostile_words()), at=st.integers(0, len(RECEIVER_PROTOCOL)),
          interloper=st.sampled_from(["none", "send", "send", "mask"]), word=_hostile_words(), ack=_ack_masks())
    def handle_interrupt(self, clear_flags, at, interloper, word, ack):
        """The receiver's handler (take, receive, EOI) with a send or a mask change landing at step ``at``."""
        actions = list(RECEIVER_PROTOCOL)
        if interloper != "none":
            actions.insert(at, interloper)
        for a in actions:
            if a == "send":
                self.send(word)
            elif a == "mask":
                self.mask(word, ack)
            elif a == "receive":
                self.receive(clear_flags)
            else:
                getattr(self, a)()

    @invariant()
    def invariants_hold(self):
        check_invariants("doorbell", self.db.state)


MACHINES = {"doorbell": DoorbellMachine}
