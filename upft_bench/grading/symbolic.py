"""The symbolic comparison of two answers: our LaTeX parser (latex.py) and sympy (values.py).

It runs inside a grading worker process (workers.py), under a hard deadline, so sympy is imported there, not in
the caller; `judging` decides everything else (extraction, the fast number path, option letters).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .normalization import normalize_pair, text_equal, top_split


@dataclass
class Verdict:
    verdict: bool | None          # None: the fast path could not decide
    reason: str
    pred_form: str = ""
    gold_form: str = ""



_CHAIN_BLOCKER = re.compile(r"[<>!]|\\(?:le|ge|leq|geq|lt|gt|ne|neq|approx|sim|equiv|cong|in)(?![a-zA-Z])")
_PARSE_ERRORS = (ValueError, TypeError, ZeroDivisionError, OverflowError, RecursionError)   # ParseError is a ValueError


def _chain_rhs(text: str, parsed):
    """The parsed last right-hand side of an `=` chain whose left side we cannot evaluate: the whole chain does
    not parse (`\\lim_{x \\to 0} ... = 1`, `17 \\bmod 5 = 2`, `\\k = 3`) or its left side is a matrix (a
    determinant written with `vmatrix`). None otherwise (`7 = 11a + c` keeps the equation policy)."""
    from .latex import parse_answer  # sympy: the parser runs in the worker process, not the caller
    from .values import Matrix, Relation  # sympy: the comparison runs in the worker process, not the caller

    if "=" not in text or _CHAIN_BLOCKER.search(text):
        return None
    if parsed is not None and not (isinstance(parsed.value, Relation) and isinstance(parsed.value.terms[0], Matrix)
                                   and set(parsed.value.ops) == {"="}):
        return None
    parts = top_split(text, "=")
    if len(parts) < 2 or not all(part.strip() for part in parts):
        return None   # `==`, a dangling `=`, or `=` inside brackets only
    try:
        rhs = parse_answer(parts[-1].strip())
    except _PARSE_ERRORS:
        return None
    return None if isinstance(rhs.value, (Relation, Matrix)) else rhs


def judge_symbolic(pred: str, gold: str) -> Verdict:
    """Parse both sides with our parser (latex.py) and compare with sympy (values.py). Runs inside the worker
    process (in this one only where no worker can start), so sympy is imported there, not here."""
    from .latex import parse_answer  # sympy: the parser runs in the worker process, not the caller
    from .values import (  # sympy: the comparison runs in the worker process, not the caller
        Relation,
        describe,
        rename_bound,
        values_equal,
    )

    pn, gn = normalize_pair(pred, gold)
    parsed = []
    for n in (pn, gn):
        try:
            parsed.append(parse_answer(n.text))
        except _PARSE_ERRORS:
            parsed.append(None)
    p, g = parsed
    if p is not None and pn.bound and gn.bound and pn.bound != gn.bound and len(pn.bound) == len(gn.bound):
        p = rename_bound(p, pn.bound, gn.bound)   # `f(z) = z^2` is `f(x) = x^2`
    if g is not None and not isinstance(g.value, Relation) and (rhs := _chain_rhs(pn.text, p)) is not None:
        same = values_equal(rhs, g, pn.percent, gn.percent)   # `\lim_{x \to 0} \frac{\sin x}{x} = 1` vs `1`
        return Verdict(same, "last right-hand side of an equation chain compared", describe(rhs.value),
                       describe(g.value))
    if p is None or g is None:
        same = text_equal(pn.text, gn.text)
        reason = ("neither side is math" if p is None and g is None
                  else "the prediction is not math" if p is None else "the gold answer is not math")
        return Verdict(same, f"{reason}; compared as text",
                       pn.text if p is None else describe(p.value), gn.text if g is None else describe(g.value))
    same = values_equal(p, g, pn.percent, gn.percent)
    return Verdict(same, "symbolic/numeric comparison", describe(p.value), describe(g.value))
