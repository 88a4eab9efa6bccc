"""Running a phase on several processes (or GPUs) with `accelerate launch`, and checking it really got them.

    from upft_bench.launch import run_launched, check_processes
    run_launched(["train", "--model", base, ...], processes=2, accelerate_args=[], what="training")
    check_processes(2)     # inside the launched command: fails unless WORLD_SIZE is 2

The launched command is the plain `upft-bench` subcommand, the same core as in one process, which is what lets a
run move from one CPU to many GPUs without code changes.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys

from upft_bench.console import say
from upft_bench.errors import LaunchError

__all__ = ["launch_mode", "launch_command", "run_launched", "check_processes", "processes_ended"]

# accelerate launch flags that say how processes are spread; without one it starts a single process.
_MODE_FLAGS = ("--multi_gpu", "--use_deepspeed", "--use_fsdp", "--use_megatron_lm", "--tpu", "--config_file")
# Flags accelerate warns about when it has to default them: named with the values it would default to.
_LAUNCH_DEFAULTS = (("--num_machines", "1"), ("--mixed_precision", "no"), ("--dynamo_backend", "no"))


def launch_mode(accelerate_args: list[str]) -> list[str]:
    """`accelerate_args` with --multi_gpu added when they name no distributed mode (gloo processes on CPU)."""
    args = list(accelerate_args)
    if not any(a.split("=")[0] in _MODE_FLAGS for a in args):
        args.insert(0, "--multi_gpu")
    return args


def launch_command(args: list[str], processes: int, accelerate_args: list[str]) -> list[str]:
    """The command line that runs `upft-bench ARGS` under `accelerate launch` on `processes` processes, asking
    the launched command to check it has them (`--processes`)."""
    given = launch_mode(accelerate_args)
    # accelerate warns about each of these it has to default; say them unless the launch flags or a config do.
    quiet = [] if any(a.startswith("--config_file") for a in given) else [
        x for flag, value in _LAUNCH_DEFAULTS if not any(a.split("=")[0] == flag for a in given)
        for x in (flag, value)]
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes), *given, *quiet,
            "-m", "upft_bench.cli", *args, "--processes", str(processes)]


def run_launched(args: list[str], processes: int, accelerate_args: list[str], what: str) -> None:
    """Run `upft-bench ARGS` under `accelerate launch`; a failure is a LaunchError naming the command."""
    cmd = launch_command(args, processes, accelerate_args)
    say("[launch] " + " ".join(cmd))
    done = subprocess.run(cmd)
    if done.returncode != 0:
        raise LaunchError(f"{what} under accelerate launch failed (exit {done.returncode}); command: {' '.join(cmd)}")


def check_processes(expected: int | None) -> None:
    """Raise a one-line LaunchError when this run does not have `expected` processes (None: no check).

    `accelerate launch --num_processes N` without --multi_gpu (or a config that spreads the processes) starts
    ONE process and says nothing; this is where that is caught.
    """
    if expected is None:
        return
    got = int(os.environ.get("WORLD_SIZE", "1") or 1)  # set by every multi-process launcher (torchrun, deepspeed)
    if got != expected:
        raise LaunchError(
            f"asked for {expected} processes but this run has {got}: accelerate launch starts one process unless "
            "it is told how to spread them; add --multi_gpu (gloo processes on CPU, one per GPU on GPUs) or a "
            "--config_file that does")


@contextlib.contextmanager
def processes_ended():
    """Around a launched command's work: at its end, wait for every process, then tear the process group down
    while the interpreter is still whole. Left to interpreter exit, a gloo group's teardown can abort a process
    whose work is done ("terminate called without an active exception", exit -6), and the launcher then reports
    the whole run as failed. The answer checker's worker processes end first. On an error the group is torn
    down without waiting (the other processes may never arrive). Nothing more to do in a single process."""
    try:
        yield
    except BaseException:
        _destroy(wait=False)
        raise
    _destroy(wait=True)


def _destroy(wait: bool) -> None:
    """End this process's checker workers (else left to atexit, during interpreter teardown), then its process
    group: after a barrier when `wait`."""
    # heavy (torch): loaded on use
    import torch.distributed as dist

    from upft_bench.grading import shutdown

    shutdown()
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()
