"""What a phase of a run used, beyond wall seconds: CPU time, peak memory, peak GPU memory.

    from upft_bench.resources import combine, measure
    with measure() as used:
        train(...)
    used["wall_seconds"], used["cpu_seconds"], used["peak_rss_mb"], used["peak_cuda_mb"]
    total = combine([first_session, resumed_session])      # seconds summed, peaks maxed

Keys of the dict (filled in when the block exits, also when it raises):

* wall_seconds: `time.perf_counter` delta.
* cpu_seconds: user + system CPU time of this process and of its child processes that finished (were waited for)
  during the block (`getrusage` RUSAGE_SELF + RUSAGE_CHILDREN deltas); unlike wall seconds it does not grow when
  other work shares the machine.
* peak_rss_mb: the highest resident memory of this process during the block (absolute, not a delta), in MiB. On
  Linux the high-water mark is reset at entry (`/proc/self/clear_refs`) and VmHWM read at exit; peak_rss_scope is
  then "phase". Where that is not possible it is `ru_maxrss`, the peak since the process started, and
  peak_rss_scope is "process".
* peak_rss_children_mb: the largest peak resident memory of a child process finished during the block, in MiB, or
  None when no child finished during it with a larger peak than earlier children.
* peak_cuda_mb: `torch.cuda.max_memory_allocated()` in MiB (peak stats reset at entry), or None when torch is not
  imported already or CUDA is unavailable; torch is never imported here.

Seconds are rounded to 3 decimals, MiB to 1. Nested `measure()` blocks are fine: an inner block's reset of the
high-water marks first passes the peak so far on to the enclosing blocks.
"""
from __future__ import annotations

import contextlib
import re
import resource
import sys
import time
from typing import Any, Iterator

__all__ = ["measure", "combine"]

_MIB = 2**20
# ru_maxrss is in KiB on Linux, in bytes on macOS.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024
_SUM_KEYS = ("wall_seconds", "cpu_seconds")
_MAX_KEYS = ("peak_rss_mb", "peak_rss_children_mb", "peak_cuda_mb")

# Running peaks (bytes) of the measure() blocks now open, outermost first: {"rss": int | None, "cuda": int | None}.
_open_blocks: list[dict[str, int | None]] = []


def _cpu_times() -> tuple[float, int]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return cpu, children.ru_maxrss * _MAXRSS_UNIT


def _vm_hwm() -> int | None:
    """VmHWM of /proc/self/status in bytes, or None where it cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            match = re.search(r"^VmHWM:\s+(\d+)\s*kB", fh.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def _reset_hwm() -> bool:
    """Reset this process's resident-memory high-water mark to the current RSS; False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:  # PermissionError included; also no /proc (not Linux)
        return False
    return True


def _cuda() -> Any | None:
    """torch.cuda when torch is already imported and a CUDA device is usable, else None."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return torch.cuda if torch.cuda.is_available() else None
    except Exception:  # a half-initialised or broken torch must not break the measured phase
        return None


def _raise_peak(block: dict[str, int | None], key: str, value: int | None) -> None:
    if value is not None and (block[key] is None or value > block[key]):
        block[key] = value


def _mib(n_bytes: int | None) -> float | None:
    return None if n_bytes is None else round(n_bytes / _MIB, 1)


@contextlib.contextmanager
def measure() -> Iterator[dict]:
    """Measure the block: yields a dict filled in with wall/cpu seconds and peak memory when the block exits."""
    used: dict[str, Any] = {}
    block: dict[str, int | None] = {"rss": None, "cuda": None}
    cuda = _cuda()

    # Hand the peaks so far to the blocks already open before resetting the process-wide high-water marks.
    hwm_before = _vm_hwm()
    cuda_before = None
    if cuda is not None:
        with contextlib.suppress(Exception):
            cuda_before = int(cuda.max_memory_allocated())
    for outer in _open_blocks:
        _raise_peak(outer, "rss", hwm_before)
        _raise_peak(outer, "cuda", cuda_before)

    phase_scope = hwm_before is not None and _reset_hwm()
    if cuda is not None:
        try:
            cuda.reset_peak_memory_stats()
        except Exception:
            cuda = None
    _open_blocks.append(block)

    cpu_start, children_rss_start = _cpu_times()
    wall_start = time.perf_counter()
    try:
        yield used
    finally:
        wall = time.perf_counter() - wall_start
        cpu_end, children_rss_end = _cpu_times()
        if _open_blocks and _open_blocks[-1] is block:
            _open_blocks.pop()
        elif block in _open_blocks:  # blocks closed out of order (generators): drop this one only
            _open_blocks.remove(block)

        if phase_scope:
            _raise_peak(block, "rss", _vm_hwm())
            peak_rss = block["rss"]
        else:
            peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT
        if cuda is not None:
            with contextlib.suppress(Exception):
                _raise_peak(block, "cuda", int(cuda.max_memory_allocated()))

        used.update(
            wall_seconds=round(wall, 3),
            cpu_seconds=round(cpu_end - cpu_start, 3),
            peak_rss_mb=_mib(peak_rss),
            peak_rss_scope="phase" if phase_scope else "process",
            peak_rss_children_mb=_mib(children_rss_end) if children_rss_end > children_rss_start else None,
            peak_cuda_mb=_mib(block["cuda"]) if cuda is not None else None,
        )


def _max_or_none(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def combine(parts: list[dict]) -> dict:
    """The cost of several phases: wall/cpu seconds summed, peaks maxed (None where no part has a value)."""
    combined: dict[str, Any] = {}
    for key in _SUM_KEYS:
        values = [p[key] for p in parts if p.get(key) is not None]
        combined[key] = round(sum(values), 3) if values else None
    for key in _MAX_KEYS:
        combined[key] = _max_or_none([p.get(key) for p in parts])
    scopes = {p["peak_rss_scope"] for p in parts if p.get("peak_rss_scope") is not None}
    combined["peak_rss_scope"] = ("phase" if scopes == {"phase"} else "process") if scopes else None
    return combined
