"""Proof subject: the hypervisor's memory database (pages, stage-2 maps, memory parcels) for the SMALL preset.

SMALL: 4 physical pages, 3 VMs (primary + 2 secondaries), 4 parcel handles (2 reserved for the
regions). States, owners, parcel ids, IPAs and sizes are symbolic; rights are 3-bit vectors.
From the all-free initial state, boot operations (``vm_assign``, ``region_provision``,
``boot_finish``) and every grant operation preserve every invariant and obey their rules.
"""
from __future__ import annotations

from t1virtio.hyp import grants, memory
from t1virtio.preset import SMALL
from t1virtio.proofs.engine import Op, Subject

M = "t1virtio.hyp.memory"
P = "t1virtio.proofs.hypervisor"
N_VMS = SMALL.n_vms


def _template():
    return memory.initial_state(SMALL)


def _assume(L, s):
    """The IPA space is fixed by the preset."""
    return s.ipa_pages == memory.compute_ipa_pages(SMALL)


def _caller(L, s, a):
    """The hypervisor knows which VM called: ``vm`` is a real VM id."""
    return L.And(L.ULE(0, a["vm"]), L.ULT(a["vm"], N_VMS))


def _acl(a):
    return tuple(a[f"acl{v}"] for v in range(N_VMS))


# Adapters: the engine passes flat arguments; the ACL is a tuple in the model. Each looks the
# transition up in ``grants`` at call time, so a mutant patching ``grants.mem_*`` is what is proved.
def share(L, s, vm, ipa, npages, sanitize, **acl):
    return grants.mem_share(L, s, vm, ipa, npages, _acl(acl), sanitize)


def lend(L, s, vm, ipa, npages, sanitize, **acl):
    return grants.mem_lend(L, s, vm, ipa, npages, _acl(acl), sanitize)


def donate(L, s, vm, ipa, npages, sanitize, **acl):
    return grants.mem_donate(L, s, vm, ipa, npages, _acl(acl), sanitize)


CREATE_ARGS = {"vm": "int", "ipa": "int", "npages": "int", "sanitize": "bool", **{f"acl{v}": 3 for v in range(N_VMS)}}

SUBJECTS = [Subject(
    component="hypervisor", template=_template, preset="SMALL (4 pages, 3 VMs, 4 parcels; all states symbolic)",
    assume=_assume,
    ops=(Op("vm_assign", M, "vm_assign", {"vm": "int", "page": "int", "ipa": "int"}, _caller),
         Op("region_provision", M, "region_provision",
            {"secondary": "int", "page": "int", "secondary_ipa": "int", "primary_ipa": "int"}),
         Op("boot_finish", M, "boot_finish"),
         Op("share", P, "share", CREATE_ARGS, _caller),
         Op("lend", P, "lend", CREATE_ARGS, _caller),
         Op("donate", P, "donate", CREATE_ARGS, _caller),
         Op("accept", "t1virtio.hyp.grants", "mem_accept",
            {"vm": "int", "handle": "int", "trans": "int", "ipa": "int", "rights": 3}, _caller),
         Op("release", "t1virtio.hyp.grants", "mem_release", {"vm": "int", "handle": "int", "sanitize": "bool"}, _caller),
         Op("reclaim", "t1virtio.hyp.grants", "mem_reclaim", {"vm": "int", "handle": "int", "sanitize": "bool"}, _caller),
         Op("recall", "t1virtio.hyp.grants", "mem_notify_recall", {"vm": "int", "handle": "int"}, _caller)))]
