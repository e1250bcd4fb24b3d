"""Scale-out (issue 14): proofs and campaigns on a two-worker Dask LocalCluster give what a local run gives,
and a failure one worker finds replays on another from the shared example database."""
from __future__ import annotations

import sys

import pytest

from t1virtio import dist
from t1virtio import machines as machines_pkg
from t1virtio.machines import runner
from t1virtio.proofs import runner as proof_runner

PLANTED = '''
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from t1virtio import errors


class Planted(RuleBasedStateMachine):
    """Fails when it draws a number above 900: found within a few dozen examples."""

    @rule(x=st.integers(0, 1000))
    def step(self, x):
        if x > 900:
            raise errors.InvariantViolation("MODEL-reference-agrees", f"x={x}")


MACHINES = {"planted_failure": Planted}
'''


@pytest.fixture(scope="module")
def cluster_env(tmp_path_factory):
    """A user machine module the workers can import (``T1VIRTIO_MACHINES``), set before the cluster starts."""
    folder = tmp_path_factory.mktemp("planted")
    (folder / "planted_machine.py").write_text(PLANTED)
    mp = pytest.MonkeyPatch()
    mp.setenv("PYTHONPATH", f"{folder}:{':'.join(sys.path)}")
    mp.setenv("T1VIRTIO_MACHINES", "planted_machine")
    mp.syspath_prepend(str(folder))
    machines_pkg._REGISTRY.clear()
    yield
    mp.undo()
    machines_pkg._REGISTRY.clear()


def test_proofs_on_a_cluster_match_a_local_run():
    names = [o.name for o in proof_runner.select("msgq:send")]
    local = proof_runner.run(proof_runner.select("msgq:send"))
    remote = dist.prove(names, 30.0, "local:2")
    assert [(r.name, r.outcome) for r in remote] == [(r.name, r.outcome) for r in local]
    assert all(r.outcome == "proved" for r in remote)


def test_campaign_on_a_cluster_matches_a_local_run():
    local = runner.fuzz("msgq", examples=40, seed=5)
    remote = dist.fuzz("msgq", "local:2", 2, examples=40, seed=5)
    assert (remote.examples, remote.failure) == (local.examples, local.failure) == (40, None)


def test_failure_replays_from_the_shared_database(cluster_env, tmp_path):
    db = str(tmp_path / "examples")
    found = dist.fuzz("planted_failure", "local:2", 2, examples=200, database=db)
    assert found.failure and found.failure["clause"] == "MODEL-reference-agrees"
    # another campaign, other seeds, no generation at all: only what the database holds is replayed
    again = dist.fuzz("planted_failure", "local:2", 2, examples=2, seed=777, database=db, reuse_only=True)
    assert again.failure and again.failure["clause"] == "MODEL-reference-agrees"
    # control: the same replay-only run over an empty database finds nothing
    empty = dist.fuzz("planted_failure", "local:2", 2, examples=2, seed=777, database=str(tmp_path / "none"),
                      reuse_only=True)
    assert empty.failure is None


def test_bad_scheduler_is_a_clear_error():
    with pytest.raises(dist.DistError, match="local:N needs a worker count"):
        with dist.client("local:0"):
            pass
