"""Index safety: proofs record every data-dependent table index; concretely, effects run strict."""
import pytest

from t1virtio import errors
from t1virtio.logic import CONCRETE as L
from t1virtio.step import INDEX_SAFE, apply, step


def test_an_effect_indexing_outside_its_table_raises_the_clause_with_the_site():
    t = L.tabulate(4, lambda k: k)
    guards = [(True, "SWIOTLB-find-empty")]
    sp = step(guards, L.effect(guards, lambda: L.update(t, 9, 0), t))
    with pytest.raises(errors.InvariantViolation) as e:
        apply(sp)
    assert e.value.clause == INDEX_SAFE and "test_index_safety" in str(e.value) and "entry 9" in str(e.value)


def test_a_refused_step_reads_outside_without_failing():
    """Guards may read past a table where an earlier guard already refused: the value is unused."""
    t = L.tabulate(4, lambda k: k)
    guards = [(False, "SWIOTLB-find-full"), (L.at(t, 9) == 3, "SWIOTLB-find-empty")]
    with pytest.raises(errors.Exhausted):
        apply(step(guards, L.effect(guards, lambda: L.update(t, 9, 0), t)))


def test_at_or_is_a_read_that_may_miss():
    t = L.tabulate(4, lambda k: k)
    guards = [(True, "SWIOTLB-find-empty")]
    assert apply(step(guards, L.effect(guards, lambda: L.at_or(t, 9, -1), t)))[0] == -1


def test_z3_records_sites_under_their_path_conditions():
    import z3
    from t1virtio import logic
    Z = logic.z3_logic()
    i, c = z3.BitVec("i", 8), z3.Bool("c")
    Z.sites = []
    try:
        Z.at((1, 2, 3), i)
        with Z.assuming(c):
            Z.update((1, 2, 3), i, 0)
        Z.at_or((1, 2, 3), i, 0)
        sites = Z.sites
    finally:
        Z.sites = None
    assert len(sites) == 2 and all("test_index_safety" in w for w, _ in sites)
    s = z3.Solver()
    s.add(z3.Not(c), z3.Not(sites[1][1]))       # the guarded write is safe whenever c is false
    assert s.check() == z3.unsat
