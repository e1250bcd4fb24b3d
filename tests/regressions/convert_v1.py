"""Convert regression files of format t1virtio-regression/1 (steps as a Python program) to t1virtio-regression/2.

    python tests/regressions/convert_v1.py FILE...      # rewrites each file in place

Format 1 kept a failure's steps as the program Hypothesis printed, and replay ran it with ``exec``.
This reads the program with ``ast`` (``t1virtio.machinesteps.from_program``: parsed, never run) into
steps, checks them against the machine's rules, and writes format 2 with the program kept as a comment.
A program that is not data (bundle variables, objects built by calls, ``st.data()`` draws) is reported
and its file left as it was. Exit status: 0 if every file converted, 2 otherwise.
"""
from __future__ import annotations

import sys
from pathlib import Path

from t1virtio import machinesteps, replayfile
from t1virtio.machines import load

V1 = "t1virtio-regression/1"
V1_FIELDS = {"format", "machine", "preset", "seed", "clause", "error", "program"}


def convert(old: dict) -> dict:
    """The format-2 record of a format-1 record; raises ``ValueError`` (``Refused``) when it cannot be data."""
    if not isinstance(old, dict) or old.get("format") != V1:
        raise ValueError(f"not a {V1} file")
    extra = set(old) - V1_FIELDS
    if extra or not isinstance(old.get("machine"), str) or not isinstance(old.get("program"), str):
        raise ValueError(f"not a {V1} file (fields {sorted(old)})")
    cls = load(old["machine"])
    new = {"format": replayfile.REGRESSION, "machine": old["machine"], "preset": old.get("preset") or "SMALL",
           "seed": old.get("seed"), "clause": old.get("clause")}
    if "error" in old:
        new["error"] = old["error"]
    new["steps"] = machinesteps.from_program(cls, old["program"])
    new["program"] = old["program"]
    return replayfile.validate(new)


def main(paths: list[str]) -> int:
    bad = 0
    for p in map(Path, paths):
        try:
            new = convert(replayfile.parse_json(p.read_text(encoding="utf-8")))
        except (OSError, KeyError, ValueError) as e:
            print(f"{p}: not converted: {replayfile.one_line(e)}", file=sys.stderr)
            bad += 1
            continue
        p.write_text(replayfile.dumps(new))
        print(f"{p}: {len(new['steps'])} steps")
    return 2 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
