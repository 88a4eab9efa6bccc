"""Verdicts: option letters, the fast path, the symbolic comparison, and `grade_case`, the one path every case
of the public API takes (extraction, gold answer, judging)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import workers
from .extraction import (
    ANSWER_PHRASE,
    HOPE,
    MAX_ANSWER_CHARS,
    after_hashes,
    extract_answer,
    extract_choice,
    last_boxed,
    last_match,
    letter_of,
    sanitize,
)
from .normalization import is_texty, normalize_pair, text_equal, top_split
from .numbers import numbers_match, simple_number, with_percent

_BASE = re.compile(r"([0-9A-Za-z]+)\s*_\s*\{?\s*\(?\s*(\d{1,2})\s*\)?\s*\}?")
_RANGE = re.compile(r"\d+(?:\.\d+)?\s*[-–]\s*\d+(?:\.\d+)?")


@dataclass
class Verdict:
    verdict: bool | None          # None: the fast path could not decide
    reason: str
    pred_form: str = ""
    gold_form: str = ""


def judge_fast(pred: str, gold: str) -> Verdict:
    """Decide what needs no sympy: identical forms, plain numbers, bases, long inputs."""
    pn, gn = normalize_pair(pred, gold)
    forms = (pn.text + ("%" if pn.percent else ""), gn.text + ("%" if gn.percent else ""))
    if not pn.text or not gn.text:
        return Verdict(False, "empty answer", *forms)
    if pn.text == gn.text:
        return Verdict(True, "identical after normalisation", *forms)
    if "\\mixednumber" in pn.text or "\\mixednumber" in gn.text:
        return Verdict(False, "a mixed number with an improper fraction is malformed", *forms)
    pb, gb = _BASE.fullmatch(pn.text), _BASE.fullmatch(gn.text)
    if (pb or gb) and not (pb and gb and pb.group(2) != gb.group(2)):
        p_digits = pb.group(1) if pb else pn.text
        g_digits = gb.group(1) if gb else gn.text
        if re.fullmatch(r"[0-9A-Za-z]+", p_digits) and re.fullmatch(r"[0-9A-Za-z]+", g_digits):
            return Verdict(p_digits.lower() == g_digits.lower(), "base-subscripted digits compared as written",
                           *forms)
    if _RANGE.fullmatch(pn.text) and _RANGE.fullmatch(gn.text):   # "110-130": a range, not the number -20
        return Verdict(pn.text.replace(" ", "") == gn.text.replace(" ", ""), "ranges compared as written", *forms)
    a = simple_number(pn.text, decimal_comma="," not in gn.text)
    b = simple_number(gn.text, decimal_comma="," not in pn.text)
    if a is not None and b is not None:
        same = any(numbers_match(x, y) for x in with_percent(a, pn.percent and not gn.percent)
                   for y in with_percent(b, gn.percent and not pn.percent))
        return Verdict(same, "numbers compared" + (" (exactly)" if same and a.value == b.value else ""), *forms)
    if len(pn.text) > MAX_ANSWER_CHARS or len(gn.text) > MAX_ANSWER_CHARS:
        return Verdict(False, "too long to parse; normalised strings differ", *forms)
    if (is_texty(pn.text) or is_texty(gn.text)) and text_equal(pn.text, gn.text):
        return Verdict(True, "same text", *forms)
    return Verdict(None, "needs symbolic comparison", *forms)


_CHAIN_BLOCKER = re.compile(r"[<>!]|\\(?:le|ge|leq|geq|lt|gt|ne|neq|approx|sim|equiv|cong|in)(?![a-zA-Z])")
_PARSE_ERRORS = (ValueError, TypeError, ZeroDivisionError, OverflowError, RecursionError)   # ParseError is a ValueError


def _chain_rhs(text: str, parsed):
    """The parsed last right-hand side of an `=` chain whose left side we cannot evaluate: the whole chain does
    not parse (`\\lim_{x \\to 0} ... = 1`, `17 \\bmod 5 = 2`, `\\k = 3`) or its left side is a matrix (a
    determinant written with `vmatrix`). None otherwise (`7 = 11a + c` keeps the equation policy)."""
    from .latex import parse_answer
    from .values import Matrix, Relation

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
    from .latex import parse_answer
    from .values import Relation, describe, values_equal

    pn, gn = normalize_pair(pred, gold)
    parsed = []
    for n in (pn, gn):
        try:
            parsed.append(parse_answer(n.text))
        except _PARSE_ERRORS:
            parsed.append(None)
    p, g = parsed
    if g is not None and not isinstance(g.value, Relation) and (rhs := _chain_rhs(pn.text, p)) is not None:
        same = values_equal(rhs, g, pn.percent, gn.percent)   # `\lim_{x \to 0} \frac{\sin x}{x} = 1` vs `1`
        return Verdict(same, "last right-hand side of an equation chain compared", describe(rhs.value),
                       describe(g.value))
    if p is None or g is None:
        same = text_equal(pn.text, gn.text)
        which = "neither side" if p is None and g is None else ("prediction" if p is None else "gold")
        return Verdict(same, f"{which} is not math; compared as text",
                       pn.text if p is None else describe(p.value), gn.text if g is None else describe(g.value))
    same = values_equal(p, g, pn.percent, gn.percent)
    return Verdict(same, "symbolic/numeric comparison", describe(p.value), describe(g.value))


def judge_in_worker(pred: str, gold: str, timeout: float) -> Verdict:
    """`judge_symbolic` in a worker process, within `timeout` seconds; False when the deadline passes."""
    try:
        reply = workers.call({"pred": pred, "gold": gold}, timeout)
    except workers.Unavailable:
        return judge_symbolic(pred, gold)   # no way to start a process here: unguarded, but never eval
    except workers.Failed as exc:
        return Verdict(False, str(exc))
    return Verdict(**reply)


def judge_choice(pred: str, gold: str) -> Verdict | None:
    gold_letter = letter_of(gold) or (extract_choice(gold) if len(gold) < 80 else None)
    if gold_letter is None:
        return None   # the gold is an option's text: judge it as math / text
    pred_letter = letter_of(pred) or extract_choice(pred)
    return Verdict(pred_letter == gold_letter, "option letters compared", pred_letter or "", gold_letter)


def judge(pred: str, gold: str, kind: str, timeout: float) -> Verdict:
    """Two extracted answers: option letters, else the fast path, else the symbolic comparison in a worker."""
    pred, gold = sanitize(pred) or "", sanitize(gold) or ""
    if kind == "choice":
        verdict = judge_choice(pred, gold)
        if verdict is not None:
            return verdict
    verdict = judge_fast(pred, gold)
    if verdict.verdict is None:
        slow = judge_in_worker(pred, gold, timeout)
        return slow if slow.pred_form or slow.gold_form else Verdict(slow.verdict, slow.reason,
                                                                     verdict.pred_form, verdict.gold_form)
    return verdict


def gold_answer(gold, kind: str) -> str:
    """Datasets store a bare answer, or a full solution whose \\boxed{} / #### marks the answer."""
    gold = sanitize(gold) or ""
    if "\\boxed" in gold or "\\fbox" in gold:
        gold = last_boxed(gold) or gold
    elif "####" in gold:
        gold = after_hashes(gold) or gold
    return gold.strip()


def _plain(s: str) -> str:
    return " ".join(s.replace("**", " ").replace("$", " ").split()).rstrip(". ").lower()


def states_gold(prediction, gold: str, kind: str) -> bool:
    """A prose gold (an option's text, several sentences) matched by the whole prediction, or by all of
    what follows its last "the answer is"; extraction would stop at a sentence end or pick a number."""
    if kind == "choice" or not gold:
        return False
    pred = sanitize(prediction) or ""
    if len(pred) > 2 * len(gold) + 200:
        return False
    key = _plain(gold)
    if _plain(pred) == key:
        return True
    if not is_texty(gold):
        return False
    last = last_match(ANSWER_PHRASE, pred)
    return last is not None and _plain(HOPE.sub("", pred[last.end():])) == key


@dataclass
class Graded:
    """One graded case: the answers on both sides and the verdict on them."""
    extracted: str | None    # the prediction's final answer; None when it has none
    gold: str                # the gold answer (out of a full solution where the dataset stores one)
    verdict: Verdict
    states_gold: bool = False   # the whole prediction is a prose gold's text

    @property
    def correct(self) -> bool:
        return bool(self.verdict.verdict)

    def as_dict(self) -> dict:
        v = self.verdict
        return {"extracted": self.extracted, "gold": self.gold, "pred_form": v.pred_form, "gold_form": v.gold_form,
                "verdict": bool(v.verdict), "reason": v.reason}


def grade_case(prediction, gold, kind: str = "math", timeout: float = 5.0) -> Graded:
    """The one per-case path behind `is_correct`, `explain` and `grade_many`: extract the prediction's final
    answer, take the gold answer out of a full solution, and judge the two (`timeout` bounds the sympy part)."""
    extracted = extract_answer(prediction, kind)
    gold = gold_answer(gold, kind)
    if states_gold(prediction, gold, kind):
        key = _plain(gold)
        return Graded(extracted, gold, Verdict(True, "the prediction states the gold text", key, key), True)
    if extracted is None:
        return Graded(None, gold, Verdict(False, "no answer found in the prediction"))
    return Graded(extracted, gold, judge(extracted, gold, kind, timeout))
