"""The composed system machine: random IO from several secondaries, optionally a hostile primary or a hostile
secondary, and after every step data integrity, isolation, bounce, labels and noninterference (docs/system.md).

Two systems run in lockstep, identical except for the bytes of each secondary's secret page (never exported):
everything the primary observes must agree between them (``SYSTEM-NI-observation``). The reference is a shadow
disk per secondary and the expected console lines and packets per receiver. With a hostile primary only the
security checks apply (the primary is the disk: it may lie); a hostile secondary loses its own IO, never the
others'. ``t1virtio fuzz --machine system --examples 1000``.
"""
from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from t1virtio import errors
from t1virtio.hyp import memory as hmem
from t1virtio.machines.common import expect
from t1virtio.swiotlb.labels import COHERENT, Label
from t1virtio.system import Config, System, frontend as fe, mac_of
from t1virtio.system.adapters import TRANSPORTS, REFUSED

SECTORS = 24
BLK_DATA, BLK_STATUS, STREAM, PROGRESS, NI = ("SYSTEM-BLK-data", "SYSTEM-BLK-status", "SYSTEM-STREAM-data",
                                              "SYSTEM-PROGRESS", "SYSTEM-NI-observation")
N_SEC = 3
WORKING = tuple(t for t in TRANSPORTS if t not in REFUSED)     # drawn per example


class SystemMachine(RuleBasedStateMachine):
    """Three secondaries with blk, console and net; a twin system with other secrets."""

    @initialize(hostile=st.sampled_from(["none", "none", "primary", "secondary"]), transport=st.sampled_from(WORKING))
    def boot(self, hostile, transport):
        cfg = dict(secondaries=N_SEC, devices=("blk", "console", "net"), disk_sectors=SECTORS, rx_bufs=2,
                   transport=transport)
        self.transport = transport
        self.twins = [System(Config(secret=1, **cfg)), System(Config(secret=2, **cfg))]
        self.hostile = hostile
        self.bad_sec = 1 if hostile == "secondary" else None
        if self.bad_sec:     # it scribbles over its own bounce slots: what its own buffers get back is its doing
            for s in self.twins:
                s.secondaries[0].check_received = False
        self.disk = {v: bytearray(SECTORS * 512) for v in range(1, N_SEC + 1)}
        self.pending: list[tuple[int, list, object]] = []     # (secondary, [req per twin], expectation)
        self.expect_rx: dict[tuple[str, int], list[bytes]] = {}
        self.n = 0

    def _honest(self, v: int) -> bool:
        return self.hostile != "primary" and v != self.bad_sec

    def _submit(self, v: int, make, expectation) -> None:
        reqs = [make(s.secondaries[v - 1]) for s in self.twins]
        expect((reqs[0] is None) == (reqs[1] is None), NI, "the twins disagree on whether a request was accepted")
        if reqs[0] is not None:
            self.pending.append((v, reqs, expectation))

    @rule(v=st.integers(1, N_SEC), sector=st.integers(0, SECTORS + 2), nsect=st.integers(1, 4),
          fill=st.integers(0, 255))
    def blk_write(self, v, sector, nsect, fill):
        self.n += 1
        data = bytes((fill + self.n + i) & 0xFF for i in range(nsect * 512))
        ok = sector + nsect <= SECTORS
        before = len(self.pending)
        self._submit(v, lambda s: s.frontends["blk"].write(sector, data), ("write", ok))
        if ok and len(self.pending) > before and self._honest(v):
            self.disk[v][sector * 512:(sector + nsect) * 512] = data

    @rule(v=st.integers(1, N_SEC), sector=st.integers(0, SECTORS + 2), nsect=st.integers(1, 4))
    def blk_read(self, v, sector, nsect):
        ok = sector + nsect <= SECTORS
        want = bytes(self.disk[v][sector * 512:(sector + nsect) * 512]) if ok else None
        self._submit(v, lambda s: s.frontends["blk"].read(sector, nsect), ("read", ok, want))

    @rule(v=st.integers(1, N_SEC), flush=st.booleans())
    def blk_other(self, v, flush):
        self._submit(v, lambda s: s.frontends["blk"].flush() if flush else s.frontends["blk"].get_id(),
                     ("flush" if flush else "get-id", True))

    @rule(v=st.integers(1, N_SEC), data=st.binary(min_size=1, max_size=64))
    def console_send(self, v, data):
        before = len(self.pending)
        self._submit(v, lambda s: s.frontends["console"].send(data), ("tx",))
        if len(self.pending) > before and self._honest(v):
            for w in range(1, N_SEC + 1):
                if w != v:
                    self.expect_rx.setdefault(("console", w), []).append((v, data))

    @rule(v=st.integers(1, N_SEC), dst=st.integers(1, N_SEC), data=st.binary(min_size=0, max_size=64))
    def net_send(self, v, dst, data):
        before = len(self.pending)
        self._submit(v, lambda s: s.frontends["net"].send_to(mac_of(dst), data), ("tx",))
        if len(self.pending) > before and self._honest(v) and dst != v:
            self.expect_rx.setdefault(("net", dst), []).append((v, mac_of(dst) + mac_of(v) + b"\x88\xb5" + data))

    @rule(rounds=st.integers(1, 4))
    def step(self, rounds):
        for _ in range(rounds):
            for s in self.twins:
                s.step()
        self._settle()

    @precondition(lambda self: self.hostile == "primary")
    @rule(v=st.integers(1, N_SEC), where=st.integers(0, 1 << 16), data=st.binary(min_size=1, max_size=16),
          ring=st.booleans())
    def hostile_primary_write(self, v, where, data, ring):
        """The primary writes anything anywhere in a region (rings, register blocks, bounce slots)."""
        for s in self.twins:
            sec = s.secondaries[v - 1]
            if ring and sec.rings:
                base, size = sec.rings[where % len(sec.rings)]
                off = base + (where >> 4) % size
            else:
                off = where % sec.size
            off = min(off, sec.size - len(data))
            s.window_monitors[v].inner.write(sec.pri + off, data)

    @precondition(lambda self: self.hostile == "primary")
    @rule(v=st.integers(1, N_SEC), page=st.integers(0, 64))
    def hostile_primary_probe(self, v, page):
        """The primary tries the secondary's private memory at its IPAs: it has no mapping there."""
        for s in self.twins:
            ram, size = s.hv.private_region(v)
            try:
                s.hv.view(hmem.PRIMARY).read(hmem.SECONDARY_REGION_IPA + page * s.hyp_preset.page_size, 1)
                got = True
            except errors.AccessFault:
                got = False
            expect(not got, "SYSTEM-ISOLATION-private", "the primary read an IPA where only a secondary has memory")

    @precondition(lambda self: self.hostile == "secondary")
    @rule(where=st.integers(0, 1 << 16), data=st.binary(min_size=1, max_size=16), ring=st.booleans(),
          kick=st.booleans())
    def hostile_secondary_write(self, where, data, ring, kick):
        """Secondary 1 writes anything into its own region and rings every doorbell bit of its devices."""
        for s in self.twins:
            sec = s.secondaries[0]
            if ring and sec.rings:
                base, size = sec.rings[where % len(sec.rings)]
                off = base + (where >> 4) % size
            else:
                off = where % sec.size
            off = min(off, sec.size - len(data))
            sec.kernel.write_as(0xffff_8000_4000_0000 + off, data, Label(COHERENT, owner=-1, time=s.shadow.clock))
            if kick:
                for name in sec.frontends:
                    _hostile_kick(s, (1, name), where)

    @precondition(lambda self: self.hostile == "primary" and self.transport != "shm")
    @rule(v=st.integers(1, N_SEC), name=st.sampled_from(["blk", "console", "net"]),
          data=st.binary(min_size=1, max_size=16), bits=st.integers(0, 255))
    def hostile_primary_transport(self, v, name, data, bits):
        """The primary forges on the transport: a reply/response message, interrupt bits, an asserted VIRQ."""
        for s in self.twins:
            c = s.carriers[(v, name)]
            q = c.get("replies") or c.get("responses")
            if q is not None and q.state.count < q.state.depth - 1:
                q.send(data[:q.state.max_size])
            if "interrupt" in c and bits:
                c["interrupt"].send(bits)
            if "page" in c and bits:
                try:
                    c["page"].assert_virq(bits & 3)
                except errors.ModelError:     # the hypervisor refuses it (before DRIVER_OK, undefined reasons)
                    pass

    def _settle(self) -> None:
        """Check completed requests against the reference."""
        keep = []
        for v, reqs, exp in self.pending:
            a, b = reqs
            if not (a.done or a.failed):
                keep.append((v, reqs, exp))
                continue
            if not self._honest(v):
                continue
            expect(a.done and not a.failed, PROGRESS, f"secondary {v}: {a.kind} failed: {a.failed}")
            st_ = fe.status_of(a) if a.kind in ("read", "write", "flush", "get-id") else None
            if exp[0] in ("read", "write"):
                expect(st_ == (0 if exp[1] else 1), BLK_STATUS, f"secondary {v} {a.kind} {a.meta}: status {st_}")
            if exp[0] == "read" and exp[1]:
                expect(a.inputs[0] == exp[2], BLK_DATA, f"secondary {v}: read {a.meta} differs from the shadow disk")
            if exp[0] in ("flush", "get-id"):
                expect(st_ == 0, BLK_STATUS, f"secondary {v} {exp[0]}: status {st_}")
        self.pending = keep

    @invariant()
    def checks(self):
        if not hasattr(self, "twins"):
            return
        for s in self.twins:
            s.check()
        expect(self.twins[0].observation() == self.twins[1].observation(), NI,
               "the primary's observations differ between runs that differ only in unexported secrets")
        if self.hostile == "primary":
            return
        for (dev, w), want in self.expect_rx.items():
            if w == self.bad_sec:
                continue
            got = self.twins[0].secondaries[w - 1].frontends[dev].received
            expect(_interleaving(want, got, extra_ok=self.bad_sec is not None) is not None, STREAM,
                   f"{dev} of secondary {w}: received {got[:6]} is no in-order interleaving of what was sent")

    def teardown(self):
        if not hasattr(self, "twins"):
            return
        for s in self.twins:
            s.run(64)
        self._settle()
        self.checks()
        if self.hostile != "primary":
            for v, reqs, exp in self.pending:
                expect(not self._honest(v), PROGRESS, f"secondary {v}: {reqs[0].kind} never completed")
            for (dev, w), want in self.expect_rx.items():
                if w != self.bad_sec and self.bad_sec is None:
                    got = self.twins[0].secondaries[w - 1].frontends[dev].received
                    expect(_interleaving(want, got, False) == len(want), STREAM,
                           f"{dev} of secondary {w}: {len(got)} received, {len(want)} sent")


def _hostile_kick(s: System, key: tuple, where: int) -> None:
    """The hostile secondary notifies every queue it can name, over its transport."""
    c = s.carriers[key]
    if "notify" in c:
        c["notify"].send((1 << s.hyp_preset.doorbell_bits) - 1)
    elif "page" in c:
        try:
            c["page"].trap_write(0x050, where & 0xFF)          # QueueNotify with any index: the trap checks it
        except errors.ModelError:
            pass
    elif "requests" in c and c["requests"].state.count < c["requests"].state.depth - 1:
        c["requests"].send((where & 0xFFFF).to_bytes(2, "little") * 6)   # 12 bytes of anything


def _interleaving(want: list, got: list, extra_ok: bool) -> int | None:
    """The most sent items ``got`` holds if it is an interleaving of each sender's items in their order
    (``extra_ok``: a hostile sender may add others); None if it is not. Identical items from two senders are
    ambiguous, so this searches (memoised over the senders' positions: at most ``len(got)`` x positions)."""
    queues = {}
    for v, data in want:
        queues.setdefault(v, []).append(data)
    senders = sorted(queues)
    memo: dict = {}

    def best(k: int, pos: tuple) -> int | None:
        if k == len(got):
            return 0
        key = (k, pos)
        if key in memo:
            return memo[key]
        out = None
        for i, v in enumerate(senders):
            if pos[i] < len(queues[v]) and queues[v][pos[i]] == got[k]:
                r = best(k + 1, pos[:i] + (pos[i] + 1,) + pos[i + 1:])
                if r is not None and (out is None or r + 1 > out):
                    out = r + 1
        if extra_ok:
            r = best(k + 1, pos)
            if r is not None and (out is None or r > out):
                out = r
        memo[key] = out
        return out

    return best(0, (0,) * len(senders))


MACHINES = {"system": SystemMachine}
