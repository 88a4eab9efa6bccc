"""Atomic writes: a failed write leaves the old file (or none) and no temporary behind."""
from __future__ import annotations

import json

import pytest

from upft_bench.atomic import atomic_path, replace_dir, write_json, write_lines, write_text


def test_writes_replace_whole_files(tmp_path):
    target = write_text(tmp_path / "sub" / "a.txt", "one ünïcode")
    assert target.read_text(encoding="utf-8") == "one ünïcode"
    write_json(tmp_path / "m.json", {"x": 1})
    assert json.loads((tmp_path / "m.json").read_text()) == {"x": 1}
    assert (tmp_path / "m.json").read_text().endswith("}\n")
    write_lines(tmp_path / "r.jsonl", (f"{i}\n" for i in range(3)))
    assert (tmp_path / "r.jsonl").read_text() == "0\n1\n2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "r.jsonl", "sub"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    write_text(tmp_path / "a.txt", "old")

    def rows():
        yield "new\n"
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_lines(tmp_path / "a.txt", rows())
    assert (tmp_path / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_path_keeps_the_suffix_and_replace_dir_swaps_folders(tmp_path):
    with atomic_path(tmp_path / "plot.png") as tmp:
        assert tmp.name.startswith(".plot.png.") and tmp.suffix == ".png"
        tmp.write_bytes(b"png")
    assert (tmp_path / "plot.png").read_bytes() == b"png"
    old, new = tmp_path / "model", tmp_path / ".model.tmp"
    old.mkdir()
    (old / "w").write_text("old")
    new.mkdir()
    (new / "w").write_text("new")
    replace_dir(new, old)
    assert (old / "w").read_text() == "new" and not new.exists()
