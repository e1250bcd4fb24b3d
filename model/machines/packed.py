"""Packed virtqueue machine: the model driver and device on one ring, plus a hostile writer.

Honest steps (add, kick, pop, complete in any order, get_used, event suppression) are checked
against the op rules and both sides' invariants after every step; while nobody hostile has
written the ring, the honest pair's proven ring invariants (``virtio_packed``: flags vs wrap
counters, order, ids) are evaluated on the real bytes, and payloads must round-trip byte-exact.
Hostile steps write arbitrary bytes into the descriptor ring, forge a used descriptor at the
driver's position or a list at the device's position; afterwards the honest sides may refuse
(typed errors naming a clause), never crash, hang or break their own invariants.

Queue sizes follow the active preset (``t1virtio fuzz --preset``): 1..8 at SMALL; at LINUX a small
ring, the preset's queue size and one below it, and the largest (32768), where ``fast_forward``
(honest round trips of long lists) brings both sides near the ring end so later steps cross the
wrap. The ring invariants (``virtio_packed``) are checked up to RING_CHECK_MAX entries (their
pairwise id check costs the square of the size); both sides' invariants and the op rules at every
size, at a cost of the table size per step (about 0.2 s at 32768: a campaign command, not a test).
"""
from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from t1virtio import errors
from t1virtio.hyp.memview import FlatView, write_le
from t1virtio.machines.common import REFERENCE, active_preset, check_invariants, expect
from t1virtio.specs import rules
from t1virtio.virtio import packed as pk
from t1virtio.virtio.desc import (DESC_SIZE, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT,
                                  VIRTQ_DESC_F_USED, VIRTQ_DESC_F_WRITE)

MEM = 0x8000              # memory, indirect arena and data areas of the small sizes (num <= 8)
ARENA = 0x1000            # indirect tables: arena + id * INDIRECT_MAX * 16
INDIRECT_MAX = 4
DATA = 0x2000             # buffer areas of AREA bytes each
AREA = 0x200
AREAS = 16
SEG = 48                  # bytes per element at most
RING_BYTES = 0x100        # a hostile write lands within this many bytes of its anchor
SMALL_SIZES = (1, 2, 3, 4, 5, 7, 8)
RING_CHECK_MAX = 256      # ring invariants checked up to this queue size (pairwise: size^2 per step)
FF_LIST = 64              # elements per fast-forward list
ORDER = "VIRTIO/model/packed/ring#order"
IDS = "VIRTIO/model/packed/ring#ids"


def queue_sizes() -> tuple[int, ...]:
    """The queue sizes of the active preset: 1..8 at SMALL; at LINUX a small one, the preset's queue
    size and one below it (not a power of two), and the largest."""
    P = active_preset()
    if P.queue_size <= max(SMALL_SIZES):
        return SMALL_SIZES
    return (7, P.queue_size - 1, P.queue_size, P.max_queue_size)


def memory_map(num: int) -> tuple[int, int, int]:
    """(arena, data, size) for queue size ``num``: the ring at 0, the indirect arena (an entry per id)
    after it, then AREAS data areas; the small sizes keep the fixed map ARENA, DATA, MEM."""
    arena = max(ARENA, (16 * num + 8 + 0xFFF) & ~0xFFF)
    data = max(DATA, (arena + num * INDIRECT_MAX * 16 + 0xFFF) & ~0xFFF)
    return arena, data, max(MEM, data + AREAS * AREA)


class PackedMachine(RuleBasedStateMachine):
    """One driver, one device, one flat memory; the reference is plain Python bookkeeping."""

    PRESETS = ("SMALL", "LINUX")

    @initialize(pick=st.integers(0, len(SMALL_SIZES) - 1), event_idx=st.booleans(), indirect=st.booleans())
    def create(self, pick, event_idx, indirect):
        sizes = queue_sizes()
        num = sizes[pick % len(sizes)]
        self.arena, self.data, self.size = memory_map(num)
        self.mem = FlatView(self.size)
        self.lay = pk.PackedLayout.contiguous(num, 0)
        self.kicks = 0
        self.drv = pk.PackedDriver(self.mem, self.lay, num, event_idx=event_idx, indirect=indirect,
                                   indirect_gpa=self.arena, indirect_max=INDIRECT_MAX, notify=self._kick)
        self.dev = pk.PackedDevice(self.mem, self.lay, num, (self.arena, self.size), event_idx=event_idx,
                                   indirect=indirect)
        self.num = num
        self.tainted = False            # a hostile write touched the descriptor ring
        self.token = 0
        self.free_areas = list(range(AREAS))
        self.sent: dict[int, tuple] = {}          # token -> (area, out bytes, writable elements)
        self.held: dict[int, pk.Chain] = {}       # device: id -> popped chain
        self.used: list[tuple[int, int, int]] = []  # device completions not yet taken: (id, token, len)
        self.written: dict[int, bytes] = {}       # token -> bytes the device wrote

    def _kick(self):
        self.kicks += 1

    def _call(self, component, op, side, fn, expected=(errors.Exhausted,)):
        """Run ``fn`` on ``side``; check ``op``'s rules on the core step it took; return (result, error).

        An error other than ``expected`` (plus a refusal of hostile bytes once the ring is tainted) is a
        defect: the honest sides only ever refuse, with a typed error naming a clause."""
        old = side.state
        side.last_args, side.last_out = None, None
        try:
            res, err = fn(), None
        except errors.InvariantViolation:
            raise
        except errors.ModelError as e:
            res, err = None, e
        if side.last_args is not None:
            rules.check(component, op, old, side.last_args, err is None, side.state, side.last_out)
        allowed = expected + ((errors.PeerViolation,) if self.tainted else ())
        if err is not None and not isinstance(err, allowed):
            raise errors.InvariantViolation(ORDER, f"{op} failed with {type(err).__name__} {err}")
        return res, err

    # ---- driver ------------------------------------------------------------------------------

    @rule(nout=st.integers(0, 3), nin=st.integers(0, 3), sizes=st.lists(st.integers(1, SEG), min_size=6, max_size=6),
          seed=st.integers(0, 255))
    def add(self, nout, nin, sizes, seed):
        if not self.free_areas:
            return
        area = self.free_areas[-1]
        base = self.data + area * AREA
        out = [(base + 64 * k, sizes[k]) for k in range(nout)]
        inn = [(base + 256 + 64 * k, sizes[3 + k]) for k in range(nin)]
        payload = bytes((seed + i) & 0xFF for i in range(sum(n for _, n in out)))
        k = 0
        for a, n in out:
            self.mem.write(a, payload[k:k + n])
            k += n
        self.token += 1
        s = self.drv.state
        use_ind = self.drv.indirect and 1 < nout + nin <= min(INDIRECT_MAX, self.num) and s.num_free > 0
        need = 1 if use_ind else nout + nin
        _, err = self._call("virtio_packed_driver", "add", self.drv, lambda: self.drv.add(out, inn, self.token),
                            expected=(errors.Exhausted, errors.CallerError))
        legal = nout + nin > 0 and need <= s.num_free
        if not legal:
            expect(err is not None, REFERENCE, "add accepted a buffer that is empty or does not fit")
            return
        if err is None:
            self.free_areas.pop()
            self.sent[self.token] = (area, payload, inn)

    @rule()
    def kick(self):
        self._call("virtio_packed_driver", "kick_prepare", self.drv, self.drv.kick_prepare)

    @rule()
    def get_used(self):
        got, err = self._call("virtio_packed_driver", "get_used", self.drv, self.drv.get_used)
        if self.tainted or err is not None:
            if got is not None:
                self._taken(*got)
            return
        if not self.used:
            expect(got is None, REFERENCE, f"driver took {got} though the device used nothing")
            return
        id, token, length = self.used.pop(0)
        if got != (token, length):
            raise errors.InvariantViolation(IDS, f"driver took {got}, the device used token {token} len {length}")
        self._taken(token, length)

    def _taken(self, token, length):
        """The driver took ``token`` back: check the bytes it reads are what the device wrote."""
        area, _, inn = self.sent.pop(token, (None, None, []))
        if area is None:
            return
        if not self.tainted:
            got = b"".join(self.mem.read(a, n) for a, n in inn)[:length]
            want = self.written.get(token, b"")[:length]
            if got != want:
                raise errors.InvariantViolation(IDS, f"token {token}: driver reads {got!r}, device wrote {want!r}")
        self.free_areas.append(area)
        self.written.pop(token, None)

    @rule(on=st.booleans())
    def callbacks(self, on):
        if on:
            self._call("virtio_packed_driver", "enable_cb", self.drv, self.drv.enable_cb)
        else:
            self._call("virtio_packed_driver", "disable_cb", self.drv, self.drv.disable_cb)

    # ---- device ------------------------------------------------------------------------------

    @rule()
    def pop(self):
        chain, err = self._call("virtio_packed_device", "pop", self.dev, self.dev.pop)
        if chain is None:
            return
        self.held[chain.id] = chain
        if self.tainted:
            return
        token = self.drv.tokens[chain.id]
        area, payload, inn = self.sent[token]
        if self.dev.read(chain) != payload or chain.writable != inn:
            raise errors.InvariantViolation(IDS, f"device list {chain} is not token {token}'s buffer")

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 7), fill=st.integers(0, 255), short=st.integers(0, 2 * SEG))
    def push_used(self, pick, fill, short):
        id = sorted(self.held)[pick % len(self.held)]
        chain = self.held.pop(id)
        cap = sum(n for _, n in chain.writable)
        data = bytes((fill + i) & 0xFF for i in range(max(0, cap - short)))
        wrote = self.dev.write(chain, data)
        _, err = self._call("virtio_packed_device", "push_used", self.dev, lambda: self.dev.push_used(id, wrote))
        if err is None and not self.tainted:
            token = self.drv.tokens[id]
            self.used.append((id, token, wrote))
            self.written[token] = data[:wrote]

    @rule()
    def need_notify(self):
        self._call("virtio_packed_device", "need_notify", self.dev, self.dev.need_notify)

    @rule(mode=st.sampled_from([pk.RING_EVENT_FLAGS_ENABLE, pk.RING_EVENT_FLAGS_DISABLE, pk.RING_EVENT_FLAGS_DESC]))
    def set_event(self, mode):
        _, err = self._call("virtio_packed_device", "set_event", self.dev, lambda: self.dev.set_event(mode),
                            expected=(errors.CallerError,))
        expect((err is None) == (mode != pk.RING_EVENT_FLAGS_DESC or self.dev.state.event), REFERENCE,
               f"event mode {mode} accepted={err is None} with EVENT_IDX={self.dev.state.event}")

    @rule(rounds=st.integers(1, 12), nseg=st.integers(1, 3))
    def round_trips(self, rounds, nseg):
        """Whole round trips to wrap the ring several times."""
        for r in range(rounds):
            self.add(nseg, 1, [8 + r, 9, 10, 11, 12, 13], r)
            self.kick()
            self.pop()
            if self.held:
                self.push_used(0, r, 3)
            self.need_notify()
            self.get_used()

    @precondition(lambda self: self.num > FF_LIST and not self.tainted)
    @rule(margin=st.integers(1, 16))
    def fast_forward(self, margin):
        """Honest round trips of FF_LIST-element lists (direct: longer than INDIRECT_MAX) until the next
        list starts ``margin`` slots before the ring end (only while nothing is outstanding); the steps
        after it cross the wrap. Its own results are checked, not its rules (that would cost the queue
        size per step, for hundreds of steps); the invariants are checked after it as after any step."""
        if self.drv.state.num_free < self.num or self.held or self.used:
            return
        while True:
            s = self.drv.state
            left = self.num - s.next_avail - margin      # margin >= 1: never reaches the end (no next lap)
            if left <= 0:
                return
            n = min(FF_LIST, left)
            if self.drv.indirect and 1 < n <= min(INDIRECT_MAX, self.num):
                n = 1                       # a short list would go indirect (one descriptor)
            id = self.drv.add([(self.data + k, 1) for k in range(n)], [], "fast-forward")
            chain = self.dev.pop()
            expect(chain is not None and chain.id == id and chain.ndesc == n, REFERENCE, f"fast-forward popped {chain}")
            self.dev.push_used(id, 0)
            self.dev.need_notify()
            expect(self.drv.get_used() == ("fast-forward", 0), REFERENCE, "fast-forward buffer not returned")

    # ---- hostile writes --------------------------------------------------------------------------

    def _anchor(self, near):
        """A ring offset to write near: the ring start, the device's next list, the driver's next used."""
        slot = (0, self.dev.state.next_avail, self.drv.state.last_used)[near]
        return self.lay.desc + DESC_SIZE * slot

    @rule(off=st.integers(0, RING_BYTES - 1), data=st.binary(min_size=1, max_size=8), near=st.integers(0, 2))
    def hostile_bytes(self, off, data, near):
        end = self.lay.device + pk.EVENT_SIZE
        off = (self._anchor(near) + off) % end
        self.mem.write(off, data[:end - off])
        if off < self.lay.driver:
            self.tainted = True

    @rule(id=st.integers(0, 9), length=st.integers(0, (1 << 32) - 1),
          flags=st.sampled_from([0, VIRTQ_DESC_F_USED, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED]),
          write=st.booleans())
    def hostile_used(self, id, length, flags, write):
        """A hostile device forges a used descriptor where the driver looks next."""
        slot = self.lay.desc + DESC_SIZE * self.drv.state.last_used
        write_le(self.mem, slot + 8, 4, length)
        write_le(self.mem, slot + 12, 2, id)
        write_le(self.mem, slot + 14, 2, flags | (VIRTQ_DESC_F_WRITE if write else 0))
        self.tainted = True

    @rule(addr=st.sampled_from(["zero", "arena", "data", "end-8", "end", "huge"]),
          length=st.sampled_from([0, 16, 20, 64, 1 << 31]),
          extra=st.sampled_from([0, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_INDIRECT,
                                 VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE]),
          id=st.integers(0, 9), span=st.integers(1, 9))
    def hostile_avail(self, addr, length, extra, id, span):
        """A hostile driver publishes ``span`` forged descriptors where the device looks next."""
        addr = {"zero": 0, "arena": self.arena, "data": self.data, "end-8": self.size - 8, "end": self.size,
                "huge": 1 << 63}[addr]
        s = self.dev.state
        for k in range(min(span, self.num)):
            slot, wrap = pk.advance(pk.CONCRETE, s.num, s.next_avail, s.avail_wrap, k)
            base = self.lay.desc + DESC_SIZE * slot
            pk.write_desc_body(self.mem, base, addr % (1 << 64), length, id)
            write_le(self.mem, base + 14, 2, pk.encode_flags(wrap, not wrap, extra))
        self.tainted = True

    # ---- invariants ------------------------------------------------------------------------------

    @invariant()
    def invariants_hold(self):
        check_invariants("virtio_packed_driver", self.drv.state)
        check_invariants("virtio_packed_device", self.dev.state)
        if not self.tainted and self.num <= RING_CHECK_MAX:
            check_invariants("virtio_packed", self._ring())

    def _ring(self) -> pk.PackedRing:
        """The honest pair's ghost state, read from the real ring bytes."""
        descs = [pk.read_desc(self.mem, self.lay.desc + DESC_SIZE * k) for k in range(self.num)]
        done = {id for id, _, _ in self.used}
        return pk.PackedRing(drv=self.drv.state, dev=self.dev.state,
                             avail_bits=tuple(bool(d.flags & VIRTQ_DESC_F_AVAIL) for d in descs),
                             used_bits=tuple(bool(d.flags & VIRTQ_DESC_F_USED) for d in descs),
                             slot_ids=tuple(d.id for d in descs), done=tuple(k in done for k in range(self.num)))


MACHINES = {"packed": PackedMachine}
