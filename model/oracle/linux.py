"""The real Linux 6.1.y code as the first foreign implementation: adapters putting the Linux peers behind the
live interface (``step(op, args) -> result``, ``Refused``).

The peers (``../shared/peers/linux``: ``swiotlb_peer`` = kernel/dma/swiotlb.c, ``vring_peer`` = virtio_ring.c
and vringh.c, compiled unmodified) are passed in as modules, so the oracle imports nothing from the tests and
nothing that may be missing; ``tests/linuxpeer.py`` finds them (skip, or fail in CI).

=====================  ============================================================================
factory                what runs
=====================  ============================================================================
``swiotlb_factory``    ``swiotlb_tbl_map_single`` / ``swiotlb_alloc`` / ``swiotlb_tbl_unmap_single``,
                       ``swiotlb_free`` on a restricted pool (one area: ``alloc`` allowed) or, with
                       ``nareas > 1``, a default pool (``alloc`` refused ``EPERM`` there, as Linux does)
``split_driver_factory``   virtio_ring.c split driver (``virtqueue_add_sgs``, ``get_buf``, ``kick_prepare``,
                       ``enable_cb``/``disable_cb``)
``packed_driver_factory``  virtio_ring.c packed driver (same calls, ``F_RING_PACKED``)
``split_device_factory``   vringh.c (user flavour: ``getdesc``, ``complete``, ``need_notify``,
                       ``notify_enable``/``notify_disable``)
=====================  ============================================================================

One flat memory: the kernel code works on the very bytes the oracle's peer writes (the drivers zero-copy on
the session's ring memory; vringh on a larger guest memory, whose first bytes mirror the ring memory before and
after every call, because vringh accepts only descriptors inside its memory and the oracle's honest driver puts
buffers at 1-2 MiB). swiotlb has its own memory: the pool at the header's ``sizes.start`` (which must leave the
original buffers of ``live``'s actions, below 5 MiB, outside it).

What the adapters report, and nothing else is interpreted: results are what the kernel returned or what its
state shows (the slot a search took is the run that became taken in ``slots[]``; a ring's head or buffer id is
virtio_ring.c's ``free_head`` before the add, the chain its ``desc_extra[].next``; a token is ``id + 1``).
Refusals: the kernel's -errno by name; ``DMA_MAPPING_ERROR`` as ``ENOMEM`` (``EINVAL`` when mapping_size >
alloc_size); an empty ring as ``EAGAIN``; a broken ring (BAD_RING) and a chain vringh refuses as ``EIO``; a ``BUG_ON`` as the model's
clause for that caller error when the message names it (else ``EINVAL``); a search the peer's watchdog stops
(6.1.y's ``do {} while (index != wrap)``) as ``SWIOTLB-find-no-termination``.
"""
from __future__ import annotations

import errno as _errno
from typing import Any

from t1virtio.oracle import components as comp
from t1virtio.oracle.live import Refused

TO_DEVICE = 1
U64 = (1 << 64) - 1
ORIG_LIMIT = 0x500000          # live's swiotlb actions keep original buffers below this


def _errname(rc: int, default: str = "EIO") -> str:
    name = _errno.errorcode.get(-rc, "")
    return name if name in comp.ERRNO_KINDS else default


# ------------------------------------------------------------------ swiotlb

class LinuxSwiotlb:
    """kernel/dma/swiotlb.c (6.1.y) as a ``swiotlb`` implementation."""

    def __init__(self, peer: Any, header: dict, memory: Any = None, *, watchdog_ms: int = 300):
        runner = comp.RUNNERS["swiotlb"](header)
        if runner.preset.io_tlb_segsize != peer.IO_TLB_SEGSIZE:
            raise ValueError(f"Linux's segments are {peer.IO_TLB_SEGSIZE} slots: use the linux preset "
                             f"(sizes {{'preset': 'linux', 'nslabs': ..., 'start': ...}})")
        self.peer, self.start, self.nslabs, self.nareas = peer, runner.start, runner.nslabs, runner.nareas
        if self.start < ORIG_LIMIT:
            raise ValueError(f"sizes.start {self.start:#x} must be at least {ORIG_LIMIT:#x} (the original buffers lie below)")
        self.mem = peer.GuestMemory(self.start + self.nslabs * 2048 + 4096)
        if self.nareas == 1:
            self.pool = peer.Pool.restricted(self.mem, self.start, self.nslabs * 2048)
        else:
            self.pool = peer.Pool(self.mem, start=self.start, nslabs=self.nslabs, nareas=self.nareas)
        info = self.pool.info()
        if (info["start"], info["nslabs"], info["nareas"]) != (self.start, self.nslabs, self.nareas):
            raise ValueError(f"the kernel made a pool {info}, not the header's")
        peer.set_watchdog_ms(self.pool.lib, watchdog_ms)
        self.live: dict[int, list[tuple[str, int]]] = {}      # address handed out -> [(kind, size)], newest last
        self.hangs = 0

    def _taken(self) -> list[bool]:
        return [x == 0 for x in self.pool.slots()["list"]]

    def _device(self, min_align_mask: int, boundary_mask: int, cpu: int = 0) -> None:
        if min_align_mask == 0 and boundary_mask == U64:
            self.pool.set_device(None, None)
        else:
            self.pool.set_device(min_align_mask=min_align_mask, segment_boundary_mask=boundary_mask)
        self.pool.set_cpu(cpu)

    def _call(self, fn: Any) -> Any:
        try:
            return fn()
        except self.peer.KernelHang:
            self.hangs += 1
            raise Refused(comp.NO_TERMINATION) from None
        except self.peer.KernelBug as e:
            msg = str(e)
            if "nslots" in msg:
                raise Refused("SWIOTLB-find-empty") from None
            if "is_power_of_2" in msg or "boundary" in msg or "max_slots" in msg:
                raise Refused("SWIOTLB-find-boundary-mask") from None
            raise Refused("EINVAL") from None

    def step(self, op: str, args: dict) -> dict:
        a = comp.check_args(comp.SwiotlbRunner.OPS[op], args, op, 64)
        before = self._taken()
        if op == "map":
            alloc_size = a["mapping_size"] if a["alloc_size"] is None else a["alloc_size"]
            if a["orig_addr"] + a["mapping_size"] > self.start:
                raise Refused("EFAULT")               # the bounce would read outside the adapter's memory
            self._device(a["min_align_mask"], a["boundary_mask"], a["cpu"])
            tlb = self._call(lambda: self.pool.map_single(a["orig_addr"], a["mapping_size"], TO_DEVICE,
                                                          alloc_size=alloc_size, alloc_align_mask=a["alloc_align_mask"]))
            if tlb is None:
                raise Refused("EINVAL" if a["mapping_size"] > alloc_size else "ENOMEM")
            self.live.setdefault(tlb, []).append(("map", a["mapping_size"]))
            return {"tlb_addr": tlb, "slot": self._new_slot(before, tlb)}
        if op == "alloc":
            if self.nareas != 1:
                raise Refused("EPERM")                # swiotlb_alloc: restricted (for_alloc) pools only
            self._device(a["min_align_mask"], a["boundary_mask"], a["cpu"])
            addr = self._call(lambda: self.pool.alloc(a["size"]))
            if addr is None:
                raise Refused("ENOMEM")
            self.live.setdefault(addr, []).append(("alloc", a["size"]))
            return {"addr": addr, "slot": self._new_slot(before, addr)}
        tlb = a["tlb_addr"]
        self._device(a["min_align_mask"], U64)
        handed = self.live.get(tlb)
        kind, size = handed[-1] if handed else ("map", a["size"])
        if kind == "alloc":
            ok = self._call(lambda: self.pool.free(tlb, size))
            if not ok:
                raise Refused("EINVAL")
        else:
            if not self.pool.is_buffer(tlb):
                raise Refused("EINVAL")               # dma-direct calls swiotlb only for is_swiotlb_buffer()
            try:
                self._call(lambda: self.pool.unmap_single(tlb, 0, TO_DEVICE))
            except ValueError:
                raise Refused("EINVAL") from None
        if handed:
            handed.pop()
            if not handed:
                del self.live[tlb]
        after = self._taken()
        return {"nslots": sum(1 for b, x in zip(before, after) if b and not x)}

    def _new_slot(self, before: list[bool], addr: int) -> int:
        after = self._taken()
        new = [i for i, (b, x) in enumerate(zip(before, after)) if x and not b]
        return new[0] if new else (addr - self.start) >> 11


def swiotlb_factory(peer: Any, **kw: Any):
    """An ``ImplFactory`` of ``LinuxSwiotlb`` over the ``swiotlb_peer`` module."""
    return lambda header, memory=None: LinuxSwiotlb(peer, header, memory, **kw)


# ------------------------------------------------------------------ rings

def _features(peer: Any, header: dict, packed: bool = False) -> int:
    f = peer.F_VERSION_1
    if (header.get("features") or {}).get("event_idx"):
        f |= peer.F_EVENT_IDX
    if packed:
        f |= peer.F_RING_PACKED
    return f


class _LinuxDriver:
    """virtio_ring.c's driver (split or packed) on the session's ring memory (zero-copy)."""

    packed = False

    def __init__(self, peer: Any, header: dict, memory: bytearray):
        self.peer = peer
        runner = comp.RUNNERS[header["component"]](header, memory)
        self.size = runner.size
        self.mem = peer.GuestMemory(buffer=memory)
        lay = runner.layout
        layout = (dict(desc=lay.desc, driver=lay.driver, device=lay.device) if self.packed
                  else dict(desc=lay.desc, avail=lay.avail, used=lay.used))
        self.drv = peer.Driver(self.mem, self.size, _features(peer, header, self.packed), layout=layout,
                               callback=True, zero=False)

    def _call(self, fn: Any) -> Any:
        try:
            return fn()
        except self.peer.KernelFault:
            raise Refused("EINVAL") from None

    def _add(self, a: dict) -> tuple[int, int]:
        head = self.drv.state()["free_head"]
        rc = self._call(lambda: self.drv.add(list(a["out"]), list(a["in"]), head + 1))
        if rc < 0:
            raise Refused(_errname(rc, "EINVAL"))
        return head, len(a["out"]) + len(a["in"])

    def _get(self) -> dict:
        r = self._call(self.drv.get_buf)
        if r is None:
            raise Refused("EIO" if self.drv.broken else "EAGAIN")
        return {"id": r[0] - 1, "len": r[1]}

    def step(self, op: str, args: dict) -> dict:
        a = comp.check_args(comp.RUNNERS[self.component].OPS[op], args, op, 4096)
        if op in ("add", "add_buf"):
            head, n = self._add(a)
            if self.packed:
                return {"id": head}
            descs, i = [head], head
            for _ in range(n - 1):                    # bound: the chain's length
                i = self.drv.desc_info(i)["next"]
                descs.append(i)
            return {"head": head, "descs": descs}
        if op == "get_used":
            return self._get()
        if op == "kick_prepare":
            return {"kick": self._call(self.drv.kick_prepare)}
        if op == "disable_cb":
            self._call(self.drv.disable_cb)
            return {}
        if op == "enable_cb":
            return {"empty": self._call(self.drv.enable_cb)}
        raise Refused("EINVAL")


class LinuxSplitDriver(_LinuxDriver):
    """virtio_ring.c, split ring: ``split_driver``."""

    component = "split_driver"


class LinuxPackedDriver(_LinuxDriver):
    """virtio_ring.c, packed ring: ``packed_driver``."""

    component = "packed_driver"
    packed = True


class LinuxSplitDevice:
    """vringh.c (user flavour) serving the split ring: ``split_device``. Guest memory is ``guest_size`` bytes
    (vringh refuses a descriptor outside it); its first bytes mirror the session's ring memory."""

    component = "split_device"

    def __init__(self, peer: Any, header: dict, memory: bytearray, *, guest_size: int = 0x400000):
        self.peer, self.memory = peer, memory
        runner = comp.RUNNERS["split_device"](header, memory)
        self.size = runner.size
        self.mem = peer.GuestMemory(max(guest_size, len(memory)))
        lay = runner.layout
        self.dev = peer.Device(self.mem, self.size, _features(peer, header),
                               layout=dict(desc=lay.desc, avail=lay.avail, used=lay.used))

    def _run(self, fn: Any) -> Any:
        n = len(self.memory)
        self.mem.write(0, self.memory)
        try:
            return fn()
        except self.peer.VringhError:
            raise Refused("EIO") from None            # a ring vringh will not serve: the driver's fault (peer)
        except self.peer.KernelFault:
            raise Refused("EIO") from None
        finally:
            self.memory[:] = self.mem.read(0, n)

    def step(self, op: str, args: dict) -> dict:
        a = comp.check_args(comp.SplitDeviceRunner.OPS[op], args, op, 4096)
        d = self.dev
        if op == "pop_avail":
            c = self._run(d.getdesc)
            if c is None:
                raise Refused("EAGAIN")
            return {"head": c.head, "wlen": sum(n for _, n in c.writable)}
        if op == "add_used":
            rc = self._run(lambda: d.complete(a["id"], a["len"]))
            if rc < 0:
                raise Refused(_errname(rc))
            return {}
        if op == "need_notify":
            return {"notify": self._run(d.need_notify)}
        if op == "enable_notify":
            return {"empty": self._run(d.notify_enable)}
        if op == "disable_notify":
            self._run(d.notify_disable)
            return {}
        raise Refused("EINVAL")


def split_driver_factory(peer: Any):
    return lambda header, memory: LinuxSplitDriver(peer, header, memory)


def packed_driver_factory(peer: Any):
    return lambda header, memory: LinuxPackedDriver(peer, header, memory)


def split_device_factory(peer: Any, **kw: Any):
    return lambda header, memory: LinuxSplitDevice(peer, header, memory, **kw)


FACTORIES = {"swiotlb": swiotlb_factory, "split_driver": split_driver_factory,
             "packed_driver": packed_driver_factory, "split_device": split_device_factory}
