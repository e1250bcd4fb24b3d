"""Must-not-flag: legal edge cases an over-strict checker would flag are never flagged in legality mode.

Each test names the MAY / SHOULD (NOT) it comes from: a virtio normative block by its label (virtio v1.4,
``facts/virtio-normative.md``), or the freedom a legality rule's docstring gives (``specs/rules``). A SHOULD NOT
is not a MUST NOT: doing it anyway is legal. Every case runs through a live session (the oracle's own peer on
the shared memory) and the trace it wrote is re-checked from the file in legality mode.
"""
import random

import pytest

from t1virtio.hyp.memview import read_le
from t1virtio.oracle import bugs, live
from t1virtio.oracle.check import check_file
from t1virtio.oracle.live import ModelImplementation
from t1virtio.oracle.trace import write
from t1virtio.virtio import packed as pk

SPLIT = "Basic Facilities of a Virtio Device / Virtqueues"
PACKED = "Basic Facilities of a Virtio Device / Packed Virtqueues"


def _session(factory, component, features=None, **sizes):
    h = live.header_for(component, "small", **sizes)
    if features:
        h["features"] = features
    return live.Session(factory, h, "legality")


def _done(s, tmp_path, name):
    """No violation, and the written trace conforms from the file too."""
    assert s.violation is None, s.violation
    p = write(tmp_path / f"{name}.jsonl", s.header, s.steps)
    rep = check_file(p, "legality")
    assert rep.ok, rep.violation
    return rep


def _act(s, *acts):
    act, _ = live.ACTIONS[s.header["component"]]
    for a in acts:
        assert act(s, a), s.violation


# ------------------------------------------------------------------ split device (the driver is honest)

def test_device_completes_out_of_order(tmp_path):
    """MAY: without VIRTIO_F_IN_ORDER the device uses buffers in any order (Basic Facilities of a Virtio Device / Virtqueues / In-order, 2.7.9: only
    IN_ORDER binds the order)."""
    s = _session(live.model_factory, "split_device")
    _act(s, (3, 0, 10), (3, 1, 10), (3, 2, 10), (0, 0, 0), (0, 0, 0), (0, 0, 0))
    for head in (2, 0, 1):
        assert s.call("add_used", {"id": head, "len": 1}), s.violation
    _done(s, tmp_path, "ooo")


@pytest.mark.parametrize("length", [0, 1])
def test_device_used_len_below_writable(length, tmp_path):
    """MAY: 'the device MAY write more than len bytes' — len under-estimates (Basic Facilities of a Virtio Device / Virtqueues / The Virtqueue Used Ring,
    device, 2.7.8.2#2); len 0 for a writable buffer is the extreme case."""
    s = _session(live.model_factory, "split_device")
    _act(s, (3, 0, 40), (0, 0, 0))
    assert s.call("add_used", {"id": 0, "len": length}), s.violation
    _done(s, tmp_path, f"len{length}")


def test_device_zero_length_descriptor(tmp_path):
    """MAY/freedom: the device makes no assumption about how descriptors frame a message (Basic Facilities of a Virtio Device / Message
    Framing, device); a zero-length descriptor is no violation of any MUST (only a device's own cap, 2.7.4.1 MAY)."""
    s = _session(live.model_factory, "split_device")
    _act(s, (5, 0, 0))                     # shape 0, (y >> 4) & 1 == 0: a well-formed zero-length descriptor
    assert s.call("pop_avail", {}), s.violation
    assert s.call("add_used", {"id": 0, "len": 0}), s.violation
    _done(s, tmp_path, "zero-desc")


class AlwaysNotifies(bugs.Wrapped):
    """A device that notifies after every use, even when the driver asked it not to."""

    def patch(self, op, a):
        if op in ("need_notify",):
            ModelImplementation.step(self, op, a)
            return {"notify": True}
        return None


def test_device_spurious_notification_with_no_interrupt(tmp_path):
    """SHOULD NOT: with VRING_AVAIL_F_NO_INTERRUPT set the device SHOULD NOT notify (Basic Facilities of a Virtio Device / Virtqueues / Used Buffer
    Notification Suppression, device): notifying anyway is legal (the driver MUST handle spurious ones)."""
    s = _session(AlwaysNotifies, "split_device")
    _act(s, (3, 0, 10), (0, 0, 0), (1, 0, 1))
    assert s.write([(s.checker.runner.layout.avail, (1).to_bytes(2, "little"))])    # NO_INTERRUPT
    assert s.call("need_notify", {}), s.violation
    assert s.call("need_notify", {}), s.violation                                   # nothing new: still legal
    _done(s, tmp_path, "spurious-notify")


@pytest.mark.parametrize("used_event", [0, 1, 2, 0x7FFF, 0xFFFF])
def test_device_event_idx_used_event_anywhere(used_event, tmp_path):
    """MAY: with EVENT_IDX the driver MAY use used_event with any value (Basic Facilities of a Virtio Device / Virtqueues / Used Buffer Notification
    Suppression, driver: 'MAY use used_event'); the device's decision follows it, spurious ones are allowed."""
    s = _session(AlwaysNotifies, "split_device", features={"event_idx": True})
    lay = s.checker.runner.layout
    assert s.write([(lay.used_event(), used_event.to_bytes(2, "little"))])
    _act(s, (3, 0, 10), (3, 1, 10), (0, 0, 0), (0, 0, 0), (1, 0, 1), (2, 0, 0), (1, 0, 1), (2, 0, 0))
    _done(s, tmp_path, f"used-event-{used_event}")


def test_device_disables_and_reenables_kicks(tmp_path):
    """MAY: the device MAY set VRING_USED_F_NO_NOTIFY / use avail_event (Basic Facilities of a Virtio Device / Virtqueues / Available Buffer Notification
    Suppression, device); disabling and re-enabling is never a violation."""
    s = _session(live.model_factory, "split_device")
    for op in ("disable_notify", "enable_notify", "disable_notify", "disable_notify", "enable_notify"):
        assert s.call(op, {}), s.violation
    _act(s, (3, 0, 10), (0, 0, 0))
    assert s.call("enable_notify", {}), s.violation
    _done(s, tmp_path, "dev-notify-toggle")


def test_device_holds_every_buffer_then_drains(tmp_path):
    """Freedom of rule_pop_avail / rule_add_used: the device MAY hold up to the queue size buffers at once and
    complete them whenever (no time bound in any MUST)."""
    s = _session(live.model_factory, "split_device")
    _act(s, *[(3, k, 10) for k in range(4)], *[(0, 0, 0)] * 4)
    for head in (3, 1, 0, 2):
        assert s.call("add_used", {"id": head, "len": 0}), s.violation
    _done(s, tmp_path, "hold-all")


# ------------------------------------------------------------------ split driver (the device is honest)

class AlwaysKicks(bugs.Wrapped):
    def patch(self, op, a):
        if op == "kick_prepare":
            ModelImplementation.step(self, op, a)
            return {"kick": True}
        return None


def test_driver_spurious_kick_with_no_notify(tmp_path):
    """SHOULD NOT: with VRING_USED_F_NO_NOTIFY the driver SHOULD NOT notify (Basic Facilities of a Virtio Device / Virtqueues / Available Buffer
    Notification Suppression, driver): kicking anyway, even with nothing new, is legal."""
    s = _session(AlwaysKicks, "split_driver")
    assert s.write([(s.checker.runner.layout.used, (1).to_bytes(2, "little"))])     # NO_NOTIFY
    _act(s, (0, 0, 0), (2, 0, 0), (2, 0, 0), (0, 1, 1), (2, 0, 0))
    _done(s, tmp_path, "spurious-kick")


@pytest.mark.parametrize("avail_event", [0, 1, 3, 0x8000, 0xFFFF])
def test_driver_event_idx_avail_event_anywhere(avail_event, tmp_path):
    """MAY: with EVENT_IDX the device MAY use avail_event with any value (Basic Facilities of a Virtio Device / Virtqueues / Available Buffer Notification
    Suppression, device: 'MAY use avail_event'); a kick where none was asked is legal (SHOULD NOT)."""
    s = _session(AlwaysKicks, "split_driver", features={"event_idx": True})
    assert s.write([(s.checker.runner.layout.avail_event(), avail_event.to_bytes(2, "little"))])
    _act(s, (0, 0, 0), (2, 0, 0), (0, 1, 1), (0, 2, 2), (2, 0, 0), (3, 0, 5), (1, 0, 0), (2, 0, 0))
    _done(s, tmp_path, f"avail-event-{avail_event}")


def test_driver_disables_callbacks(tmp_path):
    """MAY: the driver MAY set VRING_AVAIL_F_NO_INTERRUPT / used_event (Basic Facilities of a Virtio Device / Virtqueues / Used Buffer Notification
    Suppression, driver), and re-enable (enable_cb says whether buffers are pending)."""
    s = _session(live.model_factory, "split_driver")
    _act(s, (0, 0, 0), (3, 0, 5))
    for op in ("disable_cb", "disable_cb", "enable_cb", "disable_cb"):
        assert s.call(op, {}), s.violation
    _act(s, (1, 0, 0))
    assert s.call("enable_cb", {}), s.violation
    _done(s, tmp_path, "cb-toggle")


def test_driver_zero_length_buffer(tmp_path):
    """Freedom of rule_add_buf ('well formed'): a zero-length device-readable element is a well-formed buffer;
    the device then reports len 0 (The Virtqueue Used Ring: len counts bytes written)."""
    s = _session(live.model_factory, "split_driver")
    assert s.call("add_buf", {"out": [[0x100000, 0]], "in": []}), s.violation
    _act(s, (2, 0, 0), (3, 0, 0), (1, 0, 0))
    _done(s, tmp_path, "zero-buf")


class TopDescriptorsDriver(ModelImplementation):
    """A split driver that takes the highest free descriptors (Linux takes its free list from the head)."""

    def step(self, op, a):
        if op == "add_buf":
            r = self.runner
            n = len(a.get("out", [])) + len(a.get("in", []))
            free = [i for i in range(r.size - 1, -1, -1) if not r.obj.state.in_use[i]]
            if 1 <= n <= len(free):
                descs = free[:n]
                r._force({"head": descs[0], "descs": descs}, n)
        return ModelImplementation.step(self, op, a)


def test_driver_other_free_descriptors(tmp_path):
    """Freedom of rule_add_buf_moves_chosen_descriptors: any free descriptors may carry the buffer (the free
    list order is Linux's choice; exact mode flags it, legality never)."""
    r = live.check(TopDescriptorsDriver, "split_driver", max_examples=30)
    assert r.steps > 0
    s = _session(TopDescriptorsDriver, "split_driver")
    _act(s, (0, 1, 1), (0, 0, 0), (3, 0, 5), (1, 0, 0), (0, 1, 1))
    assert s.steps[0]["result"]["head"] == 3
    _done(s, tmp_path, "top-descs")


# ------------------------------------------------------------------ packed

def test_packed_device_completes_out_of_order(tmp_path):
    """MAY: the device MAY reorder the used descriptors it writes (Basic Facilities of a Virtio Device / Packed Virtqueues, device 2.8.12#2: 'start writing
    used descriptors in completion order', completion in any order without IN_ORDER)."""
    s = _session(live.model_factory, "packed_device")
    _act(s, (3, 0, 10), (3, 1, 10), (0, 0, 0), (0, 0, 0))     # two buffers of two descriptors: the whole ring
    held = [st["result"]["id"] for st in s.steps if st["op"] == "pop"]
    assert len(held) == 2
    for i in reversed(held):
        assert s.call("push_used", {"id": i, "len": 0}), s.violation
    _done(s, tmp_path, "packed-ooo")


class PackedHighIds(ModelImplementation):
    """A packed driver that hands out the highest free buffer id (Linux: its free list from 0)."""

    def step(self, op, a):
        if op == "add":
            d = self.runner.obj
            free = [i for i in range(self.runner.size - 1, -1, -1) if not d.state.ndesc[i]]
            if free:
                d.free_head = free[0]
        return ModelImplementation.step(self, op, a)


def test_packed_driver_any_free_id(tmp_path):
    """Freedom of rule_add_publishes ('a free id'): Buffer IDs are the driver's to pick among the unused
    (Basic Facilities of a Virtio Device / Packed Virtqueues / The Virtqueue Descriptor Table: the id is opaque to the device)."""
    s = _session(PackedHighIds, "packed_driver")
    _act(s, (0, 0, 0), (0, 1, 1), (3, 0, 5), (1, 0, 0), (0, 2, 2), (3, 0, 5), (1, 0, 0))
    assert s.steps[0]["result"]["id"] == 3
    _done(s, tmp_path, "packed-ids")


class PackedNotifyUnlessDisabled(bugs.Wrapped):
    """A packed device that notifies after every use unless the driver DISABLEd events."""

    def patch(self, op, a):
        if op == "need_notify":
            r = self.runner
            flags = read_le(r.mem, r.layout.driver + 2, 2) & 3
            ModelImplementation.step(self, op, a)
            return {"notify": flags != pk.RING_EVENT_FLAGS_DISABLE}
        return None


def test_packed_device_spurious_notification_under_desc(tmp_path):
    """SHOULD NOT: under RING_EVENT_FLAGS_DESC a notification before the named descriptor is unrequested, not
    forbidden (rule_notify_by_event: 'one otherwise unless DESC names a position not used')."""
    s = _session(PackedNotifyUnlessDisabled, "packed_device", features={"event_idx": True})
    lay = s.checker.runner.layout
    assert s.write([(lay.driver, (3).to_bytes(2, "little") + pk.RING_EVENT_FLAGS_DESC.to_bytes(2, "little"))])
    _act(s, (3, 0, 10), (0, 0, 0), (1, 0, 1), (2, 0, 0), (2, 0, 0))
    _done(s, tmp_path, "packed-spurious")


def test_packed_device_event_modes(tmp_path):
    """MAY: the device MAY publish any of ENABLE, DISABLE, DESC (with EVENT_IDX) in its event suppression
    structure (Basic Facilities of a Virtio Device / Packed Virtqueues / event suppression, 2.8.10)."""
    s = _session(live.model_factory, "packed_device", features={"event_idx": True})
    for mode in (1, 0, 2, 2, 0):
        assert s.call("set_event", {"mode": mode}), s.violation
    _done(s, tmp_path, "packed-modes")


# ------------------------------------------------------------------ swiotlb

class RandomFitPool(bugs.FirstFitPool):
    """Any free, aligned, in-segment, in-window run, chosen at random (seeded)."""

    def candidates(self, n):
        c = list(range(self.r.nslabs))
        random.Random(len(self.r.allocs) * 7919 + n).shuffle(c)
        return c


class AreaTwoFirstPool(bugs.FirstFitPool):
    """Searches the second area first (a per-CPU area choice other than Linux's)."""

    def candidates(self, n):
        half = self.r.nslabs // 2
        return list(range(half, self.r.nslabs)) + list(range(half))


class SometimesFullPool(bugs.FirstFitPool):
    """Refuses every third search as exhausted, even with room (a bounded search giving up)."""

    def __init__(self, header, memory=None):
        super().__init__(header, memory)
        self.k = 0

    def step(self, op, a):
        if op in ("map", "alloc"):
            self.k += 1
            if self.k % 3 == 0:
                from t1virtio.oracle.live import Refused
                raise Refused("ENOMEM")
        return bugs.FirstFitPool.step(self, op, a)


@pytest.mark.parametrize("impl", [bugs.LastFitPool, bugs.FirstFitPool, RandomFitPool], ids=lambda c: c.__name__)
def test_swiotlb_any_free_aligned_run(impl):
    """Freedom of rule_find_takes_free_run / rule_find_alignment / rule_find_in_window: any free run of one
    segment with the request's alignment and window is legal (Linux's walk order is exact-mode policy)."""
    assert live.check(impl, "swiotlb", max_examples=40).examples >= 40


def test_swiotlb_any_area():
    """Freedom of rule_find_takes_free_run ('one segment/area'): any area may serve a request, not only the
    CPU's own (Linux picks by CPU, then walks the others)."""
    h = live.header_for("swiotlb", "small", nareas=2)
    assert live.check(AreaTwoFirstPool, "swiotlb", max_examples=40, header=h).examples >= 40


def test_swiotlb_exhausted_refusal_with_room():
    """Legality rules, module docstring: 'a refusal is legal unless the operation was one that MUST succeed' —
    a search may fail (ENOMEM) with free slots left (Linux's area walk does)."""
    assert live.check(SometimesFullPool, "swiotlb", max_examples=40).examples >= 40


# ------------------------------------------------------------------ msgq

def test_msgq_message_of_exactly_max_size(tmp_path):
    """HYP-MSGQ-size is 'size <= max_size': the boundary itself is legal (an off-by-one checker flags it)."""
    s = _session(live.model_factory, "msgq")
    m = s.header["start"]["max_size"]
    assert s.call("send", {"hex": "ab" * m, "push": True}), s.violation
    assert s.call("receive", {"bufsize": m}), s.violation
    _done(s, tmp_path, "msgq-max")


def test_msgq_fill_drain_flush_interleaved(tmp_path):
    """Freedom of rule_send / rule_receive / rule_flush: a full queue refuses (exhausted), an empty one too;
    flush on an empty queue is accepted; not_full is false exactly at the depth."""
    s = _session(live.model_factory, "msgq")
    _act(s, (2, 0, 0), *[(0, k, k) for k in range(5)], (1, 0, 0), (0, 3, 3), (1, 0, 0), (2, 0, 0), (1, 0, 0), (2, 0, 0))
    _done(s, tmp_path, "msgq-fill")
