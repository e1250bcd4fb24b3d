"""Notification races over the real split and packed transitions: the concrete race model, the spec's
EVENT_IDX example, and replayable traces."""
import json
import random

import pytest

from t1virtio.logic import CONCRETE
from t1virtio.proofs import engine
from t1virtio.virtio import notify, races


def _need(e, new, old):
    return notify.vring_need_event(CONCRETE, e, new, old)


def test_spec_example_used_event_zero():
    """§2.7.7.2: with used_event 0, notify after the 1st buffer and again 65536 buffers later."""
    kicks = [n for n in range(65536 + 2) if _need(0, (n + 1) % 65536, n % 65536)]
    assert kicks == [0, 65536]


def test_window_matches_spec_statement_exhaustively_for_small_windows():
    for old in (0, 1, 65534, 65535):
        for n in range(0, 5):
            new = (old + n) % 65536
            for e in range(65536 - 8, 65536 + 8):
                e %= 65536
                assert _need(e, new, old) == races.is_in_window(CONCRETE, e, new, old)


@pytest.mark.parametrize("mode", races.MODES)
def test_random_schedules_lose_nothing(mode):
    """Long random schedules (beyond MAX_STEPS) from wrap-around start indices and stale suppression state
    break no clause."""
    rnd = random.Random(0)
    r = races.RACES[mode]
    for _ in range(200):
        start = rnd.choice([0, 65535 - rnd.randrange(8), rnd.randrange(65536)])
        s = _stale(rnd, r, races.initial(mode, start, wrap=rnd.random() < 0.5))
        sched = [("producer", rnd.randint(1, races.N)) if rnd.random() < 0.5 else ("consumer", 0) for _ in range(60)]
        run = races.run_schedule(mode, s, sched)
        assert not run.broken, "\n".join(run.story)


def _stale(rnd, r, s):
    """A start state with the consumer's suppression state left over from earlier (any legal value)."""
    from dataclasses import replace
    c = s.cons
    if r.ring == "split":
        flag = 0 if r.event else rnd.randrange(2)
        if r.direction == "avail":
            return replace(s, cons=replace(c, avail_event=rnd.randrange(65536), used_flags=flag))
        return replace(s, cons=replace(c, used_event=rnd.randrange(65536), avail_flags=flag,
                                       cb_disabled=rnd.random() < 0.5))
    return replace(s, cons=replace(c, event_flags=rnd.randrange(3 if r.event else 2)),
                   mem=(rnd.randrange(races.N), rnd.random() < 0.5))


def test_no_lost_notification_trace_replays_with_the_mutant_only(tmp_path):
    """A counterexample of the lost-notification proof is a schedule; replayed, it names the clause."""
    from mutants import load_all
    m = next(x for x in load_all() if x.name == "race-sleep-without-recheck")
    ob = engine.find("virtio_races:event_idx⊢no-lost-notification")  # the real kick_prepare / enable_notify
    with m.patch():
        r = engine.solve(ob, timeout_s=60)
        assert r.outcome == "counterexample"
        path = tmp_path / "cex.json"
        path.write_text(json.dumps(r.counterexample))
        cex = json.loads(path.read_text())
        assert any("LOST" in line for line in cex["story"])
        assert engine.replay(cex)[0] == "VIRTIO/model/notify#recheck"
    assert engine.replay(cex)[0] is None, "the fixed model must not fail on the pinned schedule"


def test_device_that_rechecks_resumes():
    s = races.initial(races.EVENT_IDX, 10)
    run = races.run_schedule(races.EVENT_IDX, s, [("consumer", 0), ("consumer", 0), ("producer", 2),
                                                  ("consumer", 0), ("consumer", 0), ("consumer", 0)])
    assert run.states[-1].cons.last_avail == 12 and not run.broken


@pytest.mark.parametrize("mode", races.MODES)
def test_steps_call_the_real_transitions(mode, monkeypatch):
    """Each race step goes through the real split / packed transition (patched here to count calls)."""
    from t1virtio.virtio import packed, split
    names = ["add_buf", "add_used", "kick_prepare", "need_notify", "pop_avail", "get_used", "enable_notify",
             "enable_cb", "disable_notify", "disable_cb"]
    pnames = ["packed_add", "packed_push_used", "packed_kick_prepare", "packed_need_notify", "packed_pop",
              "packed_get_used", "packed_set_event", "packed_enable_cb", "packed_disable_cb"]
    calls = []
    for mod, ns in ((split, names), (packed, pnames)):
        for n in ns:
            orig = getattr(mod, n)
            monkeypatch.setattr(mod, n, lambda *a, _o=orig, _n=n, **k: (calls.append(_n), _o(*a, **k))[1])
    s = races.initial(mode, 7)
    races.run_schedule(mode, s, [("consumer", 0), ("consumer", 0), ("producer", 2), ("producer", 0),
                                 ("producer", 0), ("consumer", 0), ("consumer", 0)])
    r = races.RACES[mode]
    want = {("split", "avail"): {"add_buf", "kick_prepare", "pop_avail", "enable_notify", "disable_notify"},
            ("split", "used"): {"add_used", "need_notify", "get_used", "enable_cb", "disable_cb"},
            ("packed", "avail"): {"packed_add", "packed_kick_prepare", "packed_pop", "packed_set_event"},
            ("packed", "used"): {"packed_push_used", "packed_need_notify", "packed_get_used", "packed_enable_cb",
                                 "packed_disable_cb"}}[(r.ring, r.direction)]
    assert want <= set(calls)
