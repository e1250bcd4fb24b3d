"""The command line: one-line errors, non-zero exits, JSON output, replay of saved files."""
import json
import subprocess
import sys

import pytest

CLI = [sys.executable, "-c", "from t1virtio.cli import main; main()"]


def run(*args, cwd=None):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.parametrize("args,needle", [
    (["fuzz", "--machine", "nope"], "unknown machine"),
    (["fuzz", "--examples", "abc"], "--examples"),
    (["fuzz", "--examples", "0"], "--examples"),
    (["replay", "/no/such/file.json"], "no such file"),
    (["prove", "--only", "no-such-obligation"], "no obligation matches"),
    (["nosuchcommand"], "No such command"),
    (["clauses", "NO-SUCH-CLAUSE-ID"], "no clause id contains"),
])
def test_bad_input_is_one_line(args, needle):
    r = run(*args)
    assert r.returncode == 2, r
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_replay_rejects_non_json(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("not json")
    r = run("replay", str(f))
    assert r.returncode == 2 and "not a JSON file" in r.stderr


def test_prove_json_lists_outcomes():
    r = run("prove", "--json", "--only", "msgq:send")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows and all(set(x) >= {"name", "component", "outcome", "seconds", "preset"} for x in rows)
    assert all(x["outcome"] == "proved" for x in rows)


def test_fuzz_runs_a_machine():
    r = run("fuzz", "--machine", "msgq", "--examples", "20")
    assert r.returncode == 0 and "nothing found" in r.stdout, r.stdout + r.stderr


def test_replay_of_a_counterexample_file(tmp_path):
    """A counterexample found against a mutant replays to its clause in-process, and clean on the model via the CLI."""
    from mutants import load_all
    from t1virtio.proofs import engine
    m = next(m for m in load_all() if m.name == "msgq-lost-rx-wakeup")
    with m.patch():
        r = engine.solve(engine.find(m.check.split(":", 1)[1]))
        assert r.outcome == "counterexample"
        assert engine.replay(r.counterexample)[0] == "HYP-MSGQ-rx-virq"
    f = tmp_path / "cex.json"
    f.write_text(json.dumps(r.counterexample))
    out = run("replay", str(f))
    assert out.returncode == 0 and "replay passes" in out.stdout and "msgq_send" not in out.stderr, out


def test_replay_of_a_failing_regression_names_the_clause(tmp_path, monkeypatch, capsys):
    """A regression whose steps still fail prints the step, the clause and its source, and exits 1."""
    from mutants import load_all
    from t1virtio.cli import main
    f = tmp_path / "reg.json"
    f.write_text(json.dumps({"format": "t1virtio-regression/2", "machine": "doorbell", "preset": "SMALL", "seed": 0,
                             "clause": "HYP-DBL-send-or",
                             "steps": [{"rule": "create", "args": {"trigger": "level", "auto_ack": False}},
                                       {"rule": "send", "args": {"new_flags": 256}}]}))
    m = next(m for m in load_all() if m.name == "dbl-send-wide-word")
    monkeypatch.setattr(sys, "argv", ["t1virtio", "replay", str(f)])
    with m.patch(), pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    assert e.value.code == 1 and "fails: HYP-DBL-send-or" in out.out and "step 2: send(new_flags=256)" in out.out, out
    assert run("replay", str(f)).returncode == 0, "the model itself passes"


def test_clauses_lists_a_clause():
    out = run("clauses", "HYP-MSGQ-full", "--json")
    rows = json.loads(out.stdout)
    assert out.returncode == 0 and [r["id"] for r in rows] == ["HYP-MSGQ-full"] and rows[0]["kind"] == "exhausted"


# ---------------------------------------------------------------- verify shows every part, hides no error

def test_verify_scenario_row_not_built(tmp_path, monkeypatch):
    from t1virtio import cli
    name, result, detail = cli._scenario("t1virtio.no_such_system_module")
    assert (name, result) == ("end-to-end scenario", cli.NOT_BUILT) and "does not exist yet" in detail


def test_verify_scenario_import_error_is_an_error(tmp_path, monkeypatch):
    """A scenario module that exists but fails to import is an error row, never a silent skip."""
    from t1virtio import cli
    (tmp_path / "broken_system_t1.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    name, result, detail = cli._scenario("broken_system_t1")
    assert result == "ERROR" and "no_such_dependency_xyz" in detail and result in cli.FAILING


def test_verify_scenario_failure_is_failed(tmp_path, monkeypatch):
    from t1virtio import cli
    (tmp_path / "failing_system_t1.py").write_text(
        "class R:\n    ok = False\n    detail = 'lost a used buffer'\n\ndef scenario():\n    return R()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli._scenario("failing_system_t1") == ("end-to-end scenario", "FAILED", "lost a used buffer")
