"""Register transports: virtio-mmio over a message-queue pair, the Gunyah emulated page, ivshmem2-virtio."""
import struct

import pytest

from t1virtio import errors
from t1virtio.transport import emulated, ivshmem, mmio_msgq, regs
from t1virtio.virtio import features as F
from t1virtio.virtio import status as S

V1 = F.bit(F.VIRTIO_F_VERSION_1)


def _dev():
    return S.VirtioDevice(F.BLK, V1 | F.bit(F.VIRTIO_F_ACCESS_PLATFORM)).state


# ------------------------------------------------------------------ scenarios the mutants name

def wire_accepts_malformed():
    """A request of wire version 9 must be answered MALFORMED with nothing changed."""
    front, back = mmio_msgq.connect(_dev(), (4,))
    s = back.state
    front.requests.send(struct.pack("<BBHHBBI", 9, mmio_msgq.WRITE, 0, regs.STATUS, 4, 0, S.ACKNOWLEDGE))
    back.poll()
    m = mmio_msgq.decode(front.replies.receive()[0], reply=True)
    return "TRANSPORT-WIRE-malformed" if m.result == mmio_msgq.OK or back.state != s else None


def emul_accepts_bad_access():
    """An 8-bit write to the Status register must fault."""
    front, page = emulated.connect(_dev(), (4,))
    try:
        front.write(regs.STATUS, S.ACKNOWLEDGE, width=1)
    except errors.AccessFault:
        return None
    return "TRANSPORT-EMUL-access"


def emul_page_stale():
    """After a trapped Status write the frontend's page shows the new status."""
    front, page = emulated.connect(_dev(), (4,))
    front.write(regs.STATUS, S.ACKNOWLEDGE)
    return None if page.mirror_ok() and front.read(regs.STATUS) == S.ACKNOWLEDGE else "TRANSPORT-EMUL-page-mirror"


def ivshmem_writes_to_dead_peer():
    """A register write while the backend's state is not READY must fail (backend failed)."""
    front, back = ivshmem.connect(_dev(), (4,))
    front.region.state_table[ivshmem.BACKEND] = 0
    try:
        front.write("queue_sel", 0)
    except errors.PeerViolation as e:
        return None if e.clause == "TRANSPORT-IVSHMEM-peer-ready" else e.clause
    return "TRANSPORT-IVSHMEM-peer-ready"


def msgq_ack_clears_unwritten():
    """Over the message queues: both reasons pending, the driver ACKs the used-buffer one; the other stays."""
    front, back = mmio_msgq.connect(_dev(), (4,))
    _init_msgq(front)
    back.raise_interrupt(regs.INT_USED | regs.INT_CONFIG)
    front.write(regs.INTERRUPT_ACK, regs.INT_USED)
    ok = front.read(regs.INTERRUPT_STATUS) == regs.INT_CONFIG and back.state.line
    return None if ok else "TRANSPORT-MMIO-ack-written-only"


def test_scenarios_pass_on_the_model():
    assert [f() for f in (wire_accepts_malformed, emul_accepts_bad_access, emul_page_stale,
                          ivshmem_writes_to_dead_peer, msgq_ack_clears_unwritten)] == [None] * 5


# ------------------------------------------------------------------ mmio over message queues

def _init_msgq(front):
    for v in (1, 3):
        assert front.write(regs.STATUS, v) == mmio_msgq.OK
    front.write(regs.DRIVER_FEATURES_SEL, 1)
    front.write(regs.DRIVER_FEATURES, 1)
    assert front.write(regs.STATUS, 11) == mmio_msgq.OK
    front.write(regs.QUEUE_SEL, 0)
    assert front.read(regs.QUEUE_READY) == 0
    n = front.read(regs.QUEUE_NUM_MAX)
    for off, v in zip(regs.PARAM_OFFSETS, (n, 0x1000, 0, 0x2000, 0, 0x3000, 0)):
        assert front.write(off, v) == mmio_msgq.OK
    assert front.write(regs.QUEUE_READY, 1) == mmio_msgq.OK
    assert front.write(regs.STATUS, 15) == mmio_msgq.OK


def test_msgq_identity_init_notify_interrupt_ack():
    front, back = mmio_msgq.connect(_dev(), (8, 8), config=b"\x10\x20\x30\x40")
    assert front.read(regs.MAGIC_VALUE) == regs.MAGIC and front.read(regs.VERSION) == 2
    assert front.read(regs.DEVICE_ID) == F.BLK.device_id
    _init_msgq(front)
    assert front.write(regs.QUEUE_NUM, 4) == mmio_msgq.REFUSED, "queue frozen while ready"
    assert back.refusals[-1].clause == "TRANSPORT-queue-frozen-while-ready"
    front.notify(0)
    assert back.take_notifications() == [0]
    back.raise_interrupt(regs.INT_USED | regs.INT_CONFIG)
    assert front.take_interrupt() == 3 and front.read(regs.INTERRUPT_STATUS) == 3
    front.write(regs.INTERRUPT_ACK, regs.INT_USED)
    assert back.state.interrupt_status == regs.INT_CONFIG and back.state.line
    assert front.read(regs.CONFIG, 2) == 0x2010
    assert front.write(regs.STATUS, 0) == mmio_msgq.OK
    assert back.state.interrupt_status == 0 and not any(back.state.ready) and not back.state.line


def test_msgq_reply_out_of_order_is_refused():
    front, back = mmio_msgq.connect(_dev(), (4,))
    front.send(mmio_msgq.READ, regs.STATUS)
    front.replies.send(mmio_msgq.Message(mmio_msgq.READ | mmio_msgq.REPLY, 7, regs.STATUS, 4, 0).encode())
    with pytest.raises(errors.PeerViolation, match="TRANSPORT-CHAN-reply-order"):
        front.take_reply()
    with pytest.raises(errors.PeerViolation, match="TRANSPORT-CHAN-busy"):
        front.send(mmio_msgq.READ, regs.STATUS)


def test_msgq_notify_before_driver_ok_is_refused():
    front, back = mmio_msgq.connect(_dev(), (4,))
    front.notify(0)
    assert back.take_notifications() == []
    assert "Device Initialization#notify" in back.refusals[-1].clause


def test_wire_format_is_twelve_little_endian_bytes():
    m = mmio_msgq.Message(mmio_msgq.WRITE, 0x1234, regs.STATUS, 4, 0x0F)
    assert m.encode() == bytes([1, 2, 0x34, 0x12, 0x70, 0, 4, 0, 0x0F, 0, 0, 0])
    assert mmio_msgq.decode(m.encode(), reply=False) == m
    for bad in (m.encode()[:-1], bytes([2]) + m.encode()[1:], m.encode()[:6] + bytes([3]) + m.encode()[7:]):
        with pytest.raises(errors.PeerViolation, match="TRANSPORT-WIRE-malformed"):
            mmio_msgq.decode(bad, reply=False)


# ------------------------------------------------------------------ emulated page

def test_emulated_page_two_phase_reset():
    front, page = emulated.connect(_dev(), (4,))
    for v in (1, 3):
        front.write(regs.STATUS, v)
    assert front.read(regs.STATUS) == 3, "reads hit the page"
    front.write(regs.STATUS, 0)
    assert front.read(regs.STATUS) == 3 | S.DEVICE_NEEDS_RESET and page.state.reset_pending
    assert page.get_notification() == (0, emulated.RESET_RQST)
    with pytest.raises(errors.PeerViolation, match="TRANSPORT-EMUL-reset-wait"):
        front.write(regs.STATUS, 1)
    with pytest.raises(errors.PeerViolation, match="TRANSPORT-EMUL-assert-denied"):
        page.assert_virq(regs.INT_CONFIG)
    page.acknowledge_reset()
    assert front.read(regs.STATUS) == 0 and not page.state.reset_pending
    with pytest.raises(errors.CallerError, match="TRANSPORT-EMUL-ack-unrequested"):
        page.acknowledge_reset()


def test_emulated_page_faults_bad_accesses():
    front, page = emulated.connect(_dev(), (4,))
    for off, width in ((regs.STATUS + 1, 4), (regs.STATUS, 1), (regs.MAGIC_VALUE, 4), (regs.STATUS, 2)):
        with pytest.raises(errors.AccessFault, match="TRANSPORT-EMUL-access"):
            front.write(off, 1, width)
    front.write(regs.CONFIG + 3, 0xAB, 1)
    assert front.read(regs.CONFIG + 3, 1) == 0xAB


# ------------------------------------------------------------------ ivshmem

def test_ivshmem_write_transaction_events_and_generation():
    front, back = ivshmem.connect(_dev(), (4,), config=bytes(8))
    for v in (1, 3):
        front.write("device_status", v)
        assert front.region.get("write_transaction") == 0 and front.read("device_status") == v
    front.write("driver_features_sel", 1)
    front.write("driver_features", 1)
    front.write("device_status", 11)
    front.write("queue_size", 4)
    front.write("queue_desc", 0x1_0000_2000)
    front.write("queue_enable", 1)
    front.write("device_status", 15)
    assert back.state.params[:3] == (4, 0x2000, 1)
    front.notify(0)
    assert back.poll() == [0]
    back.raise_interrupt(regs.INT_USED)
    assert front.take_events() == regs.INT_USED
    back.poll()
    assert back.state.interrupt_status == 0 and not back.state.line
    back.update_config(2, b"\x55")
    assert front.read("config_generation") % 2 == 0 and front.read_config(0, 4) == b"\x00\x00\x55\x00"


def test_ivshmem_probe_needs_a_ready_backend():
    region = ivshmem.SharedRegion()
    with pytest.raises(errors.PeerViolation, match="TRANSPORT-IVSHMEM-peer-ready"):
        ivshmem.IvshmemFrontend(region, None, None)


@pytest.mark.parametrize("name", ["transport_mmio_msgq", "transport_mmio_emul", "transport_ivshmem"])
def test_machine_finds_nothing(name):
    from t1virtio.machines import runner
    res = runner.fuzz(name, examples=60, seed=0)
    assert res.failure is None, res.failure
