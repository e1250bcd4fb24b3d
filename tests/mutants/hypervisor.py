"""Hypervisor mutants: memory isolation and memory parcels (facts §3.4, §4.1, §6.3)."""
from __future__ import annotations

import enum
from dataclasses import replace
from unittest import mock

from . import Mutant, drop_guard, replace_fn

M = "t1virtio.hyp.memory"
G = "t1virtio.hyp.grants"
PR = "proof:hypervisor:"


def _memory():
    from t1virtio.hyp import memory
    return memory


# --- broken transitions

def _donate_accept_keeps_owner(orig, L, s, vm, handle, trans, ipa, rights):
    sp = orig(L, s, vm, handle, trans, ipa, rights)
    return replace(sp, new=replace(sp.new, owner=s.owner))


def _create_keeps_owner_mapping(orig, L, s, vm, ipa, npages, acl, sanitize):
    sp = orig(L, s, vm, ipa, npages, acl, sanitize)
    return replace(sp, new=replace(sp.new, s2=s.s2))


def _release_keeps_mapping(orig, L, s, vm, handle, sanitize):
    sp = orig(L, s, vm, handle, sanitize)
    return replace(sp, new=replace(sp.new, s2=s.s2))


def _release_keeps_accepted(orig, L, s, vm, handle, sanitize):
    sp = orig(L, s, vm, handle, sanitize)
    return replace(sp, new=replace(sp.new, parcels=s.parcels))


def _accept_maps_rwx(orig, L, s, vm, handle, trans, ipa, rights):
    sp = orig(L, s, vm, handle, trans, ipa, rights)
    return replace(sp, new=orig(L, s, vm, handle, trans, ipa, _memory().RWX).new)


def _accept_maps_full_acl(orig, L, s, vm, handle, trans, ipa, rights):
    sp = orig(L, s, vm, handle, trans, ipa, rights)
    acl = L.at(L.at(s.parcels, handle).acl, vm)
    return replace(sp, new=orig(L, s, vm, handle, trans, ipa, acl).new)


class _TransWithoutDonate(enum.IntEnum):
    """Transaction types as a buggy accept sees them: DONATE never recognised."""

    DONATE = 99
    LEND = 1
    SHARE = 2


def _accept_donate_as_loan():
    return mock.patch(f"{G}.Trans", _TransWithoutDonate)


def _accept_offset_forgotten(orig, L, s, handle, ipa, page):
    return ipa


def _region_read_only_for_primary(orig, L, s, secondary, page, secondary_ipa, primary_ipa):
    m = _memory()
    sp = orig(L, s, secondary, page, secondary_ipa, primary_ipa)
    row = tuple(L.If(page == k, replace(e, rights=int(m.Rights.R)), e) for k, e in enumerate(sp.new.s2[m.PRIMARY]))
    return replace(sp, new=replace(sp.new, s2=L.update(sp.new.s2, m.PRIMARY, row)))


def _boot_never_finishes(orig, L, s):
    sp = orig(L, s)
    return replace(sp, new=s)


def _recall_unlocks(orig, L, s, vm, handle):
    sp = orig(L, s, vm, handle)
    P = L.at(sp.new.parcels, handle)
    return replace(sp, new=replace(sp.new, parcels=L.update(sp.new.parcels, handle, replace(P, locked=False))))


def _recall_revokes(orig, L, s, vm, handle):
    m = _memory()
    sp = orig(L, s, vm, handle)
    owner = L.at(s.parcels, handle).owner
    s2 = tuple(tuple(L.If(L.And(s.parcel[k] == handle, L.Not(owner == v)), m.NO_ENTRY, e) for k, e in enumerate(row))
               for v, row in enumerate(s.s2))
    return replace(sp, new=replace(sp.new, s2=s2))


def _share_owner_keeps_rwx(orig, L, s, vm, ipa, npages, acl, sanitize):
    m = _memory()
    sp = orig(L, s, vm, ipa, npages, acl, sanitize)
    row = tuple(L.If(L.Not(sp.new.parcel[k] == s.parcel[k]), replace(e, rights=m.RWX), e)
                for k, e in enumerate(L.at(sp.new.s2, vm)))
    return replace(sp, new=replace(sp.new, s2=L.update(sp.new.s2, vm, row)))


def _reclaim_keeps_parcel(orig, L, s, vm, handle, sanitize):
    sp = orig(L, s, vm, handle, sanitize)
    return replace(sp, new=replace(sp.new, parcels=s.parcels))


def _reclaim_no_sanitize(orig, L, s, vm, handle, sanitize):
    sp = orig(L, s, vm, handle, sanitize)
    return replace(sp, out=replace(sp.out, zero=(False,) * len(s.parcel)))


def _write_assumes_contiguous(orig, self, addr, data):
    pos, chunks = 0, self._chunks(addr, len(data), _memory().Rights.W)
    for i, (_, off, k) in enumerate(chunks):
        page = min(chunks[0][0] + i, len(self.hv.pages) - 1)
        self.hv.pages[page][off:off + k] = data[pos:pos + k]
        pos += k


def _view_unchecked(orig, self, addr, n, right):
    ps = self.hv.preset.page_size
    out, a = [], addr
    while a < addr + n:
        t = self.hv.tlb[self.vm].get(a // ps, (0, 0))
        k = min(ps - a % ps, addr + n - a)
        out.append((t[0], a % ps, k))
        a += k
    return out



def _highest_free_handle(orig, L, s):
    """Any free handle is legal; the model's (exact) choice is the lowest one."""
    h = orig(L, s)
    for k in range(len(s.s2) - 1, len(s.parcels)):
        h = L.If(L.Not(s.parcels[k].live), k, h)
    return h


MUTANTS = [
    # --- wrapper checks (scenarios in tests/test_hypervisor.py)
    Mutant("hyp-any-vm-id", "HYP-VM-id", "scenario:test_hypervisor:bad_vm_is_refused", "HYP-VM-id",
           replace_fn(M, "Hypervisor.check_vm", lambda orig, self, vm: vm), "synthetic: VM id not validated"),
    Mutant("hyp-unaligned-ipa", "HYP-S2-align", "scenario:test_hypervisor:misaligned_share_is_refused", "HYP-S2-align",
           replace_fn(M, "Hypervisor.ipa_page", lambda orig, self, addr: addr // self.preset.page_size),
           "synthetic: IPA rounded down instead of ARGUMENT_ALIGNMENT"),
    # --- guards
    Mutant("hyp-accept-ipa-collision", "HYP-S2-ipa", PR + "accept⊢inv_stage2_function", "HYP-S2-function",
           drop_guard(G, "mem_accept", "HYP-S2-ipa"), "synthetic: accept maps over an IPA already in use"),
    Mutant("hyp-assign-after-boot", "HYP-BOOT-only", PR + "vm_assign⊨rule_boot_takes_free_pages", "HYP-BOOT-rule",
           drop_guard(M, "vm_assign", "HYP-BOOT-only"), "synthetic: memory assigned to a running VM"),
    Mutant("hyp-assign-taken-page", "HYP-BOOT-page-free", PR + "vm_assign⊢inv_one_owner", "HYP-PAGE-one-owner",
           drop_guard(M, "vm_assign", "HYP-BOOT-page-free"), "synthetic: a page given to two VMs"),
    Mutant("hyp-region-after-boot", "HYP-REGION-boot-only", PR + "region_provision⊨rule_region_stable",
           "HYP-REGION-stable", drop_guard(M, "region_provision", "HYP-REGION-boot-only"),
           "seed clarification: memory converted to shared after boot"),
    Mutant("hyp-private-page-to-region", "HYP-REGION-not-private", PR + "region_provision⊢inv_one_owner",
           "HYP-PAGE-one-owner", drop_guard(M, "region_provision", "HYP-REGION-not-private"),
           "seed clarification: a VM's private page converted into the shared region"),
    Mutant("hyp-region-for-primary", "HYP-REGION-secondary", PR + "region_provision⊢inv_owner_state",
           "HYP-PAGE-owner-state", drop_guard(M, "region_provision", "HYP-REGION-secondary"),
           "synthetic: a region for the primary (no reserved handle)"),
    Mutant("hyp-release-region", "HYP-REGION-locked", PR + "release⊨rule_region_stable", "HYP-REGION-stable",
           drop_guard(G, "mem_release", "HYP-REGION-locked"), "Gunyah RM: locked memparcel released"),
    Mutant("hyp-create-empty", "HYP-MEMPARCEL-args", PR + "lend⊨rule_create_parcels_sgl", "HYP-MEMPARCEL-create-rule",
           drop_guard(G, "mem_create", "HYP-MEMPARCEL-args"), "synthetic: empty ACL or SGL accepted"),
    Mutant("hyp-lend-owner-in-acl", "HYP-MEMPARCEL-acl-owner", PR + "lend⊢inv_parcel_table", "HYP-MEMPARCEL-table",
           drop_guard(G, "mem_create", "HYP-MEMPARCEL-acl-owner"), "Gunyah RM: owner in ACL iff SHARE not checked"),
    Mutant("hyp-donate-two-entries", "HYP-MEMPARCEL-donate-acl", PR + "donate⊢inv_parcel_table", "HYP-MEMPARCEL-table",
           drop_guard(G, "mem_create", "HYP-MEMPARCEL-donate-acl"), "Gunyah RM: DONATE with several ACL entries"),
    Mutant("hyp-share-foreign-page", "HYP-MEMPARCEL-sgl-owned", PR + "share⊢inv_one_owner", "HYP-PAGE-one-owner",
           drop_guard(G, "mem_create", "HYP-MEMPARCEL-sgl-owned"),
           "isolation: a VM shares a page it does not own (MEM_INVALID not checked)"),
    Mutant("hyp-parcel-table-overflow", "HYP-MEMPARCEL-full", PR + "lend⊢inv_owner_state", "HYP-PAGE-owner-state",
           drop_guard(G, "mem_create", "HYP-MEMPARCEL-full"), "synthetic: create with no free handle"),
    Mutant("hyp-recall-dead-handle", "HYP-MEMPARCEL-handle", PR + "recall⊢inv_parcel_table", "HYP-MEMPARCEL-table",
           drop_guard(G, "mem_notify_recall", "HYP-MEMPARCEL-handle"), "synthetic: stale handle accepted"),
    Mutant("hyp-owner-accepts", "HYP-MEMPARCEL-accept-owner", PR + "accept⊢inv_isolation", "HYP-ISO-private",
           drop_guard(G, "mem_accept", "HYP-MEMPARCEL-accept-owner"), "Gunyah RM: owner accepts its own SHARE"),
    Mutant("hyp-accept-outside-acl", "HYP-MEMPARCEL-accept-acl", "scenario:test_hypervisor:outsider_accept_is_denied",
           "HYP-MEMPARCEL-accept-acl", drop_guard(G, "mem_accept", "HYP-MEMPARCEL-accept-acl"),
           "Gunyah RM: a VM outside the ACL gets DENIED (the rights check alone would still refuse, naming the wrong "
           "error; the machine's reference checks the refusal clause too)"),
    Mutant("hyp-accept-twice", "HYP-MEMPARCEL-accept-twice", PR + "accept⊨rule_accept_maps_acceptor",
           "HYP-MEMPARCEL-accept-rule", drop_guard(G, "mem_accept", "HYP-MEMPARCEL-accept-twice"),
           "Gunyah RM: double accept (DENIED) not checked"),
    Mutant("hyp-accept-wrong-type", "HYP-MEMPARCEL-accept-type", PR + "accept⊨rule_accept_maps_acceptor",
           "HYP-MEMPARCEL-accept-rule", drop_guard(G, "mem_accept", "HYP-MEMPARCEL-accept-type"),
           "synthetic: a LEND accepted as a SHARE"),
    Mutant("hyp-rights-beyond-acl", "HYP-MEMPARCEL-accept-rights", PR + "accept⊢inv_rights_within_acl", "HYP-ISO-rights",
           drop_guard(G, "mem_accept", "HYP-MEMPARCEL-accept-rights"), "isolation: a borrower maps more than its ACL entry"),
    Mutant("hyp-release-before-accept", "HYP-MEMPARCEL-release-accepted", PR + "release⊢inv_owner_state",
           "HYP-PAGE-owner-state", drop_guard(G, "mem_release", "HYP-MEMPARCEL-release-accepted"),
           "Gunyah RM: release by the owner or a VM that never accepted"),
    Mutant("hyp-release-sanitize-readonly", "HYP-MEMPARCEL-release-sanitize", PR + "release⊨rule_release_unmaps_borrower",
           "HYP-MEMPARCEL-release-rule", drop_guard(G, "mem_release", "HYP-MEMPARCEL-release-sanitize"),
           "Gunyah RM: SANITIZE by a read-only borrower"),
    Mutant("hyp-reclaim-by-other", "HYP-MEMPARCEL-reclaim-owner", PR + "reclaim⊢inv_one_owner", "HYP-PAGE-one-owner",
           drop_guard(G, "mem_reclaim", "HYP-MEMPARCEL-reclaim-owner"), "isolation: a non-owner reclaims"),
    Mutant("hyp-reclaim-in-use", "HYP-MEMPARCEL-inuse", PR + "reclaim⊢inv_isolation", "HYP-ISO-private",
           drop_guard(G, "mem_reclaim", "HYP-MEMPARCEL-inuse"), "Gunyah MEM_INUSE / Xen XSA-396: revoke while mapped"),
    Mutant("hyp-recall-by-borrower", "HYP-MEMPARCEL-recall-owner", PR + "recall⊨rule_recall_revokes_nothing",
           "HYP-MEMPARCEL-recall-rule", drop_guard(G, "mem_notify_recall", "HYP-MEMPARCEL-recall-owner"),
           "Gunyah RM: RECALL is owner-only"),
    Mutant("hyp-view-without-rights", "HYP-MEM-no-right", "machine:hypervisor", "HYP-MEM-no-right",
           replace_fn(M, "VmView._chunks", _view_unchecked), "synthetic: a view that skips the stage-2 rights check",
           examples=100),
    # --- invariants broken by a transition
    Mutant("hyp-donate-keeps-owner", "HYP-PAGE-one-owner", PR + "accept⊢inv_one_owner", "HYP-PAGE-one-owner",
           replace_fn(G, "mem_accept", _donate_accept_keeps_owner), "synthetic: DONATE accepted without moving ownership"),
    Mutant("hyp-lend-keeps-owner-access", "HYP-PAGE-owner-state", PR + "lend⊢inv_owner_state", "HYP-PAGE-owner-state",
           replace_fn(G, "mem_lend", _create_keeps_owner_mapping), "Gunyah RM: LEND must remove the owner's mapping"),
    Mutant("hyp-donate-keeps-owner-mapping", "HYP-PAGE-owner-state", PR + "donate⊢inv_owner_state",
           "HYP-PAGE-owner-state", replace_fn(G, "mem_donate", _create_keeps_owner_mapping),
           "Gunyah RM / pKVM donate: the owner's mapping must go"),
    Mutant("hyp-release-keeps-mapping", "HYP-ISO-private", PR + "release⊢inv_isolation", "HYP-ISO-private",
           replace_fn(G, "mem_release", _release_keeps_mapping), "synthetic: released pages stay mapped"),
    Mutant("hyp-accept-maps-rwx", "HYP-ISO-rights", PR + "accept⊢inv_rights_within_acl", "HYP-ISO-rights",
           replace_fn(G, "mem_accept", _accept_maps_rwx), "synthetic: borrower mapped RWX whatever its ACL entry"),
    Mutant("hyp-donate-accepted-as-loan", "HYP-PAGE-borrowed", PR + "accept⊢inv_borrowed_owner", "HYP-PAGE-borrowed",
           _accept_donate_as_loan, "synthetic: DONATE accepted as a borrow (owner keeps the parcel)"),
    Mutant("hyp-release-keeps-accepted", "HYP-MEMPARCEL-table", PR + "release⊢inv_parcel_table", "HYP-MEMPARCEL-table",
           replace_fn(G, "mem_release", _release_keeps_accepted), "synthetic: share_count not decremented"),
    Mutant("hyp-accept-offset-forgotten", "HYP-S2-function", PR + "accept⊢inv_stage2_function", "HYP-S2-function",
           replace_fn(G, "compute_accept_ipa", _accept_offset_forgotten),
           "synthetic: every page of a parcel mapped at the same IPA"),
    Mutant("hyp-region-read-only", "HYP-REGION-shape", PR + "region_provision⊢inv_region_shape", "HYP-REGION-shape",
           replace_fn(M, "region_provision", _region_read_only_for_primary), "synthetic: primary gets the region R only"),
    Mutant("hyp-write-assumes-contiguous", "HYP-ISO-noninterference",
           "scenario:test_hypervisor:machine_twin_sees_private_write", "HYP-ISO-noninterference",
           replace_fn(M, "VmView.write", _write_assumes_contiguous),
           "seed patch 2 (non-linear paddr/vaddr): a copy that assumes IPA-contiguous pages are physically contiguous "
           "(the machine finds it too, in about 300 examples, but shrinking takes minutes)"),
    Mutant("hyp-sanitize-bytes-forgotten", "HYP-ISO-noninterference", "scenario:test_hypervisor:lent_secret_is_sanitized",
           "HYP-ISO-noninterference", replace_fn(M, "Hypervisor.sanitize", lambda orig, self, pages: None),
           "Gunyah RM SANITIZE / pKVM poisoning: pages handed back unzeroed"),
    # --- rules broken by a transition
    Mutant("hyp-boot-never-finishes", "HYP-BOOT-rule", PR + "boot_finish⊨rule_boot_finish", "HYP-BOOT-rule",
           replace_fn(M, "boot_finish", _boot_never_finishes), "synthetic"),
    Mutant("hyp-recall-unlocks-region", "HYP-REGION-stable", PR + "recall⊨rule_region_stable", "HYP-REGION-stable",
           replace_fn(G, "mem_notify_recall", _recall_unlocks), "synthetic: a notification unlocks the region"),
    Mutant("hyp-share-owner-keeps-rwx", "HYP-MEMPARCEL-create-rule", PR + "share⊨rule_create_parcels_sgl",
           "HYP-MEMPARCEL-create-rule", replace_fn(G, "mem_share", _share_owner_keeps_rwx),
           "Gunyah RM: a sharing owner keeps only its ACL entry's rights"),
    Mutant("hyp-accept-full-acl", "HYP-MEMPARCEL-accept-rule", PR + "accept⊨rule_accept_maps_acceptor",
           "HYP-MEMPARCEL-accept-rule", replace_fn(G, "mem_accept", _accept_maps_full_acl),
           "synthetic: requested rights ignored"),
    Mutant("hyp-release-flag-stuck", "HYP-MEMPARCEL-release-rule", PR + "release⊨rule_release_unmaps_borrower",
           "HYP-MEMPARCEL-release-rule", replace_fn(G, "mem_release", _release_keeps_accepted), "synthetic"),
    Mutant("hyp-reclaim-keeps-parcel", "HYP-MEMPARCEL-reclaim-rule", PR + "reclaim⊨rule_reclaim_needs_no_borrower",
           "HYP-MEMPARCEL-reclaim-rule", replace_fn(G, "mem_reclaim", _reclaim_keeps_parcel), "synthetic"),
    Mutant("hyp-recall-revokes", "HYP-MEMPARCEL-recall-rule", PR + "recall⊨rule_recall_revokes_nothing",
           "HYP-MEMPARCEL-recall-rule", replace_fn(G, "mem_notify_recall", _recall_revokes),
           "Gunyah RM: the owner cannot revoke unilaterally; RECALL only notifies"),
    Mutant("hyp-reclaim-sanitize-forgotten", "HYP-MEMPARCEL-sanitize", PR + "reclaim⊨rule_sanitize_zeroes_parcel",
           "HYP-MEMPARCEL-sanitize", replace_fn(G, "mem_reclaim", _reclaim_no_sanitize),
           "Gunyah RM reclaim SANITIZE: owner regains the borrower's bytes"),
    # -- legality vs exactness (docs/overview.md): legal, but not the model's choice
    Mutant("hyp-create-highest-handle", "HYP-MEMPARCEL-create-lowest-handle", PR + "share⊨exact_create_lowest_handle",
           "HYP-MEMPARCEL-create-lowest-handle", replace_fn(G, "compute_free_handle", _highest_free_handle),
           "synthetic: the highest free handle (legal: Gunyah's RM picks fresh handles)"),
]
