"""Backends alone: a device context over a flat buffer (no hypervisor, no transport) and a split driver on the same bytes."""
import struct

import pytest

from t1virtio import errors
from t1virtio.backends.blk import S_IOERR, S_OK, S_UNSUPP, BlkBackend
from t1virtio.backends.context import DeviceContext
from t1virtio.backends.stream import Hub, NetBackend, RngBackend
from t1virtio.hyp.memview import FlatView
from t1virtio.virtio import split

REGION = 64 * 1024


def rig(backend, nq=1):
    mem = FlatView(REGION)
    ctx = DeviceContext(mem, 0, REGION, lambda q: None)
    backend.attach(ctx)
    drivers = []
    for q in range(nq):
        lay = split.compute_layout(8, base=q * 8192)
        drivers.append(split.SplitDriver(mem, lay))
        ctx.queues.append(split.SplitDevice(mem, lay, in_region=ctx.in_region, to_local=ctx.to_local))
    return mem, ctx, drivers


def blk_req(mem, drv, typ, sector, data=b"", nin=0, at=0x8000):
    mem.write(at, struct.pack("<IIQ", typ, 0, sector) + data)
    outs = [(at, 16)] + ([(at + 16, len(data))] if data else [])
    ins = ([(at + 0x1000, nin)] if nin else []) + [(at + 0x2000, 1)]
    drv.add_buf(outs, ins, typ)


def test_blk_write_read_flush_id_and_errors():
    be = BlkBackend(bytearray(16 * 512), serial=b"disk0")
    mem, ctx, (drv,) = rig(be)
    blk_req(mem, drv, 1, 2, b"A" * 1024)
    be.serve(8)
    assert drv.get_buf()[1] == 1 and mem.read(0xA000, 1)[0] == S_OK
    blk_req(mem, drv, 0, 2, nin=1024)
    be.serve(8)
    assert drv.get_buf()[1] == 1025 and mem.read(0x9000, 1024) == b"A" * 1024
    for typ, sector, nin, want in ((0, 15, 1024, S_IOERR), (0, 0, 100, S_IOERR), (4, 0, 0, S_OK), (8, 0, 20, S_OK),
                                   (99, 0, 0, S_UNSUPP)):
        blk_req(mem, drv, typ, sector, nin=nin)
        be.serve(8)
        drv.get_buf()
        assert mem.read(0xA000, 1)[0] == want, (typ, sector)
    assert mem.read(0x9000, 5) == b"disk0" and be.flushes == 1


def test_blk_refuses_a_request_without_status_byte():
    be = BlkBackend(bytearray(8 * 512))
    mem, ctx, (drv,) = rig(be)
    mem.write(0x8000, struct.pack("<IIQ", 1, 0, 0))
    drv.add_buf([(0x8000, 16)], [], "bad")
    be.serve(8)
    assert be.refused == ["SYSTEM-BLK-request"] and drv.get_buf()[1] == 0


def test_context_refuses_outside_region():
    ctx = DeviceContext(FlatView(REGION), 0, REGION, lambda q: None)
    with pytest.raises(errors.PeerViolation, match="SYSTEM-BACKEND-in-region"):
        ctx.read(REGION - 4, 8)
    with pytest.raises(errors.PeerViolation, match="SYSTEM-BACKEND-in-region"):
        ctx.write(-1, b"x")


def test_net_bridges_and_rng_fills():
    hub = Hub()
    a, b = NetBackend(hub, b"\x02" * 6), NetBackend(hub, b"\x03" * 6)
    mem_a, _, (rx_a, tx_a) = rig(a, 2)
    mem_b, _, (rx_b, tx_b) = rig(b, 2)
    rx_b.add_buf([], [(0x8000, 1526)], "rx")
    frame = b"\x03" * 6 + b"\x02" * 6 + b"\x88\xb5" + b"hello"
    mem_a.write(0x9000, bytes(12) + frame)
    tx_a.add_buf([(0x9000, 12 + len(frame))], [], "tx")
    a.serve(8)
    assert b.pump(8) == 1
    tok, n = rx_b.get_buf()
    assert mem_b.read(0x8000 + 12, n - 12) == frame
    r = RngBackend(seed=1)
    mem, _, (q,) = rig(r)
    q.add_buf([], [(0x8000, 64)], "rng")
    r.serve(8)
    assert q.get_buf()[1] == 64 and any(mem.read(0x8000, 64))
