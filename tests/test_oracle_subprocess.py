"""Foreign implementations through ``t1virtio.oracle.subprocess`` (protocol ``t1virtio-subprocess/1``).

A C swiotlb allocator (tests/c/swiotlb_first_fit.c, compiled here with the system ``cc``) conforms live and by
``oracle check`` on its trace; four -D variants are caught with their clause; a ring implementation in another
process works on the shared memory file; a child that hangs, dies or babbles is a typed failure, quickly.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linuxpeer import in_ci
from t1virtio.oracle import live
from t1virtio.oracle import subprocess as sub
from t1virtio.oracle.check import check_file

HERE = Path(__file__).resolve().parent
C_SRC = HERE / "c" / "swiotlb_first_fit.c"
CLI = str(Path(sys.executable).parent / "t1virtio")
SCHEMA = HERE.parent / "docs" / "formats" / "oracle-subprocess.schema.json"

VARIANTS = [  # (-D flag, the clause the oracle must name)
    ("BUG_SEGMENT", "SWIOTLB-find-rule"),          # a run across a segment boundary
    ("BUG_DOUBLE", "SWIOTLB-find-rule"),           # a slot handed out twice
    ("BUG_FREE_SIZE", "SWIOTLB-release-rule"),     # release frees one slot too many
    ("BUG_ALIGN", "SWIOTLB-find-align-rule"),      # >= page requests not page aligned
]


def _cc() -> str:
    cc = shutil.which("cc")
    if cc is None:
        msg = "no system C compiler (cc) on PATH: the C reference adapter cannot be built"
        if in_ci():
            pytest.fail(msg + " (CI: this check must not pass untested)", pytrace=False)
        pytest.skip(msg)
    return cc


@pytest.fixture(scope="module")
def cbin(tmp_path_factory):
    """Compile the reference and its variants once: {"": path, "BUG_...": path}."""
    cc = _cc()
    out = tmp_path_factory.mktemp("cbin")
    bins = {}
    for flag in [""] + [v for v, _ in VARIANTS]:
        exe = out / f"swiotlb_first_fit{'_' + flag if flag else ''}"
        cmd = [cc, "-std=c99", "-O2", "-Wall", "-Werror", *([f"-D{flag}"] if flag else []), "-o", str(exe), str(C_SRC)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{' '.join(cmd)}: {r.stderr}"
        bins[flag] = str(exe)
    return bins


def test_c_first_fit_conforms_live_and_by_trace(cbin, tmp_path):
    path = tmp_path / "c.trace.jsonl"
    s = live.run_actions(sub.factory([cbin[""]]), live.header_for("swiotlb", "small"),
                         [(k % 3, 7919 * k % 65536, 104729 * k % 65536) for k in range(60)])
    assert s.violation is None, s.violation
    assert sum(1 for d in s.steps if "result" in d) >= 20          # it did allocate and release
    from t1virtio.oracle.trace import write
    write(path, s.checker.header, s.steps)
    out = subprocess.run([CLI, "oracle", "check", str(path), "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["conforms"] is True
    r = live.check(sub.factory([cbin[""]]), "swiotlb", max_examples=40, max_steps=12)
    assert r.examples >= 40 and r.steps > 100


@pytest.mark.parametrize("flag,clause", VARIANTS, ids=[v for v, _ in VARIANTS])
def test_c_buggy_variant_caught(cbin, flag, clause, tmp_path):
    path = tmp_path / f"{flag}.trace.jsonl"
    with pytest.raises(live.NonConformance) as ei:
        live.check(sub.factory([cbin[flag]]), "swiotlb", max_examples=80, max_steps=12, trace_path=path)
    assert ei.value.violation.clause == clause, ei.value
    assert len(ei.value.steps) <= 6                                 # shrunk
    rep = check_file(path)
    assert not rep.ok and rep.violation.clause == clause
    out = subprocess.run([CLI, "oracle", "check", str(path), "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and json.loads(out.stdout)["violation"]["clause"] == clause


def test_record_replays_a_trace_through_the_child(cbin, tmp_path):
    h = live.header_for("swiotlb", "small")
    src = tmp_path / "in.jsonl"
    from t1virtio.oracle.trace import write
    write(src, h, [{"op": "map", "args": {"orig_addr": 0x10000, "mapping_size": 5000}, "result": {"tlb_addr": 0}},
                   {"op": "alloc", "args": {"size": 100}, "result": {"addr": 0, "slot": 0}},
                   {"op": "release", "args": {"tlb_addr": 0x8000_0000}, "result": {"nslots": 0}}])
    out = sub.record(sub.factory([cbin[""]]), src, tmp_path / "out.jsonl")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[1]["result"] == {"tlb_addr": 0x8000_0000, "slot": 0}
    assert lines[2]["result"] == {"addr": 0x8000_0000 + 3 * 2048, "slot": 3}   # first fit, after slots 0-2
    assert lines[3]["result"] == {"nslots": 3}
    assert check_file(out).ok


# ------------------------------------------------------------------ rings over the shared memory file

RING_CHILD = r'''
import json, mmap, os, sys
sys.path[:0] = [p for p in os.environ.get("CHILD_PATH", "").split(os.pathsep) if p]
from t1virtio.oracle.live import ModelImplementation, Refused
impl = mm = mem = None
for line in sys.stdin:
    req = json.loads(line)
    if req["op"] == "stop":
        break
    if req["op"] == "start":
        m = req["memory"]
        fd = os.open(m["path"], os.O_RDWR)
        mm = mmap.mmap(fd, m["size"])
        mem = bytearray(mm[:])
        assert req["geometry"]["mem_size"] == m["size"]
        impl = ModelImplementation(req["header"], mem)
        print(json.dumps({"seq": req["seq"], "result": {"name": "model-in-a-child"}}), flush=True)
        continue
    mem[:] = mm[:]                                   # what the oracle's peer wrote
    try:
        rep = {"seq": req["seq"], "result": impl.step(req["op"], req["args"])}
    except Refused as e:
        rep = {"seq": req["seq"], "error": e.error}
    mm[:] = bytes(mem)                               # what we wrote, for the oracle to see
    print(json.dumps(rep), flush=True)
'''


@pytest.mark.parametrize("component", ["split_driver", "packed_device"])
def test_ring_child_on_shared_memory(component, tmp_path, monkeypatch):
    script = tmp_path / "ring_child.py"
    script.write_text(RING_CHILD)
    import os
    env = dict(os.environ, CHILD_PATH=os.pathsep.join(sys.path))
    r = live.check(sub.factory([sys.executable, str(script)], env=env), component, max_examples=8, max_steps=12)
    assert r.steps > 20


# ------------------------------------------------------------------ misbehaving children: typed, fast

def _py(tmp_path, body: str) -> list[str]:
    p = tmp_path / "child.py"
    p.write_text("import json, sys, time\n" + body)
    return [sys.executable, str(p)]


START_OK = ("line = sys.stdin.readline(); print(json.dumps({'seq': json.loads(line)['seq'], 'result': {}}), flush=True)\n")


@pytest.mark.parametrize("body,exc,words", [
    (START_OK + "sys.stdin.readline(); time.sleep(60)\n", sub.ChildTimeout, "no reply within"),
    (START_OK + "sys.stdin.readline(); sys.stderr.write('boom'); sys.exit(3)\n", sub.ChildExited, "status 3"),
    (START_OK + "sys.stdin.readline(); print('not json', flush=True); time.sleep(60)\n", sub.ProtocolError, "strict JSON"),
    (START_OK + "sys.stdin.readline(); print(json.dumps({'seq': 99, 'result': {}}), flush=True)\n", sub.ProtocolError, "not a reply"),
    (START_OK + "sys.stdin.readline(); print(json.dumps({'seq': 2, 'error': 'EWHATEVER'}), flush=True)\n", sub.ProtocolError, "errno-ish"),
    (START_OK + "sys.stdin.readline(); sys.stdout.write('x' * (2 << 20)); sys.stdout.flush(); time.sleep(60)\n",
     sub.ProtocolError, "longer than"),
    ("sys.stdin.readline(); print(json.dumps({'seq': 1, 'error': 'swiotlb unsupported'}), flush=True)\n",
     sub.ChildStartError, "refused to start"),
    ("time.sleep(60)\n", sub.ChildTimeout, "no reply within"),
])
def test_misbehaving_child_is_a_typed_failure(tmp_path, body, exc, words):
    h = live.header_for("swiotlb", "small")
    t0 = time.monotonic()
    with pytest.raises(exc) as ei:
        impl = sub.SubprocessImplementation(_py(tmp_path, body), h, None, timeout=1.5, start_timeout=1.5)
        impl.step("map", {"orig_addr": 0x10000, "mapping_size": 100})
    assert words in str(ei.value)
    assert time.monotonic() - t0 < 8
    if exc is sub.ChildExited:
        assert ei.value.returncode == 3 and "boom" in ei.value.stderr


def test_missing_program_is_a_start_error(tmp_path):
    with pytest.raises(sub.ChildStartError, match="cannot start"):
        sub.SubprocessImplementation([str(tmp_path / "nope")], live.header_for("swiotlb", "small"))


def test_hung_child_fails_live_check_instead_of_hanging(tmp_path):
    body = START_OK + "time.sleep(60)\n"
    t0 = time.monotonic()
    with pytest.raises(sub.ChildTimeout):
        live.check(sub.factory(_py(tmp_path, body), timeout=1.0), "swiotlb", max_examples=5)
    assert time.monotonic() - t0 < 15


def test_requests_match_the_schema(cbin, tmp_path):
    """Every request the adapter sends and every reply the C child gives validate against the JSON Schema."""
    import jsonschema
    schema = json.loads(SCHEMA.read_text())
    log = tmp_path / "log.jsonl"
    tee = tmp_path / "tee.sh"
    tee.write_text(f"#!/bin/sh\ntee -a {log}.req | {cbin['']} | tee -a {log}.rep\n")
    tee.chmod(0o755)
    s = live.run_actions(sub.factory([str(tee)]), live.header_for("swiotlb", "small"),
                         [(k % 3, 31 * k, 17 * k) for k in range(12)])
    assert s.violation is None
    for name, kind in (("req", "request"), ("rep", "reply")):
        lines = Path(f"{log}.{name}").read_text().splitlines()
        assert lines
        for text in lines:
            jsonschema.validate(json.loads(text), {**schema, "$ref": f"#/$defs/{kind}"})
    ring = live.header_for("split_device", "small")
    req = {"seq": 1, "protocol": sub.PROTOCOL, "op": "start", "header": ring, "geometry": sub.geometry(ring),
           "memory": {"path": "/tmp/x", "size": 100}}
    jsonschema.validate(req, {**schema, "$ref": "#/$defs/request"})
