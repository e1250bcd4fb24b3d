"""What every command shares: ``Failure``, the one-line failure the CLI prints (exit 1, or 2 for unusable input).

A leaf, so that the commands of each part (the oracle, the whole system) can raise it without importing
the CLI itself.
"""
from __future__ import annotations


class Failure(Exception):
    """A user-facing failure: printed as one line, exit status 1 (2 for bad input)."""

    def __init__(self, msg: str, code: int = 1):
        super().__init__(msg)
        self.code = code
