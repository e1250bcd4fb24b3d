"""Every pinned regression and counterexample file is a valid replay file and replays clean on the current model."""
from pathlib import Path

import pytest

from t1virtio import machinesteps, replayfile
from t1virtio.machines import load, runner
from t1virtio.proofs import engine

FILES = sorted((Path(__file__).parent / "regressions").glob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_regression_replays_clean(path):
    data = replayfile.read(path)          # schema-checked data; nothing in it is executed
    if data["format"] == replayfile.REGRESSION:
        assert "steps" in data, f"{path.name} has no steps: {data.get('unreplayable')}"
        assert runner.replay_program(data) is None
    else:
        clause, story = engine.replay(data)
        assert clause is None, story


@pytest.mark.parametrize("path", [p for p in FILES if '"t1virtio-regression/' in p.read_text()],
                         ids=lambda p: p.name)
def test_a_pinned_program_comment_matches_its_steps(path):
    """The program kept for people (read with ast, never run) says what the steps do."""
    data = replayfile.read(path)
    if data.get("program"):
        assert machinesteps.from_program(load(data["machine"]), data["program"]) == data["steps"]


def test_a_failure_is_pinned_and_replays(tmp_path):
    """A machine failure becomes a file of steps whose replay fails with the same clause while the bug is in."""
    from mutants import load_all
    m = next(m for m in load_all() if m.check == "machine:msgq")
    with m.patch():
        res = runner.fuzz("msgq", examples=400)
        assert res.failure and res.failure["clause"] == m.expect
        path = runner.save(res.failure, tmp_path)
        data = replayfile.read(path)
        assert data["format"] == "t1virtio-regression/2" and data["steps"], data
        assert runner.replay_program(data) == m.expect
    assert runner.replay_program(replayfile.read(path)) is None
