"""The conformance oracle: the model conforms, buggy implementations are caught (trace and live), legal
choices that differ from the model's are not flagged, bad input exits 2 with one line."""
import json
import subprocess
import sys
import time

import pytest

from t1virtio.oracle import live
from t1virtio.oracle.check import check_file, check_trace
from t1virtio.oracle.live import ModelImplementation

from pathlib import Path as _P
CLI = str(_P(sys.executable).parent / "t1virtio")


# The buggy implementations (the 9 first ones among them) live in t1virtio.oracle.bugs and are checked by
# tests/test_oracle_bugs.py; the must-not-flag suite is tests/test_oracle_mustnotflag.py.
from t1virtio.oracle.bugs import LastFitPool, OversizeQueue  # noqa: E402


@pytest.mark.parametrize("component", list(live.ACTIONS))
def test_model_conforms_live(component):
    r = live.check(live.model_factory, component, max_examples=15, max_steps=20)
    assert r.examples >= 15


def test_must_not_flag_other_free_slot():
    h = live.header_for("swiotlb", "small")
    with pytest.raises(live.NonConformance) as ei:   # exact mode flags the other choice ...
        live.check(LastFitPool, "swiotlb", mode="exact", max_examples=50, header=h)
    assert ei.value.violation.clause == "MODEL-reference-agrees"
    live.check(LastFitPool, "swiotlb", max_examples=100, header=h)   # ... legality mode never does


def test_must_not_flag_out_of_order_completion(tmp_path):
    r = live.check(live.model_factory, "split_device", max_examples=40)   # generated add_used picks any held head
    assert r.steps > 0
    h = live.header_for("split_device", "small")
    s = live.Session(live.model_factory, h, "legality")
    for x in range(3):
        live._act_split_device(s, (3, x, 10))
    for _ in range(3):
        assert s.call("pop_avail", {})
    for head in (2, 0, 1):                         # reverse-ish order: legal without IN_ORDER (§2.7)
        assert s.call("add_used", {"id": head, "len": 1}), s.violation
    p = tmp_path / "ooo.jsonl"
    from t1virtio.oracle.trace import write
    write(p, h, s.steps)
    assert check_file(p, "legality").ok and check_file(p, "exact").ok


BAD = {
    "truncated": '{"format":"t1virtio-trace/1","component":"msgq","sizes":"small","policy":"gunyah"}\n{"op":"flu',
    "version": '{"format":"t1virtio-trace/9","component":"msgq","sizes":"small","policy":"gunyah"}\n',
    "unknown-op": '{"format":"t1virtio-trace/1","component":"msgq","sizes":"small","policy":"gunyah"}\n{"op":"explode"}\n',
    "huge-int": '{"format":"t1virtio-trace/1","component":"swiotlb","sizes":"small","policy":"v6.1"}\n'
                '{"op":"map","args":{"orig_addr":' + "9" * 5000 + ',"mapping_size":1},"result":{"tlb_addr":0}}\n',
    "out-of-range": '{"format":"t1virtio-trace/1","component":"swiotlb","sizes":"small","policy":"v6.1"}\n'
                    '{"op":"map","args":{"orig_addr":-1,"mapping_size":1},"result":{"tlb_addr":0}}\n',
    "not-json": "hello\n",
    "empty": "",
    "bad-component": '{"format":"t1virtio-trace/1","component":"gpu","sizes":"small","policy":"x"}\n',
    "nan": '{"format":"t1virtio-trace/1","component":"msgq","sizes":"small","policy":"gunyah","note":NaN}\n',
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_exit_2_one_line(name, tmp_path):
    p = tmp_path / f"{name}.jsonl"
    p.write_text(BAD[name])
    out = subprocess.run([CLI, "oracle", "check", str(p)], capture_output=True, text=True)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr


def test_huge_line_exit_2(tmp_path):
    p = tmp_path / "huge.jsonl"
    with open(p, "w") as f:
        f.write('{"format":"t1virtio-trace/1","component":"msgq","sizes":"small","policy":"gunyah"}\n')
        f.write('{"op":"flush","note":"' + "x" * (2 * 1024 * 1024) + '"}\n')
    out = subprocess.run([CLI, "oracle", "check", str(p)], capture_output=True, text=True)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_schema_validates_traces(tmp_path):
    import jsonschema
    from t1virtio.oracle.trace import schema_path
    sch = json.loads(schema_path().read_text())
    jsonschema.Draft202012Validator.check_schema(sch)
    from t1virtio.oracle import vectors
    vectors.export(tmp_path, components=["swiotlb", "split_driver", "msgq"], count=1)
    v = jsonschema.Draft202012Validator(sch)          # compiled once (jsonschema.validate re-checks the schema)
    n = 0
    for f in sorted(tmp_path.glob("*/*.trace.jsonl")):
        for line in f.read_text().splitlines():
            v.validate(json.loads(line))
            n += 1
    assert n > 0


def test_vectors_deterministic_and_replay(tmp_path):
    from t1virtio.oracle import vectors
    a = vectors.export(tmp_path / "a", count=1)
    vectors.export(tmp_path / "b", count=1)
    for f in sorted((tmp_path / "a").rglob("*.jsonl")):
        assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes()
        if not f.name.startswith("flag-"):            # flag-* cases are buggy traces (test_oracle_vectors.py)
            assert check_file(f, "exact").ok, f
    assert (tmp_path / "a" / "README.md").read_text().count("## Not covered") == 1
    assert a["cases"] > 6 * 9


def test_exact_speed_at_real_sizes(tmp_path):
    """Exact mode at Linux sizes: map/release on a 32768-slot pool (figure printed with -s)."""
    h = {"format": "t1virtio-trace/1", "component": "swiotlb", "sizes": "linux", "policy": "v6.1", "mode": "exact"}
    impl = ModelImplementation(h)
    steps, live_addrs = [], []
    for i in range(3000):
        if i % 3 == 2:
            a = {"tlb_addr": live_addrs.pop(0)}
            steps.append({"op": "release", "args": a, "result": impl.step("release", a)})
        else:
            a = {"orig_addr": 0x10000 + 0x800 * i, "mapping_size": 1 + (i * 997) % 6000}
            r = impl.step("map", a)
            live_addrs.append(r["tlb_addr"])
            steps.append({"op": "map", "args": a, "result": r})
    p = tmp_path / "real.jsonl"
    from t1virtio.oracle.trace import write
    write(p, h, steps)
    t0 = time.perf_counter()
    rep = check_file(p)
    rate = rep.steps / (time.perf_counter() - t0)
    print(f"exact mode, 32768-slot pool: {rate:,.0f} steps/s")
    assert rep.ok and rep.steps == 3000


def test_pytest_plugin_fixture_and_entry_point(tmp_path):
    from t1virtio.oracle.pytest_plugin import OracleFixture
    fx = OracleFixture(tmp_path, 10)
    assert fx.check(live.model_factory, "msgq").examples >= 10
    with pytest.raises(live.NonConformance) as ei:
        fx.check(OversizeQueue, "msgq", max_examples=100)
    assert ei.value.path and ei.value.path.exists()
    import tomllib
    from pathlib import Path
    doc = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert doc["project"]["entry-points"]["pytest11"]["t1virtio"] == "t1virtio.oracle.pytest_plugin"


def _verdict(h, steps, touched_only):
    from t1virtio.oracle.check import Checker
    c = Checker(h, "legality")
    c.runner.touched_only = touched_only
    for st in steps:
        v = c.step(st)
        if v is not None:
            return v.step, v.clause
    return None


def test_touched_only_legality_agrees_with_whole_tables(tmp_path):
    """Legality at the cost of the step (swiotlb windows, ring rules in a frame vocabulary) gives the whole-table
    verdict: on the model's own runs and on every buggy implementation's minimal trace (same step, same clause)."""
    from t1virtio.oracle import bugs
    import random
    rng = random.Random(3)
    for component, (_, kinds) in live.ACTIONS.items():
        h = live.header_for(component, "small")
        for _ in range(3):
            acts = [(rng.randrange(kinds), rng.randrange(1 << 16), rng.randrange(1 << 16)) for _ in range(30)]
            s = live.run_actions(live.model_factory, h, acts)
            assert _verdict(h, s.steps, True) is None and _verdict(h, s.steps, False) is None
    for impl, component, clause, _ in bugs.BUGGY:
        h = live.header_for(component, "small")
        if impl in bugs.FEATURES:
            h["features"] = dict(bugs.FEATURES[impl])
        with pytest.raises(live.NonConformance) as ei:
            live.check(impl, component, header=h, max_examples=20)
        steps = ei.value.steps
        assert _verdict(h, steps, True) == _verdict(h, steps, False) == (len(steps), clause), impl.__name__


def test_legality_speed_at_real_sizes():
    """Legality mode on a 32768-slot pool, at the cost of each step's segment (figures printed with -s)."""
    h = {"format": "t1virtio-trace/1", "component": "swiotlb", "sizes": "linux", "policy": "v6.1"}
    impl = ModelImplementation(h)
    steps, live_addrs = [], []
    for i in range(300):
        if i % 3 == 2:
            a = {"tlb_addr": live_addrs.pop(0)}
            steps.append({"op": "release", "args": a, "result": impl.step("release", a)})
        else:
            a = {"orig_addr": 0x10000 + 0x800 * i, "mapping_size": 1 + (i * 997) % 6000}
            r = impl.step("map", a)
            live_addrs.append(r["tlb_addr"])
            steps.append({"op": "map", "args": a, "result": r})
    t0 = time.perf_counter()
    rep = check_trace(h, steps, "legality")
    rate = rep.steps / (time.perf_counter() - t0)
    print(f"legality mode, 32768-slot pool: {rate:,.0f} steps/s")
    assert rep.ok and rate > 20                    # whole tables: about 1 step/s
