"""Shared machine plumbing: the active preset, and one operation run with its rules checked on the concrete states."""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator

from t1virtio import errors
from t1virtio import preset as presets
from t1virtio.specs import invariants, rules


def checked_call(component: str, op: str, obj: Any, call: Callable[[], Any], args: dict, *,
                 core_only: bool = False, unchanged_on_refusal: bool = False) -> tuple[bool, errors.ModelError | None]:
    """Run ``call`` on ``obj`` (which has ``.state`` and ``.last_out``); check ``op``'s rules; return (accepted, error).

    ``core_only``: check the rules only when the call reached the symbolic core (it set ``.last_out``);
    ``unchanged_on_refusal``: a refused call must leave ``.state`` exactly as it was.
    """
    old = obj.state
    obj.last_out = None
    try:
        call()
        ok, err = True, None
    except errors.ModelError as e:
        if isinstance(e, errors.InvariantViolation):
            raise
        ok, err = False, e
    if not core_only or obj.last_out is not None:
        rules.check(component, op, old, args, ok, obj.state, obj.last_out)
    if unchanged_on_refusal and not ok and obj.state != old:
        raise errors.fail(err.clause, f"{op} was refused but changed the state")
    return ok, err


REFERENCE = "MODEL-reference-agrees"     # the model's observable result equals the machine's reference
HONEST = "MODEL-honest-accepted"         # an honest peer's operation is accepted; no work is Exhausted


def expect(cond: Any, clause: str, detail: str = "") -> None:
    """A machine's check: ``cond`` must hold, else ``InvariantViolation`` naming ``clause`` (never a bare
    ``assert``, which ``python -O`` removes)."""
    if not cond:
        raise errors.InvariantViolation(clause, detail)


def expect_exhausted(err: Any, detail: str) -> None:
    """A call with no work to do must be refused as ``Exhausted`` (``HONEST``)."""
    expect(isinstance(err, errors.Exhausted), HONEST, f"{detail}: got {err!r}")


def check_invariants(component: str, state: Any) -> None:
    """Evaluate ``component``'s invariants on a concrete state (raises ``InvariantViolation``)."""
    invariants.check(component, state)


PRESET_ENV = "T1VIRTIO_PRESET"


def active_preset() -> presets.Preset:
    """The preset machines size their tables by (``t1virtio fuzz --preset``; default SMALL).

    Read from the environment so that worker processes get the same one.
    """
    return presets.by_name(os.environ.get(PRESET_ENV, presets.SMALL.name))


@contextlib.contextmanager
def using_preset(name: str | None) -> Iterator[presets.Preset]:
    """Run machines with preset ``name`` (None: leave the active one) inside the block."""
    if name is None:
        yield active_preset()
        return
    p = presets.by_name(name)
    before = os.environ.get(PRESET_ENV)
    os.environ[PRESET_ENV] = p.name
    try:
        yield p
    finally:
        if before is None:
            os.environ.pop(PRESET_ENV, None)
        else:
            os.environ[PRESET_ENV] = before


def size_limit(machine: type, preset: presets.Preset) -> str | None:
    """Why ``machine`` cannot run with ``preset``'s tables, or None when it can.

    A machine lists the presets it sizes itself by in ``PRESETS`` (default: SMALL only, with the
    reason in ``SMALL_ONLY``); asking for another is refused, never silently run at SMALL.
    """
    if preset.name in getattr(machine, "PRESETS", (presets.SMALL.name,)):
        return None
    why = getattr(machine, "SMALL_ONLY", "its tables and strategies are sized for SMALL")
    return f"machine {machine.__name__} runs at SMALL only ({why}); --preset {preset.name.lower()} is not available for it"
