"""Every pinned regression and counterexample file replays clean on the current model."""
import json
from pathlib import Path

import pytest

from t1virtio.machines import runner
from t1virtio.proofs import engine

FILES = sorted((Path(__file__).parent / "regressions").glob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_regression_replays_clean(path):
    data = json.loads(path.read_text())
    if data["format"].startswith("t1virtio-regression"):
        assert runner.replay_program(data) is None
    else:
        clause, story = engine.replay(data)
        assert clause is None, story


def test_a_failure_is_pinned_and_replays(tmp_path):
    """A machine failure becomes a file whose replay fails with the same clause while the bug is in."""
    from mutants import load_all
    m = next(m for m in load_all() if m.check == "machine:msgq")
    with m.patch():
        res = runner.fuzz("msgq", examples=400)
        assert res.failure and res.failure["clause"] == m.expect
        path = runner.save(res.failure, tmp_path)
        assert runner.replay_program(json.loads(path.read_text())) == m.expect
    assert runner.replay_program(json.loads(path.read_text())) is None
