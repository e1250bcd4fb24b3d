"""Whole-system mutants: each breaks one system clause; the named scenario or machine must report it."""
from __future__ import annotations

from . import Mutant, patches, replace_fn

SC = "scenario:test_system:"


def _shift(orig, segs, n):
    """The blk backend follows every data segment one region further: outside the region."""
    return [(a + (1 << 30), k) for a, k in orig(segs, n)]


def _unchecked(orig, self, addr, n, what=""):
    return self.base + addr


def _zero_copy(orig, self, b, data):
    """The frontend 'optimises' by sharing the caller's page with the primary instead of bouncing it."""
    from t1virtio.hyp.memory import PRIMARY, RW, Trans
    orig(self, b, data)
    hv, ps = self.system.hv, self.system.hv.preset.page_size
    page = b.orig - b.orig % ps
    try:
        h = hv.mem_share(self.v, page, ps, {self.v: RW, PRIMARY: RW})
        hv.mem_accept(PRIMARY, h, Trans.SHARE, 0x9_0000_0000 + (page - self.ram), RW)
    except Exception:  # noqa: BLE001 - shared already
        pass


def _no_bounce(orig, self, b):
    """The frontend copies the buffer into the region itself, outside the pool, and hands that address."""
    from t1virtio.system import REGION_VA
    scratch = 2048
    if b.dir == 1:
        self.sec.kernel.write(REGION_VA + scratch, self.sec.caller.read(b.orig, b.n))
    b.dma = scratch


def _secret_bounce(orig, self, b):
    """The frontend bounces from the wrong place: the secret page instead of the caller's buffer."""
    if b.dir == 1:
        b.orig = self.sec.secret_at
    return orig(self, b)


def _truncate(orig, self, src, dst, payload):
    return orig(self, src, dst, payload[:-1])


MUTANTS = [
    Mutant("system-backend-outside-region", "SYSTEM-BACKEND-in-region", SC + "backend_stays_in_region",
           "SYSTEM-BACKEND-in-region", replace_fn("t1virtio.backends.blk", "_skip", _shift),
           "synthetic: a backend that follows an address outside its region"),
    Mutant("system-backend-unchecked-outside-window", "SYSTEM-ISOLATION-window", SC + "backend_stays_in_region",
           "SYSTEM-ISOLATION-window",
           patches(replace_fn("t1virtio.backends.blk", "_skip", _shift),
                   replace_fn("t1virtio.backends.context", "DeviceContext.check", _unchecked)),
           "synthetic: the same backend without its context's check: the primary's monitor catches it"),
    Mutant("system-zero-copy-share", "SYSTEM-ISOLATION-private", SC + "private_never_mapped",
           "SYSTEM-ISOLATION-private", replace_fn("t1virtio.system", "Secondary.fill", _zero_copy),
           "synthetic: a frontend sharing private pages with the primary instead of bouncing"),
    Mutant("system-no-bounce", "SYSTEM-BOUNCE-pool", SC + "buffers_are_bounced", "SYSTEM-BOUNCE-pool",
           replace_fn("t1virtio.system.frontend", "Frontend._map", _no_bounce),
           "synthetic: a frontend handing the device a region address that is no pool mapping"),
    Mutant("system-bounce-secret", "SYSTEM-NI-observation", SC + "noninterference", "SYSTEM-NI-observation",
           replace_fn("t1virtio.system.frontend", "Frontend._map", _secret_bounce),
           "synthetic: a frontend bouncing the wrong private bytes (labels off: the twin run catches it)"),
    Mutant("system-blk-no-shape-check", "SYSTEM-BLK-request", SC + "blk_refuses_malformed", "SYSTEM-BLK-request",
           replace_fn("t1virtio.backends.blk", "BlkBackend.shape_ok", lambda orig, self, c: True),
           "synthetic: a blk backend trusting the request's shape"),
    Mutant("system-blk-write-off-by-one", "SYSTEM-BLK-data", SC + "blk_reads_back", "SYSTEM-BLK-data",
           replace_fn("t1virtio.backends.blk", "BlkBackend.store",
                      lambda orig, self, off, data: orig(self, off + 512, data)),
           "synthetic: writes land one sector late"),
    Mutant("system-blk-no-capacity-check", "SYSTEM-BLK-status", SC + "blk_status_beyond_capacity",
           "SYSTEM-BLK-status",
           replace_fn("t1virtio.backends.blk", "BlkBackend.in_range", lambda orig, self, sector, n: n % 512 == 0),
           "synthetic: a blk backend serving requests beyond the capacity"),
    Mutant("system-hub-truncates", "SYSTEM-STREAM-data", SC + "streams_arrive", "SYSTEM-STREAM-data",
           replace_fn("t1virtio.backends.stream", "Hub.send", _truncate), "synthetic: the bridge drops a byte"),
    Mutant("system-lost-kick", "SYSTEM-PROGRESS", SC + "requests_complete", "SYSTEM-PROGRESS",
           replace_fn("t1virtio.system.transport", "ShmDriverTransport.notify", lambda orig, self, q: None),
           "synthetic: QueueNotify never reaches the device (a lost notification)"),
]
