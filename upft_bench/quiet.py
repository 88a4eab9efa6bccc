"""Quiet output by default: upft-bench's own progress bars and one-line phase summaries, third-party noise hidden.

    upft-bench compare              # own bars and summaries only
    upft-bench --verbose compare    # also the libraries' bars, logs and warnings (or UPFT_BENCH_VERBOSE=1)

Hidden unless verbose: transformers' weight loading and saving bars and its info/warning logs, DeepSpeed's
warnings, the datasets library's bars, lm-eval's request-building bar, its warnings and the `fatal: not a git
repository` that its git lookup prints outside a clone. lm-eval's generation bar is replaced by one per task
that counts questions. Download bars from the Hugging Face Hub stay: a multi-GB download without progress would
look hung.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess

from tqdm import tqdm

VERBOSE_ENV = "UPFT_BENCH_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def quiet_libraries() -> None:
    """Silence transformers' and datasets' own bars and logs in this process (no-op when verbose)."""
    if verbose():
        return
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    # heavy (huggingface_hub): loaded on use
    import huggingface_hub.utils as hub
    import transformers.utils.logging as tlog

    tlog.disable_progress_bar()  # also turns off the Hub's bars ...
    hub.enable_progress_bars()  # ... which downloads keep
    tlog.set_verbosity_error()
    # DeepSpeed (where installed) is imported by accelerate on every run and warns on import that it found no GPU;
    # a filter on its logger, made here before DeepSpeed sets the logger up, keeps only its errors.
    logging.getLogger("DeepSpeed").addFilter(lambda record: record.levelno >= logging.ERROR)


def _git_hash() -> str | None:
    """lm-eval's record of the working directory's git commit, without git's stderr outside a clone."""
    try:
        done = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


@contextlib.contextmanager
def lm_eval_quietly(task: str):
    """Around one lm-eval call for `task`: its warnings, request-building bar and git noise hidden, and its
    generation bar replaced by `eval <task>` counting questions with an average-rate ETA (no-op when verbose;
    lm-eval's errors always show)."""
    if verbose():
        yield
        return
    # heavy (lm_eval): loaded on use
    import lm_eval.api.task as lm_task
    import lm_eval.evaluator as lm_evaluator

    # heavy (lm_eval): loaded on use
    import lm_eval.models.huggingface as lm_hf

    def generation_bar(*args, total=None, disable=False, desc=None, **kwargs):
        # ETA from the average rate: lm-eval sorts the longest prompts first, so the recent rate misleads.
        return tqdm(*args, total=total, disable=disable, desc=f"eval {task}", unit="question", smoothing=0,
                    dynamic_ncols=True)

    logger = logging.getLogger("lm_eval")
    old = logger.level
    logger.setLevel(logging.ERROR)
    swaps = [(lm_task, "tqdm", functools.partial(tqdm, disable=True)), (lm_hf, "tqdm", generation_bar),
             (lm_evaluator, "get_git_commit_hash", _git_hash)]
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in swaps if hasattr(mod, name)]
    try:
        for mod, name, value in swaps:
            if hasattr(mod, name):
                setattr(mod, name, value)
        yield
    finally:
        for mod, name, value in saved:
            setattr(mod, name, value)
        logger.setLevel(old)


def pyplot():
    """matplotlib.pyplot on the Agg backend. Where matplotlib's config and cache folders cannot be written (a
    read-only HOME) they go to a temporary folder, so its warnings about them stay out of quiet output."""
    if not os.environ.get("MPLCONFIGDIR"):
        home = os.path.expanduser("~")
        folders = [os.path.join(os.environ.get(var) or os.path.join(home, sub), "matplotlib")
                   for var, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache"))]
        if not all(_writable(folder) for folder in folders):
            import tempfile

            fallback = os.path.join(tempfile.gettempdir(), f"upft-bench-matplotlib-{os.getuid()}")
            os.makedirs(fallback, exist_ok=True)
            os.environ["MPLCONFIGDIR"] = fallback
    # heavy (matplotlib): loaded on use
    import matplotlib

    matplotlib.use("Agg")
    # heavy (matplotlib): loaded on use
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> None:
    """Write a matplotlib figure as PNG atomically (upft_bench.atomic) and free it."""
    from upft_bench.atomic import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    pyplot().close(fig)


def _writable(folder: str) -> bool:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)
