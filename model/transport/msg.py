"""virtio-msg, the OASIS message transport (draft transport-msg.tex; facts/upstream.md §5.4, §6.7).

The symbolic core ``MsgState`` is one device number as both ends see it: the device status and features
(``virtio.status``, reused), the virtqueues SET_VQUEUE configured, the configuration generation, the events
the driver has not handled (``events``; a bus that turns EVENT_USED/EVENT_CONFIG into a doorbell asserts it
while non-zero), and the driver's FIFO of outstanding requests (``ids`` by request number; the token of
request ``n`` is ``n mod 2^16``). Responses come in request order per device number, one per request.
Messages are encoded by ``encode``/``decode`` (8-byte little-endian header, ``MESSAGES`` table); a
malformed message is discarded without side effects.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from t1virtio import errors
from t1virtio import preset as presets
from t1virtio.hyp.msgq import MessageQueue
from t1virtio.logic import CONCRETE
from t1virtio.state import bits, evolve
from t1virtio.step import Step, apply, step
from t1virtio.virtio import status as S

REVISION = 1
MIN_MSG_SIZE, MAX_PAYLOAD = 44, 256
HEADER = struct.Struct("<BBHHH")          # type, msg_id, dev_num, token, msg_size
TYPE_RESPONSE, TYPE_BUS = 1, 2
WINDOW = 4                                # outstanding requests per device (the request queue's depth)
TOKENS = 1 << 16
QP = 4                                    # per-queue parameters: size, desc, driver, device
EV_USED, EV_CONFIG = 1, 2
EV_DEFINED = EV_USED | EV_CONFIG

# transport messages (facts §5.4): id -> (name, request payload, response payload or None for events).
# Payload formats are the fixed part; "+" marks a variable tail (features words or config data).
MESSAGES = {
    0x02: ("GET_DEVICE_INFO", "", "<IIIIIHH"),
    0x03: ("GET_DEVICE_FEATURES", "<II", "<II+"),
    0x04: ("SET_DRIVER_FEATURES", "<II+", ""),
    0x05: ("GET_CONFIG", "<II", "<III+"),
    0x06: ("SET_CONFIG", "<III+", "<III+"),
    0x07: ("GET_DEVICE_STATUS", "", "<I"),
    0x08: ("SET_DEVICE_STATUS", "<I", "<I"),
    0x09: ("GET_VQUEUE", "<I", "<IIIIQQQ"),
    0x0A: ("SET_VQUEUE", "<IIIIQQQ", ""),
    0x0B: ("RESET_VQUEUE", "<I", ""),
    0x0C: ("GET_SHM", "<I", "<IQQ"),
    0x40: ("EVENT_CONFIG", "<IIII+", None),
    0x41: ("EVENT_AVAIL", "<II", None),
    0x42: ("EVENT_USED", "<I", None),
}
BY_NAME = {v[0]: k for k, v in MESSAGES.items()}


@dataclass(frozen=True, slots=True)
class MsgState:
    """One device number of a virtio-msg bus."""

    dev: S.DeviceStatusState
    max_size: tuple                         # per queue (GET_VQUEUE max_size), fixed
    configured: tuple = ()                  # SET_VQUEUE done, not reset
    params: tuple = ()                      # QP words per queue
    generation: int = 0                     # configuration generation (not reset by a device reset)
    events: int = bits(8, default=0)        # EVENT_USED / EVENT_CONFIG not yet handled by the driver
    line: bool = False                      # the bus's doorbell for those events
    seen: int = bits(S.STATUS_BITS, default=0)   # ghost: status bits set since the last reset
    sent: int = 0                           # requests since creation
    answered: int = 0                       # responses since creation
    ids: tuple = (0,) * WINDOW              # msg_id of request n at n mod WINDOW


@dataclass(frozen=True, slots=True)
class MsgChannelState:
    """The driver's outstanding-request FIFO (the fields ``request``/``response`` use)."""

    sent: int = 0
    answered: int = 0
    ids: tuple = (0,) * WINDOW


def msg_create(dev: S.DeviceStatusState, max_size: tuple) -> MsgState:
    n = len(max_size)
    return MsgState(dev=dev, max_size=tuple(max_size), configured=(False,) * n, params=(0,) * (n * QP))


def _q_ok(L: Any, s: MsgState, q: Any) -> Any:
    return L.And(0 <= q, q < len(s.max_size))


def _fold(L: Any, guards: list, sp: Step, when: Any = True) -> list:
    return guards + [(c if when is True else L.Implies(when, c), cl) for c, cl in sp.guards]


# ------------------------------------------------------------------ correlation (facts §5.4 Ordering)

def request(L: Any, s: Any, msg_id: Any) -> Step:
    """The driver sends request ``msg_id`` with token ``sent mod 2^16``; the FIFO must have room."""
    return step([(s.sent - s.answered < WINDOW, "TRANSPORT-MSG-window-full")],
                evolve(s, ids=L.update(s.ids, L.mod(s.sent, WINDOW), msg_id), sent=s.sent + 1),
                out=L.mod(s.sent, TOKENS))


def response(L: Any, s: Any, msg_id: Any, token: Any) -> Step:
    """A response arrives: it answers the oldest outstanding request (its id and token)."""
    head = L.mod(s.answered, WINDOW)
    guards = [(s.sent > s.answered, "TRANSPORT-MSG-unsolicited"),
              (L.And(msg_id == L.at(s.ids, head), token == L.mod(s.answered, TOKENS)), "TRANSPORT-MSG-in-order")]
    return step(guards, evolve(s, answered=s.answered + 1))


# ------------------------------------------------------------------ device operations

def set_device_status(L: Any, s: MsgState, value: Any) -> Step:
    """SET_DEVICE_STATUS (``virtio.status.write_status``); 0 resets: no queue configured, no event pending."""
    sp = S.write_status(L, s.dev, value)
    n = len(s.max_size)
    reset = evolve(s, dev=sp.new, configured=(False,) * n, events=s.events & 0, line=False, seen=s.seen & 0)
    written = evolve(s, dev=sp.new, seen=s.seen | sp.new.status)
    return step(_fold(L, [], sp), L.If(value == 0, reset, written), out=sp.new.status)


def set_driver_features(L: Any, s: MsgState, value: Any) -> Step:
    """SET_DRIVER_FEATURES (blocks 0-1 as one 64-bit set; ``virtio.status.write_driver_features``)."""
    sp = S.write_driver_features(L, s.dev, value)
    return step(_fold(L, [], sp), evolve(s, dev=sp.new))


def set_vqueue(L: Any, s: MsgState, queue: Any, size: Any, desc: Any, driver: Any, device: Any) -> Step:
    """SET_VQUEUE: size 1..max_size; a configured queue of a live device only after RESET_VQUEUE."""
    live = L.And(S.has(L, s.dev.status, S.DRIVER_OK), L.at(s.configured, queue))
    guards = [(L.And(_q_ok(L, s, queue), 1 <= size, size <= L.at(s.max_size, queue)), "TRANSPORT-MSG-queue-size"),
              (L.Not(live), "TRANSPORT-MSG-queue-live")]
    params = s.params
    for p, v in enumerate((size, desc, driver, device)):
        params = L.update(params, queue * QP + p, v)
    return step(guards, evolve(s, params=params, configured=L.update(s.configured, queue, True)))


def reset_vqueue(L: Any, s: MsgState, queue: Any) -> Step:
    """RESET_VQUEUE: the queue is unconfigured."""
    return step([(_q_ok(L, s, queue), "TRANSPORT-MSG-queue-size")],
                evolve(s, configured=L.update(s.configured, queue, False)))


def set_config(L: Any, s: MsgState, generation: Any) -> Step:
    """SET_CONFIG: accepted only at the current generation (which then advances); out = whether accepted."""
    sp = S.write_config(L, s.dev)
    fresh = generation == s.generation
    return step(_fold(L, [], sp), L.If(fresh, evolve(s, generation=s.generation + 1), s), out=fresh)


def event_avail(L: Any, s: MsgState, queue: Any) -> Step:
    """EVENT_AVAIL from the driver: a configured queue, after DRIVER_OK (``virtio.status.driver_notify``)."""
    sp = S.driver_notify(L, s.dev)
    guards = _fold(L, [(L.And(_q_ok(L, s, queue), L.at(s.configured, queue)), "TRANSPORT-MSG-event-queue")], sp)
    return step(guards, evolve(s, dev=sp.new))


def event_used(L: Any, s: MsgState, queue: Any) -> Step:
    """EVENT_USED from the device: a configured queue, after DRIVER_OK; the event is pending until handled."""
    sp = S.device_notify_used(L, s.dev)
    guards = _fold(L, [(L.And(_q_ok(L, s, queue), L.at(s.configured, queue)), "TRANSPORT-MSG-event-queue")], sp)
    return step(guards, evolve(s, dev=sp.new, events=s.events | EV_USED, line=True))


def event_config(L: Any, s: MsgState) -> Step:
    """EVENT_CONFIG from the device: the generation advances; the event is pending until handled."""
    sp = S.device_config_change(L, s.dev)
    return step(_fold(L, [], sp), evolve(s, dev=sp.new, generation=s.generation + 1, events=s.events | EV_CONFIG,
                                         line=True))


def driver_take_events(L: Any, s: MsgState, mask: Any) -> Step:
    """The driver handled the events in ``mask``: exactly those are cleared; the doorbell follows."""
    ev = s.events & ~mask
    return step([], evolve(s, events=ev, line=ev != 0))


def device_use_queue(L: Any, s: MsgState, queue: Any) -> Step:
    """The device consumes a buffer of a configured queue, after DRIVER_OK."""
    sp = S.device_consume(L, s.dev)
    guards = _fold(L, [(L.And(_q_ok(L, s, queue), L.at(s.configured, queue)), "TRANSPORT-MSG-event-queue")], sp)
    return step(guards, evolve(s, dev=sp.new))


# ------------------------------------------------------------------ wire

@dataclass(frozen=True)
class Msg:
    type: int
    msg_id: int
    dev_num: int
    token: int
    payload: bytes = b""


def payload_size(fmt: str | None) -> int:
    return struct.calcsize(fmt.rstrip("+")) if fmt else 0


def encode(m: Msg) -> bytes:
    return HEADER.pack(m.type, m.msg_id, m.dev_num, m.token, HEADER.size + len(m.payload)) + m.payload


def decode(data: bytes, max_msg_size: int, response: bool) -> Msg:
    """Decode a transport message; ``PeerViolation`` TRANSPORT-MSG-header when malformed (the caller drops it)."""
    bad = "TRANSPORT-MSG-header"
    if len(data) < HEADER.size or len(data) > max_msg_size:
        raise errors.fail(bad, f"{len(data)} bytes")
    typ, msg_id, dev_num, token, size = HEADER.unpack_from(data)
    row = MESSAGES.get(msg_id)
    if typ & ~(TYPE_RESPONSE | TYPE_BUS) or typ & TYPE_BUS or size != len(data) or row is None:
        raise errors.fail(bad, f"type {typ:#x} id {msg_id:#x} size {size}/{len(data)}")
    is_event = row[2] is None
    if bool(typ & TYPE_RESPONSE) != response or (is_event and typ & TYPE_RESPONSE):
        raise errors.fail(bad, f"{row[0]}: type {typ:#x}")
    fmt = row[1] if not response or is_event else row[2]
    fixed = payload_size(fmt)
    if size - HEADER.size < fixed or (not fmt.endswith("+") and size - HEADER.size != fixed):
        raise errors.fail(bad, f"{row[0]}: payload {size - HEADER.size}, fixed part {fixed}")
    return Msg(typ, msg_id, dev_num, token, bytes(data[HEADER.size:]))


# ------------------------------------------------------------------ concrete ends

class MsgBackend:
    """The device side of one device number: answers each request, in order, on the response queue."""

    def __init__(self, dev: S.DeviceStatusState, max_size: tuple, requests: MessageQueue, responses: MessageQueue,
                 dev_num: int = 1, config: bytes = b"", max_msg_size: int = 2 * MIN_MSG_SIZE):
        self.state = msg_create(dev, max_size)
        self.requests, self.responses, self.dev_num = requests, responses, dev_num
        self.config = bytearray(config)
        self.max_msg_size = max_msg_size
        self.dropped: list[errors.ModelError] = []
        self.refusals: list[errors.ModelError] = []
        self.last_out: Any = None

    def run(self, fn: Any, **args: Any) -> Any:
        sp = fn(CONCRETE, self.state, **args)
        self.last_out = sp.out if sp.out is not None else True
        self.state, out = apply(sp, f"{fn.__name__}({args})")
        return out

    def _reply(self, req: Msg, payload: bytes) -> None:
        self.responses.send(encode(Msg(TYPE_RESPONSE, req.msg_id, self.dev_num, req.token, payload)))

    def poll(self) -> bool:
        """Serve one message, if any (a malformed one is dropped, an EVENT_AVAIL is not answered)."""
        if self.requests.state.count == 0:
            return False
        data, _ = self.requests.receive()
        try:
            m = decode(data, self.max_msg_size, response=False)
        except errors.PeerViolation as e:
            self.dropped.append(e)
            return True
        name, fmt = MESSAGES[m.msg_id][0], MESSAGES[m.msg_id][1]
        f = struct.unpack_from(fmt.rstrip("+"), m.payload) if fmt else ()
        s = self.state
        try:
            if name == "EVENT_AVAIL":
                self.run(event_avail, queue=f[0])
                return True
            if name == "GET_DEVICE_INFO":
                out = struct.pack("<IIIIIHH", s.dev.device_id, 0, 64, len(self.config), len(s.max_size), 0, 0)
            elif name == "GET_DEVICE_STATUS":
                out = struct.pack("<I", s.dev.status)
            elif name == "SET_DEVICE_STATUS":
                out = struct.pack("<I", self.run(set_device_status, value=f[0] & 0xFF))
            elif name == "GET_DEVICE_FEATURES":
                words = [(s.dev.device_features >> (32 * (f[0] + k))) & 0xFFFFFFFF if f[0] + k < 2 else 0
                         for k in range(min(f[1], 2))]
                out = struct.pack(f"<II{len(words)}I", f[0], len(words), *words)
            elif name == "SET_DRIVER_FEATURES":
                words = struct.unpack_from(f"<{min(f[1], 2)}I", m.payload, 8)
                value = sum(w << (32 * (f[0] + k)) for k, w in enumerate(words) if f[0] + k < 2)
                self.run(set_driver_features, value=value)
                out = b""
            elif name == "GET_VQUEUE":
                q = f[0]
                if not 0 <= q < len(s.max_size):
                    out = struct.pack("<IIIIQQQ", q, 0, 0, 0, 0, 0, 0)
                else:
                    p = s.params[q * QP:(q + 1) * QP]
                    out = struct.pack("<IIIIQQQ", q, s.max_size[q], p[0] if s.configured[q] else 0, 0, *p[1:])
            elif name == "SET_VQUEUE":
                self.run(set_vqueue, queue=f[0], size=f[2], desc=f[4], driver=f[5], device=f[6])
                out = b""
            elif name == "RESET_VQUEUE":
                self.run(reset_vqueue, queue=f[0])
                out = b""
            elif name == "GET_CONFIG":
                data_ = bytes(self.config[f[0]:f[0] + f[1]])
                out = struct.pack("<III", s.generation, f[0], len(data_)) + data_
            elif name == "SET_CONFIG":
                fresh = self.run(set_config, generation=f[0])
                data_ = m.payload[12:12 + f[2]]
                if fresh:
                    self.config[f[1]:f[1] + len(data_)] = data_
                out = struct.pack("<III", self.state.generation, f[1], len(data_) if fresh else 0)
            else:   # GET_SHM: no shared memory regions
                out = struct.pack("<IQQ", f[0], 0, 0)
        except errors.ModelError as e:
            if isinstance(e, errors.InvariantViolation):
                raise
            self.refusals.append(e)
            if MESSAGES[m.msg_id][2] is None:
                return True     # events are never answered
            # the request still gets its one response: the fixed part, zeroed (SET_DEVICE_STATUS: the status kept)
            out = bytes(payload_size(MESSAGES[m.msg_id][2]))
            if name == "SET_DEVICE_STATUS":
                out = struct.pack("<I", self.state.dev.status)
        self._reply(m, out)
        return True

    def send_event(self, name: str, queue: int = 0) -> None:
        """EVENT_USED (queue) or EVENT_CONFIG, checked by the core, on the response queue."""
        if name == "EVENT_USED":
            self.run(event_used, queue=queue)
            payload = struct.pack("<I", queue)
        else:
            self.run(event_config)
            payload = struct.pack("<IIII", self.state.dev.status, self.state.generation, 0, 0)
        self.responses.send(encode(Msg(0, BY_NAME[name], self.dev_num, 0, payload)))


class MsgFrontend:
    """The driver side: requests with tokens, responses checked in order, events taken as they come."""

    def __init__(self, requests: MessageQueue, responses: MessageQueue, dev_num: int = 1,
                 max_msg_size: int = 2 * MIN_MSG_SIZE, pump: Any = None):
        self.requests, self.responses, self.dev_num, self.pump = requests, responses, dev_num, pump
        self.state = MsgChannelState()
        self.max_msg_size = max_msg_size
        self.events: list[Msg] = []
        self.last_out: Any = None

    def _run(self, fn: Any, **args: Any) -> Any:
        sp = fn(CONCRETE, self.state, **args)
        self.last_out = sp.out if sp.out is not None else True
        self.state, out = apply(sp, f"{fn.__name__}({args}), {self.state.sent - self.state.answered} outstanding")
        return out

    def send(self, name: str, *fields: Any, tail: bytes = b"") -> int:
        """Send a request (or EVENT_AVAIL); return its token (None for an event)."""
        msg_id = BY_NAME[name]
        fmt = MESSAGES[msg_id][1]
        payload = (struct.pack(fmt.rstrip("+"), *fields) if fmt else b"") + tail
        if MESSAGES[msg_id][2] is None:
            self.requests.send(encode(Msg(0, msg_id, self.dev_num, 0, payload)))
            return None
        token = self._run(request, msg_id=msg_id)
        self.requests.send(encode(Msg(0, msg_id, self.dev_num, token, payload)))
        return token

    def take(self) -> Msg | None:
        """Take the next message from the device: a response (checked in order) or an event (kept)."""
        if self.responses.state.count == 0:
            return None
        data, _ = self.responses.receive()
        m = decode(data, self.max_msg_size, response=bool(data[0] & TYPE_RESPONSE) if data else True)
        if MESSAGES[m.msg_id][2] is None:
            self.events.append(m)
            return m
        self._run(response, msg_id=m.msg_id, token=m.token)
        return m

    def call(self, name: str, *fields: Any, tail: bytes = b"", max_polls: int = 64) -> bytes:
        """Send a request and wait (bounded) for its response; return the response payload."""
        self.send(name, *fields, tail=tail)
        target = self.state.answered + 1
        for _ in range(max_polls):
            m = self.take()
            if m is not None and self.state.answered == target and MESSAGES[m.msg_id][2] is not None:
                return m.payload
            if m is None and self.pump is not None:
                self.pump()
        raise errors.fail("TRANSPORT-MSG-unsolicited", f"no response to {name} after {max_polls} polls")


def connect(dev: S.DeviceStatusState, max_size: tuple, config: bytes = b"",
            preset: presets.Preset = presets.LINUX) -> tuple[MsgFrontend, MsgBackend]:
    """A frontend and backend of one device number over a fresh message-queue pair."""
    size = 2 * MIN_MSG_SIZE
    req, resp = MessageQueue(preset, WINDOW + 2, size), MessageQueue(preset, WINDOW + 2, size)
    back = MsgBackend(dev, max_size, req, resp, config=config, max_msg_size=size)
    return MsgFrontend(req, resp, max_msg_size=size, pump=back.poll), back
