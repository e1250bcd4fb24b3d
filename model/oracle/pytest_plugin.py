"""pytest plugin (entry point ``pytest11: t1virtio``): the ``t1virtio_oracle`` fixture.

    def test_my_pool(t1virtio_oracle):
        t1virtio_oracle.check(lambda header, memory: MyPool(header), "swiotlb")

``check`` runs ``t1virtio.oracle.live.check`` with the test's budget (``--t1virtio-examples``, default 50) and
writes a failing run's minimal trace under pytest's ``tmp_path`` (the failure message names it); ``check_trace``
checks a trace file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("t1virtio")
    group.addoption("--t1virtio-examples", type=int, default=50,
                    help="sequences the t1virtio_oracle fixture generates per check (default 50)")


class OracleFixture:
    """What the fixture hands a test."""

    def __init__(self, tmp: Path, examples: int):
        self.tmp, self.examples = tmp, examples

    def check(self, impl_factory: Any, component: str, **kw: Any) -> Any:
        from t1virtio.oracle import live
        kw.setdefault("max_examples", self.examples)
        kw.setdefault("trace_path", self.tmp / f"{component}-minimal.trace.jsonl")
        return live.check(impl_factory, component, **kw)

    def check_trace(self, path: str | Path, mode: str | None = None) -> Any:
        from t1virtio.oracle.check import check_file
        rep = check_file(path, mode)
        if not rep.ok:
            v = rep.violation
            raise AssertionError(f"{path}: step {v.step} ({v.op}) violates {v.clause}: {v.detail}")
        return rep


@pytest.fixture
def t1virtio_oracle(request: Any, tmp_path: Path) -> OracleFixture:
    """Live conformance checking against the t1virtio model (docs/oracle.md)."""
    return OracleFixture(tmp_path, request.config.getoption("--t1virtio-examples", 50))
