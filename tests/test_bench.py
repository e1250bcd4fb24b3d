"""``t1virtio bench``: the JSON document, equal op counts on every side of a cell, rows kept when a side
fails, one-line errors. Fast: tiny sizes and budgets. Tests that need the Linux peer skip with its reason
when it cannot be built, except in CI (``CI`` set), where that fails."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

import linuxpeer
from typer.testing import CliRunner

from t1virtio import bench as b
from t1virtio import cli

CLI = [sys.executable, "-c", "from t1virtio.cli import main; main()"]
ROW_KEYS = {"component", "size", "occupancy", "variant", "model_ops_s", "linux_c_ops_s", "linux_py_ops_s", "ratio",
            "model_ops", "linux_c_ops", "linux_py_ops", "notes", "errors"}


def _run(*args, env=None):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=120, env=env)


def _linux_or_skip() -> b.Linux:
    lx = b.Linux().load()
    if lx.reason:
        linuxpeer.unavailable(lx.reason)
    return lx


@pytest.mark.parametrize("args,needle", [
    (["--sizes", "abc"], "comma-separated integers"),
    (["--component", "nope"], "--component"),
    (["--component", "swiotlb", "--sizes", "1000"], "not a power of two"),
    (["--sizes", "16"], "swiotlb pool of 16 slots"),
    (["--occupancy", "99"], "--occupancy"),
])
def test_bad_options_are_one_line(args, needle):
    r = _run("bench", *args)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_json_document_shape():
    """--quick --json on tiny sizes: every row present with a figure or the reason it is missing. (Size 256: the
    fast ring modules of that queue size are the ones tests/test_fast_rings.py compiles, so no new compile.)"""
    r = _run("bench", "--quick", "--json", "--sizes", "256", "--occupancy", "0")
    doc = json.loads(r.stdout)
    import jsonschema
    from pathlib import Path
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "formats" / "cli-bench.schema.json").read_text())
    jsonschema.validate(doc, schema)
    linux = doc["machine"]["linux_peer"]
    assert r.returncode == (1 if os.environ.get("CI") and not linux["available"] else 0), r.stderr
    assert {"platform", "python", "cpu", "cpus", "model_revision", "linux_peer"} <= set(doc["machine"])
    assert [(x["component"], x["size"], x["occupancy"], x["variant"]) for x in doc["rows"]] == [
        ("swiotlb", 256, 0, "no copy"), ("swiotlb", 256, 0, "4 KiB bounce")] + [
        (c, 256, None, v) for c in ("split", "packed") for v in b.RING_VARIANTS]
    for row in doc["rows"]:
        assert ROW_KEYS <= set(row)
        for side in ("model", "linux_c", "linux_py", "fast"):
            assert (row[f"{side}_ops_s"] or 0) > 0 or side in row["notes"], (side, row)
        assert row["model_ops"] >= 1, row
        assert "fast_vs_model" in row and "fast_vs_linux_c" in row
    packed = doc["rows"][-1]
    assert packed["linux_c_ops_s"] is None and "vringh has no packed ring" in packed["notes"]["linux_c"]
    assert {(g["component"], g["variant"]) for g in doc["growth"]} == {
        ("swiotlb", "no copy"), ("swiotlb", "4 KiB bounce")} | {
        (c, v) for c in ("split", "packed") for v in b.RING_VARIANTS}
    assert all({"model_growth", "model_lowest_ops_s", "meets_target", "target_ops_s"} <= set(g) for g in doc["growth"])
    assert [(h["component"], h["size"]) for h in doc["hyp"]] == [("msgq", 240), ("msgq", 1023), ("doorbell", 64)]
    assert all(h["model_ops_s"] > 0 and h["fast_ops_s"] > 0 and h["fast_vs_model"] > 0 for h in doc["hyp"])


def test_every_side_runs_the_same_ops():
    """Model, Linux C and Linux ctypes run the same number of ops per run, at 0 % and 50 % occupancy too."""
    _linux_or_skip()
    budget = replace(b.QUICK, cell=0.05, linux=0.02, setup=60.0, max_reps=3)
    cfg = b.Config(components=("swiotlb", "split"), swiotlb_sizes=(512,), ring_sizes=(256,), occupancies=(0, 50),
                   budget=budget)
    doc = b.run(cfg)
    assert len(doc["rows"]) == 3 + len(b.RING_VARIANTS)
    for row in doc["rows"]:
        notes = dict(row["notes"])
        assert row["fast_ops_s"] and row["fast_vs_model"] and row["fast_jit_s"] is not None, row
        assert row["fast_vs_linux_c"] == row["fast_ops_s"] / row["linux_c_at_fast_ops_s"], row
        if row["variant"] not in ("depth 1", "no copy", "4 KiB bounce"):
            assert notes.pop("linux_py") == b.RING_PY_DEPTH1
        assert not notes, notes
        py = row["linux_py_ops"] if row["variant"] not in ("half ring", "indirect", "4 KiB copy") else row["model_ops"]
        assert row["model_ops"] >= 1 and row["model_ops"] == row["linux_c_ops"] == py, row
        assert row["ratio"] == row["linux_c_ops_s"] / row["model_ops_s"]
    assert b.problems(doc, ci=True) == []


def test_plans_are_what_the_docs_say():
    """Occupancy counts the 64 live mappings; 0 % has no prefill; the plan is the same every time."""
    for n, occ in ((1024, 50), (1 << 14, 90)):
        fill, drop = b.SwiotlbPlan(n, occ).prefill()
        assert fill == n // 2 and 2 * (fill - len(drop) + b.LIVE) == round(occ * n / 100)
        assert drop == b.SwiotlbPlan(n, occ).prefill()[1]
    assert b.SwiotlbPlan(1024).prefill() == (0, [])


def test_a_failing_side_keeps_its_row(monkeypatch):
    """An injected model failure and a missing Linux peer: every row stays, each side says why; exit 1."""
    def boom(*_):
        raise RuntimeError("injected failure")

    def no_peer(self):
        self.reason, self._loaded = "injected: no Linux peer here", True
        return self
    monkeypatch.setitem(b.MODEL, "split", boom)
    monkeypatch.setattr(b.Linux, "load", no_peer)
    monkeypatch.delenv("CI", raising=False)
    r = CliRunner().invoke(cli.app, ["bench", "--quick", "--json", "--no-fast", "--component", "split", "--sizes",
                                     "16,64"])
    doc = json.loads(r.stdout)
    assert [x["size"] for x in doc["rows"]] == [16, 64] * len(b.RING_VARIANTS)
    for row in doc["rows"]:
        assert row["notes"]["model"] == "error: RuntimeError: injected failure"
        assert "unavailable" in row["notes"]["linux_c"] and "unavailable" in row["notes"]["linux_py"]
    assert doc["machine"]["linux_peer"]["reason"] == "injected: no Linux peer here"
    assert isinstance(r.exception, cli.Failure) and "injected failure" in str(r.exception)

    # a missing peer alone is a reason line, and a failure only in CI
    args = ["bench", "--quick", "--no-fast", "--component", "packed", "--sizes", "16"]
    r = CliRunner().invoke(cli.app, args)
    assert r.exception is None and "injected: no Linux peer here" in r.stdout, r.stdout
    monkeypatch.setenv("CI", "1")
    r = CliRunner().invoke(cli.app, args)
    assert isinstance(r.exception, cli.Failure) and "CI is set" in str(r.exception)
