"""The ``t1virtio`` command line: prove, fuzz, replay, verify (one-line errors, non-zero on failure)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="t1virtio: a formally checked reference model of virtio on a Type-1 hypervisor.")
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)
REGRESSIONS = Path("regressions")


from t1virtio.commands import Failure  # noqa: E402 - shared with the parts' own commands


def _progress():
    """Progress on stderr: rich bars on a terminal, one plain line every few seconds elsewhere."""
    from t1virtio.progress import Reporter
    return Reporter()


def summary_text(results) -> str:
    """A proof run for a person: "698 proved", or "695 proved, 3 unknown (timeouts: a, b, c)"."""
    from t1virtio.proofs.runner import summary
    counts = summary(results)
    order = ["proved", "counterexample", "unknown", "error"]
    parts = []
    for outcome in sorted(counts, key=lambda o: order.index(o) if o in order else len(order)):
        names = [r.name for r in results if r.outcome == outcome]
        text = f"{counts[outcome]} {outcome if outcome != 'counterexample' else 'counterexamples'}"
        if outcome != "proved":
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            text += f" ({'timeouts' if outcome == 'unknown' else 'obligations'}: {shown})"
        parts.append(text)
    return ", ".join(parts) or "no obligations"


def _dist_failure(e: Exception) -> Failure:
    return Failure(str(e), 2)


def _prove(only: Optional[str], jobs: int, timeout: float, quiet: bool = False, scheduler: Optional[str] = None):
    from t1virtio.proofs import runner
    obs = runner.select(only)
    if not obs:
        raise Failure(f"no obligation matches {only!r}", 2)
    with _progress() as p:
        task = p.add_task("proving", total=len(obs))
        if scheduler:
            from t1virtio import dist
            try:
                results = dist.prove([o.name for o in obs], timeout, scheduler, progress=lambda r: p.advance(task))
            except dist.DistError as e:
                raise _dist_failure(e) from None
        else:
            results = runner.run(obs, jobs=jobs, timeout=timeout, progress=lambda r: p.advance(task))
    return results


def _save_counterexamples(results) -> list[Path]:
    paths = []
    for r in results:
        if r.counterexample:
            REGRESSIONS.mkdir(exist_ok=True)
            safe = r.name.replace(":", "-").replace("⊢", "-preserves-").replace("⊨", "-obeys-")
            path = REGRESSIONS / f"cex-{safe}.json"
            path.write_text(json.dumps(r.counterexample, indent=2) + "\n")
            paths.append(path)
    return paths


@app.command()
def prove(only: Optional[str] = typer.Option(None, "--only", help="substring, glob or component of obligation names"),
          jobs: int = typer.Option(1, "--jobs", min=1, help="worker processes"),
          timeout: float = typer.Option(30.0, "--timeout", min=0.1, help="seconds per obligation"),
          scheduler: Optional[str] = typer.Option(None, "--scheduler", help="a Dask scheduler address, or local:N "
                                                  "for a local cluster of N workers (the [dist] extra)"),
          as_json: bool = typer.Option(False, "--json", help="print a JSON list instead of a table")) -> None:
    """Generate and discharge proof obligations with Z3."""
    results = _prove(only, jobs, timeout, scheduler=scheduler)
    paths = _save_counterexamples(results)
    if as_json:
        print(json.dumps([r.as_json() for r in results], indent=1))
    else:
        t = Table(title="proof obligations")
        for col in ("obligation", "outcome", "seconds", "preset", "clause"):
            t.add_column(col)
        for r in results:
            style = {"proved": "green", "counterexample": "red"}.get(r.outcome, "yellow")
            t.add_row(r.name, f"[{style}]{r.outcome}[/]", f"{r.seconds:.3f}", r.preset, r.clause)
        out.print(t)
        out.print(f"total: {len(results)} obligations, {summary_text(results)}, "
                  f"{sum(r.seconds for r in results):.1f} s solver time")
        for p in paths:
            out.print(f"counterexample saved: {p} (t1virtio replay {p})")
        for r in results:
            if r.detail:
                out.print(f"{r.name}: {r.detail}")
    if any(r.outcome != "proved" for r in results):
        raise Failure(f"{sum(r.outcome != 'proved' for r in results)} obligation(s) not proved")


def _fuzz_one(name: str, examples: Optional[int], minutes: Optional[float], seed: int, p,
              jobs: int = 1, preset: Optional[str] = None, scheduler: Optional[str] = None,
              database: Optional[str] = None):
    from t1virtio.machines import runner
    task = p.add_task(f"fuzz {name}", total=examples)
    if scheduler:
        from t1virtio import dist
        try:
            res = dist.fuzz(name, scheduler, max(jobs, 2), examples=examples, minutes=minutes, seed=seed,
                            preset=preset, database=database, progress=lambda n: p.advance(task, n))
        except dist.DistError as e:
            raise _dist_failure(e) from None
    elif jobs > 1:
        res = runner.fuzz_parallel(name, jobs, examples=examples, minutes=minutes, seed=seed,
                                   progress=lambda n: p.advance(task, n), preset=preset)
    else:
        res = runner.fuzz(name, examples=examples, minutes=minutes, seed=seed,
                          progress=lambda n: p.advance(task, n), preset=preset, database=database)
    path = runner.save(res.failure, REGRESSIONS) if res.failure else None
    return res, path


@app.command()
def fuzz(machine: Optional[str] = typer.Option(None, "--machine", help="machine name (default: all)"),
         examples: Optional[int] = typer.Option(None, "--examples", min=1, help="number of examples"),
         minutes: Optional[float] = typer.Option(None, "--minutes", min=0.01, help="run for this long instead"),
         seed: int = typer.Option(0, "--seed", help="first seed"),
         jobs: int = typer.Option(1, "--jobs", min=1, help="worker processes per machine (each on its own seed range)"),
         preset: str = typer.Option("small", "--preset", help="table sizes: small (proof sizes) or linux (Linux's: "
                                                                "32768-slot pools, 256-entry queues)"),
         scheduler: Optional[str] = typer.Option(None, "--scheduler", help="a Dask scheduler address, or local:N "
                                                 "(the [dist] extra); --jobs seed ranges per machine (at least 2)"),
         database: Optional[str] = typer.Option(None, "--database", help="a shared Hypothesis example database: a "
                                                "directory on shared storage, or redis://HOST:PORT"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Run Hypothesis stateful machines; shrink, print and save every failure."""
    from t1virtio.machines import load, names
    from t1virtio.preset import by_name
    todo = [machine] if machine else names()
    for n in todo:
        load(n)
    try:
        size = by_name(preset)
    except KeyError as e:
        raise Failure(str(e.args[0]), 2) from None
    from t1virtio.machines.common import size_limit
    limited = {n: size_limit(load(n), size) for n in todo}
    if machine and limited[machine]:
        raise Failure(limited[machine], 2)
    if examples is None and minutes is None:
        examples = 500
    rows = []
    with _progress() as p:
        for n in todo:
            if limited[n]:
                err.print(f"not run: {limited[n]}", highlight=False)
                continue
            rows.append(_fuzz_one(n, examples, minutes, seed, p, jobs, preset, scheduler, database))
    if as_json:
        print(json.dumps([{"machine": r.machine, "preset": preset, "examples": r.examples, "seconds": round(r.seconds, 2),
                           "failure": r.failure, "saved": str(pth) if pth else None} for r, pth in rows]
                         + [{"machine": n, "preset": preset, "examples": 0, "not_run": why}
                            for n, why in limited.items() if why], indent=1))
    else:
        for r, pth in rows:
            if r.failure:
                out.print(f"[red]{r.machine}: FAILED[/] after {r.examples} examples: {r.failure['error']}")
                out.print(r.failure["program"])
                out.print(f"saved: {pth} (t1virtio replay {pth})")
            else:
                out.print(f"{r.machine}: {r.examples} examples, nothing found ({r.seconds:.1f} s)")
    if any(r.failure for r, _ in rows):
        raise Failure("a machine found a failure")


def _bad(file: Path, msg: object) -> Failure:
    """A refused replay file: one line (file content shown as text, never as markup), exit status 2."""
    from rich.markup import escape

    from t1virtio.replayfile import one_line
    return Failure(escape(one_line(f"{file}: {msg}", 400)), 2)


def _replay_counterexample(file: Path, data: dict) -> str | None:
    """Check that a counterexample fits its obligation, then run it on the concrete model (``engine.replay``)."""
    from t1virtio.proofs import engine
    try:
        ob = engine.find(data["obligation"])
    except KeyError:
        raise _bad(file, f"no obligation named {data['obligation']!r}") from None
    if ob.component != data["component"] or ob.kind != data["kind"] or ob.clause != data["clause"]:
        raise _bad(file, f"obligation {ob.name} is a {ob.kind} obligation of {ob.component} for clause {ob.clause}, "
                         f"not a {data['kind']} one of {data['component']} for {data['clause']}")
    need = {"init": ("state",), "preserve": ("state", "args"), "rule": ("state", "args"), "index": ("state", "args")}
    missing = [k for k in need.get(ob.kind, ()) if k not in data]
    if missing:
        raise _bad(file, f"a {ob.kind} counterexample needs field {missing[0]!r}")
    if ob.op is not None and "args" in data:
        kinds = ob.op.args
        if set(data["args"]) != set(kinds):
            raise _bad(file, f"arguments {sorted(data['args'])} are not those of {ob.op.name} {sorted(kinds)}")
        for k, v in data["args"].items():
            kind = kinds[k]
            ok = (type(v) is bool if kind == "bool" else type(v) is int if kind == "int"
                  else type(v) is int and 0 <= v < 1 << int(kind))
            if not ok:
                raise _bad(file, f"argument {k}={v!r} is not a {kind if kind in ('bool', 'int') else f'{kind}-bit'} value")
    try:
        clause, story = engine.replay(data)
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as e:
        raise _bad(file, f"does not fit obligation {ob.name} ({type(e).__name__}: {e})") from None
    out.print(story, markup=False, highlight=False)
    return clause


def _replay_regression(file: Path, data: dict) -> tuple[str | None, BaseException | None, str]:
    """Run a regression's steps on its machine (``runner.replay``), printing each step as it runs."""
    from t1virtio.machinesteps import Refused
    from t1virtio.machines import runner
    out.print(f"machine {data['machine']}, preset {data['preset']}, {len(data.get('steps', []))} steps "
              f"(found with clause {data['clause']}, seed {data['seed']})", markup=False, highlight=False)
    try:
        res = runner.replay(data, on_step=lambda c: out.print(f"  {c.index}: {c.show()}", markup=False,
                                                              highlight=False))
    except Refused as e:
        raise _bad(file, e) from None
    return res.clause, res.error, res.where


@app.command()
def replay(file: Path = typer.Argument(..., help="a counterexample or regression JSON file"),
           as_json: bool = typer.Option(False, "--json", help="print {file, format, result, clause, where} as JSON "
                                        "(the steps go to stderr)")) -> None:
    """Replay a counterexample or regression file on the concrete model; print the failing clause.

    The file is data (docs/formats/README.md): it is validated against its format's JSON Schema and
    checked against the obligation or machine it names before anything runs; nothing in it is executed.
    """
    global out
    from t1virtio import replayfile
    try:
        data = replayfile.read(file)
    except FileNotFoundError:
        raise _bad(file, "no such file") from None
    except PermissionError:
        raise _bad(file, "not readable (permission denied)") from None
    except replayfile.BadFile as e:
        raise _bad(file, e) from None
    error, where = None, ""
    shown, out = out, (err if as_json else out)
    try:
        if data["format"] == replayfile.COUNTEREXAMPLE:
            clause = _replay_counterexample(file, data)
        else:
            clause, error, where = _replay_regression(file, data)
    finally:
        out = shown
    result = "fails" if clause or error is not None else "passes"
    if as_json:
        print(json.dumps({"file": str(file), "format": data["format"], "result": result, "clause": clause,
                          "error": None if error is None else f"{type(error).__name__}: {error}",
                          "where": where or None}, indent=1))
    if clause:
        from t1virtio.specs import clauses
        c = clauses.get(clause)
        if not as_json:
            out.print(f"fails: {clause} ({c.source}, {c.section}): {c.text}" + (f" [{where}]" if where else ""),
                      markup=False, highlight=False)
        raise Failure(f"replay fails clause {clause}")
    if error is not None:
        if not as_json:
            out.print(f"fails at {where}: {type(error).__name__}: {error}", markup=False, highlight=False)
        raise Failure(f"replay fails at {where.split(':')[0]} with {type(error).__name__} (no clause)")
    if not as_json:
        out.print("replay passes: no clause fails on the current model")


@app.command()
def verify(jobs: int = typer.Option(2, "--jobs", min=1),
           examples: int = typer.Option(200, "--examples", min=1, help="examples per machine"),
           as_json: bool = typer.Option(False, "--json", help="print the rows as JSON instead of a table")) -> None:
    """The main job: every proof, a short fuzz run of every machine, and the end-to-end scenario.

    Every part has a row: one not built yet says so (and does not fail the job); one that fails to import
    is an error."""
    from t1virtio.machines import names
    t0 = time.perf_counter()
    results = _prove(None, jobs, 60.0)
    _save_counterexamples(results)
    rows = [("proofs", "ok" if all(r.outcome == "proved" for r in results) else "FAILED", summary_text(results))]
    with _progress() as p:
        for n in names():
            res, path = _fuzz_one(n, examples, None, 0, p)
            rows.append((f"fuzz {n}", "FAILED" if res.failure else "ok",
                         f"{res.examples} examples, " + (f"failed: {res.failure['clause']}, saved as {path}"
                                                         if res.failure else "nothing found")))
    rows.append(_scenario())
    seconds = time.perf_counter() - t0
    if as_json:
        print(json.dumps({"seconds": round(seconds, 1), "ok": not any(r[1] in FAILING for r in rows),
                          "rows": [{"check": c, "result": r, "detail": d} for c, r, d in rows]}, indent=1))
    else:
        t = Table(title=f"t1virtio verify ({seconds:.0f} s)")
        for col in ("check", "result", "detail"):
            t.add_column(col)
        colour = {"ok": "green", NOT_BUILT: "yellow"}
        for r in rows:
            t.add_row(r[0], f"[{colour.get(r[1], 'red')}]{r[1]}[/]", r[2])
        out.print(t)
    if any(r[1] in FAILING for r in rows):
        raise Failure("verify: something does not hold")


NOT_BUILT = "not built"
FAILING = ("FAILED", "ERROR")


@app.command()
def clauses(pattern: Optional[str] = typer.Argument(None, help="substring of clause ids (case-insensitive)"),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """List registered clauses (id, kind, source, section, text): what an error or a failed check cites."""
    from t1virtio.specs import clauses as registry
    rows = [c for c in registry.CLAUSES.values() if not pattern or pattern.lower() in c.id.lower()]
    if not rows:
        raise Failure(f"no clause id contains {pattern!r}", 2)
    if as_json:
        print(json.dumps([{"id": c.id, "kind": c.kind, "source": c.source, "section": c.section, "text": c.text}
                          for c in rows], indent=1))
        return
    t = Table(title=f"{len(rows)} clause(s)")
    for col in ("id", "kind", "section", "text"):
        t.add_column(col, overflow="fold")
    for c in sorted(rows, key=lambda c: c.id):
        t.add_row(c.id, c.kind, c.section, c.text)
    out.print(t)


class _BenchProgress:
    """Bench progress on stderr: a rich bar on a terminal, else one plain line every few seconds at most."""

    def __init__(self):
        self.tty, self.bar, self.task, self.last = sys.stderr.isatty(), None, None, 0.0

    def __enter__(self):
        if self.tty:
            self.bar = _progress().__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.bar:
            if self.task is None:
                self.task = self.bar.add_task("bench", total=total)
            self.bar.update(self.task, completed=done, description=f"bench {what}")
        elif time.monotonic() - self.last >= 5 and done < total:
            self.last = time.monotonic()
            print(f"bench: {done}/{total} cells, now {what}", file=sys.stderr, flush=True)


@app.command()
def bench(model: bool = typer.Option(True, "--model/--no-model", help="measure the model side (default on)"),
          sizes: Optional[str] = typer.Option(None, "--sizes", help="comma-separated pool slots (swiotlb) or queue sizes"),
          component: Optional[str] = typer.Option(None, "--component", help="swiotlb, split or packed (default: all)"),
          occupancy: Optional[str] = typer.Option(None, "--occupancy", help="swiotlb occupancies in percent (default 0,50,90)"),
          budget: Optional[float] = typer.Option(None, "--budget", help="seconds for the model's timed part of a cell"),
          setup_budget: Optional[float] = typer.Option(None, "--setup-budget",
                                                       help="seconds for a cell's untimed model setup (pool prefill)"),
          quick: bool = typer.Option(False, "--quick", help="much shorter budgets (seconds in all)"),
          as_json: bool = typer.Option(False, "--json", help="print a JSON document instead of tables"),
          fast: bool = typer.Option(True, "--fast/--no-fast", help="measure the generated fast path (default on)"),
          fast_vs_linux: Optional[int] = typer.Option(None, "--fast-vs-linux", help="instead of timing: compare the "
                                                      "fast path with Linux 6.1 over N random ops (swiotlb slot "
                                                      "choices; with --component split: ring bytes and "
                                                      "notification decisions at queue size 32768)")) -> None:
    """Model ops/s at real sizes beside Linux 6.1 (C loop and ctypes) on the same op sequences."""
    import os

    from t1virtio import bench as b
    if fast_vs_linux is not None and component == "split":
        try:
            res = b.fast_vs_linux_rings(fast_vs_linux)
        except Exception as e:  # noqa: BLE001 - one line
            raise Failure(f"bench --fast-vs-linux: {type(e).__name__}: {e}") from None
        print(json.dumps(res, indent=1) if as_json else
              f"fast split ring vs Linux 6.1 (virtio_ring.c + vringh.c, queue size {res['size']}): {res['ops']} ops, "
              f"{res['mismatches']} mismatches, {res['seconds']:.1f} s")
        if res["mismatches"]:
            raise Failure(f"bench --fast-vs-linux: first mismatch {res['first_mismatch']}")
        return
    if fast_vs_linux is not None:
        try:
            res = b.fast_vs_linux(fast_vs_linux)
        except Exception as e:  # noqa: BLE001 - one line
            raise Failure(f"bench --fast-vs-linux: {type(e).__name__}: {e}") from None
        print(json.dumps(res, indent=1) if as_json else
              f"fast path vs Linux 6.1: {res['ops']} ops, {res['maps']} maps, {res['failed_maps']} refused, "
              f"{res['unmaps']} unmaps, {res['mismatches']} mismatches, {res['seconds']:.1f} s")
        if res["mismatches"]:
            raise Failure(f"bench --fast-vs-linux: first mismatch {res['first_mismatch']}")
        return
    try:
        cfg = b.parse(component, sizes, occupancy, model, quick, budget, setup_budget, fast)
    except ValueError as e:
        raise Failure(str(e), 2) from None
    with _BenchProgress() as progress:
        doc = b.run(cfg, progress)
    if as_json:
        print(json.dumps(doc, indent=1))
    else:
        b.render(doc, out)
    bad = b.problems(doc, ci=bool(os.environ.get("CI")))
    if bad:
        raise Failure(f"bench: {bad[0]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))


def _scenario(module: str = "t1virtio.system") -> tuple[str, str, str]:
    """The end-to-end scenario's row: run it if the system composition exists; a module that is absent is a
    row saying it is not built yet; one that exists but fails to import or to run is an error."""
    import importlib
    import importlib.util
    name = "end-to-end scenario"
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        return (name, NOT_BUILT, f"{module} does not exist yet (the whole-system composition, issue 13)")
    try:
        res = importlib.import_module(module).scenario()
    except Exception as e:  # noqa: BLE001 - an import or run failure is this row's error, shown, never hidden
        return (name, "ERROR", f"{module}: {type(e).__name__}: {e}")
    return (name, "ok" if res.ok else "FAILED", res.detail)


def _register_parts() -> None:
    """Commands that live with their part (the oracle, the whole system); an import error here is loud."""
    from t1virtio.backends import cli as backends_cli
    from t1virtio.oracle import cli as oracle_cli
    oracle_cli.register(app)
    backends_cli.register(app)


_register_parts()


def main() -> None:
    """Entry point: run the app; print a failure as one line."""
    try:
        app(standalone_mode=False)
    except Failure as e:
        err.print(f"error: {e}", highlight=False)
        sys.exit(e.code)
    except KeyError as e:
        err.print(f"error: {e.args[0]}", highlight=False)
        sys.exit(2)
    except Exception as e:  # click usage errors and anything unexpected: one line, never a traceback
        import click
        if isinstance(e, click.exceptions.Exit):
            sys.exit(e.exit_code)
        if isinstance(e, click.ClickException) or hasattr(e, "format_message"):
            err.print(f"error: {e.format_message()}", highlight=False)
            sys.exit(2)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(130)
        err.print(f"error: {type(e).__name__}: {e}", highlight=False)
        sys.exit(1)
