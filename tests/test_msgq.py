"""Message-queue scenarios on the concrete model (Gunyah msgqueue; facts §3.0, §3.1, §6.4; issue 9)."""
import pytest

from t1virtio import errors
from t1virtio.hyp.memory import RAM_IPA, Hypervisor, Layout, Rights, Trans
from t1virtio.hyp.doorbell import Doorbell
from t1virtio.hyp.msgq import DEPTH, KEEP, MessageQueue, Vic
from t1virtio.preset import SMALL
from t1virtio.specs import invariants

PS = SMALL.page_size


def _queue(depth=4, max_size=8, bind=True):
    q = MessageQueue(SMALL, depth, max_size)
    if bind:
        q.bind("tx")
        q.bind("rx")
    return q


def _raises(cls, clause, fn, *a, **k):
    with pytest.raises(cls) as e:
        fn(*a, **k)
    assert e.value.clause == clause, e.value
    return e.value


def test_configure_receive_keep_does_not_lose_a_push_wakeup():
    """Issue 9: -1 means no change; a line a PUSH raised below the threshold stays raised."""
    q = _queue()
    q.configure_receive(3)
    q.send(b"a", push=True)
    assert q.pending("rx")
    before = q.state
    q.configure_receive(KEEP)
    assert q.state == before and q.pending("rx")
    q.configure_send(KEEP)
    assert q.state == before
    invariants.check("msgq", q.state)


def test_configure_receive_depth_re_evaluates():
    """-2 stores depth and re-evaluates the line (documented; @36ca3a2's code does not re-evaluate)."""
    q = _queue()
    q.configure_receive(3)
    q.send(b"a", push=True)
    q.configure_receive(DEPTH)
    assert q.state.notempty_thd == 4 and not q.pending("rx")


def test_holdoff_other_than_default_is_unimplemented_before_any_other_check():
    q = MessageQueue(SMALL)                      # INIT: every other check would fail too
    e = _raises(errors.CallerError, "HYP-MSGQ-holdoff", q.configure_send, 99, holdoff=0)
    assert "UNIMPLEMENTED" in str(e)
    _raises(errors.CallerError, "HYP-MSGQ-holdoff", q.configure_receive, 1, holdoff=5)
    q = _queue()
    q.configure_receive(2, holdoff=-1)
    assert q.state.notempty_thd == 2


def test_lifecycle_errors():
    q = MessageQueue(SMALL)
    assert "OBJECT_STATE" in str(_raises(errors.CallerError, "HYP-MSGQ-object-state", q.send, b"x"))
    assert "OBJECT_CONFIG" in str(_raises(errors.CallerError, "HYP-MSGQ-object-config", q.activate))
    _raises(errors.CallerError, "HYP-MSGQ-configure", q.configure, 0, 8)
    _raises(errors.CallerError, "HYP-MSGQ-configure", q.configure, 4, SMALL.msgq_max_msg_size + 1)
    _raises(errors.CallerError, "HYP-MSGQ-object-state", q.bind, "rx")
    q.configure(2, 8)
    q.configure(3, 8)                            # INIT may be configured again
    q.activate()
    assert (q.state.depth, q.state.notfull_thd, q.state.notempty_thd) == (3, 2, 1)
    _raises(errors.CallerError, "HYP-MSGQ-object-state", q.configure, 2, 8)
    _raises(errors.CallerError, "HYP-MSGQ-object-state", q.activate)
    q.bind("rx")
    q.send(b"x")
    q.destroy()
    s = q.state
    assert s.count == 0 and not s.rx.bound and not s.tx.bound
    for call in (lambda: q.send(b"y"), q.receive, q.flush, q.destroy, lambda: q.configure_receive(1)):
        _raises(errors.CallerError, "HYP-MSGQ-object-state", call)
    invariants.check("msgq", q.state)


def _vm_with_read_only_page():
    """VM 1's private page is readable and writable; VM 0 lends its page to VM 1 read-only at 0x2_0000_0000."""
    hv = Hypervisor(SMALL, Layout(private=(1, 1, 1), shared=(0, 1, 0)))
    h = hv.mem_lend(0, RAM_IPA, PS, {1: int(Rights.R)})
    hv.mem_accept(1, h, Trans.LEND, 0x2_0000_0000, int(Rights.R))
    return hv, hv.view(1), 0x2_0000_0000


def test_copy_faults_on_the_callers_buffer_are_addr_invalid():
    hv, view, ro = _vm_with_read_only_page()
    q = _queue()
    view.write(RAM_IPA, b"hello")
    e = _raises(errors.AccessFault, "HYP-MSGQ-send-fault", q.send_from, view, 0x3_0000_0000, 5)   # unmapped
    assert "ADDR_INVALID" in str(e) and q.state.count == 0
    _raises(errors.AccessFault, "HYP-MSGQ-send-fault", q.send_from, view, RAM_IPA + PS - 2, 5)     # runs off the page
    assert q.send_from(view, RAM_IPA, 5)
    assert q.send_from(view, ro, 3)                                  # read-only is enough to send
    before = q.state
    _raises(errors.AccessFault, "HYP-MSGQ-receive-fault", q.receive_into, view, ro, 8)             # no write right
    _raises(errors.AccessFault, "HYP-MSGQ-receive-fault", q.receive_into, view, 0x3_0000_0000, 8)  # unmapped
    assert q.state == before                                         # the message stays queued
    assert q.receive_into(view, RAM_IPA + 100, 8) == (b"hello", True)
    assert view.read(RAM_IPA + 100, 5) == b"hello"
    # a short buffer is ADDR_OVERFLOW before any copy is tried
    _raises(errors.CallerError, "HYP-MSGQ-overflow", q.receive_into, view, ro, 2)


def test_a_receive_line_bound_late_is_not_signalled():
    """vic_bind_shared starts the line unasserted; a send above the threshold does not assert it, PUSH does."""
    q = _queue(bind=False)
    q.send(b"a")
    q.send(b"b")
    q.bind("rx")
    assert not q.pending("rx") and q.state.rx.unsignalled
    q.send(b"c")                                 # count 3 > notempty_thd 1: no assertion (count == thd only)
    assert not q.pending("rx")
    invariants.check("msgq", q.state)
    q.send(b"d", push=True)
    assert q.pending("rx") and not q.state.rx.unsignalled
    _raises(errors.CallerError, "HYP-MSGQ-virq-bound", q.bind, "rx")


def test_eoi_runs_check_pending_again():
    q = _queue()
    q.send(b"a")
    q.send(b"b")
    assert q.deliver("rx") and not q.deliver("rx")
    q.receive()
    assert q.eoi("rx") and q.pending("rx")       # one message left: count >= notempty_thd
    assert q.deliver("rx")
    q.receive()
    assert q.eoi("rx") and not q.pending("rx")   # empty: check_pending false, the level drops at EOI


def test_lazy_receive_line_stays_until_eoi():
    """A PUSH below the threshold raises the line; the receive that empties the queue does not lower it."""
    q = _queue()
    q.configure_receive(2)
    q.send(b"a", push=True)
    q.receive()
    assert q.pending("rx")                       # lazy: only check_pending at EOI lowers it
    assert q.deliver("rx") and q.eoi("rx") and not q.pending("rx")


def test_send_line_asserted_when_count_drops_to_threshold():
    q = _queue(depth=2)
    assert not q.pending("tx") and q.state.tx.unsignalled    # bound on an empty queue: not signalled
    q.send(b"a")
    q.send(b"b")
    q.receive()                                  # count 1 == notfull_thd 1: asserted
    assert q.pending("tx") and not q.state.tx.unsignalled


def test_flush_of_an_empty_queue_touches_no_line():
    q = _queue()
    q.configure_receive(2)
    q.send(b"a", push=True)
    q.receive()
    before = q.state
    q.flush()
    assert q.state.rx == before.rx and q.state.tx == before.tx
    q.send(b"b")
    q.flush()
    assert not q.state.rx.level


def test_line_virq_numbers_are_checked_like_the_doorbells():
    """vic_bind_shared, in its order: VIRQ_BOUND, ARGUMENT_INVALID (no such SPI), BUSY (the number has a source)."""
    vic = Vic(first=32, count=4)
    q = MessageQueue(SMALL, 4, 8, vic)
    q.bind("tx", 32)
    assert q.state.tx.virq == 32 and vic.sources == {32: q.owners["tx"]}
    e = _raises(errors.CallerError, "HYP-MSGQ-virq-busy", q.bind, "rx", 32)     # the other line's number
    assert "BUSY" in str(e) and not q.state.rx.bound
    for missing in (31, 36, -1, 0):
        assert "ARGUMENT_INVALID" in str(_raises(errors.CallerError, "HYP-MSGQ-virq-number", q.bind, "rx", missing))
    _raises(errors.CallerError, "HYP-MSGQ-virq-bound", q.bind, "tx", 99)        # VIRQ_BOUND first
    q.bind("rx")                                                                 # the first free number
    assert q.state.rx.virq == 33
    q.unbind("tx")
    assert 32 not in vic.sources
    q.bind("tx", 32)                                                             # free again
    invariants.check("msgq", q.state)


def test_one_vic_per_vm_is_shared_by_doorbells_and_queue_lines():
    """A doorbell and a queue line of the same VM contend for VIRQ numbers; destroy releases them."""
    vic = Vic(first=32, count=4)
    db = Doorbell(SMALL, vic)
    db.bind_virq(virq=34)
    q = MessageQueue(SMALL, 2, 8, vic)
    _raises(errors.CallerError, "HYP-MSGQ-virq-busy", q.bind, "rx", 34)
    q.bind("rx", 35)
    db.unbind_virq()
    with pytest.raises(errors.CallerError) as e:
        db.bind_virq(virq=35)                         # the queue line holds it
    assert e.value.clause == "HYP-DBL-virq-busy"
    q.destroy()                                       # object deactivation unbinds both lines
    assert set(vic.sources) == set()
    db.bind_virq(virq=35)
    assert vic.sources == {35: db}
    other_vm = Vic(first=32, count=4)                 # the sender's VM has its own numbers
    q2 = MessageQueue(SMALL, 2, 8, vic)
    q2.bind("tx", 35, vic=other_vm)
    assert other_vm.sources == {35: q2.owners["tx"]} and vic.sources == {35: db}
    q2.unbind("tx")
    assert not other_vm.sources


def test_bind_on_an_init_or_destroyed_queue_is_object_state_before_the_number():
    vic = Vic(first=32, count=4)
    q = MessageQueue(SMALL, vic=vic)
    _raises(errors.CallerError, "HYP-MSGQ-object-state", q.bind, "rx", -1)
    q.configure(2, 8)
    q.activate()
    q.destroy()
    _raises(errors.CallerError, "HYP-MSGQ-object-state", q.bind, "tx", 32)
    assert not vic.sources
