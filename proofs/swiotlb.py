"""Proof subject: the swiotlb slot allocator (Linux 6.1.y policy) on SMALL tables, any pool shape.

The state is symbolic: any ``nslabs <= 16`` (segments of 8 slots), one or two areas, any page
aligned start, any contents allowed by the invariants; requests are any 64-bit values (the two
alignment masks are ``unsigned int`` in Linux). The operations are the allocator's transitions with
the default policy (``policy.DEFAULT``, read at call time, so a mutant swapping the version is what
gets proved).

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
from t1virtio.proofs.engine import Custom, Op, Subject, _decode_args, _fresh_args, check_clause
from t1virtio.specs import invariants, rules
from t1virtio.step import apply
from t1virtio.swiotlb import policy as pol
from t1virtio.swiotlb import pool, slots

M = "t1virtio.proofs.swiotlb"
# SMALL's shape at half size (2 segments of 4 slots, 2 areas, 2-slot pages): the unrolled search is
# quadratic in the table, and 64-bit words keep every address computation exact.
P = replace(SMALL, name="SMALL/2", pool_nslabs=8, io_tlb_segsize=4)
MASKS = ("alloc_align_mask", "min_align_mask")


def find(L, s, orig_addr, alloc_size, alloc_align_mask, min_align_mask, boundary_mask, cpu):
    return slots.swiotlb_find_slots(L, P, s, orig_addr, alloc_size, alloc_align_mask, min_align_mask,
                                    boundary_mask, cpu)


def map_slots(L, s, orig_addr, mapping_size, alloc_size, alloc_align_mask, min_align_mask, boundary_mask, cpu):
    return slots.swiotlb_tbl_map_slots(L, P, s, orig_addr, mapping_size, alloc_size, alloc_align_mask,
                                       min_align_mask, boundary_mask, cpu)


def alloc(L, s, size, min_align_mask, boundary_mask, cpu):
    return slots.swiotlb_alloc_slots(L, P, s, size, min_align_mask, boundary_mask, cpu)


def release(L, s, tlb_addr, min_align_mask, size):
    return slots.swiotlb_release_slots(L, P, s, tlb_addr, min_align_mask, size)


def _unsigned_int_masks(L, s, a):
    """alloc_align_mask and min_align_mask are ``unsigned int``; the cpu number too."""
    return L.And(*[L.ULE(a[m], slots.U32) for m in (*MASKS, "cpu") if m in a])


def _template():
    return slots.SlotPool(P, 0, P.pool_nslabs, P.io_tlb_max_areas, policy=pol.V6_1).state


def _init(L, s):
    """Every pool ``swiotlb_init_pool`` accepts: any size, area count and page-aligned start."""
    made = pool.swiotlb_init_pool(L, P, s.start, s.nslabs, s.nareas, s.vaddr, s.primary_vaddr)
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


def _rule_on_domain(name, op_name, fn, args, rule_op, domain):
    """A custom obligation: ``fn`` satisfies the rules of ``rule_op`` for arguments in ``domain``."""
    template = _template()
    rule_list = rules.of("swiotlb", rule_op)
    clause = check_clause(rule_list[0].clause)

    def negated():
        L = logic.z3_logic()
        old = st.symbolize(template, "old")
        a = _fresh_args(Op(op_name, M, fn.__name__, args), "arg")
        pre = [inv.fn(L, old) for inv in invariants.of("swiotlb")] + [_unsigned_int_masks(L, old, a), domain(L, old, a)]
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
# Free undoes alloc (I5) and the search bound (I8)

def _release_undoes_map():
    template = _template()
    clause = check_clause("SWIOTLB-release-undoes")
    fields = ("list", "area_used", "orig_addr", "alloc_size", "head", "run")

    def negated():
        L = logic.z3_logic()
        old = st.symbolize(template, "old")
        a = _fresh_args(Op("map", M, "map_slots", MAP_ARGS), "arg")
        pre = [inv.fn(L, old) for inv in invariants.of("swiotlb")] + [_unsigned_int_masks(L, old, a)]
        mapped = map_slots(L, old, **a)
        back = release(L, mapped.new, mapped.out[1], a["min_align_mask"], 0)
        same = [x == y for f in fields for x, y in zip(getattr(old, f), getattr(back.new, f))]
        claim = L.Implies(stp.ok(L, mapped), L.And(stp.ok(L, back), *same))
        return L.And(*pre, L.Not(claim)), lambda m: {"state": st.to_json(st.decode(m, old)), "args": _decode_args(m, a)}

    def replay(cex):
        s = st.from_json(template, cex["state"])
        mapped = map_slots(CONCRETE, s, **cex["args"])
        if stp.first_failed(mapped) is not None:
            return None
        back = release(CONCRETE, mapped.new, mapped.out[1], cex["args"]["min_align_mask"], 0)
        if stp.first_failed(back) is not None or any(getattr(s, f) != getattr(back.new, f) for f in fields):
            return clause
        return None
    return Custom("map;release-restores", clause, negated, replay)


def _search_bound_suffices():
    """The kernel's walk (from 6.1's start) visits nothing after ``search_steps`` steps that it had not
    visited before, and if it ever returns to its start it has done so within ``search_steps`` steps."""
    template = _template()
    clause = check_clause("SWIOTLB-search-bounded")

    def trajectory(L, s, a):
        q = slots.compute_request(L, P, pol.current(None), s, a["orig_addr"], a["alloc_size"],
                                  a["alloc_align_mask"], a["min_align_mask"], a["boundary_mask"])
        start = slots.search_start(L, pol.current(None), s, 0, q)
        seen = [start]
        for _ in range(2 * slots.search_steps(P)):
            seen.append(slots.walk_step(L, s, q, 0, seen[-1])[2])
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
    preset="SMALL symbolic pool (nslabs <= 16, segsize 8, 1-2 areas, any page-aligned start); policy v6.1",
    ops=(Op("find", M, "find", FIND_ARGS, assume=_unsigned_int_masks),
         Op("map", M, "map_slots", MAP_ARGS, assume=_unsigned_int_masks),
         Op("alloc", M, "alloc", ALLOC_ARGS, assume=_unsigned_int_masks),
         Op("release", M, "release", RELEASE_ARGS, assume=_unsigned_int_masks)),
    customs=(_rule_on_domain("find⊨rule_find_alignment[6.1 domain]", "find", find, FIND_ARGS, "find_aligned",
                             _d61_alignment),
             _rule_on_domain("alloc⊨rule_alloc_owned[size >= page]", "alloc", alloc, ALLOC_ARGS, "alloc_owned",
                             _d61_alloc),
             _release_undoes_map(),
             _search_bound_suffices()))]
