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


def test_layer_contracts_cover_a_new_package(tmp_path):
    """A package nobody listed (here ``t1virtio.newpart``) that imports a checking layer breaks the contracts:
    the sources are wildcards, so the check covers it without anyone editing pyproject."""
    import shutil
    import subprocess
    import sys
    lint = shutil.which("lint-imports")
    if lint is None:
        import pytest
        pytest.fail("lint-imports is missing: install the test extras (pip install -e '.[test]')")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (site / "t1virtio" / "newpart").mkdir()
    (site / "t1virtio" / "newpart" / "__init__.py").write_text("from t1virtio.machines import common\n")
    r = subprocess.run([lint, "--no-cache", "--config", str(ROOT / "pyproject.toml")], cwd=tmp_path,
                       env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode != 0, r.stdout
    assert "t1virtio.newpart is not allowed to import t1virtio.machines" in r.stdout, r.stdout
