"""Notification races: the concrete race model, the spec's EVENT_IDX example, and replayable traces."""
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
    """Long random schedules (beyond MAX_STEPS) from wrap-around start indices break no clause."""
    rnd = random.Random(0)
    for _ in range(200):
        start = rnd.choice([0, 65535 - rnd.randrange(8), rnd.randrange(65536)])
        s = races.initial(start, event=rnd.randrange(65536), no_notify=rnd.random() < 0.5)
        sched = [("driver", rnd.randint(1, 4)) if rnd.random() < 0.5 else ("device", 0) for _ in range(60)]
        run = races.run_schedule(mode, s, sched)
        assert not run.broken, "\n".join(run.story)


def test_no_lost_notification_trace_replays_with_the_mutant_only(tmp_path):
    """A counterexample of the lost-notification proof is a schedule; replayed, it names the clause."""
    from mutants import load_all
    m = next(x for x in load_all() if x.name == "race-sleep-without-recheck")
    ob = engine.find("virtio_races:event_idx⊢no-lost-notification")
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
    s = races.initial(10)
    run = races.run_schedule(races.EVENT_IDX, s, [("device", 0), ("device", 0), ("driver", 2),
                                                  ("device", 0), ("device", 0), ("device", 0)])
    assert run.states[-1].last_avail == 12 and not run.broken
