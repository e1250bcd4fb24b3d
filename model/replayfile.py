"""Replay files are data: read one within limits, parse it as JSON, validate it against its format's schema.

Regression files (``t1virtio-regression/2``) and proof counterexamples (``t1virtio-counterexample/1``)
are passed around and replayed by people who did not write them, so reading one never runs anything
it holds: the bytes are read up to ``MAX_BYTES``, parsed as JSON with integers of at most
``MAX_INT_DIGITS`` digits, no duplicate keys, no NaN or infinity, at most ``MAX_DEPTH`` levels of
nesting, at most ``MAX_VALUES`` values and integers within 2**64 (checked before the schema, whose
validation costs about 50 us a value), then validated against the JSON Schema of the format the file names
(``docs/formats/*.schema.json``; ``docs/formats/README.md``). Every refusal is a ``BadFile`` whose
message is one line. Nothing read here reaches ``exec``, ``eval``, ``pickle`` or ``import``.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
from pathlib import Path
from typing import Any

REGRESSION = "t1virtio-regression/2"
COUNTEREXAMPLE = "t1virtio-counterexample/1"
SCHEMAS = {REGRESSION: "regression-2.schema.json", COUNTEREXAMPLE: "counterexample-1.schema.json"}
RETIRED = {"t1virtio-regression/1": "it holds its steps as a Python program, which replay no longer runs; "
                                    "convert it with tests/regressions/convert_v1.py"}
FORMATS_DIR = Path(__file__).resolve().parents[1] / "docs" / "formats"

MAX_BYTES = 2 * 1024 * 1024     # a file; a regression of 100 steps is a few 10 kB, a counterexample a few kB
MAX_DEPTH = 32                  # nesting of arrays and objects
MAX_INT_DIGITS = 40             # digits of an integer literal (2**64 has 20; schemas bound the value further)
INT_LIMIT = 2 ** 64             # |integer| anywhere in a file
# JSON values (objects, arrays, strings, numbers...) in a file, counted before the schema runs (validating
# costs up to 100 us a value): a campaign regression holds a few thousand, the largest proof state 535
MAX_VALUES = 20_000
MAX_MESSAGE = 240               # characters of a refusal message quoting file content


class BadFile(ValueError):
    """A file that is not a valid replay file; the message is one line."""


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` with control characters and line breaks shown as spaces, cut to ``limit`` characters."""
    text = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+", " ", str(text))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read(path: str | Path) -> dict:
    """Read, parse and validate the replay file at ``path``; raise ``BadFile`` (or ``FileNotFoundError``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)     # a FIFO without a writer must not block the open
        with os.fdopen(fd, "rb") as f:
            os.set_blocking(fd, True)
            raw = f.read(MAX_BYTES + 1)
    except (FileNotFoundError, PermissionError):
        raise
    except OSError as e:
        raise BadFile(f"cannot read it ({type(e).__name__}: {one_line(e.strerror or e)})") from None
    if len(raw) > MAX_BYTES:
        raise BadFile(f"larger than {MAX_BYTES // (1024 * 1024)} MiB; not a replay file")
    return loads(raw)


def loads(raw: bytes | str) -> dict:
    """Parse and validate a replay file's content; raise ``BadFile``."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_BYTES:
            raise BadFile(f"larger than {MAX_BYTES // (1024 * 1024)} MiB; not a replay file")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadFile(f"not a JSON file (not UTF-8 at byte {e.start})") from None
    return validate(parse_json(raw))


class _Refusal(Exception):
    """Raised by the parser hooks; turned into ``BadFile`` by ``parse_json``."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refusal(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float:
    if len(text) > 64:
        raise _Refusal(f"a number written with {len(text)} characters")
    x = float(text)
    if not math.isfinite(x):
        raise _Refusal(f"a number out of range ({one_line(text, 40)})")
    return x


def _constant(text: str) -> Any:
    raise _Refusal(f"{text} (not JSON)")


def _object(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _Refusal(f"the key {one_line(repr(k), 60)} twice in one object")
        out[k] = v
    return out


def parse_json(text: str) -> Any:
    """Parse ``text`` as strict JSON within the limits above; raise ``BadFile``."""
    try:
        doc = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant,
                         object_pairs_hook=_object)
    except _Refusal as e:
        raise BadFile(f"not a replay file: it holds {e}") from None
    except RecursionError:
        raise BadFile(f"not a replay file: nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError as e:
        what = "truncated" if e.pos >= len(text.rstrip()) else "malformed"
        raise BadFile(f"not a JSON file ({what} at line {e.lineno} column {e.colno}: {e.msg})") from None
    except ValueError as e:         # e.g. a lone surrogate the decoder refuses
        raise BadFile(f"not a JSON file ({one_line(e, 80)})") from None
    _walk(doc)
    return doc


def _walk(doc: Any, limit: int = MAX_VALUES) -> None:
    """Check the limits every format shares, without recursion: nesting, number of values, integer size."""
    count, todo = 0, [(doc, 1)]
    while todo:
        x, d = todo.pop()
        count += 1
        if count > limit:
            raise BadFile(f"not a replay file: more than {limit} JSON values")
        if isinstance(x, (list, dict)):
            if d > MAX_DEPTH:
                raise BadFile(f"not a replay file: nested more than {MAX_DEPTH} levels deep")
            todo.extend((y, d + 1) for y in (x.values() if isinstance(x, dict) else x))
        elif type(x) is int and not -INT_LIMIT <= x <= INT_LIMIT:
            raise BadFile(f"not a replay file: an integer out of range (|x| <= 2**64): {one_line(str(x), 30)}")


@functools.cache
def schema(fmt: str) -> dict:
    """The JSON Schema of format ``fmt`` (from ``docs/formats/``)."""
    path = FORMATS_DIR / SCHEMAS[fmt]
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise BadFile(f"the schema of {fmt} is missing ({path}); install t1virtio from its source tree "
                      "(pip install -e .)") from None


@functools.cache
def _validator(fmt: str) -> Any:
    import jsonschema
    s = schema(fmt)
    cls = jsonschema.validators.validator_for(s)
    cls.check_schema(s)
    return cls(s)


def validate(doc: Any) -> dict:
    """Check a parsed document against the schema of the format it names; return it or raise ``BadFile``."""
    _walk(doc)
    if not isinstance(doc, dict):
        raise BadFile(f"not a replay file: a JSON {_json_type(doc)}, not an object")
    fmt = doc.get("format")
    if not isinstance(fmt, str):
        raise BadFile("not a replay file: no \"format\" field naming one of " + ", ".join(sorted(SCHEMAS)))
    if fmt in RETIRED:
        raise BadFile(f"format {fmt} is no longer replayed: {RETIRED[fmt]}")
    if fmt not in SCHEMAS:
        raise BadFile(f"unknown format {one_line(repr(fmt), 80)}; this t1virtio reads {', '.join(sorted(SCHEMAS))}")
    errors = sorted(_validator(fmt).iter_errors(doc), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise BadFile(f"does not match {fmt} ({SCHEMAS[fmt]}): {_describe(errors[0])}")
    return doc


def _describe(e: Any) -> str:
    """One line for a schema error: where, and what (quoting at most a little of the file)."""
    where = "/".join(str(p) for p in e.absolute_path) or "the top level"
    v = e.validator
    if v == "additionalProperties":
        extra = sorted(set(e.instance) - set(e.schema.get("properties", {})))
        what = f"unexpected field(s) {', '.join(one_line(repr(k), 40) for k in extra[:3])}"
    elif v == "required":
        what = one_line(e.message, 120)
    elif v in ("maxLength", "maxItems", "maxProperties"):
        what = f"longer than {e.validator_value}"
    elif v in ("minimum", "maximum"):
        what = f"out of range ({'at least' if v == 'minimum' else 'at most'} {e.validator_value})"
    elif v == "type":
        what = f"a JSON {_json_type(e.instance)} where {e.validator_value} is expected"
    elif v == "oneOf" and all("required" in sub for sub in e.validator_value):
        what = f"needs exactly one of {' and '.join(repr(sub['required'][0]) for sub in e.validator_value)}"
    elif v in ("anyOf", "oneOf"):
        inner = [c for c in (e.context or ()) if c.validator not in ("type", "not", "anyOf", "oneOf", "$ref")]
        types = [sub["type"] for sub in e.validator_value if isinstance(sub.get("type"), str)]
        what = (_describe(inner[0]).split(": ", 1)[1] if inner and v == "anyOf"
                else f"a JSON {_json_type(e.instance)} where {' or '.join(types)} is expected" if types
                else f"a JSON {_json_type(e.instance)} that is none of the allowed forms")
    else:
        what = f"{v} {one_line(repr(e.validator_value), 80)} not met by {one_line(repr(e.instance), 60)}"
    return f"at {one_line(where, 80)}: {what}"


def _json_type(x: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(x), type(x).__name__)


def dumps(doc: dict) -> str:
    """A file's text: one field per line, each step of ``steps`` on a line of its own."""
    lines = []
    for k, v in doc.items():
        if k == "steps" and isinstance(v, list) and v:
            body = ",\n".join(f"    {json.dumps(s)}" for s in v)
            lines.append(f"  {json.dumps(k)}: [\n{body}\n  ]")
        else:
            lines.append(f"  {json.dumps(k)}: {json.dumps(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"
