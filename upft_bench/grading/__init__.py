"""The project's one answer checker: used by RFT filtering, the lm-eval tasks and `upft-bench grade`.

    from upft_bench.grading import extract_answer, is_correct, grade_many
    extract_answer("... so the area is $\\boxed{\\frac{9}{4}\\pi}$.")   # '\\frac{9}{4}\\pi'
    is_correct("The answer is 0.5", "\\frac{1}{2}")                    # True
    grade_many([(output, gold), ...], workers=4)                        # [True, False, ...]

    upft-bench grade '\\boxed{\\dfrac12}' 0.5 [--kind math|choice] [--timeout 5] [--json]

How a verdict is reached, and every policy: see README.md in this folder.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from . import judging
from . import workers as _workers
from .extraction import CHOICE_LETTERS, MAX_ANSWER_CHARS, TAIL_CHARS, extract_answer
from .judging import Verdict
from .normalization import Normalized, normalize_answer
from .numbers import REL_TOL
from .workers import MAX_IDLE_WORKERS, MAX_TIMEOUT, STARTUP_TIMEOUT

__all__ = ["CHOICE_LETTERS", "MAX_ANSWER_CHARS", "MAX_IDLE_WORKERS", "MAX_TIMEOUT", "REL_TOL", "STARTUP_TIMEOUT",
           "TAIL_CHARS",
           "Normalized", "Verdict", "explain", "extract_answer", "grade_many", "is_correct",
           "is_equivalent", "normalize_answer", "shutdown", "warm_up"]


def is_equivalent(pred: str, gold: str, kind: str = "math", timeout: float = 5.0) -> bool:
    """Are two extracted answers the same? (`timeout` bounds the sympy part, in seconds.)"""
    return bool(judging.judge(pred, gold, kind, timeout).verdict)


def is_correct(prediction: str, gold: str, kind: str = "math", timeout: float = 5.0) -> bool:
    """Extract the final answer from a model output and compare it with a dataset's gold answer."""
    return judging.grade_case(prediction, gold, kind, timeout).correct


def explain(prediction: str, gold: str, kind: str = "math", timeout: float = 5.0) -> dict:
    """Every step of a verdict: extracted answers, normal forms, the verdict and why."""
    return judging.grade_case(prediction, gold, kind, timeout).as_dict()


def grade_many(pairs, kind: str = "math", workers: int | None = None, timeout: float = 5.0) -> list[bool]:
    """is_correct over (prediction, gold) or (prediction, gold, kind) tuples, on `workers` threads.

    Each case takes the same path as `is_correct`; a case that needs sympy holds one worker process with its
    own deadline, so one hostile case costs at most `timeout` and stalls nothing else."""
    cases = [(p[0], p[1], p[2] if len(p) > 2 else kind) for p in pairs]
    workers = workers or min(4, os.cpu_count() or 1)

    def grade(case) -> bool:
        return judging.grade_case(*case, timeout).correct

    if workers > 1 and len(cases) > 1:
        with ThreadPoolExecutor(workers) as ex:
            return list(ex.map(grade, cases))
    return [grade(case) for case in cases]


def warm_up(workers: int = 1):
    """Start checker processes now (about half a second each) instead of at the first symbolic case."""
    _workers.warm(workers)


def shutdown():
    """Stop the checker processes (also done at exit)."""
    _workers.shutdown()

