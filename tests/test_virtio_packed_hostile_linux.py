"""A hostile device in front of both packed drivers: Linux 6.1.y's virtio_ring.c and the model's.

The device writes used descriptors raw (id, len, flags with the AVAIL/USED bits and the wrap
counter) at the driver's ``last_used`` slot, the same bytes in both drivers' memories (each driver
has its own memory; ``DriverPair`` from test_virtio_packed_linux.py). Each case's reaction on both
sides is compared with ``REACTIONS``, the table below:

- Linux: ``virtqueue_get_buf_ctx_packed`` returns a buffer, returns NULL with the descriptor left
  alone ("none": ``is_used_desc_packed`` is false, the queue stays usable), or runs ``BAD_RING``
  (dev_err + ``vq->broken = true``: get_buf NULL, every later add -EIO). The peer exposes the
  result, ``state()["broken"]`` and ``log()`` (BAD_RING's message).
- Model: ``PackedDriver.get_used`` returns a buffer, None (``NO_USED``), or raises ``PeerViolation``
  naming its clause with the driver state unchanged; the same descriptor is refused again on the
  next call and an honest rewrite is then accepted (the model does not break the queue:
  docs/virtio-packed.md, "Policies and divergences").

Where Linux and the spec disagree, the row says which one the model follows and cites the section
(virtio 1.3). ``compare_reaction`` returns the mismatches (empty: the row holds); the mutant tests
at the end check that it reports a model that accepts what it must refuse.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import pytest

from test_virtio_packed_linux import IND_MAX, DriverPair
from t1virtio import errors
from t1virtio.hyp.memview import write_le
from t1virtio.virtio import packed as pk

AV, US, WR = pk.VIRTQ_DESC_F_AVAIL, pk.VIRTQ_DESC_F_USED, pk.VIRTQ_DESC_F_WRITE
NUM = 8
WLEN = 40                      # writable bytes of each buffer the hostile cases use
EIO, ENOSPC = -5, -28
COUNTS = {"cases": 0, "linux calls": 0, "model calls": 0}


def used_bits(wrap: bool) -> int:
    """AVAIL = USED = the wrap counter (§2.8.1: what an honest device writes)."""
    return (AV | US) if wrap else 0


class Setup(NamedTuple):
    pair: DriverPair
    ids: list            # outstanding buffer ids, in ring order (the device popped them)


def setup(tags="", bufs=3, lap=0) -> Setup:
    """A pair of size NUM with ``bufs`` buffers (one readable 8-byte + one writable WLEN-byte element)
    added and popped by the (honest) model devices; ``lap=1``: after one full lap of round trips,
    so the driver's used wrap counter is 0."""
    p = DriverPair(NUM, tags)
    base = p.m.data
    for _ in range(lap * NUM):               # bounded: one single-descriptor round trip each
        p.add([(base, 8)], [])
        ch = p.pop_all()[0]
        p.held.clear()
        p.complete(ch, 0)
        p.get_all()
    for j in range(bufs):
        p.add([(base + 0x100 * j, 8)], [(base + 0x100 * j + 0x80, WLEN)])
    chains = p.pop_all()
    assert p.model.state.used_wrap == (lap == 0)
    return Setup(p, [c.id for c in chains])


def write_used(p: DriverPair, id: int, length: int, flags: int, slot=None) -> None:
    """The hostile device: one raw used descriptor (len, id, then flags) at ``slot`` (default: the
    drivers' last_used, which the comparison keeps equal) in both memories."""
    slot = p.model.state.last_used if slot is None else slot
    for view in (p.lview, p.mview):
        a = p.play.desc + 16 * slot
        write_le(view, a + 8, 4, length)
        write_le(view, a + 12, 2, id)
        write_le(view, a + 14, 2, flags)
    p.ops(f"HOSTILE used descriptor at slot {slot}: id={id} len={length} flags={flags:#06x}")


def linux_reaction(p: DriverPair) -> str:
    """'buf len=N' / 'none' / 'BAD_RING <what>' from one virtqueue_get_buf()."""
    n0 = p.linux.log()[0]
    r = p.linux.get_buf()
    COUNTS["linux calls"] += 1
    n1, msg = p.linux.log()
    if r is not None:
        return f"buf len={r[1]}"
    if p.linux.broken:
        what = "out of range" if "out of range" in msg else "not a head" if "not a head" in msg else msg
        return f"BAD_RING {what}" + ("" if n1 > n0 else " (no new message)")
    return "none"


def model_reaction(p: DriverPair) -> str:
    """'buf len=N' / 'none' / the PeerViolation clause from one get_used(); a refusal must leave the
    driver state unchanged."""
    before = p.model.state
    COUNTS["model calls"] += 1
    try:
        r = p.model.get_used()
    except errors.PeerViolation as e:
        if p.model.state != before:
            return f"{e.clause} (STATE CHANGED)"
        return e.clause
    return "none" if r is None else f"buf len={r[1]}"


class Case(NamedTuple):
    """One hostile used descriptor. ``write(s)`` writes it; ``linux``/``model``: the expected reactions;
    ``follows``: which side the model follows where they differ, with the spec section."""

    name: str
    write: Callable[[Setup], None]
    linux: str
    model: str
    follows: str
    tags: str = ""
    bufs: int = 3
    lap: int = 0


def _free_id(s: Setup) -> int:
    return next(i for i in range(NUM) if i not in s.ids)


def _complete_then_repeat(s: Setup) -> None:
    """Honest completion of the first buffer (taken by both drivers), then the same id used again."""
    p = s.pair
    p.complete(p.held.pop(0), 0)
    assert p.get() is not None
    write_used(p, s.ids[0], 0, used_bits(p.model.state.used_wrap))


# The reaction table (the report's table is this one).
REACTIONS = [
    Case("id not outstanding (a free id)",
         lambda s: write_used(s.pair, _free_id(s), 0, used_bits(True)),
         "BAD_RING not a head", pk.USED_ID_NOT_OUTSTANDING,
         "both refuse (§2.8.6: a used id names a buffer the driver made available); Linux breaks the queue, "
         "the model refuses on every call until the device rewrites the descriptor"),
    Case("id completed twice",
         _complete_then_repeat,
         "BAD_RING not a head", pk.USED_ID_NOT_OUTSTANDING,
         "both refuse (§2.8.6); as above"),
    Case("id == queue size",
         lambda s: write_used(s.pair, NUM, 0, used_bits(True)),
         "BAD_RING out of range", pk.USED_ID_RANGE, "both refuse (§2.8.6: ids are below the queue size)"),
    Case("id 0xffff",
         lambda s: write_used(s.pair, 0xFFFF, 0, used_bits(True)),
         "BAD_RING out of range", pk.USED_ID_RANGE, "both refuse (§2.8.6)"),
    Case("len above the writable length (WRITE set)",
         lambda s: write_used(s.pair, s.ids[0], WLEN + 1, used_bits(True) | WR),
         f"buf len={WLEN + 1}", pk.USED_LEN,
         "SPEC: §2.8.15 #1 / §2.7.8.2 (the device writes at least len bytes into the buffer, so len <= its "
         "writable bytes; CVE-2021-47352). Linux 6.1's core passes the length to the caller unchecked"),
    Case("len 2^32-1 (WRITE set)",
         lambda s: write_used(s.pair, s.ids[0], 0xFFFFFFFF, used_bits(True) | WR),
         f"buf len={0xFFFFFFFF}", pk.USED_LEN, "SPEC: §2.8.15 #1, as above"),
    Case("len set but WRITE clear",
         lambda s: write_used(s.pair, s.ids[0], 5, used_bits(True)),
         "buf len=5", "buf len=0",
         "SPEC: §2.8.4 (Element Length is reserved for used descriptors without VIRTQ_DESC_F_WRITE and is "
         "ignored by drivers). Linux 6.1 returns the raw len"),
    Case("AVAIL=USED=not the used wrap counter (the previous lap's used marking)",
         lambda s: write_used(s.pair, s.ids[0], 0, used_bits(False)),
         "none", pk.USED_FLAGS,
         "SPEC: §2.8.1/§2.8.15 (at a live position AVAIL is the driver's wrap counter; no honest device "
         "state writes this). Linux treats it as 'not used yet' and waits, queue not broken; both hand out nothing"),
    Case("AVAIL clear, USED set (mixed bits)",
         lambda s: write_used(s.pair, s.ids[0], 0, US),
         "none", pk.USED_FLAGS, "SPEC: §2.8.1, as above; Linux waits"),
    Case("AVAIL set, USED clear (the driver's own available marking)",
         lambda s: write_used(s.pair, s.ids[0], 0, AV),
         "none", "none", "agree: not used yet (§2.8.1)"),
    Case("old-lap used bits after the wrap (driver used wrap counter 0)",
         lambda s: write_used(s.pair, s.ids[0], 0, used_bits(True)),
         "none", pk.USED_FLAGS, "SPEC: §2.8.1 (the wrap counter flipped at the ring end); Linux waits", lap=1),
    Case("used descriptor where nothing is outstanding",
         lambda s: write_used(s.pair, 0, 0, used_bits(True)),
         "BAD_RING not a head", pk.USED_FLAGS,
         "both refuse: §2.8.15 #3 (nothing is used where nothing was available); the model names the flags "
         "clause, Linux the id", bufs=0),
    Case("honest used descriptor (control)",
         lambda s: write_used(s.pair, s.ids[0], 7, used_bits(True) | WR),
         "buf len=7", "buf len=7", "agree", tags="ev+ind"),
]
BAD_RING_CASES = [c for c in REACTIONS if c.linux.startswith("BAD_RING")]


def compare_reaction(case: Case) -> list[str]:
    """Run one case on both drivers; return the mismatches against its table row (empty: it holds)."""
    s = setup(case.tags, case.bufs, case.lap)
    p = s.pair
    case.write(s)
    lr, mr = linux_reaction(p), model_reaction(p)
    p.ops(f"reactions: linux {lr!r} model {mr!r}")
    COUNTS["cases"] += 1
    out = []
    if lr != case.linux:
        out.append(f"linux reacted {lr!r}, the table says {case.linux!r}")
    if mr != case.model:
        out.append(f"model reacted {mr!r}, the table says {case.model!r}")
    if out:
        out.append(f"case {case.name!r}\n{p.snapshot()}\n{p.ops}")
    return out


@pytest.mark.parametrize("case", REACTIONS, ids=[c.name for c in REACTIONS])
def test_hostile_used_descriptor_reaction(case):
    mismatches = compare_reaction(case)
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("case", BAD_RING_CASES, ids=[c.name for c in BAD_RING_CASES])
def test_after_the_refusal(case):
    """What follows: Linux's queue is broken (get_buf None, add -EIO, nothing hangs); the model's state
    is unchanged, it refuses the same descriptor again with the same clause, and takes the honest
    completion once the device rewrites the descriptor (the model does not break the queue)."""
    s = setup(case.tags, case.bufs, case.lap)
    p = s.pair
    case.write(s)
    assert linux_reaction(p).startswith("BAD_RING")
    before = p.model.state
    assert model_reaction(p) == case.model
    assert p.linux.broken and p.linux.get_buf() is None
    assert p.linux.add([(p.m.data, 8)], [], 99) == EIO
    assert model_reaction(p) == case.model and p.model.state == before
    if not s.ids:
        return
    id = next(i for i in s.ids if p.model.state.ndesc[i])       # an outstanding id
    write_used(p, id, 3, used_bits(p.model.state.used_wrap) | WR)
    token = p.model.tokens[id]
    assert p.model.get_used() == (token, 3)
    assert p.linux.get_buf() is None, "Linux stays broken"


def test_hostile_descriptor_does_not_disturb_later_honest_traffic_when_both_wait():
    """The 'none' rows: after a bad AVAIL/USED marking, neither driver took anything; once the device
    writes the honest descriptor both take it and the comparison resumes, bytes and state equal."""
    s = setup("ev", 3)
    p = s.pair
    write_used(p, s.ids[0], 0, used_bits(False))
    assert linux_reaction(p) == "none" and model_reaction(p) == pk.USED_FLAGS
    first = p.held.pop(0)
    p.complete(first, 9)
    assert p.get() is not None
    for ch in p.held[:]:
        p.complete(ch, 0)
    p.held.clear()
    p.get_all()
    p.check("drained")
    assert p.model.state.num_free == NUM and not p.linux.broken


def test_indirect_table_longer_than_the_queue_is_a_documented_divergence():
    """Not a hostile device: Linux's virtqueue_use_indirect() checks only its allocation size
    (indirect_max), so at queue size 3 it puts 4 elements in one indirect table. The model follows
    §2.8.5 (without a device limit a list has at most queue-size descriptors) and §2.8.19 (the driver
    MUST NOT exceed the device's limit): it uses direct descriptors, which do not fit (-ENOSPC)."""
    p = DriverPair(3, "ind")
    elems = [(p.m.data + 0x80 * k, 8) for k in range(IND_MAX - 2)]
    rc = p.linux.add(elems, [], 1)
    with pytest.raises(errors.Exhausted):
        p.model.add(elems, [], 1)
    assert rc == 0 and p.linux.state()["num_free"] == 2 and p.model.state.num_free == 3


# ---------------------------------------------------------------------------------------------
# Mutants: the comparison must report a model that accepts what it must refuse
# ---------------------------------------------------------------------------------------------

def _without_guard(orig, clause):
    def mutant(*args, **kw):
        sp = orig(*args, **kw)
        return pk.Step(tuple(g for g in sp.guards if g[1] != clause), sp.__dict__["new"], sp.out)
    return mutant


def test_mutant_accepting_an_id_not_outstanding_is_reported(monkeypatch):
    monkeypatch.setattr(pk, "packed_get_used", _without_guard(pk.packed_get_used, pk.USED_ID_NOT_OUTSTANDING))
    mismatches = compare_reaction(REACTIONS[0])
    assert mismatches and mismatches[0].startswith("model reacted 'buf len=0'"), mismatches
    assert pk.USED_ID_NOT_OUTSTANDING in mismatches[0] and "operations (" in mismatches[-1]


def test_mutant_accepting_a_long_used_length_is_reported(monkeypatch):
    monkeypatch.setattr(pk, "packed_get_used", _without_guard(pk.packed_get_used, pk.USED_LEN))
    case = REACTIONS[4]
    mismatches = compare_reaction(case)
    assert mismatches and mismatches[0] == f"model reacted 'buf len={WLEN + 1}', the table says {pk.USED_LEN!r}"


def test_mutant_accepting_the_other_laps_used_bits_is_reported(monkeypatch):
    """A model that also takes a used marking made with the other lap's wrap counter (its flags checks
    run against the flipped counter when they fail against the tracked one): honest traffic is
    unchanged, the old-lap row must be reported."""
    orig = pk.packed_get_used

    def lax(L, d, avail, used, id, length):
        sp = orig(L, d, avail, used, id, length)
        if pk.first_failed(sp) in (pk.USED_FLAGS, pk.NO_USED):
            other = orig(L, pk.replace(d, used_wrap=not d.used_wrap), avail, used, id, length)
            if pk.first_failed(other) is None:
                honest = orig(L, d, d.used_wrap, d.used_wrap, id, length)     # the step with the bits it expects
                return pk.Step(other.guards, honest.__dict__["new"], other.out)
        return sp
    monkeypatch.setattr(pk, "packed_get_used", lax)
    case = next(c for c in REACTIONS if c.lap == 1)
    mismatches = compare_reaction(case)
    assert mismatches and mismatches[0] == f"model reacted 'buf len=0', the table says {pk.USED_FLAGS!r}", mismatches


def test_report_hostile_counts():
    print(f"packed hostile: {COUNTS}; table rows {len(REACTIONS)}")
