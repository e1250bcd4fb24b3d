"""Message-queue machine: the model against a plain reference queue, with hostile callers.

The reference (``ReferenceQueue``) is written the way gunyah-hypervisor@36ca3a2 msgqueue.c and the
vGIC delivery state read (a deque, plain ints and bools, imperative): assertions only on transitions,
lazy deassertion at EOI, lines bound late start unasserted. Callers pass hostile sizes, reserved
flags, out-of-range thresholds and holdoffs, buffers on unmapped or read-only/write-only pages, bind
lines to VIRQ numbers that are missing or already have a source, and run the object's lifecycle
(destroy, create, configure, activate) at any point.
"""
from __future__ import annotations

from collections import deque

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from t1virtio import errors
from t1virtio.hyp.memview import NO_RIGHT
from t1virtio.hyp.msgq import DEPTH, KEEP, LINES, MSGQ_PUSH, MessageQueue, Vic
from t1virtio.machines.common import REFERENCE, check_invariants, checked_call, expect
from t1virtio.preset import SMALL

PAGE = 8
R, W = 4, 2
PAGE_RIGHTS = (R | W, R | W, R, W, 0, R | W)      # page 4 unmapped; 2 read-only, 3 write-only
MEM = PAGE * len(PAGE_RIGHTS)
VIRQS = (32, 33, 34, 35)       # the VM's shared VIRQs in this machine (one VIC for both lines)
TAKEN = 33                     # one of them already has another source (a doorbell, say)
START = {"tx": 32, "rx": 34}   # the numbers the lines are bound to at the start

# Which clause a disagreement with the reference is reported under, per operation.
REFERENCE_CLAUSE = {"send": "HYP-MSGQ-send-rule", "receive": "HYP-MSGQ-receive-rule",
                    "flush": "HYP-MSGQ-flush-rule", "configure_send": "HYP-MSGQ-threshold-rule",
                    "configure_receive": "HYP-MSGQ-threshold-rule", "bind": "HYP-MSGQ-bind-rule",
                    "unbind": "HYP-MSGQ-bind-rule", "deliver": "HYP-MSGQ-deliver", "eoi": "HYP-MSGQ-check-pending",
                    "configure": "HYP-MSGQ-lifecycle-rule", "activate": "HYP-MSGQ-lifecycle-rule",
                    "destroy": "HYP-MSGQ-lifecycle-rule", "create": "HYP-MSGQ-lifecycle-rule"}


class PagedView:
    """A caller's view of ``MEM`` bytes in pages of ``PAGE`` with fixed rights (R 4, W 2)."""

    def __init__(self, mem: bytearray):
        self.mem = mem

    def _check(self, addr: int, n: int, right: int) -> None:
        if addr < 0 or addr + n > MEM or any(not PAGE_RIGHTS[p] & right for p in range(addr // PAGE, (addr + n - 1) // PAGE + 1)):
            raise errors.fail(NO_RIGHT, f"{n} bytes at {addr}")

    def read(self, addr: int, n: int) -> bytes:
        self._check(addr, n, R)
        return bytes(self.mem[addr:addr + n])

    def write(self, addr: int, data: bytes) -> None:
        self._check(addr, len(data), W)
        self.mem[addr:addr + len(data)] = data


def _allowed(addr: int, n: int, right: int) -> bool:
    """The reference's own rights check (pages of [addr, addr+n) all carry ``right``)."""
    return 0 <= addr and addr + n <= MEM and all(PAGE_RIGHTS[(addr + k) // PAGE] & right for k in range(n))


class Refused(Exception):
    """The reference refuses a call; the message is the Gunyah error name."""


class RefLine:
    def __init__(self) -> None:
        self.bound = self.level = self.edge = self.active = False
        self.virq: int | None = None

    def assert_(self) -> None:
        if self.bound:
            self.level = self.edge = True

    def bits(self) -> tuple:
        return (self.bound, self.virq if self.bound else None, self.level, self.edge, self.active)


class ReferenceQueue:
    """A plain msgqueue object: lifecycle, deque, thresholds, two level-triggered lines.

    ``held``: the VM's VIRQ numbers that have a source (vic->sources), shared by every queue of the machine.
    """

    def __init__(self, held: set) -> None:
        self.held = held
        self.phase, self.depth, self.max_size = "init", 0, 0
        self.q: deque[bytes] = deque()
        self.notfull = self.notempty = 0
        self.lines = {"tx": RefLine(), "rx": RefLine()}

    def _active(self) -> None:
        if self.phase != "active":
            raise Refused("OBJECT_STATE")

    def cond(self, line: str) -> bool:
        return len(self.q) <= self.notfull if line == "tx" else len(self.q) >= self.notempty

    def configure(self, depth: int, max_size: int) -> None:
        if self.phase != "init":
            raise Refused("OBJECT_STATE")
        if not (1 <= depth <= SMALL.msgq_max_depth and 1 <= max_size <= SMALL.msgq_max_msg_size):
            raise Refused("ARGUMENT_INVALID")
        self.depth, self.max_size = depth, max_size

    def activate(self) -> None:
        if self.phase != "init":
            raise Refused("OBJECT_STATE")
        if self.depth == 0 or self.max_size == 0:
            raise Refused("OBJECT_CONFIG")
        self.phase, self.notfull, self.notempty = "active", self.depth - 1, 1

    def destroy(self) -> None:
        if self.phase == "destroyed":
            raise Refused("OBJECT_STATE")
        self.phase = "destroyed"
        self.q.clear()
        for line in LINES:
            self._unbind(line)

    def send(self, data: bytes, flags: int, readable: bool) -> bool:
        self._active()
        if flags & ~MSGQ_PUSH:
            raise Refused("ARGUMENT_INVALID")
        if len(self.q) == self.depth:
            raise Refused("MSGQUEUE_FULL")
        if not 1 <= len(data) <= self.max_size:
            raise Refused("ARGUMENT_SIZE")
        if not readable:
            raise Refused("ADDR_INVALID")
        self.q.append(data)
        if flags & MSGQ_PUSH or len(self.q) == self.notempty:
            self.lines["rx"].assert_()
        return len(self.q) != self.depth

    def receive(self, bufsize: int, writable) -> tuple[bytes, bool]:
        self._active()
        if not self.q:
            raise Refused("MSGQUEUE_EMPTY")
        if len(self.q[0]) > bufsize:
            raise Refused("ADDR_OVERFLOW")
        if not writable(len(self.q[0])):
            raise Refused("ADDR_INVALID")
        data = self.q.popleft()
        if len(self.q) == self.notfull:
            self.lines["tx"].assert_()
        return data, bool(self.q)

    def flush(self) -> None:
        self._active()
        if self.q:
            self.lines["tx"].assert_()
            self.lines["rx"].level = False
        self.q.clear()

    def configure_line(self, line: str, thd: int, holdoff: int) -> None:
        if holdoff != -1:
            raise Refused("UNIMPLEMENTED")
        self._active()
        if thd == KEEP:
            return
        if line == "tx":
            if not 0 <= thd < self.depth:
                raise Refused("ARGUMENT_INVALID")
            self.notfull = thd
        else:
            if thd == DEPTH:
                thd = self.depth
            if not 1 <= thd <= self.depth:
                raise Refused("ARGUMENT_INVALID")
            self.notempty = thd
        ln = self.lines[line]
        if self.cond(line):
            ln.assert_()
        else:
            ln.level = False

    def bind(self, line: str, virq: int) -> None:
        """vic_bind_shared: VIRQ_BOUND, then ARGUMENT_INVALID (not one of the VM's SPIs), then BUSY."""
        self._active()
        if self.lines[line].bound:
            raise Refused("VIRQ_BOUND")
        if virq not in VIRQS:
            raise Refused("ARGUMENT_INVALID")
        if virq in self.held:
            raise Refused("BUSY")
        self.held.add(virq)
        self.lines[line] = RefLine()
        self.lines[line].bound, self.lines[line].virq = True, virq

    def _unbind(self, line: str) -> None:
        if self.lines[line].bound:
            self.held.discard(self.lines[line].virq)
        self.lines[line] = RefLine()

    def unbind(self, line: str) -> None:
        self._active()
        self._unbind(line)

    def deliver(self, line: str) -> bool:
        ln = self.lines[line]
        if not (ln.bound and ln.level) or ln.active:
            return False
        ln.active, ln.edge = True, False
        return True

    def eoi(self, line: str) -> bool:
        ln = self.lines[line]
        if not ln.active:
            return False
        ln.active = False
        if not (ln.edge or self.cond(line)):
            ln.level = False
        return True


_HOLDOFF = st.sampled_from([-1, -1, -1, -1, 0, 1])


class MsgqMachine(RuleBasedStateMachine):
    """Lifecycle, sends, receives, flushes, thresholds, line bind/unbind/deliver/EOI; all compared with the reference."""

    @initialize(depth=st.integers(1, SMALL.msgq_max_depth), max_size=st.integers(1, SMALL.msgq_max_msg_size))
    def create(self, depth, max_size):
        vic = Vic(first=VIRQS[0], count=len(VIRQS))
        vic.claim(TAKEN, "another source")
        self.q = MessageQueue(SMALL, depth, max_size, vic)
        self.ref = ReferenceQueue({TAKEN})
        self.ref.configure(depth, max_size)
        self.ref.activate()
        self.mem = bytearray(MEM)
        self.view = PagedView(self.mem)
        for line in LINES:
            self._bind(line, START[line])

    def _bind(self, line: str, virq: int) -> None:
        vic = self.q.vic
        args = {"virq": virq, "virq_exists": vic.exists(virq), "virq_free": vic.is_free(virq)}
        self._call("bind", args, lambda: self.q.bind(line, virq), lambda: self.ref.bind(line, virq), line=line)

    def _call(self, op: str, args: dict, model_call, ref_call, line: str | None = None, rule_op: str | None = None):
        got: list = []
        name = rule_op or (f"{op}_{line}" if line else op)
        ok, err = checked_call("msgq", name, self.q, lambda: got.append(model_call()), args)
        try:
            expected, ref_ok = ref_call(), True
        except Refused as e:
            expected, ref_ok = str(e), False
        if ok != ref_ok or (ok and got[0] != expected):
            model = f"OK {got[0]!r}" if ok else str(err)
            ref = f"OK {expected!r}" if ref_ok else expected
            raise errors.InvariantViolation(REFERENCE_CLAUSE[op], f"{name}({args}): model {model}, reference {ref}")
        self._compare(op)
        return ok, err

    def _compare(self, op: str) -> None:
        s, r = self.q.state, self.ref
        model = (s.lifecycle, s.count, s.notfull_thd if s.lifecycle == 1 else None,
                 s.notempty_thd if s.lifecycle == 1 else None,
                 tuple((ln.bound, ln.virq if ln.bound else None, ln.level, ln.edge, ln.active) for ln in (s.tx, s.rx)),
                 frozenset(self.q.vic.sources))
        ref = ({"init": 0, "active": 1, "destroyed": 2}[r.phase], len(r.q), r.notfull if r.phase == "active" else None,
               r.notempty if r.phase == "active" else None, tuple(r.lines[x].bits() for x in LINES), frozenset(r.held))
        if model != ref:
            raise errors.InvariantViolation(REFERENCE_CLAUSE[op], f"after {op}: model {model}, reference {ref}")

    @rule(data=st.binary(min_size=0, max_size=SMALL.msgq_max_msg_size + 2), push=st.booleans(),
          reserved=st.sampled_from([0, 0, 0, 2, 1 << 63]), addr=st.sampled_from([0, 0, 0, 4, 12, 20, 28, 36, 44]))
    def send(self, data, push, reserved, addr):
        flags = int(push) | reserved
        n = len(data)
        self.mem[addr:addr + n] = data[:max(0, MEM - addr)]
        readable = _allowed(addr, n, R)
        self._call("send", {"size": n, "flags": flags, "readable": readable},
                   lambda: self.q.send_from(self.view, addr, n, flags=flags),
                   lambda: self.ref.send(bytes(data), flags, readable))

    @rule(short=st.integers(0, 3), addr=st.sampled_from([0, 0, 0, 8, 12, 20, 28, 36, 44]))
    def receive(self, short, addr):
        s = self.q.state
        bufsize = s.max_size - short
        head = len(self.ref.q[0]) if self.ref.q else 0
        writable = _allowed(addr, head, W)
        ok, _ = self._call("receive", {"bufsize": bufsize, "writable": writable},
                           lambda: self.q.receive_into(self.view, addr, bufsize),
                           lambda: self.ref.receive(bufsize, lambda k: _allowed(addr, k, W)))
        if ok:
            data = self.q.payloads[s.head]
            expect(bytes(self.mem[addr:addr + len(data)]) == data, REFERENCE, "the caller's buffer does not hold the message")

    @rule()
    def flush(self):
        self._call("flush", {}, self.q.flush, self.ref.flush)

    @rule(thd=st.integers(-3, SMALL.msgq_max_depth + 1), holdoff=_HOLDOFF)
    def configure_send(self, thd, holdoff):
        self._call("configure_send", {"notfull_thd": thd, "holdoff": holdoff},
                   lambda: self.q.configure_send(thd, holdoff), lambda: self.ref.configure_line("tx", thd, holdoff))

    @rule(thd=st.sampled_from([KEEP, KEEP, DEPTH, -3, 0, 1, 2, 3, 4, 5]), holdoff=_HOLDOFF)
    def configure_receive(self, thd, holdoff):
        self._call("configure_receive", {"notempty_thd": thd, "holdoff": holdoff},
                   lambda: self.q.configure_receive(thd, holdoff), lambda: self.ref.configure_line("rx", thd, holdoff))

    @rule(line=st.sampled_from(LINES), action=st.sampled_from(["bind", "bind", "unbind"]),
          virq=st.sampled_from(VIRQS + (VIRQS[0], VIRQS[2], 31, 36, -1)))
    def binding(self, line, action, virq):
        """Bind (OBJECT_STATE, VIRQ_BOUND, ARGUMENT_INVALID for a VIRQ the VM lacks, BUSY for one with a source:
        the other line's, or TAKEN) or unbind a line."""
        if action == "bind":
            self._bind(line, virq)
        else:
            self._call("unbind", {}, lambda: self.q.unbind(line), lambda: self.ref.unbind(line), line=line)

    @rule(line=st.sampled_from(LINES), action=st.sampled_from(["deliver", "eoi"]))
    def interrupt(self, line, action):
        self._call(action, {}, lambda: getattr(self.q, action)(line), lambda: getattr(self.ref, action)(line),
                   line=line)

    @rule(action=st.sampled_from(["destroy", "create", "configure", "activate", "activate"]),
          depth=st.integers(-1, SMALL.msgq_max_depth + 1), max_size=st.integers(0, SMALL.msgq_max_msg_size + 1))
    def lifecycle(self, action, depth, max_size):
        """Destroy the object, create a fresh one, configure (hostile sizes) or activate it, at any point."""
        if action == "create":
            # a fresh object on the same VM: a queue left bound keeps its numbers
            self.q, self.ref = MessageQueue(SMALL, vic=self.q.vic), ReferenceQueue(self.ref.held)
            self._compare("create")
        elif action == "configure":
            self._call("configure", {"depth": depth, "max_size": max_size},
                       lambda: self.q.configure(depth, max_size), lambda: self.ref.configure(depth, max_size))
        else:
            self._call(action, {}, getattr(self.q, action), getattr(self.ref, action))

    @invariant()
    def invariants_hold(self):
        check_invariants("msgq", self.q.state)
        expect(self.q.state.count == len(self.ref.q), REFERENCE, "queue length differs from the reference deque")


MACHINES = {"msgq": MsgqMachine}
