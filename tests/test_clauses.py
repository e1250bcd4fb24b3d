"""The clause registry: every clause has a check and a mutant; code cites only registered ids."""
import ast
import re
from pathlib import Path

from mutants import load_all
from t1virtio.specs import clauses

ROOT = Path(__file__).resolve().parents[1]
CODE = [p for d in ("model", "specs/invariants", "specs/rules", "proofs") for p in (ROOT / d).rglob("*.py")]
LITERAL = re.compile(r'"([A-Z][A-Za-z0-9]*(?:[-/][^"\n{}]+)+)"')


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings (a module's, class's or function's first statement)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def cited_in(source: str) -> set[str]:
    """Clause-shaped string constants in code: parsed with ``ast``, so docstrings and comments cite nothing."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            found.update(LITERAL.findall(f'"{node.value}"'))
    return found


def _literals() -> set[str]:
    found = set()
    for p in CODE:
        found.update(cited_in(p.read_text()))
    return found


def test_citations_ignore_docstrings_and_comments():
    src = '''"""Module: cites "HYP-MEM-no-right" in prose."""
def f():
    """Refused with "SWIOTLB-find-full"."""
    # "VIRTIO-x/y" in a comment
    return step([(ok, "SWIOTLB-list")], None)
'''
    assert cited_in(src) == {"SWIOTLB-list"}


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
    ids = list(clauses.CLAUSES)
    # a literal that begins registered ids (code grouping clauses, e.g. startswith("SWIOTLB-find")) is no citation
    unknown = sorted(lit for lit in _literals()
                     if lit.split("-")[0].split("/")[0] in prefixes and not clauses.is_registered(lit)
                     and not any(c.startswith(lit) and c != lit for c in ids))
    assert not unknown, f"code cites unregistered clause ids: {unknown}"


def test_unregistered_guard_is_refused():
    import pytest
    from t1virtio.step import step
    with pytest.raises(KeyError, match="unregistered clause"):
        step([(True, "NO-SUCH-CLAUSE")], None)
