"""Every generated obligation is proved (one test per obligation, so a failure names it)."""
import pytest

from t1virtio.proofs import all_subjects, engine

OBLIGATIONS = engine.obligations(all_subjects())


@pytest.mark.parametrize("ob", OBLIGATIONS, ids=[o.name for o in OBLIGATIONS])
def test_obligation_proved(ob):
    r = engine.solve(ob, timeout_s=120)
    assert r.outcome == "proved", f"{ob.name}: {r.outcome} {r.detail} {r.counterexample}"


def test_every_subject_has_obligations_for_every_op():
    for s in all_subjects():
        names = {o.name for o in engine.obligations([s])}
        for op in s.ops:
            assert any(n.startswith((f"{s.component}:{op.name}⊢", f"{s.component}:{op.name}⊨")) for n in names), \
                f"{s.component}:{op.name} has neither an invariant nor a rule obligation"
