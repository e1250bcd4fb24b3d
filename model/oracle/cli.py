"""Commands of the conformance oracle (``t1virtio oracle check``, ``t1virtio vectors export``)."""
from __future__ import annotations

import json
import sys

import typer


def _fail_input(msg: str, as_json: bool) -> None:
    from t1virtio.oracle.trace import one_line
    line = one_line(msg, 400)
    if as_json:
        print(json.dumps({"conforms": None, "unusable": line}))
    print(f"oracle: unusable input: {line}", file=sys.stderr)
    sys.exit(2)


def register(app: typer.Typer) -> None:
    """Add the oracle's commands to the ``t1virtio`` app."""
    oracle = typer.Typer(help="Check another implementation's traces against the model (docs/oracle.md).",
                         no_args_is_help=True)
    vectors = typer.Typer(help="Conformance vectors for implementations in any language (docs/oracle.md).",
                          no_args_is_help=True)
    app.add_typer(oracle, name="oracle")
    app.add_typer(vectors, name="vectors")

    @oracle.command("check")
    def check_cmd(trace: str = typer.Argument(..., help="a t1virtio-trace/1 file (JSON lines)"),
                  mode: str = typer.Option(None, "--mode", help="legality (any conforming choice) or exact (the "
                                                                  "model's policy); default: the header's, else legality"),
                  as_json: bool = typer.Option(False, "--json", help="print one JSON object")) -> None:
        """Replay TRACE; report the first violation (exit 1), conformance (0) or unusable input (2)."""
        from t1virtio.oracle.check import check_file
        from t1virtio.oracle.trace import MODES, TraceError
        if mode is not None and mode not in MODES:
            _fail_input(f"--mode {mode!r} is not one of {', '.join(MODES)}", as_json)
        from t1virtio.progress import Reporter
        try:
            with Reporter() as bar:
                task = bar.add_task(f"oracle check {trace}")
                rep = check_file(trace, mode, progress=lambda n: bar.advance(task, n))
        except TraceError as e:
            _fail_input(str(e), as_json)
        except RecursionError:
            _fail_input("nested too deeply", as_json)
        if as_json:
            print(json.dumps(rep.as_dict()))
        else:
            rate = rep.steps / rep.seconds if rep.seconds else 0.0
            if rep.ok:
                print(f"{trace}: conforms ({rep.component}, {rep.mode} mode, {rep.steps} steps, {rate:,.0f} steps/s)")
            else:
                v = rep.violation.as_dict()
                print(f"{trace}: VIOLATION at step {v['step']} (line {v['line']}, op {v['op']})")
                print(f"  clause:   {v['clause']}  [{v['section']}] {v['text'] or ''}")
                print(f"  expected: {json.dumps(v['expected'])}")
                print(f"  observed: {json.dumps(v['observed'])}")
                if v["detail"]:
                    print(f"  detail:   {v['detail']}")
                print(f"  context:  {json.dumps(v['context'])}")
        sys.stdout.flush()
        sys.exit(0 if rep.ok else 1)

    @vectors.command("export")
    def export_cmd(dir: str = typer.Argument(..., help="output directory"),
                   component: list[str] = typer.Option(None, "--component", help="components (default: all)"),
                   count: int = typer.Option(4, "--count", help="random cases per component, beyond the per-clause ones"),
                   seed: int = typer.Option(0, "--seed"),
                   as_json: bool = typer.Option(False, "--json")) -> None:
        """Write a deterministic corpus of conformance vectors (cases: pre-state, operations, post-state or error)."""
        from t1virtio.oracle import vectors as vec
        from t1virtio.oracle.trace import TraceError
        try:
            summary = vec.export(dir, components=component or None, count=count, seed=seed)
        except TraceError as e:
            _fail_input(str(e), as_json)
        if as_json:
            print(json.dumps(summary))
        else:
            print(f"wrote {summary['cases']} cases to {dir} ({', '.join(summary['components'])}); "
                  f"unreachable: {len(summary['unreachable'])} (see README.md)")
