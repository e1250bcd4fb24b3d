"""Progress of long commands: rich bars on a terminal, else one plain line every few seconds (CI, pipes).

``Reporter`` has the part of rich's ``Progress`` interface the commands use (``add_task``, ``advance``,
``update``); on stderr, so ``--json`` output on stdout stays clean.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

EVERY = 5.0          # seconds between plain progress lines


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal and this is not CI (where bars would only fill the log)."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return stream.isatty() and not ci


class Reporter:
    """Progress of one command: ``with Reporter() as p: t = p.add_task("proving", total=n); p.advance(t)``."""

    def __init__(self, stream: TextIO | None = None, every: float = EVERY, force_plain: bool = False):
        self.stream = stream or sys.stderr
        self.every = every
        self.bar: Any = None
        self.tasks: dict[int, dict] = {}
        self.last = time.monotonic()
        self.t0 = time.monotonic()
        if not force_plain and is_terminal(self.stream):
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TimeRemainingColumn(), console=Console(file=self.stream),
                                transient=True)

    def __enter__(self) -> "Reporter":
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar:
            self.bar.__exit__(*exc)

    def add_task(self, description: str, total: float | None = None) -> int:
        if self.bar:
            return self.bar.add_task(description, total=total)
        k = len(self.tasks)
        self.tasks[k] = {"description": description, "total": total, "completed": 0, "t0": time.monotonic()}
        return k

    def advance(self, task: int, n: float = 1) -> None:
        if self.bar:
            self.bar.advance(task, n)
            return
        self.tasks[task]["completed"] += n
        self._maybe_print(task)

    def update(self, task: int, **kw: Any) -> None:
        if self.bar:
            self.bar.update(task, **kw)
            return
        self.tasks[task].update({k: v for k, v in kw.items() if k in ("description", "total", "completed")})
        self._maybe_print(task)

    def line(self, task: int) -> str:
        """The plain line for ``task``: what, how many of how many, elapsed, and an estimate of what is left."""
        t = self.tasks[task]
        done, total = t["completed"], t["total"]
        spent = time.monotonic() - t["t0"]
        text = f"{t['description']}: {done:g}" + (f"/{total:g}" if total else "") + f", {spent:.0f} s"
        if total and done:
            text += f", about {spent * (total - done) / done:.0f} s left"
        return text

    def _maybe_print(self, task: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            print(self.line(task), file=self.stream, flush=True)
