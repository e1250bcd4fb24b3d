"""Proof subject: the swiotlb slot allocator (Linux 6.1.y policy) on the SMALL/2 tables, any pool shape.

The state is symbolic: any ``nslabs <= 8`` (segments of 4 slots), one or two areas, any page aligned
start, any contents allowed by the invariants; requests are any 64-bit values (the two alignment
masks and the cpu are ``unsigned int`` in Linux). The operations use the default policy
(``POLICY``, passed to every transition; a mutant swapping the version is what gets proved).

How the proof is split (DESIGN §3 "two kinds of spec"), so no obligation solves the search and the
invariants together:
- ``take`` is any legal allocation: a free run of one segment (the kernel's ``nslots <= list[index]``),
  with its records. ``take ⊢ inv[part]`` proves every invariant after it, one slot (or area, or
  geometry part) per obligation; ``release ⊢ inv[part]`` likewise for the release.
- ``find ⊑ take``, ``map ⊑ take``, ``alloc ⊑ take``: every accepted search/map/alloc step is a legal
  take of the run it chose, with exactly take's new state. With ``take ⊢ inv`` this is ``op ⊢ inv``.
- The exact rule: ``find ⊨ exact_find_linux_6_1`` (the search under ``POLICY`` is 6.1.y's; a mutant
  swapping the version breaks it and no legality rule).
- The rules: ``take ⊨ rule_find_takes_free_run`` (with ``find ⊑ take``, the search's rule), the
  window and map-record rules on the real search, and the two rules that hold on a domain only.

Two rules hold for 6.1.y only on part of the request space, and are proved there as custom
obligations, the rest being known 6.1.y behaviour (docs/swiotlb.md, "Findings"):
- alignment (``find_aligned``): masks of the form 2**n - 1, ``alloc_align_mask <= 0xfff``, not both
  ``alloc_align_mask`` and ``min_align_mask`` above 0x7ff (the stable backport's
  ``iotlb_align_mask &= ~alloc_align_mask`` drops bit 11 there), ``min_align_mask`` inside the
  boundary mask (the search compares ``start & boundary_mask``);
- coherent allocations (``alloc_owned``): ``size >= PAGE_SIZE`` (below a page, 6.1 hands out the
  page holding a 2 KiB slot, which may be another allocation's).
"""
from __future__ import annotations

from dataclasses import replace

from t1virtio import logic, state as st, step as stp
from t1virtio.logic import CONCRETE
from t1virtio.preset import SMALL
from t1virtio.proofs.engine import Custom, Op, Subject, _decode_args, _fresh_args, check_clause, index_custom
from t1virtio.specs import invariants, rules
from t1virtio.specs.invariants import swiotlb as sinv
from t1virtio.step import apply
from t1virtio.swiotlb import policy as pol
from t1virtio.swiotlb import pool, slots

M = "t1virtio.proofs.swiotlb"
# SMALL's shape at half size (2 segments of 4 slots, 2 areas, 2-slot pages): the unrolled search is
# quadratic in the table, and 64-bit words keep every address computation exact.
P = replace(SMALL, name="SMALL/2", pool_nslabs=8, io_tlb_segsize=4)
MASKS = ("alloc_align_mask", "min_align_mask")
# The allocator version these proofs are about, passed to every transition (a mutant may swap it).
POLICY = pol.V6_1


def find(L, s, orig_addr, alloc_size, alloc_align_mask, min_align_mask, boundary_mask, cpu):
    return slots.swiotlb_find_slots(L, P, s, orig_addr, alloc_size, alloc_align_mask, min_align_mask,
                                    boundary_mask, cpu, POLICY)


def map_slots(L, s, orig_addr, mapping_size, alloc_size, alloc_align_mask, min_align_mask, boundary_mask, cpu):
    return slots.swiotlb_tbl_map_slots(L, P, s, orig_addr, mapping_size, alloc_size, alloc_align_mask,
                                       min_align_mask, boundary_mask, cpu, POLICY)


def alloc(L, s, size, min_align_mask, boundary_mask, cpu):
    return slots.swiotlb_alloc_slots(L, P, s, size, min_align_mask, boundary_mask, cpu, POLICY)


def release(L, s, tlb_addr, min_align_mask, size):
    return slots.swiotlb_release_slots(L, P, s, tlb_addr, min_align_mask, size, POLICY)


def _unsigned_int_masks(L, s, a):
    """alloc_align_mask and min_align_mask are ``unsigned int``; the cpu number too."""
    return L.And(*[L.ULE(a[m], slots.U32) for m in (*MASKS, "cpu") if m in a])


def _template():
    return slots.SlotPool(P, 0, P.pool_nslabs, P.io_tlb_max_areas, policy=pol.V6_1).state   # the shape only


def _init(L, s):
    """Every pool ``swiotlb_init_pool`` accepts: any size, area count and page-aligned start."""
    made = pool.swiotlb_init_pool(L, P, s.start, s.nslabs, s.nareas, s.vaddr, s.primary_vaddr, POLICY)
    a, b = [], []
    st._leaves(s, None, lambda x, w: a.append(x))
    st._leaves(made.new, None, lambda x, w: b.append(x))
    return L.And(stp.ok(L, made), *[x == y for x, y in zip(a, b)])


A64 = 64
FIND_ARGS = {"orig_addr": A64, "alloc_size": A64, "alloc_align_mask": A64, "min_align_mask": A64,
             "boundary_mask": A64, "cpu": A64}
MAP_ARGS = {"orig_addr": A64, "mapping_size": A64, "alloc_size": A64, "alloc_align_mask": A64,
            "min_align_mask": A64, "boundary_mask": A64, "cpu": A64}
ALLOC_ARGS = {"size": A64, "min_align_mask": A64, "boundary_mask": A64, "cpu": A64}
RELEASE_ARGS = {"tlb_addr": A64, "min_align_mask": A64, "size": A64}


# ---------------------------------------------------------------------------------------------
# Rules proved on a domain (custom obligations)

def _is_low_mask(L, m):
    """``m`` is 2**n - 1 (a mask of low bits)."""
    return pool.u64(L, m & (m + 1)) == 0


def _d61_alignment(L, s, a):
    """The requests on which 6.1.y's search keeps the alignment it is asked for (module docstring)."""
    big = 0x7ff
    return L.And(_is_low_mask(L, a["alloc_align_mask"]), _is_low_mask(L, a["min_align_mask"]),
                 _is_low_mask(L, a["boundary_mask"]), L.ULE(a["alloc_align_mask"], P.page_size - 1),
                 L.Or(L.ULE(a["alloc_align_mask"], big), L.ULE(a["min_align_mask"], big)),
                 (a["min_align_mask"] & L.BitNot(a["boundary_mask"], 64)) == 0)


def _d61_alloc(L, s, a):
    """Coherent allocations of at least a page, with a low-bits min_align_mask."""
    return L.And(L.ULE(P.page_size, a["size"]), _is_low_mask(L, a["min_align_mask"]))


def _anything(L, s, a):
    return True


def _rule_on_domain(name, op_name, fn, args, rule_op, domain, lemmas=None):
    """A custom obligation: ``fn`` satisfies the rule named in ``name`` (else every rule of ``rule_op``)
    for arguments in ``domain``. ``lemmas(L, old, a)`` adds instances of obligations proved on their own
    (``_refinement``) to the premises."""
    template = _template()
    rule_list = [r for r in rules.of("swiotlb", rule_op) if r.name in name] or rules.legality("swiotlb", rule_op)
    clause = check_clause(rule_list[0].clause)

    def negated():
        L = logic.z3_logic()
        old = st.symbolize(template, "old")
        a = _fresh_args(Op(op_name, M, fn.__name__, args), "arg")
        pre = [inv.fn(L, old) for inv in invariants.of("swiotlb")] + [_unsigned_int_masks(L, old, a), domain(L, old, a)]
        if lemmas:
            pre += lemmas(L, old, a)
        sp = fn(L, old, **a)
        ok = stp.ok(L, sp)
        new = L.If(ok, sp.new, old)
        post = L.And(*[r.fn(L, old, a, ok, new, sp.out) for r in rule_list])
        return L.And(*pre, L.Not(post)), lambda m: {"state": st.to_json(st.decode(m, old)), "args": _decode_args(m, a)}

    def replay(cex):
        L = CONCRETE
        s = st.from_json(template, cex["state"])
        sp = fn(L, s, **cex["args"])
        ok = stp.first_failed(sp) is None
        new = sp.new if ok else s
        for r in rule_list:
            if not r.fn(L, s, cex["args"], ok, new, sp.out):
                return r.clause
        return None
    return Custom(name, clause, negated, replay)


# ---------------------------------------------------------------------------------------------
# The abstract allocation step and the refinement of the three allocation paths

def take(L, s, index, nslots, alloc_size, offset, orig_addr):
    """Any legal allocation (DESIGN §3 "two kinds of spec"): take the free run ``[index, index + nslots)``
    of one segment, record ``alloc_size``/``offset`` and, unless ``orig_addr`` is INVALID (coherent),
    the original addresses. No search: the invariants hold whichever free run is taken."""
    new = slots.occupy_run(L, P, s, index, nslots, alloc_size, offset)
    coherent = orig_addr == pool.INVALID_PHYS_ADDR
    new = L.If(coherent, new, slots.record_orig(L, P, new, index, nslots, orig_addr))
    return stp.step([(slots.is_free_run(L, s, index, nslots), "SWIOTLB-find-rule"),
                     (L.Or(coherent, L.ULT(orig_addr, 1 << slots.MAX_PHYSMEM_BITS)), "SWIOTLB-map-sizes")], new)


TAKE_ARGS = {"index": A64, "nslots": A64, "alloc_size": A64, "offset": A64, "orig_addr": A64}
INVALID = pool.INVALID_PHYS_ADDR


def _find_as_take(L, s, a, sp):
    q = slots.compute_request(L, P, POLICY, s, a["orig_addr"], a["alloc_size"], a["alloc_align_mask"],
                              a["min_align_mask"], a["boundary_mask"])
    return take(L, s, sp.out, q.nslots, a["alloc_size"], q.offset, pool.const(L, INVALID))


def _map_as_take(L, s, a, sp):
    off = pool.swiotlb_align_offset(L, a["orig_addr"], a["min_align_mask"])
    total = pool.u64(L, a["alloc_size"] + off)
    return take(L, s, sp.out[0], pool.nr_slots(L, total), total, off, a["orig_addr"])


def _alloc_as_take(L, s, a, sp):
    return take(L, s, sp.out[0], pool.nr_slots(L, a["size"]), a["size"], pool.const(L, 0), pool.const(L, INVALID))


def _leaves(x):
    out = []
    st._leaves(x, None, lambda v, w: out.append(v))
    return out


def _refinement(L, old, a, fn, as_take):
    """``fn``'s step at ``old``, ``a`` is accepted only as a legal take of its run, with take's new state
    (the claim of ``op⊑take``, under the premise that the masks are ``unsigned int``)."""
    sp = fn(L, old, **a)
    tk = as_take(L, old, a, sp)
    same = [x == y for x, y in zip(_leaves(sp.new), _leaves(tk.new), strict=True)]
    return L.Implies(_unsigned_int_masks(L, old, a), L.Implies(stp.ok(L, sp), L.And(stp.ok(L, tk), *same)))


def _find_refines(L, old, a):
    """``find⊑take`` at ``old`` and the search arguments ``a`` (a lemma: proved on its own, for every state
    satisfying the invariants and every argument)."""
    return _refinement(L, old, a, find, _find_as_take)


def _request(L, s, a):
    """The search's request for the find arguments ``a`` (as ``find`` computes it)."""
    return slots.compute_request(L, P, POLICY, s, a["orig_addr"], a["alloc_size"], a["alloc_align_mask"],
                                 a["min_align_mask"], a["boundary_mask"])


def _fits_at(L, s, q, c, slot):
    """The kernel's fit test at ``slot`` of area ``c``: in the area, aligned, inside the boundary window, and
    the start of a free run of ``nslots`` (what ``search_area`` checks at each slot it visits)."""
    shift = pool.nr_slots(L, q.tbl_dma_addr)
    return L.And(pool.in_area(L, s, c, slot), L.Not(slots.is_misaligned(L, q, slot)),
                 L.Not(slots.iommu_is_span_boundary(L, slot, q.nslots, shift, q.max_slots)),
                 L.ULE(q.nslots, L.at(s.list, slot)))


def _area_fits(L, s, a, c):
    """The claim of ``find:area c⊨fits``: the walk of area ``c`` answers only a slot that passes the fit test."""
    q = _request(L, s, a)
    r = slots.search_area(L, P, POLICY, s, c, q)
    return L.Implies(L.And(_unsigned_int_masks(L, s, a), L.ULT(c, s.nareas), r.found), _fits_at(L, s, q, c, r.slot))


def _search_lemmas(L, s, a):
    """``find:area c⊨fits`` for every area, at the search arguments ``a`` (lemmas: proved on their own)."""
    return [_area_fits(L, s, a, c) for c in range(P.io_tlb_max_areas)]


def _area_search_fits(c):
    """``find:area c⊨fits``: one area's walk (``search_area``) answers only a slot that passes the kernel's
    fit test (free run of ``nslots``, aligned, in the window, in the area). The rules and ``find⊑take``
    take it as a lemma, so they reason about one answered slot, not about the walk."""
    template = _template()
    clause = check_clause("SWIOTLB-find-rule")

    def negated():
        L = logic.z3_logic()
        old = st.symbolize(template, "old")
        a = _fresh_args(Op("find", M, "find", FIND_ARGS), "arg")
        # the walk needs the pool's shape and the free-run counts only (fewer premises: a stronger claim)
        pre = [inv.fn(L, old) for inv in invariants.of("swiotlb") if inv.name in ("inv_pool_geometry", "inv_free_runs")]
        pre.append(_unsigned_int_masks(L, old, a))
        return L.And(*pre, L.Not(_area_fits(L, old, a, c))), \
            lambda m: {"state": st.to_json(st.decode(m, old)), "args": _decode_args(m, a)}

    def replay(cex):
        L = CONCRETE
        s, a = st.from_json(template, cex["state"]), cex["args"]
        if c >= s.nareas:
            return None
        q = _request(L, s, a)
        r = slots.search_area(L, P, POLICY, s, c, q)
        return clause if r.found and not _fits_at(L, s, q, c, r.slot) else None
    return Custom(f"find:area {c}⊨fits", clause, negated, replay)


def _map_search(L, a):
    """The search ``map_slots`` runs for the map arguments ``a``: ``alloc_size + offset`` bytes, same masks."""
    off = pool.swiotlb_align_offset(L, a["orig_addr"], a["min_align_mask"])
    return {"orig_addr": a["orig_addr"], "alloc_size": pool.u64(L, a["alloc_size"] + off),
            **{k: a[k] for k in ("alloc_align_mask", "min_align_mask", "boundary_mask", "cpu")}}


def _alloc_search(L, a):
    """The search ``alloc`` runs for the alloc arguments ``a``: no original address, the policy's alignment."""
    return {"orig_addr": pool.const(L, 0), "alloc_size": a["size"],
            "alloc_align_mask": slots.compute_alloc_align(L, P, POLICY, a["size"]),
            "min_align_mask": a["min_align_mask"], "boundary_mask": a["boundary_mask"], "cpu": a["cpu"]}


def _refines_take(op_name, fn, args, as_take, lemmas=None):
    """``op ⊑ take``: every step ``op`` accepts is a legal ``take`` of its chosen run, with the same new state.

    With ``take ⊢ inv`` (generated obligations) this gives ``op ⊢ inv`` without solving the search and
    the invariants together. ``lemmas(L, old, a)`` adds instances of other obligations to the premises
    (map and alloc: ``find⊑take`` at the search they run). The replay runs the op concretely and
    reports SWIOTLB-find-rule when an accepted step is not that take (whatever counterexample z3
    picked, so mutant checks are stable).
    """
    template = _template()
    clause = check_clause("SWIOTLB-find-rule")

    def negated():
        L = logic.z3_logic()
        old = st.symbolize(template, "old")
        a = _fresh_args(Op(op_name, M, fn.__name__, args), "arg")
        pre = [inv.fn(L, old) for inv in invariants.of("swiotlb")] + [_unsigned_int_masks(L, old, a)]
        if lemmas:
            pre += lemmas(L, old, a)
        return L.And(*pre, L.Not(_refinement(L, old, a, fn, as_take))), \
            lambda m: {"state": st.to_json(st.decode(m, old)), "args": _decode_args(m, a)}

    def replay(cex):
        L = CONCRETE
        s = st.from_json(template, cex["state"])
        sp = fn(L, s, **cex["args"])
        if stp.first_failed(sp) is not None:
            return None
        tk = as_take(L, s, cex["args"], sp)
        return None if stp.first_failed(tk) is None and tk.new == sp.new else clause
    return Custom(f"{op_name}⊑take", clause, negated, replay)


# ---------------------------------------------------------------------------------------------
# Invariant preservation, one slot (or area) at a time

def _groups(inv_name):
    """How an invariant's conjuncts (``specs/invariants/swiotlb.PARTS``) are split into obligations."""
    T, Mx = P.pool_nslabs, P.io_tlb_max_areas
    if inv_name == "inv_pool_geometry":
        return [("shape", [0]), ("areas", list(range(1, 1 + Mx))), ("padding", list(range(1 + Mx, 1 + Mx + T)))]
    if inv_name == "inv_area_used":       # area 0 per area count: one area of 8 slots is the costly sum
        return [(f"area 0, {n} area{'s' * (n > 1)}", [0], n) for n in (1 << e for e in range(Mx.bit_length()))
                if n <= Mx] + [(f"area {a}", [a], None) for a in range(1, Mx)]
    return [(f"slot {k}", [k]) for k in range(T)]


def _preserves(op_name, fn, args, assume, inv_name, label, idx, nareas=None):
    """``op ⊢ inv[label]``: from any state satisfying every invariant, the accepted step keeps the
    conjuncts ``idx`` of ``inv_name``. Together the labels of one invariant cover all its conjuncts,
    so they prove ``op ⊢ inv``; the replay checks the whole invariant on the concrete step."""
    template = _template()
    inv = next(i for i in invariants.of("swiotlb") if i.name == inv_name)
    parts = sinv.PARTS[inv_name]

    def negated():
        L = logic.z3_logic()
        old = st.symbolize(template, "old")
        a = _fresh_args(Op(op_name, M, fn.__name__, args), "arg")
        pre = [i.fn(L, old) for i in invariants.of("swiotlb")] + [assume(L, old, a)]
        if nareas is not None:
            pre.append(old.nareas == nareas)
        sp = fn(L, old, **a)
        new = L.If(stp.ok(L, sp), sp.new, old)
        got = parts(L, new)
        return L.And(*pre, L.Not(L.And(*[got[i] for i in idx]))), \
            lambda m: {"state": st.to_json(st.decode(m, old)), "args": _decode_args(m, a)}

    def replay(cex):
        s = st.from_json(template, cex["state"])
        if not all(i.fn(CONCRETE, s) for i in invariants.of("swiotlb")):
            return None
        sp = fn(CONCRETE, s, **cex["args"])
        new = sp.new if stp.first_failed(sp) is None else s
        return None if inv.fn(CONCRETE, new) else inv.clause
    return Custom(f"{op_name}⊢{inv_name}[{label}]", check_clause(inv.clause), negated, replay)


def _preservation(op_name, fn, args, assume):
    return tuple(_preserves(op_name, fn, args, assume, name, *group)
                 for name in sinv.PARTS for group in _groups(name))


def _take_obeys_find_rule():
    """``take ⊨ rule_find_takes_free_run`` for a search-shaped take (``nslots = nr_slots(alloc_size)``, no
    record): with ``find ⊑ take`` this is the rule for the search, proved without the search."""
    template = _template()
    r = next(x for x in rules.of("swiotlb", "find") if x.name == "rule_find_takes_free_run")
    invalid = pool.INVALID_PHYS_ADDR

    def run(L, s, a):
        sp = take(L, s, a["index"], a["nslots"], a["alloc_size"], a["offset"], pool.const(L, invalid))
        ok = stp.ok(L, sp)
        shaped = a["nslots"] == pool.nr_slots(L, a["alloc_size"])
        return shaped, r.fn(L, s, {"alloc_size": a["alloc_size"]}, ok, L.If(ok, sp.new, s), a["index"])

    def negated():
        L = logic.z3_logic()
        old = st.symbolize(template, "old")
        a = _fresh_args(Op("take", M, "take", TAKE_ARGS), "arg")
        shaped, holds = run(L, old, a)
        pre = [inv.fn(L, old) for inv in invariants.of("swiotlb")]
        return L.And(*pre, shaped, L.Not(holds)), \
            lambda m: {"state": st.to_json(st.decode(m, old)), "args": _decode_args(m, a)}

    def replay(cex):
        shaped, holds = run(CONCRETE, st.from_json(template, cex["state"]), cex["args"])
        return r.clause if shaped and not holds else None
    return Custom("take⊨rule_find_takes_free_run", check_clause(r.clause), negated, replay)


# ---------------------------------------------------------------------------------------------
# Free undoes alloc (I5) and the search bound (I8)

RESTORED = ("list", "area_used", "orig_addr", "alloc_size", "head", "run")


def _release_undoes_take(part):
    """Releasing a run just taken (at its tlb_addr, with the offset the mapping used) restores every record.

    One obligation per ``part``: ``accepted`` (the release is accepted) or one field of ``RESTORED``
    (restored entry by entry); together they are the whole claim. The replay checks the whole claim."""
    template = _template()
    clause = check_clause("SWIOTLB-release-undoes")

    def run(L, s, a):
        taken = take(L, s, a["index"], a["nslots"], a["alloc_size"], a["offset"], a["orig_addr"])
        tlb = pool.u64(L, pool.compute_slot_addr(L, s.start, a["index"]) + a["offset"])
        back = release(L, taken.new, tlb, a["min_align_mask"], 0)
        # the mapping's own records: offset = orig's min-align bits, alloc_size covers exactly nslots
        legal = L.And(a["offset"] == pool.swiotlb_align_offset(L, a["orig_addr"], a["min_align_mask"]),
                      pool.nr_slots(L, a["alloc_size"]) == a["nslots"], L.ULE(a["offset"], a["alloc_size"]),
                      L.ULE(a["alloc_size"], P.io_tlb_segsize * pool.IO_TLB_SIZE))
        return taken, back, legal

    def negated():
        L = logic.z3_logic()
        old = st.symbolize(template, "old")
        a = _fresh_args(Op("take", M, "take", {**TAKE_ARGS, "min_align_mask": A64}), "arg")
        pre = [inv.fn(L, old) for inv in invariants.of("swiotlb")] + [_unsigned_int_masks(L, old, a)]
        taken, back, legal = run(L, old, a)
        if part == "accepted":
            same = [stp.ok(L, back)]
        else:
            same = [x == y for x, y in zip(getattr(old, part), getattr(back.new, part))]
        claim = L.Implies(L.And(stp.ok(L, taken), legal), L.And(*same))
        return L.And(*pre, L.Not(claim)), lambda m: {"state": st.to_json(st.decode(m, old)), "args": _decode_args(m, a)}

    def replay(cex):
        s = st.from_json(template, cex["state"])
        taken, back, legal = run(CONCRETE, s, cex["args"])
        if stp.first_failed(taken) is not None or not legal:
            return None
        if stp.first_failed(back) is not None or any(getattr(s, f) != getattr(back.new, f) for f in RESTORED):
            return clause
        return None
    return Custom(f"take;release-restores[{part}]", clause, negated, replay)


def _search_bound_suffices():
    """The kernel's walk (from 6.1's start) visits nothing after ``search_steps`` steps that it had not
    visited before, and if it ever returns to its start it has done so within ``search_steps`` steps."""
    template = _template()
    clause = check_clause("SWIOTLB-search-bounded")

    def trajectory(L, s, a):
        q = slots.compute_request(L, P, POLICY, s, a["orig_addr"], a["alloc_size"],
                                  a["alloc_align_mask"], a["min_align_mask"], a["boundary_mask"])
        start = slots.search_start(L, POLICY, s, 0, q)
        # the walk's next index from every position of the table, computed once by the kernel's step
        succ = tuple(slots.walk_step(L, s, q, 0, pool.const(L, k))[2] for k in range(P.pool_nslabs))
        seen = [start]
        for _ in range(2 * slots.search_steps(P)):
            seen.append(L.at(succ, seen[-1]))
        return seen

    def claim(L, seen):
        b = slots.search_steps(P)
        covered = L.And(*[L.Or(*[v == w for w in seen[:b]]) for v in seen[b:]])
        returns_late = L.Or(*[v == seen[0] for v in seen[b + 1:]])
        returns_early = L.Or(*[v == seen[0] for v in seen[1:b + 1]])
        return L.And(covered, L.Implies(returns_late, returns_early))

    def negated():
        L = logic.z3_logic()
        old = st.symbolize(template, "old")
        a = _fresh_args(Op("find", M, "find", FIND_ARGS), "arg")
        pre = [inv.fn(L, old) for inv in invariants.of("swiotlb")] + [_unsigned_int_masks(L, old, a)]
        return L.And(*pre, L.Not(claim(L, trajectory(L, old, a)))), \
            lambda m: {"state": st.to_json(st.decode(m, old)), "args": _decode_args(m, a)}

    def replay(cex):
        s = st.from_json(template, cex["state"])
        return None if claim(CONCRETE, trajectory(CONCRETE, s, cex["args"])) else clause
    return Custom("search-bound-suffices", clause, negated, replay)


SUBJECTS = [Subject(
    component="swiotlb", template=_template, init=_init,
    preset="SMALL/2 symbolic pool (nslabs <= 8, segsize 4, 1-2 areas, any page-aligned start, 64-bit words); policy v6.1",
    ops=(),
    customs=(*_preservation("take", take, TAKE_ARGS, _anything),
             *_preservation("release", release, RELEASE_ARGS, _unsigned_int_masks),
             _rule_on_domain("release⊨rule_release_frees_allocation", "release", release, RELEASE_ARGS, "release",
                             _anything),
             *[_area_search_fits(c) for c in range(P.io_tlb_max_areas)],
             _refines_take("find", find, FIND_ARGS, _find_as_take, _search_lemmas),
             _refines_take("map", map_slots, MAP_ARGS, _map_as_take,
                           lambda L, old, a: [_find_refines(L, old, _map_search(L, a))]),
             _refines_take("alloc", alloc, ALLOC_ARGS, _alloc_as_take,
                           lambda L, old, a: [_find_refines(L, old, _alloc_search(L, a))]),
             _take_obeys_find_rule(),
             _rule_on_domain("find⊨rule_find_in_window", "find", find, FIND_ARGS, "find", _anything, _search_lemmas),
             _rule_on_domain("map⊨rule_map_records", "map", map_slots, MAP_ARGS, "map", _anything,
                             lambda L, old, a: [_refinement(L, old, a, map_slots, _map_as_take)]),
             _rule_on_domain("find⊨exact_find_linux_6_1", "find", find, FIND_ARGS, "find", _anything),
             _rule_on_domain("find⊨rule_find_alignment[6.1 domain]", "find", find, FIND_ARGS, "find_aligned",
                             _d61_alignment, _search_lemmas),
             _rule_on_domain("alloc⊨rule_alloc_owned[size >= page]", "alloc", alloc, ALLOC_ARGS, "alloc_owned",
                             _d61_alloc, lambda L, old, a: [_refinement(L, old, a, alloc, _alloc_as_take)]),
             *[_release_undoes_take(part) for part in ("accepted", *RESTORED)],
             _search_bound_suffices(),
             *[index_custom(name, _template, fn, args, lambda L, s, a: [
                 *[inv.fn(L, s) for inv in invariants.of("swiotlb")], _unsigned_int_masks(L, s, a)])
               for name, fn, args in (("take", take, TAKE_ARGS), ("find", find, FIND_ARGS), ("map", map_slots, MAP_ARGS),
                                      ("alloc", alloc, ALLOC_ARGS), ("release", release, RELEASE_ARGS))]))]
