"""Atomic writes: a reader sees the old file (or folder) or the whole new one, never half of it.

    from upft_bench.atomic import write_text, write_json, write_lines, replace_dir
    write_json(out / "metrics.json", metrics)
    with atomic_path(out / "compare.png") as tmp:   # for writers that want a path (matplotlib, save_pretrained)
        fig.savefig(tmp)

`file_sha256(path)` is the one file hash (cache keys, input fingerprints), read in blocks.

Every temporary sits next to its target (same file system, so the final rename is atomic) under one naming
scheme, `.NAME.PID.tmp`, so a crash leaves a hidden file that is never mistaken for a result, and two processes
writing the same target never share a temporary.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator


def temp_path(path: str | Path) -> Path:
    """The temporary next to `path` that an atomic write of it uses."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed.

    The temporary keeps the target's suffix (`.compare.png.123.tmp.png`) for writers that pick a format by it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    if path.suffix:
        tmp = tmp.with_name(tmp.name + path.suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically (parents created)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json(path: str | Path, data, indent: int = 2) -> Path:
    """Write `data` as indented JSON (plus a final newline) atomically."""
    return write_text(path, json.dumps(data, indent=indent) + "\n")


def write_lines(path: str | Path, lines: Iterable[str]) -> Path:
    """Write newline-terminated `lines` (JSONL rows) atomically, streaming, synced to disk before the rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def replace_dir(tmp: str | Path, final: str | Path) -> Path:
    """Move a fully written folder `tmp` into place at `final` (an old `final` goes first)."""
    final = Path(final)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def file_sha256(path: str | Path) -> str:
    """The SHA-256 (hex) of a file's content, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
