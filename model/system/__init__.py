"""The whole system: the hypervisor, the primary, N secondaries, their regions, pools, devices and transports
(DESIGN.md §2; seed problems 1-3). ``System(Config(...))`` builds everything from one configuration;
``step()`` advances every side once; ``check()`` runs the system's checks (isolation, bounce, labels);
``scenario()`` is the end-to-end row of ``t1virtio verify``. See docs/system.md.
"""
from __future__ import annotations

import array
import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

from t1virtio import errors
from t1virtio import preset as presets
from t1virtio.backends.blk import BlkBackend
from t1virtio.backends.context import DeviceContext
from t1virtio.backends.stream import ConsoleBackend, Hub, NetBackend, RngBackend
from t1virtio.hyp import memory as hmem
from t1virtio.hyp.doorbell import Doorbell, Vic
from t1virtio.swiotlb import bounce, dma
from t1virtio.swiotlb import pool as swpool
from t1virtio.swiotlb.labels import (COHERENT, DEVICE, PRIVATE, Label, LabeledView, RemapView, Shadow, code_fresh,
                                     device_fresh, exported_only)
from t1virtio.system import frontend as fe
from t1virtio.system.transport import BLOCK, DeviceEnd, HypBell, ShmDriverTransport

WINDOW = "SYSTEM-ISOLATION-window"
PRIVATE_CLAUSE = "SYSTEM-ISOLATION-private"
BOUNCE_POOL = "SYSTEM-BOUNCE-pool"
NI = "SYSTEM-NI-observation"
PROGRESS = "SYSTEM-PROGRESS"
DEVICES = ("blk", "console", "net", "rng")
REGION_VA = 0xffff_8000_4000_0000      # where a secondary's kernel memremaps its region (seed patch 2)

# Sizes. The pool's preset shapes the swiotlb tables (slots, segments, areas, 4 KiB pages for coherent
# memory); the hypervisor's preset shapes physical memory: at real size the regions are mapped with 2 MiB
# stage-2 blocks (a 64 MiB pool is 32 blocks, not 16384 pages: the hypervisor core is O(pages) per step).
SYSTEM_SMALL = dataclasses.replace(presets.SMALL, name="SMALL-SYSTEM", pool_nslabs=64, queue_size=8)
swpool.register_geometry(SYSTEM_SMALL)
SIZES = {"small": (SYSTEM_SMALL, 4096), "linux": (presets.LINUX, 2 << 20)}


@dataclass(frozen=True)
class Config:
    """Everything the system is built from."""

    secondaries: int = 2
    devices: tuple = DEVICES
    size: str = "small"                 # "small" (64-slot pools, 8-entry queues) or "linux" (32768 slots, 256)
    private_bytes: int = 64 * 1024      # each secondary's private memory (caller buffers + a secret page)
    disk_sectors: int = 64              # each secondary's disk image
    rx_bufs: int = 2                    # receive buffers each stream frontend keeps posted
    map_bounce: Any = bounce.ZERO_FILL
    labels: bool = True
    secret: int = 0                     # seed of the bytes of each secondary's secret (never exported) page
    budget: int = 16                    # chains a backend serves per step (a named bound)
    images: tuple = ()                  # optional disk images (writable buffers), one per secondary
    remote: dict = dataclasses.field(default_factory=dict)   # {secondary: RemoteBlk}: blk served out of process
    transport: str = "shm"              # what carries the registers: system/adapters.py TRANSPORTS

    def __post_init__(self) -> None:
        from t1virtio.system.adapters import check_transport
        check_transport(self.transport)

    @property
    def pool_preset(self) -> presets.Preset:
        return SIZES[self.size][0]

    @property
    def page(self) -> int:
        return SIZES[self.size][1]


class BootedHypervisor(hmem.Hypervisor):
    """The hypervisor model, with TLB flushes batched during VM creation (a boot is thousands of steps;
    nothing reads the TLBs before ``boot_finish``). Every step is still the model's own."""

    def _boot(self) -> None:
        self._booting = True
        try:
            super()._boot()
        finally:
            self._booting = False
        super().flush_tlb()

    def flush_tlb(self) -> None:
        if not getattr(self, "_booting", False):
            super().flush_tlb()


class CompactShadow(Shadow):
    """A ``Shadow`` whose per-byte labels are 32-bit arrays (a 64 MiB region costs 256 MiB, not 512)."""

    def add_region(self, name: str, size: int) -> None:
        self.regions[name] = array.array("I", [self.intern(Label("zero"))]) * size

    def set(self, region: str, off: int, labels: Any) -> None:
        if not isinstance(labels, array.array):
            labels = array.array("I", labels)
        self.regions[region][off:off + len(labels)] = labels
        self.dirty.setdefault(region, []).append((off, len(labels)))


class WindowMonitor:
    """The primary's view as a backend of secondary ``v`` uses it: any access outside ``[lo, hi)`` is refused
    with ``SYSTEM-ISOLATION-window`` (the backend would reach another secondary's region or anything else)."""

    def __init__(self, inner: Any, lo: int, hi: int, v: int):
        self.inner, self.lo, self.hi, self.v = inner, lo, hi, v
        self.accesses = 0

    def _check(self, addr: int, n: int) -> None:
        self.accesses += 1
        if not (self.lo <= addr and addr + n <= self.hi):
            raise errors.fail(WINDOW, f"backend of secondary {self.v}: {n} bytes at {addr:#x} outside its window "
                                      f"[{self.lo:#x}, {self.hi:#x})")

    def read(self, addr: int, n: int) -> bytes:
        self._check(addr, n)
        return self.inner.read(addr, n)

    def write(self, addr: int, data: bytes) -> None:
        self._check(addr, len(data))
        self.inner.write(addr, data)


class Secondary:
    """One secondary VM's side: private memory, its view of the region, swiotlb, DMA ops, frontends."""

    def __init__(self, system: "System", v: int):
        cfg, hv = system.cfg, system.hv
        self.system, self.v, self.labels = system, v, cfg.labels
        self.check_received = cfg.labels        # received_from at every unmap (off for a hostile secondary)
        self.pri, self.sec_ipa, self.size = hv.shared_region(v)
        self.ram, self.ram_size = hv.private_region(v)
        self.priv_name, self.shared_name = f"priv{v}", f"shared{v}"
        sh = self.shadow = system.shadow
        view = hv.view(v)
        delta = REGION_VA - self.sec_ipa
        if cfg.labels:
            self.caller = LabeledView(view, sh, self.priv_name, self.ram, code_fresh(sh), log=False)
            self.kernel = LabeledView(RemapView(view, delta), sh, self.shared_name, REGION_VA, code_fresh(sh))
            self.ring_view = LabeledView(RemapView(view, delta), sh, self.shared_name, REGION_VA,
                                         lambda data: Label(COHERENT, owner=-v, time=sh.clock))
        else:
            self.caller, self.kernel = view, RemapView(view, delta)
            self.ring_view = self.kernel
        P = cfg.pool_preset
        self.cfg_bytes = cfg.page                     # the register blocks: the region's first page
        self.swiotlb = bounce.Swiotlb(P, self.caller, cfg.map_bounce)
        self.pool = self.swiotlb.register_pool(f"sec{v}", self.sec_ipa + self.cfg_bytes, P.pool_nslabs, self.kernel,
                                               REGION_VA + self.cfg_bytes)
        self.ops = dma.VirtioBounceOps(self.swiotlb, self.pool, self.sec_ipa, self.size, dma.DmaPolicy())
        self.pool_lo, self.pool_hi = self.cfg_bytes, self.cfg_bytes + P.pool_nslabs * swpool.IO_TLB_SIZE
        self.rings: list[tuple[int, int]] = []
        # private memory: 4 KiB chunks for caller buffers; the last 4 KiB is the secret, never exported
        self.chunk = 4096
        self.secret_at = self.ram + self.ram_size - self.chunk
        self.free_chunks = set(range((self.ram_size - self.chunk) // self.chunk))
        secret = hashlib.sha256(f"secret {cfg.secret} {v}".encode()).digest() * (self.chunk // 32)
        if cfg.labels:
            self.caller.write_as(self.secret_at, secret, Label(PRIVATE, owner=-1, gen=cfg.secret))
        else:
            self.caller.write(self.secret_at, secret)
        self.owners = 0
        self.frontends: dict[str, fe.Frontend] = {}

    # private memory
    def alloc_private(self, n: int) -> int:
        k = max(1, -(-n // self.chunk))
        free = sorted(self.free_chunks)
        for i in free:                       # bounded: the chunks of private memory
            if all(i + j in self.free_chunks for j in range(k)):
                for j in range(k):
                    self.free_chunks.discard(i + j)
                return self.ram + i * self.chunk
        raise errors.fail("SWIOTLB-find-full", f"secondary {self.v}: no {n} bytes of private buffer memory")

    def free_private(self, addr: int, n: int) -> None:
        i = (addr - self.ram) // self.chunk
        for j in range(max(1, -(-n // self.chunk))):
            self.free_chunks.add(i + j)

    def new_owner(self) -> int:
        self.owners += 1
        return self.v * 1_000_000 + self.owners

    def fill(self, b: Any, data: bytes) -> None:
        """The caller writes its buffer and hands it to the device (exports it: a TO_DEVICE intent)."""
        if self.labels:
            self.caller.write_as(b.orig, data, Label(PRIVATE, owner=b.owner, gen=1))
            self.shadow.export(self.priv_name, b.orig - self.ram, len(data))
        else:
            self.caller.write(b.orig, data)


class System:
    """Hypervisor + primary + secondaries, composed from a ``Config``."""

    def __init__(self, cfg: Config = Config()):
        self.cfg = cfg
        P, page = cfg.pool_preset, cfg.page
        n = cfg.secondaries
        region_bytes = page + P.pool_nslabs * swpool.IO_TLB_SIZE
        region_pages = -(-region_bytes // page)
        priv_pages = max(2, -(-cfg.private_bytes // page)) if page > 4096 else -(-cfg.private_bytes // page)
        hp = dataclasses.replace(P, name=f"{P.name}-HYP", page_size=page, n_vms=n + 1,
                                 n_pages=1 + n * (priv_pages + region_pages), max_parcels=max(P.max_parcels, n),
                                 msgq_max_depth=max(P.msgq_max_depth, 8),
                                 msgq_max_msg_size=max(P.msgq_max_msg_size, 240))
        self.hyp_preset = hp
        self.hv = BootedHypervisor(hp, hmem.Layout(private=(1,) + (priv_pages,) * n, shared=(0,) + (region_pages,) * n))
        self.shadow = CompactShadow()
        self.vics = [Vic() for _ in range(n + 1)]
        self.hub_console, self.hub_net = Hub(), Hub()
        self.clock = 0
        self.secondaries: list[Secondary] = []
        self.ends: dict[tuple[int, str], Any] = {}
        self.backends: dict[tuple[int, str], Any] = {}
        self.bells: dict[tuple[int, str], tuple[Doorbell, Doorbell]] = {}
        self.carriers: dict[tuple[int, str], dict] = {}     # the transport's hypervisor objects per device
        self.private_pages: dict[int, set[int]] = {}
        self.window_monitors: dict[int, WindowMonitor] = {}
        self.setup_done = False
        for v in range(1, n + 1):
            pri, _, size = self.hv.shared_region(v)
            self.shadow.add_region(f"priv{v}", self.hv.private_region(v)[1])
            self.shadow.add_region(f"shared{v}", size)
            ram, rsize = self.hv.private_region(v)
            self.private_pages[v] = {self.hv.tlb[v][(ram + k) // page][0] for k in range(0, rsize, page)}
        for v in range(1, n + 1):
            self.secondaries.append(Secondary(self, v))
        for s in self.secondaries:
            self._devices(s)
        self.setup_done = True
        self.check()

    # ---- composition
    def device_view(self, v: int) -> tuple[Any, int, int]:
        """The primary's view of secondary ``v``'s region for its backends: labelled, window-monitored."""
        pri, _, size = self.hv.shared_region(v)
        inner: Any = self.hv.view(hmem.PRIMARY)
        if self.cfg.labels:
            inner = LabeledView(inner, self.shadow, f"shared{v}", pri, device_fresh(self.shadow))
        mon = self.window_monitors[v] = WindowMonitor(inner, pri, pri + size, v)
        return mon, pri, size

    def _backend(self, v: int, name: str) -> Any:
        cfg = self.cfg
        if name == "blk":
            image = cfg.images[v - 1] if len(cfg.images) >= v else bytearray(cfg.disk_sectors * 512)
            return BlkBackend(image, serial=f"t1virtio-blk-{v}".encode(), max_bytes=16 * 1024)
        if name == "console":
            return ConsoleBackend(self.hub_console, v)
        if name == "net":
            return NetBackend(self.hub_net, mac_of(v))
        return RngBackend(seed=v)

    def _devices(self, s: Secondary) -> None:
        cfg, v, P = self.cfg, s.v, self.cfg.pool_preset
        width = self.hyp_preset.doorbell_bits
        for d, name in enumerate(cfg.devices):
            key = (v, name)
            block = d * BLOCK
            if cfg.transport != "shm":
                t = self._adapted(s, name, d)
            else:
                to_dev, to_drv = Doorbell(self.hyp_preset, self.vics[0]), Doorbell(self.hyp_preset, self.vics[v])
                to_dev.bind_virq()
                to_drv.bind_virq()
                self.bells[key] = (to_dev, to_drv)
                self.carriers[key] = {"notify": to_dev, "interrupt": to_drv}
                if name == "blk" and v in cfg.remote:
                    self.ends[key] = end = cfg.remote[v].attach(self, v, block, HypBell(to_dev, to_drv), width,
                                                                P.queue_size)
                    self.backends[key] = end
                else:
                    mon, pri, size = self.device_view(v)
                    ctx = DeviceContext(mon, pri, size, lambda q: None)
                    be = self._backend(v, name)
                    end = DeviceEnd(be, ctx, block, HypBell(to_dev, to_drv), width, P.queue_size)
                    ctx.notify = end._notify
                    self.ends[key], self.backends[key] = end, be
                t = ShmDriverTransport(s.ring_view, REGION_VA + block, to_dev, to_drv, width,
                                       pump=lambda key=key: self._pump_device(key))
            qs = P.queue_size
            s.frontends[name] = {"blk": lambda: fe.BlkFrontend(s, t, qs),
                                 "console": lambda: fe.ConsoleFrontend(s, t, qs, cfg.rx_bufs),
                                 "net": lambda: fe.NetFrontend(s, t, qs, cfg.rx_bufs),
                                 "rng": lambda: fe.RngFrontend(s, t, qs)}[name]()

    def _adapted(self, s: Secondary, name: str, d: int) -> Any:
        """Device ``name`` over a transport of ``model/transport/`` (system/adapters.py): the backend in the
        primary (or its own process) behind the transport's device side; the driver transport for the frontend."""
        from t1virtio.system import adapters
        v, key, qmax = s.v, (s.v, name), self.cfg.pool_preset.queue_size
        if name == "blk" and v in self.cfg.remote:
            be = self.cfg.remote[v].attach_queues(self, v)
            ctx = be.ctx
        else:
            mon, pri, size = self.device_view(v)
            ctx = DeviceContext(mon, pri, size, lambda q: None)
            be = self._backend(v, name)
        t, end, carriers = adapters.build(self, v, name, be, ctx, qmax, pump=lambda: self.ends[key].registers())
        self.ends[key], self.backends[key], self.carriers[key] = end, be, carriers
        if "notify" in carriers:
            self.bells[key] = (carriers["notify"], carriers["interrupt"])
        return t

    def _pump_device(self, key: tuple[int, str]) -> None:
        if not self.setup_done:
            self.ends[key].step(0)

    # ---- running
    def step(self) -> int:
        """One round: every device end serves (budget ``cfg.budget``), hubs deliver, every frontend polls.
        Returns the work done (chains served + requests completed)."""
        self.clock += 1
        self.shadow.tick()
        work = 0
        for key, end in self.ends.items():
            work += end.step(self.cfg.budget)
        for key, be in self.backends.items():
            if hasattr(be, "pump") and not self.ends[key].broken and self.ends[key].live:
                work += be.pump(self.cfg.budget)
        for s in self.secondaries:
            for name, f in s.frontends.items():
                try:
                    if not f.broken:
                        f.t.take_interrupts()
                except errors.PeerViolation as e:     # the transport broke (a hostile device): this device only
                    if not f.broken:
                        f.broken = e.clause
                        f.abandon()
                work += len(f.poll())
        return work

    def run(self, bound: int = 64) -> int:
        """Step until nothing moves (at most ``bound`` rounds); return the rounds taken."""
        for k in range(bound):
            if not self.step():
                return k + 1
        return bound

    def wait(self, req: Any, bound: int = 64) -> Any:
        """Step until ``req`` completes; ``SYSTEM-PROGRESS`` if it does not within ``bound`` rounds."""
        for _ in range(bound):
            if req.done or req.failed:
                return req
            self.step()
            self.check()
        if not req.done and not req.failed:
            raise errors.InvariantViolation(PROGRESS, f"{req.kind} request not completed after {bound} rounds")
        return req

    # ---- checks
    def check(self) -> None:
        """Isolation, bounce and label checks of the current state; raise the broken clause."""
        hv = self.hv
        primary_pages = {p for p, _ in hv.tlb[hmem.PRIMARY].values()}
        for v, pages in self.private_pages.items():
            bad = pages & primary_pages
            if bad:
                raise errors.InvariantViolation(PRIVATE_CLAUSE, f"secondary {v}'s private pages {sorted(bad)} are "
                                                                f"mapped in the primary")
        for s in self.secondaries:
            for f in s.frontends.values():
                for d, n in f.dma_in_flight():
                    tlb = s.sec_ipa + d
                    if not (s.pool_lo <= d and d + n <= s.pool_hi) or tlb not in s.swiotlb.mappings:
                        raise errors.InvariantViolation(BOUNCE_POOL, f"secondary {s.v} {f.name}: buffer at DMA "
                                                                     f"{d:#x}+{n} is no live mapping of its pool")
            if self.cfg.labels:
                exported_only(self.shadow, s.shared_name)

    def observation(self) -> str:
        """A digest of everything the primary observes: every region's bytes, its own memory, disks, hubs."""
        h = hashlib.sha256()
        hv = self.hv
        for ipa, (p, _) in sorted(hv.tlb[hmem.PRIMARY].items()):
            h.update(ipa.to_bytes(8, "little"))
            h.update(hv.pages[p])
        for key in sorted(self.backends):
            be = self.backends[key]
            if isinstance(be, BlkBackend):
                h.update(bytes(be.image))
        for key in sorted(self.carriers):          # what the transport carries to and from the primary
            for cname, c in sorted(self.carriers[key].items()):
                h.update(cname.encode())
                if hasattr(c, "payloads"):
                    st = c.state
                    h.update(bytes(repr((st.count, st.sent, st.received)), "ascii"))
                    for k in range(st.count):
                        h.update(c.payloads[(st.head + k) % st.depth])
                elif hasattr(c, "page"):
                    h.update(bytes(c.page))
                else:
                    h.update(c.state.flags.to_bytes(8, "little"))
        for hub in (self.hub_console, self.hub_net):
            for name in sorted(hub.ports, key=repr):
                for item in hub.ports[name]:
                    h.update(item)
        return h.hexdigest()

    def close(self) -> None:
        for r in self.cfg.remote.values():
            r.close()


def mac_of(v: int) -> bytes:
    return bytes([0x52, 0x54, 0x00, 0x74, 0x31, v])


# ---- the end-to-end scenario (``t1virtio verify``)

@dataclass
class Result:
    ok: bool
    detail: str
    facts: dict


def exercise(system: System, blocks: int = 8, seed: int = 0) -> dict:
    """A secondary writes ``blocks`` sectors to its disk and reads them back; console lines and a packet go
    from secondary 1 to 2 through the primary; rng bytes. Returns what happened; raises a broken clause."""
    import random
    rnd = random.Random(seed)
    s1 = system.secondaries[0]
    blk = s1.frontends["blk"]
    data = [rnd.randbytes(512) for _ in range(blocks)]
    for i, d in enumerate(data):
        system.wait(blk.write(i, d))
        system.check()
    for i, d in enumerate(data):
        r = system.wait(blk.read(i, 1))
        system.check()
        if fe.status_of(r) != 0 or r.inputs[0] != d:
            raise errors.InvariantViolation("SYSTEM-BLK-data", f"sector {i} read back differently")
    facts = {"blocks": blocks}
    if len(system.secondaries) > 1 and "console" in s1.frontends:
        s2 = system.secondaries[1]
        system.wait(s1.frontends["console"].send(b"hello from secondary 1\n"))
        system.run()
        if s2.frontends["console"].received[-1:] != [b"hello from secondary 1\n"]:
            raise errors.InvariantViolation("SYSTEM-STREAM-data", f"console: {s2.frontends['console'].received}")
        system.wait(s1.frontends["net"].send_to(mac_of(2), b"ping"))
        system.run()
        if not s2.frontends["net"].received or s2.frontends["net"].received[-1][14:] != b"ping":
            raise errors.InvariantViolation("SYSTEM-STREAM-data", f"net: {s2.frontends['net'].received}")
        facts["console"] = facts["net"] = 1
        system.check()
    return facts


def scenario() -> Result:
    """Two systems differing only in the secondaries' secret pages run the exercise; all checks hold and the
    primary's observations agree (noninterference)."""
    try:
        a, b = System(Config(secret=1)), System(Config(secret=2))
        fa, _ = exercise(a), exercise(b)
        if a.observation() != b.observation():
            raise errors.InvariantViolation(NI, "the primary's observations differ between the two runs")
    except errors.ModelError as e:
        return Result(False, f"{e.clause}: {e}", {})
    return Result(True, f"2 secondaries x {len(DEVICES)} devices (blk, console, net, rng): {fa['blocks']} sectors "
                        f"written and read back, console line and packet bridged by the primary; isolation, "
                        f"bounce, labels and noninterference held", fa)
