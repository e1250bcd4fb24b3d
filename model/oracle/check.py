"""``oracle check``: replay a trace against the model, report the first violation.

``Checker(header, mode)`` is incremental: ``step(doc)`` checks one operation line (already parsed) and returns
a ``Violation`` or None. ``check_file`` reads a trace file with the bounded reader of ``trace.py``. Exit codes
of the command: 0 conforms, 1 violation, 2 unusable input (``TraceError``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t1virtio import errors
from t1virtio.oracle import components as comp
from t1virtio.oracle.trace import (KNOWN_FORMATS, MODES, TraceError, header_schema, one_line, parse_line, read_lines,
                                   validate_header)

STEP_KEYS = frozenset(("op", "args", "result", "error", "observe", "note"))

_HEADER_VALIDATOR: list = []


def check_header(doc: dict) -> dict:
    """``validate_header`` with the schema compiled once (``jsonschema.validate`` re-checks the schema itself on
    every call: 0.7 s per header); an invalid header goes through ``validate_header`` for its message."""
    if doc.get("format") in KNOWN_FORMATS:
        if not _HEADER_VALIDATOR:
            import jsonschema
            full = header_schema()
            sch = {"$schema": full.get("$schema"), "$defs": full["$defs"], "$ref": "#/$defs/header"}
            _HEADER_VALIDATOR.append(jsonschema.validators.validator_for(sch)(sch))
        if _HEADER_VALIDATOR[0].is_valid(doc):
            return doc
    return validate_header(doc)


@dataclass
class Report:
    """The outcome of checking one trace."""

    component: str
    mode: str
    steps: int
    seconds: float
    violation: comp.Violation | None = None
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.violation is None

    def as_dict(self) -> dict:
        return {"component": self.component, "mode": self.mode, "steps": self.steps, "seconds": round(self.seconds, 6),
                "conforms": self.ok, "violation": self.violation.as_dict() if self.violation else None,
                "notes": self.notes}


class Checker:
    """Check a trace's operations one at a time against a component runner."""

    def __init__(self, header: dict, mode: str | None = None):
        check_header(header)
        self.header = header
        self.mode = mode or header.get("mode", "legality")
        if self.mode not in MODES:
            raise TraceError(f"mode {self.mode!r} is not one of {MODES}")
        self.component = header["component"]
        cls = comp.RUNNERS.get(self.component)
        if cls is None:
            raise TraceError(f"line 1: unknown component {self.component!r} (known: {', '.join(comp.COMPONENTS)})")
        try:
            self.runner = cls(header)
        except errors.ModelError as e:
            raise TraceError(f"line 1: the header does not make a usable {self.component}: {one_line(e, 160)}") from None
        self.steps = 0

    def parse_step(self, doc: dict, line: int) -> tuple[str, dict, str | None, dict, dict | None]:
        """An operation line's (op, args, error, result, observe), checked cheaply; ``TraceError`` names the fault."""
        r = self.runner
        bad = doc.keys() - STEP_KEYS
        if bad:
            raise TraceError(f"line {line}: unknown field(s) {sorted(one_line(b, 30) for b in bad)} "
                             f"(an operation has {', '.join(sorted(STEP_KEYS))})")
        op = doc.get("op")
        spec = r.OPS.get(op) if isinstance(op, str) else None
        if spec is None:
            raise TraceError(f"line {line}: unknown op {one_line(repr(op), 40)} for {self.component} "
                             f"(known: {', '.join(r.OPS)})")
        args = comp.check_args(spec, doc.get("args", {}), f"line {line}: {op}", r.max_items)
        err = doc.get("error")
        result = doc.get("result")
        if err is not None and result is not None:
            raise TraceError(f"line {line}: both a result and an error")
        if err is not None:
            if not isinstance(err, str) or not 0 < len(err) <= 200:
                raise TraceError(f"line {line}: error must be a clause id or errno-ish name")
            if comp.kind_of(err) == "unknown":
                raise TraceError(f"line {line}: error {one_line(err, 80)!r} is neither a registered clause id nor an "
                                 f"errno-ish name ({', '.join(comp.ERRNO_KINDS)})")
            result = {}
        else:
            result = {} if result is None else result
            if not isinstance(result, dict):
                raise TraceError(f"line {line}: result must be an object")
            keys = r.RESULTS.get(op, {})
            for k, v in result.items():
                if k not in keys:
                    raise TraceError(f"line {line}: {op} has no result {one_line(k, 40)!r} (known: {', '.join(keys) or 'none'})")
                if type(v) not in (int, bool, str, list) or (type(v) is int and not -comp.U64 <= v <= comp.U64):
                    raise TraceError(f"line {line}: result {k!r} has a value of the wrong type")
                if isinstance(v, list) and (len(v) > 65536 or not all(type(x) is int for x in v)):
                    raise TraceError(f"line {line}: result {k!r} must be a list of integers")
            missing = [k for k, req in keys.items() if req and k not in result]
            if missing:
                raise TraceError(f"line {line}: {op} result lacks {', '.join(missing)}")
        observe = doc.get("observe")
        if observe is not None and not isinstance(observe, dict):
            raise TraceError(f"line {line}: observe must be an object")
        return op, args, err, result, observe

    def step(self, doc: dict, line: int | None = None) -> comp.Violation | None:
        """Check one operation; the first violation is returned (later steps are not meaningful after it)."""
        self.steps += 1
        n = self.steps
        line = n + 1 if line is None else line
        op, args, err, result, observe = self.parse_step(doc, line)
        try:
            if self.mode == "exact":
                return self._exact(n, line, op, args, err, result, observe)
            self.runner.legal(op, args, err, result, observe)
        except comp.Flag as f:
            return comp.Violation(n, line, op, f.clause, f.expected, f.observed, f.detail,
                                  {"args": _jsonable(args), **{k: _jsonable(v) for k, v in f.context.items()}})
        except errors.InvariantViolation as e:
            return comp.Violation(n, line, op, e.clause, "a legal state", {"error": err} if err else result,
                                  one_line(e, 200), {"args": _jsonable(args)})
        return None

    def _exact(self, n: int, line: int, op: str, args: dict, err: str | None, result: dict,
               observe: dict | None) -> comp.Violation | None:
        mclause, mine = self.runner.exact(op, args)
        ctx = {"args": _jsonable(args)}
        if mclause is not None:
            if err is None:
                return comp.Violation(n, line, op, mclause, {"error": mclause}, result,
                                      "the model refuses this step; the implementation accepted it", ctx)
            if not comp.same_error(mclause, err):
                return comp.Violation(n, line, op, mclause, {"error": mclause}, {"error": err},
                                      "the implementation refused with another clause", ctx)
        elif err is not None:
            return comp.Violation(n, line, op, comp.HONEST, mine, {"error": err},
                                  "the model accepts this step; the implementation refused it", ctx)
        else:
            for k, v in result.items():
                if k in mine and mine[k] != v:
                    return comp.Violation(n, line, op, comp.REFERENCE, {k: mine[k]}, {k: v},
                                          f"{op} returned {k} = {v!r}; the model (exact policy) returns {mine[k]!r}", ctx)
        if observe:
            diff = self.runner.compare_observe(observe)
            if diff:
                k, m, o = diff
                return comp.Violation(n, line, op, comp.REFERENCE, {k: m}, {k: o},
                                      f"after {op}, observation {k} differs from the model's", ctx)
        return None


def _jsonable(x: Any) -> Any:
    if isinstance(x, bytes):
        return x.hex()
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    return x


PROGRESS_EVERY = 1000      # steps between progress calls


def check_lines(lines: Any, mode: str | None = None, progress: Any = None) -> Report:
    """Check ``(line number, text)`` pairs: the header first, then operations; ``progress(steps)`` is called
    every ``PROGRESS_EVERY`` steps (long traces show progress)."""
    t0 = time.perf_counter()
    it = iter(lines)
    first = next(it, None)
    if first is None:
        raise TraceError("empty file: no header line")
    lineno, text = first
    checker = Checker(parse_line(text, lineno), mode)
    for lineno, text in it:
        v = checker.step(parse_line(text, lineno), lineno)
        if progress is not None and checker.steps % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
        if v is not None:
            return Report(checker.component, checker.mode, checker.steps, time.perf_counter() - t0, v)
    return Report(checker.component, checker.mode, checker.steps, time.perf_counter() - t0)


def check_file(path: str | Path, mode: str | None = None, progress: Any = None) -> Report:
    """Check the trace file at ``path`` (bounded reading; ``TraceError`` for unusable input)."""
    return check_lines(read_lines(path), mode, progress)


def check_trace(header: dict, steps: list[dict], mode: str | None = None) -> Report:
    """Check an in-memory trace (used by live checking and the vectors)."""
    t0 = time.perf_counter()
    checker = Checker(header, mode)
    for i, s in enumerate(steps[: 10_000_000]):
        v = checker.step(s, i + 2)
        if v is not None:
            return Report(checker.component, checker.mode, checker.steps, time.perf_counter() - t0, v)
    return Report(checker.component, checker.mode, checker.steps, time.perf_counter() - t0)
