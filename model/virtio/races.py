"""Notification suppression races over the real split and packed transitions (virtio 1.3 §2.7.10,
§2.7.13.4, §2.7.14, §2.8.10, §2.8.21; facts/formal.md §5.3).

Two sides share a ring: the **producer** publishes buffers and decides whether to notify, the
**consumer** drains them, re-enables notifications, re-checks and sleeps. Each race (``RACES``)
instantiates the program with one ring and one direction:

- available buffers (producer = driver, consumer = device): split with and without EVENT_IDX,
  packed with RING_EVENT_IDX (device enables DESC) and without (ENABLE / DISABLE);
- used buffers (producer = device, consumer = driver): the same four.

Every atomic step **calls the real transition** on the real ring states (``split.DriverRing`` /
``DeviceRing``, ``packed.PackedDriverState`` / ``PackedDeviceState``, held in ``RaceState.prod``
and ``cons``), with the arguments it reads from the other side's memory:

producer (``producer_program()``, ``prod_pc`` 0 = idle)
  1. ``publish``: ``batch`` buffers, each the real ``split.add_buf`` / ``add_used`` /
     ``packed.packed_add`` / ``packed_push_used`` (the descriptor barrier is assumed);
  2. ``read_event``: after the full barrier, snapshot what the consumer wrote (``avail_event`` and
     used flags / ``used_event`` and avail flags / the event suppression structure);
  3. ``decide``: the real ``split.kick_prepare`` / ``need_notify`` / ``packed.packed_kick_prepare`` /
     ``packed_need_notify`` on that snapshot; its ``out`` is the notification.

consumer (``cons_pc``)
  ``consume`` one buffer with the real ``split.pop_avail`` / ``get_used`` / ``packed.packed_pop`` /
  ``packed_get_used`` (its empty-ring guard is "no work": then go and enable), ``enable`` with the
  real ``split.enable_notify`` / ``enable_cb`` / ``packed.packed_set_event`` (DESC or ENABLE) /
  ``packed_enable_cb`` (what they write is the shared memory the producer reads), ``recheck`` with
  the real read (``enable_notify`` / ``enable_cb``'s ``out``; ``packed.is_avail`` / ``is_used`` on
  the descriptor's flags), resuming with the real ``disable_notify`` / ``disable_cb`` /
  ``packed_set_event(DISABLE)`` / ``packed_disable_cb`` if work arrived, else ``sleep`` until a
  notification, which it takes (and disables again).

Descriptor tables are not part of the race: each call gets a stand-in table for its own guards
(all descriptors free for an add, the buffer held for a pop / used entry; ``_standin``) and the race
keeps every non-table field the transition returns (``_keep``). Room in the ring is a ghost: a
publish makes at most ``N`` minus the buffers published and not yet consumed, as an honest side
whose buffers come back does.

Memory is sequentially consistent: each step is atomic, so a missing barrier shows as a step order
(the producer reading before publishing). The proofs (proofs/virtio_races.py) explore every
schedule of ``MAX_STEPS`` steps from any start index, any stale suppression state and any batches.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple

from t1virtio.logic import CONCRETE
from t1virtio.preset import SMALL
from t1virtio.state import bits
from t1virtio.step import ok as step_ok
from t1virtio.virtio import packed, split

MAX_STEPS = 10           # scheduler steps explored by the bounded race proofs
U16 = 16
PC_BITS = 2              # program counters: 3 producer phases, 4 consumer phases
N = SMALL.queue_size     # ring size of the races (split queue size, packed num)

EVENT_IDX = "event_idx"             # split, available buffers, VIRTIO_F_EVENT_IDX: avail_event
FLAGS = "flags"                     # split, available buffers, used->flags NO_NOTIFY
USED_EVENT_IDX = "used_event_idx"   # split, used buffers, EVENT_IDX: used_event
USED_FLAGS = "used_flags"           # split, used buffers, avail->flags NO_INTERRUPT
PACKED_DESC = "packed_desc"         # packed, available buffers, RING_EVENT_IDX: device area DESC
PACKED_ENABLE = "packed_enable"     # packed, available buffers, ENABLE / DISABLE
PACKED_USED_DESC = "packed_used_desc"      # packed, used buffers, driver area DESC
PACKED_USED_ENABLE = "packed_used_enable"  # packed, used buffers, ENABLE / DISABLE

PUBLISH, READ_EVENT, DECIDE = "publish", "read_event", "decide"
CONSUME, ENABLE, RECHECK, SLEEP = 0, 1, 2, 3      # consumer program counter
CONSUMER_PHASES = ("consume", "enable", "recheck", "sleep")

EVENT_IDX_NOTIFY = "VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression#event-idx-notify"
FLAGS_NOTIFY = "VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression#flags-notify"
BARRIER = "VIRTIO/driver/Virtqueues/Supplying Buffers to The Device/Notifying The Device#barrier"
PUBLISH_BEFORE_READ = "VIRTIO/model/notify#publish-before-read"
RECHECK_CLAUSE = "VIRTIO/model/notify#recheck"
EXACTLY_ONCE = "VIRTIO/model/notify#exactly-once"
LOST = "VIRTIO/model/notify#no-lost-notification"
SPLIT_USED_NOTIFY = "VIRTIO/device/Virtqueues/Used Buffer Notification Suppression#notify"
PACKED_KICK_RULE = "VIRTIO/model/packed/events#kick-rule"
PACKED_NOTIFY_RULE = "VIRTIO/model/packed/events#notify-rule"


class Race(NamedTuple):
    """One instantiation: ring, direction, event index negotiated, and the clauses its judge reports."""

    mode: str
    ring: str            # "split" | "packed"
    direction: str       # "avail" (driver notifies the device) | "used" (device notifies the driver)
    event: bool          # VIRTIO_F_EVENT_IDX / VIRTIO_F_RING_EVENT_IDX negotiated (and used)
    missed: str          # clause of a decision that withholds a notification the snapshot asks for
    spurious: str | None  # clause of a notification the snapshot does not ask for (event modes)
    barrier: str         # clause of a decision made from a snapshot read before the latest publish


RACES = {r.mode: r for r in (
    Race(EVENT_IDX, "split", "avail", True, EVENT_IDX_NOTIFY, EXACTLY_ONCE, BARRIER),
    Race(FLAGS, "split", "avail", False, FLAGS_NOTIFY, None, BARRIER),
    Race(USED_EVENT_IDX, "split", "used", True, SPLIT_USED_NOTIFY, EXACTLY_ONCE, PUBLISH_BEFORE_READ),
    Race(USED_FLAGS, "split", "used", False, SPLIT_USED_NOTIFY, None, PUBLISH_BEFORE_READ),
    Race(PACKED_DESC, "packed", "avail", True, PACKED_KICK_RULE, PACKED_KICK_RULE, BARRIER),
    Race(PACKED_ENABLE, "packed", "avail", False, PACKED_KICK_RULE, None, BARRIER),
    Race(PACKED_USED_DESC, "packed", "used", True, PACKED_NOTIFY_RULE, PACKED_NOTIFY_RULE, PUBLISH_BEFORE_READ),
    Race(PACKED_USED_ENABLE, "packed", "used", False, PACKED_NOTIFY_RULE, None, PUBLISH_BEFORE_READ))}
MODES = tuple(RACES)


def producer_program() -> tuple[str, ...]:
    """Return the producer's phases in program order (§2.7.13.4: publish, barrier, read, decide)."""
    return (PUBLISH, READ_EVENT, DECIDE)


def max_batch() -> int:
    """Return the most buffers one publish makes available (a ring's worth)."""
    return N


# ------------------------------------------------------------------ state

@dataclass(frozen=True, slots=True)
class SplitRace:
    """A split race: the real ring states (16-bit indices in proofs), the snapshot, the pending notification."""

    prod: Any = bits(U16)             # avail: split.DriverRing; used: split.DeviceRing (tables empty)
    cons: Any = bits(U16)             # avail: split.DeviceRing; used: split.DriverRing
    seen: tuple = bits(U16)           # producer's snapshot: (event index, flags) as the consumer wrote them
    mem: tuple = bits(U16)            # unused by split (the consumer's states hold what it wrote)
    kicked: bool                      # a notification sent and not yet taken by the consumer
    prod_pc: int = bits(PC_BITS)      # index into producer_program(); 0 = idle
    cons_pc: int = bits(PC_BITS)      # CONSUME | ENABLE | RECHECK | SLEEP


@dataclass(frozen=True, slots=True)
class PackedRace:
    """A packed race: the real ring states (integer positions), the snapshot, the pending notification."""

    prod: Any                         # avail: packed.PackedDriverState; used: PackedDeviceState (tables empty)
    cons: Any                         # avail: PackedDeviceState; used: PackedDriverState
    seen: tuple                       # producer's snapshot of the consumer's structure: (flags, off, wrap)
    mem: tuple                        # the consumer's event suppression structure's (off, wrap) as written
    kicked: bool
    prod_pc: int = bits(PC_BITS)
    cons_pc: int = bits(PC_BITS)


RaceState = SplitRace | PackedRace


def _split_driver(event: bool, start: int) -> split.DriverRing:
    return split.DriverRing(event_idx=event, indirect=False, in_use=(), chain_of=(), chain_sel=(), wlen=(),
                            num_free=N, avail_idx=start, num_added=0, last_used=start, avail_ring=(), avail_flags=0,
                            cb_disabled=False, used_event=start)


def _split_device(event: bool, start: int) -> split.DeviceRing:
    return split.DeviceRing(event_idx=event, last_avail=start, avail_seen=start, used_idx=start, signalled=start,
                            held=(), wlen=(), used_id=(), used_len=(), used_flags=0, avail_event=start)


def _packed_driver(event: bool, slot: int, wrap: bool) -> packed.PackedDriverState:
    return packed.PackedDriverState(num=N, event=event, next_avail=slot, avail_wrap=wrap, last_used=slot,
                                    used_wrap=wrap, num_free=N, num_added=0,
                                    event_flags=packed.RING_EVENT_FLAGS_ENABLE, detached=False, ndesc=(), wlen=())


def _packed_device(event: bool, slot: int, wrap: bool) -> packed.PackedDeviceState:
    return packed.PackedDeviceState(num=N, event=event, next_avail=slot, avail_wrap=wrap, next_used=slot,
                                    used_wrap=wrap, in_flight=0, num_used=0,
                                    event_flags=packed.RING_EVENT_FLAGS_ENABLE, ndesc=(), wlen=())


def initial(mode: str, start: int = 0, wrap: bool = True) -> RaceState:
    """Both sides idle at index ``start`` (packed: slot ``start % N`` of lap ``wrap``), the consumer running."""
    r = RACES[mode]
    if r.ring == "split":
        drv, dev = _split_driver(r.event, start), _split_device(r.event, start)
        prod, cons = (drv, dev) if r.direction == "avail" else (dev, drv)
        return SplitRace(prod=prod, cons=cons, seen=(0, 0), mem=(0, 0), kicked=False, prod_pc=0, cons_pc=CONSUME)
    slot = start % N
    drv, dev = _packed_driver(r.event, slot, wrap), _packed_device(r.event, slot, wrap)
    prod, cons = (drv, dev) if r.direction == "avail" else (dev, drv)
    return PackedRace(prod=prod, cons=cons, seen=(0, 0, wrap), mem=(slot, wrap), kicked=False, prod_pc=0,
                      cons_pc=CONSUME)


def pin(mode: str, s: RaceState) -> RaceState:
    """Fix the negotiated features and the ring size of a (symbolic) state to the race's constants."""
    r = RACES[mode]
    if r.ring == "split":
        return replace(s, prod=replace(s.prod, event_idx=r.event), cons=replace(s.cons, event_idx=r.event))
    return replace(s, prod=replace(s.prod, num=N, event=r.event), cons=replace(s.cons, num=N, event=r.event))


def _u16ok(L: Any, x: Any) -> Any:
    return L.And(L.ULE(0, x), L.ULT(x, 1 << U16))


def _flags_ok(L: Any, r: Race, flags: Any) -> Any:
    """An event suppression mode an honest side writes (split: flag 0/1, 0 with EVENT_IDX; packed: DESC only with
    RING_EVENT_IDX)."""
    if r.ring == "split":
        return (flags == 0) if r.event else L.Or(flags == 0, flags == 1)
    ok = L.Or(flags == packed.RING_EVENT_FLAGS_ENABLE, flags == packed.RING_EVENT_FLAGS_DISABLE)
    return L.Or(ok, flags == packed.RING_EVENT_FLAGS_DESC) if r.event else ok


def is_initial(L: Any, mode: str, s: RaceState) -> Any:
    """Return whether ``s`` is a start state: both sides at one position (any index, any lap), nothing pending,
    the producer's last decision at that position, any stale suppression state an honest consumer writes."""
    r = RACES[mode]
    p, c = s.prod, s.cons
    common = [L.Not(s.kicked), s.prod_pc == 0, s.cons_pc == CONSUME]
    if r.ring == "split":
        if r.direction == "avail":
            return L.And(*common, p.avail_idx == c.last_avail, p.num_added == 0, _flags_ok(L, r, c.used_flags))
        return L.And(*common, p.used_idx == c.last_used, p.signalled == p.used_idx, _flags_ok(L, r, c.avail_flags))
    if r.direction == "avail":
        pos = [p.next_avail == c.next_avail, p.avail_wrap == c.avail_wrap, p.num_added == 0,
               L.ULE(0, p.next_avail), L.ULT(p.next_avail, N)]
    else:
        pos = [p.next_used == c.last_used, p.used_wrap == c.used_wrap, p.num_used == 0,
               L.ULE(0, p.next_used), L.ULT(p.next_used, N)]
    stale = [_flags_ok(L, r, c.event_flags), L.ULE(0, s.mem[0]), L.ULT(s.mem[0], N)]
    return L.And(*common, *pos, *stale)


# ------------------------------------------------------------------ what each side sees of the other

def published(L: Any, s: RaceState, mode: str) -> Any:
    """Return how many buffers the producer published that the consumer has not consumed."""
    r = RACES[mode]
    p, c = s.prod, s.cons
    if r.ring == "split":
        return (L.wrap(p.avail_idx - c.last_avail, U16) if r.direction == "avail"
                else L.wrap(p.used_idx - c.last_used, U16))
    if r.direction == "avail":
        return packed.distance(L, N, c.next_avail, c.avail_wrap, p.next_avail, p.avail_wrap)
    return packed.distance(L, N, c.last_used, c.used_wrap, p.next_used, p.used_wrap)


def _work(L: Any, s: RaceState, mode: str) -> Any:
    return L.Not(published(L, s, mode) == 0)


def desc_bits(L: Any, s: RaceState, mode: str) -> tuple[Any, Any]:
    """Return the AVAIL/USED bits of the packed descriptor at the consumer's position: as the producer
    marked it if it published that far (§2.8.1), else as it was left a lap ago (or zeroed, lap 0)."""
    r = RACES[mode]
    work = _work(L, s, mode)
    if r.direction == "avail":
        w = s.cons.avail_wrap
        a, u = packed.avail_flags(L, w)
        a0, u0 = packed.used_flags(L, L.Not(w))
    else:
        w = s.cons.used_wrap
        a, u = packed.used_flags(L, w)
        a0, u0 = packed.avail_flags(L, w)
    return L.If(work, a, a0), L.If(work, u, u0)


def _snapshot(L: Any, s: RaceState, mode: str) -> tuple:
    r = RACES[mode]
    c = s.cons
    if r.ring == "split":
        return (c.avail_event, c.used_flags) if r.direction == "avail" else (c.used_event, c.avail_flags)
    return (c.event_flags, s.mem[0], s.mem[1])


# ------------------------------------------------------------------ stand-in tables and kept fields

_TABLES = {"in_use", "chain_of", "chain_sel", "wlen", "avail_ring", "held", "used_id", "used_len", "ndesc"}
_GHOSTS = {"num_free", "in_flight"}      # what the stand-in tables fix for the call


def _keep(race_side: Any, new: Any, *ghost: str) -> Any:
    """Return ``race_side`` with every non-table field ``new`` has (except the stand-in's ghosts)."""
    skip = _TABLES | _GHOSTS | set(ghost)
    return replace(race_side, **{f.name: getattr(new, f.name) for f in fields(new) if f.name not in skip})


def _standin(L: Any, x: Any, kind: str) -> Any:
    """Return ``x`` with stand-in tables for one call: ``add`` (every descriptor free), ``held`` (every head
    held by the device), ``taken`` (every head in flight at the driver), ``packed-add``, ``packed-held``,
    ``packed-taken``."""
    z = (0,) * N
    if kind == "add":
        return replace(x, in_use=(False,) * N, chain_of=z, chain_sel=z, wlen=z, avail_ring=z, num_free=N)
    if kind == "held":
        return replace(x, held=(True,) * N, wlen=z, used_id=z, used_len=z)
    if kind == "pop":
        return replace(x, held=(False,) * N, wlen=z, used_id=z, used_len=z)
    if kind == "taken":
        return replace(x, in_use=(True,) * N, chain_of=tuple(range(N)), chain_sel=tuple(1 << k for k in range(N)),
                       wlen=z, avail_ring=z, num_free=0, avail_idx=L.wrap(x.last_used + N, U16))
    if kind == "packed-add":
        return replace(x, ndesc=z, wlen=z, num_free=N, detached=False)
    if kind == "packed-held":
        return replace(x, ndesc=(1,) * N, wlen=z, in_flight=N)
    if kind == "packed-pop":
        return replace(x, ndesc=z, wlen=z, in_flight=0)
    if kind == "packed-taken":
        return replace(x, ndesc=(1,) + (0,) * (N - 1), wlen=z, num_free=N - 1, detached=False)
    raise ValueError(kind)


# ------------------------------------------------------------------ producer phases

def _publish_one(L: Any, r: Race, x: Any, k: int) -> tuple[Any, Any]:
    """One buffer published by the real transition; return (its guards hold, the side's new state)."""
    if r.ring == "split" and r.direction == "avail":
        sp = split.add_buf(L, _standin(L, x, "add"), k, 1 << k, 1, 0, 0, 0, False)
    elif r.ring == "split":
        sp = split.add_used(L, _standin(L, x, "held"), k, 0)
    elif r.direction == "avail":
        sp = packed.packed_add(L, _standin(L, x, "packed-add"), 1, 0, k)
    else:
        sp = packed.packed_push_used(L, _standin(L, x, "packed-held"), k, 0)
    return step_ok(L, sp), _keep(x, sp.new)


def producer_publish(L: Any, s: RaceState, mode: str, batch: Any) -> RaceState:
    """Publish ``batch`` buffers (as many as fit in the ring), one real add / used entry each."""
    r = RACES[mode]
    used = published(L, s, mode)
    x = s.prod
    for k in range(N):
        ok, new = _publish_one(L, r, x, k)
        x = L.If(L.And(L.ULT(k, batch), L.ULT(used + k, N), ok), new, x)
    return replace(s, prod=x)


def producer_read_event(L: Any, s: RaceState, mode: str) -> RaceState:
    """Snapshot the consumer's suppression state (after the full barrier of §2.7.13.4.1)."""
    return replace(s, seen=_snapshot(L, s, mode))


def decision(L: Any, s: RaceState, mode: str) -> Any:
    """The real decision transition on the producer's state and its snapshot (a ``Step``; out = notify)."""
    r = RACES[mode]
    if r.ring == "split":
        fn = split.kick_prepare if r.direction == "avail" else split.need_notify
        return fn(L, s.prod, s.seen[0], s.seen[1])
    fn = packed.packed_kick_prepare if r.direction == "avail" else packed.packed_need_notify
    return fn(L, s.prod, s.seen[0], s.seen[1], s.seen[2])


def should_kick(L: Any, s: RaceState, mode: str) -> Any:
    """Return the producer's notification decision from its snapshot (the real transition's ``out``)."""
    return decision(L, s, mode).out


def producer_decide(L: Any, s: RaceState, mode: str) -> RaceState:
    """Notify if the real transition says so; its new state starts the next window."""
    return replace(s, prod=decision(L, s, mode).new, kicked=L.Or(s.kicked, should_kick(L, s, mode)))


def producer_step(L: Any, s: RaceState, mode: str, batch: Any) -> tuple[RaceState, Any]:
    """Run the producer's current phase; return (new state, whether this step sent a notification)."""
    program = producer_program()
    phases = {PUBLISH: lambda: producer_publish(L, s, mode, batch), READ_EVENT: lambda: producer_read_event(L, s, mode),
              DECIDE: lambda: producer_decide(L, s, mode)}
    new, kick = s, False
    for i in reversed(range(len(program))):
        here = s.prod_pc == i
        new = L.If(here, phases[program[i]](), new)
        if program[i] == DECIDE:
            kick = L.If(here, should_kick(L, s, mode), kick)
    nxt = L.If(s.prod_pc == len(program) - 1, pc_value(s.prod_pc, 0), s.prod_pc + 1)
    return replace(new, prod_pc=nxt), kick


def pc_value(like: Any, pc: int) -> Any:
    """Return the constant ``pc`` typed like the program counter ``like`` (int, or a 2-bit vector)."""
    return (like & 0) | pc


# ------------------------------------------------------------------ consumer phases

def _take(L: Any, s: RaceState, mode: str) -> tuple[Any, Any]:
    """The real consume transition for one buffer; return (its guards hold, the consumer's new state)."""
    r = RACES[mode]
    c, p = s.cons, s.prod
    if r.ring == "split" and r.direction == "avail":
        sp = split.pop_avail(L, _standin(L, c, "pop"), p.avail_idx, 0, 0)
    elif r.ring == "split":
        sp = split.get_used(L, _standin(L, c, "taken"), p.used_idx, 0, 0)
        return step_ok(L, sp), _keep(c, sp.new, "avail_idx", "num_added")
    elif r.direction == "avail":
        a, u = desc_bits(L, s, mode)
        sp = packed.packed_pop(L, _standin(L, c, "packed-pop"), a, u, 1, 0, 0)
    else:
        a, u = desc_bits(L, s, mode)
        sp = packed.packed_get_used(L, _standin(L, c, "packed-taken"), a, u, 0, 0)
    return step_ok(L, sp), _keep(c, sp.new)


def consumer_consume(L: Any, s: RaceState, mode: str) -> RaceState:
    """Take one buffer if the real consume accepts it; otherwise go and enable notifications."""
    work, new = _take(L, s, mode)
    return replace(s, cons=L.If(work, new, s.cons), cons_pc=L.If(work, pc_value(s.cons_pc, CONSUME), ENABLE))


def consumer_enable(L: Any, s: RaceState, mode: str) -> RaceState:
    """Ask for a notification with the real transition (its writes are the memory the producer reads)."""
    r = RACES[mode]
    c, p = s.cons, s.prod
    if r.ring == "split":
        sp = split.enable_notify(L, c, p.avail_idx) if r.direction == "avail" else split.enable_cb(L, c, p.used_idx)
        return replace(s, cons=sp.new, cons_pc=RECHECK)
    if r.direction == "avail":
        mode_ = packed.RING_EVENT_FLAGS_DESC if r.event else packed.RING_EVENT_FLAGS_ENABLE
        sp = packed.packed_set_event(L, c, mode_)
    else:
        sp = packed.packed_enable_cb(L, c)
    ok = step_ok(L, sp)
    return replace(s, cons=L.If(ok, sp.new, c), mem=L.If(ok, tuple(sp.out), s.mem), cons_pc=RECHECK)


def consumer_rechecks_work(L: Any, s: RaceState, mode: str) -> Any:
    """The real re-read after enabling: whether work arrived (split: ``enable_notify`` / ``enable_cb``'s
    "nothing new" out, negated; packed: the descriptor's flags read available / used)."""
    r = RACES[mode]
    c, p = s.cons, s.prod
    if r.ring == "split":
        sp = split.enable_notify(L, c, p.avail_idx) if r.direction == "avail" else split.enable_cb(L, c, p.used_idx)
        return L.Not(sp.out)
    a, u = desc_bits(L, s, mode)
    if r.direction == "avail":
        return packed.is_avail(L, a, u, c.avail_wrap)
    return packed.is_used(L, a, u, c.used_wrap)


def consumer_disable(L: Any, s: RaceState, mode: str) -> Any:
    """The real transition that suppresses notifications again; return the consumer's new state."""
    r = RACES[mode]
    c = s.cons
    if r.ring == "split":
        sp = split.disable_notify(L, c) if r.direction == "avail" else split.disable_cb(L, c)
    elif r.direction == "avail":
        sp = packed.packed_set_event(L, c, packed.RING_EVENT_FLAGS_DISABLE)
    else:
        sp = packed.packed_disable_cb(L, c)
    return L.If(step_ok(L, sp), sp.new, c)


def consumer_recheck(L: Any, s: RaceState, mode: str) -> RaceState:
    """Re-read after enabling: resume (suppressing notifications again) if work arrived, else sleep."""
    work = consumer_rechecks_work(L, s, mode)
    return replace(s, cons=L.If(work, consumer_disable(L, s, mode), s.cons),
                   cons_pc=L.If(work, pc_value(s.cons_pc, CONSUME), SLEEP))


def consumer_sleep(L: Any, s: RaceState, mode: str) -> RaceState:
    """Wait for a notification; take it and resume with notifications suppressed."""
    woken = replace(s, kicked=False, cons_pc=pc_value(s.cons_pc, CONSUME), cons=consumer_disable(L, s, mode))
    return L.If(s.kicked, woken, s)


def consumer_step(L: Any, s: RaceState, mode: str) -> RaceState:
    """Run the consumer's current phase."""
    phases = (consumer_consume, consumer_enable, consumer_recheck, consumer_sleep)
    new = s
    for pc in reversed(range(len(phases))):
        new = L.If(s.cons_pc == pc, phases[pc](L, s, mode), new)
    return new


def is_lost_notification(L: Any, s: RaceState, mode: str) -> Any:
    """Return whether the consumer sleeps with nothing pending, the producer is idle, and buffers wait unseen."""
    return L.And(s.cons_pc == SLEEP, L.Not(s.kicked), s.prod_pc == 0, _work(L, s, mode))


# ------------------------------------------------------------------ what a decision must be

def is_in_window(L: Any, event: Any, new_idx: Any, old_idx: Any) -> Any:
    """Return whether an entry was placed at index ``event`` while the idx went from old to new (§2.7.10.1)."""
    return L.ULT(L.wrap(event - old_idx, U16), L.wrap(new_idx - old_idx, U16))


def due(L: Any, s: RaceState, mode: str) -> tuple[Any, Any]:
    """Return (must notify, may notify) for the decision about to be made from the snapshot, as the spec
    states it (independent of the transition): split EVENT_IDX / packed DESC: the named index lies in the
    window published since the last decision; flags: the flag is clear; packed ENABLE always, DISABLE never."""
    r = RACES[mode]
    p, seen = s.prod, s.seen
    if r.ring == "split":
        if not r.event:
            clear = (seen[1] & 1) == 0
            return clear, True
        if r.direction == "avail":
            w = is_in_window(L, seen[0], p.avail_idx, L.wrap(p.avail_idx - p.num_added, U16))
        else:
            w = is_in_window(L, seen[0], p.used_idx, p.signalled)
        return w, w
    flags, off, ewrap = seen
    if r.direction == "avail":
        w = packed.in_window(L, N, p.next_avail, p.avail_wrap, p.num_added, off, ewrap)
    else:
        w = L.Or(L.ULT(N, p.num_used), packed.in_window(L, N, p.next_used, p.used_wrap, p.num_used, off, ewrap))
    must = L.If(flags == packed.RING_EVENT_FLAGS_DISABLE, False,
                L.If(L.And(flags == packed.RING_EVENT_FLAGS_DESC, r.event), w, True))
    return must, must


# ------------------------------------------------------------------ the concrete race: run a schedule, judge each step

SEVERITY = (BARRIER, PUBLISH_BEFORE_READ, RECHECK_CLAUSE, EVENT_IDX_NOTIFY, FLAGS_NOTIFY,
            SPLIT_USED_NOTIFY, PACKED_KICK_RULE, PACKED_NOTIFY_RULE, EXACTLY_ONCE, LOST)


@dataclass
class RaceRun:
    """What a concrete schedule did: one line per step and every clause a step broke."""

    states: list
    story: list
    broken: list

    def worst(self) -> str | None:
        """Return the root-cause clause: the most severe broken one (a MUST before its symptom)."""
        for c in SEVERITY:
            if c in self.broken:
                return c
        return None


def _where(s: RaceState, mode: str) -> str:
    r = RACES[mode]
    p, c = s.prod, s.cons
    if r.ring == "split":
        return (f"avail_idx={p.avail_idx} last_avail={c.last_avail}" if r.direction == "avail"
                else f"used_idx={p.used_idx} last_used={c.last_used}")
    if r.direction == "avail":
        return f"driver at ({p.next_avail},{int(p.avail_wrap)}) device at ({c.next_avail},{int(c.avail_wrap)})"
    return f"device at ({p.next_used},{int(p.used_wrap)}) driver at ({c.last_used},{int(c.used_wrap)})"


def run_schedule(mode: str, s: RaceState, schedule: list[tuple[str, int]]) -> RaceRun:
    """Run ``schedule`` (``("producer", batch)`` / ``("consumer", 0)`` steps) on the concrete model from ``s``.

    Each step is judged against the clause it could break: a decision made from a snapshot read
    before the latest publish (barrier), a notification withheld or sent against the snapshot, the
    consumer going to sleep with buffers published (recheck), and after each step the lost
    notification property.
    """
    L = CONCRETE
    r = RACES[mode]
    run = RaceRun([s], [], [])
    published_at, read_at = -1, -1
    for t, (actor, batch) in enumerate(schedule):
        if actor == "producer":
            phase = producer_program()[s.prod_pc]
            new, kick = producer_step(L, s, mode, batch)
            line = f"{t}: producer {phase}"
            if phase == PUBLISH:
                published_at = t
                line += f" {_where(new, mode)}"
            elif phase == READ_EVENT:
                read_at = t
                line += f" saw {new.seen}"
            else:
                line += f" from {s.seen}: notify={kick}"
                _judge_decision(L, r, s, kick, published_at, read_at, run)
        else:
            new = consumer_step(L, s, mode)
            line = f"{t}: consumer {CONSUMER_PHASES[s.cons_pc]} {_where(new, mode)}"
            if new.cons_pc == SLEEP and s.cons_pc != SLEEP and _work(L, new, mode):
                run.broken.append(RECHECK_CLAUSE)
                line += " (sleeps with buffers published)"
        s = new
        run.states.append(s)
        if is_lost_notification(L, s, mode):
            run.broken.append(LOST)
            line += f" -> LOST: consumer asleep, {_where(s, mode)}, no notification pending"
        run.story.append(line)
    return run


def _judge_decision(L: Any, r: Race, s: RaceState, kick: bool, published_at: int, read_at: int,
                    run: RaceRun) -> None:
    if read_at < published_at:
        run.broken.append(r.barrier)
    must, may = due(L, s, r.mode)
    if must and not kick:
        run.broken.append(r.missed)
    if kick and not may and r.spurious is not None:
        run.broken.append(r.spurious)
