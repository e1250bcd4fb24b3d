"""Trace files: versioned JSON lines (``t1virtio-trace/1``, ``docs/formats/trace.schema.json``).

Line 1 is the header; every other line is one operation. Reading is bounded and cheap: the file is read
at most ``MAX_BYTES``, one line at most ``MAX_LINE``, at most ``MAX_STEPS`` operations; each line is strict
JSON (no NaN/Infinity, no duplicate keys, integers of at most ``MAX_INT_DIGITS`` digits and within
``|x| <= 2**64``). The header is validated against the JSON Schema; operation lines are checked by the
component's own argument table (names, types, ranges), not by ``jsonschema`` (which would cost more than
the model's step). Every refusal is a ``TraceError`` whose message names the line and what was wrong.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

FORMAT = "t1virtio-trace/1"
VECTORS_FORMAT = "t1virtio-vectors/1"
KNOWN_FORMATS = (FORMAT,)
MAX_BYTES = 256 * 1024 * 1024    # a trace file (a million steps with observations is ~100 MB)
MAX_LINE = 1024 * 1024           # one line (ring memory observations of a 32768-entry queue fit)
MAX_STEPS = 2_000_000            # operations in one trace
MAX_INT_DIGITS = 40
INT_LIMIT = 2 ** 64
MAX_DEPTH = 16
MAX_HEX = 2 * MAX_LINE           # hex characters in one value
MODES = ("legality", "exact")


class TraceError(Exception):
    """The trace cannot be used (exit status 2): the message is one line naming what was wrong."""


def one_line(text: str, limit: int = 240) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    t = " ".join(str(text).split())
    return t if len(t) <= limit else t[:limit - 3] + "..."


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise TraceError(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    v = int(text)
    if not -INT_LIMIT <= v <= INT_LIMIT:
        raise TraceError(f"integer {v} outside |x| <= 2**64")
    return v


def _float(text: str) -> float:
    raise TraceError(f"a non-integer number {one_line(text, 40)} (traces hold integers only)")


def _constant(text: str) -> Any:
    raise TraceError(f"{text} is not JSON")


def _object(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise TraceError(f"key {dup!r} twice in one object")
    return d


_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant, object_pairs_hook=_object)


def _depth(x: Any, d: int = 0) -> None:
    if d > MAX_DEPTH:
        raise TraceError(f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(x, dict):
        for v in x.values():
            if isinstance(v, (dict, list)):
                _depth(v, d + 1)
    elif isinstance(x, list):
        for v in x:
            if isinstance(v, (dict, list)):
                _depth(v, d + 1)


def parse_line(text: str, lineno: int) -> dict:
    """One line as a JSON object (strict, bounded); ``TraceError`` naming the line otherwise."""
    if len(text) > MAX_LINE:
        raise TraceError(f"line {lineno}: longer than {MAX_LINE} characters")
    try:
        doc = _DECODER.decode(text)
    except TraceError as e:
        raise TraceError(f"line {lineno}: {e}") from None
    except RecursionError:
        raise TraceError(f"line {lineno}: nested too deeply") from None
    except ValueError as e:
        raise TraceError(f"line {lineno}: not JSON ({one_line(e, 80)})") from None
    if not isinstance(doc, dict):
        raise TraceError(f"line {lineno}: a JSON {type(doc).__name__}, not an object")
    if lineno == 1 or "start" in doc or "observe" in doc:
        _depth(doc)
    return doc


def schema_path(name: str = "trace.schema.json") -> Path:
    """The JSON Schema shipped in ``docs/formats/`` (a copy is kept in the package for installed use)."""
    here = Path(__file__).resolve()
    for cand in (here.parents[2] / "docs" / "formats" / name, here.parent / name):
        if cand.is_file():
            return cand
    raise TraceError(f"schema {name} not found")


_SCHEMA: dict = {}


def header_schema() -> dict:
    """The schema of a header line (``$defs.header`` of ``trace.schema.json``)."""
    if not _SCHEMA:
        doc = json.loads(schema_path().read_text())
        _SCHEMA.update(doc)
    return _SCHEMA


def validate_header(doc: dict) -> dict:
    """Check a header's format version, then its schema (``jsonschema``, once per trace)."""
    fmt = doc.get("format")
    if fmt not in KNOWN_FORMATS:
        if isinstance(fmt, str) and fmt.startswith("t1virtio-trace/"):
            raise TraceError(f"line 1: format {one_line(fmt, 60)!r} is not one this t1virtio reads "
                             f"({', '.join(KNOWN_FORMATS)})")
        raise TraceError(f"line 1: not a t1virtio trace header (format {one_line(repr(fmt), 60)}; expected {FORMAT!r})")
    import jsonschema
    full = header_schema()
    sch = {"$schema": full.get("$schema"), "$defs": full["$defs"], "$ref": "#/$defs/header"}
    try:
        jsonschema.validate(doc, sch)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "header"
        raise TraceError(f"line 1: {where}: {one_line(e.message, 160)}") from None
    return doc


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` of a trace file, bounded by ``MAX_BYTES`` and ``MAX_STEPS``; blank lines skipped."""
    p = Path(path)
    try:
        f = open(p, "rb")
    except OSError as e:
        raise TraceError(f"cannot read {path}: {e.strerror or e}") from None
    total = 0
    with f:
        for lineno in range(1, MAX_STEPS + 2):      # bound: the header and MAX_STEPS operations
            raw = f.readline(MAX_LINE + 2)
            if not raw:
                return
            total += len(raw)
            if total > MAX_BYTES:
                raise TraceError(f"larger than {MAX_BYTES // (1024 * 1024)} MiB; not a trace this tool reads")
            if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                raise TraceError(f"line {lineno}: longer than {MAX_LINE} characters")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise TraceError(f"line {lineno}: not UTF-8") from None
            if text.strip():
                yield lineno, text
        raise TraceError(f"more than {MAX_STEPS} operations")


def dumps(doc: dict) -> str:
    """One trace line (compact, keys in insertion order)."""
    return json.dumps(doc, separators=(",", ":"))


def write(path: str | Path, header: dict, steps: list[dict]) -> Path:
    """Write a trace file: the header, then one line per step."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w") as f:
        f.write(dumps(header) + "\n")
        for s in steps:
            f.write(dumps(s) + "\n")
    return p
