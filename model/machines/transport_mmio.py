"""Register transport machines: virtio-mmio over a message-queue pair, the emulated page, ivshmem2-virtio.

Each drives a frontend and a backend of one device through the transport's own carriers: an honest driver
walking the init sequence and queue setup, a hostile driver writing any register with any value (and, per
transport, malformed messages, bad page accesses or a dying peer), and a possibly malicious device
(interrupts, queue use, needs-reset, configuration updates). After every step the register file's
invariants hold and a small reference (InterruptStatus, QueueReady, queue parameters) written independently
of the model agrees; every register step's rules are checked on the concrete states.
"""
from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from t1virtio import errors
from t1virtio.machines.common import REFERENCE, check_invariants, checked_call, expect
from t1virtio.transport import emulated, ivshmem, mmio_msgq, regs
from t1virtio.virtio import features as F
from t1virtio.virtio import status as S

NUM_MAX = (4, 0, 8)          # queue 1 is unavailable
INIT = (S.ACKNOWLEDGE, S.DRIVER, S.FEATURES_OK, S.DRIVER_OK)
offsets = st.sampled_from(sorted(regs.WRITABLE - {regs.QUEUE_NOTIFY}))
values = st.one_of(st.integers(0, 3), st.integers(0, regs.WORD), st.sampled_from([8, 15, 0x40, 0x80]))


def _device():
    return S.VirtioDevice(F.NET, F.bit(F.VIRTIO_F_VERSION_1) | F.bit(F.VIRTIO_F_ACCESS_PLATFORM)).state


class _RegisterMachine(RuleBasedStateMachine):
    """What the three register transports share; subclasses say how a register write travels."""

    C = ""

    def setup(self):
        self.isr = 0                        # reference: InterruptStatus
        self.ready = [False] * len(NUM_MAX)
        self.params = [[0] * regs.NPARAM for _ in NUM_MAX]

    @property
    def rf(self) -> regs.RegisterFile:
        raise NotImplementedError

    def transport_write(self, offset, value):
        raise NotImplementedError

    def _write(self, offset, value):
        op, _, args = regs.write_op(offset, value)
        s = self.rf.state
        ok, err = checked_call(self.C, op, self.rf, lambda: self.transport_write(offset, value), args)
        if not ok:
            expect(self.rf.state == s, REFERENCE, f"refused {op} changed the register file: {err}")
            return ok
        q = s.queue_sel
        if offset == regs.INTERRUPT_ACK:
            self.isr &= ~value
        elif offset in regs.PARAM_OFFSETS:
            expect(not self.ready[q], "TRANSPORT-queue-frozen-while-ready", f"{op} accepted on ready queue {q}")
            self.params[q][regs.PARAM_OFFSETS.index(offset)] = value
        elif offset == regs.QUEUE_READY:
            self.ready[q] = value != 0
        elif offset == regs.STATUS and value == 0:
            self.ready = [False] * len(NUM_MAX)
            if not self.rf.state.reset_pending:
                self.isr = 0
        return ok

    @rule(offset=offsets, value=values)
    def hostile_write(self, offset, value):
        self._write(offset, value)

    @rule(data=st.data())
    def honest_driver_step(self, data):
        st_ = self.rf.state.dev.status
        if st_ & (S.FAILED | S.DEVICE_NEEDS_RESET):
            self._write(regs.STATUS, 0)
            return
        nxt = next((b for b in INIT if not st_ & b), None)
        if nxt == S.FEATURES_OK:
            self._write(regs.DRIVER_FEATURES_SEL, 1)
            self._write(regs.DRIVER_FEATURES, 1)          # VERSION_1
        if nxt == S.DRIVER_OK:
            q = data.draw(st.sampled_from([0, 2]), label="queue")
            if not self.rf.state.ready[q]:
                self._write(regs.QUEUE_SEL, q)
                for off, v in zip(regs.PARAM_OFFSETS, (NUM_MAX[q], 0x1000, 0, 0x2000, 0, 0x3000, 0)):
                    self._write(off, v)
                self._write(regs.QUEUE_READY, 1)
        if nxt is not None:
            self._write(regs.STATUS, st_ | nxt)

    @rule(high=st.booleans())
    def driver_acks_one_reason(self, high):
        """The driver handles one pending reason and writes only that bit to InterruptACK."""
        if self.isr:
            bit = self.isr & -self.isr if not high else 1 << (self.isr.bit_length() - 1)
            self._write(regs.INTERRUPT_ACK, bit)

    @rule(reasons=st.integers(0, 7))
    def device_interrupt(self, reasons):
        ok, err = checked_call(self.C, "device_interrupt", self.rf, lambda: self.device_raise(reasons),
                               {"reasons": reasons})
        if ok:
            self.isr |= reasons

    def device_raise(self, reasons):
        self.device_run(regs.device_interrupt, reasons=reasons)

    def device_run(self, fn, **args):
        """A device action on the register file (a transport that mirrors the file refreshes it)."""
        self.rf.run(fn, **args)

    @rule(queue=st.integers(-1, len(NUM_MAX)))
    def device_use_queue(self, queue):
        ok, _ = checked_call(self.C, "device_use_queue", self.rf,
                             lambda: self.device_run(regs.device_use_queue, queue=queue), {"queue": queue})
        expect(not ok or self.ready[queue], REFERENCE, f"device used queue {queue}, not ready")

    @rule()
    def device_needs_reset(self):
        live = self.rf.state.dev.status & S.DRIVER_OK
        ok, _ = checked_call(self.C, "device_needs_reset", self.rf, lambda: self.device_run(regs.device_needs_reset), {})
        if ok and live:
            self.isr |= regs.INT_CONFIG

    @invariant()
    def invariants_hold(self):
        if not hasattr(self, "isr"):
            return
        check_invariants(self.C, self.rf.state)
        s = self.rf.state
        expect(s.interrupt_status == self.isr, REFERENCE, f"InterruptStatus {s.interrupt_status:#x}, reference {self.isr:#x}")
        expect(list(s.ready) == self.ready, REFERENCE, f"QueueReady {s.ready}, reference {self.ready}")
        expect(all(tuple(s.params[q * regs.NPARAM:(q + 1) * regs.NPARAM]) == tuple(p)
                   for q, p in enumerate(self.params)), REFERENCE, "queue parameters differ from the reference")


class MmioMsgqMachine(_RegisterMachine):
    """virtio-mmio over a message-queue pair; hostile: malformed requests, forged replies."""

    C = "transport_mmio_msgq"

    @initialize()
    def create(self):
        self.setup()
        self.front, self.back = mmio_msgq.connect(_device(), NUM_MAX)

    @property
    def rf(self):
        return self.back.regs

    def transport_write(self, offset, value):
        n = len(self.back.refusals)
        result = self.front.write(offset, value)
        expect((result == mmio_msgq.OK) == (len(self.back.refusals) == n), REFERENCE, f"result {result}")
        if len(self.back.refusals) > n:
            raise self.back.refusals[-1]

    @rule(data=st.binary(min_size=1, max_size=16))
    def hostile_request_bytes(self, data):
        """Any bytes as a request: the backend answers (MALFORMED or the access's result) and keeps serving."""
        s = self.rf.state
        self.front.requests.send(data)
        self.back.poll()
        reply, _ = self.front.replies.receive()
        m = mmio_msgq.decode(reply, reply=True)
        if m.result != mmio_msgq.OK or m.kind == mmio_msgq.READ | mmio_msgq.REPLY:
            expect(self.rf.state == s, REFERENCE, "a refused or read request changed the register file")
        elif self.rf.state != s:
            self.setup_from_state()

    def setup_from_state(self):
        s = self.rf.state
        self.isr, self.ready = s.interrupt_status, list(s.ready)
        self.params = [list(s.params[q * regs.NPARAM:(q + 1) * regs.NPARAM]) for q in range(len(NUM_MAX))]

    @rule(seq_delta=st.integers(1, 3))
    def hostile_reply(self, seq_delta):
        """A device that answers with a wrong sequence number, or unasked: the frontend refuses it."""
        ch = self.front.state
        self.front.send(mmio_msgq.READ, regs.STATUS)
        self.front.replies.send(mmio_msgq.Message(mmio_msgq.READ | mmio_msgq.REPLY, (ch.sent + seq_delta) & 0xFFFF,
                                                  regs.STATUS, 4, 0).encode())
        ok, err = checked_call(self.C, "chan_reply", self.front, self.front.take_reply,
                               {"seq": (ch.sent + seq_delta) & 0xFFFF}, unchanged_on_refusal=True)
        expect(not ok and err.clause == "TRANSPORT-CHAN-reply-order", REFERENCE, f"forged reply: {err}")
        self.back.poll()                                     # the real reply ends the transaction
        self.front.take_reply()

    @rule(queue=st.integers(0, 7))
    def notify(self, queue):
        self.front.notify(queue)
        got = self.back.take_notifications()
        live = self.rf.state.dev.status & S.DRIVER_OK and queue < len(NUM_MAX)
        expect(got == ([queue] if live else []), REFERENCE, f"notify {queue}: {got}")

    @invariant()
    def channel_idle(self):
        if hasattr(self, "front"):
            check_invariants(self.C, regs.evolve(self.rf.state, **{
                f: getattr(self.front.state, f) for f in ("in_flight", "req_seq", "sent", "answered")}))


class EmulatedPageMachine(_RegisterMachine):
    """The Gunyah emulated page: trapped writes, bad accesses, two-phase reset acknowledged by the backend."""

    C = "transport_mmio_emul"

    @initialize()
    def create(self):
        self.setup()
        self.front, self.page = emulated.connect(_device(), NUM_MAX)

    @property
    def rf(self):
        return self.page.regs

    def transport_write(self, offset, value):
        self.front.write(offset, value)

    def device_raise(self, reasons):
        self.page.assert_virq(reasons)

    def device_run(self, fn, **args):
        self.rf.run(fn, **args)
        self.page.sync()

    @rule(offset=st.integers(0, 0x1003), width=st.sampled_from([1, 2, 4]), value=st.integers(0, 0x1FF))
    def hostile_access(self, offset, width, value):
        """Any write the frontend can attempt: misaligned, 8-bit outside config, read-only registers fault."""
        s = self.page.state
        good = (width in (1, 4) and offset % width == 0 and offset < emulated.PAGE and value < 1 << (8 * width)
                and (offset >= regs.CONFIG or (width == 4 and offset in regs.WRITABLE)))
        try:
            if offset >= regs.CONFIG or not good:
                self.page.trap_write(offset, value, width)
            else:
                self._write(offset, value)
                return
        except errors.AccessFault as e:
            expect(not good and e.clause == "TRANSPORT-EMUL-access", REFERENCE, f"fault {e}")
            expect(self.page.state == s, REFERENCE, "a faulting write changed the register file")
        except errors.PeerViolation:
            expect(self.page.state == s, REFERENCE, "a refused config write changed the register file")
        else:
            expect(good, REFERENCE, f"{width}-byte write at {offset:#x} accepted")

    @rule()
    def backend_ack_reset(self):
        pending = self.page.state.reset_pending
        ok, _ = checked_call(self.C, "backend_ack_reset", self.page.regs, self.page.acknowledge_reset, {})
        expect(ok == pending, REFERENCE, "acknowledge_reset accepted without a pending reset" if ok else "refused")
        if ok:
            self.isr, self.ready = 0, [False] * len(NUM_MAX)

    @rule()
    def backend_notification(self):
        self.page.get_notification()
        expect(self.page.get_notification() == (0, 0), REFERENCE, "get_notification did not clear")

    @invariant()
    def page_mirrors(self):
        if hasattr(self, "page"):
            expect(self.page.mirror_ok(), "TRANSPORT-EMUL-page-mirror", "the page differs from the register file")


class IvshmemMachine(_RegisterMachine):
    """ivshmem2-virtio: header writes under write_transaction, event bytes, odd generations, a dying peer."""

    C = "transport_ivshmem"
    FIELDS = {regs.STATUS: "device_status", regs.DEVICE_FEATURES_SEL: "device_features_sel",
              regs.DRIVER_FEATURES: "driver_features", regs.DRIVER_FEATURES_SEL: "driver_features_sel",
              regs.QUEUE_SEL: "queue_sel", regs.QUEUE_NUM: "queue_size", regs.QUEUE_READY: "queue_enable"}

    @initialize()
    def create(self):
        self.setup()
        self.front, self.back = ivshmem.connect(_device(), NUM_MAX, config=bytes(8))

    @property
    def rf(self):
        return self.back.regs

    def transport_write(self, offset, value):
        n = len(self.back.refusals)
        if offset in self.FIELDS:
            self.front.write(self.FIELDS[offset], value)
        elif offset == regs.INTERRUPT_ACK:        # the frontend clears the event bytes; the backend applies it
            if value & regs.INT_USED:
                self.front.region.put("queue_event", 0)
            if value & regs.INT_CONFIG:
                self.front.region.put("config_event", 0)
            self.back.poll()
        else:   # a 32-bit half of a 64-bit address field: the backend applies it as that register
            self.rf.write(offset, value)
        if len(self.back.refusals) > n:
            raise self.back.refusals[-1]

    def device_raise(self, reasons):
        self.back.raise_interrupt(reasons)

    def device_run(self, fn, **args):
        self.rf.run(fn, **args)
        self.back.publish()

    @rule()
    def take_events(self):
        ev = self.front.take_events()
        expect(ev == self.isr, REFERENCE, f"events {ev:#x}, InterruptStatus {self.isr:#x}")
        self.back.poll()
        self.isr = 0

    @rule(data=st.binary(min_size=1, max_size=4), offset=st.integers(0, 4))
    def config_update_and_read(self, data, offset):
        self.back.update_config(offset, data)
        got = self.front.read_config(0, 8)
        expect(got == bytes(self.back.regs.config[:8]), REFERENCE, "config read differs")

    @rule()
    def peer_dies(self):
        self.front.region.state_table[ivshmem.BACKEND] = 0
        try:
            self.front.write("queue_sel", 0)
        except errors.PeerViolation as e:
            expect(e.clause == "TRANSPORT-IVSHMEM-peer-ready", REFERENCE, str(e))
        else:
            expect(False, REFERENCE, "a write went through to a dead peer")
        self.front.region.state_table[ivshmem.BACKEND] = ivshmem.READY


MACHINES = {"transport_mmio_msgq": MmioMsgqMachine, "transport_mmio_emul": EmulatedPageMachine,
            "transport_ivshmem": IvshmemMachine}
