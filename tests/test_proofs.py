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


# Legality vs exactness (docs/overview.md): each of these mutants makes a choice any conforming
# implementation may make but the model's policy does not. Its exact obligation catches it (the
# mutant's own check, tests/test_mutants.py); the legality obligations of the same operation must
# still be proved under it, or the legality rule would forbid an implementation freedom.
LEGAL_NOT_EXACT = {
    "split-kick-spurious": ["virtio_split.driver:kick_prepare⊨rule_kick_when_device_asks"],
    "packed-kick-spurious-under-desc": ["virtio_packed_driver:kick_prepare⊨rule_kick_by_event"],
    "hyp-create-highest-handle": ["hypervisor:share⊨rule_create_parcels_sgl", "hypervisor:share⊨rule_region_stable",
                                  "hypervisor:share⊨rule_sanitize_zeroes_parcel"],
    "swiotlb-find-6.9-search": ["swiotlb:find⊨rule_find_in_window", "swiotlb:find⊑take"],
    "bounce-map-ignores-policy": ["swiotlb_bounce_map:map_single⊨rule_map_fill_allowed",
                                  "swiotlb_bounce_map:map_single⊨rule_map_copy_inside"],
}


@pytest.mark.parametrize("name", sorted(LEGAL_NOT_EXACT))
def test_legal_but_not_exact_choice_passes_legality(name):
    from mutants import load_all
    from t1virtio.specs import rules
    m = next(x for x in load_all() if x.name == name)
    assert "exact_" in m.check, f"{name} must be caught by an exact rule, not {m.check}"
    with m.patch():
        for ob_name in LEGAL_NOT_EXACT[name]:
            ob = engine.find(ob_name)
            if ob.kind == "rule":
                assert ob.target.kind == "legality", ob_name
            r = engine.solve(ob, timeout_s=120)
            assert r.outcome == "proved", f"{name}: legality obligation {ob_name} {r.outcome} {r.counterexample}"
    exact_rules = [r for c in rules.REGISTRY for r in rules.exact_of(c)]
    assert exact_rules and all(r.policy for r in exact_rules)


def test_every_exact_rule_refines_a_legality_rule_or_pins_the_model():
    from t1virtio.specs import rules
    rules.of("")
    names = {o.name for o in OBLIGATIONS}
    for comp, lst in rules.REGISTRY.items():
        for r in lst:
            if r.kind != "exact":
                continue
            if r.refines is None:      # pins the model's own step: exact ⇒ legal is the model's legality proofs
                assert any(n.endswith(f"⊨{r.name}") for n in names), r.name
                continue
            legal = rules.find(comp, r.op, r.refines)
            assert legal.kind == "legality", r.name
            assert any(n.endswith(f":{r.name}⇒{legal.name}") for n in names), f"no exact⇒legal for {comp}.{r.op}"


def test_legality_mode_accepts_what_exact_mode_refuses():
    """A spurious kick (SHOULD NOT) passes the split ring's legality rules and fails Linux's exact rule."""
    from t1virtio import errors
    from t1virtio.specs import rules
    from t1virtio.virtio import split
    d = split.driver_init(4, False, False)
    args = {"avail_event": 0, "used_flags": split.VRING_USED_F_NO_NOTIFY}
    new = split.kick_prepare(engine.logic.CONCRETE, d, **args).new
    rules.check("virtio_split.driver", "kick_prepare", d, args, True, new, True, mode="legality")
    with pytest.raises(errors.InvariantViolation, match="exact_kick_only_when_asked"):
        rules.check("virtio_split.driver", "kick_prepare", d, args, True, new, True, mode="exact")
    assert [r.name for r in rules.legality("virtio_split.driver", "kick_prepare")] == ["rule_kick_when_device_asks"]
    assert [r.name for r in rules.exact_of("virtio_split.driver", "kick_prepare")] == ["exact_kick_only_when_asked"]
