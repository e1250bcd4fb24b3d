"""Hypervisor machine: hostile VMs against the memory database (DESIGN.md §4; facts §3.4, §6.3).

Every VM, primary or secondary, tries every grant operation in any order with any arguments
(accept twice, accept outside the ACL, release before accept, reclaim in use, donate then
reclaim, handles that do not exist, rights beyond the ACL, conversions after boot) and every
read and write, including to other VMs' private pages and to released or reclaimed pages.
After each step: the specs' invariants hold on the concrete state, each operation obeyed its
rules (``checked_call``), a plain-Python reference of who may touch what agrees with the
operations' outcomes and with the views' faults, and noninterference holds: a twin hypervisor
runs the same steps except that a chosen secondary (the victim) writes different bytes to the
memory only it can reach, and nothing another VM can read differs between the two.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, rule

from t1virtio import errors
from t1virtio.hyp.memory import (PRIMARY, PRIMARY_WINDOW_IPA, PRIMARY_WINDOW_STRIDE, RAM_IPA, RW, RWX,
                                 SECONDARY_REGION_IPA, Hypervisor, Layout, Rights, Trans, compute_ipa_pages)
from t1virtio.machines.common import HONEST, REFERENCE, check_invariants, checked_call, expect, expect_exhausted
from t1virtio.preset import SMALL

C = "hypervisor"
PRESET = SMALL
PS = PRESET.page_size
N_VMS = PRESET.n_vms
W = int(Rights.W)
ACCEPT_IPA = 0x2_0000_0000 // PS       # a free IPA window where borrowers like to map parcels
SECRET_MASK = 0xA5                     # the victim's twin writes its private bytes XOR this
MAX_ACCESS = 2 * PS + 32               # longest access the machine tries (crosses two page boundaries)

RULE_OF = {"accept": "HYP-MEMPARCEL-accept-rule", "release": "HYP-MEMPARCEL-release-rule",
           "reclaim": "HYP-MEMPARCEL-reclaim-rule", "recall": "HYP-MEMPARCEL-recall-rule"}
RIGHTS = st.sampled_from([0, int(Rights.R), RW, RWX, W, int(Rights.X), 8])
VMS = st.integers(0, N_VMS - 1)


@st.composite
def setups(draw):
    """A victim secondary and a boot layout that fits SMALL (private and shared page counts, shuffled
    physical order); pages are trimmed from the other VMs first, so the victim often keeps two private pages."""
    victim = draw(st.integers(1, N_VMS - 1))
    private = [draw(st.sampled_from([2, 1, 0])) for _ in range(N_VMS)]
    shared = [0] + [draw(st.sampled_from([1, 0, 2])) for _ in range(N_VMS - 1)]
    counts = private + shared
    while sum(counts) > PRESET.n_pages:
        others = [k for k in range(len(counts)) if k != victim and counts[k]]
        k = max(others, key=lambda k: counts[k]) if others else victim
        counts[k] -= 1
    order = tuple(draw(st.permutations(range(PRESET.n_pages))))
    return Layout(tuple(counts[:N_VMS]), tuple(counts[N_VMS:]), order), victim


@dataclass
class RefParcel:
    owner: int
    trans: int
    acl: tuple
    locked: bool
    base: int
    pages: dict                              # physical page -> owner's IPA page
    borrowed: dict = field(default_factory=dict)  # borrower -> its IPA pages


class Reference:
    """Who may touch what, kept in plain dictionaries from the Gunyah RM rules (independent of the core)."""

    def __init__(self, layout: Layout):
        self.maps: list[dict[int, tuple[int, int]]] = [{} for _ in range(N_VMS)]   # vm -> ipa -> (page, rights)
        self.reserved: list[dict[int, int]] = [{} for _ in range(N_VMS)]            # owned, unmapped: ipa -> page
        self.owner: dict[int, int] = {}
        self.parcels: dict[int, RefParcel] = {}
        order = iter(layout.order or range(PRESET.n_pages))
        for vm, n in enumerate(layout.private):
            for k in range(n):
                p = next(order)
                self.owner[p] = vm
                self.maps[vm][RAM_IPA // PS + k] = (p, RWX)
        for v in range(1, N_VMS):
            if not layout.shared[v]:
                continue
            P = RefParcel(v, Trans.SHARE, tuple(RW if u in (v, PRIMARY) else 0 for u in range(N_VMS)), True, 0, {})
            pri = (PRIMARY_WINDOW_IPA + (v - 1) * PRIMARY_WINDOW_STRIDE) // PS
            for k in range(layout.shared[v]):
                p = next(order)
                self.owner[p] = v
                P.pages[p] = SECONDARY_REGION_IPA // PS + k
                self.maps[v][SECONDARY_REGION_IPA // PS + k] = (p, RW)
                self.maps[PRIMARY][pri + k] = (p, RW)
            P.borrowed[PRIMARY] = [pri + k for k in range(layout.shared[v])]
            self.parcels[v - 1] = P

    def in_parcel(self, page: int) -> bool:
        return any(page in P.pages for P in self.parcels.values())

    def is_private(self, vm: int, ipa: int) -> bool:
        m = self.maps[vm].get(ipa)
        return m is not None and self.owner.get(m[0]) == vm and not self.in_parcel(m[0])

    def may(self, vm: int, addr: int, n: int, right: int) -> bool:
        if addr < 0 or n < 0:
            return False
        return all((m := self.maps[vm].get(a)) is not None and m[1] & right == right
                   for a in range((addr // PS), (addr + n - 1) // PS + 1)) if n else True

    # --- legality and effects of each operation
    def create_legal(self, vm, trans, ipa, npages, acl) -> bool:
        entries = [v for v in range(N_VMS) if acl[v]]
        if npages < 1 or not entries or any(not 0 <= r <= RWX for r in acl) or (acl[vm] != 0) != (trans == Trans.SHARE):
            return False
        if trans == Trans.DONATE and (len(entries) != 1 or acl[entries[0]] != RWX):
            return False
        if not all(self.is_private(vm, ipa + i) for i in range(npages)):
            return False
        return sum(1 for h in self.parcels if h >= N_VMS - 1) < PRESET.max_parcels - (N_VMS - 1)

    def create(self, h, vm, trans, ipa, npages, acl) -> list[int]:
        expect(h >= N_VMS - 1 and h not in self.parcels, REFERENCE, f"new parcel got handle {h}, live or reserved")
        P = RefParcel(vm, trans, acl, False, ipa, {})
        for i in range(npages):
            p, _ = self.maps[vm][ipa + i]
            P.pages[p] = ipa + i
            if trans == Trans.SHARE:
                self.maps[vm][ipa + i] = (p, acl[vm])
            else:
                del self.maps[vm][ipa + i]
                self.reserved[vm][ipa + i] = p
        self.parcels[h] = P
        return list(P.pages)

    def targets(self, P: RefParcel, ipa: int) -> dict[int, int]:
        return {p: ipa + o - P.base for p, o in P.pages.items()}

    def accept_refusal(self, vm, h, trans, ipa, rights) -> str | None:
        """Return the clause (Gunyah error) that refuses this accept, checked in the RM's order, or None."""
        P = self.parcels.get(h)
        checks = [
            ("HYP-MEMPARCEL-handle", lambda: P is not None),
            ("HYP-MEMPARCEL-accept-owner", lambda: vm != P.owner),
            ("HYP-MEMPARCEL-accept-acl", lambda: P.acl[vm] != 0),
            ("HYP-MEMPARCEL-accept-twice", lambda: vm not in P.borrowed),
            ("HYP-MEMPARCEL-accept-type", lambda: trans == P.trans),
            ("HYP-MEMPARCEL-accept-rights", lambda: 0 < rights <= RWX and not rights & ~P.acl[vm]),
            ("HYP-S2-ipa", lambda: all(0 <= t < compute_ipa_pages(PRESET) and t not in self.maps[vm]
                                       and t not in self.reserved[vm] for t in self.targets(P, ipa).values()))]
        return next((clause for clause, holds in checks if not holds()), None)

    def accept(self, vm, h, ipa, rights) -> None:
        P = self.parcels[h]
        for p, t in self.targets(P, ipa).items():
            self.maps[vm][t] = (p, RWX if P.trans == Trans.DONATE else rights)
            if P.trans == Trans.DONATE:
                self.owner[p] = vm
                del self.reserved[P.owner][P.pages[p]]
        if P.trans == Trans.DONATE:
            del self.parcels[h]
        else:
            P.borrowed[vm] = list(self.targets(P, ipa).values())

    def release_legal(self, vm, h, sanitize) -> bool:
        P = self.parcels.get(h)
        return P is not None and not P.locked and vm in P.borrowed and (not sanitize or P.acl[vm] & W == W)

    def release(self, vm, h) -> None:
        for t in self.parcels[h].borrowed.pop(vm):
            del self.maps[vm][t]

    def reclaim_legal(self, vm, h) -> bool:
        P = self.parcels.get(h)
        return P is not None and vm == P.owner and not P.locked and not P.borrowed

    def reclaim(self, vm, h) -> None:
        for p, o in self.parcels.pop(h).pages.items():
            self.maps[vm][o] = (p, RWX)
            self.reserved[vm].pop(o, None)

    def recall_legal(self, vm, h) -> bool:
        P = self.parcels.get(h)
        return P is not None and vm == P.owner


class HypervisorMachine(RuleBasedStateMachine):
    """Hostile VMs, a reference of who may touch what, and a twin for noninterference."""

    parcels = Bundle("parcels")     # handles of parcels created so far (they may die and be reused)
    handles = st.one_of(parcels, parcels, st.integers(-1, PRESET.max_parcels))

    @initialize(setup=setups())
    def boot(self, setup):
        layout, victim = setup
        self.hv = Hypervisor(PRESET, layout)
        self.twin = Hypervisor(PRESET, layout)
        self.ref = Reference(layout)
        self.victim = victim

    # --- plumbing
    def candidates(self) -> list[int]:
        """IPA pages worth aiming at: everything any VM maps or owns, plus the borrowers' window."""
        found = {ipa for vm in range(N_VMS) for ipa in list(self.ref.maps[vm]) + list(self.ref.reserved[vm])}
        return sorted(found | {RAM_IPA // PS, ACCEPT_IPA})

    def pick(self, k: int) -> int:
        c = self.candidates()
        return c[k % len(c)]

    def honest_acl(self, kind, vm: int, acl: tuple) -> tuple:
        """Turn drawn rights into an ACL the RM accepts for ``kind`` (owner in it iff SHARE; DONATE one RWX entry)."""
        valid = [r & RWX for r in acl]
        if kind == Trans.DONATE:
            other = next(v for v in range(N_VMS) if v != vm and (acl[v] or v == (vm + 1) % N_VMS))
            return tuple(RWX if v == other else 0 for v in range(N_VMS))
        valid[vm] = (valid[vm] or RW) if kind == Trans.SHARE else 0
        if not any(valid[v] for v in range(N_VMS) if v != vm):
            valid[(vm + 1) % N_VMS] = RW
        return tuple(valid)

    def both(self, op: str, call, args: dict, expect: bool, refusal: str | None = None):
        """Run ``call(hv)`` on the model (rules checked) and on the twin; compare with the reference.

        ``refusal``, when the reference knows it, is the clause the refusal must name (the RM's error).
        """
        got = []
        ok, err = checked_call(C, op, self.hv, lambda: got.append(call(self.hv)), args)
        if refusal is not None and err is not None and err.clause != refusal:
            raise errors.InvariantViolation(refusal, f"{op}({args}) refused with {err.clause}, expected {refusal}")
        try:
            call(self.twin)
            twin_ok = True
        except errors.ModelError:
            twin_ok = False
        if twin_ok != ok:
            raise errors.InvariantViolation("HYP-ISO-noninterference", f"{op}({args}): the twin's outcome differs")
        if ok != expect:
            raise errors.InvariantViolation(RULE_OF.get(op, "HYP-MEMPARCEL-create-rule"),
                                            f"{op}({args}) accepted={ok}, reference expects {expect}: {err}")
        return ok, (got[0] if got else None)

    def declassify(self, pages) -> None:
        """The victim exported ``pages`` on purpose: from now on both runs hold the same bytes there."""
        for p in pages:
            self.twin.pages[p][:] = self.hv.pages[p]

    def secret_pages(self) -> set[int]:
        """Pages only the victim can reach: its private pages and pages it borrowed by a LEND to it alone."""
        out = set()
        for ipa, (p, _) in self.ref.maps[self.victim].items():
            if self.ref.is_private(self.victim, ipa):
                out.add(p)
            for P in self.ref.parcels.values():
                if p in P.pages and P.trans == Trans.LEND and sum(1 for r in P.acl if r) == 1:
                    out.add(p)
        return out

    # --- grant operations
    @rule(target=parcels, kind=st.sampled_from([Trans.SHARE, Trans.LEND, Trans.DONATE]), vm=VMS, at=st.integers(0, 63),
          npages=st.integers(0, 3), acl=st.lists(RIGHTS, min_size=N_VMS, max_size=N_VMS), sanitize=st.booleans(),
          honest=st.booleans())
    def create(self, kind, vm, at, npages, acl, sanitize, honest):
        """Any VM creates any parcel; an honest owner names its own private pages and a valid ACL."""
        h = self.do_create(kind, vm, at, npages, tuple(acl), sanitize, honest)
        return multiple() if h is None else h

    @rule(target=parcels, kind=st.sampled_from([Trans.SHARE, Trans.LEND, Trans.DONATE]), vm=VMS, at=st.integers(0, 63),
          npages=st.integers(1, 2), acl=st.lists(RIGHTS, min_size=N_VMS, max_size=N_VMS), sanitize=st.booleans(),
          borrower=VMS, rights=RIGHTS)
    def grant(self, kind, vm, at, npages, acl, sanitize, borrower, rights):
        """An honest owner creates a parcel and an honest VM of its ACL accepts it (reaches shared states fast)."""
        h = self.do_create(kind, vm, at, npages, tuple(acl), sanitize, True)
        if h is None:
            return multiple()
        self.do_accept(borrower, h, 0, True, at, rights, True)
        return h

    def do_create(self, kind, vm, at, npages, acl, sanitize, honest) -> int | None:
        ipa = self.pick(at)
        own = sorted(i for i in self.ref.maps[vm] if self.ref.is_private(vm, i))
        if honest:
            acl = self.honest_acl(kind, vm, acl)
            ipa = own[at % len(own)] if own else ipa
            npages = max(1, min(npages, 1 + sum(1 for i in own if i > ipa)))
        expect = self.ref.create_legal(vm, kind, ipa, npages, acl)
        method = {Trans.SHARE: "mem_share", Trans.LEND: "mem_lend", Trans.DONATE: "mem_donate"}[kind]
        args = {"vm": vm, "ipa": ipa, "npages": npages, "sanitize": sanitize, **{f"acl{v}": acl[v] for v in range(N_VMS)}}
        ok, h = self.both(kind.name.lower(), lambda hv: getattr(hv, method)(vm, ipa * PS, npages * PS, dict(enumerate(acl)),
                                                                             sanitize), args, expect)
        if not ok:
            return None
        pages = self.ref.create(h, vm, kind, ipa, npages, acl)
        if vm == self.victim:
            self.declassify(pages)
        return h

    @rule(vm=VMS, handle=handles, trans=st.integers(0, 3), window=st.booleans(), at=st.integers(0, 63),
          rights=RIGHTS, honest=st.booleans())
    def accept(self, vm, handle, trans, window, at, rights, honest):
        """Any VM accepts anything; an honest acceptor is in the ACL, names the type and maps at a free window."""
        self.do_accept(vm, handle, trans, window, at, rights, honest)

    def do_accept(self, vm, handle, trans, window, at, rights, honest) -> None:
        P = self.ref.parcels.get(handle)
        if P is not None and honest:
            members = [v for v in range(N_VMS) if P.acl[v] and v != P.owner and v not in P.borrowed]
            vm = members[vm % len(members)] if members else vm
            trans, rights = P.trans, (rights & P.acl[vm]) or P.acl[vm]
            window = True
        ipa = ACCEPT_IPA + at % 8 if window else self.pick(at)
        refusal = self.ref.accept_refusal(vm, handle, trans, ipa, rights)
        args = {"vm": vm, "handle": handle, "trans": trans, "ipa": ipa, "rights": rights}
        ok, _ = self.both("accept", lambda hv: hv.mem_accept(vm, handle, trans, ipa * PS, rights), args,
                          refusal is None, refusal)
        if ok:
            self.ref.accept(vm, handle, ipa, rights)

    def _release(self, vm, handle, sanitize):
        P = self.ref.parcels.get(handle)
        exported = (vm == self.victim and P is not None and not sanitize and vm in P.borrowed)
        expect = self.ref.release_legal(vm, handle, sanitize)
        args = {"vm": vm, "handle": handle, "sanitize": sanitize}
        ok, _ = self.both("release", lambda hv: hv.mem_release(vm, handle, sanitize), args, expect)
        if ok:
            if exported:
                self.declassify(P.pages)
            self.ref.release(vm, handle)

    @rule(vm=VMS, handle=handles, sanitize=st.booleans(), borrower=st.booleans())
    def release(self, vm, handle, sanitize, borrower):
        """Any VM releases anything; an honest borrower releases a parcel it holds."""
        held = [(h, b) for h, P in sorted(self.ref.parcels.items()) if not P.locked for b in sorted(P.borrowed)]
        if borrower and held:
            handle, vm = held[vm % len(held)]
        self._release(vm, handle, sanitize)

    @rule(vm=VMS, sanitize=st.booleans())
    def release_on_recall(self, vm, sanitize):
        """An honest borrower answers RECALL by releasing."""
        for h in self.hv.recalls(vm):
            self._release(vm, h, sanitize)

    @rule(vm=VMS, handle=handles, sanitize=st.booleans(), owner=st.booleans())
    def reclaim(self, vm, handle, sanitize, owner):
        """Any VM reclaims anything (in use, locked, not its own); an honest owner reclaims its own parcel."""
        if handle in self.ref.parcels and owner:
            vm = self.ref.parcels[handle].owner
        expect = self.ref.reclaim_legal(vm, handle)
        args = {"vm": vm, "handle": handle, "sanitize": sanitize}
        ok, _ = self.both("reclaim", lambda hv: hv.mem_reclaim(vm, handle, sanitize), args, expect)
        if ok:
            self.ref.reclaim(vm, handle)

    @rule(vm=VMS, handle=handles, owner=st.booleans())
    def recall(self, vm, handle, owner):
        if handle in self.ref.parcels and owner:
            vm = self.ref.parcels[handle].owner
        expect = self.ref.recall_legal(vm, handle)
        self.both("recall", lambda hv: hv.mem_notify_recall(vm, handle), {"vm": vm, "handle": handle}, expect)

    @rule(vm=VMS, page=st.integers(-1, PRESET.n_pages), at=st.integers(0, 63), region=st.booleans())
    def convert_after_boot(self, vm, page, at, region):
        """Assigning memory or growing a shared region after boot is refused, whatever the page."""
        ipa = self.pick(at)
        if region:
            args = {"secondary": vm, "page": page, "secondary_ipa": ipa, "primary_ipa": ipa + 1}
            call = lambda hv: hv.region_provision(vm, page, ipa * PS, (ipa + 1) * PS)  # noqa: E731
            op = "region_provision"
        else:
            args, op = {"vm": vm, "page": page, "ipa": ipa}, "vm_assign"
            call = lambda hv: hv.vm_assign(vm, page, ipa * PS)  # noqa: E731
        ok, err = checked_call(C, op, self.hv, lambda: call(self.hv), args)
        if ok:
            raise errors.InvariantViolation("HYP-BOOT-rule", f"{op}({args}) accepted after boot")

    # --- memory accesses
    @rule(vm=VMS, at=st.integers(0, 63), offset=st.integers(-8, PS), n=st.integers(0, MAX_ACCESS),
          write=st.booleans(), fill=st.integers(1, 255))
    def access(self, vm, at, offset, n, write, fill):
        addr = self.pick(at) * PS + offset
        right = W if write else int(Rights.R)
        expect = self.ref.may(vm, addr, n, right)
        data = bytes((fill + i) & 0xFF for i in range(n))
        try:
            if write:
                self.hv.view(vm).write(addr, data)
            else:
                self.hv.view(vm).read(addr, n)
            allowed = True
        except errors.AccessFault:
            allowed = False
        if allowed != expect:
            raise errors.InvariantViolation("HYP-MEM-no-right", f"VM {vm} {'write' if write else 'read'} of {n} bytes "
                                            f"at {addr:#x}: view allowed={allowed}, reference says {expect}")
        if allowed and write:
            secret = self.secret_pages() if vm == self.victim else set()
            twin_data = bytes(b ^ SECRET_MASK if self.page_of(vm, addr + i) in secret else b for i, b in enumerate(data))
            self.twin.view(vm).write(addr, twin_data)

    @rule(at=st.integers(0, 7), back=st.integers(1, 64), n=st.integers(1, PS + 128), fill=st.integers(1, 255))
    def victim_private_write(self, at, back, n, fill):
        """The victim works on its private memory, across a page boundary when it has two adjacent private pages."""
        own = sorted(i for i in self.ref.maps[self.victim] if self.ref.is_private(self.victim, i))
        starts = [i for i in own if i + 1 in own] or own
        if starts:
            self.access(self.victim, self.candidates().index(starts[at % len(starts)]), PS - back, n, True, fill)

    def page_of(self, vm: int, addr: int) -> int:
        return self.ref.maps[vm][addr // PS][0]

    # --- checks after every step
    @invariant()
    def honest_state(self):
        if not hasattr(self, "hv") or self.hv.state is getattr(self, "checked", None):
            return                        # a refused step or an access leaves the (immutable) state as checked
        check_invariants(C, self.hv.state)
        self.checked = self.hv.state
        for vm in range(N_VMS):
            if self.hv.tlb[vm] != self.ref.maps[vm]:
                raise errors.InvariantViolation("HYP-MEM-no-right", f"VM {vm} maps {self.hv.tlb[vm]}, "
                                                f"reference {self.ref.maps[vm]}")

    @invariant()
    def noninterference(self):
        if not hasattr(self, "hv"):
            return
        for vm in range(N_VMS):
            if vm == self.victim:
                continue
            if self.hv.tlb[vm] != self.twin.tlb[vm]:
                raise errors.InvariantViolation("HYP-ISO-noninterference", f"VM {vm}'s mappings differ between runs")
            for ipa, (_, rights) in sorted(self.hv.tlb[vm].items()):
                if rights & Rights.R and self.hv.view(vm).read(ipa * PS, PS) != self.twin.view(vm).read(ipa * PS, PS):
                    raise errors.InvariantViolation("HYP-ISO-noninterference",
                                                    f"VM {vm} reads different bytes at IPA {ipa * PS:#x}: "
                                                    f"victim {self.victim}'s private bytes leaked")


MACHINES = {"hypervisor": HypervisorMachine}
