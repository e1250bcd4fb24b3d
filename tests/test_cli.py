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
