"""swiotlb bounce machine: pools in a secondary's shared region, a hostile primary as the device, every byte labelled.

One secondary (the hypervisor's VM 1) maps buffers of its private memory through several pools
carved from its shared region, directly (``swiotlb_tbl_map_single`` with alignment masks, extra
allocation and SKIP_CPU_SYNC) or through the virtio bounce DMA ops; the primary (VM 0) writes bytes of
any length anywhere in the region through its own view, at its own addresses. After every step:

- the allocator's invariants (component ``swiotlb``) on every pool and the bounce rules
  (component ``swiotlb_bounce``) on the step;
- the bytes: private memory and the region equal a reference built from the per-direction table
  (``SWIOTLB-BOUNCE-transparent`` for a wrong byte where the step was to copy,
  ``SWIOTLB-BOUNCE-copy-inside`` for any byte changed elsewhere);
- the labels: what the caller received is its own, zeros or this mapping's device data
  (``SWIOTLB-BOUNCE-no-stale``); the region holds only exported, device or content-free bytes
  (``SWIOTLB-BOUNCE-no-export``); each DMA address names the mapping's bytes inside the region
  (``VIRTIO-BOUNCE-in-region``).
Runs the policies named by ``MAP_BOUNCE`` (zero-fill map bounce) and the 6.1.y slot search, passed explicitly.
"""
from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from t1virtio import errors
from t1virtio.machines.common import check_invariants, checked_call
from t1virtio.swiotlb import bounce as b
from t1virtio.swiotlb import dma, labels

MAP_BOUNCE = b.ZERO_FILL      # the map-time bounce policy this machine checks (passed explicitly)
NBUF = 6                       # caller buffers, one private page each
SPAN = 4096
TRANSPARENT, INSIDE, IN_REGION = "SWIOTLB-BOUNCE-transparent", "SWIOTLB-BOUNCE-copy-inside", "VIRTIO-BOUNCE-in-region"
EXHAUSTED = {"SWIOTLB-find-full", "SWIOTLB-find-no-termination", "SWIOTLB-find-too-large"}


@dataclass
class Live:
    """A live streaming mapping of buffer ``buf``."""

    pool: int
    via_ops: bool
    orig: int
    tlb: int
    dma: int
    size: int
    dir: int
    since: int
    alloc: int = 0     # bytes of the allocation (>= size): syncs are bounded by it, as in Linux
    own: set = None    # label ids the buffer held when bounced to the slot (coming back is no leak)


class SwiotlbMachine(RuleBasedStateMachine):
    """map / unmap / sync / alloc / free against a byte reference and the information-flow labels."""

    @initialize(pools=st.sampled_from([(16,), (8, 8), (16, 8, 8), (8, 8, 8)]),
                min_align=st.sampled_from([0, 0, 0x3ff, 0x7ff]), addressing=st.sampled_from([dma.OFFSET, dma.IPA]),
                scribble=st.sampled_from([True, True, False]), pattern=st.binary(min_size=1, max_size=16))
    def boot(self, pools, min_align, addressing, scribble, pattern):
        """The system boots; a hostile primary may fill the whole region before the secondary uses it."""
        self.sys = labels.LabeledSystem(pools, map_bounce=MAP_BOUNCE, dma_policy=dma.DmaPolicy(addressing=addressing), min_align_mask=min_align)
        if scribble:
            self.sys.shadow.tick()
            self.sys.device.write(self.sys.pri, (pattern * (self.sys.size // len(pattern) + 1))[:self.sys.size])
        self.sw = self.sys.swiotlb
        self.raw_sec, self.raw_pri = self.sys.hv.view(labels.SECONDARY), self.sys.hv.view(0)
        self.gen = [0] * NBUF
        self.live: dict[int, Live] = {}
        self.coherent: list[tuple[int, int, int, int]] = []     # (pool, vaddr, dma, size)
        self.next_coherent = 1000
        self.checked: dict[int, object] = {}

    # ------------------------------------------------------------------ helpers
    def snapshot(self) -> tuple:
        """Private memory and the region: their bytes and their labels."""
        s = self.sys
        return (bytearray(self.raw_sec.read(s.ram, s.ram_size)), bytearray(self.raw_pri.read(s.pri, s.size)),
                list(s.shadow.regions["priv"]), list(s.shadow.regions["shared"]))

    def labels_kept(self, before: tuple, windows: list, what: str) -> None:
        """Outside the step's own windows no byte changed origin either (a copy of equal bytes still shows)."""
        s = self.sys
        for which, name in ((0, "priv"), (1, "shared")):
            old, new = before[2 + which], s.shadow.regions[name]
            own = [(lo, hi) for r, lo, hi in windows if r == which]
            lo, hi = own[0] if own else (len(old), len(old))
            if old[:lo] != new[:lo] or old[hi:] != new[hi:]:
                k = next(i for i in range(len(old)) if old[i] != new[i] and not lo <= i < hi)
                raise errors.fail(INSIDE, f"{what}: the origin of {name}+{k:#x} changed from "
                                          f"{s.shadow.label(old[k])} to {s.shadow.label(new[k])}")

    def expect(self, before: tuple, priv: list, shared: list, windows: list, what: str) -> None:
        """Compare memory with ``before`` plus the expected writes; ``windows`` are the step's own (region, lo, hi)."""
        exp = [bytearray(before[0]), bytearray(before[1])]
        for which, changes in ((0, priv), (1, shared)):
            for off, data in changes:
                exp[which][off:off + len(data)] = data
        now = self.snapshot()
        for which, name in ((0, "private memory"), (1, "shared region")):
            if now[which] != exp[which]:
                k = next(i for i in range(len(exp[which])) if now[which][i] != exp[which][i])
                own = any(r == which and lo <= k < hi for r, lo, hi in windows)
                raise errors.fail(TRANSPARENT if own else INSIDE,
                                  f"{what}: {name}+{k:#x} is {now[which][k]:#04x}, expected {exp[which][k]:#04x}")
        self.labels_kept(before, windows, what)

    def core(self, op: str, pool: b.SwiotlbPool, call, args: dict):
        """Run ``call``; check the bounce rules of ``op`` when the step reached the pool's core."""
        return checked_call("swiotlb_bounce", op, pool, call, args, core_only=True, unchanged_on_refusal=True)

    def refused(self, err, allowed: set, what: str) -> None:
        """A refusal must be one of ``allowed`` (or exhaustion); anything else is reported with its clause."""
        if err.clause not in allowed | EXHAUSTED:
            raise err

    def received(self, live: Live, buf: int, what: str) -> None:
        for _, _, labs in self.sys.shadow.drain_received():
            labels.received_from(self.sys.shadow, labs, buf, live.since, what, live.own)

    def check_dma(self, live: Live, ops: dma.VirtioBounceOps, what: str) -> None:
        """The DMA address names the mapping's first byte, inside the region (seed: offset; restricted: IPA)."""
        s = self.sys
        off = live.dma if ops.policy.addressing == dma.OFFSET else live.dma - s.sec
        if not (off == live.tlb - s.sec and 0 <= off and off + live.size <= s.size):
            raise errors.fail(IN_REGION, f"{what}: dma {live.dma:#x} for pool address {live.tlb:#x} (+{live.size})")

    # ------------------------------------------------------------------ the caller
    @rule(buf=st.integers(0, NBUF - 1), off=st.integers(0, SPAN - 1), data=st.binary(min_size=1, max_size=64),
          times=st.sampled_from([1, 1, 16, 64]))
    def write_buffer(self, buf, off, data, times):
        """The caller writes its own buffer (a new generation of its bytes)."""
        data = (data * times)[:SPAN - off]
        self.gen[buf] += 1
        self.sys.fill(buf, self.sys.ram + buf * SPAN + off, data, self.gen[buf])

    @rule(buf=st.integers(0, NBUF - 1), off=st.integers(0, 255), size=st.integers(1, SPAN),
          dir=st.sampled_from([b.DMA_TO_DEVICE, b.DMA_FROM_DEVICE, b.DMA_BIDIRECTIONAL, b.DMA_TO_DEVICE,
                               b.DMA_FROM_DEVICE, b.DMA_NONE]),
          pool=st.integers(0, 2), via_ops=st.booleans(), skip=st.booleans(), extra=st.sampled_from([0, 0, 1, 3000]),
          align=st.sampled_from([0, 0, 0x7ff, 0xfff]), over=st.booleans())
    def map(self, buf, off, size, dir, pool, via_ops, skip, extra, align, over):
        if buf in self.live:
            return
        s, pool = self.sys, pool % len(self.sys.ops)
        ops, p = s.ops[pool], s.ops[pool].pool
        size = min(size, SPAN - off)
        if via_ops and over:
            size = ops.max_mapping_size() + 1
        orig = s.ram + buf * SPAN + off
        attrs = b.DMA_ATTR_SKIP_CPU_SYNC if skip else 0
        before = self.snapshot()
        since = s.shadow.tick()
        got: list = []
        if via_ops:
            if size > ops.max_mapping_size():
                try:
                    ops.map_page(orig, size, dir, attrs)
                except errors.ModelError as e:
                    self.refused(e, {dma.MAX_MAPPING}, "map_page over the maximum")
                    self.expect(before, [], [], [], "refused map_page")
                    return
                raise errors.fail(dma.MAX_MAPPING, f"map_page of {size} bytes accepted")
            call = lambda: got.append(ops.map_page(orig, size, dir, attrs))  # noqa: E731
            alloc, align, extra = size, 0, 0
        else:
            alloc = size + extra
            call = lambda: got.append(self.sw.map_single(p, orig, size, dir, alloc, align, attrs))  # noqa: E731
        args = {"orig_addr": orig, "mapping_size": size, "alloc_size": alloc, "dir": dir, "attrs": attrs,
                "map_bounce": self.sw.map_bounce, "alloc_align_mask": align, "min_align_mask": self.sw.min_align_mask,
                "cpu": 0}
        ok, err = self.core("map_single", p, call, args)
        if dir == b.DMA_NONE:
            if ok:
                raise errors.fail("SWIOTLB-BOUNCE-dir", "a DMA_NONE mapping was accepted")
            if err.clause != "SWIOTLB-BOUNCE-dir":
                raise err
        if not ok:
            self.refused(err, {"SWIOTLB-BOUNCE-dir"}, "map")
            self.expect(before, [], [], [], "refused map")
            return
        tlb = p.last_out[0]
        fill = self.map_fill(before[0][orig - s.ram:orig - s.ram + size], dir, skip)
        live = Live(pool, via_ops, orig, tlb, got[0] if via_ops else tlb, size, dir, since, alloc,
                    set(s.shadow.get("priv", orig - s.ram, size)) if fill is not None else set())
        if via_ops:
            self.check_dma(live, ops, "map_page")
        slot = tlb - s.sec
        self.expect(before, [], [] if fill is None else [(slot, fill)], [(1, slot, slot + size)], f"map dir {dir}")
        if dir != b.DMA_FROM_DEVICE:
            s.shadow.export("priv", orig - s.ram, size)
        self.live[buf] = live

    def map_fill(self, orig_bytes: bytes, dir: int, skip: bool):
        """What the slot holds after map, per the map-time policy (the reference's copy of the table)."""
        mb = self.sw.map_bounce
        if dir == b.DMA_FROM_DEVICE:
            return {b.PRE_5_17: None, b.LINUX_5_18: bytes(orig_bytes), b.ZERO_FILL: bytes(len(orig_bytes))}[mb]
        return None if (mb == b.PRE_5_17 and skip) else bytes(orig_bytes)

    # ------------------------------------------------------------------ the device (hostile primary)
    @rule(which=st.integers(0, NBUF - 1), off=st.integers(0, SPAN), data=st.binary(min_size=1, max_size=300),
          anywhere=st.sampled_from([False, False, True]), times=st.sampled_from([1, 1, 8, 32]),
          where=st.one_of(st.integers(0, 31).map(lambda k: k * 2048), st.integers(0, (1 << 16) - 1)))
    def device_write(self, which, off, data, anywhere, where, times):
        """The primary writes bytes into a live mapping, or anywhere in the region."""
        s = self.sys
        data = data * times
        if anywhere or which not in self.live:
            at = where % s.size
            data = data[:s.size - at]
            s.shadow.tick()
            s.device.write(s.pri + at, data)
            return
        live = self.live[which]
        off %= live.size
        s.shadow.tick()
        s.device.write(s.pri + live.tlb - s.sec + off, data[:live.size - off])

    # ------------------------------------------------------------------ sync and unmap
    @precondition(lambda self: self.live)
    @rule(which=st.integers(0, NBUF - 1), lo=st.integers(0, SPAN), n=st.integers(0, SPAN), for_device=st.booleans(),
          same_dir=st.sampled_from([True, True, True, False]), beyond=st.booleans())
    def sync(self, which, lo, n, for_device, same_dir, beyond):
        s = self.sys
        buf = sorted(self.live)[which % len(self.live)]
        live = self.live[buf]
        ops, p = s.ops[live.pool], s.ops[live.pool].pool
        dir = live.dir if same_dir else (live.dir + 1) % 3
        lo %= live.size + 1
        # inside the mapping, or past the allocation; [size, alloc) is Linux's grey zone (see docs)
        n = live.alloc - lo + 1 + n % 64 if beyond else min(n, live.size - lo)
        tlb = live.tlb + lo
        before = self.snapshot()
        s.shadow.drain_received()
        op = "sync_for_device" if for_device else "sync_for_cpu"
        if live.via_ops:
            fn = ops.sync_single_for_device if for_device else ops.sync_single_for_cpu
            call = lambda: fn(live.dma + lo, n, dir)  # noqa: E731
        else:
            fn = self.sw.sync_single_for_device if for_device else self.sw.sync_single_for_cpu
            call = lambda: fn(tlb, n, dir)  # noqa: E731
        args = {"tlb_addr": tlb, "size": n, "dir": dir, "min_align_mask": self.sw.min_align_mask}
        ok, err = self.core(op, p, call, args)
        inside = lo + n <= live.alloc
        if not ok:
            if inside or err.clause not in ("SWIOTLB-BOUNCE-sync-range", dma.DMA_ADDR):
                raise err
            self.expect(before, [], [], [], f"refused {op}")
            return
        if not inside:
            raise errors.fail("SWIOTLB-BOUNCE-sync-range", f"{op} of [{lo}, {lo + n}) in a {live.size}-byte mapping accepted")
        po, so = live.orig - s.ram + lo, live.tlb - s.sec + lo
        if for_device:
            shared = [(so, bytes(before[0][po:po + n]))] if dir != b.DMA_FROM_DEVICE else []
            self.expect(before, [], shared, [(1, live.tlb - s.sec, live.tlb - s.sec + live.size)], f"{op} dir {dir}")
            if dir != b.DMA_FROM_DEVICE:
                s.shadow.export("priv", po, n)
                live.own.update(s.shadow.get("priv", po, n))
        else:
            priv = [(po, bytes(before[1][so:so + n]))] if dir != b.DMA_TO_DEVICE else []
            self.expect(before, priv, [], [(0, live.orig - s.ram, live.orig - s.ram + live.size)], f"{op} dir {dir}")
            self.received(live, buf, op)

    @precondition(lambda self: self.live)
    @rule(which=st.integers(0, NBUF - 1), skip=st.sampled_from([False, False, False, True]),
          wrong=st.sampled_from([0, 0, 0, 0, 1, -1]))
    def unmap(self, which, skip, wrong):
        s = self.sys
        buf = sorted(self.live)[which % len(self.live)]
        live = self.live[buf]
        ops, p = s.ops[live.pool], s.ops[live.pool].pool
        size = live.size + wrong
        attrs = b.DMA_ATTR_SKIP_CPU_SYNC if skip else 0
        before = self.snapshot()
        s.shadow.drain_received()
        if live.via_ops:
            call = lambda: ops.unmap_page(live.dma, size, live.dir, attrs)  # noqa: E731
        else:
            call = lambda: self.sw.unmap_single(live.tlb, size, live.dir, attrs)  # noqa: E731
        args = {"tlb_addr": live.tlb, "mapping_size": size, "dir": live.dir, "attrs": attrs,
                "min_align_mask": self.sw.min_align_mask}
        ok, err = self.core("unmap_single", p, call, args)
        if wrong:
            if ok:
                raise errors.fail("SWIOTLB-BOUNCE-unmap-size", f"unmap of {size} bytes of a {live.size}-byte mapping accepted")
            if err.clause not in ("SWIOTLB-BOUNCE-unmap-size", dma.DMA_ADDR):
                raise err
            self.expect(before, [], [], [], "refused unmap")
            return
        if not ok:
            raise err
        po, so = live.orig - s.ram, live.tlb - s.sec
        back = live.dir != b.DMA_TO_DEVICE and not skip
        priv = [(po, bytes(before[1][so:so + size]))] if back else []
        self.expect(before, priv, [], [(0, po, po + size)], f"unmap dir {live.dir}")
        self.received(live, buf, "unmap")
        del self.live[buf]

    @rule(where=st.sampled_from(["past-region", "hole", "inside"]), n=st.integers(1, 64), sync=st.booleans())
    def stray_address(self, where, n, sync):
        """Unmap or sync an address that no live mapping returned: refused with a typed error, nothing changes."""
        s = self.sys
        covered = sum(p.state.nslabs for p in self.sw.pools) * 2048
        free = [k for k in range(self.sw.pools[0].state.nslabs) if self.sw.pools[0].state.list[k]]
        if where == "inside" and not free:
            return
        addr = {"past-region": s.sec + s.size + 4096, "hole": s.sec + covered if covered < s.size else s.sec - 4096,
                "inside": s.sec + 2048 * free[0] + 1 if free else 0}[where]
        before = self.snapshot()
        try:
            if sync:
                self.sw.sync_single_for_cpu(addr, n, b.DMA_FROM_DEVICE)
            else:
                self.sw.unmap_single(addr, n, b.DMA_FROM_DEVICE)
        except errors.ModelError as e:
            expected = {"SWIOTLB-BOUNCE-no-pool"} if where != "inside" else \
                {"SWIOTLB-BOUNCE-not-mapped", "SWIOTLB-release-not-mapped", "SWIOTLB-BOUNCE-sync-range"}
            if e.clause not in expected:
                raise errors.fail("SWIOTLB-BOUNCE-no-pool" if where != "inside" else "SWIOTLB-BOUNCE-not-mapped",
                                  f"a stray address ({where}) was refused with {e.clause}")
            self.expect(before, [], [], [], "stray address")
            return
        raise errors.fail("SWIOTLB-BOUNCE-no-pool" if where != "inside" else "SWIOTLB-BOUNCE-not-mapped",
                          f"{'sync' if sync else 'unmap'} of a stray address ({where}) {addr:#x} accepted")

    # ------------------------------------------------------------------ coherent memory (rings)
    @rule(pool=st.integers(0, 2), size=st.integers(1, 3 * 4096))
    def alloc(self, pool, size):
        s = self.sys
        ops = s.ops[pool % len(s.ops)]
        before = self.snapshot()
        since = s.shadow.tick()
        try:
            vaddr, d = ops.alloc(size)
        except errors.ModelError as e:
            self.refused(e, set(), "alloc")
            return
        size = (size + 4095) // 4096 * 4096
        off = vaddr - labels.REGION_VA
        live = Live(pool % len(s.ops), True, 0, vaddr - labels.REGION_VA + s.sec, d, size, b.DMA_BIDIRECTIONAL, since)
        self.check_dma(live, ops, "alloc")
        self.expect(before, [], [(off, bytes(size))], [(1, off, off + size)], "alloc")
        labels.received_from(s.shadow, s.shadow.get("shared", off, size), -1, since, "coherent alloc")
        self.coherent.append((pool % len(s.ops), vaddr, d, size))

    @precondition(lambda self: self.coherent)
    @rule(which=st.integers(0, 7), off=st.integers(0, 3 * 4096), data=st.binary(min_size=1, max_size=64))
    def write_coherent(self, which, off, data):
        """The secondary writes its ring: exported by design."""
        _, vaddr, _, size = self.coherent[which % len(self.coherent)]
        off %= size
        self.next_coherent += 1
        self.sys.kernel.write_as(vaddr + off, data[:size - off], labels.Label(labels.COHERENT, owner=self.next_coherent))

    @precondition(lambda self: self.coherent)
    @rule(which=st.integers(0, 7))
    def free(self, which):
        pool, vaddr, d, size = self.coherent.pop(which % len(self.coherent))
        before = self.snapshot()
        self.sys.ops[pool].free(d, size)
        self.expect(before, [], [], [], "free")

    @precondition(lambda self: self.live)
    @rule(which=st.integers(0, NBUF - 1))
    def free_streaming(self, which):
        """Freeing a streaming mapping as coherent memory is refused (it must be unmapped)."""
        live = self.live[sorted(self.live)[which % len(self.live)]]
        try:
            self.sw.free(live.tlb, live.size)
        except errors.ModelError as e:
            if e.clause not in ("SWIOTLB-BOUNCE-not-mapped", "SWIOTLB-release-not-mapped", "SWIOTLB-release-size"):
                raise
            return
        raise errors.fail("SWIOTLB-BOUNCE-not-mapped", f"free of the streaming mapping at {live.tlb:#x} accepted")

    # ------------------------------------------------------------------ after every step
    @invariant()
    def pools_and_flow(self):
        if not hasattr(self, "sys"):
            return
        for i, p in enumerate(self.sw.pools):
            if self.checked.get(i) is not p.state:       # a pool's state object changes only when a step changed it
                check_invariants("swiotlb", p.state)
                self.checked[i] = p.state
        labels.exported_only(self.sys.shadow, "shared")


MACHINES = {"swiotlb": SwiotlbMachine}
