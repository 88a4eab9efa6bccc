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
from .normalization import is_texty, normalize_pair, text_equal
from .numbers import numbers_match, simple_number, with_percent
from .symbolic import Verdict, judge_symbolic

_BASE = re.compile(r"([0-9A-Za-z]+)\s*_\s*\{?\s*\(?\s*(\d{1,2})\s*\)?\s*\}?")
_RANGE = re.compile(r"\d+(?:\.\d+)?\s*[-–]\s*\d+(?:\.\d+)?")


_INTEGER = re.compile(r"[-+]?(?:\d+|[1-9]\d{0,2}(?:,\d{3})+)")


def _long_integer(text: str) -> str | None:
    """The sign and digits of an integer too long to parse (thousands commas dropped), or None. Never `int()`:
    the digit strings are compared as written, in linear time."""
    if not _INTEGER.fullmatch(text):
        return None
    return text.lstrip("+").replace(",", "")


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
    a, b = simple_number(pn.text), simple_number(gn.text)   # a comma in a number is a list (README.md: Thousands)
    if a is not None and b is not None:
        same = any(numbers_match(x, y) for x in with_percent(a, pn.percent and not gn.percent)
                   for y in with_percent(b, gn.percent and not pn.percent))
        return Verdict(same, "numbers compared" + (" (exactly)" if same and a.value == b.value else ""), *forms)
    if len(pn.text) > MAX_ANSWER_CHARS or len(gn.text) > MAX_ANSWER_CHARS:
        p_digits, g_digits = _long_integer(pn.text), _long_integer(gn.text)
        if p_digits is not None and g_digits is not None:   # a 100,000-digit integer: its digits, as written
            return Verdict(p_digits == g_digits, "integers compared digit by digit", *forms)
        return Verdict(False, "too long to parse; normalised strings differ", *forms)
    if (is_texty(pn.text) or is_texty(gn.text)) and text_equal(pn.text, gn.text):
        return Verdict(True, "same text", *forms)
    return Verdict(None, "needs symbolic comparison", *forms)


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
