"""Safe parsing of final math answers into sympy objects (the worker side of the checker).

    from upft_bench.grading.latex import parse_answer
    parse_answer(r"\\frac{\\sqrt3}2")          # Parsed(value=sqrt(3)/2, decimals=None)

Model output is untrusted, so nothing here hands text to `eval`, `sympify` or `parse_expr`. A small
tokenizer and a precedence-climbing parser build sympy objects directly from a whitelist (numbers,
single-letter symbols, Greek letters, +-*/^, fractions, roots, a few functions) and refuse, before
building, anything that could blow up: integer powers with more than `MAX_DIGITS` digits, huge
factorials and binomials, nesting deeper than `MAX_DEPTH`, inputs longer than `MAX_CHARS`.
The checker still runs this module inside a worker process with a hard deadline (workers.py), because
sympy itself offers no time bound. The value types it builds live in values.py.
"""
from __future__ import annotations

import math
import re

import sympy as sp

from .values import PM, Cases, Matrix, Parsed, Relation, Seq, SetOf, Union, set_difference

MAX_CHARS = 2000          # longer answers are compared as normalised strings only
MAX_DEPTH = 40            # bracket nesting; real answers stay under 10
MAX_DIGITS = 10_000       # refuse exact numbers (powers, factorials, binomials) larger than this
MAX_SYMBOLIC_EXP = 10**6  # x^(10^9) is nobody's answer, and evaluating it wastes time
MAX_ITEMS = 200           # elements of a tuple / set / matrix
MAX_MATRIX_ENTRIES = 100  # a matrix (written or computed) with more entries is refused
MAX_MATRIX_WORK = 1000    # scalar multiplications in all matrix products and powers of one answer
MAX_SYMBOLIC_PRODUCTS = 3 # matrix products with an entry that is not a plain number (their entries nest)
MAX_CASES = 20            # pieces of a `cases` environment


class ParseError(ValueError):
    """The text is not in the supported subset, or would be too expensive to build."""


# ---------------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+(?![\d.]))?)
  | (?P<cmd>\\(?:[a-zA-Z]+|[{}|\\,;:!%$ #&_]))
  | (?P<word>[a-zA-Z]+)
  | (?P<op><=|>=|!=|==|\*\*|:=|[-+*/^_=<>!(),;\[\]{}|&'])
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[tuple[str, str]]:
    out = []
    pos, n = 0, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ParseError(f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind == "cmd" and m.group()[1:] not in _KNOWN_CMDS and (split := _split_command(m.group()[1:])):
            out += split   # `\cotx` (a missing space) is `\cot x`
        elif kind != "ws":
            out.append((kind, m.group()))
        pos = m.end()
    out.append(("eof", ""))
    return out


# ---------------------------------------------------------------------------------------------------
# Whitelists
# ---------------------------------------------------------------------------------------------------
_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota",
    "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi",
    "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega",
}
_GREEK_ALIASES = {"varphi": "phi", "varepsilon": "epsilon", "vartheta": "theta"}   # one letter, two glyphs
_FUNCS = {
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "cot": sp.cot, "sec": sp.sec, "csc": sp.csc,
    "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan, "asin": sp.asin, "acos": sp.acos,
    "atan": sp.atan, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "ln": sp.log, "log": sp.log,
    "exp": sp.exp, "sqrt": sp.sqrt, "abs": sp.Abs, "floor": sp.floor, "ceil": sp.ceiling,
    "arccot": sp.acot, "arcsec": sp.asec, "arccsc": sp.acsc,
}
_CONSTANTS = {"pi": sp.pi, "infty": sp.oo, "infinity": sp.oo, "inf": sp.oo, "oo": sp.oo}
_MUL_CMDS = {"cdot", "times", "ast"}
_DIV_CMDS = {"div"}
_REL_CMDS = {
    "le": "<=", "leq": "<=", "leqslant": "<=", "ge": ">=", "geq": ">=", "geqslant": ">=", "lt": "<",
    "gt": ">", "ne": "!=", "neq": "!=", "approx": "=", "equiv": "=", "in": "in", "to": "=",
}
_REL_OPS = {"=": "=", "==": "=", ":=": "=", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "!=": "!="}
_LEAD_WORDS = {"if", "for", "when", "where"}
_OTHERWISE_WORDS = {"otherwise", "else"}
_CONDITION_WORDS = _LEAD_WORDS | _OTHERWISE_WORDS | {"and", "or"}   # they end an expression in `cases`
_MATRIX_ENVS = {"pmatrix", "bmatrix", "matrix", "vmatrix", "Bmatrix", "smallmatrix", "array"}


_KNOWN_CMDS = (set(_GREEK) | set(_FUNCS) | set(_CONSTANTS) | _MUL_CMDS | _DIV_CMDS | set(_REL_CMDS)
               | {"frac", "sqrt", "binom", "operatorname", "emptyset", "varnothing", "lfloor", "rfloor", "lceil",
                  "rceil", "begin", "end", "cup", "pm", "mp", "setminus", "backslash"})
_SPLIT_PREFIXES = sorted(set(_GREEK) | set(_FUNCS) | {"pi", "infty"}, key=len, reverse=True)


def _split_command(name: str) -> list[tuple[str, str]] | None:
    """Tokens for a command glued to a short variable name (`cotx`, `pix`, `thetat`), else None."""
    for prefix in _SPLIT_PREFIXES:
        rest = name[len(prefix):]
        if name.startswith(prefix) and 0 < len(rest) <= 2 and rest.isalpha():
            return [("cmd", "\\" + prefix), ("word", rest)]
    return None


def _as_expr(v):
    if isinstance(v, sp.Basic):
        return v
    raise ParseError("a tuple, set or relation cannot take part in arithmetic")


def _operand(v):
    """A scalar or a matrix that arithmetic may use; a determinant (`vmatrix`) is neither."""
    if isinstance(v, Matrix) and not v.det:
        return v
    return _as_expr(v)


def _shape(m: Matrix) -> tuple[int, int]:
    return len(m.rows), len(m.rows[0])


def _new_matrix(rows) -> Matrix:
    rows = tuple(tuple(r) for r in rows)
    if sum(map(len, rows)) > MAX_MATRIX_ENTRIES:
        raise ParseError("matrix too large")
    return Matrix(rows)


def _number_estimate(x) -> float:
    """|x| as a float; inf when it does not fit (callers only need an order of magnitude)."""
    try:
        return abs(complex(sp.N(x, 15)))
    except (OverflowError, TypeError, ValueError):
        return math.inf


def _log10_abs(x) -> float:
    if isinstance(x, sp.Integer):
        v = abs(int(x))
        return (v.bit_length() - 1) * 0.30103 if v else -math.inf
    if isinstance(x, sp.Rational):
        return _log10_abs(sp.Integer(x.p)) - _log10_abs(sp.Integer(x.q))
    est = _number_estimate(x)
    return math.log10(est) if 0 < est < math.inf else (math.inf if est == math.inf else -math.inf)


def build_power(base, exp):
    """`base**exp`, refusing results that would have more than MAX_DIGITS digits (estimated by logs)."""
    base, exp = _as_expr(base), _as_expr(exp)
    if exp.is_number:
        e_mag = _number_estimate(exp)
        if base.is_number:
            b_log = abs(_log10_abs(base))
            if e_mag == math.inf or (b_log > 0 and e_mag * b_log > MAX_DIGITS):
                raise ParseError("power too large")
        elif e_mag > MAX_SYMBOLIC_EXP:
            raise ParseError("exponent too large")
    return sp.Pow(base, exp)


def build_factorial(n):
    n = _as_expr(n)
    if n.is_Integer:
        if n > 3000:   # 3000! has 9,131 digits
            raise ParseError("factorial too large")
    elif n.is_number and _number_estimate(n) > 3000:
        raise ParseError("factorial too large")
    return sp.factorial(n)


def build_binomial(n, k):
    n, k = _as_expr(n), _as_expr(k)
    if n.is_number and k.is_number:
        if not (n.is_Integer and k.is_Integer):
            if max(_number_estimate(n), _number_estimate(k)) > 3000:
                raise ParseError("binomial too large")
        elif n >= 0 and 0 <= k <= n:
            small = min(int(k), int(n - k))
            if small > 0 and small * max(_log10_abs(n), 1) > MAX_DIGITS:
                # cheap upper bound failed; use the exact log-size before refusing
                if n > 10**15:
                    raise ParseError("binomial too large")
                digits = ((math.lgamma(int(n) + 1) - math.lgamma(int(k) + 1) - math.lgamma(int(n - k) + 1))
                          / math.log(10))
                if digits > MAX_DIGITS:
                    raise ParseError("binomial too large")
    return sp.binomial(n, k)


def build_number(text: str) -> tuple[sp.Rational, int | None]:
    """An exact Rational for a decimal literal, and its number of digits after the point (None for integers)."""
    mant, _, exp_txt = text.lower().partition("e")
    exp = int(exp_txt) if exp_txt else 0
    whole, dot, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0") or "0"
    if abs(exp) > MAX_DIGITS or len(digits) + max(exp, 0) > MAX_DIGITS:
        raise ParseError("number too large")
    value = sp.Rational(int(whole or "0") * 10 ** len(frac) + int(frac or "0"), 10 ** len(frac))
    if exp:
        value = value * sp.Rational(10) ** exp
    decimals = len(frac) - exp if dot else None   # 2.5e-4 is written to 5 decimal places
    return value, decimals


# ---------------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------------
class _Parser:
    """Precedence climbing: list > relation > union > sum > product (explicit and implicit) > unary > power."""

    def __init__(self, tokens):
        self.toks = tokens
        self.i = 0
        self.depth = 0
        self.abs_open = 0
        self.decimals: int | None = None
        self.shift = 0   # most negative power of ten applied (2.08 \\times 10^{-9} is written to 11 decimals)
        self.matrix_work = 0   # scalar multiplications spent on matrix products (MAX_MATRIX_WORK)
        self.symbolic_products = 0
        self.in_cases = 0      # inside `cases`: the words of a condition (`if`, `otherwise`) end an expression

    # -- matrix arithmetic -----------------------------------------------------------------------
    def add(self, a, b, sign=1):
        a, b = _operand(a), _operand(b)
        if isinstance(a, Matrix) and isinstance(b, Matrix):
            if _shape(a) != _shape(b):
                raise ParseError("matrices of different shapes")
            return _new_matrix([[x + sign * y for x, y in zip(ra, rb)] for ra, rb in zip(a.rows, b.rows)])
        if isinstance(a, Matrix) or isinstance(b, Matrix):
            raise ParseError("a matrix plus a scalar")
        return sp.Add(a, sign * b)

    def mul(self, a, b):
        a, b = _operand(a), _operand(b)
        if isinstance(a, Matrix) and isinstance(b, Matrix):
            (n, m), (m2, k) = _shape(a), _shape(b)
            if m != m2:
                raise ParseError("matrix shapes do not allow a product")
            self.matrix_work += n * m * k
            if not all(isinstance(x, (sp.Rational, sp.Float)) for r in a.rows + b.rows for x in r):
                self.symbolic_products += 1
            if self.matrix_work > MAX_MATRIX_WORK or self.symbolic_products > MAX_SYMBOLIC_PRODUCTS:
                raise ParseError("too much matrix arithmetic")
            cols = list(zip(*b.rows))
            return _new_matrix([[sp.Add(*[x * y for x, y in zip(row, col)]) for col in cols] for row in a.rows])
        if isinstance(a, Matrix):
            return _new_matrix([[x * b for x in row] for row in a.rows])
        if isinstance(b, Matrix):
            return _new_matrix([[a * x for x in row] for row in b.rows])
        return sp.Mul(a, b)

    def neg(self, a):
        a = _operand(a)
        return self.mul(sp.Integer(-1), a) if isinstance(a, Matrix) else -a

    def power(self, base, exp):
        if isinstance(base, Matrix) and not base.det:
            n, m = _shape(base)
            if n != m or not (isinstance(exp, sp.Integer) and 1 <= exp <= 20):
                raise ParseError("only a square matrix to a small positive integer power")
            out = base
            for _ in range(int(exp) - 1):
                out = self.mul(out, base)
            return out
        return build_power(base, exp)

    # -- token helpers ---------------------------------------------------------------------------
    def peek(self, k=0):
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self):
        tok = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def accept(self, *texts):
        if self.peek()[1] in texts and self.peek()[0] != "eof":
            return self.next()
        return None

    def expect(self, text):
        if self.accept(text) is None:
            raise ParseError(f"expected {text!r}, found {self.peek()[1]!r}")

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError("nesting too deep")

    # -- grammar ---------------------------------------------------------------------------------
    def parse(self):
        items = self.parse_items(("eof",))
        if self.peek()[0] != "eof":
            raise ParseError(f"trailing {self.peek()[1]!r}")
        return items[0] if len(items) == 1 else Seq(tuple(items), "", "")

    def parse_items(self, closers):
        """Comma-separated relations up to (not including) a closer; empty list allowed."""
        items = []
        if self.peek()[1] in closers or self.peek()[0] in closers:
            return items
        items.append(self.parse_relation())
        while self.accept(",", ";"):
            items.append(self.parse_relation())
            if len(items) > MAX_ITEMS:
                raise ParseError("too many items")
        return items

    def rel_op(self):
        kind, text = self.peek()
        if kind == "op" and text in _REL_OPS:
            return _REL_OPS[text]
        if kind == "cmd" and text[1:] in _REL_CMDS:
            return _REL_CMDS[text[1:]]
        return None

    def parse_relation(self):
        terms, ops = [self.parse_union()], []
        while (op := self.rel_op()) is not None:
            self.next()
            ops.append(op)
            terms.append(self.parse_union())
            if len(terms) > 20:
                raise ParseError("relation chain too long")
        return Relation(tuple(ops), tuple(terms)) if ops else terms[0]

    def parse_union(self):
        parts = [self.parse_sum()]
        while True:
            if self.accept("\\cup"):
                parts.append(self.parse_sum())
            elif self.accept("\\setminus", "\\backslash"):   # `(0, 36) \setminus \{9\}`, left to right
                left = Union(tuple(parts)) if len(parts) > 1 else parts[0]
                rest = set_difference(left, self.parse_sum())
                parts = list(rest.parts) if isinstance(rest, Union) else [rest]
            else:
                break
        return Union(tuple(parts)) if len(parts) > 1 else parts[0]

    def parse_sum(self):
        left = self.parse_product()
        while True:
            tok = self.peek()[1]
            if tok in ("+", "-"):
                self.next()
                left = self.add(left, self.parse_product(), 1 if tok == "+" else -1)
            elif tok in ("\\pm", "\\mp"):
                self.next()
                right = _as_expr(self.parse_product())
                sign = PM if tok == "\\pm" else -PM
                left = sp.Add(_as_expr(left), sign * right)
            else:
                return left

    def starts_atom(self):
        kind, text = self.peek()
        if kind in ("num", "sym"):
            return True
        if kind == "word":
            return not (self.in_cases and text.lower() in _CONDITION_WORDS)
        if kind == "op":
            return text in ("(", "{") or (text == "|" and self.abs_open == 0)
        if kind == "cmd":
            name = text[1:]
            return (name in _GREEK or name in _FUNCS or name in _CONSTANTS
                    or name in ("frac", "sqrt", "binom", "{", "lfloor", "lceil", "begin", "operatorname", "|"))
        return False

    def parse_product(self):
        left = self.parse_unary()
        while True:
            kind, text = self.peek()
            if text == "*" or (kind == "cmd" and text[1:] in _MUL_CMDS):
                self.next()
                left = self.mul(left, self.parse_unary())
            elif text == "/" or (kind == "cmd" and text[1:] in _DIV_CMDS):
                self.next()
                left = self.mul(left, build_power(self.parse_unary(), sp.Integer(-1)))
            elif self.starts_atom():
                right = self.parse_power()
                if not all(isinstance(v, (sp.Basic, Matrix)) for v in (left, right)):
                    raise ParseError("juxtaposed structures")
                left = self.mul(left, right)
            else:
                return left

    def parse_unary(self):
        tok = self.peek()[1]
        if tok == "-":
            self.next()
            return self.neg(self.parse_unary())
        if tok == "+":
            self.next()
            return self.parse_unary()
        if tok in ("\\pm", "\\mp"):
            self.next()
            sign = PM if tok == "\\pm" else -PM
            return sign * _as_expr(self.parse_unary())
        return self.parse_power()

    def parse_power(self):
        base = self.parse_postfix()
        if self.accept("^", "**"):
            self.enter()
            exp = self.parse_script()
            self.depth -= 1
            if base == 10 and isinstance(exp, sp.Integer) and exp < 0:
                self.shift = min(self.shift, int(exp))
            base = self.power(base, exp)
            while self.accept("!"):
                base = build_factorial(base)
        return base

    def parse_script(self):
        """The argument of ^: a braced group, or one signed atom (right associative: 9^9^9 = 9^(9^9))."""
        if self.peek()[1] == "{":
            return self.parse_atom()
        if self.peek()[1] in ("-", "+"):
            sign = -1 if self.next()[1] == "-" else 1
            return sign * _as_expr(self.parse_power())
        # x^23 in LaTeX means x^2 followed by 3, but models nearly always mean x^{23}: keep the number whole
        return self.parse_power()

    def parse_postfix(self):
        value = self.parse_atom()
        while self.peek()[1] == "!" and self.peek(1)[1] != "=":
            self.next()
            value = build_factorial(value)
        return value

    def macro_arg(self):
        """One argument of \\frac, \\sqrt, ...: a braced group or a single digit / letter / command."""
        kind, text = self.peek()
        if text == "{":
            return self.parse_atom()
        if kind == "num":
            self.next()
            if len(text) > 1:   # \frac12: the argument is only the first digit
                self.toks.insert(self.i, ("num", text[1:]))
                text = text[0]
            value, _ = build_number(text)
            return value
        if kind == "word":
            self.next()
            if len(text) > 1:
                self.toks.insert(self.i, ("word", text[1:]))
            return self.letter(text[0])
        return self.parse_atom()

    def letter(self, ch):
        if ch == "e":
            return sp.E
        if ch == "i":
            return sp.I
        return sp.Symbol(ch)

    def subscript_name(self):
        """Text of a subscript (`x_1`, `a_{n+1}` -> 'n+1'), used only to name a symbol."""
        if self.peek()[1] == "{":
            self.next()
            parts = []
            while self.peek()[1] != "}":
                kind, text = self.next()
                if kind == "eof" or len(parts) > 20:
                    raise ParseError("bad subscript")
                parts.append(text)
            self.next()
            name = "".join(parts)
        else:
            kind, text = self.next()
            if kind not in ("num", "word"):
                raise ParseError("bad subscript")
            name = text
        if not re.fullmatch(r"[A-Za-z0-9+\-]{1,20}", name):
            raise ParseError("bad subscript")
        return name

    def parse_atom(self):
        self.enter()
        try:
            return self._atom()
        finally:
            self.depth -= 1

    def _atom(self):
        kind, text = self.next()
        if kind == "num":
            value, decimals = build_number(text)
            if decimals is not None:
                self.decimals = max(self.decimals or 0, decimals)
            elif "e" in text.lower():   # 1e-9: a power of ten
                self.shift = min(self.shift, int(text.lower().partition("e")[2]))
            return value
        if kind == "word":
            return self.word(text)
        if kind == "sym":   # a derivative (`x'`, `\frac{dx}{dt}`): one symbol named with primes
            return sp.Symbol(text)
        if kind == "op":
            if text == "(" or text == "[":
                return self.group(text)
            if text == "{":
                items = self.parse_items(("}",))
                self.expect("}")
                if len(items) == 1:
                    return items[0]
                return Seq(tuple(items), "", "")
            if text == "|":
                return self.absolute("|")
        if kind == "cmd":
            return self.command(text[1:])
        raise ParseError(f"unexpected {text!r}")

    def group(self, opener):
        items = self.parse_items((")", "]"))
        closer = self.next()[1]
        if closer not in (")", "]"):
            raise ParseError("unclosed bracket")
        if len(items) == 1 and opener + closer in ("()", "[]"):
            return items[0]
        if len(items) < 2:
            raise ParseError("bad bracket")
        return Seq(tuple(items), opener, closer)

    def absolute(self, closer):
        self.abs_open += 1
        inner = self.parse_sum()
        self.abs_open -= 1
        self.expect(closer)
        return sp.Abs(_as_expr(inner))

    def word(self, text):
        low = text.lower()
        if text in _CONSTANTS or low in ("pi", "inf", "infinity", "infty"):
            return _CONSTANTS.get(text, _CONSTANTS.get(low))
        if text in _FUNCS:
            return self.function(text)
        if len(text) > 3:
            raise ParseError(f"word {text!r}")
        if len(text) > 1:
            # a run of letters is a product of single letters (xy, abc): hand back the rest, so that
            # powers and subscripts bind to the last letter only (6yx^2)
            self.toks.insert(self.i, ("word", text[1:]))
            return self.letter(text[0])
        if self.peek()[1] == "_":
            self.next()
            return sp.Symbol(f"{text}_{self.subscript_name()}")
        return self.letter(text)

    def function(self, name):
        func = _FUNCS[name]
        power = None
        base = None
        if name == "log" and self.accept("_"):
            base = self.macro_arg()
        if self.accept("^"):
            power = self.parse_script()
        if self.peek()[1] in ("(", "{"):
            arg = self.parse_atom()
        else:
            arg = self.parse_unary_product()
        arg = _as_expr(arg)
        value = sp.log(arg, _as_expr(base)) if base is not None else func(arg)
        if power is not None:
            if power == -1 and name in ("sin", "cos", "tan"):
                value = {"sin": sp.asin, "cos": sp.acos, "tan": sp.atan}[name](arg)
            else:
                value = build_power(value, power)
        return value

    def parse_unary_product(self):
        """Argument of `\\sin 2x`: a signed atom followed by juxtaposed atoms, no explicit operators."""
        value = _as_expr(self.parse_unary())
        while self.starts_atom() and not (self.peek()[0] == "cmd" and self.peek()[1][1:] in _FUNCS):
            value = value * _as_expr(self.parse_power())
        return value

    def command(self, name):
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name in _GREEK:
            name = _GREEK_ALIASES.get(name, name)
            sym = sp.Symbol(name)
            if self.peek()[1] == "_":
                self.next()
                sym = sp.Symbol(f"{name}_{self.subscript_name()}")
            return sym
        if name in _FUNCS:
            if name == "sqrt":
                return self.root()
            return self.function(name)
        if name == "frac":
            num = _as_expr(self.macro_arg())
            den = _as_expr(self.macro_arg())
            return sp.Mul(num, build_power(den, sp.Integer(-1)))
        if name == "binom":
            return build_binomial(self.macro_arg(), self.macro_arg())
        if name == "operatorname":
            self.expect("{")
            _, fname = self.next()
            self.expect("}")
            if fname not in _FUNCS:
                raise ParseError(f"unknown operator {fname!r}")
            return self.function(fname)
        if name == "{":
            items = self.parse_items(("\\}",))
            self.expect("\\}")
            return SetOf(tuple(items))
        if name in ("emptyset", "varnothing"):
            return SetOf(())
        if name in ("lfloor", "lceil"):
            inner = _as_expr(self.parse_sum())
            self.expect("\\rfloor" if name == "lfloor" else "\\rceil")
            return sp.floor(inner) if name == "lfloor" else sp.ceiling(inner)
        if name == "|":
            return self.absolute("\\|")
        if name == "begin":
            return self.matrix()
        raise ParseError(f"unsupported command \\{name}")

    def root(self):
        index = None
        if self.accept("["):
            index = _as_expr(self.parse_sum())
            self.expect("]")
        radicand = _as_expr(self.macro_arg())
        if index is None:
            return sp.sqrt(radicand)
        return build_power(radicand, build_power(index, sp.Integer(-1)))

    def env_name(self):
        self.expect("{")
        _, name = self.next()
        while self.peek()[1] == "*":
            self.next()
        self.expect("}")
        return name

    def matrix(self):
        env = self.env_name()
        if env == "cases":
            return self.cases()
        if env not in _MATRIX_ENVS:
            raise ParseError(f"environment {env}")
        if env == "array" and self.peek()[1] == "{":   # column spec {cc}
            while self.next()[1] != "}":
                if self.peek()[0] == "eof":
                    raise ParseError("bad array")
        rows, row = [], []
        while True:
            if self.peek()[1] == "\\end":
                break
            row.append(_as_expr(self.parse_sum()))
            sep = self.next()[1]
            if sep == "&":
                continue
            if sep == "\\\\":
                rows.append(tuple(row))
                row = []
                continue
            if sep == "\\end":
                self.i -= 1
                break
            raise ParseError("bad matrix")
        if row:
            rows.append(tuple(row))
        self.next()
        if self.env_name() != env:
            raise ParseError("mismatched environment")
        if not rows or len({len(r) for r in rows}) != 1 or sum(map(len, rows)) > MAX_MATRIX_ENTRIES:
            raise ParseError("ragged or too large matrix")
        return Matrix(tuple(rows), det=env == "vmatrix")

    def cases(self):
        """`\\begin{cases} expr & cond \\\\ ... \\end{cases}`: every piece needs a condition (`x \\ge 0`, `if x<0`,
        `otherwise`); a system of equations (`x=1 \\\\ y=2`) is not parsed."""
        pieces = []
        self.in_cases += 1
        try:
            while self.peek()[1] != "\\end":
                expr = _as_expr(self.parse_sum())
                self.accept(",")
                had_amp = self.accept("&") is not None
                self.accept(",")
                cond = self.condition(required=not had_amp)
                self.accept(",", ";", ".")
                pieces.append((expr, cond))
                if len(pieces) > MAX_CASES:
                    raise ParseError("too many cases")
                if self.accept("\\\\") is None and self.peek()[1] != "\\end":
                    raise ParseError("bad cases")
        finally:
            self.in_cases -= 1
        self.next()
        if self.env_name() != "cases" or not pieces:
            raise ParseError("bad cases")
        return Cases(tuple(pieces))

    def condition(self, required):
        """The condition of a piece: None for `otherwise`/`else`, else a relation."""
        kind, text = self.peek()
        if kind == "word" and text.lower() in _LEAD_WORDS:
            self.next()
            kind, text = self.peek()
        elif required:
            raise ParseError("a piece without a condition")
        if kind == "word" and text.lower() in _OTHERWISE_WORDS:
            self.next()
            return None
        cond = self.parse_relation()
        if not isinstance(cond, Relation):
            raise ParseError("a condition must be a relation")
        return cond


# ---------------------------------------------------------------------------------------------------
# Derivatives
# ---------------------------------------------------------------------------------------------------
_DIFF_NUM = re.compile(r"d(?:\^\{?([1-9])\}?)?(?:([a-zA-Z])|\\([a-zA-Z]+))?(?:\(([a-zA-Z])\))?")
_DIFF_DEN = re.compile(r"d(?:([a-zA-Z])|\\([a-zA-Z]+))(?:\^\{?([1-9])\}?)?")
MAX_DIFF_GROUP = 12   # tokens in the braces of `\frac{d^2 x}{dt^2}`


def _name(tok) -> str | None:
    """The name of a one-letter variable or a Greek letter token (`x`, `\\omega`), else None."""
    kind, text = tok
    if kind == "word" and len(text) == 1 and text not in "ei":
        return text
    if kind == "cmd" and text[1:] in _GREEK:
        return _GREEK_ALIASES.get(text[1:], text[1:])
    return None


def _letter_or_greek(letter: str | None, greek: str | None) -> str | None:
    if letter:
        return letter if letter not in "ei" else None
    return _GREEK_ALIASES.get(greek, greek) if greek in _GREEK else None


def _group_text(toks, i) -> tuple[str, int] | None:
    """The tokens of the braces opening at toks[i], joined, and the index after them; None when unbalanced/long."""
    depth, parts = 0, []
    for j in range(i, min(len(toks), i + MAX_DIFF_GROUP)):
        text = toks[j][1]
        depth += (text == "{") - (text == "}")
        parts.append(text)
        if depth == 0:
            return "".join(parts[1:-1]), j + 1
    return None


def _applied(toks, i, var: str | None) -> int:
    """Index after `(t)` at toks[i] (the function applied to its variable), else i."""
    if (i + 2 < len(toks) and toks[i][1] == "(" and toks[i + 2][1] == ")" and (arg := _name(toks[i + 1]))
            and (var is None or arg == var)):
        return i + 3
    return i


def _diff_operand(toks, i, var: str) -> tuple[str, int]:
    """The function a derivative operator (`\\frac{d}{dt}`, `d/dt`) applies to: `x`, `x(t)`, `(x)`, `(x(t))`."""
    if i < len(toks) and (name := _name(toks[i])):
        return name, _applied(toks, i + 1, var)
    if i < len(toks) and toks[i][1] == "(" and i + 1 < len(toks) and (name := _name(toks[i + 1])):
        j = _applied(toks, i + 2, var)
        if j < len(toks) and toks[j][1] == ")":
            return name, j + 1
    raise ParseError("a derivative of an expression")


def _frac_derivative(toks, i):
    """`\\frac{dx}{dt}`, `\\frac{d^2x}{dt^2}`, `\\frac{d\\omega}{dt}`, `\\frac{d}{dt} x` at toks[i] (`\\frac`):
    (function, variable, order, index after), or None when it is an ordinary fraction."""
    if i + 1 >= len(toks) or toks[i + 1][1] != "{" or (num := _group_text(toks, i + 1)) is None:
        return None
    if num[1] >= len(toks) or toks[num[1]][1] != "{" or (den := _group_text(toks, num[1])) is None:
        return None
    mn, md = _DIFF_NUM.fullmatch(num[0]), _DIFF_DEN.fullmatch(den[0])
    if mn is None or md is None or (var := _letter_or_greek(md.group(1), md.group(2))) is None:
        return None
    order = int(mn.group(1) or 1)
    if order != int(md.group(3) or 1):
        raise ParseError("a derivative of mismatched orders")
    if mn.group(2) or mn.group(3):
        func = _letter_or_greek(mn.group(2), mn.group(3))
        if func is None:
            return None
        return func, var, order, den[1]
    func, end = _diff_operand(toks, den[1], var)
    return func, var, order, end


def _slash_derivative(toks, i):
    """`dx/dt`, `d\\omega/dt`, `d/dt x` at toks[i] (a word starting with d): (function, variable, 1, index after)."""
    text = toks[i][1]
    func = None
    if len(text) == 2:
        func, j = (text[1] if text[1] not in "ei" else None), i + 1
        if func is None:
            return None
    elif text == "d" and i + 1 < len(toks) and toks[i + 1][1] != "/":
        func, j = _name(toks[i + 1]), i + 2
        if func is None:
            return None
    else:
        j = i + 1
    if j + 1 >= len(toks) or toks[j][1] != "/":
        return None
    den, k = toks[j + 1], j + 2
    if den[0] == "word" and len(den[1]) == 2 and den[1][0] == "d":
        var = den[1][1] if den[1][1] not in "ei" else None
    elif den[1] == "d" and k < len(toks):
        var, k = _name(toks[k]), k + 1
    else:
        return None
    if var is None:
        return None
    if func is None:
        func, k = _diff_operand(toks, k, var)
    return func, var, 1, k


def derivatives(toks):
    """Derivative notations as single symbols named with primes: `x'`, `\\dot x`, `\\frac{dx}{dt}`, `dx/dt` and
    `\\frac{d}{dt}x` are all the token ("sym", "x'"); `x''` and `\\frac{d^2x}{dt^2}` are "x''". The variable of
    differentiation is not part of the name. A function written applied to its variable (`\\omega(t)` in an
    equation with `\\frac{d\\omega}{dt}`) is the function. Returns the tokens and the names of the differentiated
    functions, their derivatives and the variables: the unknowns of the equation (README.md: Derivatives)."""
    if not any(t[1] in ("'", "\\dot", "\\ddot") or (t[0] == "word" and t[1][0] == "d") for t in toks):
        return toks, frozenset()
    out, unknowns, funcs = [], set(), {}
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        found = None
        if text == "\\frac":
            found = _frac_derivative(toks, i)
        elif kind == "word" and text[0] == "d" and len(text) <= 2:
            found = _slash_derivative(toks, i)
        elif text in ("\\dot", "\\ddot"):
            j = i + 1
            if j < len(toks) and toks[j][1] == "{" and j + 2 < len(toks) and toks[j + 2][1] == "}":
                func, end = _name(toks[j + 1]), j + 3
            else:
                func, end = (_name(toks[j]) if j < len(toks) else None), j + 1
            if func is None:
                raise ParseError("a dot over something other than a variable")
            found = func, None, 1 if text == "\\dot" else 2, _applied(toks, end, None)
        elif i + 1 < len(toks) and toks[i + 1][1] == "'" and (kind == "word" or _name(toks[i])):
            if kind == "word" and len(text) > 1:
                out.append(("word", text[:-1]))   # `kx'`: the prime is on the last letter
                text = text[-1]
            func = text if kind == "word" else _name(toks[i])
            if func is not None and func not in "ei":
                j = i + 1
                while j < len(toks) and toks[j][1] == "'":
                    j += 1
                end = _applied(toks, j, None)
                var = toks[j + 1][1] if end > j else None
                found = func, var, j - i - 1, end
        if found is None:
            out.append(toks[i])
            i += 1
            continue
        func, var, order, i = found
        out.append(("sym", func + "'" * order))
        unknowns.update({func, func + "'" * order} | ({var} if var else set()))
        funcs.setdefault(func, var)
    if not funcs:
        return toks, frozenset()
    # `2B\omega(t)` next to `\frac{d\omega}{dt}`: the function applied to its variable is the function
    final, i = [], 0
    while i < len(out):
        kind, text = out[i]
        name = _name(out[i]) if kind != "word" or len(text) == 1 else text[-1]
        if name in funcs and (end := _applied(out, i + 1, funcs[name])) > i + 1:
            if kind == "word" and len(text) > 1:
                final.append(("word", text[:-1]))
                final.append(("word", text[-1]))
            else:
                final.append(out[i])
            i = end
            continue
        final.append(out[i])
        i += 1
    return final, frozenset(unknowns)


def _max_nesting(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch in "({[":
            depth += 1
            best = max(best, depth)
        elif ch in ")}]":
            depth -= 1
    return best


def _expand_pm(value):
    """Turn an expression holding the `\\pm` sign into the set of both values."""
    if isinstance(value, sp.Basic) and value.has(PM):
        return SetOf((value.subs(PM, 1), value.subs(PM, -1)))
    if isinstance(value, SetOf) or (isinstance(value, Seq) and not value.left):
        items = []   # {1 \\pm \\sqrt5, -2} and the list `1 \\pm \\sqrt5, -2` hold three values
        for v in value.items:
            if isinstance(v, sp.Basic) and v.has(PM):
                items += [v.subs(PM, 1), v.subs(PM, -1)]
            else:
                items.append(_expand_pm(v))
        return SetOf(tuple(items)) if isinstance(value, SetOf) else Seq(tuple(items), "", "")
    if isinstance(value, Seq):
        return Seq(tuple(_expand_pm(v) for v in value.items), value.left, value.right)
    if isinstance(value, Relation):
        return Relation(value.ops, tuple(_expand_pm(v) for v in value.terms))
    return value


def parse_answer(text: str) -> Parsed:
    """Parse a normalised answer; raises ParseError for anything outside the subset or too costly."""
    if len(text) > MAX_CHARS:
        raise ParseError("answer too long")
    if _max_nesting(text) > MAX_DEPTH:
        raise ParseError("nesting too deep")
    tokens, unknowns = derivatives(tokenize(text))
    parser = _Parser(tokens)
    value = parser.parse()
    decimals = parser.decimals
    if decimals is not None and parser.shift < 0:
        decimals -= parser.shift   # a decimal scaled by 10^-k is written to k more places
    return Parsed(_expand_pm(value), decimals, unknowns)
