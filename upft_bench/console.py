"""The one place upft-bench writes progress lines: standard error, so standard output keeps what a command
prints as its result (tables, paths, JSON)."""
from __future__ import annotations

import sys


def say(message: str) -> None:
    """One progress line on standard error, flushed at once."""
    print(message, file=sys.stderr, flush=True)
