"""Hostile input and the deadline-bounded worker processes (upft_bench/grading/workers.py): False within the
deadline, from the main thread, a thread, grade_many, a process.

    HF_HUB_OFFLINE=1 python -m pytest -q tests/grading/test_workers.py

Hostile inputs live in tests/data/hostile_inputs.jsonl (a literal `pred`, or `parts` = [[text, repeat], ...] for the
big ones; an optional `kind`, e.g. "choice", is graded with that kind as well).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from upft_bench import grading
from upft_bench.grading import grade_many, is_correct, is_equivalent, judging

DATA = Path(__file__).resolve().parent.parent / "data"
HOSTILE = [json.loads(line) for line in (DATA / "hostile_inputs.jsonl").read_text().splitlines() if line.strip()]
HOSTILE_TIMEOUT = 2.0
HOSTILE_BOUND = HOSTILE_TIMEOUT + 3.0   # deadline + extraction/IPC slack on a loaded 2-core machine


def _hostile_text(row) -> str:
    return row["pred"] if "pred" in row else "".join(text * n for text, n in row["parts"])


@pytest.fixture(scope="module", autouse=True)
def workers():
    grading.warm_up(2)
    yield
    grading.shutdown()


def test_hostile_file_is_substantial():
    names = {row["name"] for row in HOSTILE}
    assert len(HOSTILE) >= 40
    for must in ("import-os-boxed", "tower-9", "factorial-1e6", "binomial-bomb", "poly-expansion", "deep-braces",
                 "unbalanced-box", "one-megabyte-prose", "nul-bytes", "lone-surrogates", "sci-huge"):
        assert must in names


@pytest.mark.parametrize("row", HOSTILE, ids=[row["name"] for row in HOSTILE])
def test_hostile_main_thread(row):
    text = _hostile_text(row)
    start = time.monotonic()
    assert is_correct(text, row["gold"], timeout=HOSTILE_TIMEOUT) is False
    assert is_correct(text, "B", kind="choice", timeout=HOSTILE_TIMEOUT) is False
    if "kind" in row:
        assert is_correct(text, row["gold"], kind=row["kind"], timeout=HOSTILE_TIMEOUT) is False
    assert time.monotonic() - start < 2 * HOSTILE_BOUND
    assert not os.path.exists("/tmp/upft_pwned")


def test_hostile_from_threads():
    results, elapsed = {}, {}

    def grade(row):
        start = time.monotonic()
        results[row["name"]] = is_correct(_hostile_text(row), row["gold"], timeout=HOSTILE_TIMEOUT)
        elapsed[row["name"]] = time.monotonic() - start

    threads = [threading.Thread(target=grade, args=(row,)) for row in HOSTILE[:20]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert set(results) == {row["name"] for row in HOSTILE[:20]}
    assert not any(results.values()), results
    assert max(elapsed.values()) < HOSTILE_BOUND * 3   # 20 threads share 2 cores


def test_hostile_via_grade_many():
    pairs = [(_hostile_text(row), row["gold"]) for row in HOSTILE] + [("\\boxed{\\frac12}", "0.5")]
    start = time.monotonic()
    verdicts = grade_many(pairs, workers=2, timeout=HOSTILE_TIMEOUT)
    assert verdicts == [False] * len(HOSTILE) + [True]
    assert time.monotonic() - start < 30


def test_deadline_kills_and_replaces_the_worker():
    # A zero budget expires before any reply can be read, however fast the worker answers
    # (a tiny positive one raced a quick worker on a loaded machine).
    verdict = judging.judge_in_worker("x^2+2x+1", "(x+1)^2", timeout=0.0)
    assert verdict.verdict is False and "timed out" in verdict.reason
    assert is_equivalent("x^2+2x+1", "(x+1)^2")   # a fresh worker takes over
    zombies = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == os.getpid():
                zombies.append(pid)
    assert not zombies



def _grade_in_child(args):
    return is_correct(*args)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_works_inside_a_worker_process(method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} not available")
    jobs = [("\\boxed{x^2+2x+1}", "(x+1)^2"), ("\\boxed{(x+1)^{100000}}", "x"), ("1e999999999", "1")]
    with multiprocessing.get_context(method).Pool(1) as pool:   # daemonic workers
        assert pool.map(_grade_in_child, jobs) == [True, False, False]


def test_worker_boots_from_any_directory(tmp_path):
    """The worker imports the checker from its own install, not from the working directory (here a decoy)."""
    (tmp_path / "upft_bench").mkdir()
    (tmp_path / "upft_bench" / "__init__.py").write_text("raise ImportError('decoy package in the working directory')")
    parent = Path(grading.__file__).resolve().parents[2]
    code = (f"import sys; sys.path.insert(0, {str(parent)!r}); from upft_bench.grading import is_equivalent; "
            "print(is_equivalent('x^2+2x+1', '(x+1)^2', timeout=30), is_equivalent('x^2', '(x+1)^2', timeout=30))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"], out.stderr
