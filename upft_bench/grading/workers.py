"""The deadline-bounded worker pool: the sympy side of the checker runs in child processes, each job under a
hard deadline that holds in any thread or process (SIGALRM would not). On expiry the worker is killed and
replaced. `serve` is the entry point of a worker process."""
from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict

STARTUP_TIMEOUT = 120.0      # a worker importing sympy on a loaded machine; not part of the per-case deadline
# The longest per-case deadline a caller may ask for (`upft-bench grade --timeout`, method.grade_timeout): a
# deadline must be finite (select() overflows on inf), and one answer check beyond 10 minutes is a stalled run.
MAX_TIMEOUT = 600.0
MAX_IDLE_WORKERS = 16

# the directory that holds upft_bench/ (this file is upft_bench/grading/workers.py)
_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# the package's own directory first: `python -c` would otherwise prefer an upft_bench in the working directory
_WORKER_BOOT = (f"import sys; sys.path.insert(0, {_PKG_PARENT!r}); "
                "from upft_bench.grading.workers import serve; serve()")


class _Worker:
    """One child Python process answering JSON lines on stdin/stdout. Subprocess, not multiprocessing:
    it also starts from daemonic pool workers, and needs no picklable __main__."""

    def __init__(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = _PKG_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env, bufsize=0, close_fds=True, start_new_session=True)
        self.buf = b""
        self.ready = False

    def _read_line(self, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None   # the worker died
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def wait_ready(self, timeout: float) -> bool:
        if not self.ready:
            self.ready = self._read_line(time.monotonic() + timeout) == b"ready"
        return self.ready

    def call(self, job: dict, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout   # counted from the request, not from after the write
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")
        line = self._read_line(deadline)
        return json.loads(line) if line else None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self):
        try:
            self.proc.kill()
        except OSError:
            pass
        self._reap(5)

    def close(self):
        try:
            self.proc.stdin.close()   # the worker exits at end of input
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._reap(5)

    def _reap(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class _Pool:
    """Idle workers handed to one caller at a time; a timed-out worker is killed, never reused."""

    def __init__(self):
        self.lock = threading.Lock()
        self.idle: list[_Worker] = []
        self.busy: set[_Worker] = set()
        self.pid = os.getpid()
        self.inherited: list[_Worker] = []   # after fork: the parent's workers, kept alive but unused

    def _after_fork(self):
        if os.getpid() != self.pid:
            self.inherited += self.idle + list(self.busy)
            self.idle, self.busy, self.pid = [], set(), os.getpid()

    def acquire(self) -> _Worker:
        with self.lock:
            self._after_fork()
            worker = self.idle.pop() if self.idle else None
            if worker is None:
                worker = _Worker()
            self.busy.add(worker)
        if not worker.wait_ready(STARTUP_TIMEOUT):
            self.discard(worker)
            raise RuntimeError("grading worker failed to start")
        return worker

    def release(self, worker: _Worker):
        with self.lock:
            self.busy.discard(worker)
            if worker.alive() and len(self.idle) < MAX_IDLE_WORKERS and os.getpid() == self.pid:
                self.idle.append(worker)
                return
        worker.close()

    def discard(self, worker: _Worker):
        with self.lock:
            self.busy.discard(worker)
        worker.kill()

    def warm(self, n: int):
        """Start workers until n are idle, in parallel (each takes ~0.5 s to import sympy)."""
        with self.lock:
            self._after_fork()
            fresh = [_Worker() for _ in range(max(0, n - len(self.idle)))]
        for worker in fresh:
            if worker.wait_ready(STARTUP_TIMEOUT):
                with self.lock:
                    self.idle.append(worker)
            else:
                worker.kill()

    def shutdown(self):
        with self.lock:
            if os.getpid() != self.pid:
                return
            workers, self.idle = self.idle + list(self.busy), []
            self.busy = set()
        for w in workers:   # end every worker's input first, so they all exit in parallel
            try:
                w.proc.stdin.close()
            except OSError:
                pass
        for w in workers:
            w.close()


_POOL = _Pool()
atexit.register(_POOL.shutdown)

class Unavailable(Exception):
    """No worker process can be started here."""


class Failed(Exception):
    """A job got no reply: its deadline passed, its worker crashed, or no worker would take it."""


def call(job: dict, timeout: float) -> dict:
    """A worker's reply to one job, within `timeout` seconds of the request (a worker's start-up excluded)."""
    for _ in range(2):   # one retry when a worker died between jobs
        try:
            worker = _POOL.acquire()
        except (OSError, RuntimeError) as exc:
            raise Unavailable(str(exc)) from exc
        try:
            result = worker.call(job, timeout)
        except (BrokenPipeError, OSError, ValueError):
            _POOL.discard(worker)
            continue
        if result is None:
            crashed = not worker.alive()
            _POOL.discard(worker)
            raise Failed("checker crashed" if crashed else f"timed out after {timeout:g} s")
        _POOL.release(worker)
        return result
    raise Failed("checker unavailable")


def warm(n: int):
    """Start workers until n are idle."""
    _POOL.warm(n)


def shutdown():
    """Stop every worker of this process."""
    _POOL.shutdown()


def _watch_parent(parent: int):
    """Exit when the parent is gone, even in the middle of a long sympy call."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def serve():
    """Entry of a worker process: one JSON job per stdin line, one JSON verdict per stdout line."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = 4 << 30
        if hard == resource.RLIM_INFINITY or hard > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass
    # heavy (sympy): loaded on use
    import sympy

    from . import latex, values  # noqa: F401  (import cost paid before "ready")
    from .symbolic import Verdict, judge_symbolic  # the worker's own entry point

    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    for n, line in enumerate(sys.stdin.buffer, 1):
        try:
            job = json.loads(line)
            result = asdict(judge_symbolic(job["pred"], job["gold"]))
        except Exception as exc:  # noqa: BLE001  (one bad case must not end the worker)
            result = asdict(Verdict(False, f"error: {type(exc).__name__}"))
        out.write(json.dumps(result).encode() + b"\n")
        out.flush()
        if n % 1000 == 0:
            sympy.core.cache.clear_cache()
