"""Split-virtqueue machine: the model driver and device on one ring, and an adversary in the ring memory.

The driver and device see the same bytes through two views at different addresses. Honest
steps check a byte-exact round trip (the device reads what the driver put in readable buffers,
the driver gets back what the device wrote, in used order), the per-op rules, each side's
invariants and, while no adversary has written, the ownership partition of the pair. Adversary
steps write arbitrary bytes anywhere in the descriptor table, the rings or the indirect arena,
as either side could: from then on either side may refuse with a ``PeerViolation`` (and mark the
ring broken) but must not crash, hang or break its own invariants. Start indices near 65535
make the 16-bit wrap reachable in a few steps.
"""
from __future__ import annotations

from collections import deque

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from t1virtio import errors
from t1virtio.hyp.memview import FlatView
from t1virtio.machines.common import HONEST, REFERENCE, check_invariants, checked_call, expect, expect_exhausted
from t1virtio.preset import SMALL
from t1virtio.specs.invariants.virtio_split import SplitPair
from t1virtio.virtio import split

SIZE = SMALL.queue_size
MEM = 4096
DRV_BASE, DEV_BASE = 0x1000, 0x40000       # the same bytes at two addresses (two VMs' views)
ARENA_OFF, ARENA_MAX = 0x100, SIZE          # indirect tables: SIZE heads x SIZE entries x 16 bytes
DATA_OFF, SLOT = 0x200, 160                 # request buffers: one slot per buffer in flight
SEG_MAX = 32
DRIVER, DEVICE = "virtio_split.driver", "virtio_split.device"


def _region(addr: int, n: int) -> bool:
    """The shared region in driver addresses: the whole 4 KiB (the ring, the indirect arena, the data area)."""
    return DRV_BASE <= addr and addr + n <= DRV_BASE + MEM


class SplitMachine(RuleBasedStateMachine):
    """Driver + device + adversary over one split ring of SMALL size."""

    @initialize(event_idx=st.booleans(), indirect=st.booleans(),
                start=st.sampled_from([0, 1, 32767, 65532, 65533, 65534, 65535]))
    def create(self, event_idx, indirect, start):
        self.buf = bytearray(MEM)
        self.dview, self.vview = FlatView(self.buf, DRV_BASE), FlatView(self.buf, DEV_BASE)
        lay = split.compute_layout(SIZE, DRV_BASE, align=4)
        self.ring_end = split.ring_bytes(lay)
        self.kicks = self.irqs = 0
        self.drv = split.SplitDriver(self.dview, lay, event_idx=event_idx, indirect=indirect, notify=self._kick,
                                     indirect_arena=(DRV_BASE + ARENA_OFF, ARENA_MAX), start=start)
        self.dev = split.SplitDevice(self.vview, lay.shifted(DEV_BASE - DRV_BASE), event_idx=event_idx,
                                     indirect=indirect, notify=self._irq, in_region=_region,
                                     to_local=lambda a: a - DRV_BASE + DEV_BASE, start=start, driver_layout=lay)
        self._forget()

    def _kick(self):
        self.kicks += 1

    def _irq(self):
        self.irqs += 1

    def _forget(self):
        self.tainted = False
        self.requests: dict[int, tuple] = {}     # head -> (token, slot, payload, writable segments)
        self.published: deque[int] = deque()     # heads in available order, not yet popped
        self.held: dict = {}                     # head -> chain
        self.completed: deque[tuple] = deque()   # (head, len, bytes written) in used order
        self.token = 0

    def _call(self, component, op, obj, fn):
        """Run ``fn`` on a side; on a broken side expect the broken clause and skip the rule check."""
        if obj.broken:
            try:
                fn()
            except errors.PeerViolation as e:
                return False, e
            raise errors.InvariantViolation(obj.broken, f"{op} accepted on a ring marked broken")
        return checked_call(component, op, obj, fn, obj.last_args)

    @rule(lens=st.lists(st.integers(0, SEG_MAX), max_size=SIZE + 1), n_out=st.integers(0, SIZE + 1),
          seed=st.integers(0, 255))
    def add_buf(self, lens, n_out, seed):
        n_out = min(n_out, len(lens))
        busy = {r[1] for r in self.requests.values()}
        slot = next(k for k in range(SIZE + 1) if k not in busy)
        addr, out, inn, payload = DRV_BASE + DATA_OFF + slot * SLOT, [], [], b""
        for k, n in enumerate(lens):
            data = bytes((seed + k + j) & 0xFF for j in range(n))
            self.dview.write(addr, data if k < n_out else bytes(n))
            (out if k < n_out else inn).append((addr, n))
            payload += data if k < n_out else b""
            addr += n
        self.token += 1
        got = []
        ok, err = self._call(DRIVER, "add_buf", self.drv, lambda: got.append(self.drv.add_buf(out, inn, self.token)))
        if ok:
            self.requests[got[0]] = (self.token, slot, payload, inn)
            self.published.append(got[0])

    @rule()
    def kick(self):
        self._call(DRIVER, "kick_prepare", self.drv, self.drv.kick)

    @rule()
    def pop_avail(self):
        got = []
        ok, err = self._call(DEVICE, "pop_avail", self.dev, lambda: got.append(self.dev.pop_avail()))
        if self.tainted:
            if ok:
                self.held[got[0].head] = got[0]
            return
        if not self.published:
            expect_exhausted(err, "pop on an empty ring")
            return
        expect(ok, HONEST, f"an honest driver's buffer was refused: {err}")
        c = got[0]
        head = self.published.popleft()
        expect(c.head == head, REFERENCE, f"device popped head {c.head}, driver published {head} next")
        expect(self.dev.read(c) == self.requests[head][2], REFERENCE, "device read other bytes than the driver wrote")
        expect(list(c.writable) == list(self.requests[head][3]), REFERENCE, "writable segments differ")
        self.held[head] = c

    @rule(pick=st.integers(0, SIZE - 1), fill=st.integers(0, 255), short=st.integers(0, 3), excess=st.booleans())
    def add_used(self, pick, fill, short, excess):
        heads = sorted(self.held)
        head = heads[pick % len(heads)] if heads else pick
        c = self.held.get(head)
        data = bytes((fill + j) & 0xFF for j in range(max(0, (c.wlen if c else 0) - short)))
        n = self.dev.write(c, data) if c else 0
        length = c.wlen + 1 if excess and c else n
        ok, err = self._call(DEVICE, "add_used", self.dev, lambda: self.dev.add_used(head, length))
        if ok:
            del self.held[head]
            self.completed.append((head, length, data[:n]))
        elif not self.tainted:
            expect(excess or c is None, HONEST, f"completion of a held head refused: {err}")

    @rule()
    def need_notify(self):
        out = []
        ok, _ = self._call(DEVICE, "need_notify", self.dev, lambda: out.append(self.dev.need_notify()))
        if ok and out[0]:
            self.dev.notify()

    @rule()
    def get_used(self):
        got = []
        ok, err = self._call(DRIVER, "get_used", self.drv, lambda: got.append(self.drv.get_used()))
        if self.tainted:
            return
        if not self.completed:
            expect_exhausted(err, "get_used with nothing used")
            return
        expect(ok, HONEST, f"an honest device's used entry was refused: {err}")
        head, length, data = self.completed.popleft()
        token, _, _, inn = self.requests.pop(head)
        expect(got[0] == (token, length), REFERENCE, f"driver got {got[0]}, device used {(token, length)}")
        back = b"".join(self.dview.read(a, n) for a, n in inn)[:length]
        expect(back == data[:length], REFERENCE, "driver got other bytes than the device wrote")

    @rule()
    def disable_cb(self):
        self._call(DRIVER, "disable_cb", self.drv, self.drv.disable_cb)

    @rule()
    def enable_cb(self):
        self._call(DRIVER, "enable_cb", self.drv, self.drv.enable_cb)

    @rule()
    def disable_notify(self):
        self._call(DEVICE, "disable_notify", self.dev, self.dev.disable_notify)

    @rule()
    def enable_notify(self):
        self._call(DEVICE, "enable_notify", self.dev, self.dev.enable_notify)

    @rule(where=st.integers(0, DATA_OFF - 1), data=st.binary(min_size=1, max_size=8),
          as_device=st.booleans())
    def adversary(self, where, data, as_device):
        """Either side writes arbitrary bytes into the ring or the indirect arena."""
        where = min(where, DATA_OFF - len(data))
        (self.vview.write(DEV_BASE + where, data) if as_device else self.dview.write(DRV_BASE + where, data))
        self.tainted = True

    @precondition(lambda self: self.tainted or self.drv.broken or self.dev.broken or self.requests)
    @rule()
    def reset(self):
        """Device reset; the driver takes back every buffer and restarts the ring at index 0."""
        self.dev.reset()
        self.drv.reset_broken()
        for _ in range(SIZE):
            if not self.drv.tokens:
                break
            self._call(DRIVER, "detach_unused", self.drv, self.drv.detach_unused)
        self._call(DRIVER, "reinit", self.drv, self.drv.reinit)
        self._forget()

    @invariant()
    def sides_hold_their_invariants(self):
        if not hasattr(self, "drv"):
            return
        check_invariants(DRIVER, self.drv.state)
        check_invariants(DEVICE, self.dev.state)
        if not self.tainted:
            for side in (self.drv, self.dev):
                if side.broken:
                    raise errors.InvariantViolation(side.broken, "an honest pair marked its ring broken")
            check_invariants("virtio_split", SplitPair(self.drv.state, self.dev.state))


MACHINES = {"split": SplitMachine}
