"""Memory-view mutants."""
from __future__ import annotations

from . import Mutant, replace_fn


def _unchecked(orig, self, addr, n):
    return addr - self.base


MUTANTS = [
    Mutant("memview-no-bounds", "HYP-MEM-no-right", "scenario:test_memview:outside_access_is_refused",
           "HYP-MEM-no-right", replace_fn("t1virtio.hyp.memview", "FlatView._off", _unchecked),
           "synthetic: an accessor that skips the rights check"),
]
