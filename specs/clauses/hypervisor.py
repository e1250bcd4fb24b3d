"""Clauses of the hypervisor's memory isolation and memory parcels (facts/upstream.md §0.1, §3.3, §3.4, §4.1, §6.3).

Kinds, from the point of view of the honest VM the hypervisor protects: a request that would let
the calling VM reach memory it has no right to, or take memory back from another VM, is ``peer``
(a hostile VM, refused with DENIED / MEM_INUSE / MEM_INVALID); a malformed request that harms
nobody is ``caller`` (ARGUMENT_INVALID); a full parcel table is ``exhausted``.
"""
from . import register

_RM = "gunyah-resource-manager memparcel (MEM_SHARE/LEND/DONATE/ACCEPT/RELEASE/RECLAIM/NOTIFY); facts §3.4"
_PKVM = "Linux arch/arm64/kvm/hyp/nvhe/mem_protect.c (pKVM page states); facts §4.1"
_S2 = "gunyah-hypervisor addrspace_map / memdb; facts §3.3"
_SEED = "seed cover letter and <20200429100953.GE5097@quicinc.com>; facts §0.1, §6.3"
_DES = "DESIGN.md §2, §4"

register([
    # --- VMs and stage-2 maps
    ("HYP-VM-id", "caller", _DES, "VMs", "a VM id names a created VM: 0 (the primary) .. n_vms-1"),
    ("HYP-S2-align", "caller", _S2, "addrspace_map",
     "IPAs and sizes handed to the hypervisor are page-aligned (ARGUMENT_ALIGNMENT)"),
    ("HYP-S2-ipa", "caller", _S2, "addrspace_map",
     "a new stage-2 mapping lies inside the VM's IPA space at an IPA page the VM does not already hold"),
    ("HYP-BOOT-only", "caller", _SEED, "VM creation",
     "a VM's private memory is assigned only while the VMs are created, before boot completes"),
    ("HYP-BOOT-page-free", "caller", _S2, "memdb",
     "memory given to a VM at creation comes from pages the hypervisor still holds (never from another VM)"),
    ("HYP-REGION-boot-only", "peer", _SEED, "shared region",
     "a shared region is provisioned only at VM creation: memory is never converted to shared after boot"),
    ("HYP-REGION-not-private", "peer", _SEED, "shared region",
     "a shared region is built from pages no VM owns, never from a VM's private memory"),
    ("HYP-REGION-secondary", "caller", _SEED, "shared region",
     "a shared region belongs to a secondary VM (1..n_vms-1) and is shared with the primary"),
    ("HYP-REGION-locked", "peer", _RM, "memparcel locked",
     "the provisioned shared region is a locked parcel: release and reclaim are DENIED"),
    # --- memory parcels
    ("HYP-MEMPARCEL-args", "caller", _RM, "MEM_SHARE/LEND/DONATE",
     "a parcel needs at least one ACL entry and one page, and rights within RWX (ARGUMENT_INVALID)"),
    ("HYP-MEMPARCEL-acl-owner", "caller", _RM, "memparcel create",
     "the owner appears in the ACL iff the transaction is SHARE (ARGUMENT_INVALID)"),
    ("HYP-MEMPARCEL-donate-acl", "caller", _RM, "MEM_DONATE",
     "DONATE has exactly one ACL entry, with full rights RWX (DENIED)"),
    ("HYP-MEMPARCEL-sgl-owned", "peer", _RM, "memparcel create",
     "every SGL page is private memory the caller owns, mapped at the given IPAs and in no parcel (MEM_INVALID)"),
    ("HYP-MEMPARCEL-full", "exhausted", _RM, "MAX_MEMPARCEL_PER_VM",
     "a parcel needs a free handle in the parcel table (DENIED)"),
    ("HYP-MEMPARCEL-handle", "caller", _RM, "memparcel lookup",
     "a handle names a live parcel (HANDLE_INVALID)"),
    ("HYP-MEMPARCEL-accept-owner", "peer", _RM, "MEM_ACCEPT", "the owner cannot accept its own parcel (DENIED)"),
    ("HYP-MEMPARCEL-accept-acl", "peer", _RM, "MEM_ACCEPT", "only a VM in the parcel's ACL may accept it (DENIED)"),
    ("HYP-MEMPARCEL-accept-twice", "peer", _RM, "MEM_ACCEPT", "a VM accepts a parcel at most once (DENIED)"),
    ("HYP-MEMPARCEL-accept-type", "caller", _RM, "MEM_ACCEPT",
     "the acceptor's transaction type matches the parcel's (ARGUMENT_INVALID)"),
    ("HYP-MEMPARCEL-accept-rights", "peer", _RM, "MEM_ACCEPT",
     "a borrower maps with non-empty rights within its ACL entry, never more"),
    ("HYP-MEMPARCEL-release-accepted", "peer", _RM, "MEM_RELEASE",
     "only a borrower that accepted the parcel may release it (owner: DENIED; others: MEM_RELEASED)"),
    ("HYP-MEMPARCEL-release-sanitize", "peer", _RM, "MEM_RELEASE",
     "a release with SANITIZE needs the W right on the parcel"),
    ("HYP-MEMPARCEL-reclaim-owner", "peer", _RM, "MEM_RECLAIM", "only the owner may reclaim a parcel (DENIED)"),
    ("HYP-MEMPARCEL-inuse", "peer", _RM, "MEM_RECLAIM",
     "reclaim fails with MEM_INUSE while any borrower holds the parcel: the owner cannot revoke unilaterally"),
    ("HYP-MEMPARCEL-recall-owner", "peer", _RM, "MEM_NOTIFY(RECALL)",
     "only the owner may send the RECALL notification"),
    # --- invariants
    ("HYP-PAGE-one-owner", "invariant", _PKVM, "page ownership",
     "every page has exactly one owner (a VM, or the hypervisor while unassigned); only the owner is OWNED/SHARED_OWNED"),
    ("HYP-PAGE-owner-state", "invariant", _PKVM, "page states",
     "the owner's state follows the parcel: OWNED if in none, SHARED_OWNED if shared, NOPAGE if lent or donated"),
    ("HYP-ISO-private", "invariant", _DES, "isolation",
     "a VM reaches a page it does not own only as SHARED_BORROWED through a live parcel it accepted; private pages are reachable by their owner alone"),
    ("HYP-ISO-rights", "invariant", _RM, "memparcel ACL",
     "mapped rights never exceed the VM's ACL entry (borrowers and a sharing owner); owned private pages are RWX; no page, no rights"),
    ("HYP-PAGE-borrowed", "invariant", _PKVM + "; " + _RM, "share / lend",
     "SHARED_BORROWED somewhere implies the owner is SHARED_OWNED (SHARE) or has no access (LEND); a DONATE parcel has no borrower"),
    ("HYP-MEMPARCEL-table", "invariant", _RM, "memparcel state",
     "parcel records are consistent: accepted iff mapped, acceptors in the ACL and not the owner, owner in the ACL iff SHARE, DONATE one full entry, dead records blank"),
    ("HYP-S2-function", "invariant", _S2, "stage-2 tables",
     "each VM's stage-2 map is a function: the IPA pages a VM holds are in its IPA space and distinct"),
    ("HYP-REGION-shape", "invariant", _SEED, "shared region",
     "a secondary's region is a locked SHARE parcel it owns, mapped RW into it and the primary; other parcels are unlocked"),
    ("HYP-ISO-noninterference", "invariant", _DES, "noninterference",
     "bytes a secondary writes to memory only it can reach (private, or borrowed by LEND and released with SANITIZE) never become observable to the primary or another secondary"),
    # --- rules
    ("HYP-BOOT-rule", "rule", _SEED, "VM creation",
     "assignment and region provisioning happen only before boot, take free pages only, and map only the named VMs"),
    ("HYP-REGION-stable", "rule", _SEED, "shared region",
     "no operation unmaps, re-rights or re-parcels a shared-region page; after boot no page joins a region"),
    ("HYP-MEMPARCEL-create-rule", "rule", _RM, "MEM_SHARE/LEND/DONATE",
     "a create is accepted iff legal; it parcels exactly the SGL's pages of the caller, keeps the owner's mapping for SHARE only, and gives no one else access"),
    ("HYP-MEMPARCEL-accept-rule", "rule", _RM, "MEM_ACCEPT",
     "an accept is accepted iff legal; it maps only the acceptor, with the requested rights; DONATE moves ownership and deletes the parcel"),
    ("HYP-MEMPARCEL-release-rule", "rule", _RM, "MEM_RELEASE",
     "a release is accepted iff legal and unmaps exactly the releasing borrower"),
    ("HYP-MEMPARCEL-reclaim-rule", "rule", _RM, "MEM_RECLAIM",
     "a reclaim is accepted iff the owner asks and no borrower holds the parcel; the owner gets its private pages back"),
    ("HYP-MEMPARCEL-recall-rule", "rule", _RM, "MEM_NOTIFY(RECALL)",
     "RECALL only notifies: it changes no mapping, right or ownership"),
    ("HYP-MEMPARCEL-sanitize", "rule", _RM + "; " + _PKVM, "SANITIZE / poisoning",
     "with SANITIZE the parcel's pages are zeroed before anyone regains access; no other page is ever zeroed"),
])

# Exact rules: the model's choice among the legal steps (docs/overview.md "Legality and exactness")
register([
    ("HYP-MEMPARCEL-create-lowest-handle", "rule", _DES + "; docs/hypervisor.md", "MEM_SHARE/LEND/DONATE handle",
     "exact (model): a new parcel takes the lowest free handle above the region handles; any free handle is legal "
     "(Gunyah's resource manager allocates fresh ones)"),
])
