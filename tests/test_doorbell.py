"""Doorbell scenarios on the concrete model (Gunyah doorbell; facts §3.2, §6.5)."""
import json

import pytest

from mutants import load_all
from t1virtio import errors
from t1virtio.hyp import doorbell
from t1virtio.hyp.doorbell import Doorbell
from t1virtio.preset import LINUX, SMALL
from t1virtio.proofs import engine
from t1virtio.specs import invariants

ONES = (1 << SMALL.doorbell_bits) - 1


def _bound(edge=False, preset=SMALL):
    db = Doorbell(preset)
    db.bind_virq(edge_trigger=edge)
    return db


def test_create_defaults_are_gunyahs():
    s = Doorbell(SMALL).state
    assert (s.flags, s.enable_mask, s.ack_mask) == (0, ONES, 0)
    assert not s.virq_bound
    assert Doorbell(LINUX).state.enable_mask == (1 << 64) - 1


def test_send_ors_and_returns_old_flags():
    db = _bound()
    assert db.send(0b01) == 0
    assert db.send(0b10) == 0b01
    assert db.send(0) == 0b11            # @36ca3a2: new_flags == 0 is OK (7ecf251 refused it)
    assert db.state.flags == 0b11 and db.pending()


def test_receive_zero_is_argument_invalid():
    db = _bound()
    db.send(1)
    with pytest.raises(errors.CallerError) as e:
        db.receive(0)
    assert e.value.clause == "HYP-DBL-receive-zero" and "ARGUMENT_INVALID" in str(e.value)
    assert db.state.flags == 1


def test_words_wider_than_the_register_are_refused():
    db = _bound()
    for bad in (1 << SMALL.doorbell_bits, -1):
        with pytest.raises(errors.CallerError) as e:
            db.send(bad)
        assert e.value.clause == "HYP-DBL-word"
    assert db.state.flags == 0


def test_bind_twice_is_virq_bound_and_unbind_is_always_ok():
    db = _bound()
    with pytest.raises(errors.CallerError) as e:
        db.bind_virq()
    assert e.value.clause == "HYP-DBL-virq-bound" and "VIRQ_BOUND" in str(e.value)
    db.unbind_virq()
    db.unbind_virq()
    assert not db.state.virq_bound


def test_bind_to_a_busy_or_missing_virq():
    """vic_bind_shared: BUSY for a VIRQ number that already has a source, ARGUMENT_INVALID for one that does not exist."""
    vic = doorbell.Vic(first=32, count=4)
    a, b = Doorbell(SMALL, vic), Doorbell(SMALL, vic)
    a.bind_virq(virq=33)
    with pytest.raises(errors.CallerError) as e:
        b.bind_virq(virq=33)
    assert e.value.clause == "HYP-DBL-virq-busy" and "BUSY" in str(e.value) and not b.state.virq_bound
    for missing in (31, 36, -1):
        with pytest.raises(errors.CallerError) as e:
            b.bind_virq(virq=missing)
        assert e.value.clause == "HYP-DBL-virq-number" and "ARGUMENT_INVALID" in str(e.value)
    with pytest.raises(errors.CallerError) as e:       # VIRQ_BOUND is checked first
        a.bind_virq(virq=99)
    assert e.value.clause == "HYP-DBL-virq-bound"
    a.unbind_virq()
    b.bind_virq(virq=33)                              # the number is free again
    assert b.state.virq_bound and b.state.virq == 33


def _state_error(call):
    with pytest.raises(errors.CallerError) as e:
        call()
    assert e.value.clause == "HYP-DBL-object-state" and "OBJECT_STATE" in str(e.value)


def _every_hypercall(db):
    return [lambda: db.send(1), lambda: db.receive(1), lambda: db.mask(ONES, 0), db.reset, db.bind_virq,
            db.unbind_virq]


def test_an_init_doorbell_refuses_every_hypercall_until_activated():
    """partition_create_doorbell gives an INIT object; the hypercalls' capability lookup is active-only."""
    db = Doorbell(SMALL, active=False)
    assert db.state.lifecycle == doorbell.OBJ_INIT
    before = db.state
    for call in _every_hypercall(db):
        _state_error(call)
    assert db.state == before and not db.vic.sources
    db.activate()                                      # no configure call: activation cannot fail
    assert db.state.lifecycle == doorbell.OBJ_ACTIVE
    assert db.send(1) == 0
    _state_error(db.activate)                          # activate twice: OBJECT_STATE


def test_destroy_unbinds_releases_the_number_and_refuses_everything_after():
    vic = doorbell.Vic(first=32, count=2)
    db = Doorbell(SMALL, vic)
    db.bind_virq(virq=32)
    db.send(1)
    assert db.pending() and vic.sources == {32: db}
    db.destroy()
    s = db.state
    assert s.lifecycle == doorbell.OBJ_DESTROYED and not (s.virq_bound or s.virq_level or s.virq_edge)
    assert not vic.sources                             # object_deactivate_doorbell: vic_unbind
    for call in _every_hypercall(db) + [db.activate, db.destroy]:
        _state_error(call)
    other = Doorbell(SMALL, vic)
    other.bind_virq(virq=32)                           # the number is free for another source
    assert other.state.virq == 32
    init = Doorbell(SMALL, vic, active=False)
    init.destroy()                                     # an INIT object can be destroyed too
    assert init.state.lifecycle == doorbell.OBJ_DESTROYED


def test_object_state_is_checked_before_the_arguments():
    """The capability lookup comes first: receive(0) and a bad VIRQ on an INIT doorbell are OBJECT_STATE."""
    db = Doorbell(SMALL, active=False)
    _state_error(lambda: db.receive(0))
    _state_error(lambda: db.bind_virq(virq=-1))
    _state_error(lambda: db.send(1 << 64))


def test_level_receiver_protocol_clears_then_eoi():
    """Take, receive, EOI: nothing pending afterwards (the level deasserts at check_pending)."""
    db = _bound()
    db.send(0b100)
    assert db.deliver()
    assert db.receive(ONES) == 0b100
    assert db.state.virq_level           # lazy: receive does not touch the VIRQ
    assert db.eoi()
    assert not db.pending() and not db.state.virq_active


def test_eoi_before_receive_re_raises():
    db = _bound()
    db.send(0b100)
    assert db.deliver()
    db.eoi()
    assert db.pending()                  # check_pending found the flag still set
    db.receive(ONES)
    assert db.pending()                  # stale until the next delivery and EOI
    assert db.deliver() and db.eoi() and not db.pending()


def test_auto_ack_send_during_service_is_not_lost():
    """An edge-like doorbell (ack = enable = all): a send between receive and EOI stays pending."""
    db = _bound()
    db.mask(ONES, ONES)
    db.send(1)
    assert db.state.flags == 0 and db.pending()
    assert db.deliver()
    db.receive(ONES)
    db.send(2)                           # auto-acked at once: flags stay 0
    assert db.state.flags == 0
    db.eoi()
    assert db.pending()                  # check_pending's reasserted case keeps it


def test_mask_was_now():
    db = _bound()
    db.send(0b01)
    db.mask(enable_mask=0b10, ack_mask=0)       # was and not now: deasserted at once
    assert not db.state.virq_level
    db.mask(enable_mask=0b01, ack_mask=0b01)    # not was and now: asserted, then acked
    assert db.state.virq_level and db.state.flags == 0


def test_edge_trigger_gets_edge_only_assertions():
    db = _bound(edge=True)
    db.mask(enable_mask=0, ack_mask=0)
    db.send(1)                           # no enabled flag: edge-only, still an edge interrupt
    assert not db.state.virq_level and db.pending()
    assert db.deliver() and not db.pending()


def test_reset_restores_defaults_and_deasserts():
    db = _bound()
    db.mask(0b11, 0b10)
    db.send(0b01)
    db.reset()
    s = db.state
    assert (s.flags, s.enable_mask, s.ack_mask, s.virq_level, s.virq_bound) == (0, ONES, 0, False, True)


def test_bind_does_not_signal_flags_already_set():
    """Gunyah's bind starts the VIRQ unasserted: a flag set while unbound raises nothing until the next send."""
    db = Doorbell(SMALL)
    db.send(1)
    db.bind_virq()
    assert not db.pending() and db.state.unsignalled
    invariants.check("doorbell", db.state)
    db.send(2)
    assert db.pending() and not db.state.unsignalled


def test_unbound_send_with_ack_loses_the_flags():
    """doorbell_send acks on a level even when virq_assert fails (VIRQ_NOT_BOUND): the flags are gone."""
    db = Doorbell(SMALL)
    db.mask(ONES, ONES)
    db.send(1)
    assert db.state.flags == 0
    db.bind_virq()
    assert not db.pending()


def test_receiver_protocol_constant_is_the_documented_order():
    assert doorbell.RECEIVER_PROTOCOL == ("deliver", "receive", "eoi")


def test_race_counterexample_replays(tmp_path):
    """With EOI before receive the solver finds a re-raise; the saved counterexample replays on the model."""
    m = next(m for m in load_all() if m.name == "dbl-eoi-before-receive")
    with m.patch():
        r = engine.solve(engine.find("doorbell:receiver-protocol"))
        assert r.outcome == "counterexample"
        path = tmp_path / "cex.json"
        path.write_text(json.dumps(r.counterexample))
        clause, story = engine.replay(json.loads(path.read_text()))
    assert clause == "HYP-DBL-receiver-protocol", story
    # and on the unmutated model the same start state is handled cleanly
    assert engine.replay(r.counterexample)[0] is None
