"""docs/clauses.md is the current rendering of the clause catalog."""
from pathlib import Path

from catalog import render

PAGE = Path(__file__).resolve().parents[1] / "docs" / "clauses.md"


def test_catalog_is_current():
    assert PAGE.exists() and PAGE.read_text() == render(), \
        "docs/clauses.md is out of date: run `python tests/catalog.py > docs/clauses.md`"
