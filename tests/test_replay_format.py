"""Replay files are data: nothing in any field is ever executed, and a bad file is refused in one line, exit 2.

The CLI runs in a subprocess (cwd a fresh directory) for every file; code placed in a field would
create the marker file ``PWNED`` there. Each refusal must come within a few seconds, as exactly one
line on stderr with no traceback.
"""
import ast
import copy
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import strategies as st

from t1virtio import machinesteps, replayfile
from t1virtio.machines import load, names, runner

CLI = [sys.executable, "-c", "from t1virtio.cli import main; main()"]
MARK = "PWNED"
TOUCH = f"__import__('os').system('touch {MARK}')"
SECONDS = 10          # a refusal takes about 1 s (interpreter start and imports); a hang would take longer

BOOT = {"rule": "boot", "args": {"areas": 1, "policy": "v6.1", "min_align": 0, "full": 0}}
MAP = {"rule": "map", "args": {"buf": 0, "off": 0, "size": 1, "extra": 0, "align": 0, "cpu": 0}}
UNMAP = {"rule": "unmap", "args": {"pick": 0}}
BASE = {"format": "t1virtio-regression/2", "machine": "swiotlb_slots", "preset": "SMALL", "seed": 0, "clause": None,
        "error": "", "steps": [BOOT, MAP, UNMAP],
        "program": "state = SwiotlbSlotsMachine()\nstate.boot(areas=1, policy='v6.1', min_align=0, full=0)\n"
                   "state.map(buf=0, off=0, size=1, extra=0, align=0, cpu=0)\nstate.unmap(pick=0)\nstate.teardown()"}
CEX_OBLIGATION = "virtio_status:write_status⊢inv_status_defined_bits"


def replay(tmp_path: Path, content, name: str = "file.json"):
    """Run ``t1virtio replay`` on ``content`` (a JSON document, text or bytes) in ``tmp_path``; return (result, seconds)."""
    f = tmp_path / name
    if isinstance(content, bytes):
        f.write_bytes(content)
    elif isinstance(content, str):
        f.write_text(content)
    else:
        f.write_text(json.dumps(content))
    t0 = time.monotonic()
    r = subprocess.run(CLI + ["replay", str(f)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    return r, time.monotonic() - t0


def assert_refused(r, seconds, needle=None):
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert len(lines) == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr + r.stdout
    assert seconds < SECONDS, f"took {seconds:.1f} s"
    if needle:
        assert needle in lines[0], lines[0]
    return lines[0]


def with_(doc: dict, **changes) -> dict:
    out = copy.deepcopy(doc)
    for k, v in changes.items():
        if v is None and k in out:
            del out[k]
        else:
            out[k] = v
    return out


def step(rule: str, **args) -> dict:
    return {"rule": rule, "args": args}


def map_with(**args) -> dict:
    return with_(BASE, steps=[BOOT, {"rule": "map", "args": {**MAP["args"], **args}}])


@pytest.fixture(scope="module")
def cex() -> dict:
    """A valid counterexample file's content (a state and arguments of a virtio_status preserve obligation)."""
    from t1virtio import state as st_
    from t1virtio.proofs import engine
    ob = engine.find(CEX_OBLIGATION)
    return {"format": "t1virtio-counterexample/1", "obligation": ob.name, "component": ob.component, "kind": ob.kind,
            "clause": ob.clause, "state": st_.to_json(ob.subject.template()), "args": {"value": 0}}


# ----------------------------------------------------------------------------------------- valid files run

def test_a_valid_regression_replays(tmp_path):
    r, _ = replay(tmp_path, BASE)
    assert r.returncode == 0 and "replay passes" in r.stdout, r.stdout + r.stderr
    assert "3: unmap(pick=0)" in r.stdout


def test_a_valid_counterexample_replays(tmp_path, cex):
    r, _ = replay(tmp_path, cex)
    assert r.returncode == 0 and "replay passes" in r.stdout, r.stdout + r.stderr


def test_the_schemas_are_valid_json_schemas():
    import jsonschema
    for fmt in replayfile.SCHEMAS:
        s = replayfile.schema(fmt)
        jsonschema.validators.validator_for(s).check_schema(s)
    assert replayfile.validate(copy.deepcopy(BASE))


# ----------------------------------------------------------------------------------------- code is never run

def _pickle_payload() -> bytes:
    class Payload:
        def __reduce__(self):
            import os
            return os.system, (f"touch {MARK}",)
    return pickle.dumps(Payload())


INJECTIONS = {
    # field that is a comment: ignored, the steps run (exit 0)
    "program-is-a-comment": (with_(BASE, program=f"import os; os.system('touch {MARK}')"), 0),
    "program-with-exec": (with_(BASE, program=f"exec({TOUCH!r})\n{TOUCH}"), 0),
    "error-is-text": (with_(BASE, error=TOUCH), 0),
    "clause-is-text": (with_(BASE, clause=TOUCH), 0),
    # a format-1 file (steps as a program, which replay used to exec)
    "format-1-program": ({"format": "t1virtio-regression/1", "machine": "swiotlb_slots", "seed": 0, "clause": None,
                          "program": f"import os; os.system('touch {MARK}')"}, 2),
    "format-1-program-without-steps": (with_(BASE, steps=None, program=f"{TOUCH}"), 2),
    # code in every field that names something
    "machine": (with_(BASE, machine=TOUCH), 2),
    "machine-module-name": (with_(BASE, machine="os"), 2),
    "preset": (with_(BASE, preset=TOUCH), 2),
    "seed": (with_(BASE, seed=TOUCH), 2),
    "format": (with_(BASE, format=TOUCH), 2),
    "rule": (with_(BASE, steps=[BOOT, step(TOUCH)]), 2),
    "rule-dunder": (with_(BASE, steps=[BOOT, step("__init__")]), 2),
    "rule-plain-method": (with_(BASE, steps=[BOOT, step("_call", op="map", call=TOUCH, args={})]), 2),
    "rule-teardown": (with_(BASE, steps=[BOOT, step("teardown")]), 2),
    "argument-name": (with_(BASE, steps=[BOOT, {"rule": "unmap", "args": {TOUCH: 0}}]), 2),
    "argument-value-int": (map_with(buf=TOUCH), 2),
    "argument-value-choice": (with_(BASE, steps=[with_(BOOT, args={**BOOT["args"], "policy": TOUCH})]), 2),
    "argument-value-hex": (map_with(buf={"hex": TOUCH}), 2),
    "unreplayable": (with_(BASE, steps=None, unreplayable=TOUCH), 2),
    "extra-field": (with_(BASE, code=TOUCH), 2),
    "step-extra-field": (with_(BASE, steps=[BOOT, {**UNMAP, "code": TOUCH}]), 2),
    "pickle": (_pickle_payload(), 2),
    "python-source": (f"{TOUCH}\n", 2),
}


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_code_in_a_field_is_never_executed(tmp_path, name):
    content, code = INJECTIONS[name]
    r, seconds = replay(tmp_path, content)
    assert not (tmp_path / MARK).exists(), f"{name}: the file's code ran"
    if code == 0:
        assert r.returncode == 0 and "replay passes" in r.stdout, r.stdout + r.stderr
    else:
        assert_refused(r, seconds)


def test_code_in_a_counterexample_is_never_executed(tmp_path, cex):
    for i, doc in enumerate([with_(cex, obligation=TOUCH), with_(cex, component=TOUCH), with_(cex, clause=TOUCH),
                             with_(cex, args={TOUCH: 1}), with_(cex, state={TOUCH: 1}), with_(cex, mode=TOUCH)]):
        r, seconds = replay(tmp_path, doc, f"cex{i}.json")
        assert not (tmp_path / MARK).exists()
        assert_refused(r, seconds)


@pytest.mark.parametrize("program", [
    f"import os; os.system('touch {MARK}')",
    f"state = SwiotlbSlotsMachine()\n{TOUCH}\nstate.teardown()",
    f"state = SwiotlbSlotsMachine()\nstate.boot(areas=1, policy={TOUCH}, min_align=0, full=0)\nstate.teardown()",
    "state = SwiotlbSlotsMachine()\nstate.boot(areas=1, policy=(lambda: 'v6.1')(), min_align=0, full=0)",
    "state = SwiotlbSlotsMachine()\nstate.boot(areas=1, policy=f'{1}', min_align=0, full=0)",
    f"state = SwiotlbSlotsMachine()\nstate.__class__.boot = {TOUCH}",
    f"state = SwiotlbSlotsMachine()\nif True:\n    {TOUCH}",
    f"state = __import__('os').system('touch {MARK}')",
    "state = SwiotlbSlotsMachine()\nstate.boot(areas=1, policy='v6.1', min_align=0, full=0)\nx = state.unmap(pick=0)",
    "state = SwiotlbSlotsMachine()\nstate.boot(**{'areas': 1})",
], ids=range(10))
def test_the_program_converter_refuses_anything_but_literal_calls(tmp_path, monkeypatch, program):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(machinesteps.Refused):
        machinesteps.from_program(load("swiotlb_slots"), program)
    assert not (tmp_path / MARK).exists()


def test_no_replay_module_calls_exec_eval_compile_import_or_pickle():
    """The modules that read replay files call none of exec, eval, compile, __import__, pickle or marshal."""
    root = Path(__file__).resolve().parents[1] / "model"
    for rel in ("replayfile.py", "machinesteps.py", "machines/runner.py"):
        tree = ast.parse((root / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"exec", "eval", "compile", "__import__"}, f"{rel}:{node.lineno}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not {"pickle", "marshal", "shelve", "importlib"} & set(mods), f"{rel}:{node.lineno}"


# ----------------------------------------------------------------------------------------- bad files: one line, exit 2

TEXT = json.dumps(BASE)
CORPUS = {
    "empty": b"",
    "not-json": "not json",
    "truncated-half": TEXT[:len(TEXT) // 2],
    "truncated-last-byte": TEXT[:-1],
    "not-utf8": b"\xff\xfe{\x00}",
    "top-level-array": [BASE],
    "top-level-string": '"t1virtio-regression/2"',
    "no-format": with_(BASE, format=None),
    "format-number": with_(BASE, format=2),
    "unknown-version": with_(BASE, format="t1virtio-regression/3"),
    "unknown-counterexample-version": {"format": "t1virtio-counterexample/2"},
    "extra-field": with_(BASE, extra=1),
    "extra-step-field": with_(BASE, steps=[BOOT, {**UNMAP, "note": "x"}]),
    "extra-hex-field": map_with(buf={"hex": "00", "x": 1}),
    "missing-steps": with_(BASE, steps=None),
    "missing-machine": with_(BASE, machine=None),
    "steps-and-unreplayable": with_(BASE, unreplayable="x"),
    "seed-string": with_(BASE, seed="0"),
    "steps-object": with_(BASE, steps={}),
    "args-array": with_(BASE, steps=[{"rule": "boot", "args": []}]),
    "rule-number": with_(BASE, steps=[{"rule": 5, "args": {}}]),
    "unknown-rule": with_(BASE, steps=[BOOT, step("no_such_rule")]),
    "rule-with-newline": with_(BASE, steps=[BOOT, {**UNMAP, "rule": "unmap\n"}]),
    "rule-with-markup": with_(BASE, steps=[BOOT, step("[bold red]unmap[/]")]),
    "long-rule": with_(BASE, steps=[BOOT, step("a" * 10000)]),
    "unknown-argument": map_with(nope=1),
    "missing-argument": with_(BASE, steps=[BOOT, step("map", buf=0, off=0, size=1, extra=0, align=0)]),
    "bool-for-int": map_with(buf=True),
    "string-for-int": map_with(buf="1"),
    "float-for-int": map_with(buf=1.5),
    "array-for-int": map_with(buf=[1]),
    "int-for-bool": with_(BASE, steps=[BOOT, step("unmap_bogus", slot=0, off=0, stale=1)]),
    "int-for-string-choice": with_(BASE, steps=[with_(BOOT, args={**BOOT["args"], "policy": 1})]),
    "unknown-choice": with_(BASE, steps=[with_(BOOT, args={**BOOT["args"], "policy": "v9.9"})]),
    "out-of-range": map_with(cpu=8),
    "negative": map_with(off=-1),
    "huge-int-2**64+1": map_with(buf=2 ** 64 + 1),
    "huge-int-10**30": map_with(buf=10 ** 30),
    "huge-int-5000-digits": TEXT.replace('"buf": 0', '"buf": ' + "9" * 5000),
    "huge-float": TEXT.replace('"buf": 0', '"buf": 1e999'),
    "nan": TEXT.replace('"buf": 0', '"buf": NaN'),
    "duplicate-key": TEXT.replace('"seed": 0', '"seed": 0, "seed": 1'),
    "nesting-bomb-arrays": TEXT.replace('"buf": 0', '"buf": ' + "[" * 100000 + "]" * 100000),
    "nesting-bomb-objects": '{"a": ' * 100000 + "1" + "}" * 100000,
    "nesting-bomb-unclosed": "[" * 1_000_000,
    "nesting-40": TEXT.replace('"buf": 0', '"buf": ' + "[" * 40 + "]" * 40),
    "300000-values": with_(BASE, steps=[{}] * 300_000),
    "many-valid-steps": with_(BASE, steps=[UNMAP] * 50_000),
    "bad-hex": with_(BASE, machine="swiotlb", steps=[step("boot", pools=[16], min_align=0, addressing="offset",
                                                          scribble=True, pattern={"hex": "zz"})]),
    "hex-too-long": with_(BASE, machine="swiotlb", steps=[step("boot", pools=[16], min_align=0, addressing="offset",
                                                               scribble=True, pattern={"hex": "00" * 17})]),
    "rule-before-initializer": with_(BASE, steps=[MAP]),
    "initializer-twice": with_(BASE, steps=[BOOT, BOOT]),
    "precondition-false": with_(BASE, steps=[BOOT, UNMAP]),
    "unknown-machine": with_(BASE, machine="nope"),
    "unknown-preset": with_(BASE, preset="HUGE"),
    "unreplayable": with_(BASE, steps=None, unreplayable="it draws from bundle 'parcels'"),
    "too-many-steps": with_(BASE, steps=[BOOT] + [UNMAP] * 1001),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_a_bad_file_is_refused_in_one_line(tmp_path, name):
    r, seconds = replay(tmp_path, CORPUS[name])
    assert_refused(r, seconds)


def test_a_100_mb_file_is_refused_without_reading_it_all(tmp_path):
    f = tmp_path / "big.json"
    with open(f, "w") as out:
        out.write('{"format": "t1virtio-regression/2", "program": "')
        chunk = "A" * (1 << 20)
        for _ in range(100):
            out.write(chunk)
        out.write('"}')
    t0 = time.monotonic()
    r = subprocess.run(CLI + ["replay", str(f)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert_refused(r, time.monotonic() - t0, "larger than 2 MiB")


def test_an_endless_file_is_refused(tmp_path):
    t0 = time.monotonic()
    r = subprocess.run(CLI + ["replay", "/dev/zero"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert_refused(r, time.monotonic() - t0, "larger than")


def test_a_fifo_without_a_writer_is_refused(tmp_path):
    import os
    os.mkfifo(tmp_path / "fifo.json")
    t0 = time.monotonic()
    r = subprocess.run(CLI + ["replay", str(tmp_path / "fifo.json")], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert_refused(r, time.monotonic() - t0, "not a JSON file")


def test_a_directory_is_refused(tmp_path):
    t0 = time.monotonic()
    r = subprocess.run(CLI + ["replay", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert_refused(r, time.monotonic() - t0)


def test_bad_counterexamples_are_refused_in_one_line(tmp_path, cex):
    corpus = {
        "unknown-obligation": with_(cex, obligation="msgq:nope"),
        "wrong-component": with_(cex, component="msgq"),
        "wrong-kind": with_(cex, kind="rule"),
        "missing-state": with_(cex, state=None),
        "missing-args": with_(cex, args=None),
        "state-of-another-shape": with_(cex, state={"x": 1}),
        "unknown-argument": with_(cex, args={"value": 0, "nope": 1}),
        "argument-out-of-its-width": with_(cex, args={"value": 256}),
        "argument-wrong-type": with_(cex, args={"value": True}),
        "huge-argument": with_(cex, args={"value": 2 ** 70}),
        "extra-field": with_(cex, extra=1),
        "another-clause": with_(cex, clause="HYP-MSGQ-fifo"),
        "steps-wrong-actor": with_(cex, steps=[{"actor": "attacker", "batch": 1}]),
    }
    for name, doc in corpus.items():
        r, seconds = replay(tmp_path, doc, f"{name}.json")
        assert_refused(r, seconds)


# ----------------------------------------------------------------------------------------- in-process checks

def test_the_program_converter_reads_what_hypothesis_prints():
    program = ("state = SwiotlbSlotsMachine()\nstate.boot(areas=1, policy='v6.1', min_align=0, full=50)\n"
               "state.pool_invariants()\nstate.unmap(pick=0)\nstate.pool_invariants()\n"
               "state.map(buf=0, off=0, size=1, extra=0, align=0, cpu=(\n    0  # or any other generated value\n))\n"
               "state.teardown()")
    assert machinesteps.from_program(load("swiotlb_slots"), program) == [
        step("boot", areas=1, policy="v6.1", min_align=0, full=50), step("unmap", pick=0), MAP]


def test_arguments_are_checked_against_their_strategies():
    m = machinesteps.match
    ok = [(st.integers(0, 3), 3, 3), (st.booleans(), False, False), (st.binary(max_size=2), {"hex": "0aff"}, b"\n\xff"),
          (st.sampled_from([(16,), (8, 8)]), [8, 8], (8, 8)), (st.lists(st.integers(0, 1), max_size=2), [1, 0], [1, 0]),
          (st.one_of(st.integers(0, 3).map(lambda b: 1 << b), st.just(-1)), 8, 8), (st.just(2 ** 64), 2 ** 64, 2 ** 64),
          (st.tuples(st.integers(0, 1), st.booleans()), [1, True], (1, True)), (st.integers(), -(2 ** 64), -(2 ** 64))]
    for s, v, want in ok:
        got = m(s, v, "x")
        assert got == want and type(got) is type(want), (s, v, got)
    bad = [(st.integers(0, 3), 4), (st.integers(0, 3), True), (st.integers(), 2 ** 64 + 1), (st.booleans(), 1),
           (st.binary(max_size=1), {"hex": "0000"}), (st.binary(), {"hex": "0G"}), (st.binary(), {"hex": "AB"}),
           (st.sampled_from([0, 1]), False), (st.sampled_from([(16,)]), [8]), (st.lists(st.integers(), max_size=1), [1, 2]),
           (st.one_of(st.integers(0, 3).map(lambda b: 1 << b), st.just(-1)), 3), (st.data(), 1),
           (st.integers(0, 10 ** 9).map(lambda x: x + 1), 1), (st.tuples(st.integers(0, 1)), [1, 1])]
    for s, v in bad:
        with pytest.raises(machinesteps.Refused):
            m(s, v, "x")


def test_which_machines_save_their_failures_as_data():
    """Every argument of these machines can be checked; hypervisor and status cannot be data (docs/formats/README.md)."""
    for name in ("doorbell", "msgq", "packed", "split", "swiotlb", "swiotlb_slots"):
        assert machinesteps.uncheckable(load(name)) == {}, name
    assert "boot(setup)" in machinesteps.uncheckable(load("hypervisor"))
    assert "create(data)" in machinesteps.uncheckable(load("status"))
    assert set(names()) >= {"doorbell", "msgq", "packed", "split", "swiotlb", "swiotlb_slots", "hypervisor", "status"}


def test_a_failure_that_is_not_data_is_saved_with_the_reason_and_refused_on_replay(tmp_path):
    program = ("state = HypervisorMachine()\n"
               "state.boot(setup=(Layout(private=(0, 2, 0), shared=(0, 1, 1), order=(0, 1, 2, 3)), 1))\n"
               "state.honest_state()\nstate.noninterference()\nstate.access(at=0, fill=1, n=1, offset=0, vm=0, write=False)\n"
               "state.teardown()")
    from t1virtio import errors
    rec = runner.failure_record(load("hypervisor"), "hypervisor", 7, errors.InvariantViolation("HYP-MEM-no-right", "x"),
                                program)
    assert "steps" not in rec and "composite" in rec["unreplayable"] and rec["program"] == program
    path = runner.save(rec, tmp_path)
    data = replayfile.read(path)
    with pytest.raises(machinesteps.Refused, match="--seed 7"):
        runner.replay(data)


def test_a_saved_failure_is_valid_and_replays(tmp_path):
    from t1virtio import errors
    rec = runner.failure_record(load("swiotlb_slots"), "swiotlb_slots", 3, errors.InvariantViolation("SWIOTLB-list", "x"),
                                BASE["program"])
    assert rec["steps"] == BASE["steps"] and rec["format"] == runner.FORMAT
    data = replayfile.read(runner.save(rec, tmp_path))
    assert data == rec and runner.replay_program(data) is None
