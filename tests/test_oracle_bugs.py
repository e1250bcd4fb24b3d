"""The oracle's teeth: every buggy implementation of ``t1virtio.oracle.bugs`` (historical bug classes) is caught
live AND by ``oracle check`` on its written minimal trace, with the right clause."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from t1virtio.cli import app
from t1virtio.oracle import bugs, live
from t1virtio.oracle.check import check_file
from t1virtio.specs import clauses

CLI = str(Path(sys.executable).parent / "t1virtio")
IDS = [b[0].__name__ for b in bugs.BUGGY]


def _header(impl, component):
    h = live.header_for(component, "small")
    if impl in bugs.FEATURES:
        h["features"] = dict(bugs.FEATURES[impl])
    return h


def test_at_least_25_distinct_bugs_with_registered_clauses():
    assert len(bugs.BUGGY) >= 25 and len(set(IDS)) == len(IDS)
    for impl, component, clause, why in bugs.BUGGY:
        assert component in live.ACTIONS and why
        assert clauses.is_registered(clause), clause


@pytest.mark.parametrize("impl,component,clause,why", bugs.BUGGY, ids=IDS)
def test_buggy_caught_live_and_by_trace(impl, component, clause, why, tmp_path):
    path = tmp_path / "min.trace.jsonl"
    with pytest.raises(live.NonConformance) as ei:
        live.check(impl, component, header=_header(impl, component), max_examples=60, max_steps=20, trace_path=path)
    assert ei.value.violation.clause == clause, ei.value
    assert len(ei.value.steps) <= 12, ei.value.steps           # shrunk
    rep = check_file(path)                                      # the written minimal trace, from the file
    assert not rep.ok and rep.violation.clause == clause
    out = CliRunner().invoke(app, ["oracle", "check", str(path), "--json"])   # the command itself, in-process
    assert out.exit_code == 1, out.output
    assert json.loads(out.output)["violation"]["clause"] == clause


def test_buggy_trace_through_the_installed_command(tmp_path):
    """One trace through the real executable (the in-process runs above share its code)."""
    impl, component, clause, _ = next(b for b in bugs.BUGGY if b[0] is bugs.DeviceLoopFollowed)
    path = tmp_path / "loop.trace.jsonl"
    with pytest.raises(live.NonConformance):
        live.check(impl, component, max_examples=10, trace_path=path)
    out = subprocess.run([CLI, "oracle", "check", str(path), "--json"], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["violation"]["clause"] == clause


def test_legal_pools_conform_and_exact_mode_tells_them_apart():
    for impl, component in bugs.LEGAL + [(bugs.FirstFitPool, "swiotlb")]:
        assert live.check(impl, component, max_examples=40).examples >= 40
    with pytest.raises(live.NonConformance) as ei:          # the other choice is the model's only in exact mode
        live.check(bugs.LastFitPool, "swiotlb", mode="exact", max_examples=20)
    assert ei.value.violation.clause == "MODEL-reference-agrees"
