"""Statistics of the prefix analyses: how much sampled solutions share their first tokens, and where they go wrong.

UPFT rests on two observations: the first k tokens of different sampled solutions to one question are largely
shared ("prefix self-consistency"), and wrong solutions usually go wrong after the first steps ("errors appear
late"). `upft-bench analyze` samples M solutions per question and measures both with the pure functions here
(plain Python data in, plain dicts out; no model, no I/O):

    from upft_bench.prefixes import prefix_consistency, other_prefix, first_error, chain_summary, summarize
    stats = prefix_consistency([ids[:k] for ids in sample_token_ids])   # one question's M samples
    stats["distinct"], stats["top_share"], stats["entropy_bits"], stats["top"]
    alt = other_prefix(prefixes, stats["top"], random.Random(0))        # a prefix other than the top one, or None
    err = first_error(sample_text, problem.solution)                    # synthetic task: the first wrong step
    err["first_wrong_step"], err["kind"], err["char_offset"]            # e.g. 2, "arithmetic", 57
    chain_summary([{"correct": ok, "first_wrong_step": e["first_wrong_step"], "steps": e["steps"]}, ...])
    summarize(top_shares)                                               # mean, quartiles, min, max, n
    holds_reasoning(decoded_prefix)                                     # True: it reaches into a computation

The chain functions read the synthetic task's solution format (`upft_bench.synthetic`), one equation per step:

    12 + 5 = 17 (buys 5 more). 17 * 2 = 34 (doubles). The answer is \\boxed{34}.

Step i >= 1 is the i-th "a OP b = c" sentence. A solution that opens by restating the start amount ("Tom starts
with 12 apples.") has that sentence as step 0.
"""
from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "prefix_consistency",
    "summarize",
    "other_prefix",
    "Step",
    "parse_synthetic",
    "first_error",
    "chain_summary",
    "holds_reasoning",
]


def prefix_consistency(prefixes: Sequence[Sequence[int]]) -> dict:
    """How much one question's M sampled k-token prefixes agree.

    With n_p the count of distinct prefix p among the M samples:
    `distinct` = #{p}, `top_share` = max_p n_p / M, `entropy_bits` = -sum_p (n_p/M) log2(n_p/M) (0 when all agree),
    `top` = the most common prefix as a tuple (on ties, the one that appears first).
    """
    keys = [tuple(p) for p in prefixes]
    m = len(keys)
    if m == 0:
        raise ValueError("prefix_consistency needs at least one prefix")
    counts = Counter(keys)  # insertion order: first appearance
    top, top_count = keys[0], 0
    for key, count in counts.items():
        if count > top_count:
            top, top_count = key, count
    entropy = sum((c / m) * math.log2(m / c) for c in counts.values())
    return {"samples": m, "distinct": len(counts), "top_share": top_count / m,
            "entropy_bits": float(entropy) if len(counts) > 1 else 0.0, "top": top}


def summarize(values: Sequence[float]) -> dict:
    """Mean, quartiles (numpy percentiles, linear interpolation), min, max and n; all None but n=0 when empty."""
    n = len(values)
    if n == 0:
        return {"mean": None, "q1": None, "median": None, "q3": None, "min": None, "max": None, "n": 0}
    arr = np.asarray(values, dtype=float)
    q1, median, q3 = np.percentile(arr, [25, 50, 75], method="linear")
    return {"mean": float(arr.mean()), "q1": float(q1), "median": float(median), "q3": float(q3),
            "min": float(arr.min()), "max": float(arr.max()), "n": n}


def other_prefix(prefixes: Sequence[Sequence[int]], top: Sequence[int], rng: random.Random) -> tuple | None:
    """A prefix different from `top`, drawn uniformly among the samples whose prefix differs.

    P(p) = n_p / (M - n_top) for p != top, so a prefix is chosen in proportion to how often it occurs;
    None when every sample has the top prefix.
    """
    top = tuple(top)
    others = [key for key in (tuple(p) for p in prefixes) if key != top]
    return rng.choice(others) if others else None


# --- the synthetic task's reasoning chain ----------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One parsed arithmetic step "a OP b = c" of a synthetic solution.

    `start`/`end`: character offsets in the text: from where the step's sentence starts to the end of its equation
    (and the "." right after it, if any), so text[start:end] is "12 + 5 = 17" in "12 + 5 = 17 (buys 5 more).".
    """

    a: int
    op: str  # "+", "-" or "*"
    b: int
    c: int
    start: int
    end: int

    def correct(self) -> bool:
        """Whether c == a OP b."""
        return self.c == _apply(self.op, self.a, self.b)


_EQUATION = re.compile(r"(?<!\d)(-?\d+)\s*([-+*×x−])\s*(-?\d+)\s*=\s*(-?\d+)")
_START = re.compile(r"\b(?:starts with|has|owns|collects)\s+(-?\d+)", re.IGNORECASE)
_INT = re.compile(r"-?\d+")
_OP_NORMAL = {"+": "+", "-": "-", "−": "-", "*": "*", "×": "*", "x": "*"}


def _apply(op: str, a: int, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def parse_synthetic(text: str) -> tuple[int | None, list[Step]]:
    """(start amount, steps) of a synthetic solution text: a reference solution or a model's (maybe malformed) sample.

    The start amount is read from the first sentence (the text before the first "." or the first equation), as
    "<name> starts with N" (or has/owns/collects N), else the first integer there; None when there is none.
    Each "a OP b = c" equation is a step; its sentence starts after the last "." before it (not before the previous
    step's end) and ends after the "." that follows it, if any. Never raises.
    """
    if not isinstance(text, str):
        return None, []
    steps: list[Step] = []
    prev_end = 0
    for m in _EQUATION.finditer(text):
        stop = text.rfind(".", prev_end, m.start())
        start = prev_end if stop < 0 else stop + 1
        while start < m.start() and text[start].isspace():
            start += 1
        end = m.end()
        if text.startswith(".", end):
            end += 1
        steps.append(Step(int(m.group(1)), _OP_NORMAL[m.group(2)], int(m.group(3)), int(m.group(4)), start, end))
        prev_end = end
    first_end = len(text)
    dot = text.find(".")
    if dot >= 0:
        first_end = dot
    if steps:
        first_end = min(first_end, steps[0].start)
    first = text[:first_end]
    stated = _START.search(first)
    number = stated.group(1) if stated else (m.group(0) if (m := _INT.search(first)) else None)
    return (None if number is None else int(number)), steps


def first_error(sample_text: str, gold_solution: str) -> dict:
    """The first step at which a sample's reasoning chain departs from the gold solution's.

    Step 0 is a restated start amount, step i >= 1 the i-th arithmetic step. Checks, in order, at step i:
    step 0 (only when gold restates one): start amount != gold's -> "start" ("missing" when the sample states none);
    step i: a != previous result (the stated start amount for i = 1; unchecked when none is stated) -> "chain";
    (a, op, b) != gold's -> "operand" (a misread quantity, a wrong operation or a dropped step);
    c != a OP b -> "arithmetic".
    A sample shorter than gold is wrong at its first missing step ("missing"); steps beyond gold's are wrong at
    the first extra one ("extra").

    Returns {"first_wrong_step": index or None when the whole chain matches, "char_offset": where that step's text
    starts in sample_text (None when no step is wrong; len(sample_text) when the step is missing),
    "steps": the number of gold arithmetic steps, "kind": None | "start" | "operand" | "chain" | "arithmetic" |
    "missing" | "extra"}.
    """
    text = sample_text if isinstance(sample_text, str) else ""
    gold_start, gold_steps = parse_synthetic(gold_solution)
    start, steps = parse_synthetic(text)

    def result(index: int | None, offset: int | None, kind: str | None) -> dict:
        return {"first_wrong_step": index, "char_offset": offset, "steps": len(gold_steps), "kind": kind}

    if gold_start is not None:
        if start is None:
            return result(0, len(text), "missing")
        if start != gold_start:
            return result(0, len(text) - len(text.lstrip()), "start")
    prev = start if gold_start is not None else None
    for i, gold in enumerate(gold_steps, start=1):
        if i > len(steps):
            return result(i, len(text), "missing")
        step = steps[i - 1]
        if prev is not None and step.a != prev:
            return result(i, step.start, "chain")
        if (step.a, step.op, step.b) != (gold.a, gold.op, gold.b):
            return result(i, step.start, "operand")
        if not step.correct():
            return result(i, step.start, "arithmetic")
        prev = step.c
    if len(steps) > len(gold_steps):
        return result(len(gold_steps) + 1, steps[len(gold_steps)].start, "extra")
    return result(None, None, None)


def chain_summary(records: list[dict]) -> dict:
    """Where wrong-answer samples go wrong, from one record per sample.

    records: {"correct": bool (the final answer, as the checker judged it), "first_wrong_step": int | None,
    "steps": int (gold arithmetic steps)}. With W the wrong-answer samples and R the right-answer ones:
    `wrong_right_until_last` = #{w in W: first_wrong_step == steps} / |W|;
    `right_with_error` = #{r in R: first_wrong_step is not None} / |R|;
    `median_first_wrong_step` = median of first_wrong_step over W with a located error (None if none);
    `first_wrong_step_share_by_index` = {i: #{w in W: first_wrong_step == i} / |W|} (W without a located error
    make up the rest). Shares are None when their denominator is 0.
    """
    wrong = [r for r in records if not r.get("correct")]
    right = [r for r in records if r.get("correct")]
    located = [int(r["first_wrong_step"]) for r in wrong if r.get("first_wrong_step") is not None]
    n_wrong, n_right = len(wrong), len(right)
    until_last = sum(1 for r in wrong if r.get("first_wrong_step") is not None
                     and r["first_wrong_step"] == r.get("steps"))
    with_error = sum(1 for r in right if r.get("first_wrong_step") is not None)
    by_index = Counter(located)
    return {
        "wrong_samples": n_wrong,
        "right_samples": n_right,
        "wrong_right_until_last": until_last / n_wrong if n_wrong else None,
        "right_with_error": with_error / n_right if n_right else None,
        "median_first_wrong_step": float(np.median(located)) if located else None,
        "first_wrong_step_share_by_index": {i: by_index[i] / n_wrong for i in sorted(by_index)},
    }


_COMPUTATION = re.compile(r"(?<![\w.])-?\d+\s*[-+*×−](?=\s|\d|$)")


def holds_reasoning(prefix_text: str) -> bool:
    """Whether a decoded prefix holds part of a reasoning step (synthetic task), not only words around one.

    True when it reaches into a computation: a number and the operator applied to it ("12 +", "First, 12 - 3"),
    i.e. the step's choice of operation is made; a prefix that only restates the question ("Tom starts with 12
    apples.") or stops at the first number ("12") holds none, and a hyphenated word ("12-year") is no operator.
    """
    return isinstance(prefix_text, str) and bool(_COMPUTATION.search(prefix_text))
