"""Invariants of the hypervisor's memory database: ownership, isolation, parcels, stage-2, regions (facts §3.4, §4.1, §6.3)."""
from __future__ import annotations

from t1virtio.hyp.grants import is_subset
from t1virtio.hyp.memory import FREE, NO_PARCEL, PRIMARY, RW, RWX, PageState, Trans, get_entry, is_held
from t1virtio.specs.invariants import invariant

C = "hypervisor"


def _pages(s):
    return range(len(s.owner))


def _vms(s):
    return range(len(s.s2))


def get_page_parcel(L, s, k):
    """Return the parcel record page ``k`` is in (meaningful when ``s.parcel[k] != NO_PARCEL``)."""
    return L.at(s.parcels, s.parcel[k])


@invariant(C, "HYP-PAGE-one-owner")
def inv_one_owner(L, s):
    """Each page's owner is a VM or the hypervisor (FREE); only the owner is OWNED/SHARED_OWNED; free pages are unmapped."""
    n_vms = len(s.s2)
    return L.all_idx(len(s.owner), lambda k: L.And(
        L.Or(s.owner[k] == FREE, L.And(L.ULE(0, s.owner[k]), L.ULT(s.owner[k], n_vms))),
        L.all_idx(n_vms, lambda v: L.Implies(
            L.Or(s.s2[v][k].state == PageState.OWNED, s.s2[v][k].state == PageState.SHARED_OWNED),
            s.owner[k] == v)),
        L.Implies(s.owner[k] == FREE, L.And(s.parcel[k] == NO_PARCEL, L.all_idx(
            n_vms, lambda v: s.s2[v][k].state == PageState.NOPAGE)))))


@invariant(C, "HYP-PAGE-owner-state")
def inv_owner_state(L, s):
    """Every state is one of pKVM's four; the owner is OWNED iff in no parcel, SHARED_OWNED iff shared, NOPAGE iff lent/donated."""
    def at(v, k):
        e, P = s.s2[v][k], get_page_parcel(L, s, k)
        in_parcel = L.Not(s.parcel[k] == NO_PARCEL)
        return L.And(L.ULE(PageState.OWNED, e.state), L.ULE(e.state, PageState.NOPAGE), L.Implies(s.owner[k] == v, L.And(
            (e.state == PageState.OWNED) == L.Not(in_parcel),
            (e.state == PageState.SHARED_OWNED) == L.And(in_parcel, P.trans == Trans.SHARE),
            (e.state == PageState.NOPAGE) == L.And(in_parcel, L.Not(P.trans == Trans.SHARE)))))
    return L.all_idx(len(s.s2), lambda v: L.all_idx(len(s.owner), lambda k: at(v, k)))


@invariant(C, "HYP-ISO-private")
def inv_isolation(L, s):
    """A non-owner reaches a page only SHARED_BORROWED through a live parcel it accepted (so never a private page)."""
    def at(v, k):
        e, P = s.s2[v][k], get_page_parcel(L, s, k)
        return L.And(
            L.Implies(L.And(L.Not(s.owner[k] == v), L.Not(e.state == PageState.NOPAGE)), L.And(
                e.state == PageState.SHARED_BORROWED, L.Not(s.parcel[k] == NO_PARCEL), P.live, L.at(P.accepted, v))),
            L.Implies(e.state == PageState.SHARED_BORROWED, L.Not(s.owner[k] == v)))
    return L.all_idx(len(s.s2), lambda v: L.all_idx(len(s.owner), lambda k: at(v, k)))


@invariant(C, "HYP-ISO-rights")
def inv_rights_within_acl(L, s):
    """Rights: none without a page; RWX on private pages; the ACL entry for a sharing owner; within it for a borrower."""
    def at(v, k):
        e, P = s.s2[v][k], get_page_parcel(L, s, k)
        acl = L.at(P.acl, v)
        return L.And(L.Implies(e.state == PageState.NOPAGE, e.rights == 0),
                     L.Implies(e.state == PageState.OWNED, e.rights == RWX),
                     L.Implies(e.state == PageState.SHARED_OWNED, e.rights == acl),
                     L.Implies(e.state == PageState.SHARED_BORROWED,
                               L.And(L.Not(e.rights == 0), is_subset(L, e.rights, acl))))
    return L.all_idx(len(s.s2), lambda v: L.all_idx(len(s.owner), lambda k: at(v, k)))


@invariant(C, "HYP-PAGE-borrowed")
def inv_borrowed_owner(L, s):
    """SHARED_BORROWED anywhere: the parcel is SHARE with the owner SHARED_OWNED, or LEND with the owner at NOPAGE."""
    def at(k):
        P = get_page_parcel(L, s, k)
        owner_state = get_entry(L, s, s.owner[k], k).state
        borrowed = L.any_idx(len(s.s2), lambda v: s.s2[v][k].state == PageState.SHARED_BORROWED)
        return L.Implies(borrowed, L.Or(
            L.And(P.trans == Trans.SHARE, owner_state == PageState.SHARED_OWNED),
            L.And(P.trans == Trans.LEND, owner_state == PageState.NOPAGE)))
    return L.all_idx(len(s.owner), at)


@invariant(C, "HYP-MEMPARCEL-table")
def inv_parcel_table(L, s):
    """Live parcels: valid owner and type, owner in ACL iff SHARE, DONATE one RWX entry and no acceptor,
    acceptors in the ACL and not the owner, accepted iff mapped on every page, pages owned by the owner.
    Dead parcels: blank and unreferenced. Every page's parcel is a handle or NO_PARCEL."""
    n_vms, n_pages = len(s.s2), len(s.owner)

    def live(h, P):
        in_acl = [L.Not(P.acl[v] == 0) for v in range(n_vms)]
        return L.And(
            L.ULE(0, P.owner), L.ULT(P.owner, n_vms), L.ULE(Trans.DONATE, P.trans), L.ULE(P.trans, Trans.SHARE),
            L.at(tuple(in_acl), P.owner) == (P.trans == Trans.SHARE),
            L.Implies(P.trans == Trans.DONATE, L.And(
                L.count(n_vms, lambda v: in_acl[v]) == 1, L.all_idx(n_vms, lambda v: L.Or(P.acl[v] == 0, P.acl[v] == RWX)),
                L.Not(L.any_idx(n_vms, lambda v: P.accepted[v])))),
            L.Not(L.at(P.accepted, P.owner)),
            L.all_idx(n_vms, lambda v: L.Implies(P.accepted[v], in_acl[v])),
            L.all_idx(n_pages, lambda k: L.Implies(s.parcel[k] == h, L.And(
                s.owner[k] == P.owner,
                L.all_idx(n_vms, lambda v: L.Implies(L.Not(v == P.owner), (
                    s.s2[v][k].state == PageState.SHARED_BORROWED) == P.accepted[v]))))))

    def dead(h, P):
        return L.And(L.Not(P.locked), L.Not(P.recall), L.all_idx(n_vms, lambda v: L.And(P.acl[v] == 0, L.Not(P.accepted[v]))),
                     L.all_idx(n_pages, lambda k: L.Not(s.parcel[k] == h)))

    return L.And(
        L.all_idx(len(s.parcels), lambda h: L.If(s.parcels[h].live, live(h, s.parcels[h]), dead(h, s.parcels[h]))),
        L.all_idx(n_pages, lambda k: L.Or(s.parcel[k] == NO_PARCEL,
                                          L.And(L.ULE(0, s.parcel[k]), L.ULT(s.parcel[k], len(s.parcels))))))


@invariant(C, "HYP-S2-function")
def inv_stage2_function(L, s):
    """Every IPA page a VM holds (mapped, or owned and lent) is in its IPA space, and no two share an IPA."""
    n = len(s.owner)

    def per_vm(v):
        return L.And(
            L.all_idx(n, lambda k: L.Implies(is_held(L, s, v, k), L.And(
                L.ULE(0, s.s2[v][k].ipa), L.ULT(s.s2[v][k].ipa, s.ipa_pages)))),
            *[L.Implies(L.And(is_held(L, s, v, k), is_held(L, s, v, q)), L.Not(s.s2[v][k].ipa == s.s2[v][q].ipa))
              for k in range(n) for q in range(k + 1, n)])
    return L.all_idx(len(s.s2), per_vm)


@invariant(C, "HYP-REGION-shape")
def inv_region_shape(L, s):
    """Handle v-1 is secondary v's region: when live, a locked SHARE parcel owned by v, ACL {v: RW, primary: RW},
    accepted by the primary, every page mapped RW on both sides. Other parcels are never locked."""
    n_vms = len(s.s2)

    def region(h):
        v, P = h + 1, s.parcels[h]
        return L.Implies(P.live, L.And(
            P.locked, P.owner == v, P.trans == Trans.SHARE,
            L.all_idx(n_vms, lambda u: P.acl[u] == (RW if u in (v, PRIMARY) else 0)),
            L.all_idx(n_vms, lambda u: P.accepted[u] == (u == PRIMARY)),
            L.all_idx(len(s.owner), lambda k: L.Implies(s.parcel[k] == h, L.And(
                s.s2[v][k].state == PageState.SHARED_OWNED, s.s2[v][k].rights == RW,
                s.s2[PRIMARY][k].state == PageState.SHARED_BORROWED, s.s2[PRIMARY][k].rights == RW)))))
    return L.And(L.all_idx(n_vms - 1, region),
                 L.all_idx(len(s.parcels), lambda h: L.Implies(L.ULE(n_vms - 1, h), L.Not(s.parcels[h].locked))))
