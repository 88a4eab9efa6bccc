"""The fast path for plain numbers: exact comparison with `fractions.Fraction`, no sympy, in-process."""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

REL_TOL = 1e-4   # answers written with decimals: relative tolerance (README.md: Numbers)


_DEC = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_FAST_NUMBER = re.compile(rf"({_DEC})(?:[eE]([-+]?\d{{1,4}}))?")
_FAST_RATIO = re.compile(r"([-+]?\d+)\s*/\s*(\d+)")
_FAST_FRAC = re.compile(r"([-+]?)\s*\\frac\s*(?:\{\s*(\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))")
_FAST_SCI = re.compile(rf"({_DEC})\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*(?:\{{\s*([-+]?\d{{1,4}})\s*\}}|(\d))")


@dataclass(frozen=True)
class Num:
    value: Fraction
    decimals: int | None   # digits after a decimal point as written; None for integers and fractions


def _decimal(text: str, exp: str | None) -> Num | None:
    e = int(exp) if exp else 0
    if abs(e) > 300:
        return None   # left to the parser, which refuses truly absurd sizes
    frac = text.split(".", 1)[1] if "." in text else None
    value = Fraction(text) * Fraction(10) ** e
    return Num(value, len(frac) - e if frac is not None else None)   # 2.5e-4: 5 decimal places


def simple_number(s: str) -> Num | None:
    if len(s) > 60:
        return None
    if m := _FAST_NUMBER.fullmatch(s):
        return _decimal(m.group(1), m.group(2))
    if m := _FAST_RATIO.fullmatch(s):
        return Num(Fraction(int(m.group(1)), int(m.group(2))), None) if int(m.group(2)) else None
    if m := _FAST_FRAC.fullmatch(s):
        num, den = int(m.group(2) or m.group(3)), int(m.group(4) or m.group(5))
        return Num(Fraction(-num if m.group(1) == "-" else num, den), None) if den else None
    if m := _FAST_SCI.fullmatch(s):
        return _decimal(m.group(1), m.group(2) or m.group(3))
    return None


def numbers_match(a: Num, b: Num) -> bool:
    if a.value == b.value:
        return True
    integer_side = any(n.decimals is None and n.value.denominator == 1 for n in (a, b))
    if (a.decimals is None and b.decimals is None) or integer_side:
        return False   # exact comparison (README.md: Numbers)
    diff = abs(a.value - b.value)
    if a.decimals is not None and b.decimals is not None:   # two roundings: under half a unit of the shorter
        return diff < Fraction(1, 2) * Fraction(10) ** -min(a.decimals, b.decimals)
    if diff <= Fraction(REL_TOL) * max(abs(a.value), abs(b.value)):
        return True
    k = a.decimals if a.decimals is not None else b.decimals
    return k >= 4 and diff <= Fraction(1, 2) * Fraction(10) ** -k


def with_percent(n: Num, percent: bool) -> list[Num]:
    """50% as written, and as the fraction 0.5 (16.67% becomes 0.1667: two more decimal places)."""
    return [n, Num(n.value / 100, None if n.decimals is None else n.decimals + 2)] if percent else [n]
