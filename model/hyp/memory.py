"""Physical pages, VMs, stage-2 maps and VM-bound views (DESIGN.md §2; facts §0.1, §3.3, §4.1, §6.3).

The symbolic core is a memory database in pKVM's words: per physical page its ``owner`` (a VM, or
``FREE`` while the hypervisor holds it) and the parcel it is in; per (VM, page) a stage-2 entry
``S2Entry(state, rights, ipa)`` with the pKVM page state OWNED / SHARED_OWNED / SHARED_BORROWED /
NOPAGE; and the memory-parcel table (Gunyah RM memparcels, operated by ``hyp/grants.py``).
Page bytes live beside the core in ``Hypervisor``.

Boot (VM creation) is three transitions: ``vm_assign`` gives a free page to a VM as private memory,
``region_provision`` adds a free page to a secondary's shared region (a locked SHARE parcel whose
ACL is the secondary RW and the primary RW, accepted by the primary at creation, mapped at
different IPAs on the two sides), ``boot_finish`` ends creation. After boot no page is assigned
and no memory is converted to shared (seed clarification, facts §0.1).

API for other components (addresses are IPAs in bytes):

    hv = Hypervisor(preset, Layout(private=(1, 1, 1), shared=(0, 1, 1)))
    v = hv.view(vm)              # MemoryView: read(addr, n) / write(addr, data) on vm's IPAs;
                                 # AccessFault "HYP-MEM-no-right" without a live R / W right
    hv.shared_region(secondary)  # -> (primary_ipa, secondary_ipa, size)
    hv.private_region(vm)        # -> (ipa, size) of the VM's boot-time private memory
    hv.mem_share / mem_lend / mem_donate / mem_accept / mem_release / mem_reclaim /
    hv.mem_notify_recall         # memory parcels (hyp/grants.py); hv.recalls(vm) lists RECALLs
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

from t1virtio import errors
from t1virtio.hyp.memview import NO_RIGHT
from t1virtio.logic import CONCRETE
from t1virtio.preset import Preset
from t1virtio.state import bits
from t1virtio.step import Step, apply, step

FREE = -1           # owner of a page the hypervisor has not given to any VM
NO_PARCEL = -1      # parcel of a page in no memory parcel
PRIMARY = 0         # VM 0 is the primary; 1..n_vms-1 are secondaries
IPA_BITS = 40       # stage-2 input size (arm64 KVM default VTCR_EL2 40-bit IPA)
RAM_IPA = 0x8000_0000                 # private memory starts here in every VM (arm64 virt RAM base)
SECONDARY_REGION_IPA = 0x1_0000_0000  # a secondary sees its shared region here
PRIMARY_WINDOW_IPA = 0x4_0000_0000    # the primary sees secondary v's region at window v - 1
PRIMARY_WINDOW_STRIDE = 0x1_0000_0000


class PageState(enum.IntEnum):
    """pKVM page state of one (VM, page) pair (mem_protect.h; facts §4.1)."""

    OWNED = 0
    SHARED_OWNED = 1
    SHARED_BORROWED = 2
    NOPAGE = 3


class Rights(enum.IntFlag):
    """Gunyah RM access rights (facts §3.4): X 1, W 2, R 4."""

    NONE = 0
    X = 1
    W = 2
    R = 4
    RW = 6
    RWX = 7


RW, RWX = int(Rights.RW), int(Rights.RWX)


class Trans(enum.IntEnum):
    """Gunyah RM transaction types (facts §3.4)."""

    DONATE = 0
    LEND = 1
    SHARE = 2


@dataclass(frozen=True, slots=True)
class S2Entry:
    """One VM's stage-2 view of one physical page: its pKVM state, rights and IPA page.

    ``ipa`` is meaningful while the VM holds the page (state != NOPAGE, or the VM owns it: an
    owner that lent a page gets it back at the same IPA on reclaim).
    """

    state: int
    rights: int = bits(3)
    ipa: int = 0


@dataclass(frozen=True, slots=True)
class Parcel:
    """A memory parcel (Gunyah RM memparcel); ``acl``/``accepted`` are indexed by VM."""

    live: bool
    owner: int
    trans: int
    locked: bool              # the provisioned shared region: never released or reclaimed
    base: int                 # the owner's first SGL IPA page (acceptors map at offsets from it)
    recall: bool              # MEM_NOTIFY(RECALL) sent by the owner
    acl: tuple = bits(3)      # rights per VM; 0 = not in the ACL
    accepted: tuple = ()      # per VM: accepted and mapped (SHARE/LEND borrowers)


@dataclass(frozen=True, slots=True)
class HypState:
    """The memory database: ownership per page, stage-2 entries per (VM, page), parcels."""

    booted: bool
    ipa_pages: int            # size of every VM's IPA space, in pages (fixed by the preset)
    owner: tuple              # per page: VM id or FREE
    parcel: tuple             # per page: parcel handle or NO_PARCEL
    s2: tuple                 # [vm][page] -> S2Entry
    parcels: tuple            # [handle] -> Parcel


NO_ENTRY = S2Entry(state=PageState.NOPAGE, rights=0, ipa=0)


@dataclass(frozen=True, slots=True)
class Effect:
    """What a step returns (``value``) and which physical pages the hypervisor zeroes (``zero``, per page)."""

    value: Any
    zero: tuple


def compute_ipa_pages(preset: Preset) -> int:
    """Return the number of IPA pages in a VM's address space."""
    return (1 << IPA_BITS) // preset.page_size


def compute_region_handle(secondary: Any) -> Any:
    """Return the parcel handle reserved for ``secondary``'s shared region (handles 0..n_vms-2)."""
    return secondary - 1


def blank_parcel(n_vms: int) -> Parcel:
    """Return a dead parcel record (every field zero)."""
    return Parcel(live=False, owner=0, trans=0, locked=False, base=0, recall=False,
                  acl=(0,) * n_vms, accepted=(False,) * n_vms)


def blank_parcel_like(s: "HypState") -> Parcel:
    """Return a dead parcel record shaped for ``s``."""
    return blank_parcel(len(s.s2))


def region_parcel(secondary: int, n_vms: int) -> Parcel:
    """Return the record of ``secondary``'s shared region: a locked SHARE parcel, ACL {secondary: RW, primary: RW}."""
    return Parcel(live=True, owner=secondary, trans=Trans.SHARE, locked=True, base=0, recall=False,
                  acl=tuple(RW if v in (secondary, PRIMARY) else 0 for v in range(n_vms)),
                  accepted=tuple(v == PRIMARY for v in range(n_vms)))


def initial_state(preset: Preset) -> HypState:
    """Return the state before VM creation: every page free, no mapping, no parcel."""
    if preset.max_parcels < preset.n_vms - 1:
        raise ValueError(f"preset {preset.name}: max_parcels must hold one region parcel per secondary")
    return HypState(booted=False, ipa_pages=compute_ipa_pages(preset), owner=(FREE,) * preset.n_pages,
                    parcel=(NO_PARCEL,) * preset.n_pages,
                    s2=tuple((NO_ENTRY,) * preset.n_pages for _ in range(preset.n_vms)),
                    parcels=(blank_parcel(preset.n_vms),) * preset.max_parcels)


def get_entry(L: Any, s: HypState, vm: Any, page: int) -> S2Entry:
    """Return ``vm``'s stage-2 entry for physical ``page`` (``vm`` may be symbolic)."""
    return L.at(s.s2, vm)[page] if isinstance(page, int) else L.at(L.at(s.s2, vm), page)


def set_entries(L: Any, s: HypState, vm: Any, entries: tuple) -> tuple:
    """Return ``s.s2`` with ``vm``'s row replaced by ``entries``."""
    return L.update(s.s2, vm, entries)


def is_held(L: Any, s: HypState, vm: Any, page: int) -> Any:
    """Return whether ``vm`` holds ``page``: mapped in its stage-2, or owned (its IPA is reserved)."""
    return L.Or(L.Not(get_entry(L, s, vm, page).state == PageState.NOPAGE), s.owner[page] == vm)


def is_ipa_free(L: Any, s: HypState, vm: Any, ipa: Any) -> Any:
    """Return whether ``vm`` holds no page at IPA page ``ipa``."""
    n = len(s.owner)
    return L.all_idx(n, lambda q: L.Implies(is_held(L, s, vm, q), L.Not(get_entry(L, s, vm, q).ipa == ipa)))


def is_ipa_in_space(L: Any, s: HypState, ipa: Any) -> Any:
    """Return whether IPA page ``ipa`` lies in a VM's IPA space."""
    return L.And(L.ULE(0, ipa), L.ULT(ipa, s.ipa_pages))


def has_right(rights: Any, right: int) -> Any:
    """Return whether ``rights`` include ``right``."""
    return (rights & right) == right


def vm_assign(L: Any, s: HypState, vm: Any, page: Any, ipa: Any) -> Step:
    """Give free ``page`` to ``vm`` as private memory at IPA page ``ipa`` (VM creation only)."""
    free = L.And(L.ULE(0, page), L.ULT(page, len(s.owner)), L.at(s.owner, page) == FREE)
    guards = [(L.Not(s.booted), "HYP-BOOT-only"),
              (free, "HYP-BOOT-page-free"),
              (L.And(is_ipa_in_space(L, s, ipa), is_ipa_free(L, s, vm, ipa)), "HYP-S2-ipa")]
    row = L.update(L.at(s.s2, vm), page, S2Entry(PageState.OWNED, RWX, ipa))
    return step(guards, replace(s, owner=L.update(s.owner, page, vm), s2=set_entries(L, s, vm, row)))


def region_provision(L: Any, s: HypState, secondary: Any, page: Any, secondary_ipa: Any, primary_ipa: Any) -> Step:
    """Add free ``page`` to ``secondary``'s shared region, mapped RW into it and the primary.

    The region is the locked SHARE parcel ``compute_region_handle(secondary)``: owner the
    secondary (SHARED_OWNED), ACL {secondary: RW, primary: RW}, accepted by the primary
    (SHARED_BORROWED). Only at VM creation, only from free pages (facts §0.1, §6.3).
    """
    h = compute_region_handle(secondary)
    free = L.And(L.ULE(0, page), L.ULT(page, len(s.owner)), L.at(s.owner, page) == FREE)
    ipas_ok = L.And(is_ipa_in_space(L, s, secondary_ipa), is_ipa_free(L, s, secondary, secondary_ipa),
                    is_ipa_in_space(L, s, primary_ipa), is_ipa_free(L, s, PRIMARY, primary_ipa))
    guards = [(L.And(L.ULT(PRIMARY, secondary), L.ULT(secondary, len(s.s2))), "HYP-REGION-secondary"),
              (L.Not(s.booted), "HYP-REGION-boot-only"),
              (free, "HYP-REGION-not-private"),
              (ipas_ok, "HYP-S2-ipa")]
    parcels = tuple(L.If(h == k, region_parcel(k + 1, len(s.s2)), P) if k < len(s.s2) - 1 else P
                    for k, P in enumerate(s.parcels))
    sec_row = L.update(L.at(s.s2, secondary), page, S2Entry(PageState.SHARED_OWNED, RW, secondary_ipa))
    s2 = set_entries(L, s, secondary, sec_row)
    s2 = L.update(s2, PRIMARY, L.update(s2[PRIMARY], page, S2Entry(PageState.SHARED_BORROWED, RW, primary_ipa)))
    return step(guards, replace(s, owner=L.update(s.owner, page, secondary), parcel=L.update(s.parcel, page, h),
                                s2=s2, parcels=parcels))


def boot_finish(L: Any, s: HypState) -> Step:
    """End VM creation: from now on memory is only moved by its owners' parcels."""
    return step([], replace(s, booted=True))


@dataclass(frozen=True, slots=True)
class Layout:
    """Boot-time memory of each VM, in pages: ``private[vm]``; ``shared[v]`` for secondary v (``shared[0]`` is 0).

    ``order`` optionally lists the physical pages to hand out, in order (default 0, 1, 2, ...).
    """

    private: tuple
    shared: tuple
    order: tuple = ()


def default_layout(preset: Preset) -> Layout:
    """One private page per VM and the remaining pages split over the secondaries' regions."""
    spare = preset.n_pages - preset.n_vms
    n_sec = preset.n_vms - 1
    shared = (0,) + tuple(spare // n_sec + (1 if v < spare % n_sec else 0) for v in range(n_sec))
    return Layout(private=(1,) * preset.n_vms, shared=shared)


class VmView:
    """A VM-bound ``MemoryView``: byte-granular reads and writes on one VM's IPAs.

    Every page an access touches must be mapped in the VM's stage-2 with the right (R to read, W
    to write); otherwise ``AccessFault`` "HYP-MEM-no-right" and nothing is copied.
    """

    def __init__(self, hv: "Hypervisor", vm: int):
        self.hv = hv
        self.vm = vm

    def _chunks(self, addr: int, n: int, right: int) -> list[tuple[int, int, int]]:
        """Return ``(page, offset, length)`` pieces of ``[addr, addr+n)``, checking ``right`` on each page."""
        if n < 0 or addr < 0:
            raise errors.fail(NO_RIGHT, f"VM {self.vm}: access of {n} bytes at {addr:#x}")
        ps = self.hv.preset.page_size
        out, a, end = [], addr, addr + n
        while a < end:    # bounded: one iteration per page of the access
            t = self.hv.tlb[self.vm].get(a // ps)
            if t is None or not has_right(t[1], right):
                raise errors.fail(NO_RIGHT, f"VM {self.vm}: {Rights(right).name} at IPA {a:#x}")
            off = a % ps
            k = min(ps - off, end - a)
            out.append((t[0], off, k))
            a += k
        return out

    def read(self, addr: int, n: int) -> bytes:
        return b"".join(bytes(self.hv.pages[p][off:off + k]) for p, off, k in self._chunks(addr, n, Rights.R))

    def write(self, addr: int, data: bytes) -> None:
        pos = 0
        for p, off, k in self._chunks(addr, len(data), Rights.W):
            self.hv.pages[p][off:off + k] = data[pos:pos + k]
            pos += k


class Hypervisor:
    """The concrete hypervisor: the core state, the bytes of every physical page, and per-VM TLBs.

    ``tlb[vm]`` maps IPA page -> (page, rights); it is derived from the core after every step
    (a TLB flush), never authoritative.
    """

    def __init__(self, preset: Preset, layout: Layout | None = None):
        self.preset = preset
        self.layout = layout or default_layout(preset)
        self.state = initial_state(preset)
        self.last_out: Any = None
        self.pages = [bytearray(preset.page_size) for _ in range(preset.n_pages)]
        self.tlb: list[dict[int, tuple[int, int]]] = [{} for _ in range(preset.n_vms)]
        self._boot()

    # --- creation
    def _boot(self) -> None:
        lay, ps = self.layout, self.preset.page_size
        if len(lay.private) != self.preset.n_vms or len(lay.shared) != self.preset.n_vms or lay.shared[0]:
            raise errors.fail("HYP-REGION-secondary", f"layout {lay} does not match {self.preset.n_vms} VMs")
        order = iter(lay.order or range(self.preset.n_pages))
        for vm, n in enumerate(lay.private):
            for k in range(n):
                page = next(order, self.preset.n_pages)
                self.run(vm_assign(CONCRETE, self.state, vm, page, RAM_IPA // ps + k))
        for v in range(1, self.preset.n_vms):
            sec, pri = self._region_bases(v)
            for k in range(lay.shared[v]):
                page = next(order, self.preset.n_pages)
                self.run(region_provision(CONCRETE, self.state, v, page, sec // ps + k, pri // ps + k))
        self.run(boot_finish(CONCRETE, self.state))

    @staticmethod
    def _region_bases(secondary: int) -> tuple[int, int]:
        return SECONDARY_REGION_IPA, PRIMARY_WINDOW_IPA + (secondary - 1) * PRIMARY_WINDOW_STRIDE

    # --- plumbing
    def check_vm(self, vm: int) -> int:
        """Return ``vm`` if it names a VM, else raise ``CallerError`` "HYP-VM-id"."""
        if not (isinstance(vm, int) and 0 <= vm < self.preset.n_vms):
            raise errors.fail("HYP-VM-id", f"VM {vm!r}")
        return vm

    def ipa_page(self, addr: int) -> int:
        """Return the IPA page of a page-aligned byte address, else raise ``CallerError`` "HYP-S2-align"."""
        if addr % self.preset.page_size:
            raise errors.fail("HYP-S2-align", f"{addr:#x} is not page-aligned")
        return addr // self.preset.page_size

    def run(self, sp: Step, detail: str = "") -> Any:
        """Apply a core step (raising its clause's error), zero the pages it names, flush the TLBs."""
        self.last_out = sp.out
        self.state, out = apply(sp, detail)
        if isinstance(out, Effect):
            self.sanitize([p for p, z in enumerate(out.zero) if z])
            out = out.value
        self.flush_tlb()
        return out

    def sanitize(self, pages: list[int]) -> None:
        """Zero the bytes of physical ``pages`` (SANITIZE), before the step's new mappings are used."""
        for p in pages:
            self.pages[p][:] = bytes(self.preset.page_size)

    def flush_tlb(self) -> None:
        """Rebuild every VM's TLB from the stage-2 entries of the core."""
        for vm in range(self.preset.n_vms):
            self.tlb[vm] = {e.ipa: (p, e.rights) for p, e in enumerate(self.state.s2[vm])
                            if e.state != PageState.NOPAGE}

    # --- API
    def view(self, vm: int) -> VmView:
        """Return ``vm``'s view of its IPA space (checks rights on every access)."""
        return VmView(self, self.check_vm(vm))

    def shared_region(self, secondary: int) -> tuple[int, int, int]:
        """Return ``(primary_ipa, secondary_ipa, size)`` of ``secondary``'s shared region (bytes)."""
        self.check_vm(secondary)
        if not 1 <= secondary < self.preset.n_vms:
            raise errors.fail("HYP-REGION-secondary", f"VM {secondary} has no shared region")
        sec, pri = self._region_bases(secondary)
        return pri, sec, self.layout.shared[secondary] * self.preset.page_size

    def private_region(self, vm: int) -> tuple[int, int]:
        """Return ``(ipa, size)`` of ``vm``'s boot-time private memory (bytes)."""
        return RAM_IPA, self.layout.private[self.check_vm(vm)] * self.preset.page_size

    # --- creation-time operations (refused after boot; the machine tries them as a hostile caller)
    def vm_assign(self, vm: int, page: int, ipa: int) -> None:
        """Give free physical ``page`` to ``vm`` at ``ipa`` (only before boot)."""
        self.run(vm_assign(CONCRETE, self.state, self.check_vm(vm), page, self.ipa_page(ipa)), f"page {page}")

    def region_provision(self, secondary: int, page: int, secondary_ipa: int, primary_ipa: int) -> None:
        """Add free physical ``page`` to ``secondary``'s shared region (only before boot)."""
        self.run(region_provision(CONCRETE, self.state, self.check_vm(secondary), page, self.ipa_page(secondary_ipa),
                                  self.ipa_page(primary_ipa)), f"page {page}")

    # --- memory parcels (hyp/grants.py); addresses and sizes in bytes, page-aligned
    def _acl(self, acl: dict[int, int]) -> tuple:
        for vm in acl:
            self.check_vm(vm)
        return tuple(int(acl.get(v, 0)) for v in range(self.preset.n_vms))

    def _create(self, fn: Any, vm: int, ipa: int, size: int, acl: dict[int, int], sanitize: bool) -> int:
        self.check_vm(vm)
        sp = fn(CONCRETE, self.state, vm, self.ipa_page(ipa), self.ipa_page(size), self._acl(acl), bool(sanitize))
        return self.run(sp, f"VM {vm}: {size:#x} bytes at IPA {ipa:#x}, ACL {acl}")

    def mem_share(self, vm: int, ipa: int, size: int, acl: dict[int, int], sanitize: bool = False) -> int:
        """MEM_SHARE ``[ipa, ipa+size)`` of ``vm``'s private memory with ``acl`` ({vm: rights}, owner included); return the handle."""
        return self._create(grants.mem_share, vm, ipa, size, acl, sanitize)

    def mem_lend(self, vm: int, ipa: int, size: int, acl: dict[int, int], sanitize: bool = False) -> int:
        """MEM_LEND: like share, but the owner (not in ``acl``) loses access until reclaim."""
        return self._create(grants.mem_lend, vm, ipa, size, acl, sanitize)

    def mem_donate(self, vm: int, ipa: int, size: int, acl: dict[int, int], sanitize: bool = False) -> int:
        """MEM_DONATE to the single VM of ``acl`` (rights RWX): ownership moves when it accepts."""
        return self._create(grants.mem_donate, vm, ipa, size, acl, sanitize)

    def mem_accept(self, vm: int, handle: int, trans: int, ipa: int, rights: int) -> None:
        """MEM_ACCEPT parcel ``handle`` into ``vm`` at ``ipa`` with ``rights`` (within its ACL entry)."""
        self.check_vm(vm)
        self.run(grants.mem_accept(CONCRETE, self.state, vm, handle, int(trans), self.ipa_page(ipa), int(rights)),
                 f"VM {vm}: handle {handle}")

    def mem_release(self, vm: int, handle: int, sanitize: bool = False) -> None:
        """MEM_RELEASE: borrower ``vm`` unmaps parcel ``handle`` (zeroing it first with ``sanitize``)."""
        self.check_vm(vm)
        self.run(grants.mem_release(CONCRETE, self.state, vm, handle, bool(sanitize)), f"VM {vm}: handle {handle}")

    def mem_reclaim(self, vm: int, handle: int, sanitize: bool = False) -> None:
        """MEM_RECLAIM: owner ``vm`` takes parcel ``handle`` back once no borrower holds it."""
        self.check_vm(vm)
        self.run(grants.mem_reclaim(CONCRETE, self.state, vm, handle, bool(sanitize)), f"VM {vm}: handle {handle}")

    def mem_notify_recall(self, vm: int, handle: int) -> None:
        """MEM_NOTIFY(RECALL): owner ``vm`` asks the borrowers of ``handle`` to release it."""
        self.check_vm(vm)
        self.run(grants.mem_notify_recall(CONCRETE, self.state, vm, handle), f"VM {vm}: handle {handle}")

    def recalls(self, vm: int) -> list[int]:
        """Return the handles ``vm`` has accepted whose owner sent RECALL (the borrower should release)."""
        self.check_vm(vm)
        return [h for h, P in enumerate(self.state.parcels) if P.live and P.recall and P.accepted[vm]]


from t1virtio.hyp import grants  # noqa: E402  (late: grants imports this module's state types)
