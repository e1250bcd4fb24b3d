"""Campaigns and proofs beyond one machine: the same work units on a Dask cluster (``--scheduler``).

A proof run's unit is one obligation (by name); a campaign's unit is one seed range of one machine
(``seed + 100000 * i``, as local ``--jobs`` workers use). Workers run the very functions a local run
does (``proofs.engine.solve``, ``machines.runner.fuzz``) and send back plain results; everything
is written where the command runs (regression and counterexample files), never on a worker. A shared
example database (``--database DIR`` on shared storage, or ``redis://``) lets every worker replay what
any worker found. ``--examples`` and ``--minutes`` bound the whole campaign: examples are split between
the units, and with minutes every unit stops at the same deadline. Ctrl-C cancels the units still
running and keeps what came back.

``--scheduler ADDRESS`` connects to a running ``dask scheduler``; ``local:N`` starts a ``LocalCluster``
of N single-threaded worker processes. dask.distributed is the ``[dist]`` extra.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator

EXTRA = "dist"
SEED_STRIDE = 100000


class DistError(Exception):
    """The scheduler cannot be used: the extra is missing, or the address is unusable (exit 2)."""


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise DistError(f"--scheduler needs dask.distributed: install the extra, pip install 't1virtio[{EXTRA}]'") \
            from None
    return distributed


@contextlib.contextmanager
def client(scheduler: str) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler`` (``local:N`` or an address), closed on exit."""
    d = _distributed()
    if scheduler.startswith("local:"):
        try:
            n = int(scheduler.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise DistError(f"--scheduler {scheduler!r}: local:N needs a worker count N >= 1")
        with d.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                            silence_logs=40) as cluster, d.Client(cluster) as c:
            yield c
        return
    try:
        c = d.Client(scheduler, timeout=10)
    except (OSError, TimeoutError, ValueError) as e:
        raise DistError(f"--scheduler {scheduler!r}: cannot connect ({e})") from None
    try:
        yield c
    finally:
        c.close()


def _gather(c: Any, futures: list, on_result: Callable[[int, Any], None]) -> None:
    """Collect ``futures`` as they finish (``on_result(index, value)``); Ctrl-C cancels what is left."""
    d = _distributed()
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for f in d.as_completed(futures):
            on_result(index[f.key], f.result())
    except KeyboardInterrupt:
        c.cancel([f for f in futures if not f.done()])
        raise


def solve(name: str, timeout: float) -> Any:
    """One work unit of a proof run: the obligation called ``name``, solved on a worker."""
    from t1virtio.proofs import engine
    return engine.solve(engine.find(name), timeout)


def prove(names: list[str], timeout: float, scheduler: str,
          progress: Callable[[Any], None] | None = None) -> list[Any]:
    """Solve the obligations called ``names`` on the cluster; results in the order given."""
    out: list[Any] = [None] * len(names)

    def got(i: int, r: Any) -> None:
        out[i] = r
        if progress:
            progress(r)
    with client(scheduler) as c:
        futures = c.map(solve, names, timeout=timeout, pure=False)
        _gather(c, futures, got)
    return out


def fuzz(name: str, scheduler: str, units: int, examples: int | None = None, minutes: float | None = None,
         seed: int = 0, preset: str | None = None, database: str | None = None, reuse_only: bool = False,
         progress: Callable[[int], None] | None = None) -> Any:
    """Run machine ``name`` as ``units`` seed ranges on the cluster; the merged result (the failure with the
    lowest seed wins, so a run is reproducible whatever order workers finish in)."""
    from t1virtio.machines import runner
    shares = [None] * units if examples is None else [examples // units + (i < examples % units) for i in range(units)]
    jobs = [(n, seed + SEED_STRIDE * i) for i, n in enumerate(shares) if n is None or n > 0]
    t0 = time.perf_counter()
    results: list[Any] = []

    def got(_i: int, r: Any) -> None:
        results.append(r)
        if progress:
            progress(r.examples)
    with client(scheduler) as c:
        futures = [c.submit(runner.fuzz, name, examples=n, minutes=minutes, seed=s, preset=preset,
                            database=database, reuse_only=reuse_only, pure=False) for n, s in jobs]
        try:
            _gather(c, futures, got)
        except KeyboardInterrupt:
            pass                                 # keep what came back; the caller prints and saves it
    failures = sorted((r.failure for r in results if r.failure), key=lambda f: (f["seed"] is None, f["seed"]))
    return runner.FuzzResult(name, sum(r.examples for r in results), time.perf_counter() - t0,
                             failures[0] if failures else None)
