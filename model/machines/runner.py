"""Run a machine for a number of examples or minutes; pin every failure as a regression file.

A failure is shrunk by Hypothesis and printed as a Python program (``state = Machine()`` then one
call per step). The program is read (with ``ast``, never run) into steps, data a file can hold: the
machine, the preset, the seed, the failing clause and the steps go into a JSON regression file
(``t1virtio-regression/2``, docs/formats/README.md) that ``t1virtio replay`` and the tests check
against the machine's rules and run again on its methods. The program stays in the file as a
comment for people; nothing reads it back.
"""
from __future__ import annotations

import time
import unittest
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hypothesis import HealthCheck, settings
from hypothesis.reporting import with_reporter
from hypothesis.stateful import run_state_machine_as_test

from t1virtio import errors, machinesteps, replayfile
from t1virtio.machines import load
from t1virtio.machines.common import active_preset, using_preset
from t1virtio.preset import by_name

FORMAT = replayfile.REGRESSION
MAX_ERROR = 20000          # characters of the error message kept in a file (the schema's bound)
MAX_PROGRAM = 500000       # characters of the program comment kept in a file (the schema's bound)


@dataclass
class FuzzResult:
    """What one machine run found."""

    machine: str
    examples: int
    seconds: float
    failure: dict | None = None
    report: list[str] = field(default_factory=list)


def clause_of(exc: BaseException) -> str | None:
    """Return the clause an exception names (looking inside exception groups)."""
    if isinstance(exc, errors.ModelError):
        return exc.clause
    for sub in getattr(exc, "exceptions", ()):
        c = clause_of(sub)
        if c:
            return c
    return None


def example_database(spec: str | None):
    """The Hypothesis example database named by ``--database``: None (none), a directory path (shared storage:
    every worker replays what any worker found), or ``redis://HOST:PORT`` (Hypothesis's own Redis database,
    which needs the ``redis`` package)."""
    if not spec:
        return None
    from hypothesis.database import DirectoryBasedExampleDatabase
    if spec.startswith("redis://"):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError:
            raise errors.ModelBug("--database redis://... needs the redis package: pip install redis") from None
        return RedisExampleDatabase(redis.Redis.from_url(spec))
    return DirectoryBasedExampleDatabase(spec)


def _settings(examples: int, steps: int | None, derandomize: bool, database: str | None = None,
              reuse_only: bool = False, shrink: bool = True) -> settings:
    from hypothesis import Phase
    kw = dict(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
              database=example_database(database), derandomize=derandomize and not database, print_blob=False)
    if steps:
        kw["stateful_step_count"] = steps
    if reuse_only:
        kw["phases"] = [Phase.explicit, Phase.reuse]
    elif not shrink:
        kw["phases"] = [Phase.explicit, Phase.reuse, Phase.generate]
    return settings(**kw)


def run_once(cls: type, examples: int, seed: int | None, steps: int | None = None, database: str | None = None,
             reuse_only: bool = False, shrink: bool = True) -> tuple[BaseException | None, list[str]]:
    """Run ``cls`` for ``examples`` examples with ``seed``; return (exception or None, Hypothesis's report lines).

    With ``database`` the examples saved there (by any worker) are replayed first and new failures saved;
    ``reuse_only`` replays those and generates nothing. The database key is the machine's name, whatever the
    seed, so every worker shares it."""
    lines: list[str] = []
    attrs = {"_hypothesis_internal_use_seed": seed} if seed is not None else {}
    seeded = type(cls.__name__, (cls,), attrs)
    seeded.__module__ = cls.__module__
    seeded.__qualname__ = cls.__qualname__
    try:
        with with_reporter(lines.append):
            run_state_machine_as_test(seeded, settings=_settings(examples, steps, seed is None, database, reuse_only, shrink))
    except unittest.SkipTest:
        if reuse_only:
            return None, lines          # replay only, and the database held nothing for this machine
        raise
    except Exception as e:  # noqa: BLE001 - every failure is reported, never swallowed
        return e, lines
    return None, lines


def fuzz(name: str, examples: int | None = None, minutes: float | None = None, seed: int = 0,
         steps: int | None = None, progress: Callable[[int], None] | None = None,
         batch: int = 100, preset: str | None = None, database: str | None = None,
         reuse_only: bool = False, shrink: bool = True) -> FuzzResult:
    """Run machine ``name``: ``examples`` examples, or batches until ``minutes`` have passed, with the
    tables of ``preset`` (``small`` or ``linux``; None: the active one); ``database``: a shared example
    database (``example_database``), ``reuse_only``: only replay what it holds; ``shrink=False``: report the
    first failing example as found (a check that needs only the clause, such as a mutant's)."""
    from t1virtio.machines.profiles import SHRINK_SECONDS, shrink_budget
    with shrink_budget(SHRINK_SECONDS["dev"]), using_preset(preset):    # a find is shrunk for at most a minute
        return _fuzz(name, examples, minutes, seed, steps, progress, batch, database, reuse_only, shrink)


def _fuzz(name: str, examples: int | None, minutes: float | None, seed: int, steps: int | None,
          progress: Callable[[int], None] | None, batch: int, database: str | None = None,
          reuse_only: bool = False, shrink: bool = True) -> FuzzResult:
    cls = load(name)
    t0 = time.perf_counter()
    done = 0
    total = examples if examples is not None else None
    k = 0
    while True:
        n = batch if total is None else min(batch, total - done)
        if n <= 0:
            break
        exc, lines = run_once(cls, n, seed + k, steps, database, reuse_only, shrink)
        done += n
        k += 1
        if progress:
            progress(n)
        if exc is not None:
            fail = failure_record(cls, name, seed + k - 1, exc, extract_program(exc, lines))
            return FuzzResult(name, done, time.perf_counter() - t0, fail, lines)
        if total is None and time.perf_counter() - t0 >= (minutes or 0) * 60:
            break
    return FuzzResult(name, done, time.perf_counter() - t0)


def failure_record(cls: type, name: str, seed: int, exc: BaseException, program: str) -> dict:
    """The regression record of a failure: its steps as data when the program converts (else the
    reason it does not, as ``unreplayable``), the program itself as a comment."""
    fail = {"format": FORMAT, "machine": name, "preset": active_preset().name, "seed": seed,
            "clause": clause_of(exc), "error": f"{type(exc).__name__}: {exc}"[:MAX_ERROR]}
    try:
        fail["steps"] = machinesteps.from_program(cls, program)
        replayfile.validate({**fail, "program": ""})
    except machinesteps.Refused as e:
        fail.pop("steps", None)
        fail["unreplayable"] = str(e)[:2000]
    except Exception as e:  # noqa: BLE001 - the find is kept (seed, clause, program) even when its steps are not
        fail.pop("steps", None)
        fail["unreplayable"] = replayfile.one_line(f"the steps could not be stored ({type(e).__name__}: {e})", 2000)
    fail["program"] = program[:MAX_PROGRAM]
    return fail


def extract_program(exc: BaseException, lines: list[str]) -> str:
    """Return the shrunk program Hypothesis printed for a failure (``state = ...`` to ``state.teardown()``)."""
    src = list(getattr(exc, "__notes__", [])) + lines
    out: list[str] = []
    for line in src:
        if line.startswith("state = "):
            out = [line]
        elif out and line.startswith("state."):
            out.append(line)
            if line == "state.teardown()":
                break
    return "\n".join(out)


def _fuzz_worker(args: tuple) -> FuzzResult:
    name, examples, minutes, seed, steps, preset = args
    return fuzz(name, examples=examples, minutes=minutes, seed=seed, steps=steps, preset=preset)


def fuzz_parallel(name: str, jobs: int, examples: int | None = None, minutes: float | None = None,
                  seed: int = 0, steps: int | None = None,
                  progress: Callable[[int], None] | None = None, preset: str | None = None) -> FuzzResult:
    """Run machine ``name`` on ``jobs`` worker processes, each on its own seed range (``seed + 100000*i``).

    ``examples`` are split between the workers; with ``minutes`` every worker runs that long.
    The first failure found is returned (each worker stops at its own first failure).
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    shares = [None] * jobs if examples is None else [examples // jobs + (i < examples % jobs) for i in range(jobs)]
    t0 = time.perf_counter()
    done, failure = 0, None
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("fork")) as ex:
        futs = [ex.submit(_fuzz_worker, (name, n, minutes, seed + 100000 * i, steps, preset))
                for i, n in enumerate(shares) if n is None or n > 0]
        for f in as_completed(futs):
            r = f.result()
            done += r.examples
            if progress:
                progress(r.examples)
            failure = failure or r.failure
    return FuzzResult(name, done, time.perf_counter() - t0, failure)


def save(failure: dict, folder: Path) -> Path:
    """Write a regression file for ``failure`` (checked against the format's schema) and return its path."""
    replayfile.validate(failure)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{failure['machine']}-{failure['clause'] or 'error'}-{failure['seed']}.json".replace("/", "_")
    path.write_text(replayfile.dumps(failure))
    return path


def replay(failure: dict, on_step: Callable[[machinesteps.Call], None] | None = None) -> machinesteps.Outcome:
    """Check a regression record (a file's parsed JSON) and run its steps on a fresh machine.

    The record is validated against the schema, its machine and preset looked up, every step matched
    with the machine's rules and strategies before anything runs (``machinesteps.check``); then the
    steps run on the machine's own methods with its invariants after each (``machinesteps.run``).
    Raises ``replayfile.BadFile`` or ``machinesteps.Refused`` (one-line messages) for a record that is
    not valid data for its machine; returns how the run ended otherwise.
    """
    replayfile.validate(failure)
    if "unreplayable" in failure:
        again = "" if failure["seed"] is None else (
            f"; its seed finds it again: t1virtio fuzz --machine {failure['machine']} --seed {failure['seed']} "
            f"--preset {failure['preset'].lower()}")
        raise machinesteps.Refused(f"this find has no steps ({failure['unreplayable']}){again}")
    try:
        cls = load(failure["machine"])
    except KeyError as e:
        raise machinesteps.Refused(e.args[0]) from None
    try:
        by_name(failure["preset"])
    except KeyError as e:
        raise machinesteps.Refused(e.args[0]) from None
    calls = machinesteps.check(cls, failure["steps"])
    with using_preset(failure["preset"]):
        return machinesteps.run(cls, calls, on_step)


def replay_program(failure: dict) -> str | None:
    """Replay a regression record (``replay``); return the clause it fails with, or None.

    A failure that names no clause (an assertion of the machine, a crash) is raised again."""
    out = replay(failure)
    if out.error is not None and out.clause is None:
        raise out.error
    return out.clause
