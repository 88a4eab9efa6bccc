"""measure() and combine(): CPU time, peak memory, children, errors."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from upft_bench.resources import combine, measure

KEYS = {"wall_seconds", "cpu_seconds", "peak_rss_mb", "peak_rss_scope", "peak_rss_children_mb", "peak_cuda_mb"}


def _busy(cpu_seconds: float) -> None:
    """Spin until this process has used `cpu_seconds` of CPU (wall time varies with the machine's load)."""
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        pass


def _allocate(n_bytes: int) -> int:
    """Make `n_bytes` of new memory resident. An anonymous mapping, not a bytearray: malloc may serve a bytearray
    from freed heap memory that is already resident (earlier tests' leftovers), which would not raise the RSS."""
    import mmap

    with mmap.mmap(-1, n_bytes) as buf:
        for offset in range(0, n_bytes, 4096):  # touch every page so it is resident
            buf[offset] = 1
        return sum(buf[offset] for offset in range(0, n_bytes, 4096))


def test_peak_rss_grows_with_allocation():
    with measure() as big:
        _allocate(50 * 2**20)
    with measure() as idle:
        pass
    assert big.keys() == KEYS and idle.keys() == KEYS
    if big["peak_rss_scope"] == "process":
        # The peak since process start: it at least covers the 50 MiB on top of what was resident before.
        assert big["peak_rss_mb"] >= 40
    else:
        assert big["peak_rss_scope"] == idle["peak_rss_scope"] == "phase"
        assert big["peak_rss_mb"] - idle["peak_rss_mb"] >= 40


def test_nested_block_keeps_outer_peak():
    with measure() as outer:
        _allocate(50 * 2**20)
        with measure() as inner:
            pass
    if outer["peak_rss_scope"] == "phase":
        assert outer["peak_rss_mb"] - inner["peak_rss_mb"] >= 40


def test_cpu_seconds_of_a_busy_loop():
    with measure() as used:
        _busy(0.2)
    assert used["cpu_seconds"] >= 0.19
    assert used["wall_seconds"] >= used["cpu_seconds"] - 0.02  # one thread cannot use more CPU than wall time
    assert used["peak_cuda_mb"] is None or used["peak_cuda_mb"] >= 0


def test_child_process_counts():
    code = "import time\nend = time.process_time() + 0.25\nwhile time.process_time() < end:\n    pass\n"
    with measure() as used:
        subprocess.run([sys.executable, "-S", "-c", code], check=True)
    # The parent waits without spinning: most of this is the child's.
    assert used["cpu_seconds"] >= 0.24
    assert used["peak_rss_children_mb"] is None or used["peak_rss_children_mb"] > 0


def test_filled_when_the_block_raises():
    with pytest.raises(RuntimeError, match="boom"):
        with measure() as used:
            _busy(0.01)
            raise RuntimeError("boom")
    assert used.keys() == KEYS
    assert used["wall_seconds"] >= 0 and used["peak_rss_mb"] > 0


def test_combine():
    a = {"wall_seconds": 1.5, "cpu_seconds": 1.0, "peak_rss_mb": 200.0, "peak_rss_scope": "phase",
         "peak_rss_children_mb": None, "peak_cuda_mb": None}
    b = {"wall_seconds": 2.25, "cpu_seconds": 0.5, "peak_rss_mb": 150.0, "peak_rss_scope": "phase",
         "peak_rss_children_mb": 80.0, "peak_cuda_mb": 1024.5}
    got = combine([a, b])
    assert got == {"wall_seconds": 3.75, "cpu_seconds": 1.5, "peak_rss_mb": 200.0, "peak_rss_scope": "phase",
                   "peak_rss_children_mb": 80.0, "peak_cuda_mb": 1024.5}
    assert combine([a])["peak_cuda_mb"] is None
    assert combine([a, {**b, "peak_rss_scope": "process"}])["peak_rss_scope"] == "process"
    assert combine([])["wall_seconds"] is None


def test_fallback_to_process_peak(monkeypatch):
    import upft_bench.resources as resources

    monkeypatch.setattr(resources, "_reset_hwm", lambda: False)
    with measure() as used:
        pass
    assert used["peak_rss_scope"] == "process" and used["peak_rss_mb"] > 0


def test_cuda_peak_read_only_from_an_imported_torch(monkeypatch):
    import types

    class FakeCuda:
        peak = 3 * 2**30  # left over from before the block

        @staticmethod
        def is_available():
            return True

        @classmethod
        def reset_peak_memory_stats(cls):
            cls.peak = 0

        @classmethod
        def max_memory_allocated(cls):
            return cls.peak

    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=FakeCuda))
    with measure() as used:
        FakeCuda.peak = 512 * 2**20
    assert used["peak_cuda_mb"] == 512.0

    monkeypatch.delitem(sys.modules, "torch")
    with measure() as used:
        pass
    assert used["peak_cuda_mb"] is None and "torch" not in sys.modules
