"""``table.Table``: every version reads as the tuple it stands for, whatever order versions are used in;
and the concrete structured primitives mean what their unrolled z3 forms mean."""
from hypothesis import given, settings, strategies as st

from t1virtio import logic
from t1virtio.logic import CONCRETE
from t1virtio.table import REROOT_AFTER, Table

N = 12
op = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 40), st.integers(0, N - 1), st.integers(-5, 5)),
    st.tuples(st.just("many"), st.integers(0, 40), st.dictionaries(st.integers(0, N - 1), st.integers(-5, 5), max_size=5)),
    st.tuples(st.just("read"), st.integers(0, 40), st.integers(-N, N - 1)))


@settings(max_examples=300)
@given(st.lists(op, max_size=60))
def test_every_version_reads_as_its_tuple(ops):
    versions = [(Table(range(N)), tuple(range(N)))]
    for kind, pick, *rest in ops:
        t, ref = versions[pick % len(versions)]
        if kind == "set":
            k, x = rest
            versions.append((t.set(k, x), ref[:k] + (x,) + ref[k + 1:]))
        elif kind == "many":
            (changes,) = rest
            new = list(ref)
            for k, x in changes.items():
                new[k] = x
            versions.append((t.set_many(changes), tuple(new)))
        else:
            (k,) = rest
            assert t[k] == ref[k]
    for t, ref in versions:
        assert t == ref and tuple(t) == ref and hash(t) == hash(ref) and len(t) == N


def test_old_version_reroots_after_a_long_chain():
    t0 = Table([0] * 4)
    t = t0
    for i in range(REROOT_AFTER + 3):
        t = t.set(i % 2, i + 1)
    assert t0[3] == 0 and t0._arr is not None        # rerooted: the oldest version owns the list now
    assert t.tolist() == [REROOT_AFTER + 3, REROOT_AFTER + 2, 0, 0] and t0.tolist() == [0] * 4


def _z3_value(x):
    import z3
    return z3.simplify(x).as_long() if not isinstance(x, int) else x


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=6, max_size=6), st.integers(-3, 8), st.integers(-2, 8),
       st.sets(st.integers(0, 7), max_size=4))
def test_concrete_primitives_agree_with_the_unrolled_forms(values, lo, n, sel):
    """Over ground z3 values, the unrolled forms simplify to what the concrete loops compute."""
    import z3
    Z = logic.z3_logic()
    zv = tuple(z3.IntVal(v) for v in values)
    mask = sum(1 << i for i in sel)
    f = lambda k, x: x + k + 1  # noqa: E731
    cases = [
        (CONCRETE.fill(CONCRETE.tabulate(6, lambda k: values[k]), lo, n, 7), Z.fill(zv, lo, n, z3.IntVal(7))),
        (CONCRETE.map_range(CONCRETE.tabulate(6, lambda k: values[k]), lo, n, f), Z.map_range(zv, lo, n, f)),
        (CONCRETE.sel_map(CONCRETE.tabulate(6, lambda k: values[k]), frozenset(sel), f),
         Z.sel_map(zv, z3.BitVecVal(mask, 8), lambda k, x: x + k + 1)),
    ]
    for conc, sym in cases:
        assert list(conc) == [_z3_value(x) for x in sym]
    assert CONCRETE.sel_count(frozenset(sel), 6) == _z3_value(Z.sel_count(z3.BitVecVal(mask, 8), 6))
    assert CONCRETE.sel_count(mask, 6) == CONCRETE.sel_count(frozenset(sel), 6)


def test_loop_stops_at_its_exit_and_means_the_unrolled_loop():
    calls = []

    def body(c):
        alive, i, hit = c
        calls.append(i)
        found = alive and i == 3
        return (alive and not found, i + 1, hit if not found else i)
    assert CONCRETE.loop(100, (True, 0, -1), body)[2] == 3 and len(calls) == 4
    assert logic.Vocabulary.loop(CONCRETE, 100, (True, 0, -1), body)[2] == 3 and len(calls) == 104


def test_effect_runs_only_when_every_guard_holds():
    from t1virtio import errors
    from t1virtio.step import apply, step
    ran = []

    def make():
        ran.append(1)
        return "new"
    guards = [(True, "SWIOTLB-find-empty"), (False, "SWIOTLB-find-full")]
    refused = step(guards, CONCRETE.effect(guards, make, "old"))
    try:
        apply(refused)
    except errors.Exhausted:
        pass
    assert not ran                                      # refused: the effects never ran
    accepted = step(guards[:1], CONCRETE.effect(guards[:1], make, "old"))
    assert apply(accepted) == ("new", None) and ran == [1]
    assert accepted.new == "new" and ran == [1]         # run once, then kept
