"""The clause registry: every clause has a check and a mutant; code cites only registered ids."""
import re
from pathlib import Path

from mutants import load_all
from t1virtio.specs import clauses

ROOT = Path(__file__).resolve().parents[1]
CODE = [p for d in ("model", "specs/invariants", "specs/rules", "proofs") for p in (ROOT / d).rglob("*.py")]
LITERAL = re.compile(r'"([A-Z][A-Za-z0-9]*(?:[-/][^"\n{}]+)+)"')


def _literals() -> set[str]:
    found = set()
    for p in CODE:
        found.update(LITERAL.findall(p.read_text()))
    return found


def test_every_clause_has_a_check():
    cited = _literals()
    missing = sorted(c for c in clauses.CLAUSES if c not in cited)
    assert not missing, f"clauses no guard, invariant, rule or obligation cites: {missing}"


def test_every_clause_has_a_mutant():
    broken = {m.breaks for m in load_all()}
    missing = sorted(c for c in clauses.CLAUSES if c not in broken)
    assert not missing, f"clauses with no mutant that breaks them: {missing}"


def test_mutants_cite_registered_clauses():
    for m in load_all():
        clauses.get(m.breaks)
        clauses.get(m.expect)


def test_code_cites_only_registered_ids():
    prefixes = {c.split("-")[0].split("/")[0] for c in clauses.CLAUSES}
    unknown = sorted(lit for lit in _literals()
                     if lit.split("-")[0].split("/")[0] in prefixes and not clauses.is_registered(lit))
    assert not unknown, f"code cites unregistered clause ids: {unknown}"


def test_unregistered_guard_is_refused():
    import pytest
    from t1virtio.step import step
    with pytest.raises(KeyError, match="unregistered clause"):
        step([(True, "NO-SUCH-CLAUSE")], None)
