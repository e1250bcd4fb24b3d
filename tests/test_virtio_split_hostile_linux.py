"""Hostile peers against the model's split ring and Linux 6.1 side by side (issue 10).

Every hostile scenario is written raw, byte for byte, into two flat memories: one served by the
model, one by the real kernel code (``vringh.c`` as the device, ``virtio_ring.c`` as the driver).
Both answers are collected as *outcomes* and compared by ``compare_device`` / ``compare_driver``:

- both refuse: the model's clause must map to vringh's errno (``CLAUSE_ERRNO``) or to virtio_ring.c's
  BAD_RING (``CLAUSE_LINUX_DRIVER``);
- both accept: the chains (head, readable, writable) or the ``(token, len)`` must be equal;
- one accepts what the other refuses: only where ``DEVICE_DIVERGENCES`` / ``DRIVER_DIVERGENCES`` list it,
  with the spec section the model follows and why;
- and each side must give the answer the scenario expects, so a model that refuses with the wrong
  clause of the same errno is caught too.

Also: honest traffic across the u16 index wrap (Linux reaches it by real round trips), the
driver's notification calls while buffers are pending (with and without EVENT_IDX), and mutants of
the model that the comparison functions must report. Every loop is bounded; a stall fails with the
step, both sides' states and the operations so far.
"""
from __future__ import annotations

import errno
import mmap
import random
import struct
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from t1virtio import errors
from t1virtio.hyp.memview import FlatView
from t1virtio.virtio import chain, split
from t1virtio.virtio.desc import VIRTQ_DESC_F_INDIRECT as IND, VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as W
from linuxpeer import vring_peer

SIZE = 16
MEM = 1 << 16
# the ring with a gap after the descriptor table, so that index SIZE holds a valid-looking descriptor
LAYOUT = dict(desc=0x0, avail=0x200, used=0x400)
MLAYOUT = split.SplitLayout(SIZE, LAYOUT["desc"], LAYOUT["avail"], LAYOUT["used"])
ARENA, ARENA_MAX = 0x1000, 8          # the drivers' indirect arena (SIZE * ARENA_MAX * 16 = 0x800 bytes)
TABLE = 0x3000                        # hostile indirect tables
DATA = 0x4000                         # data buffers
WRAP = 1 << 16
SEED = 20241

# ---------------------------------------------------------------- the clause <-> errno table
# vringh_getdesc_user's answer for each clause the model's chain walk / pop_avail reports (vringh.c, 6.1):
CLAUSE_ERRNO: dict[str, frozenset[int]] = {
    split.HEAD_RANGE: frozenset({errno.EINVAL}),     # __vringh_get_head "Guest says index %u > %u is available"
    chain.NEXT_RANGE: frozenset({errno.EINVAL}),     # __vringh_iov "Chained index %u > %u"
    chain.NESTED: frozenset({errno.EINVAL}),         # move_to_indirect "Multilevel indirect"
    # len % 16: "Strange indirect len" (EINVAL); len 0: vringh enters an empty table, reads entry 0 anyway
    # and calls it a loop (indirect_count 1 > desc_max 0: ELOOP)
    chain.TABLE_LEN: frozenset({errno.EINVAL, errno.ELOOP}),
    chain.LOOP: frozenset({errno.ELOOP}),            # "Descriptor loop" (count > num or > len/16)
    # a loop in a table longer than the queue: the model stops after size reads (chain-len), vringh after len/16
    chain.CHAIN_LEN: frozenset({errno.ELOOP}),
    chain.ORDER: frozenset({errno.EINVAL}),          # "Readable desc %p after writable"
    chain.IN_REGION: frozenset({errno.EINVAL}),      # range_check: getrange() refuses, or the u64 wrap
    split.QUEUE_POW2: frozenset({errno.EINVAL}),     # vringh_init_user "Bad ring size"
}
# virtio_ring.c's answer (virtqueue_get_buf_ctx_split) for each clause the model's get_used reports:
BAD_RING = "bad_ring"                 # BAD_RING(): returns NULL, vq->broken = true, later add() -EIO
CLAUSE_LINUX_DRIVER: dict[str, str] = {
    split.USED_ID: BAD_RING,          # "id %u out of range" / "id %u is not a head!"
}


@dataclass(frozen=True)
class Divergence:
    """One side accepts what the other refuses: what each does, the spec text the model follows, and why."""

    model: str | None                  # clause the model refuses with (None: the model accepts)
    linux: Any                         # errno / BAD_RING Linux answers (None: Linux accepts)
    section: str
    why: str


DEVICE_DIVERGENCES: dict[str, Divergence] = {
    "indirect_without_feature": Divergence(
        chain.FEATURE, None, "virtio-1.3:2.7.5.3.1#1",
        "the driver MUST NOT set INDIRECT unless VIRTIO_F_INDIRECT_DESC was negotiated; vringh never looks at the "
        "feature bit (vringh_init_user keeps only VERSION_1 and EVENT_IDX). The model follows the spec: a device "
        "that did not offer the feature does not parse tables"),
    "indirect_with_next_1": Divergence(
        chain.INDIRECT_NEXT, None, "virtio-1.3:2.7.5.3.1#4",
        "the driver MUST NOT set both INDIRECT and NEXT; vringh remembers next ('We will check this when we follow "
        "it!') and continues in the main table after the indirect table. The model follows the spec"),
    "indirect_with_next_0": Divergence(
        chain.INDIRECT_NEXT, None, "virtio-1.3:2.7.5.3.1#4",
        "as above; with next == 0 vringh drops the link silently (return_from_indirect only if up_next > 0)"),
    "chain_longer_than_queue_in_long_table": Divergence(
        chain.CHAIN_LEN, None, "virtio-1.3:2.7.5.3.1#3",
        "a chain in an indirect table of 2 * size entries with size + 1 descriptors: the driver MUST NOT create a "
        "chain longer than the queue size; vringh counts the table's chain against len/16 only. The model follows "
        "the spec (and so bounds the walk by the queue size, not the table)"),
    "avail_idx_jump": Divergence(
        split.AVAIL_IDX, None, "virtio-1.3:2.7.6.1#1; CVE-2016-5403",
        "an avail idx more than the queue size ahead: vringh reads whatever heads are there; the model refuses "
        "(a decrement looks the same mod 2^16), as QEMU and vm-virtio do"),
    "held_head_offered_again": Divergence(
        split.INUSE, None, "no normative sentence: the model's HELD_HEAD_POLICY (2.7: Queue Size is the most "
        "buffers queued)",
        "a head the device still holds made available again: vringh maps the chain a second time (CVE-2021-3748 "
        "class); the model's policy refuses it"),
    "empty_buffer_at_end_of_memory": Divergence(
        None, errno.EINVAL, "no normative sentence (2.7.5: len is the buffer's length)",
        "a 0-byte buffer at address == memory size: vringh's getrange() checks the start address and refuses; the "
        "model's in_region(addr, 0) is range containment and an empty range lies in any region. The model touches "
        "no byte of it (a read or write of 0 bytes), so accepting it is safe; a 0-byte buffer one further is "
        "refused by both"),
    "total_len_over_2_32": Divergence(
        chain.TOTAL_LEN, None, "virtio-1.3:2.7.5.2#1",
        "a chain of 2^32 + 1 bytes: the driver MUST NOT create a chain of more than 2^32 bytes; vringh never adds "
        "the lengths up. The model follows the spec (a used len, le32, could not describe it)"),
}

DRIVER_DIVERGENCES: dict[str, Divergence] = {
    "used_len_above_writable": Divergence(
        split.USED_LEN, None, "virtio-1.3:2.7.8.2#2; CVE-2021-47352",
        "the device MUST NOT report more than the buffer's writable bytes; virtio_ring.c 6.1 returns the len "
        "as written (the core check, 'virtio_ring: validate used buffer length', was reverted in 5.16 and left "
        "to the drivers). The model refuses it"),
    "used_idx_past_the_buffers_in_flight": Divergence(
        split.USED_IDX, None, "virtio-1.3:2.7 (Queue Size is the most buffers queued), 2.7.8",
        "used idx 3 ahead with 2 buffers in flight: virtio_ring.c takes the first entry (a valid head) and only "
        "breaks at the second (BAD_RING: id no longer a head); the model refuses the index before taking anything"),
    "used_idx_ahead_by_more_than_size": Divergence(
        split.USED_IDX, None, "virtio-1.3:2.7, 2.7.8",
        "used idx size + 1 ahead: as above, virtio_ring.c never compares the used idx with what is in flight"),
}


# ---------------------------------------------------------------- outcomes and the comparison functions

def device_outcome_model(dev: split.SplitDevice) -> tuple:
    """The model device's answer to one pop: ("chain", head, readable, writable), ("refused", clause), ("empty",),
    or ("crash", what) for anything else (a model bug, an exception a peer must never cause)."""
    try:
        c = dev.pop_avail()
    except errors.PeerViolation as e:
        return ("refused", e.clause)
    except errors.Exhausted:
        return ("empty",)
    except Exception as e:  # noqa: BLE001 - reported, never hidden
        return ("crash", f"{type(e).__name__}: {e}")
    return ("chain", c.head, tuple(c.readable), tuple(c.writable))


def device_outcome_linux(vp, dev) -> tuple:
    """vringh's answer: ("chain", head, readable, writable), ("errno", code), ("empty",), ("crash", what)."""
    try:
        c = dev.getdesc()
    except vp.VringhError as e:
        return ("errno", e.errno)
    except Exception as e:  # noqa: BLE001
        return ("crash", f"{type(e).__name__}: {e}")
    if c is None:
        return ("empty",)
    return ("chain", c.head, tuple(c.readable), tuple(c.writable))


def _name_errno(code):
    return errno.errorcode.get(code, str(code)) if isinstance(code, int) else str(code)


def compare_device(name: str, model: tuple, linux: tuple, expect_model: str | None = "?",
                   expect_linux: Any = "?") -> list[str]:
    """Return what disagrees between the model's and vringh's answers to scenario ``name`` (empty: they agree as the
    tables say). ``expect_*``: the scenario's own expectation (a clause / an errno, None = accepted; "?" = not
    checked)."""
    out = []
    for side, o in (("model", model), ("vringh", linux)):
        if o[0] == "crash":
            out.append(f"{name}: {side} crashed: {o[1]}")
    if out:
        return out
    m_acc, l_acc = model[0] == "chain", linux[0] == "chain"
    m_what = "accepts" if m_acc else f"refuses {model[1]}" if model[0] == "refused" else model[0]
    l_what = "accepts" if l_acc else f"-{_name_errno(linux[1])}" if linux[0] == "errno" else linux[0]
    div = DEVICE_DIVERGENCES.get(name)
    if div is not None:
        want_m = ("chain",) if div.model is None else ("refused", div.model)
        want_l = ("chain",) if div.linux is None else ("errno", div.linux)
        if model[:len(want_m)] != want_m or linux[:len(want_l)] != want_l:
            out.append(f"{name}: documented divergence (model {div.model or 'accepts'}, vringh "
                       f"{_name_errno(div.linux) if div.linux else 'accepts'}; {div.section}) not seen: "
                       f"model {m_what}, vringh {l_what}")
    elif m_acc and l_acc:
        if model != linux:
            fields = [f for f, a, b in zip(("head", "readable", "writable"), model[1:], linux[1:]) if a != b]
            out.append(f"{name}: both accept, chains differ in {fields}: model {model[1:]}, vringh {linux[1:]}")
    elif model[0] == "refused" and linux[0] == "errno":
        allowed = CLAUSE_ERRNO.get(model[1])
        if allowed is None or linux[1] not in allowed:
            out.append(f"{name}: model refuses {model[1]}, vringh -{_name_errno(linux[1])}; the table maps that "
                       f"clause to {sorted(_name_errno(e) for e in allowed) if allowed else 'nothing'}")
    elif not (model[0] == linux[0] == "empty"):
        out.append(f"{name}: model {m_what}, vringh {l_what}: an undocumented divergence")
    if expect_model != "?":
        want = ("chain",) if expect_model is None else ("refused", expect_model)
        if model[:len(want)] != want:
            out.append(f"{name}: the model {m_what}, the scenario expects it to "
                       f"{'accept' if expect_model is None else 'refuse ' + expect_model}")
    if expect_linux != "?":
        want = ("chain",) if expect_linux is None else ("errno", expect_linux)
        if linux[:len(want)] != want:
            out.append(f"{name}: vringh {l_what}, the scenario expects "
                       f"{'acceptance' if expect_linux is None else '-' + _name_errno(expect_linux)}")
    return out


def driver_outcome_model(drv: split.SplitDriver) -> tuple:
    """The model driver's answer to one get_used: ("buf", token, len), ("refused", clause), ("empty",), ("crash",)."""
    try:
        t, n = drv.get_used()
    except errors.PeerViolation as e:
        return ("refused", e.clause)
    except errors.Exhausted:
        return ("empty",)
    except Exception as e:  # noqa: BLE001
        return ("crash", f"{type(e).__name__}: {e}")
    return ("buf", t, n)


def driver_outcome_linux(lin) -> tuple:
    """virtio_ring.c's answer to one get_buf: ("buf", token, len), (BAD_RING, log) if it returned NULL and broke the
    queue, ("empty",) if it returned NULL otherwise."""
    before = lin.log()[0]
    try:
        got = lin.get_buf()
    except Exception as e:  # noqa: BLE001
        return ("crash", f"{type(e).__name__}: {e}")
    if got is not None:
        return ("buf",) + tuple(got)
    if lin.broken:
        cnt, last = lin.log()
        return (BAD_RING, last if cnt > before else "(broken earlier)")
    return ("empty",)


def compare_driver(name: str, steps: list[tuple[tuple, tuple]], expect_model: list | None = None) -> list[str]:
    """Return what disagrees between the model driver's and virtio_ring.c's answers over the get_buf ``steps`` of
    scenario ``name`` ((model outcome, Linux outcome) per step). Both refusing: the model's clause must map to
    BAD_RING (``CLAUSE_LINUX_DRIVER``); both accepting: the same (token, len); both empty: fine; the model refusing
    where Linux still returns a buffer (or nothing): only the documented divergence of ``name``, after which Linux may
    break too. ``expect_model``: the scenario's expected model outcome per step ("buf", "empty" or a clause)."""
    out = []
    div = DRIVER_DIVERGENCES.get(name)
    seen_div = False
    for k, (m, l) in enumerate(steps):
        where = f"{name}, get_buf #{k}"
        if m[0] == "crash" or l[0] == "crash":
            out.append(f"{where}: crash (model {m}, Linux {l})")
            continue
        if expect_model is not None and k < len(expect_model):
            got = m[0] if m[0] in ("buf", "empty") else m[1]
            if got != expect_model[k]:
                out.append(f"{where}: the model gives {got}, the scenario expects {expect_model[k]}")
        if m[0] == "refused":
            if l[0] == BAD_RING and CLAUSE_LINUX_DRIVER.get(m[1]) == BAD_RING:
                continue
            if div is not None and m[1] == div.model and (l[0] != BAD_RING or seen_div):
                seen_div = True
                continue
            out.append(f"{where}: model refuses {m[1]}, Linux {l[0]}{l[1:] or ''}; the table maps that clause to "
                       f"{CLAUSE_LINUX_DRIVER.get(m[1], 'nothing')}")
        elif m[0] == "buf" and l[0] == "buf":
            if m != l:
                out.append(f"{where}: (token, len) differ: model {m[1:]}, Linux {l[1:]}")
        elif not (m[0] == l[0] == "empty"):
            out.append(f"{where}: model {m}, Linux {l}: an undocumented divergence")
    if div is not None and not seen_div:
        out.append(f"{name}: documented divergence (model refuses {div.model} where Linux still returns buffers; "
                   f"{div.section}) not seen: {steps}")
    return out


# ---------------------------------------------------------------- device side: a hostile driver

class Twin:
    """Two flat memories with the same ring: the model device serves one, vringh the other. Raw writes go to both."""

    def __init__(self, vp, indirect=True, event_idx=False, mem=MEM, buf=None):
        self.vp = vp
        self.size = mem
        if buf is not None:                         # one (huge, sparse) memory shared by both: pops write nothing
            self.mems = [buf, buf]
        else:
            self.mems = [bytearray(mem), bytearray(mem)]
        feats = vp.F_VERSION_1 | (vp.F_INDIRECT_DESC if indirect else 0) | (vp.F_EVENT_IDX if event_idx else 0)
        self.gm = vp.GuestMemory(buffer=self.mems[1])
        self.lin = vp.Device(self.gm, SIZE, feats, layout=LAYOUT)
        self.model = split.SplitDevice(FlatView(self.mems[0]), MLAYOUT, event_idx=event_idx, indirect=indirect,
                                       in_region=lambda a, n: 0 <= a and a + n <= mem)
        self.avail_idx = 0
        self.log: list[str] = []

    def raw(self, addr, data):
        for m in {id(x): x for x in self.mems}.values():
            m[addr:addr + len(data)] = data

    def desc(self, i, addr, length, flags=0, nxt=0, table=None):
        base = LAYOUT["desc"] if table is None else table
        self.raw(base + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))
        self.log.append(f"desc[{'ring' if table is None else hex(table)}][{i}] = ({addr:#x}, {length}, "
                        f"flags {flags}, next {nxt})")

    def publish(self, *heads, idx=None):
        for h in heads:
            self.raw(MLAYOUT.avail_ring_at(self.avail_idx % SIZE), struct.pack("<H", h))
            self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.raw(LAYOUT["avail"] + 2, struct.pack("<H", self.avail_idx if idx is None else idx))
        self.log.append(f"publish {heads} idx {self.avail_idx if idx is None else idx}")

    def pop(self):
        return device_outcome_model(self.model), device_outcome_linux(self.vp, self.lin)


@dataclass
class DevScenario:
    name: str
    build: Callable[[Twin], None]
    model: str | None                    # expected model clause (None: accepted)
    linux: Any                           # expected vringh errno (None: accepted)
    indirect: bool = True
    pops: int = 1                        # earlier pops must be accepted alike; the last is compared
    note: str = ""


def _loop_all(t):                        # 0 -> 1 -> ... -> 15 -> 0
    for i in range(SIZE):
        t.desc(i, DATA + 8 * i, 8, NEXT, (i + 1) % SIZE)
    t.publish(0)


def _chain_in_table(t, n, entries, loop_to=None):
    for j in range(n):
        last = j == n - 1
        nxt = (loop_to if loop_to is not None else 0) if last else j + 1
        t.desc(j, DATA + 8 * j, 8, NEXT if (not last or loop_to is not None) else 0, nxt, table=TABLE)
    t.desc(0, TABLE, 16 * entries, IND)
    t.publish(0)


def _longest_legal(t):
    for i in range(SIZE - 1):
        t.desc(i, DATA + 8 * i, 8, NEXT, i + 1)
    for j in range(SIZE):
        t.desc(j, DATA + 0x200 + 8 * j, 8, (NEXT if j < SIZE - 1 else 0) | (W if j >= 2 else 0), j + 1, table=TABLE)
    t.desc(SIZE - 1, TABLE, 16 * SIZE, IND)
    t.publish(0)


def _long_table_short_chain(t):
    links = [0, 16 * SIZE - 1, 5, 8 * SIZE]
    for k, j in enumerate(links):
        last = k == len(links) - 1
        t.desc(j, DATA + 8 * k, 8, (0 if last else NEXT) | (W if k >= 2 else 0), 0 if last else links[k + 1],
               table=TABLE)
    t.desc(0, TABLE, 16 * 16 * SIZE, IND)
    t.publish(0)


def _held_again(t):
    t.desc(0, DATA, 8, W)
    t.publish(0, 0)


def _avail_jump(t):
    for i in range(SIZE):
        t.desc(i, DATA + 8 * i, 8)
    t.publish(*range(SIZE), idx=SIZE + 1)


DEVICE_SCENARIOS = [
    DevScenario("honest_direct", lambda t: (t.desc(0, DATA, 8, NEXT, 1), t.desc(1, DATA + 8, 16, W), t.publish(0)),
                None, None),
    DevScenario("honest_indirect", lambda t: (t.desc(0, DATA, 8, NEXT, 1, table=TABLE),
                                              t.desc(1, DATA + 8, 16, W, 0, table=TABLE),
                                              t.desc(0, TABLE, 32, IND), t.publish(0)), None, None),
    # a head at or beyond the queue size (index SIZE holds a valid-looking descriptor in the gap)
    DevScenario("head_at_size", lambda t: (t.desc(SIZE, DATA, 8), t.publish(SIZE)), split.HEAD_RANGE, errno.EINVAL),
    DevScenario("head_0xffff", lambda t: t.publish(0xFFFF), split.HEAD_RANGE, errno.EINVAL),
    # next at or beyond the table size, pointing at a valid-looking descriptor
    DevScenario("next_at_size", lambda t: (t.desc(0, DATA, 8, NEXT, SIZE), t.desc(SIZE, DATA + 8, 8), t.publish(0)),
                chain.NEXT_RANGE, errno.EINVAL),
    DevScenario("next_0xffff", lambda t: (t.desc(0, DATA, 8, NEXT, 0xFFFF), t.publish(0)),
                chain.NEXT_RANGE, errno.EINVAL),
    DevScenario("next_beyond_indirect_table", lambda t: (t.desc(0, DATA, 8, NEXT, 1, table=TABLE),
                                                         t.desc(1, DATA + 8, 8, NEXT, 2, table=TABLE),
                                                         t.desc(2, DATA + 16, 8, 0, 0, table=TABLE),
                                                         t.desc(0, TABLE, 32, IND), t.publish(0)),
                chain.NEXT_RANGE, errno.EINVAL),
    # indirect tables
    DevScenario("nested_indirect", lambda t: (t.desc(0, DATA, 8, NEXT, 1, table=TABLE),
                                              t.desc(1, TABLE + 0x100, 16, IND, 0, table=TABLE),
                                              t.desc(0, DATA + 64, 8, table=TABLE + 0x100),
                                              t.desc(0, TABLE, 32, IND), t.publish(0)),
                chain.NESTED, errno.EINVAL),
    DevScenario("indirect_len_24", lambda t: (t.desc(0, DATA, 8, NEXT, 1, table=TABLE),
                                              t.desc(1, DATA + 8, 8, table=TABLE),
                                              t.desc(0, TABLE, 24, IND), t.publish(0)),
                chain.TABLE_LEN, errno.EINVAL),
    DevScenario("indirect_len_8", lambda t: (t.desc(0, DATA, 8, table=TABLE), t.desc(0, TABLE, 8, IND), t.publish(0)),
                chain.TABLE_LEN, errno.EINVAL),
    DevScenario("indirect_len_0", lambda t: (t.desc(0, DATA, 8, table=TABLE), t.desc(0, TABLE, 0, IND), t.publish(0)),
                chain.TABLE_LEN, errno.ELOOP),
    DevScenario("indirect_without_feature", lambda t: (t.desc(0, DATA, 8, table=TABLE), t.desc(0, TABLE, 16, IND),
                                                       t.publish(0)),
                chain.FEATURE, None, indirect=False),
    DevScenario("indirect_with_next_1", lambda t: (t.desc(0, DATA, 8, table=TABLE), t.desc(0, TABLE, 16, IND | NEXT, 1),
                                                   t.desc(1, DATA + 8, 8), t.publish(0)),
                chain.INDIRECT_NEXT, None),
    DevScenario("indirect_with_next_0", lambda t: (t.desc(0, DATA, 8, table=TABLE), t.desc(0, TABLE, 16, IND | NEXT, 0),
                                                   t.publish(0)),
                chain.INDIRECT_NEXT, None),
    # loops and over-long chains, in the direct table and inside indirect tables
    DevScenario("loop_direct_2", lambda t: (t.desc(0, DATA, 8, NEXT, 1), t.desc(1, DATA, 8, NEXT, 0), t.publish(0)),
                chain.LOOP, errno.ELOOP),
    DevScenario("loop_direct_self", lambda t: (t.desc(3, DATA, 8, NEXT, 3), t.publish(3)), chain.LOOP, errno.ELOOP),
    DevScenario("loop_direct_whole_table", _loop_all, chain.LOOP, errno.ELOOP),
    DevScenario("loop_in_indirect_table", lambda t: _chain_in_table(t, 2, SIZE, loop_to=0), chain.LOOP, errno.ELOOP),
    DevScenario("loop_in_long_indirect_table", lambda t: _chain_in_table(t, 2, 16 * SIZE, loop_to=0),
                chain.CHAIN_LEN, errno.ELOOP),
    DevScenario("chain_longer_than_queue_in_long_table", lambda t: _chain_in_table(t, SIZE + 1, 2 * SIZE),
                chain.CHAIN_LEN, None),
    DevScenario("chain_as_long_as_table_of_queue_size", lambda t: _chain_in_table(t, SIZE, SIZE), None, None),
    DevScenario("longest_legal_chain", _longest_legal, None, None),
    # 2.7.5.3.2#1: the device MUST ignore WRITE on the descriptor that refers to a table (both do)
    DevScenario("indirect_descriptor_with_write_flag", lambda t: (t.desc(0, DATA, 8, NEXT, 1, table=TABLE),
                                                                  t.desc(1, DATA + 8, 16, W, 0, table=TABLE),
                                                                  t.desc(0, TABLE, 32, IND | W), t.publish(0)),
                None, None),
    DevScenario("empty_buffer_inside_memory", lambda t: (t.desc(0, DATA, 0, NEXT, 1), t.desc(1, DATA, 0, W),
                                                         t.publish(0)), None, None),
    DevScenario("long_table_short_chain", _long_table_short_chain, None, None),
    DevScenario("readable_after_writable", lambda t: (t.desc(0, DATA, 8, W | NEXT, 1), t.desc(1, DATA + 8, 8),
                                                      t.publish(0)),
                chain.ORDER, errno.EINVAL),
    DevScenario("readable_after_writable_in_table", lambda t: (t.desc(0, DATA, 8, W | NEXT, 1, table=TABLE),
                                                               t.desc(1, DATA + 8, 8, table=TABLE),
                                                               t.desc(0, TABLE, 32, IND), t.publish(0)),
                chain.ORDER, errno.EINVAL),
    # buffers and tables past the end of memory (= the shared region, for both)
    DevScenario("buffer_crossing_end", lambda t: (t.desc(0, DATA, 8, NEXT, 1), t.desc(1, MEM - 4, 8, W), t.publish(0)),
                chain.IN_REGION, errno.EINVAL),
    DevScenario("buffer_past_end", lambda t: (t.desc(0, MEM + 0x1000, 8), t.publish(0)), chain.IN_REGION, errno.EINVAL),
    DevScenario("buffer_wrapping_u64", lambda t: (t.desc(0, (1 << 64) - 4, 8), t.publish(0)),
                chain.IN_REGION, errno.EINVAL),
    DevScenario("buffer_in_table_past_end", lambda t: (t.desc(0, MEM, 1, table=TABLE), t.desc(0, TABLE, 16, IND),
                                                       t.publish(0)),
                chain.IN_REGION, errno.EINVAL),
    DevScenario("table_crossing_end", lambda t: (t.desc(0, MEM - 16, 32, IND), t.publish(0)),
                chain.IN_REGION, errno.EINVAL),
    DevScenario("table_past_end", lambda t: (t.desc(0, MEM, 16, IND), t.publish(0)), chain.IN_REGION, errno.EINVAL),
    DevScenario("empty_buffer_at_end_of_memory", lambda t: (t.desc(0, MEM, 0), t.publish(0)), None, errno.EINVAL),
    DevScenario("empty_buffer_past_end_of_memory", lambda t: (t.desc(0, MEM + 16, 0), t.publish(0)),
                chain.IN_REGION, errno.EINVAL),
    # the available ring
    DevScenario("avail_idx_jump", _avail_jump, split.AVAIL_IDX, None),
    DevScenario("held_head_offered_again", _held_again, split.INUSE, None, pops=2),
]


def run_device_scenario(vp, sc: DevScenario, twin: Twin | None = None) -> list[str]:
    """Build ``sc`` in both memories, pop on both sides ``sc.pops`` times; return the comparison's findings."""
    t = twin or Twin(vp, indirect=sc.indirect)
    sc.build(t)
    problems = []
    for k in range(sc.pops):
        m, l = t.pop()
        if k < sc.pops - 1:
            if m[0] != "chain" or m != l:
                problems.append(f"{sc.name}: pop #{k} (before the hostile one): model {m}, vringh {l}")
            continue
        problems += compare_device(sc.name, m, l, sc.model, sc.linux)
        if m[0] == "refused" and t.model.broken != m[1]:
            problems.append(f"{sc.name}: the model refused {m[1]} but marked its ring broken with {t.model.broken}")
    if problems:
        problems.append(f"  writes: {t.log}; vringh state {t.lin.state()}, log {t.lin.log()}")
    t.lin.close()
    return problems


def test_every_scenario_pair_is_in_the_table_or_a_documented_divergence():
    """The expectations themselves: both refusing maps through CLAUSE_ERRNO; one accepting is a listed divergence."""
    for sc in DEVICE_SCENARIOS:
        if sc.model is not None and sc.linux is not None:
            assert sc.linux in CLAUSE_ERRNO[sc.model], sc.name
        elif (sc.model is None) != (sc.linux is None):
            d = DEVICE_DIVERGENCES[sc.name]
            assert (d.model, d.linux) == (sc.model, sc.linux), sc.name
        else:
            assert sc.name not in DEVICE_DIVERGENCES, sc.name
    names = {sc.name for sc in DEVICE_SCENARIOS} | {"total_len_over_2_32"}
    assert set(DEVICE_DIVERGENCES) <= names


@pytest.mark.parametrize("sc", DEVICE_SCENARIOS, ids=[sc.name for sc in DEVICE_SCENARIOS])
def test_hostile_driver_model_device_vs_vringh(sc):
    """One hostile ring, raw bytes in both memories: the model device's clause against vringh's errno."""
    vp = vring_peer()
    problems = run_device_scenario(vp, sc)
    assert not problems, "\n".join(problems)


def test_model_own_hostile_driver_scenarios_are_all_replayed():
    """Every clause a hostile-driver scenario of tests/test_virtio_split.py expects (``_pop_refused(r, <clause>)``) is
    replayed here against vringh (TOTAL_LEN in the 4 GiB test, QUEUE_POW2 in the queue-size test)."""
    import inspect
    import re
    import test_virtio_split as own
    mine = {sc.model for sc in DEVICE_SCENARIOS} | {chain.TOTAL_LEN, split.QUEUE_POW2}
    theirs = set()
    for s in own.SCENARIOS:
        for mod, const in re.findall(r"_pop_refused\(r, (chain|split)\.(\w+)\)", inspect.getsource(s)):
            theirs.add(getattr(chain if mod == "chain" else split, const))
    assert len(theirs) >= 10 and theirs <= mine, sorted(theirs - mine)


def _huge_memory(n):
    try:
        return mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0))
    except (OSError, ValueError) as e:
        pytest.skip(f"cannot map a sparse {n >> 30} GiB memory here: {e}")


def test_chain_byte_limit_against_vringh():
    """2.7.5.2#1 at the 2^32 boundary, on one sparse memory of 4 GiB + 64 KiB both sides see: a chain of exactly 2^32
    bytes is accepted by both (same segments); 2^32 + 1 bytes is refused by the model (total-len) and accepted by
    vringh (documented divergence). Nothing reads or writes the data, so the pages stay unmapped."""
    vp = vring_peer()
    size = (1 << 32) + MEM
    big = _huge_memory(size)
    try:
        for name, last, model, linux in (("chain_of_exactly_2_32_bytes", 1, None, None),
                                         ("total_len_over_2_32", 2, chain.TOTAL_LEN, None)):
            t = Twin(vp, mem=size, buf=big)
            t.desc(0, DATA, 0xFFFFFFFF, NEXT, 1)
            t.desc(1, DATA, last, W)
            t.publish(0)
            m, l = t.pop()
            problems = compare_device(name, m, l, model, linux)
            assert not problems, "\n".join(problems)
            t.lin.close()
            del t
    finally:
        try:
            big.close()
        except BufferError:          # a ctypes export still alive: the mapping goes with the process
            pass


@pytest.mark.parametrize("n", [0, 3, 12])
def test_queue_size_not_a_power_of_two_refused_by_both(n):
    """Making the queue ready with a size that is not a power of two (or 0): the model's queue#size-pow2 against
    vringh_init_user's 'Bad ring size' -EINVAL."""
    vp = vring_peer()
    lay = split.SplitLayout(n, 0x0, 0x200, 0x400)
    try:
        split.SplitDevice(FlatView(MEM), lay, in_region=lambda a, k: 0 <= a and a + k <= MEM)
        m = ("chain",)
    except errors.PeerViolation as e:
        m = ("refused", e.clause)
    try:
        vp.Device(vp.GuestMemory(buffer=bytearray(MEM)), n, vp.F_VERSION_1, layout=LAYOUT).close()
        l = ("chain",)
    except OSError as e:
        l = ("errno", e.errno)
    assert not compare_device(f"queue_size_{n}", m, l, split.QUEUE_POW2, errno.EINVAL)


@pytest.mark.parametrize("indirect", [False, True])
def test_push_longer_than_the_writable_space(indirect):
    """A device pushes more bytes than the chain's writable part (two segments, 16 + 8 bytes, with sentinels before,
    between and after them and a readable segment beside): vringh_iov_push_user and the model's write both copy
    exactly 24 bytes, every sentinel and the readable bytes stay intact, both memories equal. Then the used entry:
    with len = 24 both write the same used ring bytes; with len = 40 (longer than the writable space) vringh
    publishes it and the model's device refuses it as its caller's error (device#used-len, 2.7.8.2#2: the
    device MUST NOT report more than it could write) and writes nothing."""
    vp = vring_peer()
    for over in (False, True):
        t = Twin(vp, indirect=indirect)
        sent = b"\xa5" * 8
        for a in (DATA - 8, DATA + 0x100 - 8, DATA + 0x100 + 16, DATA + 0x200 + 8):
            t.raw(a, sent)
        t.raw(DATA, b"readable")
        segs = [(DATA, 8, NEXT), (DATA + 0x100, 16, W | NEXT), (DATA + 0x200, 8, W)]
        if indirect:
            for j, (a, n, f) in enumerate(segs):
                t.desc(j, a, n, f, j + 1, table=TABLE)
            t.desc(0, TABLE, 48, IND)
        else:
            for j, (a, n, f) in enumerate(segs):
                t.desc(j, a, n, f, j + 1)
        t.publish(0)
        m, l = t.pop()
        assert not compare_device("honest_for_push", m, l, None, None)
        mc = t.model.chains[0]
        data = bytes(range(1, 41))
        assert t.model.write(mc, data) == 24
        assert t.lin.push(data) == 24
        assert t.mems[0] == t.mems[1], "bytes after the push"
        for a in (DATA - 8, DATA + 0x100 - 8, DATA + 0x100 + 16, DATA + 0x200 + 8):
            assert bytes(t.mems[0][a:a + 8]) == sent, f"sentinel at {a:#x} overwritten"
        assert bytes(t.mems[0][DATA:DATA + 8]) == b"readable"
        assert bytes(t.mems[0][DATA + 0x100:DATA + 0x110]) + bytes(t.mems[0][DATA + 0x200:DATA + 0x208]) == data[:24]
        used = slice(LAYOUT["used"], LAYOUT["used"] + 6 + 8 * SIZE)
        if not over:
            assert t.lin.complete(0, 24) == 0
            t.model.add_used(0, 24)
            assert t.mems[0][used] == t.mems[1][used], "used ring after a complete of 24"
        else:
            before = bytes(t.mems[0][used])
            assert t.lin.complete(0, 40) == 0                           # vringh publishes any len
            assert struct.unpack_from("<HHII", t.mems[1], LAYOUT["used"]) == (0, 1, 0, 40)
            with pytest.raises(errors.CallerError) as e:
                t.model.add_used(0, 40)
            assert e.value.clause == split.DEV_LEN
            assert bytes(t.mems[0][used]) == before, "the refused add_used wrote the used ring"
        t.lin.close()


# ---------------------------------------------------------------- driver side: a hostile device

class DriverTwin:
    """virtio_ring.c and the model driver, each on its own memory, the same buffers added; raw used writes to both."""

    def __init__(self, vp, event_idx=False, indirect=False):
        self.vp = vp
        self.mems = [bytearray(MEM), bytearray(MEM)]
        feats = vp.F_VERSION_1 | (vp.F_INDIRECT_DESC if indirect else 0) | (vp.F_EVENT_IDX if event_idx else 0)
        self.gm = vp.GuestMemory(buffer=self.mems[1])
        self.lin = vp.Driver(self.gm, SIZE, feats, layout=LAYOUT, indirect_gpa=ARENA, indirect_max=ARENA_MAX)
        self.model = split.SplitDriver(FlatView(self.mems[0]), MLAYOUT, event_idx=event_idx, indirect=indirect,
                                       indirect_arena=(ARENA, ARENA_MAX))
        self.ops: list[str] = []

    def add(self, out, inn, token):
        rc = self.lin.add(out, inn, token)
        try:
            head = self.model.add_buf(out, inn, token)
        except errors.Exhausted:
            head = None
        self.ops.append(f"add({out}, {inn}, {token}) -> Linux {rc}, model head {head}")
        assert (rc == 0) == (head is not None), self.ops
        assert self.mems[0] == self.mems[1], f"bytes after {self.ops[-1]}"
        return head

    def used(self, slot, id_, length, idx):
        for m in self.mems:
            struct.pack_into("<II", m, MLAYOUT.used_elem_at(slot), id_, length)
            struct.pack_into("<H", m, LAYOUT["used"] + 2, idx)
        self.ops.append(f"used[{slot}] = ({id_}, {length}), used idx {idx}")

    def get(self):
        m, l = driver_outcome_model(self.model), driver_outcome_linux(self.lin)
        self.ops.append(f"get_buf -> model {m}, Linux {l}")
        return m, l


@dataclass
class DrvScenario:
    name: str
    write: Callable[[DriverTwin, list[int]], None]    # the hostile device's used-ring writes, given the heads
    expect: list                                      # model outcome per get_buf: "buf", "empty" or a clause
    steps: int = 2
    note: str = ""


def _heads_two_buffers(t: DriverTwin):
    """Two buffers: A (8 readable + 16 writable bytes), B (4 readable + 8 + 8 writable); returns their heads."""
    a = t.add([(DATA, 8)], [(DATA + 0x40, 16)], 1)
    b = t.add([(DATA + 0x100, 4)], [(DATA + 0x140, 8), (DATA + 0x180, 8)], 2)
    return [a, b]


def _non_head(t: DriverTwin, heads):
    """A descriptor index that is not a head in flight (the second descriptor of A if direct, else a free one)."""
    for i in range(SIZE):
        if i not in heads:
            return i
    raise AssertionError("no non-head")


DRIVER_SCENARIOS = [
    DrvScenario("honest", lambda t, h: t.used(0, h[0], 16, 1), ["buf", "empty"]),
    DrvScenario("honest_len_0_then_b_full", lambda t, h: (t.used(0, h[1], 16, 1), t.used(1, h[0], 0, 2)),
                ["buf", "buf", "empty"], steps=3),
    DrvScenario("used_id_not_a_head", lambda t, h: t.used(0, _non_head(t, h), 0, 1), [split.USED_ID, split.USED_ID]),
    DrvScenario("used_id_free_descriptor", lambda t, h: t.used(0, SIZE - 1, 0, 1), [split.USED_ID, split.USED_ID]),
    DrvScenario("used_id_at_size", lambda t, h: t.used(0, SIZE, 0, 1), [split.USED_ID, split.USED_ID]),
    DrvScenario("used_id_0xffffffff", lambda t, h: t.used(0, 0xFFFFFFFF, 0, 1), [split.USED_ID, split.USED_ID]),
    DrvScenario("used_id_twice", lambda t, h: (t.used(0, h[0], 0, 2), t.used(1, h[0], 0, 2)),
                ["buf", split.USED_ID, split.USED_ID], steps=3),
    DrvScenario("used_len_above_writable", lambda t, h: t.used(0, h[0], 17, 1), [split.USED_LEN, split.USED_LEN]),
    DrvScenario("used_len_0xffffffff", lambda t, h: t.used(0, h[1], 0xFFFFFFFF, 1), [split.USED_LEN],
                steps=1),
    DrvScenario("used_idx_past_the_buffers_in_flight", lambda t, h: t.used(0, h[0], 0, 3),
                [split.USED_IDX, split.USED_IDX]),
    DrvScenario("used_idx_ahead_by_more_than_size", lambda t, h: t.used(0, h[0], 0, SIZE + 3),
                [split.USED_IDX, split.USED_IDX]),
]
DRIVER_DIVERGENCES["used_len_0xffffffff"] = DRIVER_DIVERGENCES["used_len_above_writable"]


def run_driver_scenario(vp, sc: DrvScenario, event_idx=False, indirect=False) -> list[str]:
    """Two buffers in flight on both drivers, the hostile used writes, ``sc.steps`` get_bufs compared, then (if the
    model broke its ring) add on both: the model raises the same clause, virtio_ring.c -EIO."""
    t = DriverTwin(vp, event_idx, indirect)
    heads = _heads_two_buffers(t)
    sc.write(t, heads)
    steps = [t.get() for _ in range(sc.steps)]
    problems = compare_driver(sc.name, steps, sc.expect)
    if t.model.broken:
        try:
            t.model.add_buf([(DATA, 1)], [], 99)
            got = "accepted"
        except errors.PeerViolation as e:
            got = e.clause
        rc = t.lin.add([(DATA, 1)], [], 99)
        if got != t.model.broken:
            problems.append(f"{sc.name}: the broken model accepted an add ({got})")
        if rc != -errno.EIO and sc.name not in DRIVER_DIVERGENCES:
            problems.append(f"{sc.name}: model broken ({t.model.broken}), Linux add gives {rc}, not -EIO")
    if problems:
        problems.append(f"  ops: {t.ops}; Linux state {t.lin.state()}, log {t.lin.log()}; model broken "
                        f"{t.model.broken}, last used {t.model.state.last_used}")
    t.lin.close()
    return problems


@pytest.mark.parametrize("event_idx,indirect", [(False, False), (True, True)])
@pytest.mark.parametrize("sc", DRIVER_SCENARIOS, ids=[sc.name for sc in DRIVER_SCENARIOS])
def test_hostile_device_model_driver_vs_virtio_ring(sc, event_idx, indirect):
    """A device writing the used ring raw in front of both drivers: the model's clause against BAD_RING / buffers."""
    vp = vring_peer()
    problems = run_driver_scenario(vp, sc, event_idx, indirect)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- honest traffic: bounded loops, stall reports

class Stall(AssertionError):
    pass


def _stack_state(lin, lind, drv, dev) -> str:
    st, ds = lin.state(), lind.state() if lind is not None else {}
    keys = ("free_head", "num_free", "avail_idx_shadow", "last_used_idx", "avail_flags_shadow", "num_added")
    return (f"Linux driver {{{', '.join(f'{k}: {st[k]}' for k in keys)}}}, vringh {ds}; model driver avail "
            f"{drv.state.avail_idx} last_used {drv.state.last_used} free {drv.state.num_free} head {drv.free_head}"
            + (f", model device last_avail {dev.state.last_avail} used {dev.state.used_idx}" if dev else ""))


def _warm_up(vp, gm, feats, n):
    """virtio_ring.c + vringh through ``n`` real round trips (a 2-segment buffer each), then a kick_prepare: both at
    index ``n``, every buffer back, the free list as new. Bounded (n iterations), each checked for progress."""
    lin = vp.Driver(gm, SIZE, feats, layout=LAYOUT, indirect_gpa=ARENA, indirect_max=ARENA_MAX)
    lind = vp.Device(gm, SIZE, feats, layout=LAYOUT)
    out, inn = [(DATA, 8)], [(DATA + 64, 8)]
    for t in range(1, n + 1):
        rc = lin.add(out, inn, t)
        c = lind.getdesc()
        if rc or c is None or lind.complete(c.head, 0) or lin.get_buf() != (t, 0):
            raise Stall(f"warm-up round trip {t}: add {rc}, chain {c}; {lin.state()}, {lind.state()}")
    lin.kick_prepare()
    return lin, lind


@pytest.mark.parametrize("event_idx,indirect", [(False, False), (True, False), (False, True), (True, True)])
def test_across_the_u16_wrap_with_notifications(event_idx, indirect):
    """Queue size 16 from index 65536 - 24: Linux (virtio_ring.c + vringh) gets there by real round trips, the model
    (driver + device) starts there on a copy of Linux's memory. 300 random honest operations cross the wrap: add,
    kick_prepare, serve/complete, need_notify, get_buf, disable_cb, enable_cb, enable_cb_prepare + poll (the model's
    enable_cb), notify enable/disable; results, notification decisions, free-list state and every byte compared
    after each one. Then both stacks drain in at most 2 * size + 2 rounds or the test fails with both states."""
    vp = vring_peer()
    start = WRAP - 24
    rnd = random.Random(SEED + (event_idx << 1) + indirect)
    mem_l, mem_m = bytearray(MEM), bytearray(MEM)
    feats = vp.F_VERSION_1 | (vp.F_EVENT_IDX if event_idx else 0) | (vp.F_INDIRECT_DESC if indirect else 0)
    lin, lind = _warm_up(vp, vp.GuestMemory(buffer=mem_l), feats, start)
    drv = split.SplitDriver(FlatView(mem_m), MLAYOUT, event_idx=event_idx, indirect=indirect,
                            indirect_arena=(ARENA, ARENA_MAX), start=start)
    dev = split.SplitDevice(FlatView(mem_m), MLAYOUT, event_idx=event_idx, indirect=indirect, start=start,
                            in_region=lambda a, n: 0 <= a and a + n <= MEM)
    mem_m[:] = mem_l              # the model's memory as Linux left it (old chains, the event indices)
    ops: list[str] = []
    held: list = []

    def check(k, what, a, b):
        if a != b:
            raise AssertionError(f"op {k} ({what}): Linux {a!r}, model {b!r}; {_stack_state(lin, lind, drv, dev)}; "
                                 f"last ops {ops[-8:]}")

    def serve(k, n_pop, n_done):
        for _ in range(n_pop):
            c, m = lind.getdesc(), dev.next_chain()
            check(k, "pop", None if c is None else (c.head, c.readable, c.writable),
                  None if m is None else (m.head, list(m.readable), list(m.writable)))
            if c is None:
                break
            held.append(m)
        rnd.shuffle(held)
        for _ in range(min(n_done, len(held))):
            c = held.pop()
            data = bytes(range(rnd.randint(0, c.wlen)))
            done = 0
            for a, n in c.writable:
                part = data[done:done + n]
                mem_l[a:a + len(part)] = part
                done += len(part)
            dev.write(c, data)
            check(k, "complete", lind.complete(c.head, len(data)), 0)
            dev.add_used(c.head, len(data))

    for k in range(300):
        op = rnd.choice(["add", "add", "add", "kick", "serve", "get", "get", "disable", "enable", "prepare",
                         "notify"])
        ops.append(op)
        if op == "add":
            n_out, n_in = rnd.randint(0, 2), rnd.randint(0, 2)
            n_out += n_out + n_in == 0
            base = DATA + (k % 32) * 256
            segs = [(base + 32 * j, rnd.randint(1, 24)) for j in range(n_out + n_in)]
            rc = lin.add(segs[:n_out], segs[n_out:], k + 1)
            try:
                drv.add_buf(segs[:n_out], segs[n_out:], k + 1)
                mrc = 0
            except errors.Exhausted:
                mrc = -errno.ENOSPC
            check(k, "add", rc, mrc)
        elif op == "kick":
            check(k, "kick_prepare", lin.kick_prepare(), drv.kick_prepare())
        elif op == "serve":
            serve(k, rnd.randint(0, 3), rnd.randint(0, 3))
            check(k, "need_notify", lind.need_notify(), dev.need_notify())
        elif op == "get":
            check(k, "get_buf", lin.get_buf(), drv.get_buf())
        elif op == "disable":
            lin.disable_cb()
            drv.disable_cb()
        elif op == "enable":
            check(k, "enable_cb", lin.enable_cb(), drv.enable_cb())
        elif op == "prepare":
            v = lin.enable_cb_prepare()
            r = drv.enable_cb()
            check(k, "enable_cb_prepare", v, drv.state.last_used)
            check(k, "poll", lin.poll(v), not r)
        else:
            if rnd.random() < 0.5:
                check(k, "notify_enable", lind.notify_enable(), dev.enable_notify())
            else:
                lind.notify_disable()
                dev.disable_notify()
        st = lin.state()
        check(k, "driver state", (st["free_head"], st["num_free"], st["avail_idx_shadow"], st["last_used_idx"]),
              (drv.free_head, drv.state.num_free, drv.state.avail_idx, drv.state.last_used))
        if mem_l != mem_m:
            diff = next(i for i in range(MEM) if mem_l[i] != mem_m[i])
            part = ("descriptor table" if diff < LAYOUT["avail"] else "available ring" if diff < LAYOUT["used"]
                    else "used ring" if diff < ARENA else "indirect arena" if diff < DATA else "data")
            raise AssertionError(f"op {k} ({op}): first differing byte {diff:#x} ({part}): Linux {mem_l[diff]}, model "
                                 f"{mem_m[diff]}; {_stack_state(lin, lind, drv, dev)}; last ops {ops[-8:]}")
    # drain: bounded; a round that changes nothing on either side is a stall
    for rnd_no in range(2 * SIZE + 2):
        before = (drv.state.num_free, lin.state()["num_free"])
        serve("drain", SIZE, SIZE)
        for _ in range(SIZE + 1):                     # at most SIZE buffers are in flight
            a, b = lin.get_buf(), drv.get_buf()
            check("drain", "get_buf", a, b)
            if a is None:
                break
        if drv.state.num_free == SIZE and lin.state()["num_free"] == SIZE:
            break
        if (drv.state.num_free, lin.state()["num_free"]) == before:
            raise Stall(f"drain round {rnd_no} made no progress: {_stack_state(lin, lind, drv, dev)}; ops {ops[-8:]}")
    else:
        raise Stall(f"drain did not finish in {2 * SIZE + 2} rounds: {_stack_state(lin, lind, drv, dev)}")
    assert drv.state.avail_idx < start and dev.state.used_idx < start, "the run did not cross the wrap"
    assert mem_l == mem_m
    lin.close()
    lind.close()


# ---------------------------------------------------------------- notification calls while buffers are pending

NOTIFY_FIELDS = {"avail flags": (LAYOUT["avail"], 2), "avail idx": (LAYOUT["avail"] + 2, 2),
                 "used_event": (MLAYOUT.used_event(), 2)}


@pytest.mark.parametrize("event_idx", [False, True])
def test_notification_calls_while_buffers_are_pending(event_idx):
    """Buffers in flight and used-but-not-taken in every combination: disable_cb, enable_cb, enable_cb_prepare (+ poll)
    and kick_prepare on virtio_ring.c and on the model driver (each on its own memory, the same model device serving
    both), comparing return values, the driver-written fields (avail flags and idx, used_event) and every byte.
    Scripted prefix (the cases named in issue 10), then 400 random operations biased to keep buffers pending."""
    vp = vring_peer()
    t = DriverTwin(vp, event_idx=event_idx)
    devs = [split.SplitDevice(FlatView(m), MLAYOUT, event_idx=event_idx, in_region=lambda a, n: 0 <= a and a + n <= MEM)
            for m in t.mems]
    lin, drv = t.lin, t.model
    rnd = random.Random(SEED + 7 + event_idx)
    ops: list[str] = []
    held: list = []

    def cmp(what, a, b):
        ops.append(f"{what}: Linux {a!r}, model {b!r}")
        if a != b:
            raise AssertionError(f"{what}: Linux {a!r}, model {b!r}; pending {len(held)} held, Linux "
                                 f"{lin.state()}; ops {ops[-10:]}")
        for f, (addr, n) in NOTIFY_FIELDS.items():
            la, ma = t.mems[1][addr:addr + n], t.mems[0][addr:addr + n]
            if la != ma:
                raise AssertionError(f"after {what}: {f} Linux {bytes(la).hex()}, model {bytes(ma).hex()}; "
                                     f"ops {ops[-10:]}")
        if t.mems[0] != t.mems[1]:
            raise AssertionError(f"after {what}: bytes differ; ops {ops[-10:]}")

    def add(k):
        rc = lin.add([(DATA + 32 * (k % 64), 8)], [(DATA + 32 * (k % 64) + 8, 8)], k + 1)
        try:
            drv.add_buf([(DATA + 32 * (k % 64), 8)], [(DATA + 32 * (k % 64) + 8, 8)], k + 1)
            mrc = 0
        except errors.Exhausted:
            mrc = -errno.ENOSPC
        cmp(f"add {k}", rc, mrc)

    def use(n):
        for _ in range(n):
            cs = [d.next_chain() for d in devs]
            if cs[0] is None:
                break
            held.append(cs)
        for _ in range(min(n, len(held))):
            cs = held.pop(0)
            for d, c in zip(devs, cs):
                d.add_used(c.head, 8)
        cmp("device need_notify", devs[1].need_notify(), devs[0].need_notify())

    def prepare(what):
        v = lin.enable_cb_prepare()
        r = drv.enable_cb()
        cmp(f"{what} enable_cb_prepare", v, drv.state.last_used)
        cmp(f"{what} poll", lin.poll(v), not r)

    # scripted: 3 added, kick; 1 used not taken back, 2 in flight
    for k in range(3):
        add(k)
    cmp("kick_prepare (3 added)", lin.kick_prepare(), drv.kick_prepare())
    use(1)
    lin.disable_cb(), drv.disable_cb()
    cmp("disable_cb (1 used pending)", None, None)
    lin.disable_cb(), drv.disable_cb()
    cmp("disable_cb again", None, None)
    prepare("1 used pending")
    cmp("enable_cb (1 used pending)", lin.enable_cb(), drv.enable_cb())
    cmp("kick_prepare (nothing added)", lin.kick_prepare(), drv.kick_prepare())
    add(3)
    cmp("kick_prepare (1 added, pending)", lin.kick_prepare(), drv.kick_prepare())
    cmp("get_buf", lin.get_buf(), drv.get_buf())
    prepare("none used, 3 in flight")
    lin.disable_cb(), drv.disable_cb()
    use(2)
    cmp("enable_cb (2 used while disabled)", lin.enable_cb(), drv.enable_cb())
    for k in range(4, 404):
        op = rnd.choice(["add", "add", "kick", "use", "get", "disable", "enable", "prepare", "dev"])
        if op == "add":
            add(k)
        elif op == "kick":
            cmp(f"kick_prepare {k}", lin.kick_prepare(), drv.kick_prepare())
        elif op == "use":
            use(rnd.randint(1, 2))
        elif op == "get":
            cmp(f"get_buf {k}", lin.get_buf(), drv.get_buf())
        elif op == "disable":
            lin.disable_cb(), drv.disable_cb()
            cmp(f"disable_cb {k}", None, None)
        elif op == "enable":
            cmp(f"enable_cb {k}", lin.enable_cb(), drv.enable_cb())
        elif op == "dev":                  # the device asks for kicks or not: varies what kick_prepare reads
            if rnd.random() < 0.6:
                cmp(f"device enable_notify {k}", devs[1].enable_notify(), devs[0].enable_notify())
            else:
                devs[1].disable_notify(), devs[0].disable_notify()
                cmp(f"device disable_notify {k}", None, None)
        else:
            prepare(f"{k}")
    pend = sum(1 for o in ops if "poll: Linux True" in o)
    kicks = {o.endswith("model True") for o in ops if o.startswith("kick_prepare")}
    assert pend > 5, f"too few calls with used buffers pending ({pend})"
    assert kicks == {True, False}, f"kick_prepare never varied: {kicks}"
    lin.close()


# ---------------------------------------------------------------- mutants: the comparison must see them

def test_mutant_head_beyond_size_accepted_is_reported(monkeypatch):
    """A model whose pop_avail accepts a head >= size (it range-checks head mod size): with a valid-looking
    descriptor at index SIZE, the model returns a chain where vringh says -EINVAL; compare_device reports it."""
    vp = vring_peer()
    sc = next(s for s in DEVICE_SCENARIOS if s.name == "head_at_size")
    orig = split.pop_avail
    monkeypatch.setattr(split, "pop_avail",
                        lambda L, v, avail_idx, head, wlen: orig(L, v, avail_idx, head % v.size, wlen))
    problems = run_device_scenario(vp, sc)
    assert any("head_at_size: model accepts, vringh -EINVAL" in p for p in problems), problems
    assert any("scenario expects it to refuse " + split.HEAD_RANGE in p for p in problems), problems


def test_mutant_used_len_unchecked_is_reported(monkeypatch):
    """A model driver without the used-len check: it returns (token, 17) like virtio_ring.c does, so the documented
    divergence (model refuses used len > writable) is not seen; compare_driver reports it."""
    vp = vring_peer()
    sc = next(s for s in DRIVER_SCENARIOS if s.name == "used_len_above_writable")
    orig = split.get_used
    monkeypatch.setattr(split, "get_used", lambda L, d, used_idx, id, length: orig(L, d, used_idx, id, 0))
    problems = run_driver_scenario(vp, sc)
    assert any("documented divergence" in p and split.USED_LEN in p for p in problems), problems
    assert any("get_buf #0: the model gives buf, the scenario expects " + split.USED_LEN in p for p in problems)


def test_mutant_loop_named_with_another_clause_is_reported(monkeypatch):
    """A model that names a descriptor loop with the ordering clause: vringh's -ELOOP does not map to it."""
    vp = vring_peer()
    monkeypatch.setattr(chain, "LOOP", chain.ORDER)
    sc = next(s for s in DEVICE_SCENARIOS if s.name == "loop_direct_2")
    problems = run_device_scenario(vp, sc)
    assert any(f"model refuses {chain.ORDER}, vringh -ELOOP" in p for p in problems), problems


def test_mutant_used_id_not_checked_is_reported(monkeypatch):
    """A model driver that takes any id below the size as a head: it crashes or answers where virtio_ring.c breaks
    its queue (BAD_RING); compare_driver reports it and the model never hangs."""
    vp = vring_peer()
    orig = split.is_head_in_flight
    monkeypatch.setattr(split, "is_head_in_flight", lambda L, d, h: L.And(L.ULE(0, h), L.ULT(h, d.size)))
    sc = next(s for s in DRIVER_SCENARIOS if s.name == "used_id_not_a_head")
    problems = run_driver_scenario(vp, sc)
    assert any("used_id_not_a_head, get_buf #0: crash" in p or "get_buf #0: the model gives buf" in p
               for p in problems), problems
    assert orig is not split.is_head_in_flight
