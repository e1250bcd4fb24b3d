"""Every command has ``--json``, and each output validates against its schema in docs/formats/ (issue 14)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import typer.main

from t1virtio import cli

FORMATS = Path(__file__).resolve().parents[1] / "docs" / "formats"
CLI = [sys.executable, "-c", "from t1virtio.cli import main; main()"]


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        if getattr(cmd, "commands", None):          # a group (typer's own click): its commands
            yield from _commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def test_every_command_has_json():
    group = typer.main.get_command(cli.app)
    paths = [" ".join(path) for path, _ in _commands(group)]
    assert "oracle check" in paths and "prove" in paths, paths
    missing = [" ".join(path) for path, cmd in _commands(group)
               if not any("--json" in p.opts for p in cmd.params)]
    assert not missing, f"commands without --json: {missing}"


def _validate(name: str, doc):
    schema = json.loads((FORMATS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema)


def _run(*args):
    r = subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=600)
    return r, json.loads(r.stdout)


def test_prove_json_validates():
    r, doc = _run("prove", "--only", "msgq:send", "--json")
    assert r.returncode == 0, r.stderr
    _validate("cli-prove.schema.json", doc)


def test_fuzz_json_validates():
    r, doc = _run("fuzz", "--machine", "msgq", "--examples", "5", "--json")
    assert r.returncode == 0, r.stderr
    _validate("cli-fuzz.schema.json", doc)


def test_clauses_json_validates():
    r, doc = _run("clauses", "HYP-MSGQ", "--json")
    assert r.returncode == 0, r.stderr
    _validate("cli-clauses.schema.json", doc)


def test_replay_json_validates():
    reg = next((Path(__file__).parent / "regressions").glob("*.json"))
    r, doc = _run("replay", str(reg), "--json")
    assert r.returncode in (0, 1), r.stderr
    _validate("cli-replay.schema.json", doc)
    assert (doc["result"] == "passes") == (r.returncode == 0)


def test_verify_json_validates(monkeypatch, capsys):
    """verify's JSON, its work replaced by two quick stand-ins (the real run is the README's first command)."""
    from types import SimpleNamespace
    monkeypatch.setattr(cli, "_prove", lambda *a, **k: [SimpleNamespace(name="x", outcome="proved", counterexample=None)])
    monkeypatch.setattr(cli, "_fuzz_one", lambda n, *a, **k: (SimpleNamespace(examples=3, failure=None), None))
    monkeypatch.setattr("t1virtio.machines.names", lambda: ["msgq"])
    cli.verify(jobs=1, examples=3, as_json=True)
    doc = json.loads(capsys.readouterr().out)
    _validate("cli-verify.schema.json", doc)
    assert doc["rows"][0]["detail"] == "1 proved"


def test_a_wrong_document_is_refused():
    with pytest.raises(jsonschema.ValidationError):
        _validate("cli-replay.schema.json", {"file": "x", "format": "f", "result": "maybe", "clause": None,
                                             "error": None, "where": None})


def test_oracle_and_vectors_json_validate(tmp_path):
    r, doc = _run("vectors", "export", str(tmp_path / "v"), "--component", "msgq", "--count", "2", "--json")
    assert r.returncode == 0, r.stderr
    _validate("cli-vectors-export.schema.json", doc)
    trace = sorted((tmp_path / "v" / "msgq").glob("*.jsonl"))[0]
    r, doc = _run("oracle", "check", str(trace), "--json")
    assert r.returncode == 0, r.stderr
    _validate("cli-oracle-check.schema.json", doc)
    r, doc = _run("oracle", "check", str(trace), "--mode", "bogus", "--json")
    assert r.returncode == 2
    _validate("cli-oracle-check.schema.json", doc)


def test_demo_json_validates():
    r, doc = _run("demo", "--kib", "8", "--json")
    assert r.returncode == 0, r.stderr
    _validate("cli-demo.schema.json", doc)
    assert doc["ok"] and all(c["held"] for c in doc["checks"])


def test_backend_json_schema_matches_what_it_prints():
    _validate("cli-backend.schema.json", {"backend": "blk", "pid": 4242, "served": 34})
    with pytest.raises(jsonschema.ValidationError):
        _validate("cli-backend.schema.json", {"backend": "blk", "pid": 1})
