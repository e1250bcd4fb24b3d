"""Rules of the hypervisor's memory operations: what ANY conforming hypervisor may do in one step (facts §3.4, §4.1).

Each rule states when the operation must be accepted and, when it is, which stage-2 entries,
owners and parcel records may change, and how. Arguments arrive as in ``proofs/hypervisor.py``:
a parcel's ACL is ``acl0 .. acl{n_vms-1}``; grant operations return ``Effect(handle, zero)``.

Legality and exactness: a new parcel may get any free handle above the region handles (legality:
Gunyah's resource manager allocates fresh ones); the model takes the lowest free one, reusing
deleted handles (``exact_create_lowest_handle``, docs/hypervisor.md). Every
other acceptance condition is a MUST both ways (each refusal has its error code, a valid call
succeeds); which error a call with several faults gets is Gunyah's code order (exact mode).
"""
from __future__ import annotations

from t1virtio.hyp.grants import is_subset
from t1virtio.hyp.memory import FREE, NO_PARCEL, RWX, PageState, Trans, get_entry
from t1virtio.specs.rules import exact, rule

C = "hypervisor"
BOOT_OPS = ("vm_assign", "region_provision", "boot_finish")
GRANT_OPS = ("share", "lend", "donate", "accept", "release", "reclaim", "recall")
CREATE_OPS = {"share": Trans.SHARE, "lend": Trans.LEND, "donate": Trans.DONATE}


def acl_of(args: dict, n_vms: int) -> tuple:
    """Return the ACL carried by ``args`` (``acl0`` .. ``acl{n_vms-1}``)."""
    return tuple(args[f"acl{v}"] for v in range(n_vms))


def same_entry(L, a, b):
    return L.And(a.state == b.state, a.rights == b.rights, a.ipa == b.ipa)


def are_others_unchanged(L, old, new, k, vm):
    """Every VM but ``vm`` keeps its stage-2 entry for page ``k``."""
    return L.all_idx(len(old.s2), lambda v: L.Or(v == vm, same_entry(L, old.s2[v][k], new.s2[v][k])))


def is_page_unchanged(L, old, new, k, except_vm=None):
    """Page ``k``'s owner, parcel and every stage-2 entry (but ``except_vm``'s) are unchanged."""
    entries = (L.all_idx(len(old.s2), lambda v: same_entry(L, old.s2[v][k], new.s2[v][k])) if except_vm is None
               else are_others_unchanged(L, old, new, k, except_vm))
    return L.And(new.owner[k] == old.owner[k], new.parcel[k] == old.parcel[k], entries)


def is_region_page(L, s, k):
    return L.And(L.Not(s.parcel[k] == NO_PARCEL), L.at(s.parcels, s.parcel[k]).locked)


# --- boot


def rule_boot_takes_free_pages(L, old, args, ok, new, out):
    """Before boot only; only the named free page changes, and it goes to the named VM."""
    page = args["page"]
    vm = args["vm"] if "vm" in args else args["secondary"]
    changed_only_page = L.all_idx(len(old.owner), lambda k: L.Or(page == k, is_page_unchanged(L, old, new, k)))
    return L.Implies(ok, L.And(L.Not(old.booted), L.Not(new.booted), changed_only_page,
                               L.at(old.owner, page) == FREE, L.at(new.owner, page) == vm))


for _op in ("vm_assign", "region_provision"):
    rule(C, _op, "HYP-BOOT-rule")(rule_boot_takes_free_pages)


@rule(C, "boot_finish", "HYP-BOOT-rule")
def rule_boot_finish(L, old, args, ok, new, out):
    """Boot completes and nothing else changes."""
    return L.And(ok, new.booted, L.all_idx(len(old.owner), lambda k: is_page_unchanged(L, old, new, k)))


# --- regions


def rule_region_stable(L, old, args, ok, new, out):
    """No region page changes; after boot, no page becomes a region page."""
    n = len(old.owner)
    return L.And(
        L.all_idx(n, lambda k: L.Implies(is_region_page(L, old, k), L.And(
            is_page_unchanged(L, old, new, k), L.at(new.parcels, new.parcel[k]).locked))),
        L.Implies(old.booted, L.all_idx(n, lambda k: L.Implies(is_region_page(L, new, k), is_region_page(L, old, k)))))


for _op in BOOT_OPS + GRANT_OPS:
    rule(C, _op, "HYP-REGION-stable")(rule_region_stable)


# --- create


def make_create_rule(trans):
    def rule_create_parcels_sgl(L, old, args, ok, new, out):
        """Accepted iff legal; SGL pages enter the new parcel, the owner keeps access for SHARE only, nobody else changes."""
        n_vms, n = len(old.s2), len(old.owner)
        vm, ipa, npages, acl = args["vm"], args["ipa"], args["npages"], acl_of(args, n_vms)
        row = L.at(old.s2, vm)
        sgl = [L.And(L.Not(row[k].state == PageState.NOPAGE), L.ULE(ipa, row[k].ipa), L.ULT(row[k].ipa, ipa + npages))
               for k in range(n)]
        entries = [L.Not(acl[v] == 0) for v in range(n_vms)]
        free = L.any_idx(len(old.parcels), lambda h: L.And(L.ULE(n_vms - 1, h), L.Not(old.parcels[h].live)))
        legal = L.And(
            L.ULE(1, npages), L.any_idx(n_vms, lambda v: entries[v]),
            L.all_idx(n_vms, lambda v: L.And(L.ULE(0, acl[v]), L.ULE(acl[v], RWX))),
            L.at(tuple(entries), vm) == (trans == Trans.SHARE),
            (L.And(L.count(n_vms, lambda v: entries[v]) == 1, L.all_idx(n_vms, lambda v: L.Or(acl[v] == 0, acl[v] == RWX)))
             if trans == Trans.DONATE else True),
            L.count(n, lambda k: sgl[k]) == npages,
            L.all_idx(n, lambda k: L.Implies(sgl[k], L.And(old.owner[k] == vm, row[k].state == PageState.OWNED))),
            free)
        h = out.value
        P = L.at(new.parcels, h)
        keep = PageState.SHARED_OWNED if trans == Trans.SHARE else PageState.NOPAGE
        pages = L.all_idx(n, lambda k: L.If(
            sgl[k],
            L.And(new.parcel[k] == h, new.owner[k] == vm, get_entry(L, new, vm, k).state == keep,
                  get_entry(L, new, vm, k).rights == (L.at(acl, vm) if trans == Trans.SHARE else 0),
                  get_entry(L, new, vm, k).ipa == row[k].ipa, are_others_unchanged(L, old, new, k, vm)),
            is_page_unchanged(L, old, new, k)))
        record = L.And(L.ULE(n_vms - 1, h), L.ULT(h, len(old.parcels)), L.Not(L.at(old.parcels, h).live), P.live,
                       P.owner == vm, P.trans == trans, L.Not(P.locked),
                       L.all_idx(n_vms, lambda v: L.And(P.acl[v] == acl[v], L.Not(P.accepted[v]))))
        return L.And(ok == legal, L.Implies(ok, L.And(pages, record)))
    return rule_create_parcels_sgl


for _op, _trans in CREATE_OPS.items():
    rule(C, _op, "HYP-MEMPARCEL-create-rule")(make_create_rule(_trans))


def make_exact_create_rule(trans):
    legal = make_create_rule(trans)

    def exact_create_lowest_handle(L, old, args, ok, new, out):
        """The model's choice: the new parcel's handle is the lowest free one above the region handles."""
        n_vms, h = len(old.s2), out.value
        lower_live = L.all_idx(len(old.parcels), lambda k: L.Implies(L.And(L.ULE(n_vms - 1, k), L.ULT(k, h)),
                                                                     old.parcels[k].live))
        return L.And(legal(L, old, args, ok, new, out), L.Implies(ok, lower_live))
    return exact_create_lowest_handle


for _op, _trans in CREATE_OPS.items():
    exact(C, _op, "HYP-MEMPARCEL-create-lowest-handle", "t1virtio hypervisor model (lowest free handle, reused after delete)",
          refines="rule_create_parcels_sgl")(make_exact_create_rule(_trans))


# --- accept / release / reclaim / recall


def is_live(L, s, h):
    return L.And(L.ULE(0, h), L.ULT(h, len(s.parcels)), L.at(s.parcels, h).live)


@rule(C, "accept", "HYP-MEMPARCEL-accept-rule")
def rule_accept_maps_acceptor(L, old, args, ok, new, out):
    """Accepted iff legal; only the acceptor's map changes, with the requested rights; DONATE moves ownership."""
    vm, h, rights, ipa = args["vm"], args["handle"], args["rights"], args["ipa"]
    n = len(old.owner)
    P = L.at(old.parcels, h)
    acl = L.at(P.acl, vm)
    mine = [old.parcel[k] == h for k in range(n)]
    target = [ipa + get_entry(L, old, P.owner, k).ipa - P.base for k in range(n)]
    ipas_free = L.all_idx(n, lambda k: L.Implies(mine[k], L.And(
        L.ULE(0, target[k]), L.ULT(target[k], old.ipa_pages),
        L.all_idx(n, lambda q: L.Implies(L.Or(L.Not(get_entry(L, old, vm, q).state == PageState.NOPAGE),
                                              old.owner[q] == vm),
                                         L.Not(get_entry(L, old, vm, q).ipa == target[k]))))))
    legal = L.And(is_live(L, old, h), L.Not(vm == P.owner), L.Not(acl == 0), L.Not(L.at(P.accepted, vm)),
                  args["trans"] == P.trans, L.Not(rights == 0), L.ULE(rights, RWX), is_subset(L, rights, acl), ipas_free)
    donate = P.trans == Trans.DONATE
    pages = L.all_idx(n, lambda k: L.If(
        mine[k],
        L.And(get_entry(L, new, vm, k).state == L.If(donate, PageState.OWNED, PageState.SHARED_BORROWED),
              get_entry(L, new, vm, k).rights == L.If(donate, RWX, rights),
              get_entry(L, new, vm, k).ipa == target[k],
              new.owner[k] == L.If(donate, vm, old.owner[k]),
              new.parcel[k] == L.If(donate, NO_PARCEL, h),
              are_others_unchanged(L, old, new, k, vm)),
        is_page_unchanged(L, old, new, k)))
    Q = L.at(new.parcels, h)
    record = L.If(donate, L.Not(Q.live), L.And(Q.live, L.at(Q.accepted, vm), Q.owner == P.owner))
    return L.And(ok == legal, L.Implies(ok, L.And(pages, record)))


@rule(C, "release", "HYP-MEMPARCEL-release-rule")
def rule_release_unmaps_borrower(L, old, args, ok, new, out):
    """Accepted iff an accepted borrower of an unlocked parcel asks (W right for SANITIZE); only its pages unmap."""
    vm, h = args["vm"], args["handle"]
    P = L.at(old.parcels, h)
    legal = L.And(is_live(L, old, h), L.Not(P.locked), L.at(P.accepted, vm),
                  L.Implies(args["sanitize"], (L.at(P.acl, vm) & 2) == 2))
    pages = L.all_idx(len(old.owner), lambda k: L.If(
        old.parcel[k] == h,
        L.And(get_entry(L, new, vm, k).state == PageState.NOPAGE, get_entry(L, new, vm, k).rights == 0,
              is_page_unchanged(L, old, new, k, except_vm=vm)),
        is_page_unchanged(L, old, new, k)))
    Q = L.at(new.parcels, h)
    return L.And(ok == legal, L.Implies(ok, L.And(pages, Q.live, L.Not(L.at(Q.accepted, vm)))))


@rule(C, "reclaim", "HYP-MEMPARCEL-reclaim-rule")
def rule_reclaim_needs_no_borrower(L, old, args, ok, new, out):
    """Accepted iff the owner asks, the parcel is unlocked and no borrower holds it; the pages become its private memory."""
    vm, h = args["vm"], args["handle"]
    P = L.at(old.parcels, h)
    legal = L.And(is_live(L, old, h), vm == P.owner, L.Not(P.locked),
                  L.Not(L.any_idx(len(old.s2), lambda v: P.accepted[v])))
    pages = L.all_idx(len(old.owner), lambda k: L.If(
        old.parcel[k] == h,
        L.And(new.parcel[k] == NO_PARCEL, new.owner[k] == vm, get_entry(L, new, vm, k).state == PageState.OWNED,
              get_entry(L, new, vm, k).ipa == get_entry(L, old, vm, k).ipa,
              L.all_idx(len(old.s2), lambda v: L.Or(v == vm, new.s2[v][k].state == PageState.NOPAGE))),
        is_page_unchanged(L, old, new, k)))
    return L.And(ok == legal, L.Implies(ok, L.And(pages, L.Not(L.at(new.parcels, h).live))))


@rule(C, "recall", "HYP-MEMPARCEL-recall-rule")
def rule_recall_revokes_nothing(L, old, args, ok, new, out):
    """Accepted iff the owner asks; no owner, parcel membership, mapping or right changes."""
    P = L.at(old.parcels, args["handle"])
    legal = L.And(is_live(L, old, args["handle"]), args["vm"] == P.owner)
    same = L.all_idx(len(old.owner), lambda k: is_page_unchanged(L, old, new, k))
    kept = L.all_idx(len(old.parcels), lambda h: L.And(
        new.parcels[h].live == old.parcels[h].live,
        L.all_idx(len(old.s2), lambda v: new.parcels[h].accepted[v] == old.parcels[h].accepted[v])))
    return L.And(ok == legal, same, kept)


# --- sanitize


def rule_sanitize_zeroes_parcel(L, old, args, ok, new, out):
    """When accepted: with SANITIZE exactly the parcel's pages are zeroed; without it, none. Accept/recall zero nothing."""
    n = len(old.owner)
    sanitize = args.get("sanitize", False)
    if "handle" in args:
        h = args["handle"]
        pages = [old.parcel[k] == h for k in range(n)]
    else:
        pages = [L.And(old.parcel[k] == NO_PARCEL, new.parcel[k] == out.value) for k in range(n)]
    return L.Implies(ok, L.all_idx(n, lambda k: out.zero[k] == L.And(sanitize, pages[k])))


for _op in GRANT_OPS:
    rule(C, _op, "HYP-MEMPARCEL-sanitize")(rule_sanitize_zeroes_parcel)
