"""Hypervisor memory isolation and memory parcels: API behaviour, scenario checks for mutants."""
import pytest

from t1virtio import errors
from t1virtio.hyp.memory import RAM_IPA, RW, RWX, Hypervisor, Layout, PageState, Trans
from t1virtio.preset import LINUX, SMALL
from t1virtio.specs import invariants

PS = SMALL.page_size


def bad_vm_is_refused() -> str | None:
    """Scenario: a view or a grant for a VM id that does not exist must raise CallerError HYP-VM-id."""
    hv = Hypervisor(SMALL)
    for vm in (-1, SMALL.n_vms):
        try:
            hv.view(vm)
        except errors.CallerError as e:
            if e.clause != "HYP-VM-id":
                return "HYP-VM-id"
            continue
        return "HYP-VM-id"
    return None


def misaligned_share_is_refused() -> str | None:
    """Scenario: a share at an IPA that is not page-aligned must raise CallerError HYP-S2-align."""
    hv = Hypervisor(SMALL)
    try:
        hv.mem_share(0, RAM_IPA + 8, PS, {0: RW, 1: RW})
    except errors.CallerError as e:
        return None if e.clause == "HYP-S2-align" else "HYP-S2-align"
    return "HYP-S2-align"


def lent_secret_is_sanitized() -> str | None:
    """Scenario (noninterference): secondary 1 borrows a page the primary lends to it alone, writes a secret,
    releases with SANITIZE; after reclaim the primary must read the same bytes whatever the secret was."""
    seen = []
    for secret in (b"\x11" * 64, b"\x22" * 64):
        hv = Hypervisor(SMALL, Layout(private=(1, 1, 1), shared=(0, 1, 0)))
        h = hv.mem_lend(0, RAM_IPA, PS, {1: RW})
        hv.mem_accept(1, h, Trans.LEND, 0x2_0000_0000, RW)
        hv.view(1).write(0x2_0000_0000, secret)
        hv.mem_release(1, h, sanitize=True)
        hv.mem_reclaim(0, h)
        seen.append(hv.view(0).read(RAM_IPA, PS))
    return None if seen[0] == seen[1] else "HYP-ISO-noninterference"


def outsider_accept_is_denied() -> str | None:
    """Scenario: a VM outside a parcel's ACL that asks to accept it gets DENIED (HYP-MEMPARCEL-accept-acl)."""
    hv = Hypervisor(SMALL, Layout(private=(1, 1, 1), shared=(0, 0, 0)))
    h = hv.mem_lend(0, RAM_IPA, PS, {1: RW})
    for rights in (RW, 0):
        try:
            hv.mem_accept(2, h, Trans.LEND, 0x2_0000_0000, rights)
        except errors.PeerViolation as e:
            if e.clause != "HYP-MEMPARCEL-accept-acl":
                return "HYP-MEMPARCEL-accept-acl"
            continue
        return "HYP-MEMPARCEL-accept-acl"
    return None


def machine_twin_sees_private_write() -> str | None:
    """Scenario on the machine's own noninterference check: the victim (VM 1) owns physical pages 0 and 2 at
    adjacent IPAs, the primary owns page 1; a write across the victim's page boundary must not reach the primary."""
    from t1virtio.machines.hypervisor import HypervisorMachine
    m = HypervisorMachine()
    m.boot(setup=(Layout(private=(1, 2, 0), shared=(0, 0, 0), order=(1, 0, 2, 3)), 1))
    m.victim_private_write(at=0, back=8, n=64, fill=3)
    try:
        m.noninterference()
        m.honest_state()
    except errors.InvariantViolation as e:
        return e.clause
    return None


def test_scenarios_pass_on_the_model():
    assert machine_twin_sees_private_write() is None
    assert outsider_accept_is_denied() is None
    assert bad_vm_is_refused() is None
    assert misaligned_share_is_refused() is None
    assert lent_secret_is_sanitized() is None


def test_boot_layout_and_regions():
    hv = Hypervisor(LINUX, Layout(private=(4, 4, 4), shared=(0, 8, 8)))
    invariants.check("hypervisor", hv.state)
    pri, sec, size = hv.shared_region(1)
    assert size == 8 * PS and pri != sec
    assert hv.private_region(2) == (RAM_IPA, 4 * PS)
    hv.view(1).write(sec + size - 4, b"ring")
    with pytest.raises(errors.AccessFault, match="HYP-MEM-no-right"):
        hv.view(1).write(sec + size - 3, b"ring")          # one byte past the region: nothing is written
    assert hv.view(0).read(pri + size - 4, 4) == b"ring"


def test_region_is_shared_at_different_ipas():
    hv = Hypervisor(LINUX, Layout(private=(1, 1, 1), shared=(0, 2, 2)))
    pri, sec, size = hv.shared_region(2)
    hv.view(2).write(sec + PS - 2, b"abcd")              # crosses a page boundary
    assert hv.view(0).read(pri + PS - 2, 4) == b"abcd"
    assert hv.view(1).read(sec + PS - 2, 4) == bytes(4)  # VM 1 sees its own region at that IPA


def test_secondary_private_memory_is_unreachable_by_the_primary():
    hv = Hypervisor(SMALL, Layout(private=(1, 1, 1), shared=(0, 1, 0)))
    hv.view(1).write(RAM_IPA, b"secret")
    assert hv.view(0).read(RAM_IPA, 6) == bytes(6)       # same IPA, the primary's own page
    page = hv.tlb[1][RAM_IPA // PS][0]
    assert all(p != page for vm in (0, 2) for p, _ in hv.tlb[vm].values())
    with pytest.raises(errors.AccessFault):
        hv.view(0).read(RAM_IPA + PS, 1)
    with pytest.raises(errors.AccessFault):
        hv.view(2).write(0x1_0000_0000, b"x")             # VM 2 has no region in this layout


def test_lend_accept_recall_release_reclaim_with_sanitize():
    hv = Hypervisor(SMALL, Layout(private=(2, 1, 1), shared=(0, 0, 0)))
    h = hv.mem_lend(0, RAM_IPA, 2 * PS, {1: RW}, sanitize=True)
    with pytest.raises(errors.AccessFault):
        hv.view(0).read(RAM_IPA, 1)                        # LEND removes the owner's mapping
    with pytest.raises(errors.PeerViolation, match="HYP-MEMPARCEL-accept-acl"):
        hv.mem_accept(2, h, Trans.LEND, 0x2_0000_0000, RW)
    with pytest.raises(errors.PeerViolation, match="HYP-MEMPARCEL-accept-rights"):
        hv.mem_accept(1, h, Trans.LEND, 0x2_0000_0000, RWX)
    hv.mem_accept(1, h, Trans.LEND, 0x2_0000_0000, RW)
    with pytest.raises(errors.PeerViolation, match="HYP-MEMPARCEL-accept-twice"):
        hv.mem_accept(1, h, Trans.LEND, 0x3_0000_0000, RW)
    hv.view(1).write(0x2_0000_0000 + PS - 1, b"xy")
    with pytest.raises(errors.PeerViolation, match="HYP-MEMPARCEL-inuse"):
        hv.mem_reclaim(0, h)
    hv.mem_notify_recall(0, h)
    assert hv.recalls(1) == [h]
    hv.mem_release(1, h)
    with pytest.raises(errors.AccessFault):
        hv.view(1).read(0x2_0000_0000, 1)                  # released pages are gone
    hv.mem_reclaim(0, h, sanitize=True)
    assert hv.view(0).read(RAM_IPA + PS - 1, 2) == bytes(2)
    invariants.check("hypervisor", hv.state)


def test_donate_moves_ownership_and_cannot_be_reclaimed():
    hv = Hypervisor(SMALL, Layout(private=(2, 1, 1), shared=(0, 0, 0)))
    with pytest.raises(errors.CallerError, match="HYP-MEMPARCEL-donate-acl"):
        hv.mem_donate(0, RAM_IPA, PS, {1: RW})
    h = hv.mem_donate(0, RAM_IPA, PS, {1: RWX})
    hv.mem_accept(1, h, Trans.DONATE, 0x2_0000_0000, RWX)
    with pytest.raises(errors.CallerError, match="HYP-MEMPARCEL-handle"):
        hv.mem_reclaim(0, h)
    page = hv.tlb[1][0x2_0000_0000 // PS][0]
    assert hv.state.owner[page] == 1 and hv.state.s2[1][page].state == PageState.OWNED


def test_region_cannot_be_released_reclaimed_or_grown_after_boot():
    hv = Hypervisor(SMALL, Layout(private=(1, 1, 0), shared=(0, 1, 0)))
    with pytest.raises(errors.PeerViolation, match="HYP-REGION-locked"):
        hv.mem_release(0, 0)
    with pytest.raises(errors.PeerViolation, match="HYP-REGION-locked"):
        hv.mem_reclaim(1, 0)
    with pytest.raises(errors.PeerViolation, match="HYP-REGION-boot-only"):
        hv.region_provision(1, 3, 0x1_0000_1000, 0x4_0000_1000)
    with pytest.raises(errors.PeerViolation, match="HYP-MEMPARCEL-sgl-owned"):
        hv.mem_share(1, 0x1_0000_0000, PS, {1: RW, 0: RW})  # a region page is not private memory


def test_shared_region_api_checks_vm():
    hv = Hypervisor(SMALL)
    with pytest.raises(errors.CallerError, match="HYP-REGION-secondary"):
        hv.shared_region(0)
