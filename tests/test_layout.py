"""Packaging: every package directory is listed in pyproject (package-dir maps model/ to t1virtio)."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAP = {"model": "t1virtio", "specs": "t1virtio.specs", "proofs": "t1virtio.proofs"}


def test_every_package_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in MAP.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found == listed, f"missing: {found - listed}, stale: {listed - found}"
