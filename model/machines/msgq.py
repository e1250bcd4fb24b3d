"""Message-queue machine: the model against a plain deque, with hostile sizes and thresholds."""
from __future__ import annotations

from collections import deque

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from t1virtio import errors
from t1virtio.hyp.msgq import DEPTH, KEEP, MessageQueue
from t1virtio.machines.common import check_invariants, checked_call
from t1virtio.preset import SMALL


class MsgqMachine(RuleBasedStateMachine):
    """Sends, receives, flushes and re-configures one queue; every result is compared with a deque."""

    @initialize(depth=st.integers(1, SMALL.msgq_max_depth), max_size=st.integers(1, SMALL.msgq_max_msg_size))
    def create(self, depth, max_size):
        self.q = MessageQueue(SMALL, depth, max_size)
        self.ref: deque[bytes] = deque()

    @rule(data=st.binary(min_size=0, max_size=SMALL.msgq_max_msg_size + 2), push=st.booleans(),
          reserved=st.sampled_from([0, 0, 0, 2, 1 << 63]))
    def send(self, data, push, reserved):
        flags = int(push) | reserved
        ok, err = checked_call("msgq", "send", self.q, lambda: self.q.send(data, flags=flags),
                               {"size": len(data), "flags": flags})
        legal = reserved == 0 and len(self.ref) < self.q.state.depth and 1 <= len(data) <= self.q.state.max_size
        assert ok == legal, f"send of {len(data)} bytes accepted={ok}, expected {legal}: {err}"
        if ok:
            self.ref.append(data)
            assert self.q.last_out == (len(self.ref) < self.q.state.depth)

    @rule(short=st.integers(0, 3))
    def receive(self, short):
        bufsize = self.q.state.max_size - short
        got: list = []
        ok, err = checked_call("msgq", "receive", self.q, lambda: got.append(self.q.receive(bufsize)),
                               {"bufsize": bufsize})
        if not self.ref:
            assert isinstance(err, errors.Exhausted), f"receive on an empty queue gave {err}"
            return
        if len(self.ref[0]) > bufsize:
            assert isinstance(err, errors.CallerError) and err.clause == "HYP-MSGQ-overflow", err
            return
        assert ok, err
        data, not_empty = got[0]
        assert data == self.ref.popleft(), "message bytes differ from what was sent (FIFO, unmodified)"
        assert not_empty == bool(self.ref)

    @rule()
    def flush(self):
        checked_call("msgq", "flush", self.q, self.q.flush, {})
        self.ref.clear()

    @rule(thd=st.integers(-3, SMALL.msgq_max_depth + 1))
    def configure_send(self, thd):
        checked_call("msgq", "configure_send", self.q, lambda: self.q.configure_send(thd), {"notfull_thd": thd})

    @rule(thd=st.sampled_from([KEEP, DEPTH, -3, 0, 1, 2, 3, 4, 5]))
    def configure_receive(self, thd):
        checked_call("msgq", "configure_receive", self.q, lambda: self.q.configure_receive(thd),
                     {"notempty_thd": thd})

    @invariant()
    def invariants_hold(self):
        check_invariants("msgq", self.q.state)
        assert self.q.state.count == len(self.ref), "queue length differs from the reference deque"


MACHINES = {"msgq": MsgqMachine}
