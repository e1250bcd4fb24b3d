"""virtio-msg machine: an honest driver and hostile peers on one device number over a message-queue pair.

The driver's requests go through ``MsgFrontend`` (tokens, in-order response check); the device answers
through ``MsgBackend``. Hostile rules send malformed bytes (dropped without effect), forge or reorder
responses (refused by the driver with TRANSPORT-MSG-in-order), and change live queues (refused). The device
state's invariants and the rules of each core step are checked on the concrete states.
"""
from __future__ import annotations

import struct

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from t1virtio.machines.common import REFERENCE, check_invariants, checked_call, expect
from t1virtio.transport import msg
from t1virtio.virtio import features as F
from t1virtio.virtio import status as S

C = "transport_msg"
MAX_SIZE = (4, 8)
INIT = (S.ACKNOWLEDGE, S.DRIVER, S.FEATURES_OK, S.DRIVER_OK)


class MsgMachine(RuleBasedStateMachine):

    @initialize()
    def create(self):
        dev = S.VirtioDevice(F.NET, F.bit(F.VIRTIO_F_VERSION_1)).state
        self.front, self.back = msg.connect(dev, MAX_SIZE, config=bytes(8))

    def _device(self, op, call, args):
        """Run one request through the transport, with ``op``'s rules checked on the device state."""
        n = len(self.back.refusals)

        def go():
            call()
            if len(self.back.refusals) > n:
                raise self.back.refusals[-1]
        return checked_call(C, op, self.back, go, args)

    @rule(data=st.data())
    def honest_driver_step(self, data):
        st_ = self.back.state.dev.status
        if st_ & (S.FAILED | S.DEVICE_NEEDS_RESET):
            self._device("set_device_status", lambda: self.front.call("SET_DEVICE_STATUS", 0), {"value": 0})
            return
        nxt = next((b for b in INIT if not st_ & b), None)
        if nxt == S.FEATURES_OK:
            self._device("set_driver_features", lambda: self.front.call(
                "SET_DRIVER_FEATURES", 1, 1, tail=struct.pack("<I", 1)), {"value": F.bit(F.VIRTIO_F_VERSION_1)})
            q = data.draw(st.integers(0, len(MAX_SIZE) - 1), label="queue")
            args = {"queue": q, "size": MAX_SIZE[q], "desc": 0x1000, "driver": 0x2000, "device": 0x3000}
            self._device("set_vqueue", lambda: self.front.call("SET_VQUEUE", q, 0, MAX_SIZE[q], 0, 0x1000, 0x2000,
                                                                 0x3000), args)
        if nxt is not None:
            self._device("set_device_status", lambda: self.front.call("SET_DEVICE_STATUS", st_ | nxt),
                         {"value": st_ | nxt})

    @rule(value=st.integers(0, 255))
    def hostile_status(self, value):
        self._device("set_device_status", lambda: self.front.call("SET_DEVICE_STATUS", value), {"value": value})

    @rule(q=st.integers(-1, 2), size=st.integers(0, 9))
    def hostile_set_vqueue(self, q, size):
        s = self.back.state
        live = s.dev.status & S.DRIVER_OK and 0 <= q < len(MAX_SIZE) and s.configured[q]
        ok, err = self._device("set_vqueue", lambda: self.front.call("SET_VQUEUE", q & 0xFFFFFFFF, 0, size, 0, 1, 2, 3),
                               {"queue": q & 0xFFFFFFFF, "size": size, "desc": 1, "driver": 2, "device": 3})
        expect(not (ok and live), REFERENCE, f"SET_VQUEUE accepted on live queue {q}")

    @rule(q=st.integers(0, 2))
    def reset_vqueue(self, q):
        self._device("reset_vqueue", lambda: self.front.call("RESET_VQUEUE", q), {"queue": q})

    @rule(stale=st.booleans())
    def set_config(self, stale):
        gen = self.back.state.generation + (1 if stale else 0)
        ok, _ = self._device("set_config", lambda: self.front.call("SET_CONFIG", gen, 0, 1, tail=b"\x07"),
                             {"generation": gen})
        expect(not (ok and stale and self.back.last_out), REFERENCE, "stale SET_CONFIG accepted")

    @rule(q=st.integers(0, 2))
    def event_avail(self, q):
        self.front.send("EVENT_AVAIL", q, 0)
        self._device("event_avail", self.back.poll, {"queue": q})

    @rule(q=st.integers(0, 2))
    def device_event_used(self, q):
        checked_call(C, "event_used", self.back, lambda: self.back.send_event("EVENT_USED", q), {"queue": q})

    @rule()
    def device_event_config(self):
        checked_call(C, "event_config", self.back, lambda: self.back.send_event("EVENT_CONFIG"), {})

    @rule(mask=st.integers(0, 3))
    def driver_handles_events(self, mask):
        while self.front.take() is not None:       # bounded: the response queue's depth
            pass
        checked_call(C, "driver_take_events", self.back,
                     lambda: self.back.run(msg.driver_take_events, mask=mask), {"mask": mask})

    @rule(data=st.binary(min_size=1, max_size=40))
    def hostile_bytes(self, data):
        """Any bytes as a request: dropped without effect when malformed, else served."""
        s = self.back.state
        self.front.requests.send(data)
        dropped = len(self.back.dropped)
        self.back.poll()
        if len(self.back.dropped) > dropped:
            expect(self.back.state == s, REFERENCE, "a malformed message changed the device")
        while self.front.responses.state.count:     # bounded: the queue's depth
            self.front.responses.receive()

    @rule(delta=st.integers(1, 3), wrong_id=st.booleans())
    def hostile_response(self, delta, wrong_id):
        """A forged response out of order (wrong token or id): the driver refuses it, nothing changes."""
        while self.front.take() is not None:       # events first (bounded: the response queue's depth)
            pass
        token = self.front.send("GET_DEVICE_STATUS")
        ch = self.front.state
        args = {"msg_id": msg.BY_NAME["GET_DEVICE_STATUS"] + (1 if wrong_id else 0),
                "token": (token + (0 if wrong_id else delta)) & 0xFFFF}
        self.front.responses.send(msg.encode(msg.Msg(msg.TYPE_RESPONSE, args["msg_id"], 1, args["token"],
                                                     struct.pack("<I", 0))))
        ok, err = checked_call(C, "response", self.front, self.front.take, args, core_only=True)
        expect(not ok and err.clause == "TRANSPORT-MSG-in-order", REFERENCE, f"forged response accepted or {err}")
        expect(self.front.state == ch, REFERENCE, "a refused response changed the FIFO")
        self.back.poll()
        self.front.take()

    @invariant()
    def invariants_hold(self):
        if hasattr(self, "back"):
            check_invariants(C, self.back.state)
            expect(self.front.state.sent == self.front.state.answered, REFERENCE, "a request left unanswered")


MACHINES = {"transport_msg": MsgMachine}
