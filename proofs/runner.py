"""Run obligations (optionally in parallel worker processes) and collect results."""
from __future__ import annotations

import fnmatch
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable

from t1virtio.proofs import all_subjects, engine


def select(pattern: str | None) -> list[engine.Obligation]:
    """Return the obligations whose name or component matches ``pattern`` (substring or glob)."""
    obs = engine.obligations(all_subjects())
    if not pattern:
        return obs
    return [o for o in obs if pattern in o.name or pattern == o.component
            or fnmatch.fnmatch(o.name, pattern)]


def _solve_named(args: tuple[str, float]) -> engine.Result:
    name, timeout = args
    return engine.solve(engine.find(name), timeout)


def run(obs: list[engine.Obligation], jobs: int = 1, timeout: float = 30.0,
        progress: Callable[[engine.Result], None] | None = None) -> list[engine.Result]:
    """Solve every obligation; results come back in the order given."""
    results: list[engine.Result] = []
    if jobs <= 1:
        for ob in obs:
            r = engine.solve(ob, timeout)
            results.append(r)
            if progress:
                progress(r)
        return results
    ctx = mp.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as ex:
        for r in ex.map(_solve_named, [(o.name, timeout) for o in obs], chunksize=4):
            results.append(r)
            if progress:
                progress(r)
    return results


def summary(results: Iterable[engine.Result]) -> dict[str, int]:
    """Count results by outcome."""
    out: dict[str, int] = {}
    for r in results:
        out[r.outcome] = out.get(r.outcome, 0) + 1
    return out
