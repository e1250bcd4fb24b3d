"""Validation never rests on ``assert`` (``python -O`` strips it): model/, specs/ and proofs/ hold none."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bare_asserts(source: str, name: str = "<src>") -> list[str]:
    return [f"{name}:{n.lineno}" for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Assert)]


def test_no_assert_statements_in_the_package():
    found = [a for d in ("model", "specs", "proofs") for p in sorted((ROOT / d).rglob("*.py"))
             for a in bare_asserts(p.read_text(), str(p.relative_to(ROOT)))]
    assert not found, f"checks must raise a clause's error (machines: common.expect), not assert: {found}"


def test_the_scan_finds_an_assert():
    assert bare_asserts("def f(x):\n    assert x > 0, 'positive'\n") == ["<src>:2"]
