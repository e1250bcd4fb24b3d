"""A backend as its own OS process: the region in real shared memory, notifications over a socket (seed problem 3).

Host side (``RemoteBlk``): the secondary's region pages of the hypervisor model are re-backed by a POSIX
shared-memory segment (``multiprocessing.shared_memory``), so the secondary's frontend, the hypervisor's views
and the backend process all touch the same bytes. The doorbells stay the hypervisor model's: the primary takes
the driver's doorbell flags (as crosvm-gunyah takes them from ``/dev/gh_virtio_backend``) and forwards them on
a socket; the process answers with the interrupt bits to raise, which the primary sends on the driver's
doorbell. Child side (``serve``): ``t1virtio backend blk --image FILE ...`` maps the segment as a ``FlatView``
at local address 0 and runs the very same ``DeviceContext`` + ``DeviceEnd`` + ``BlkBackend`` code.

Protocol, JSON lines: child -> host ``{"ready": 1}``; host -> child ``{"kick": bits, "budget": n}``; child ->
host ``{"irq": bits, "served": n, "live": bool, "broken": clause|null, "writes": [[off, n]...], "log": [...]}``;
host -> child ``{"quit": 1}``.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

from t1virtio.swiotlb.labels import DEVICE, Label

CHILD = "import sys; from t1virtio.cli import app; sys.argv[0] = 't1virtio'; app()"


class _Chan:
    def __init__(self, sock: socket.socket):
        self.sock, self.f = sock, sock.makefile("rwb")

    def send(self, obj: dict) -> None:
        self.f.write(json.dumps(obj).encode() + b"\n")
        self.f.flush()

    def recv(self) -> dict:
        line = self.f.readline()
        if not line:
            raise EOFError("the backend process closed its channel")
        return json.loads(line)


class RemoteBlk:
    """Serve secondary ``v``'s virtio-blk from a separate process over the disk image ``image`` (a path)."""

    def __init__(self, image: str):
        self.image = image
        self.proc: subprocess.Popen | None = None
        self.shm: Any = None
        self.views: list[tuple[int, memoryview]] = []
        self.broken: str | None = None
        self.live = False
        self.log: list = []
        self.served = 0
        self.kicks = 0

    # host side ------------------------------------------------------------------------------
    def attach(self, system: Any, v: int, block: int, bell: Any, width: int, qmax: int) -> "RemoteBlk":
        from multiprocessing import shared_memory
        hv = system.hv
        pri, _, size = hv.shared_region(v)
        ps = hv.preset.page_size
        self.system, self.v, self.bell, self.size = system, v, bell, size
        self.shm = shared_memory.SharedMemory(create=True, size=size)
        for k in range(size // ps):          # re-back the region's physical pages by the segment
            p = hv.tlb[0][(pri + k * ps) // ps][0]
            mv = self.shm.buf[k * ps:(k + 1) * ps]
            mv[:] = hv.pages[p]
            hv.pages[p] = mv
            self.views.append((p, mv))
        host, child = socket.socketpair()
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, "backend", "blk", "--image", self.image,
                                      "--shm", self.shm.name, "--size", str(size), "--block", str(block),
                                      "--width", str(width), "--qmax", str(qmax), "--fd", str(child.fileno())],
                                     pass_fds=(child.fileno(),))
        child.close()
        self.chan = _Chan(host)
        self.chan.recv()                      # ready: the register block is written
        return self

    def step(self, budget: int) -> int:
        bits = self.bell.take()
        if not bits:
            return 0
        self.kicks += 1
        self.chan.send({"kick": bits, "budget": budget})
        r = self.chan.recv()
        self.live, self.broken = r["live"], r["broken"]
        self.log.extend(tuple(x) for x in r["log"])
        self.served += r["served"]
        sh, name = self.system.shadow, f"shared{self.v}"
        if self.system.cfg.labels:
            lab = sh.intern(Label(DEVICE, time=sh.clock))
            for off, n in r["writes"]:
                sh.set(name, off, [lab] * n)
        self.bell.ring(r["irq"])
        return r["served"]

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.chan.send({"quit": 1})
            except OSError:
                pass
            self.proc.wait(timeout=30)
            self.proc = None
        if self.shm is not None:
            hv = self.system.hv
            for p, mv in self.views:
                hv.pages[p] = bytearray(mv)
                mv.release()
            self.views = []
            self.shm.close()
            self.shm.unlink()
            self.shm = None


# child side --------------------------------------------------------------------------------------
class _ChanBell:
    def __init__(self) -> None:
        self.kicks = 0
        self.irq = 0

    def take(self) -> int:
        k, self.kicks = self.kicks, 0
        return k

    def ring(self, bits: int) -> None:
        self.irq |= bits


def serve(image: str, shm_name: str, size: int, block: int, width: int, qmax: int, fd: int) -> int:
    """The backend process: the same device-side model code over real shared memory; returns requests served."""
    import mmap
    from multiprocessing import resource_tracker, shared_memory

    from t1virtio.backends.blk import BlkBackend
    from t1virtio.backends.context import DeviceContext
    from t1virtio.hyp.memview import FlatView
    from t1virtio.system.transport import DeviceEnd
    shm = shared_memory.SharedMemory(name=shm_name)
    try:                                         # the host owns the segment's lifetime
        resource_tracker.unregister(shm._name, "shared_memory")   # noqa: SLF001
    except Exception:  # noqa: BLE001
        pass
    fobj = open(image, "r+b")
    img = mmap.mmap(fobj.fileno(), 0)
    chan = _Chan(socket.socket(fileno=fd))
    view = FlatView(shm.buf)
    bell = _ChanBell()
    ctx = DeviceContext(view, 0, size, lambda q: None)
    be = BlkBackend(img, serial=f"t1virtio-blk-pid{os.getpid()}".encode())
    end = DeviceEnd(be, ctx, block, bell, width, qmax)
    ctx.notify = end._notify
    chan.send({"ready": 1})
    total = 0
    while True:
        try:
            msg = chan.recv()
        except EOFError:
            break
        if msg.get("quit"):
            break
        bell.kicks, bell.irq, ctx.touched = msg["kick"], 0, []
        start = len(be.log)
        n = end.step(msg["budget"])
        total += n
        chan.send({"irq": bell.irq, "served": n, "live": end.live, "broken": end.broken,
                   "writes": ctx.touched, "log": be.log[start:]})
    del view, ctx, end
    img.flush()
    img.close()
    fobj.close()
    shm.close()
    return total
