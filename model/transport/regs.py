"""The virtio-mmio v2 register file as a symbolic core (virtio 1.3 §4.2.2; facts/upstream.md §5.2, §6.6).

One ``RegFileState`` is the device side of a register transport: the device status and features (the
``virtio.status`` core, reused unchanged), the selectors, the banked queue registers, InterruptStatus and
the interrupt line, the configuration generation, and a one-request channel (``in_flight``) that the
message-queue and ivshmem transports carry their register accesses over. The same transitions serve the
three register transports of docs/transport.md: virtio-mmio over a message-queue pair, the Gunyah emulated
page (``two_phase``: a reset waits for the backend) and ivshmem2-virtio.

Ghost fields state the transport's invariants: ``seen`` (every status bit set since the last reset) and
``armed`` (each queue's parameters when it was enabled). Reads have no side effect and are concrete
(``read_register``); writes and device actions are guarded steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t1virtio.logic import CONCRETE
from t1virtio.state import bits, evolve
from t1virtio.step import Step, apply, step
from t1virtio.virtio import status as S

# §4.2.2 register offsets (virtio-mmio v2)
MAGIC_VALUE, VERSION, DEVICE_ID, VENDOR_ID = 0x000, 0x004, 0x008, 0x00C
DEVICE_FEATURES, DEVICE_FEATURES_SEL = 0x010, 0x014
DRIVER_FEATURES, DRIVER_FEATURES_SEL = 0x020, 0x024
QUEUE_SEL, QUEUE_NUM_MAX, QUEUE_NUM = 0x030, 0x034, 0x038
QUEUE_READY, QUEUE_NOTIFY = 0x044, 0x050
INTERRUPT_STATUS, INTERRUPT_ACK = 0x060, 0x064
STATUS = 0x070
QUEUE_DESC_LOW, QUEUE_DESC_HIGH = 0x080, 0x084
QUEUE_DRIVER_LOW, QUEUE_DRIVER_HIGH = 0x090, 0x094
QUEUE_DEVICE_LOW, QUEUE_DEVICE_HIGH = 0x0A0, 0x0A4
CONFIG_GENERATION = 0x0FC
CONFIG = 0x100

MAGIC = 0x74726976          # "virt"
MMIO_VERSION = 2
MAX_VQS = 16                # Gunyah VIRTIO_MMIO_MAX_VQS: queues a page banks

# the banked queue parameters, in the order of their offsets (write_queue_param's ``param``)
PARAM_OFFSETS = (QUEUE_NUM, QUEUE_DESC_LOW, QUEUE_DESC_HIGH, QUEUE_DRIVER_LOW, QUEUE_DRIVER_HIGH,
                 QUEUE_DEVICE_LOW, QUEUE_DEVICE_HIGH)
NPARAM = len(PARAM_OFFSETS)
P_NUM = 0
WORD = (1 << 32) - 1

READABLE = frozenset({MAGIC_VALUE, VERSION, DEVICE_ID, VENDOR_ID, DEVICE_FEATURES, QUEUE_NUM_MAX, QUEUE_READY,
                      INTERRUPT_STATUS, STATUS, CONFIG_GENERATION})
WRITABLE = frozenset({DEVICE_FEATURES_SEL, DRIVER_FEATURES, DRIVER_FEATURES_SEL, QUEUE_SEL, QUEUE_READY,
                      QUEUE_NOTIFY, INTERRUPT_ACK, STATUS, *PARAM_OFFSETS})

# InterruptStatus bits (§4.2.2)
INT_USED = 1
INT_CONFIG = 2
INT_DEFINED = INT_USED | INT_CONFIG

TRANSPORT_DRIVER_OK_ORDER = "TRANSPORT-no-queue-before-driver-ok"


@dataclass(frozen=True, slots=True)
class RegFileState:
    """The device side of one virtio-mmio v2 register file (§4.2.2), with its request channel."""

    dev: S.DeviceStatusState                # Status, DeviceFeatures, DriverFeatures (virtio.status)
    num_max: tuple                          # QueueNumMax per banked queue (0: queue unavailable), fixed
    two_phase: bool = False                 # Gunyah emulated page: reset waits for the backend (fixed)
    reset_pending: bool = False             # a reset was requested, the backend has not acknowledged it
    interrupt_status: int = bits(32, default=0)
    line: bool = False                      # the interrupt line towards the driver
    queue_sel: int = 0
    device_features_sel: int = 0
    driver_features_sel: int = 0
    ready: tuple = ()                       # QueueReady per queue
    params: tuple = ()                      # NPARAM words per queue (PARAM_OFFSETS order)
    armed: tuple = ()                       # ghost: params of each queue when it was last enabled
    seen: int = bits(S.STATUS_BITS, default=0)       # ghost: every status bit set since the last reset
    config_generation: int = 0
    config_updating: bool = False
    in_flight: bool = False                 # channel: a request is in flight
    req_seq: int = 0                        # channel: its sequence number
    sent: int = 0                           # ghost: requests since creation
    answered: int = 0                       # ghost: replies since creation


def regfile_create(dev: S.DeviceStatusState, num_max: tuple, two_phase: bool = False) -> RegFileState:
    """A register file over device ``dev`` banking ``len(num_max)`` queues (Gunyah: at most MAX_VQS)."""
    n = len(num_max)
    return RegFileState(dev=dev, num_max=tuple(num_max), two_phase=two_phase, interrupt_status=0,
                        ready=(False,) * n, params=(0,) * (n * NPARAM), armed=(0,) * (n * NPARAM), seen=0)


def nqueues(s: RegFileState) -> int:
    return len(s.num_max)


def is_driver_ok(L: Any, s: RegFileState) -> Any:
    return S.has(L, s.dev.status, S.DRIVER_OK)


def _fold(L: Any, guards: list, sp: Step, when: Any = True) -> list:
    """The guards of a reused ``virtio.status`` step, required only ``when`` it applies."""
    return guards + [(c if when is True else L.Implies(when, c), clause) for c, clause in sp.guards]


def _after_reset(L: Any, s: RegFileState) -> RegFileState:
    """The register file after a completed reset (§4.2.2.1, §2.4): status 0, InterruptStatus 0, no queue ready."""
    n = nqueues(s)
    return evolve(s, dev=S.reset(L, s.dev), reset_pending=False, interrupt_status=s.interrupt_status & 0,
                  line=False, ready=(False,) * n, seen=s.seen & 0)


def _with_status(L: Any, s: RegFileState, dev: Any) -> RegFileState:
    return evolve(s, dev=dev, seen=s.seen | dev.status)


def _driver_guards(L: Any, s: RegFileState) -> list:
    """Every driver register write: none while a two-phase reset is pending (Gunyah page)."""
    return [(L.Not(s.reset_pending), "TRANSPORT-EMUL-reset-wait")]


# ------------------------------------------------------------------ driver writes (§4.2.2)

def write_status(L: Any, s: RegFileState, value: Any) -> Step:
    """Status: a non-zero value sets flags (``virtio.status.write_status``); 0 resets (§4.2.2, §2.4).

    On a two-phase page (Gunyah) a reset of a non-zero status does not complete: DEVICE_NEEDS_RESET is set,
    every QueueReady cleared, and the backend is asked (``backend_ack_reset`` completes it); 0 over 0 is
    the "first reset" and is ignored."""
    sp = S.write_status(L, s.dev, value)
    guards = _fold(L, _driver_guards(L, s), sp)
    requested = L.And(s.two_phase, value == 0, s.dev.status != 0)
    pending = evolve(s, dev=evolve(s.dev, status=s.dev.status | S.DEVICE_NEEDS_RESET), reset_pending=True,
                     ready=(False,) * nqueues(s), seen=s.seen | S.DEVICE_NEEDS_RESET)
    done = L.If(value == 0, _after_reset(L, s), _with_status(L, s, sp.new))
    new = L.If(requested, pending, done)
    return step(guards, new, out=new.dev.status)


def write_device_features_sel(L: Any, s: RegFileState, value: Any) -> Step:
    """DeviceFeaturesSel: selects the word DeviceFeatures shows (0 or 1; Gunyah faults above)."""
    guards = _driver_guards(L, s) + [(L.And(0 <= value, value < 2), "TRANSPORT-MMIO-selector")]
    return step(guards, evolve(s, device_features_sel=value))


def write_driver_features_sel(L: Any, s: RegFileState, value: Any) -> Step:
    """DriverFeaturesSel: selects the word DriverFeatures writes (0 or 1)."""
    guards = _driver_guards(L, s) + [(L.And(0 <= value, value < 2), "TRANSPORT-MMIO-selector")]
    return step(guards, evolve(s, driver_features_sel=value))


def write_driver_features(L: Any, s: RegFileState, value: Any) -> Step:
    """DriverFeatures: the selected 32-bit word of the accepted features (``virtio.status.write_driver_features``
    on the whole 64-bit set). ``value`` is a 32-bit word, held in a 64-bit vector in proofs."""
    low, high = s.dev.driver_features & WORD, s.dev.driver_features & (WORD << 32)
    full = L.If(s.driver_features_sel == 0, high | value, low | (value << 32))
    sp = S.write_driver_features(L, s.dev, full)
    return step(_fold(L, _driver_guards(L, s), sp), evolve(s, dev=sp.new))


def write_queue_sel(L: Any, s: RegFileState, value: Any) -> Step:
    """QueueSel: selects the queue the queue registers address (a banked queue; Gunyah faults otherwise)."""
    guards = _driver_guards(L, s) + [(L.And(0 <= value, value < nqueues(s)), "TRANSPORT-MMIO-selector")]
    return step(guards, evolve(s, queue_sel=value))


def write_queue_param(L: Any, s: RegFileState, param: Any, value: Any) -> Step:
    """QueueNum or a QueueDesc/Driver/Device Low/High word of the selected queue (§4.2.2).

    Refused while the queue is ready (§4.2.3.2: the driver does not touch them while QueueReady != 0);
    QueueNum at most QueueNumMax."""
    q = s.queue_sel
    guards = _driver_guards(L, s) + [
        (L.And(0 <= param, param < NPARAM), "TRANSPORT-MMIO-param"),
        (L.Not(L.at(s.ready, q)), "TRANSPORT-queue-frozen-while-ready"),
        (L.Implies(param == P_NUM, value <= L.at(s.num_max, q)), "TRANSPORT-MMIO-queue-size")]
    return step(guards, evolve(s, params=L.update(s.params, q * NPARAM + param, value)))


def write_queue_ready(L: Any, s: RegFileState, value: Any) -> Step:
    """QueueReady: 1 lets the device use the selected queue (with a non-zero size on an available queue),
    0 stops it (§4.2.2, §4.2.3.2). Enabling arms the ghost copy of the parameters."""
    q = s.queue_sel
    enable = value != 0
    guards = _driver_guards(L, s) + [
        (L.Implies(enable, L.And(L.at(s.num_max, q) != 0, L.at(s.params, q * NPARAM + P_NUM) != 0)),
         "TRANSPORT-MMIO-queue-size")]
    armed = tuple(L.If(L.And(enable, q == k // NPARAM), s.params[k], a) for k, a in enumerate(s.armed))
    return step(guards, evolve(s, ready=L.update(s.ready, q, enable), armed=armed))


def write_queue_notify(L: Any, s: RegFileState, queue: Any) -> Step:
    """QueueNotify: an available buffer notification for ``queue``, only after DRIVER_OK
    (``virtio.status.driver_notify``)."""
    sp = S.driver_notify(L, s.dev)
    guards = _fold(L, _driver_guards(L, s) + [(L.And(0 <= queue, queue < nqueues(s)), "TRANSPORT-MMIO-notify-index")], sp)
    return step(guards, evolve(s, dev=sp.new))


def write_interrupt_ack(L: Any, s: RegFileState, value: Any) -> Step:
    """InterruptACK: clears the written bits of InterruptStatus; the line follows (§4.2.2)."""
    isr = s.interrupt_status & ~value
    return step(_driver_guards(L, s), evolve(s, interrupt_status=isr, line=isr != 0))


# ------------------------------------------------------------------ device side

def device_interrupt(L: Any, s: RegFileState, reasons: Any) -> Step:
    """The device raises InterruptStatus ``reasons`` (used buffer: after DRIVER_OK; configuration change: not
    after a reset before ACKNOWLEDGE) and asserts the line; never while a reset is pending (Gunyah DENIED)."""
    used, config = (reasons & INT_USED) != 0, (reasons & INT_CONFIG) != 0
    su, sc = S.device_notify_used(L, s.dev), S.device_config_change(L, s.dev)
    guards = [(L.Not(s.reset_pending), "TRANSPORT-EMUL-assert-denied"),
              (L.And(reasons != 0, (reasons & ~INT_DEFINED) == 0), "TRANSPORT-MMIO-interrupt-bits")]
    guards = _fold(L, _fold(L, guards, su, used), sc, config)
    dev = evolve(s.dev, used_notifications=s.dev.used_notifications + L.If(used, 1, 0),
                 config_notifications=s.dev.config_notifications + L.If(config, 1, 0))
    return step(guards, evolve(s, dev=dev, interrupt_status=s.interrupt_status | reasons, line=True))


def device_use_queue(L: Any, s: RegFileState, queue: Any) -> Step:
    """The device consumes a buffer of ``queue``: only a ready queue (§4.2.2.1), only after DRIVER_OK."""
    sp = S.device_consume(L, s.dev)
    guards = _fold(L, [(L.Not(s.reset_pending), "TRANSPORT-EMUL-assert-denied"),
                       (L.And(0 <= queue, queue < nqueues(s)), "TRANSPORT-MMIO-queue-not-ready"),
                       (L.at(s.ready, queue), "TRANSPORT-MMIO-queue-not-ready")], sp)
    return step(guards, evolve(s, dev=sp.new))


def device_needs_reset(L: Any, s: RegFileState) -> Step:
    """The device sets DEVICE_NEEDS_RESET; a live device raises a configuration change interrupt (§2.1.2)."""
    sp = S.device_needs_reset(L, s.dev)
    live = is_driver_ok(L, s)
    isr = L.If(live, s.interrupt_status | INT_CONFIG, s.interrupt_status)
    return step(_fold(L, [], sp), evolve(_with_status(L, s, sp.new), interrupt_status=isr, line=isr != 0))


def backend_ack_reset(L: Any, s: RegFileState) -> Step:
    """Gunyah ``virtio_mmio_backend_acknowledge_reset``: completes a pending reset (status reads 0)."""
    return step([(s.reset_pending, "TRANSPORT-EMUL-ack-unrequested")], _after_reset(L, s))


def config_begin(L: Any, s: RegFileState) -> Step:
    """The device starts changing its configuration: the generation turns odd (ivshmem; §2.5)."""
    return step([(L.Not(s.config_updating), "TRANSPORT-MMIO-config-update")],
                evolve(s, config_generation=s.config_generation + 1, config_updating=True))


def config_end(L: Any, s: RegFileState) -> Step:
    """The device has finished: the generation turns even, differing from any read taken before."""
    return step([(s.config_updating, "TRANSPORT-MMIO-config-update")],
                evolve(s, config_generation=s.config_generation + 1, config_updating=False))


def driver_config_read(L: Any, s: RegFileState, before: Any) -> Step:
    """The honest driver keeps a configuration read bracketed by generation ``before`` only when it is even
    and unchanged (§2.5.1; ivshmem: spin while odd)."""
    guards = [(L.And(L.Not(s.config_updating), before == s.config_generation), "TRANSPORT-MMIO-config-stable")]
    return step(guards, s)


# ------------------------------------------------------------------ the request channel

def chan_request(L: Any, s: RegFileState, seq: Any) -> Step:
    """A register request ``seq`` arrives at the device; only one is ever in flight (facts §5.5)."""
    return step([(L.Not(s.in_flight), "TRANSPORT-CHAN-busy")],
                evolve(s, in_flight=True, req_seq=seq, sent=s.sent + 1))


def chan_reply(L: Any, s: RegFileState, seq: Any) -> Step:
    """The reply ``seq`` reaches the driver: it answers the request in flight."""
    guards = [(s.in_flight, "TRANSPORT-CHAN-reply-unsolicited"), (seq == s.req_seq, "TRANSPORT-CHAN-reply-order")]
    return step(guards, evolve(s, in_flight=False, answered=s.answered + 1))


# ------------------------------------------------------------------ reads (no side effect)

def read_register(s: RegFileState, offset: int, vendor_id: int = 0) -> int:
    """The value a driver reads at ``offset`` (a readable register, §4.2.2); concrete only."""
    q = s.queue_sel
    return {MAGIC_VALUE: MAGIC, VERSION: MMIO_VERSION, DEVICE_ID: s.dev.device_id, VENDOR_ID: vendor_id,
            DEVICE_FEATURES: (s.dev.device_features >> (32 * s.device_features_sel)) & WORD,
            QUEUE_NUM_MAX: s.num_max[q], QUEUE_READY: int(s.ready[q]), INTERRUPT_STATUS: s.interrupt_status,
            STATUS: s.dev.status, CONFIG_GENERATION: s.config_generation & WORD}[offset]


def write_config(L: Any, s: RegFileState) -> Step:
    """A driver write to the device configuration space: not while accepting features
    (``virtio.status.write_config``, §3.1.1 step 4)."""
    sp = S.write_config(L, s.dev)
    return step(_fold(L, _driver_guards(L, s), sp), s)


@dataclass(frozen=True, slots=True)
class ChannelState:
    """The driver's end of a request channel: the fields ``chan_request``/``chan_reply`` read and write."""

    in_flight: bool = False
    req_seq: int = 0
    sent: int = 0
    answered: int = 0


# ------------------------------------------------------------------ concrete wrapper


# register offset -> (transition name, argument name) for the plain register writes; looked up by name at
# use, so a patched transition is the one that runs
_WRITES = {STATUS: ("write_status", "value"), DEVICE_FEATURES_SEL: ("write_device_features_sel", "value"),
           DRIVER_FEATURES_SEL: ("write_driver_features_sel", "value"),
           DRIVER_FEATURES: ("write_driver_features", "value"), QUEUE_SEL: ("write_queue_sel", "value"),
           QUEUE_READY: ("write_queue_ready", "value"), QUEUE_NOTIFY: ("write_queue_notify", "queue"),
           INTERRUPT_ACK: ("write_interrupt_ack", "value")}


def write_op(offset: int, value: int) -> tuple[str, Any, dict]:
    """The transition a register write at ``offset`` runs: (op name, function, arguments); KeyError if none."""
    if offset in PARAM_OFFSETS:
        return "write_queue_param", globals()["write_queue_param"], {"param": PARAM_OFFSETS.index(offset),
                                                                     "value": value}
    name, arg = _WRITES[offset]
    return name, globals()[name], {arg: value}


class RegisterFile:
    """A concrete register file: ``state`` plus the device configuration bytes; each write a guarded step.

    A refused step raises its clause's error and leaves ``state`` as it was."""

    def __init__(self, dev: S.DeviceStatusState, num_max: tuple, config: bytes = b"", vendor_id: int = 0,
                 two_phase: bool = False):
        self.state = regfile_create(dev, tuple(num_max), two_phase)
        space = 0x1000 - CONFIG                 # the config area of a 4 KiB register page
        self.config = bytearray(config[:space]) + bytes(max(0, space - len(config)))
        self.vendor_id = vendor_id
        self.last_out: Any = None

    def run(self, fn: Any, detail: str = "", **args: Any) -> Any:
        sp = fn(CONCRETE, self.state, **args)
        self.last_out = sp.out if sp.out is not None else True
        self.state, out = apply(sp, detail)
        return out

    def write(self, offset: int, value: int) -> Any:
        """A 32-bit driver write at register ``offset`` (config writes: ``write_config_bytes``)."""
        _, fn, args = write_op(offset, value)
        return self.run(fn, f"write {value:#x} at {offset:#05x}", **args)

    def read(self, offset: int) -> int:
        return read_register(self.state, offset, self.vendor_id)

    def read_config(self, offset: int, width: int) -> int:
        return int.from_bytes(self.config[offset:offset + width], "little")

    def write_config_bytes(self, offset: int, value: int, width: int) -> None:
        self.run(write_config, f"config write at {offset:#x}")
        self.config[offset:offset + width] = value.to_bytes(width, "little")
