"""Every mutant is caught by the check it names, which reports the expected clause (lesson 13)."""
import pytest

from mutants import load_all, run_check

MUTANTS = load_all()


@pytest.mark.parametrize("m", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_is_caught(m):
    got = run_check(m)
    assert got == m.expect, f"{m.name} (breaks {m.breaks}) via {m.check}: reported {got}, expected {m.expect}"


def test_mutant_names_unique():
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names))
