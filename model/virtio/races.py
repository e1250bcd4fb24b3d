"""Notification suppression races between a split-ring driver and device (virtio 1.3 §2.7.10,
§2.7.13.4, §2.7.14; facts/formal.md §5.3).

The available-buffer direction, split into the atomic memory steps each side performs:

- driver (Linux ``virtqueue_add`` + ``virtqueue_kick_prepare``): **publish** ``avail->idx``
  (``batch`` new buffers), then, after a full barrier, **read_event**: snapshot ``avail_event``
  (EVENT_IDX) or ``used->flags`` (NO_NOTIFY), then **decide**: kick if
  ``vring_need_event(avail_event, new, old)`` / if the flag is clear;
- device (vhost ``handle_kick`` loop, the mirror of §2.7.14's driver loop): **consume** one
  buffer while ``avail->idx`` moved, then **enable** notifications (write ``avail_event =
  last_avail`` / clear NO_NOTIFY), **recheck** ``avail->idx`` and either resume or **sleep**
  until a kick arrives.

Memory is sequentially consistent: each step is atomic, so a missing barrier shows as a step
order (the driver reading the event before publishing). A scheduler picks which side moves at
each step; the proofs (proofs/virtio_races.py) explore every schedule of ``MAX_STEPS`` steps from
any start index (wrap-around included), any stale event value and any batch sizes. The used-buffer
direction (device publishes used idx, driver re-enables callbacks and re-checks) is the same
program with the roles swapped.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from t1virtio.logic import CONCRETE
from t1virtio.preset import Preset
from t1virtio.state import bits
from t1virtio.step import Step, step
from t1virtio.virtio import notify

MAX_STEPS = 12           # scheduler steps explored by the bounded race proofs
U16 = 16
PC_BITS = 2              # program counters: 3 driver phases, 4 device phases

EVENT_IDX = "event_idx"  # VIRTIO_F_EVENT_IDX negotiated: avail_event
FLAGS = "flags"          # not negotiated: used->flags VRING_USED_F_NO_NOTIFY
MODES = (EVENT_IDX, FLAGS)

PUBLISH, READ_EVENT, DECIDE = "publish", "read_event", "decide"
CONSUME, ENABLE, RECHECK, SLEEP = 0, 1, 2, 3      # device program counter
DEVICE_PHASES = ("consume", "enable", "recheck", "sleep")


def driver_program() -> tuple[str, ...]:
    """Return the driver's phases in program order (§2.7.13.4: publish, barrier, read, decide)."""
    return (PUBLISH, READ_EVENT, DECIDE)


def max_batch(preset: Preset) -> int:
    """Return the most buffers one publish makes available (a ring's worth)."""
    return preset.queue_size


@dataclass(frozen=True, slots=True)
class RaceState:
    """Shared ring fields, the driver's and the device's private variables, and the pending kick."""

    avail_idx: int = bits(U16)        # shared: avail->idx
    avail_event: int = bits(U16)      # shared: used ring's avail_event (EVENT_IDX)
    no_notify: bool                   # shared: used->flags & VRING_USED_F_NO_NOTIFY
    kicked: bool                      # a notification sent and not yet taken by the device
    shadow: int = bits(U16)           # driver: avail_idx_shadow (last published idx)
    old_idx: int = bits(U16)          # driver: idx at its previous kick decision
    seen_event: int = bits(U16)       # driver: snapshot of avail_event
    seen_no_notify: bool              # driver: snapshot of NO_NOTIFY
    driver_pc: int = bits(PC_BITS)    # index into driver_program(); 0 = idle
    last_avail: int = bits(U16)       # device: next avail idx it will consume
    device_pc: int = bits(PC_BITS)    # CONSUME | ENABLE | RECHECK | SLEEP


def initial(start: int = 0, event: int = 0, no_notify: bool = True) -> RaceState:
    """Both sides idle at index ``start``; the device running (about to look at the ring)."""
    return RaceState(avail_idx=start, avail_event=event, no_notify=no_notify, kicked=False, shadow=start,
                     old_idx=start, seen_event=event, seen_no_notify=no_notify, driver_pc=0,
                     last_avail=start, device_pc=CONSUME)


def is_initial(L: Any, s: RaceState) -> Any:
    """Return whether ``s`` is a start state: any index, any stale event and flag, nothing pending."""
    return L.And(s.avail_idx == s.shadow, s.old_idx == s.shadow, s.last_avail == s.shadow,
                 L.Not(s.kicked), s.driver_pc == 0, s.device_pc == CONSUME)


def is_in_window(L: Any, event: Any, new_idx: Any, old_idx: Any) -> Any:
    """Return whether an entry was placed at index ``event`` while the idx went from old to new (§2.7.10.1)."""
    return L.ULT(L.wrap(event - old_idx, U16), L.wrap(new_idx - old_idx, U16))


def pc_value(like: Any, pc: int) -> Any:
    """Return the constant ``pc`` typed like the program counter ``like`` (int, or a 2-bit vector)."""
    return (like & 0) | pc


# driver phases
def driver_publish(L: Any, s: RaceState, batch: Any) -> RaceState:
    """Make ``batch`` more buffers available: ``avail->idx += batch`` (after the descriptor barrier)."""
    idx = L.wrap(s.shadow + batch, U16)
    return replace(s, shadow=idx, avail_idx=idx)


def driver_read_event(L: Any, s: RaceState, mode: str) -> RaceState:
    """Snapshot the device's suppression state (after the full barrier of §2.7.13.4.1)."""
    return replace(s, seen_event=s.avail_event, seen_no_notify=s.no_notify)


def should_kick(L: Any, s: RaceState, mode: str) -> Any:
    """Return the driver's kick decision from its snapshot (§2.7.10.1)."""
    if mode == EVENT_IDX:
        return notify.vring_need_event(L, s.seen_event, s.shadow, s.old_idx)
    return L.Not(s.seen_no_notify)


def driver_decide(L: Any, s: RaceState, mode: str) -> RaceState:
    """Kick if needed; the published idx becomes the start of the next window."""
    return replace(s, kicked=L.Or(s.kicked, should_kick(L, s, mode)), old_idx=s.shadow)


def driver_step(L: Any, s: RaceState, mode: str, batch: Any) -> Step:
    """Run the driver's current phase; out = whether this step sent a kick."""
    program = driver_program()
    phases = {PUBLISH: lambda: driver_publish(L, s, batch), READ_EVENT: lambda: driver_read_event(L, s, mode),
              DECIDE: lambda: driver_decide(L, s, mode)}
    new, kick = s, False
    for i in reversed(range(len(program))):
        here = s.driver_pc == i
        new = L.If(here, phases[program[i]](), new)
        if program[i] == DECIDE:
            kick = L.If(here, should_kick(L, s, mode), kick)
    nxt = L.If(s.driver_pc == len(program) - 1, 0, s.driver_pc + 1)
    return step([], replace(new, driver_pc=nxt), out=kick)


# device phases
def device_consume(L: Any, s: RaceState, mode: str) -> RaceState:
    """Take one buffer if ``avail->idx`` moved past ``last_avail``; otherwise go and enable notifications."""
    work = s.avail_idx != s.last_avail
    return replace(s, last_avail=L.If(work, L.wrap(s.last_avail + 1, U16), s.last_avail),
                   device_pc=L.If(work, pc_value(s.device_pc, CONSUME), ENABLE))


def device_enable(L: Any, s: RaceState, mode: str) -> RaceState:
    """Ask for a kick: ``avail_event = last_avail`` (EVENT_IDX) or clear NO_NOTIFY; then a full barrier."""
    if mode == EVENT_IDX:
        return replace(s, avail_event=s.last_avail, device_pc=RECHECK)
    return replace(s, no_notify=False, device_pc=RECHECK)


def device_recheck(L: Any, s: RaceState, mode: str) -> RaceState:
    """Re-read ``avail->idx`` after enabling: resume (suppressing kicks again) if it moved, else sleep."""
    work = s.avail_idx != s.last_avail
    return replace(s, device_pc=L.If(work, pc_value(s.device_pc, CONSUME), SLEEP),
                   no_notify=s.no_notify if mode == EVENT_IDX else work)


def device_sleep(L: Any, s: RaceState, mode: str) -> RaceState:
    """Wait for a kick; take it and resume with kicks suppressed."""
    woken = replace(s, kicked=False, device_pc=CONSUME, no_notify=True if mode == FLAGS else s.no_notify)
    return L.If(s.kicked, woken, s)


def device_step(L: Any, s: RaceState, mode: str) -> Step:
    """Run the device's current phase."""
    phases = (device_consume, device_enable, device_recheck, device_sleep)
    new = s
    for pc in reversed(range(len(phases))):
        new = L.If(s.device_pc == pc, phases[pc](L, s, mode), new)
    return step([], new)


def is_lost_notification(L: Any, s: RaceState) -> Any:
    """Return whether the device sleeps with nothing pending, the driver is idle, and buffers wait unseen."""
    return L.And(s.device_pc == SLEEP, L.Not(s.kicked), s.driver_pc == 0, s.avail_idx != s.last_avail)


# the concrete race: run a schedule, judge each step
SEVERITY = ("VIRTIO/driver/Virtqueues/Supplying Buffers to The Device/Notifying The Device#barrier",
            "VIRTIO/model/notify#recheck",
            "VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression#event-idx-notify",
            "VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression#flags-notify",
            "VIRTIO/model/notify#exactly-once",
            "VIRTIO/model/notify#no-lost-notification")


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


def run_schedule(mode: str, s: RaceState, schedule: list[tuple[str, int]]) -> RaceRun:
    """Run ``schedule`` (``("driver", batch)`` / ``("device", 0)`` steps) on the concrete model from ``s``.

    Each step is judged against the clause it could break: a decision made from a snapshot read
    before the latest publish (barrier), a kick missed or sent outside the window (2.7.10.1), the
    device going to sleep with buffers published (recheck), and after each step the lost
    notification property.
    """
    L = CONCRETE
    run = RaceRun([s], [], [])
    published_at, read_at = -1, -1
    for t, (actor, batch) in enumerate(schedule):
        if actor == "driver":
            phase = driver_program()[s.driver_pc]
            sp = driver_step(L, s, mode, batch)
            line = f"{t}: driver {phase}"
            if phase == PUBLISH:
                published_at = t
                line += f" avail_idx={sp.new.avail_idx}"
            elif phase == READ_EVENT:
                read_at = t
                line += f" saw avail_event={s.avail_event} no_notify={s.no_notify}"
            else:
                line += f" window [{s.old_idx}, {s.shadow}) kick={sp.out}"
                _judge_decision(L, mode, s, sp.out, published_at, read_at, run)
        else:
            sp = device_step(L, s, mode)
            line = f"{t}: device {DEVICE_PHASES[s.device_pc]} last_avail={sp.new.last_avail}"
            if sp.new.device_pc == SLEEP and s.device_pc != SLEEP and sp.new.avail_idx != sp.new.last_avail:
                run.broken.append("VIRTIO/model/notify#recheck")
                line += " (sleeps with buffers published)"
        s = sp.new
        run.states.append(s)
        if is_lost_notification(L, s):
            run.broken.append("VIRTIO/model/notify#no-lost-notification")
            line += f" -> LOST: device asleep, avail_idx={s.avail_idx} last_avail={s.last_avail}, no kick pending"
        run.story.append(line)
    return run


def _judge_decision(L: Any, mode: str, s: RaceState, kick: bool, published_at: int, read_at: int,
                    run: RaceRun) -> None:
    if read_at < published_at:
        run.broken.append("VIRTIO/driver/Virtqueues/Supplying Buffers to The Device/Notifying The Device#barrier")
    if mode == EVENT_IDX:
        due = is_in_window(L, s.seen_event, s.shadow, s.old_idx)
        if due and not kick:
            run.broken.append("VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression#event-idx-notify")
        if kick and not due:
            run.broken.append("VIRTIO/model/notify#exactly-once")
    elif not s.seen_no_notify and not kick:
        run.broken.append("VIRTIO/driver/Virtqueues/Available Buffer Notification Suppression#flags-notify")
