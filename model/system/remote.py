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
        """The system's own transport: the process runs ``DeviceEnd`` over the register block at ``block``."""
        self.bell = bell
        self._spawn(system, v, block, width, qmax)
        return self

    # a transport of model/transport/ (system/adapters.py): the primary runs the transport's device side, the
    # process only the queues; ``RemoteBlk`` stands for the backend there (same queues, features, config)
    QUEUES = ("requestq",)

    @property
    def DEVICE(self) -> Any:            # noqa: N802 - the backend attribute it stands for
        from t1virtio.backends.blk import BlkBackend
        return BlkBackend.DEVICE

    @property
    def FEATURES(self) -> int:          # noqa: N802
        from t1virtio.backends.blk import BlkBackend
        return BlkBackend.FEATURES

    def attach_queues(self, system: Any, v: int) -> "RemoteBlk":
        from t1virtio.backends.context import DeviceContext
        self._spawn(system, v, -1, system.hyp_preset.doorbell_bits, system.cfg.pool_preset.queue_size)
        pri, _, size = system.hv.shared_region(v)
        self.ctx = DeviceContext(system.hv.view(0), pri, size, lambda q: None)
        self.refused: list[str] = []
        return self

    def config(self) -> bytes:
        return self._config

    def remote_queues(self, raise_used: Any) -> "RemoteQueues":
        return RemoteQueues(self, raise_used)

    def _spawn(self, system: Any, v: int, block: int, width: int, qmax: int) -> None:
        from multiprocessing import shared_memory
        hv = system.hv
        pri, _, size = hv.shared_region(v)
        ps = hv.preset.page_size
        self.system, self.v, self.size = system, v, size
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
        ready = self.chan.recv()              # ready: the register block is written (or the config reported)
        self._config = bytes.fromhex(ready.get("config", ""))

    def _answer(self, r: dict) -> None:
        self.live, self.broken = r["live"], r["broken"]
        self.log.extend(tuple(x) for x in r["log"])
        self.served += r["served"]
        sh, name = self.system.shadow, f"shared{self.v}"
        if self.system.cfg.labels:
            lab = sh.intern(Label(DEVICE, time=sh.clock))
            for off, n in r["writes"]:
                sh.set(name, off, [lab] * n)

    def step(self, budget: int) -> int:
        bits = self.bell.take()
        if not bits:
            return 0
        self.kicks += 1
        self.chan.send({"kick": bits, "budget": budget})
        r = self.chan.recv()
        self._answer(r)
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


class RemoteQueues:
    """``adapters.Queues`` for a backend process: the queue parameters go to the process at DRIVER_OK, kicks and
    budgets per step; the used-buffer interrupts it reports are raised through the transport (``raise_used``)."""

    def __init__(self, remote: RemoteBlk, raise_used: Any):
        self.remote, self.raise_used = remote, raise_used
        self.live = False
        self.pending = 0

    def start(self, params: list) -> None:
        self.remote.chan.send({"start": [[int(x) for x in p] for p in params]})
        self.remote._answer(self.remote.chan.recv())
        self.live = True

    def stop(self) -> None:
        self.remote.chan.send({"stop": 1})
        self.remote._answer(self.remote.chan.recv())
        self.live, self.pending = False, 0

    def serve(self, bits: int, budget: int) -> int:
        self.pending |= bits
        if not self.live or not self.pending:
            return 0
        self.remote.kicks += 1
        self.remote.chan.send({"kick": self.pending, "budget": budget})
        r = self.remote.chan.recv()
        self.remote._answer(r)
        if r["served"] < budget:
            self.pending = 0
        for q in range(len(RemoteBlk.QUEUES)):                 # bounded: the device's queues
            if r["irq"] >> q & 1:
                self.raise_used(q)
        return r["served"]


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
    if block >= 0:                               # the system's own transport: the register block in the region
        end = DeviceEnd(be, ctx, block, bell, width, qmax)
        ctx.notify = end._notify
        chan.send({"ready": 1})
    else:                                        # another transport: the primary sends the queue parameters
        from t1virtio.system.adapters import Queues
        end = Queues(be, ctx, qmax, lambda q: bell.ring(1 << q))
        end.broken = None
        chan.send({"ready": 1, "config": be.config().hex()})
    total = 0
    while True:
        try:
            msg = chan.recv()
        except EOFError:
            break
        if msg.get("quit"):
            break
        bell.kicks, bell.irq, ctx.touched = msg.get("kick", 0), 0, []
        start = len(be.log)
        if block >= 0:
            n = end.step(msg["budget"])
        elif "start" in msg:
            end.start([tuple(p) for p in msg["start"]])
            n = 0
        elif "stop" in msg:
            end.stop()
            n = 0
        else:
            n = end.serve(bell.take(), msg["budget"])
        total += n
        chan.send({"irq": bell.irq, "served": n, "live": end.live, "broken": end.broken,
                   "writes": ctx.touched, "log": be.log[start:]})
    del view, ctx, end
    img.flush()
    img.close()
    fobj.close()
    shm.close()
    return total
