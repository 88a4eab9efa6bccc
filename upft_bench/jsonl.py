"""The one reader of JSONL files (data sets, sample pools, training examples): errors name the file and line.

    from upft_bench.jsonl import read_jsonl
    for line, row in read_jsonl("pool.jsonl", SamplesFileError, tolerate_torn_tail=True): ...
"""
from __future__ import annotations

import json
from pathlib import Path

from upft_bench.errors import InputError

__all__ = ["read_jsonl"]


def read_jsonl(path: str | Path, error: type[InputError] = InputError, tolerate_torn_tail: bool = False
               ) -> list[tuple[int, dict]]:
    """(1-based line number, object) for every non-blank line of `path`, in order.

    A file that cannot be read, a line that is not JSON or not a JSON object raises `error` (an InputError class)
    naming the file and the line. With `tolerate_torn_tail`, text after the last newline (a line a killed writer
    never finished) is ignored instead of parsed.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise error(f"{path}: cannot read: {err.strerror or err}") from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise error(f"{path} line {line}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); "
                    "save the file as UTF-8") from None
    lines = text.split("\n")
    if tolerate_torn_tail:
        lines = lines[:-1]  # "" after a final newline, or the unfinished last line
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise error(f"{path} line {number}: not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(row, dict):
            raise error(f"{path} line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    return rows
