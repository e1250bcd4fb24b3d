"""virtio-msg: message table against the draft (facts §5.4), in-order responses, malformed messages dropped."""
import re
import struct
from pathlib import Path

import pytest

from t1virtio import errors
from t1virtio.transport import msg
from t1virtio.virtio import features as F
from t1virtio.virtio import status as S

FACTS = Path(__file__).resolve().parents[2] / "shared" / "facts" / "upstream.md"


def _dev():
    return S.VirtioDevice(F.NET, F.bit(F.VIRTIO_F_VERSION_1)).state


def malformed_accepted():
    """A request with a reserved type bit set must be dropped without effect."""
    front, back = msg.connect(_dev(), (4,))
    data = msg.encode(msg.Msg(0x04, msg.BY_NAME["SET_DEVICE_STATUS"], 1, 0, struct.pack("<I", 1)))
    front.requests.send(data)
    back.poll()
    return None if back.dropped and back.state.dev.status == 0 else "TRANSPORT-MSG-header"


def test_scenario_passes_on_the_model():
    assert malformed_accepted() is None


@pytest.mark.skipif(not FACTS.exists(), reason="facts not available")
def test_message_table_matches_the_draft():
    """Every transport message id and name in facts §5.4 is in MESSAGES, and nothing else."""
    text = FACTS.read_text()
    sec = text[text.index("### 5.4 virtio-msg"):text.index("### 5.5")]
    sec = sec[sec.index("- Transport messages:"):sec.index("- Bus messages:")]
    found = {int(i, 16): n for n, i in re.findall(r"([A-Z_]{4,})\s+(0x[0-9A-F]{2})", sec)}
    assert found == {k: v[0] for k, v in msg.MESSAGES.items()}
    assert msg.HEADER.size == 8 and msg.MIN_MSG_SIZE == 44


def test_init_and_queue_setup_over_messages():
    front, back = msg.connect(_dev(), (4, 8), config=b"\x01\x02\x03\x04")
    info = struct.unpack("<IIIIIHH", front.call("GET_DEVICE_INFO"))
    assert info[0] == F.NET.device_id and info[4] == 2
    for v in (1, 3):
        assert front.call("SET_DEVICE_STATUS", v) == struct.pack("<I", v)
    front.call("SET_DRIVER_FEATURES", 1, 1, tail=struct.pack("<I", 1))
    assert front.call("SET_DEVICE_STATUS", 11) == struct.pack("<I", 11)
    front.call("SET_VQUEUE", 1, 0, 8, 0, 0x1000, 0x2000, 0x3000)
    assert struct.unpack("<IIIIQQQ", front.call("GET_VQUEUE", 1))[:3] == (1, 8, 8)
    front.call("SET_DEVICE_STATUS", 15)
    front.call("SET_VQUEUE", 1, 0, 4, 0, 0, 0, 0)
    assert back.refusals[-1].clause == "TRANSPORT-MSG-queue-live"
    front.call("RESET_VQUEUE", 1)
    front.call("SET_VQUEUE", 1, 0, 4, 0, 0, 0, 0)
    gen = back.state.generation
    assert struct.unpack_from("<III", front.call("SET_CONFIG", gen + 1, 0, 1, tail=b"\x09"))[2] == 0, "stale"
    assert struct.unpack_from("<III", front.call("SET_CONFIG", gen, 0, 1, tail=b"\x09"))[2] == 1
    assert front.call("GET_CONFIG", 0, 2)[12:] == b"\x09\x02"
    front.call("SET_DEVICE_STATUS", 0)
    assert not any(back.state.configured) and back.state.generation == gen + 1


def test_responses_in_order_and_events_unanswered():
    front, back = msg.connect(_dev(), (4,))
    t0 = front.send("GET_DEVICE_STATUS")
    t1 = front.send("GET_DEVICE_INFO")
    assert (t0, t1) == (0, 1)
    back.poll()
    back.poll()
    assert front.take().token == 0 and front.take().token == 1
    front.send("GET_DEVICE_STATUS")
    forged = msg.encode(msg.Msg(msg.TYPE_RESPONSE, msg.BY_NAME["GET_DEVICE_STATUS"], 1, 5, bytes(4)))
    front.responses.send(forged)
    with pytest.raises(errors.PeerViolation, match="TRANSPORT-MSG-in-order"):
        front.take()
    front.send("EVENT_AVAIL", 0, 0)
    back.poll()
    back.poll()
    assert front.responses.state.count == 1, "the event got no response, the request one"


def test_window_full_is_exhausted():
    front, back = msg.connect(_dev(), (4,))
    for _ in range(msg.WINDOW):
        front.send("GET_DEVICE_STATUS")
    with pytest.raises(errors.Exhausted, match="TRANSPORT-MSG-window-full"):
        front.send("GET_DEVICE_STATUS")


def test_machine_finds_nothing():
    from t1virtio.machines import runner
    res = runner.fuzz("transport_msg", examples=60, seed=0)
    assert res.failure is None, res.failure
