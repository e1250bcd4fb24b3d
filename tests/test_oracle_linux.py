"""Stock Linux 6.1.y through the oracle (``t1virtio.oracle.linux``): kernel/dma/swiotlb.c as a pool,
virtio_ring.c as a split and a packed driver, vringh.c as a split device, on the same flat memory.

Every reported violation of a seeded corpus (the oracle's own generated sequences, honest and hostile peers)
is one of the documented divergences of that component and mode (docs/oracle.md "Stock Linux 6.1 through the
oracle"), and most sequences conform; each divergence and each known 6.1.y defect of facts/upstream.md is then
reproduced by a directed sequence and reported with exactly its clause. The peers skip outside CI when they
cannot be built, and fail in CI (tests/linuxpeer.py).
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from linuxpeer import swiotlb_peer, vring_peer
from t1virtio.oracle import linux, live
from t1virtio.oracle.check import check_trace
from t1virtio.oracle.trace import write

CLI = str(Path(sys.executable).parent / "t1virtio")

U64 = (1 << 64) - 1
START = 0x800000
USED_LEN = "VIRTIO/device/Virtqueues/The Virtqueue Used Ring#len"
AFTER_FAULT = "exact: an operation answered after a peer fault"   # the model's broken ring refuses it (any clause)
PACKED_USED_LEN = "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#used-len"
PACKED_GET_USED = "VIRTIO/model/packed/driver#get-used-rule"     # the same len, caught by the get_used rule

# What the oracle reports on stock Linux, per component and mode (docs/oracle.md explains each one)
DOCUMENTED = {
    ("swiotlb", "legality"): {"SWIOTLB-release-not-mapped", "SWIOTLB-release-size", "SWIOTLB-alloc-rule",
                              "SWIOTLB-search-bounded"},
    ("swiotlb", "exact"): {"SWIOTLB-release-not-mapped", "SWIOTLB-release-size"},
    ("split_driver", "legality"): {"VIRTIO/model/used#idx", USED_LEN},
    ("split_driver", "exact"): {"VIRTIO/model/used#idx", USED_LEN, AFTER_FAULT},
    ("packed_driver", "legality"): {PACKED_USED_LEN, PACKED_GET_USED},
    ("packed_driver", "exact"): {PACKED_USED_LEN, PACKED_GET_USED, "VIRTIO/model/packed/driver#no-used",
                                 "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#used-flags",
                                 "VIRTIO/driver/Packed Virtqueues/Scatter-Gather Support#ring-space",
                                 "MODEL-honest-accepted", AFTER_FAULT},
    ("split_device", "legality"): {"VIRTIO/model/device#held", "VIRTIO/model/device#used-len",
                                   "VIRTIO/model/device#inuse",
                                   "VIRTIO/driver/Virtqueues/The Virtqueue Available Ring#idx",
                                   "MODEL-honest-accepted", AFTER_FAULT},
    ("split_device", "exact"): {"VIRTIO/model/device#held", "VIRTIO/model/device#used-len",
                                "VIRTIO/model/device#inuse",
                                "VIRTIO/driver/Virtqueues/The Virtqueue Available Ring#idx",
                                "MODEL-honest-accepted", "VIRTIO/model/avail#head-range", AFTER_FAULT},
}


def _factory(component):
    peer = swiotlb_peer() if component == "swiotlb" else vring_peer()
    return linux.FACTORIES[component](peer)


def _header(component, mode, **extra):
    if component == "swiotlb":          # Linux's 128-slot segments: the linux preset, a 256-slot restricted pool
        h = live.header_for("swiotlb", "linux", policy="v6.1", nslabs=256, start=START)
    else:
        h = live.header_for(component, "small")
        if component == "split_device":
            h["region"] = [0, 0x400000]   # vringh's guest memory: the buffers it may accept
    h["mode"] = mode
    h.update(extra)
    return h


def _reported(s, mode) -> str:
    """The violation's clause, or AFTER_FAULT: in exact mode, Linux answered an operation after it refused one
    for a peer fault (EIO), where the model, its ring broken by that fault, refuses it with the fault's clause."""
    v = s.violation
    before = s.steps[: v.step - 1]
    if (mode == "exact" and v.op not in ("get_used", "pop_avail", "add_buf", "add") and "result" in s.steps[v.step - 1]
            and any(d.get("error") == "EIO" for d in before)):
        return AFTER_FAULT
    return v.clause


def _session(component, mode, **extra):
    return live.Session(_factory(component), _header(component, mode, **extra), mode)


CORPUS = {  # (sequences, steps each): swiotlb legality checks whole 32768-entry tables per step (slow)
    ("swiotlb", "legality"): (3, 6), ("swiotlb", "exact"): (30, 8), ("split_device", "legality"): (60, 8),
    ("split_device", "exact"): (60, 8)}


@pytest.mark.parametrize("mode", ["legality", "exact"])
@pytest.mark.parametrize("component", ["swiotlb", "split_driver", "packed_driver", "split_device"])
def test_stock_linux_conforms_apart_from_documented_divergences(component, mode):
    fac, h = _factory(component), _header(component, mode)
    n_seq, n_steps = CORPUS.get((component, mode), (40, 25))
    _, kinds = live.ACTIONS[component]
    rng = random.Random(f"linux:{component}:{mode}")
    reported, clean, steps = set(), 0, 0
    recheck = component != "swiotlb" or mode == "exact"         # the recorded trace says the same (cheap ones)
    for _ in range(n_seq):
        acts = [(rng.randrange(kinds), rng.randrange(1 << 16), rng.randrange(1 << 16)) for _ in range(n_steps)]
        s = live.run_actions(fac, h, acts, mode)
        steps += len(s.steps)
        if s.violation is None:
            clean += 1
        else:
            reported.add(_reported(s, mode))
        if recheck:
            rep = check_trace(h, s.steps, mode)
            assert (rep.violation.clause if rep.violation else None) == (s.violation.clause if s.violation else None)
    assert reported <= DOCUMENTED[(component, mode)], reported - DOCUMENTED[(component, mode)]
    assert clean >= 1 and steps >= n_seq * 3, (clean, steps)


# ------------------------------------------------------------------ swiotlb: the 6.1.y defects, directed

HANG = [("map", 1111883, 38034), ("map", 1420540, 37594), ("map", 1051999, 17626), ("map", 1074910, 44911),
        ("map", 1767577, 26946), ("release", 8546457), ("map", 2062914, 53307), ("map", 1378517, 47913),
        ("map", 1519035, 39875), ("map", 1581751, 31099), ("map", 1596592, 31388), ("release", 8473951),
        ("map", 1515368, 52327), ("map", 1132675, 43639)]    # min_align_mask 0xfff (NVMe); found with the model


@pytest.mark.parametrize("mode", ["legality", "exact"])
def test_unbounded_slot_search(mode):
    """facts/upstream.md: 6.1.y's do {} while (index != wrap) never ends; the peer's watchdog stops it."""
    s = _session("swiotlb", mode)
    for op in HANG:
        args = ({"orig_addr": op[1], "mapping_size": op[2]} if op[0] == "map" else {"tlb_addr": op[1]})
        if not s.call(op[0], dict(args, min_align_mask=0xFFF)):
            break
    assert s.impl.hangs == 1 and s.steps[-1].get("error") == "SWIOTLB-find-no-termination"
    if mode == "legality":                 # any allocator's search must end
        assert s.violation is not None and s.violation.clause == "SWIOTLB-search-bounded", s.violation
    else:                                  # exact (policy v6.1): the model predicts this very hang
        assert s.violation is None, s.violation


@pytest.mark.parametrize("mode", ["legality", "exact"])
def test_swiotlb_alloc_hands_out_a_page_twice(mode, tmp_path):
    s = _session("swiotlb", mode)
    s.call("alloc", {"size": 100})
    s.call("alloc", {"size": 100})
    a, b = (d["result"] for d in s.steps)
    assert a["addr"] == b["addr"] == START and (a["slot"], b["slot"]) == (0, 1)   # the same page, two slots
    path = write(tmp_path / "linux.trace.jsonl", s.header, s.steps)             # what Linux did, as a trace
    out = subprocess.run([CLI, "oracle", "check", str(path), "--json"], capture_output=True, text=True, timeout=120)
    if mode == "legality":
        assert s.violation.clause == "SWIOTLB-alloc-rule" and s.violation.step == 2
        assert out.returncode == 1 and json.loads(out.stdout)["violation"]["clause"] == "SWIOTLB-alloc-rule"
    else:                                  # the v6.1 policy's alloc_page = pfn reproduces it
        assert s.violation is None
        assert out.returncode == 0, out.stdout + out.stderr


def test_swiotlb_per_slot_size_wrap_is_not_observable():
    """facts/upstream.md: alloc_size - (offset + k*2048) wraps for a trailing slot. The peer shows it; the
    trace format observes an allocation by its head slot only, so the oracle neither sees nor reports it."""
    for mode in ("legality", "exact"):
        s = _session("swiotlb", mode)
        s.call("map", {"orig_addr": 0x10000 + 2000, "mapping_size": 100, "min_align_mask": 0x7FF})
        slot = s.steps[0]["result"]["slot"]
        assert s.impl.pool.slots(slot, 2)["alloc_size"] == [100, (100 - 2048) & U64]
        s.call("release", {"tlb_addr": s.steps[0]["result"]["tlb_addr"], "min_align_mask": 0x7FF})
        assert s.violation is None and s.steps[-1]["result"] == {"nslots": 2}


@pytest.mark.parametrize("mode", ["legality", "exact"])
def test_swiotlb_release_checks_nothing(mode):
    s = _session("swiotlb", mode)                       # a second release of the same address
    s.call("map", {"orig_addr": 0x10000, "mapping_size": 100})
    tlb = s.steps[0]["result"]["tlb_addr"]
    s.call("release", {"tlb_addr": tlb})
    s.call("release", {"tlb_addr": tlb})
    assert s.violation.clause == "SWIOTLB-release-not-mapped" and s.steps[-1]["result"] == {"nslots": 0}
    s = _session("swiotlb", mode)                       # released with another min_align_mask than mapped
    s.call("map", {"orig_addr": 0x10000 + 2000, "mapping_size": 100, "min_align_mask": 0x7FF})
    s.call("release", {"tlb_addr": s.steps[0]["result"]["tlb_addr"]})
    assert s.violation.clause == "SWIOTLB-release-size" and s.steps[-1]["result"] == {"nslots": 1}   # leaks one


# ------------------------------------------------------------------ rings: directed divergences

def test_virtio_ring_trusts_used_len():
    """virtio_ring.c 6.1 returns the device's used len unchecked (the driver, e.g. virtio-net, must check)."""
    for component, op, clause in (("split_driver", "add_buf", USED_LEN), ("packed_driver", "add", PACKED_GET_USED)):
        s = _session(component, "legality")
        s.call(op, {"out": [[0x100000, 16]], "in": [[0x200000, 64]]})
        s.call("kick_prepare", {})
        r = s.checker.runner
        if component == "split_driver":
            lay = r.layout
            s.write([(lay.used_elem_at(0), (0).to_bytes(4, "little") + (4096).to_bytes(4, "little")),
                     (lay.used + 2, (1).to_bytes(2, "little"))])
        else:
            from t1virtio.virtio import packed as pk
            flags = pk.VIRTQ_DESC_F_AVAIL | pk.VIRTQ_DESC_F_USED
            s.write([(r.layout.desc + 8, (4096).to_bytes(4, "little") + (0).to_bytes(2, "little")
                      + flags.to_bytes(2, "little"))])
        s.call("get_used", {})
        assert s.steps[-1]["result"] == {"id": 0, "len": 4096}
        assert s.violation.clause == clause, s.violation


def test_vringh_trusts_its_caller():
    """vringh_complete_user publishes any (id, len): the vhost device above it must check."""
    s = _session("split_device", "legality")
    s.call("add_used", {"id": 3, "len": 0})              # nothing was popped
    assert s.steps[-1]["result"] == {} and s.violation.clause == "VIRTIO/model/device#held"
    s = _session("split_device", "legality")
    live._act_split_device(s, (3, 5, 7))                 # the honest driver makes one buffer available
    s.call("pop_avail", {})
    wlen = s.steps[-1]["result"]["wlen"]
    s.call("add_used", {"id": s.steps[-1]["result"]["head"], "len": wlen + 1})
    assert s.violation.clause == "VIRTIO/model/device#used-len"
