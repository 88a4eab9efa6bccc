"""String normal forms of extracted answers (no sympy), label splitting and text comparison."""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from .extraction import MAX_ANSWER_CHARS, braced, prose_words, sanitize, unbalanced
from .numbers import simple_number


@dataclass
class Normalized:
    text: str
    percent: bool = False
    unit: str = ""            # a bare one-letter unit kept after a number (`\frac12 m`): it may be a variable
    bare: str = ""            # the text without that unit
    stripped_unit: str = ""   # the unit dropped after a number (`5\text{ m}`: `m`)
    bound: tuple = ()         # the variables of a function definition `f(x) = ...` whose left side was dropped


_WRAPPERS = ("text", "textbf", "textit", "textrm", "textnormal", "textsf", "texttt", "mathrm", "mathbf",
             "mathit", "mathsf", "mathtt", "mbox", "hbox", "boldsymbol", "bm", "emph", "boxed", "fbox")
_WRAPPER_RE = re.compile(r"\\(" + "|".join(_WRAPPERS) + r")\s*(?=\{)")
_SUBS = [   # (pattern, replacement), applied in order
    (re.compile(r"\\[dtc]frac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\[dt]binom(?![a-zA-Z])"), r"\\binom"),
    (re.compile(r"\\(?:left|right)\s*\.|\\(?:left|right|[bB]igg?[lr]?)(?![a-zA-Z])"), ""),
    (re.compile(r",\s*\\!\s*(?=\d{3}(?!\d))"), ","),   # 10,\!080: MATH's thousands separator
    (re.compile(r"(?<!\\)\\!"), ""),   # negative thin space
    (re.compile(r"\\(?:displaystyle|textstyle|scriptstyle|quad|qquad|limits|nolimits)(?![a-zA-Z])|(?<!\\)\\[,;: ]|~"),
     " "),
    (re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree(?![a-zA-Z])|\^\s*\{\s*o\s*\}"), ""),
    # `3{,}14`: LaTeX's decimal comma (a comma followed by exactly three digits is a thousands separator)
    (re.compile(r"(?<=\d)\s*\{\s*,\s*\}\s*(?=\d)(?!\d{3}(?!\d))"), "."),
    (re.compile(r"\{\s*,\s*\}"), ""),   # 14{,}916 and 14 {, }916
    (re.compile(r"\\q?quad(?=[a-zA-Z])"), " "),   # `\quadx_2`: a space glued to the next name
    (re.compile(r"\\(?:lvert|rvert|vert|mid)(?![a-zA-Z])"), "|"),
    (re.compile(r"\\(?:lVert|rVert|Vert)(?![a-zA-Z])"), r"\\|"),
    (re.compile(r"\\(?:dots|ldots|cdots)(?![a-zA-Z])"), "..."),
    (re.compile(r"\\(?:\$|euro|pounds)|\$|€|£|¥|\b(?:USD|dollars?|euros?)\b"), ""),
    (re.compile(r"\\(?:dollar|hline)(?![a-zA-Z])"), ""),
    (re.compile(r"\\(?:textdegree)(?![a-zA-Z])"), ""),
]
_UNICODE = {"−": "-", "–": "-", "×": "\\times ", "·": "\\cdot ", "÷": "/", "π": "\\pi ", "∞": "\\infty ",
            "√": "\\sqrt", "≤": "\\le ", "≥": "\\ge ", "≠": "\\ne ", "∪": "\\cup ", "²": "^2", "³": "^3",
            "\u2009": " ", "\u00a0": " ", "\u202f": " ", "’": "'", "ⅈ": "i"}
_GREEK_LETTERS = {   # Unicode Greek letters as their LaTeX names (`α` = `\alpha`); the Latin look-alikes stay letters
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ϵ": "epsilon", "ζ": "zeta", "η": "eta",
    "θ": "theta", "ϑ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu", "ξ": "xi",
    "ρ": "rho", "σ": "sigma", "τ": "tau", "υ": "upsilon", "φ": "phi", "ϕ": "phi", "χ": "chi", "ψ": "psi",
    "ω": "omega", "Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda", "Ξ": "Xi", "Π": "Pi", "Σ": "Sigma",
    "Φ": "Phi", "Ψ": "Psi", "Ω": "Omega"}
_GREEK_TEX = {ch: f"\\{name} " for ch, name in _GREEK_LETTERS.items()}
_GREEK_RANGE = re.compile("[" + "".join(_GREEK_LETTERS) + "]")
_PERCENT = re.compile(r"\\%|%|(?:(?<=\d)|\s*\b)(?:percent(?:age)?|pct)\b")
_UNIT = (r"(?:(?:square|sq\.?|cubic|cu\.?)\s*)?"
         r"(?:units?|m/s|km/h|ft/s|cm|centimet(?:er|re)s?|mm|millimet(?:er|re)s?|km|"
         r"kilomet(?:er|re)s?|met(?:er|re)s?|inch(?:es)?|in|feet|foot|ft|yards?|yd|miles?|mi|mph|kg|"
         r"kilograms?|grams?|g|mg|pounds?|lbs?|oz|ounces?|lit(?:er|re)s?|ml|gallons?|seconds?|secs?|sec|"
         r"minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|degrees?|deg|radians?|rad|cents?|"
         r"m|s|h|l)(?:\s*\^\s*\{?\s*[23]\s*\}?|[23²³])?")
_TRAILING_UNIT = re.compile(rf"(?<=[\d}})a-zA-Z])\s*\b{_UNIT}\s*\.?$|(?<=[\d}})])\s+{_UNIT}\s*\.?$")
# bare units that also read as variables (a mass `m`, `g`, a height `h`, a length `l`, `s`; the weight `mg`)
_UNIT_WORD = re.compile(_UNIT)
_AMBIGUOUS_UNIT = re.compile(r"(?:[mshlg]|mg)(?:\^[23])?")
_UNIT_POWER = re.compile(r"\^?\{?([23])\}?$")
_WRAPPED_TAIL = re.compile(r"\\(?:" + "|".join(_WRAPPERS) + r")\s*\{([^{}]*)\}\s*(?:\^\s*\{?\s*[23]\s*\}?)?\s*\.?\s*$")
_CONSTANT_PARTS = re.compile(r"\\(?:frac|sqrt|pi|times|cdot|div)(?![a-zA-Z])|(?<=\d)[eE](?=[-+]?\d)")
_GLUED_UNIT = re.compile(r"(?<=\d)(?:weeks?|days?|hours?|minutes?|seconds?|months?|years?|met(?:er|re)s?|"
                         r"inches|feet|miles?|cents|dollars?|degrees|units)$")   # words only: `10cm` could be a product
_TIME_OF_DAY = re.compile(r"(?i)(\d{1,2}):([0-5]\d)(?::([0-5]\d))?\s*(?:([ap])\.?\s*m\b\.?)?")
_NUMBER_THEN_WORDS = re.compile(r"([-+]?[\d.,/]*\d)\s+([A-Za-z][A-Za-z\s'\-]{0,40})")
_BOLD_START = re.compile(r"(^\s*|[=:]\s*)\*\*(?=[^\s*])")   # a bold opener whose closer was cut off
_BOLD_END = re.compile(r"(?<=[^\s*])\*\*$")
_BOLD = re.compile(r"(?<![\w)\]}*])\*\*(?=[^\s*])(.*?[^\s*])\*\*(?![\w(\[{*])")   # markdown `**131**`
_LOCALE_DECIMAL = re.compile(r"([-+]?[1-9]\d{0,2}(?:(?:\.\d{3})+|(?: \d{3})+)),(\d+)")   # 1.234,5 and 1 234,5
_THOUSANDS = re.compile(r"[-+]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
_ARITH_NUMBER = r"(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.\d+)?"
_THOUSANDS_ARITHMETIC = re.compile(   # numbers with thousands commas joined by operators, no brackets: `1,234/2`
    rf"[-+]?{_ARITH_NUMBER}(?:\s*(?:[-+*/^]|\\times|\\cdot|\\div)\s*{_ARITH_NUMBER})+")
_ORDINAL = re.compile(r"(?<=\d)\s*(?:\^\s*\{\s*(?:st|nd|rd|th)\s*\}|\^\s*(?:st|nd|rd|th)|(?:st|nd|rd|th))(?![A-Za-z])")
_SPACE_THOUSANDS = re.compile(r"[-+]?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?")
_APPROX_TAIL = re.compile(r"\s*\\approx.*$", re.S)
# 2\frac{1}{4}, 1\frac12, 2 \frac{5}{8}: an integer and a fraction with digit-only arguments
_MIXED_NUMBER = re.compile(
    r"(?<![\d.}^_\\a-zA-Z])(\d{1,15})\s*\\frac\s*(?:\{\s*(\d{1,15})\s*\}|(\d))\s*(?:\{\s*(\d{1,15})\s*\}|(\d))(?![\d.])")
# `4 4/9`, `1 000 4/9`: an integer, one space, a plain fraction (after whitespace is collapsed)
_MIXED_SLASH = re.compile(
    r"(?<![\d.,}^_\\a-zA-Z/*])(\d{1,3}(?: \d{3})+|\d{1,15}) (\d{1,15})/(\d{1,15})(?![\d.^_/])")
_PAREN_RATIO = re.compile(r"([-+]?)\((\d+/\d+)\)")
_AND_OR = re.compile(r"\s*,?\s+(?:and|or)\s+")
_AND_OR_GLUED = re.compile(r"(?<=[)\]])\s*(?:and|or)\s*(?=[(\[])")   # `(11,7)or(7,11)`
_VAR_IN = re.compile(r"^[a-zA-Z]\s*\\in\s*")
_TIMES_X = re.compile(r"(?<=\d)\s*[xX]\s*(?=10\s*\^)")
_TRIG = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)(?![a-zA-Z])")
_DEGREE_NUMBER = re.compile(
    r"(\d+(?:\.\d+)?)\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|°|\\degree(?![a-zA-Z]))")
_REPEATING = re.compile(r"(?<![\d.])(\d*)\.(\d*)\s*\\(?:overline|bar|dot)\s*\{\s*(\d{1,12})\s*\}")
_INEQUALITY = re.compile(r"[<>]|\\(?:le|ge|leq|geq|lt|gt)(?![a-zA-Z])")
_FUNCTION_OF_VAR = re.compile(r"(?<![\\a-zA-Z])([a-zA-Z])\s*\(\s*[a-zA-Z]\s*\)")
_BOUND_VAR = r"(?:[a-zA-Z]|\\(?:alpha|beta|gamma|theta|phi|varphi|psi|omega|tau|lambda|mu|sigma|rho|xi|eta|zeta|nu))"
_FUNCTION_LHS = re.compile(
    rf"^[a-zA-Z](?:_\{{?\w{{1,3}}\}}?)?\s*\(\s*({_BOUND_VAR}(?:\s*,\s*{_BOUND_VAR}){{0,3}})\s*\)\s*=(?!=)")
_REALS_MINUS = re.compile(r"\\mathbb\s*\{?\s*R\s*\}?(?=\s*\\(?:setminus|backslash)(?![a-zA-Z]))")
_ALL_REALS = re.compile(r"(?i)\\mathbb\s*\{?\s*R\s*\}?|(?:the\s+set\s+of\s+)?all\s+real(?:\s+numbers|s)?|"
                        r"real\s+numbers")
_UNITS_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
                "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_TENS_WORDS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
               "ninety": 90}
_NUMBER_WORD = re.compile(r"(?i)(negative\s+|minus\s+)?(?:(%s)(?:[\s-]+(%s))?|(%s)|(one\s+)?hundred)" % (
    "|".join(_TENS_WORDS), "|".join(w for w in _UNITS_WORDS if 0 < _UNITS_WORDS[w] < 10), "|".join(_UNITS_WORDS)))


def _number_word(s: str) -> str | None:
    """`five` -> `5`, `twenty-one` -> `21`, `negative three` -> `-3` (a whole answer written in words, 0-100)."""
    m = _NUMBER_WORD.fullmatch(s.strip())
    if m is None:
        return None
    if m.group(2):
        value = _TENS_WORDS[m.group(2).lower()] + (_UNITS_WORDS[m.group(3).lower()] if m.group(3) else 0)
    elif m.group(4):
        value = _UNITS_WORDS[m.group(4).lower()]
    else:
        value = 100
    return ("-" if m.group(1) and value else "") + str(value)


def _repeating_decimal(m: re.Match) -> str:
    """`0.1\\overline{6}` -> `\\frac{1}{6}`: the exact value of a repeating decimal."""
    whole, fixed, period = m.group(1) or "0", m.group(2), m.group(3)
    value = (Fraction(int(whole)) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
             + Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed)))
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _mixed_value(whole: str, num: str, den: str) -> str:
    """`(40/9)` for 4 and 4/9: the exact value of a mixed number, kept in parentheses for any sign before it."""
    w, n, d = int(whole.replace(" ", "")), int(num), int(den)
    if n >= d:   # `11 6/6` is no way to write 12: a malformed answer, equal only to the same text
        return f"\\mixednumber{{{w}}}{{{n}}}{{{d}}}"
    value = Fraction(w) + Fraction(n, d)
    return f"({value.numerator}/{value.denominator})"


def _time_of_day(m: re.Match) -> str:
    """`08:34 P.M.` and `20:34:00` -> `20:34`: a time of day on the 24-hour clock, seconds only when not zero."""
    hour, minute, second, half = int(m.group(1)), m.group(2), m.group(3), (m.group(4) or "").lower()
    if half and 1 <= hour <= 12:
        hour = hour % 12 + (12 if half == "p" else 0)
    elif half or hour > 24:
        return m.group()
    return f"{hour}:{minute}" + (f":{second}" if second and second != "00" else "")


def _unwrap_commands(s: str) -> str:
    """`\\text{ cm}` -> ` cm `, for the whitelisted wrappers, innermost-agnostic and linear per wrapper."""
    for _ in range(200):
        m = _WRAPPER_RE.search(s)
        if m is None:
            break
        content, end = braced(s, m.end())
        if content is None:
            s = s[:m.start()] + s[m.end():]
            continue
        s = s[:m.start()] + " " + content + " " + s[end:]
    return s


def normalize_answer(answer: str) -> Normalized:
    """String-level normal form of an extracted answer (never parses or evaluates anything)."""
    s = sanitize(answer) or ""
    s = s.strip()
    if len(s) > MAX_ANSWER_CHARS:   # compared as strings only: skip the regex work, keep it linear
        return Normalized(" ".join(s.split()))
    for old, new in _UNICODE.items():
        if old in s:
            s = s.replace(old, new)
    if _GREEK_RANGE.search(s):
        s = _GREEK_RANGE.sub(lambda m: _GREEK_TEX[m.group()], s)   # `α` is `\alpha`
    if "**" in s:   # markdown bold around the answer (`x = **131**`); `2**3` is a power
        s = _BOLD.sub(r"\1", s).strip()
        s = _BOLD_END.sub("", _BOLD_START.sub(r"\1", s))   # `n = **131`: the closer went with the extraction
    wrapped = _WRAPPED_TAIL.search(s) if "\\" in s else None
    wrapped_unit = _unit_name(wrapped.group(1).split()[-1]) if wrapped and wrapped.group(1).split() else ""
    s = _unwrap_commands(s)
    s = s.replace("\\(", " ").replace("\\)", " ").replace("\\[", " ").replace("\\]", " ")
    if "\\overline" in s or "\\bar" in s or "\\dot" in s:
        s = _REPEATING.sub(_repeating_decimal, s)   # 0.\overline{3} is exactly 1/3
    if "10" in s:
        s = _TIMES_X.sub(r"\\times ", s)   # 5.0x10^-3, 2 X 10^5: scientific notation
    if _TRIG.search(s):
        s = _DEGREE_NUMBER.sub(r"(\1\\pi/180)", s)   # \sin 30^\circ: degrees inside a trig function are angles
    for pattern, repl in _SUBS:
        s = pattern.sub(repl, s)
    percent = bool(_PERCENT.search(s))
    if percent:
        s = _PERCENT.sub(" ", s)
    s = " ".join(s.split())
    s = _VAR_IN.sub("", s)
    bound = ()
    m = _FUNCTION_LHS.match(s)
    if m and "=" not in s[m.end():]:
        s = s[m.end():].strip()   # "f(x) = 2x+3" is the expression 2x+3
        bound = tuple(v.strip().lstrip("\\") for v in m.group(1).split(","))
    if "=" not in s and _INEQUALITY.search(s):
        s = _FUNCTION_OF_VAR.sub(r"\1", s)   # `0 < f(x) < 1` bounds the value f: the interval (0, 1)
    if "\\setminus" in s or "\\backslash" in s:
        s = _REALS_MINUS.sub(r"(-\\infty,\\infty)", s)   # `\mathbb{R} \setminus \{0\}`
    if _ALL_REALS.fullmatch(s):
        s = "(-\\infty,\\infty)"
    if "=" in s.split("\\approx", 1)[0]:
        s = _APPROX_TAIL.sub("", s)   # "x = 1/3 \approx 0.33": the exact value is the answer
    if "\\frac" in s:   # 2\frac{1}{4} and 1\frac12 are the mixed numbers 9/4 and 3/2, not products
        s = _MIXED_NUMBER.sub(lambda m: _mixed_value(m.group(1), m.group(2) or m.group(3), m.group(4) or m.group(5)), s)
    if "/" in s:   # `4 4/9` is 40/9 (a sign before it applies to the whole), not 4 * 4/9
        s = _MIXED_SLASH.sub(lambda m: _mixed_value(*m.groups()), s)
    if "st" in s or "nd" in s or "rd" in s or "th" in s:
        s = _ORDINAL.sub("", s)   # `12^{\mathrm{th}}` grade, `3rd`: the number
    s = _AND_OR.sub(", ", s)   # "1 and 2", "x = 1 or x = 2": lists of solutions
    if "and" in s or "or" in s:
        s = _AND_OR_GLUED.sub(", ", s)
    unit = bare = stripped = ""
    for _ in range(3):   # "12 square feet.", "5 cm^2"
        s = s.strip().rstrip(".,;:?").strip()
        m = _TRAILING_UNIT.search(s)
        if m and _is_number(s[:m.start()]):   # a unit only after a number (README.md: Units)
            name = _unit_name(m.group())
            if _AMBIGUOUS_UNIT.fullmatch(name) and name.split("^")[0] != wrapped_unit.split("^")[0]:
                unit, bare = name, s[:m.start()].strip()   # `\frac12 m`: maybe a mass; kept unless both sides have it
                break
            stripped, s = name, s[:m.start()]
        s = _GLUED_UNIT.sub("", s)   # "10weeks"
    m = _NUMBER_THEN_WORDS.fullmatch(s) if not unit else None
    if m and not re.search(r"\b(?:and|or)\b", m.group(2)) and _word_not_variable(m.group(2)):
        s = m.group(1)   # "5 apples", "125 miles"
    s = s.strip().rstrip(".,;:?").strip()
    if s.startswith("="):
        s = s[1:].strip()
    if s[:1].isalpha() and (word := _number_word(s)) is not None:
        s = word
    if ":" in s and (m := _TIME_OF_DAY.fullmatch(s)):
        s = _time_of_day(m)
    if m := _PAREN_RATIO.fullmatch(s):
        s = m.group(1).replace("+", "") + m.group(2)   # a whole answer `(40/9)` from a mixed number is `40/9`
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    elif "," in s and _THOUSANDS_ARITHMETIC.fullmatch(s) and _THOUSANDS.search(s):
        s = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), s)   # `1,234/2`: one number in arithmetic
    elif _SPACE_THOUSANDS.fullmatch(s):
        s = s.replace(" ", "")
    elif m := _LOCALE_DECIMAL.fullmatch(s):   # `1.234,5`: a decimal-comma locale, so the comma is a decimal mark
        s = re.sub(r"[. ]", "", m.group(1)) + "." + m.group(2)
    if s[:1] == "{" and s[-1:] == "}" and braced(s, 0)[1] == len(s) and s[1:-1].strip():
        s = "\\{" + s[1:-1] + "\\}"   # `{-2}`: a set written with bare braces
    return Normalized(s, percent, unit, bare, stripped, bound)


def _unit_name(text: str) -> str:
    """`\\text{ m}^{2}.` -> `m^2`: a unit without spacing, braces and a final period."""
    name = re.sub(r"[\s{}.]", "", text)
    return _UNIT_POWER.sub(r"^\1", name) if len(name) > 1 else name


def _is_number(text: str) -> bool:
    """A number (digits, fractions, roots, pi; after `label =`): what a unit may follow."""
    value = _CONSTANT_PARTS.sub(" ", text.rsplit("=", 1)[-1])
    return bool(re.search(r"\d", value)) and not re.search(r"[A-Za-z\\]", value)


def _word_not_variable(words: str) -> bool:
    """`5 apples` drops its words; `5 x` and `5 mg` keep a letter that may be a variable."""
    first = words.split()[0]
    return len(first) >= 3 or bool(_UNIT_WORD.fullmatch(first) and not _AMBIGUOUS_UNIT.fullmatch(first))


_LABEL_ATOM = (r"(?:[A-Za-z]|\\(?:alpha|beta|gamma|delta|theta|lambda|mu|phi|varphi|psi|omega|sigma|rho|tau))"
               r"(?:_\{?[A-Za-z0-9]{1,6}\}?)?'{0,2}")
_LABEL_NAME = rf"(?:{_LABEL_ATOM}|[A-Z]{{2,6}}(?:_\{{?[A-Za-z0-9]{{1,6}}\}}?)?)"   # x, x_1, V_{1}, AB, S_{MBCN}
_LABEL = re.compile(rf"\s*(?:{_LABEL_NAME}(?:\s*:\s*{_LABEL_NAME}){{0,5}}|"          # A:B, V_1:V_2
                    rf"\(\s*{_LABEL_NAME}(?:\s*,\s*{_LABEL_NAME}){{1,7}}\s*\)|"       # (p, q)
                    rf"\\frac\s*\{{\s*{_LABEL_NAME}\s*\}}\s*\{{\s*{_LABEL_NAME}\s*\}})\s*")   # \frac{NO}{BO}
_NOT_A_VALUE = re.compile(r"=|<|>|\\(?:le|ge|leq|geq|ne|neq|lt|gt)(?![a-zA-Z])")
_OPENERS, _CLOSERS = "([{", ")]}"


def top_split(s: str, seps: str) -> list[str]:
    """s split at the separators outside brackets (linear; brackets need not be matched, as in `[1, 2)`)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth = max(0, depth - 1)
        elif ch in seps and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def _labelled(item: str) -> tuple[str, str] | None:
    """(label, value) of `AB = 4`, `(p,q) = (3,2)`, `V_1:V_2 = 11:21`; None when the left side is no label."""
    lhs, eq, value = item.partition("=")
    if not eq or not value.strip() or _NOT_A_VALUE.search(value) or not _LABEL.fullmatch(lhs):
        return None
    return re.sub(r"[\s{}]", "", lhs), value.strip()


def _split_labels(text: str) -> tuple[list[str], str] | None:
    """Labels and the bare values of an answer made of `label = value` items: `AB=4, CD=5` -> ([AB, CD], `4, 5`);
    groups separated by `;` with the same labels are tuples (`p=5,q=2;p=7,q=2` -> `(5,2), (7,2)`)."""
    if "=" not in text or len(text) > MAX_ANSWER_CHARS:
        return None
    groups = top_split(text, ";")
    split = []
    for group in groups:
        raw = top_split(group, ",")
        items = [_labelled(item) for item in raw]
        if (len(groups) == 1 and items[0] is not None
                and all(x is None and "=" not in r for x, r in zip(items[1:], raw[1:]))):
            return [items[0][0]], ", ".join([items[0][1]] + [r.strip() for r in raw[1:]])   # (x,y) = (5,8), (8,5)
        if any(x is None for x in items):
            return None
        split.append(items)
    labels = [label for label, _ in split[0]]
    if len(split) == 1:
        return labels, ", ".join(value for _, value in split[0])
    if len(labels) < 2 or any([label for label, _ in g] != labels for g in split):
        return None
    return labels, ", ".join("(" + ", ".join(value for _, value in g) + ")" for g in split)


def _same_unit(n: Normalized, other: Normalized) -> Normalized:
    """A one-letter unit kept after a number (`5 m`) is dropped when the other side has the same unit, kept or
    dropped (`5\\text{ m}`): never on one side only, since `\\frac12 m` may be half a mass."""
    if n.unit and n.unit in (other.unit, other.stripped_unit):
        return Normalized(n.bare, n.percent, stripped_unit=n.unit, bound=n.bound)
    return n


def _approximation(n: Normalized, other: Normalized) -> Normalized:
    """`\\frac{\\sqrt3}{3} \\approx 0.577`: its approximate value against a plain decimal, else its exact value."""
    if "\\approx" not in n.text or "\\approx" in other.text:
        return n
    exact, _, approx = n.text.partition("\\approx")
    if not exact.strip() or not approx.strip() or _LABEL.fullmatch(exact) or "\\approx" in approx:
        return n   # `x \approx 0.58` is a relation
    other_number = simple_number(other.text)
    keep = approx if other_number is not None and other_number.decimals is not None else exact
    return Normalized(keep.strip(), n.percent)


def normalize_pair(pred: str, gold: str) -> tuple[Normalized, Normalized]:
    """Both answers normalised, with labels dropped where they carry no information: a side written as
    `label = value` items is compared by its values when the other side has no labels or the same ones."""
    pn, gn = normalize_answer(pred), normalize_answer(gold)
    if pn.unit or gn.unit:
        pn = _same_unit(pn, gn)
        gn = _same_unit(gn, pn)
    pn, gn = _approximation(pn, gn), _approximation(gn, pn)
    ps, gs = _split_labels(pn.text), _split_labels(gn.text)
    if ps is None and gs is None:
        return pn, gn
    if ps is not None and gs is not None and ps[0] != gs[0]:
        return pn, gn   # `x = 3` is not `y = 3`
    if ps is None and "=" in pn.text or gs is None and "=" in gn.text:
        return pn, gn   # an equation on the other side: compared as equations
    if ps is not None and gs is not None and len(set(ps[0])) > 1:   # `a = 2, b = 3` on both sides: in order
        return Normalized(f"({ps[1]})", pn.percent), Normalized(f"({gs[1]})", gn.percent)
    if ps is not None:
        pn = Normalized(ps[1], pn.percent)
    if gs is not None:
        gn = Normalized(gs[1], gn.percent)
    return pn, gn


_ARTICLES = re.compile(r"\b(?:a|an|the)\s+(?=\w)")


def _text_key(s: str) -> str:
    """Lower case, no articles or punctuation; signs and operators kept (`-12 hbar` is not `12 hbar`)."""
    s = s.lower().replace("\\", " ")
    s = _ARTICLES.sub(" ", s)
    s = re.sub(r"[^a-z0-9+\-*/^=<>]+", " ", s)
    s = re.sub(r"\s*([+\-*/^=<>])\s*", r" \1 ", s)
    return " ".join(s.split())


def is_texty(s: str) -> bool:
    return bool(prose_words(s))


_OPTION_PREFIX = re.compile(r"\(?([A-Ka-k])\)\s*(.+)", re.S)


def text_equal(pred: str, gold: str) -> bool:
    """Short text answers: case, articles and punctuation ignored; `(A) Even` also accepts `A` / `Even`."""
    key = _text_key(pred)
    if not key or unbalanced(pred):
        return False   # `(((((1` is malformed: the key would erase its brackets
    golds = {_text_key(gold)}
    m = _OPTION_PREFIX.fullmatch(gold.strip())
    if m:
        golds |= {m.group(1).lower(), _text_key(m.group(2))}
    return key in golds
