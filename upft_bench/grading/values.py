"""Parsed values and their equality with sympy (the slow half of the checker; runs in the worker process).

    from upft_bench.grading.latex import parse_answer
    from upft_bench.grading.values import values_equal
    values_equal(parse_answer(r"\\frac{\\sqrt3}2"), parse_answer("0.8660254"))   # True (relative tolerance)

Structures other than plain sympy expressions are small dataclasses (`Seq` for tuples, intervals and bare
lists, `SetOf`, `Union`, `Matrix`, `Relation`); `values_equal` compares any two of them under the number,
percent, interval and list policies of README.md.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import sympy as sp

from .numbers import REL_TOL

EXACT_RTOL = sp.Float("1e-15", 30)   # "exact" comparisons are done numerically at 30 digits
N_POINTS = 4              # random points for identities with free symbols


# ---------------------------------------------------------------------------------------------------
# Value types
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Seq:
    """Comma-separated items with their brackets: '(' ')' tuple/open interval, '[' ')' half-open, '' '' list."""
    items: tuple
    left: str
    right: str


@dataclass(frozen=True)
class SetOf:
    items: tuple


@dataclass(frozen=True)
class Union:
    parts: tuple


@dataclass(frozen=True)
class Matrix:
    rows: tuple  # tuple of tuples
    det: bool = field(default=False, compare=False)   # written with `vmatrix`: a determinant, no arithmetic


@dataclass(frozen=True)
class Cases:
    """A piecewise answer (`\\begin{cases}`): (expression, condition) pairs; the condition None is `otherwise`."""
    pieces: tuple


@dataclass(frozen=True)
class Relation:
    """A chain `t0 op0 t1 op1 t2 ...` (`x = 5+5+1 = 11`, `0 < x \\le 3`)."""
    ops: tuple
    terms: tuple


@dataclass(frozen=True)
class Parsed:
    value: object
    decimals: int | None  # most digits after a decimal point in any literal; None: no decimal literal
    unknowns: frozenset = frozenset()   # names of differentiated functions, their derivatives and variables



PM = sp.Symbol("pm_sign__")   # stands for the sign of a `\pm`; never reachable from input names


# ---------------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------------
def _finite(v) -> bool:
    return not v.has(sp.oo, -sp.oo, sp.zoo, sp.nan)


def _evaluate(expr, subs, digits=30):
    value = expr.evalf(digits, subs=subs) if subs else expr.evalf(digits)
    if not value.is_number:
        return None
    re_, im = value.as_real_imag()
    if not (re_.is_Number and im.is_Number) or re_ in (sp.nan, sp.zoo) or im in (sp.nan, sp.zoo):
        return None
    return sp.Float(re_, digits), sp.Float(im, digits)


def _close(a, b, ctx) -> bool:
    """a, b are (re, im) pairs at 30 digits; ctx = (pred decimals, gold decimals, exact).

    Policy (README.md: Numbers): exact at 30 digits unless a decimal literal appears. Two decimals must agree
    to half a unit in the last place of the shorter one; a decimal against an exact value needs relative
    error <= REL_TOL, or to be its correct rounding with at least 4 digits after the point."""
    pred_dec, gold_dec, exact = ctx[:3]
    scale_hp = max(abs(a[0]) + abs(a[1]), abs(b[0]) + abs(b[1]))
    if exact:
        if scale_hp > 1e25:
            return None   # 30 digits cannot tell 2^100 from 2^100 + 1: undecided
        d = abs(a[0] - b[0]) + abs(a[1] - b[1])
        return bool(d <= EXACT_RTOL * scale_hp or d < sp.Float("1e-25"))
    diff = math.hypot(float(a[0] - b[0]), float(a[1] - b[1]))
    scale = float(scale_hp)
    if pred_dec is not None and gold_dec is not None:
        return diff < 0.5 * 10.0 ** -min(pred_dec, gold_dec) * (1 - 1e-9) or diff < 1e-12 * scale
    k = pred_dec if pred_dec is not None else gold_dec
    if diff <= REL_TOL * scale or diff < 1e-12:
        return True
    return k is not None and k >= 4 and diff <= 0.5 * 10.0 ** -k * (1 + 1e-9)


def _point_values(symbols, k):
    rng = random.Random(1234 + 7919 * k)
    return {s: sp.Rational(rng.randint(1100, 2900), 1000 + k) for s in symbols}


def _simplifies_to_zero(a, b) -> bool:
    """Exact check for when numbers cannot decide; only for small expressions without big powers."""
    if sp.count_ops(a) + sp.count_ops(b) >= 40:
        return False
    for p in (a - b).atoms(sp.Pow):
        if p.exp.is_Number and abs(p.exp) > 50:
            return False
    return sp.simplify(a - b) == 0


def exprs_equal(a, b, ctx) -> bool:
    """Numeric equality at 30 digits; with free symbols, at N_POINTS random positive points."""
    if a == b:
        return True
    if not (_finite(a) and _finite(b)):
        return False
    if ctx[2] and a.is_Rational and b.is_Rational:
        return False   # two different exact rationals
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    if not symbols:
        va, vb = _evaluate(a, None), _evaluate(b, None)
        if va is None or vb is None:
            return False
        close = _close(va, vb, ctx)
        return _simplifies_to_zero(a, b) if close is None else close
    good = 0
    for k in range(N_POINTS):
        subs = _point_values(symbols, k)
        va, vb = _evaluate(a, subs), _evaluate(b, subs)
        if va is None or vb is None:
            continue
        close = _close(va, vb, ctx)
        if close is False:
            return False
        good += close is True
    return True if good >= 2 else _simplifies_to_zero(a, b)


MAX_EXACT_DEGREE = 10_000   # exact values at rational points: polynomials up to this degree (about 35,000 digits)
RATIO_DIGITS = 60           # ratios of irrational values: 60 digits, equal to RATIO_RTOL
RATIO_RTOL = sp.Float("1e-30", RATIO_DIGITS)
MAX_FLOAT_EXPONENT = 50     # beyond, x^n - 1 and x^n - 2 differ by less than RATIO_RTOL: no float verdict


def _degree(expr) -> float:
    """An upper bound on the total degree of a rational expression (inf for anything else): the size of its exact
    values at rational points."""
    if expr.is_Number:
        return 0
    if expr.is_Symbol:
        return 1
    if expr.is_Add:
        return max(_degree(a) for a in expr.args)
    if expr.is_Mul:
        return sum(_degree(a) for a in expr.args)
    if expr.is_Pow and expr.exp.is_Integer:
        return _degree(expr.base) * abs(int(expr.exp))
    return math.inf


def _powers_within(expr, limit) -> bool:
    return all(not p.exp.is_Number or abs(p.exp) <= limit for p in expr.atoms(sp.Pow))


def _ratio_at(f, g, subs, exact: bool):
    """f/g at one point as (re, im, exact): exact rationals for rational expressions of bounded degree (so that
    `x^{1000} - 1` and `x^{1000} - 2` are told apart), else 30-digit floats; None where undefined or not to be
    trusted."""
    if exact:
        vf, vg = f.xreplace(subs), g.xreplace(subs)
        if vf.is_Rational and vg.is_Rational:
            return None if vg == 0 else (vf / vg, sp.Integer(0), True)
    if not (_powers_within(f, MAX_FLOAT_EXPONENT) and _powers_within(g, MAX_FLOAT_EXPONENT)):
        return None
    vf, vg = _evaluate(f, subs, RATIO_DIGITS), _evaluate(g, subs, RATIO_DIGITS)
    if vf is None or vg is None:
        return None
    (a, b), (c, d) = vf, vg
    den = c * c + d * d
    if den == 0:
        return None
    return (a * c + b * d) / den, (b * c - a * d) / den, False   # sympy Floats: no overflow


def _same_ratio(ratios, positive: bool) -> bool:
    if len(ratios) < 2:
        return False
    r0 = ratios[0]
    size = abs(r0[0]) + abs(r0[1])
    if size < 1e-12 or (positive and (r0[0] <= 0 or abs(r0[1]) > 1e-9 * size)):
        return False
    for r in ratios[1:]:
        if r[2] and r0[2]:
            if r[0] != r0[0] or r[1] != r0[1]:
                return False
        elif abs(r[0] - r0[0]) + abs(r[1] - r0[1]) > RATIO_RTOL * size:
            return False
    return True


def _ratio_constant(f, g, positive: bool, unknowns=None) -> bool:
    """f = c*g for a nonzero constant c (positive when inequalities must keep their direction). With `unknowns`
    (an equation with derivatives: the functions, their derivatives and the variable), c may depend on the other
    symbols, the equation's parameters (`I \\frac{d\\omega}{dt} = T` is `\\frac{d\\omega}{dt} = T/I`)."""
    symbols = sorted(f.free_symbols | g.free_symbols, key=str)
    if not symbols:
        return False
    params = [x for x in symbols if x.name not in unknowns] if unknowns else []
    varying = [x for x in symbols if x not in params]
    if not varying:
        params, varying = [], symbols
    exact = max(_degree(f), _degree(g)) <= MAX_EXACT_DEGREE
    for j in range(2 if params else 1):
        fixed = _point_values(params, 100 + j) if params else {}
        ratios = []
        for k in range(N_POINTS):
            r = _ratio_at(f, g, {**_point_values(varying, k), **fixed}, exact)
            if r is not None:
                ratios.append(r)
        if not _same_ratio(ratios, positive):
            return False
    return True


_FLIP = {">": "<", ">=": "<="}   # the same relation read right to left


def _simple_lhs(term) -> bool:
    return isinstance(term, sp.Symbol) or (isinstance(term, sp.Function) and not term.is_number)


def relations_equal(a: Relation, b: Relation, ctx) -> bool:
    a_ops, b_ops = set(a.ops), set(b.ops)
    if a_ops <= {"=", "in"} and b_ops <= {"=", "in"}:
        la, ra, lb, rb = a.terms[0], a.terms[-1], b.terms[0], b.terms[-1]
        if _simple_lhs(la) and la == lb:
            return values_equal_raw(ra, rb, ctx)
        if all(isinstance(t, sp.Basic) for t in (la, ra, lb, rb)):
            return _ratio_constant(la - ra, lb - rb, positive=False, unknowns=ctx[3])
        return False
    if len(a.ops) != 1 or len(b.ops) != 1:
        return a == b
    if not all(isinstance(t, sp.Basic) for t in a.terms + b.terms):
        return False
    (oa,), (ob,) = a.ops, b.ops
    fa = a.terms[0] - a.terms[1]
    fb = b.terms[0] - b.terms[1]
    if oa in _FLIP:
        oa, fa = _FLIP[oa], -fa
    if ob in _FLIP:
        ob, fb = _FLIP[ob], -fb
    if oa != ob:
        return False
    return _ratio_constant(fa, fb, positive=oa != "!=")


def _match_unordered(xs, ys, ctx, allow_duplicates: bool) -> bool:
    if not allow_duplicates and len(xs) != len(ys):
        return False
    if allow_duplicates:
        return (all(any(values_equal_raw(x, y, ctx) for y in ys) for x in xs)
                and all(any(values_equal_raw(x, y, ctx) for x in xs) for y in ys))
    remaining = list(ys)
    for x in xs:
        for j, y in enumerate(remaining):
            if values_equal_raw(x, y, ctx):
                del remaining[j]
                break
        else:
            return False
    return True


def _distinct(items):
    out = []
    for x in items:
        if x not in out:
            out.append(x)
    return tuple(out)


def _items(v):
    """Elements of anything list-like, or None."""
    if isinstance(v, (Seq, SetOf)):
        return v.items
    if isinstance(v, Matrix) and (len(v.rows) == 1 or len(v.rows[0]) == 1):
        return tuple(x for row in v.rows for x in row)
    return None



def _constant(t) -> bool:
    return isinstance(t, sp.Basic) and t.is_number and t != sp.zoo and t != sp.nan


def _variable(t) -> bool:
    return isinstance(t, sp.Symbol) and t != PM


def _relation_interval(rel: Relation):
    """`x \\ge 5` -> [5, oo), `2 < x \\le 5` -> (2, 5], `x \\ne 3` -> (-oo, 3) U (3, oo); None otherwise."""
    ops, terms = rel.ops, rel.terms
    if ops == ("!=",) and _variable(terms[0]) and _constant(terms[1]):
        return Union((Seq((-sp.oo, terms[1]), "(", ")"), Seq((terms[1], sp.oo), "(", ")")))
    if ops and all(op in _FLIP for op in ops):
        ops, terms = tuple(_FLIP[op] for op in reversed(ops)), tuple(reversed(terms))
    if not ops or not all(op in ("<", "<=") for op in ops):
        return None
    if len(terms) == 2 and _variable(terms[0]) and _constant(terms[1]):
        return Seq((-sp.oo, terms[1]), "(", "]" if ops[0] == "<=" else ")")
    if len(terms) == 2 and _constant(terms[0]) and _variable(terms[1]):
        return Seq((terms[0], sp.oo), "[" if ops[0] == "<=" else "(", ")")
    if len(terms) == 3 and _constant(terms[0]) and _variable(terms[1]) and _constant(terms[2]):
        return Seq((terms[0], terms[2]), "[" if ops[0] == "<=" else "(", "]" if ops[1] == "<=" else ")")
    if len(terms) == 3 and _constant(terms[0]) and _abs_variable(terms[1]) and _constant(terms[2]):
        low, high = terms[0], terms[2]   # a <= |z| <= b: [-b, -a] U [a, b] (for a > 0)
        if not (low.is_extended_real and high.is_extended_real and bool(low > 0) and bool(high > low)):
            return None
        lo_in, hi_in = ops[0] == "<=", ops[1] == "<="
        return Union((Seq((-high, -low), "[" if hi_in else "(", "]" if lo_in else ")"),
                      Seq((low, high), "[" if lo_in else "(", "]" if hi_in else ")")))
    return None


def _abs_variable(t) -> bool:
    return isinstance(t, sp.Abs) and _variable(t.args[0])


def _as_interval(v):
    """A one-variable inequality as an interval; inequalities joined by "or" (a bare list) as a union."""
    if isinstance(v, Relation):
        return _relation_interval(v)
    if isinstance(v, Seq) and not v.left and len(v.items) >= 2 and all(isinstance(x, Relation) for x in v.items):
        parts = [_relation_interval(x) for x in v.items]
        if all(p is not None for p in parts):
            return Union(tuple(parts))
    return None


MAX_REMOVED_POINTS = 50


def _real_constant(t) -> bool:
    return isinstance(t, sp.Basic) and _constant(t) and t.is_extended_real is True


def _sign(d) -> int:
    """-1, 0 or 1 for a real constant difference; ValueError when sympy cannot decide."""
    if d.is_zero:
        return 0
    if d.is_extended_positive:
        return 1
    if d.is_extended_negative:
        return -1
    raise ValueError("cannot order the points of a set difference")


def _is_interval(v) -> bool:
    return (isinstance(v, Seq) and v.left in ("(", "[") and v.right in (")", "]") and len(v.items) == 2
            and all(_real_constant(x) for x in v.items))


def set_difference(a, b):
    """`A \\setminus B` for A an interval, a union of intervals or a finite set of constants, and B a finite set
    of real constants: `(0, 36) \\setminus \\{9\\}` is (0, 9) U (9, 36). ValueError for anything else."""
    points = b.items if isinstance(b, SetOf) else (b,) if isinstance(b, sp.Basic) else None
    if points is None or len(points) > MAX_REMOVED_POINTS or not all(_real_constant(x) for x in points):
        raise ValueError("only a finite set of real numbers can be taken out of a set")
    if isinstance(a, SetOf):
        if not all(isinstance(x, sp.Basic) and _constant(x) for x in a.items):
            raise ValueError("a set difference of non-constant sets")
        return SetOf(tuple(x for x in a.items if not any((x - p).is_zero for p in points)))
    parts = a.parts if isinstance(a, Union) else (a,)
    if not all(_is_interval(x) for x in parts):
        raise ValueError("a set difference needs intervals or sets")
    out = []
    for part in parts:
        pieces = [part]
        for point in points:
            split = []
            for piece in pieces:
                lo, hi = piece.items
                at_lo, at_hi = _sign(point - lo), _sign(point - hi)
                if at_lo == 0 and piece.left == "[":
                    split.append(Seq(piece.items, "(", piece.right))
                elif at_hi == 0 and piece.right == "]":
                    split.append(Seq(piece.items, piece.left, ")"))
                elif at_lo > 0 > at_hi:
                    split += [Seq((lo, point), piece.left, ")"), Seq((point, hi), "(", piece.right)]
                else:
                    split.append(piece)
            pieces = split
        out += pieces
    return Union(tuple(out)) if len(out) > 1 else out[0]


def _interval_like(v) -> bool:
    return isinstance(v, Union) or (isinstance(v, Seq) and v.left in ("(", "[") and len(v.items) == 2)


def values_equal_raw(a, b, ctx) -> bool:
    if isinstance(a, sp.Basic) and isinstance(b, sp.Basic):
        return exprs_equal(a, b, ctx)
    for ineq, other in ((a, b), (b, a)):
        if _interval_like(other) and (interval := _as_interval(ineq)) is not None:
            return values_equal_raw(interval, other, ctx)   # `x \\ge 5` is [5, oo)
    if isinstance(a, Relation) and isinstance(b, Relation):
        return relations_equal(a, b, ctx)
    for rel, other in ((a, b), (b, a)):
        if isinstance(rel, Relation) and not isinstance(other, Relation):
            # `x = 3` against `3`: only when the left side is a bare variable (`7 = 11a+c` is not `11a+c`),
            # or when every term is a number (a worked computation `180 + 24 = 204`: its last value)
            if set(rel.ops) <= {"=", "in"} and (_simple_lhs(rel.terms[0]) or all(map(_constant, rel.terms))):
                return values_equal_raw(rel.terms[-1], other, ctx)
            return False
    if isinstance(a, Union) or isinstance(b, Union):
        pa = a.parts if isinstance(a, Union) else (a,)
        pb = b.parts if isinstance(b, Union) else (b,)
        return _match_unordered(pa, pb, ctx, allow_duplicates=False)
    if isinstance(a, Cases) or isinstance(b, Cases):
        return isinstance(a, Cases) and isinstance(b, Cases) and cases_equal(a, b, ctx)
    if isinstance(a, Matrix) and isinstance(b, Matrix):
        if len(a.rows) != len(b.rows) or len(a.rows[0]) != len(b.rows[0]):
            return False
        return all(values_equal_raw(x, y, ctx) for ra, rb in zip(a.rows, b.rows) for x, y in zip(ra, rb))
    xa, xb = _items(a), _items(b)
    if xa is None or xb is None:
        return False
    if isinstance(a, SetOf) or isinstance(b, SetOf):
        return _match_unordered(xa, xb, ctx, allow_duplicates=True)
    if isinstance(a, Seq) and isinstance(b, Seq):
        if a.left == b.left == "" or (a.left + a.right == "" and b.left + b.right == ""):
            if all(isinstance(x, Seq) and x.left for x in xa + xb):
                xa, xb = _distinct(xa), _distinct(xb)   # a list of tuples is a set: a repeated tuple adds nothing
            return _match_unordered(xa, xb, ctx, allow_duplicates=False)   # bare lists of solutions
        if a.left and b.left and (a.left, a.right) != (b.left, b.right):
            return False   # [a, b) is not (a, b)
    if len(xa) != len(xb):
        return False
    return all(values_equal_raw(x, y, ctx) for x, y in zip(xa, xb))


def _condition_set(cond):
    """A one-variable condition as a sympy set of reals, with its variable; None when it is not one."""
    interval = _relation_interval(cond)
    if interval is None:
        return None
    var = next(t for t in cond.terms if _variable(t) or _abs_variable(t))
    var = var.args[0] if isinstance(var, sp.Abs) else var
    parts = interval.parts if isinstance(interval, Union) else (interval,)
    sets = []
    for part in parts:
        lo, hi = part.items
        if not (_real_constant(lo) or lo == -sp.oo) or not (_real_constant(hi) or hi == sp.oo):
            return None
        sets.append(sp.Interval(lo, hi, part.left == "(", part.right == ")"))
    return var, sp.Union(*sets)


def _piece_sets(c: Cases):
    """Each piece's condition as a set of reals (`otherwise` is what the other pieces leave), or None."""
    found = [None if cond is None else _condition_set(cond) for _, cond in c.pieces]
    known = [f for f in found if f is not None]
    if len(known) + 1 < len(found) or len({var for var, _ in known}) > 1:
        return None   # a condition that is no interval, two `otherwise`, or two variables
    if len(known) < len(found):
        if not known:
            return None
        rest = sp.Complement(sp.Reals, sp.Union(*[s for _, s in known]))
        found = [f if f is not None else (known[0][0], rest) for f in found]
    return found


def _sets_equal(a, b) -> bool:
    return a[0] == b[0] and sp.Complement(a[1], b[1]) == sp.S.EmptySet and sp.Complement(b[1], a[1]) == sp.S.EmptySet


def cases_equal(a: Cases, b: Cases, ctx) -> bool:
    """Piecewise answers are sets of (expression, condition) pairs (README.md: Piecewise)."""
    if len(a.pieces) != len(b.pieces):
        return False
    sa, sb = _piece_sets(a), _piece_sets(b)
    if sa is not None and sb is not None:
        pa = [(e, s) for (e, _), s in zip(a.pieces, sa)]
        pb = [(e, s) for (e, _), s in zip(b.pieces, sb)]
        same = _sets_equal
    else:
        pa, pb = list(a.pieces), list(b.pieces)

        def same(x, y):
            return x is None and y is None or (x is not None and y is not None and values_equal_raw(x, y, ctx))
    remaining = list(pb)
    for ea, ca in pa:
        for j, (eb, cb) in enumerate(remaining):
            if same(ca, cb) and values_equal_raw(ea, eb, ctx):
                del remaining[j]
                break
        else:
            return False
    return True


def is_exact_integer(p: Parsed) -> bool:
    return p.decimals is None and isinstance(p.value, sp.Integer)


def values_equal(pred: Parsed, gold: Parsed, pred_percent=False, gold_percent=False) -> bool:
    """Compare two parsed answers under the tolerance and percent policies in README.md."""
    # exact unless a decimal literal appears; a decimal never matches an exact integer unless equal
    exact = (pred.decimals is None and gold.decimals is None) or is_exact_integer(pred) or is_exact_integer(gold)
    unknowns = pred.unknowns | gold.unknowns or None   # derivatives appear (README.md: Derivatives)
    preds, golds = [(pred.value, pred.decimals)], [(gold.value, gold.decimals)]
    if pred_percent != gold_percent:
        # the side written as a percentage may be matched by its number (50 for 50%) or its fraction (0.5),
        # which has two more decimal places (16.67% is 0.1667)
        side = preds if pred_percent else golds
        value, decimals = side[0]
        if isinstance(value, sp.Basic):
            side.append((value / 100, None if decimals is None else decimals + 2))
    for p, p_dec in preds:
        for g, g_dec in golds:
            ctx = (p_dec, g_dec, exact, unknowns)
            if values_equal_raw(p, g, ctx):
                return True
            if (isinstance(p, Seq) and not p.left and isinstance(g, sp.Basic)
                    and all(values_equal_raw(x, g, ctx) for x in p.items)):
                return True   # the same value written twice (`15\\frac{39}{40}, \\frac{639}{40}`)
    return False


def map_exprs(value, fn):
    """`value` with `fn` applied to every sympy expression in it (tuples, sets, relations, matrices, cases)."""
    if isinstance(value, sp.Basic):
        return fn(value)
    if isinstance(value, Seq):
        return Seq(tuple(map_exprs(v, fn) for v in value.items), value.left, value.right)
    if isinstance(value, SetOf):
        return SetOf(tuple(map_exprs(v, fn) for v in value.items))
    if isinstance(value, Union):
        return Union(tuple(map_exprs(v, fn) for v in value.parts))
    if isinstance(value, Matrix):
        return Matrix(tuple(tuple(map_exprs(x, fn) for x in row) for row in value.rows), value.det)
    if isinstance(value, Relation):
        return Relation(value.ops, tuple(map_exprs(v, fn) for v in value.terms))
    if isinstance(value, Cases):
        return Cases(tuple((map_exprs(e, fn), None if c is None else map_exprs(c, fn)) for e, c in value.pieces))
    return value


def rename_bound(parsed: Parsed, names: tuple, targets: tuple) -> Parsed:
    """`f(z) = z^2` read with the gold's variable names (`f(x) = ...`): the bound variables renamed in order, all at
    once. Unchanged where a new name is already free in the answer (`f(z) = z + x` is not `f(x) = 2x`) or where
    a name is `e` or `i` (constants)."""
    if {"e", "i"} & (set(names) | set(targets)):
        return parsed
    mapping = {sp.Symbol(a): sp.Symbol(b) for a, b in zip(names, targets) if a != b}
    free: set = set()
    map_exprs(parsed.value, lambda e: free.update(e.free_symbols) or e)
    if any(b in free and b.name not in names for b in mapping.values()):
        return parsed
    return Parsed(map_exprs(parsed.value, lambda e: e.xreplace(mapping)), parsed.decimals, parsed.unknowns)


def describe(value) -> str:
    """A short readable form of a parsed value for `upft-bench grade`."""
    if isinstance(value, sp.Basic):
        return sp.sstr(value)
    if isinstance(value, Seq):
        return (value.left or "") + ", ".join(describe(v) for v in value.items) + (value.right or "")
    if isinstance(value, SetOf):
        return "{" + ", ".join(describe(v) for v in value.items) + "}"
    if isinstance(value, Union):
        return " U ".join(describe(v) for v in value.parts)
    if isinstance(value, Matrix):
        return "[" + "; ".join(", ".join(describe(x) for x in row) for row in value.rows) + "]"
    if isinstance(value, Cases):
        return "{" + "; ".join(f"{describe(e)} if {'otherwise' if c is None else describe(c)}"
                               for e, c in value.pieces) + "}"
    if isinstance(value, Relation):
        out = describe(value.terms[0])
        for op, t in zip(value.ops, value.terms[1:]):
            out += f" {op} {describe(t)}"
        return out
    return str(value)
