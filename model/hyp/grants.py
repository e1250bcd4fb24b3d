"""Memory parcels: share, lend, donate, accept, release, reclaim, recall (Gunyah RM; facts §3.4, §4.1, §6.3).

Each operation is a guarded step over ``memory.HypState``; the calling VM is ``vm`` (the
hypervisor knows who called). A parcel covers the caller's pages mapped at IPA pages
``[ipa, ipa + npages)`` (one SGL entry). Page-state changes follow pKVM (owner OWNED ->
SHARED_OWNED for SHARE, -> NOPAGE for LEND/DONATE; borrower NOPAGE -> SHARED_BORROWED on
accept; DONATE moves ownership on accept and deletes the parcel). Operations that may zero pages
return ``Effect(value, zero)``; the hypervisor zeroes those pages in the same step, before anyone
regains access.

Handles: ``0 .. n_vms-2`` are reserved for the secondaries' shared regions; a new parcel takes the
lowest free handle above them. Handles are reused after a parcel is deleted (Gunyah allocates
fresh ones); docs/hypervisor.md.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from t1virtio.hyp.memory import (NO_ENTRY, NO_PARCEL, RWX, Effect, HypState, PageState, S2Entry, Trans,
                                 blank_parcel_like, get_entry, has_right, is_held, is_ipa_in_space, set_entries)
from t1virtio.step import Step, step


def is_subset(L: Any, rights: Any, allowed: Any) -> Any:
    """Return whether ``rights`` grant nothing outside ``allowed``."""
    return (rights & L.BitNot(allowed, 3)) == 0


def select_sgl(L: Any, s: HypState, vm: Any, ipa: Any, npages: Any) -> tuple:
    """Return, per physical page, whether ``vm`` maps it at an IPA page in ``[ipa, ipa + npages)``."""
    row = L.at(s.s2, vm)
    return tuple(L.And(L.Not(e.state == PageState.NOPAGE), L.ULE(ipa, e.ipa), L.ULT(e.ipa, ipa + npages))
                 for e in row)


def is_sgl_owned(L: Any, s: HypState, vm: Any, sgl: tuple, npages: Any) -> Any:
    """Return whether the SGL covers ``npages`` pages, all private memory of ``vm`` (OWNED, in no parcel)."""
    row = L.at(s.s2, vm)
    return L.And(L.count(len(sgl), lambda k: sgl[k]) == npages,
                 L.all_idx(len(sgl), lambda k: L.Implies(sgl[k], L.And(
                     s.owner[k] == vm, row[k].state == PageState.OWNED, s.parcel[k] == NO_PARCEL))))


def compute_free_handle(L: Any, s: HypState) -> Any:
    """Return the lowest free handle above the reserved region handles, or ``NO_PARCEL``."""
    h = NO_PARCEL
    for k in reversed(range(len(s.s2) - 1, len(s.parcels))):
        h = L.If(L.Not(s.parcels[k].live), k, h)
    return h


def is_acl_valid(L: Any, acl: tuple, npages: Any) -> Any:
    """Return whether the request is well formed: one page at least, one ACL entry at least, rights within RWX."""
    return L.And(L.ULE(1, npages), L.any_idx(len(acl), lambda v: L.Not(acl[v] == 0)),
                 L.all_idx(len(acl), lambda v: L.And(L.ULE(0, acl[v]), L.ULE(acl[v], RWX))))


def is_donate_acl(L: Any, acl: tuple) -> Any:
    """Return whether ``acl`` has exactly one entry, with full rights (MEM_DONATE)."""
    return L.And(L.count(len(acl), lambda v: L.Not(acl[v] == 0)) == 1,
                 L.all_idx(len(acl), lambda v: L.Or(acl[v] == 0, acl[v] == RWX)))


def mem_create(L: Any, s: HypState, vm: Any, trans: int, ipa: Any, npages: Any, acl: tuple, sanitize: Any) -> Step:
    """Create a parcel of ``trans`` over the SGL; out = Effect(handle, pages zeroed when ``sanitize``)."""
    sgl = select_sgl(L, s, vm, ipa, npages)
    h = compute_free_handle(L, s)
    shared = trans == Trans.SHARE
    guards = [(is_acl_valid(L, acl, npages), "HYP-MEMPARCEL-args"),
              (L.Not(L.at(acl, vm) == 0) == shared, "HYP-MEMPARCEL-acl-owner")]
    if trans == Trans.DONATE:
        guards.append((is_donate_acl(L, acl), "HYP-MEMPARCEL-donate-acl"))
    guards += [(is_sgl_owned(L, s, vm, sgl, npages), "HYP-MEMPARCEL-sgl-owned"),
               (L.Not(h == NO_PARCEL), "HYP-MEMPARCEL-full")]
    keep = PageState.SHARED_OWNED if shared else PageState.NOPAGE
    row = tuple(L.If(sgl[k], S2Entry(keep, L.at(acl, vm) if shared else 0, e.ipa), e)
                for k, e in enumerate(L.at(s.s2, vm)))
    record = replace(blank_parcel_like(s), live=True, owner=vm, trans=trans, base=ipa, acl=tuple(acl))
    new = replace(s, parcel=tuple(L.If(sgl[k], h, p) for k, p in enumerate(s.parcel)),
                  s2=set_entries(L, s, vm, row), parcels=L.update(s.parcels, h, record))
    return step(guards, new, Effect(h, tuple(L.And(sanitize, x) for x in sgl)))


def mem_share(L: Any, s: HypState, vm: Any, ipa: Any, npages: Any, acl: tuple, sanitize: Any) -> Step:
    """MEM_SHARE: the owner keeps access with its own ACL entry's rights (SHARED_OWNED)."""
    return mem_create(L, s, vm, Trans.SHARE, ipa, npages, acl, sanitize)


def mem_lend(L: Any, s: HypState, vm: Any, ipa: Any, npages: Any, acl: tuple, sanitize: Any) -> Step:
    """MEM_LEND: the owner, absent from the ACL, loses access until it reclaims (NOPAGE)."""
    return mem_create(L, s, vm, Trans.LEND, ipa, npages, acl, sanitize)


def mem_donate(L: Any, s: HypState, vm: Any, ipa: Any, npages: Any, acl: tuple, sanitize: Any) -> Step:
    """MEM_DONATE: one ACL entry with RWX; the owner loses access now and ownership on accept."""
    return mem_create(L, s, vm, Trans.DONATE, ipa, npages, acl, sanitize)


def get_parcel_pages(L: Any, s: HypState, handle: Any) -> tuple:
    """Return, per physical page, whether it belongs to parcel ``handle``."""
    return tuple(p == handle for p in s.parcel)


def is_live_handle(L: Any, s: HypState, handle: Any) -> Any:
    """Return whether ``handle`` names a live parcel."""
    return L.And(L.ULE(0, handle), L.ULT(handle, len(s.parcels)), L.at(s.parcels, handle).live)


def compute_accept_ipa(L: Any, s: HypState, handle: Any, ipa: Any, page: int) -> Any:
    """Return the acceptor's IPA page for ``page``: ``ipa`` plus the page's offset in the owner's SGL."""
    P = L.at(s.parcels, handle)
    return ipa + get_entry(L, s, P.owner, page).ipa - P.base


def no_zero(s: HypState) -> tuple:
    """Return the ``zero`` vector of a step that zeroes no page."""
    return (False,) * len(s.parcel)


def mem_accept(L: Any, s: HypState, vm: Any, handle: Any, trans: Any, ipa: Any, rights: Any) -> Step:
    """MEM_ACCEPT by ``vm`` at IPA page ``ipa`` with ``rights``; DONATE transfers ownership and deletes the parcel."""
    P = L.at(s.parcels, handle)
    pages = get_parcel_pages(L, s, handle)
    target = [compute_accept_ipa(L, s, handle, ipa, k) for k in range(len(pages))]
    row = L.at(s.s2, vm)
    ipas_ok = L.all_idx(len(pages), lambda k: L.Implies(pages[k], L.And(
        is_ipa_in_space(L, s, target[k]),
        L.all_idx(len(pages), lambda q: L.Implies(is_held(L, s, vm, q), L.Not(row[q].ipa == target[k]))))))
    acl = L.at(P.acl, vm)
    guards = [(is_live_handle(L, s, handle), "HYP-MEMPARCEL-handle"),
              (L.Not(vm == P.owner), "HYP-MEMPARCEL-accept-owner"),
              (L.Not(acl == 0), "HYP-MEMPARCEL-accept-acl"),
              (L.Not(L.at(P.accepted, vm)), "HYP-MEMPARCEL-accept-twice"),
              (trans == P.trans, "HYP-MEMPARCEL-accept-type"),
              (L.And(L.Not(rights == 0), L.ULE(rights, RWX), is_subset(L, rights, acl)), "HYP-MEMPARCEL-accept-rights"),
              (ipas_ok, "HYP-S2-ipa")]
    donate = P.trans == Trans.DONATE
    got = S2Entry(L.If(donate, PageState.OWNED, PageState.SHARED_BORROWED), L.If(donate, RWX, rights), 0)
    row = tuple(L.If(pages[k], replace(got, ipa=target[k]), e) for k, e in enumerate(row))
    moved = tuple(L.And(donate, x) for x in pages)
    parcel = L.If(donate, blank_parcel_like(s), replace(P, accepted=L.update(P.accepted, vm, True)))
    new = replace(s, owner=tuple(L.If(moved[k], vm, o) for k, o in enumerate(s.owner)),
                  parcel=tuple(L.If(moved[k], NO_PARCEL, p) for k, p in enumerate(s.parcel)),
                  s2=set_entries(L, s, vm, row), parcels=L.update(s.parcels, handle, parcel))
    return step(guards, new, Effect(handle, no_zero(s)))


def mem_release(L: Any, s: HypState, vm: Any, handle: Any, sanitize: Any) -> Step:
    """MEM_RELEASE by borrower ``vm``: unmap its pages of the parcel (zeroed first with ``sanitize``)."""
    P = L.at(s.parcels, handle)
    pages = get_parcel_pages(L, s, handle)
    guards = [(is_live_handle(L, s, handle), "HYP-MEMPARCEL-handle"),
              (L.Not(P.locked), "HYP-REGION-locked"),
              (L.at(P.accepted, vm), "HYP-MEMPARCEL-release-accepted"),
              (L.Implies(sanitize, has_right(L.at(P.acl, vm), 2)), "HYP-MEMPARCEL-release-sanitize")]
    row = tuple(L.If(pages[k], replace(NO_ENTRY, ipa=e.ipa), e) for k, e in enumerate(L.at(s.s2, vm)))
    new = replace(s, s2=set_entries(L, s, vm, row),
                  parcels=L.update(s.parcels, handle, replace(P, accepted=L.update(P.accepted, vm, False))))
    return step(guards, new, Effect(handle, tuple(L.And(sanitize, x) for x in pages)))


def mem_reclaim(L: Any, s: HypState, vm: Any, handle: Any, sanitize: Any) -> Step:
    """MEM_RECLAIM by the owner once no borrower holds the parcel: private again (zeroed with ``sanitize``)."""
    P = L.at(s.parcels, handle)
    pages = get_parcel_pages(L, s, handle)
    guards = [(is_live_handle(L, s, handle), "HYP-MEMPARCEL-handle"),
              (vm == P.owner, "HYP-MEMPARCEL-reclaim-owner"),
              (L.Not(P.locked), "HYP-REGION-locked"),
              (L.Not(L.any_idx(len(s.s2), lambda v: P.accepted[v])), "HYP-MEMPARCEL-inuse")]
    row = tuple(L.If(pages[k], S2Entry(PageState.OWNED, RWX, e.ipa), e) for k, e in enumerate(L.at(s.s2, vm)))
    new = replace(s, parcel=tuple(L.If(pages[k], NO_PARCEL, p) for k, p in enumerate(s.parcel)),
                  s2=set_entries(L, s, vm, row), parcels=L.update(s.parcels, handle, blank_parcel_like(s)))
    return step(guards, new, Effect(handle, tuple(L.And(sanitize, x) for x in pages)))


def mem_notify_recall(L: Any, s: HypState, vm: Any, handle: Any) -> Step:
    """MEM_NOTIFY(RECALL) by the owner: ask the borrowers to release; revokes nothing."""
    P = L.at(s.parcels, handle)
    guards = [(is_live_handle(L, s, handle), "HYP-MEMPARCEL-handle"),
              (vm == P.owner, "HYP-MEMPARCEL-recall-owner")]
    return step(guards, replace(s, parcels=L.update(s.parcels, handle, replace(P, recall=True))),
                Effect(handle, no_zero(s)))
