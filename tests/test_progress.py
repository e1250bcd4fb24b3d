"""Progress and readable output (issue 14): plain lines off a terminal, rows a person can read."""
from __future__ import annotations

import io
from types import SimpleNamespace

from t1virtio import cli
from t1virtio.progress import Reporter


def test_plain_progress_prints_at_most_every_few_seconds():
    buf = io.StringIO()
    with Reporter(stream=buf, every=3600) as p:        # never due: nothing printed
        t = p.add_task("proving", total=10)
        for _ in range(10):
            p.advance(t)
    assert buf.getvalue() == ""
    with Reporter(stream=buf, every=0) as p:           # always due: one line per advance
        t = p.add_task("proving", total=4)
        for _ in range(4):
            p.advance(t)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("proving: 4/4,") and "left" in lines[1]


def test_pipe_gets_no_bar():
    assert Reporter(stream=io.StringIO()).bar is None


def _r(name, outcome):
    return SimpleNamespace(name=name, outcome=outcome)


def test_proof_summary_reads_as_text():
    assert cli.summary_text([_r("a", "proved")] * 698) == "698 proved"
    text = cli.summary_text([_r("a", "proved")] * 695 + [_r(f"x{i}", "unknown") for i in range(3)])
    assert text == "695 proved, 3 unknown (timeouts: x0, x1, x2)"
    assert "{" not in cli.summary_text([_r("b", "counterexample")])
