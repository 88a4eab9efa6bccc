"""Input hygiene and answer extraction: the final answer (or option letter) in a model output."""
from __future__ import annotations

import re

MAX_ANSWER_CHARS = 2000      # longer answers are compared as strings (parsing cost grows with length)
TAIL_CHARS = 20_000          # fallbacks (math spans, numbers) look only at the end of an output
CHOICE_LETTERS = "ABCDEFGHIJK"   # MMLU-Pro has A-J, other suites go to K


# ---------------------------------------------------------------------------------------------------
# Input hygiene
# ---------------------------------------------------------------------------------------------------
def sanitize(text) -> str | None:
    """Any input as a clean str: bytes decoded, NUL bytes and lone surrogates removed."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        text = str(text)
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text


# ---------------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------------
def last_match(pattern: re.Pattern, text: str) -> re.Match | None:
    """The last match of pattern in text, or None (one pass, nothing kept but the last)."""
    last = None
    for m in pattern.finditer(text):
        last = m
    return last


_BOX_RE = re.compile(r"\\(?:boxed|fbox)")
_BOX_JOINER = re.compile(r"[\s,;.]*(?:(?:and|or)[\s,;.]*)?")
_BOX_GAP_NOISE = re.compile(   # spacing, math delimiters and a wrapped connector between two boxes
    r"\\(?:text|mbox|textrm|mathrm)\s*\{\s*(and|or|,)\s*\}|\\q?quad(?![a-zA-Z])|\\[,;:! ()\[\]]|\$|~")
MAX_BOX_GAP = 60      # characters between two boxes that are joined into one answer
MAX_BOX_TAIL = 300    # characters after the last of several joined boxes


_BRACE_EVENT = re.compile(r"\\.|[{}]", re.S)
MAX_BRACED_CHARS = 50_000   # a "box" longer than this is treated as unbalanced (bounds hostile scans)


def braced(text: str, start: int) -> tuple[str | None, int]:
    """Content of the balanced {...} opening at text[start]; (None, start) when unbalanced."""
    depth = 0
    for m in _BRACE_EVENT.finditer(text, start, min(len(text), start + MAX_BRACED_CHARS)):
        ch = m.group()
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:m.start()], m.end()
    return None, start


MAX_INTEGER_DIGITS = 1_000_000   # a boxed integer longer than MAX_BRACED_CHARS, up to this many digits
_BOXED_INTEGER = re.compile(rf"\{{\s*([-+]?\d{{1,{MAX_INTEGER_DIGITS}}})\s*\}}")


def _box_content(text: str, i: int) -> tuple[str | None, int]:
    m = _BOX_RE.match(text, i)
    j = m.end()
    while j < len(text) and text[j] == " ":
        j += 1
    if j < len(text) and text[j] == "{":
        content, end = braced(text, j)
        if content is None and (big := _BOXED_INTEGER.match(text, j, j + MAX_INTEGER_DIGITS + 20)):
            return big.group(1), big.end()   # `\boxed{<100,000 digits>}`: its digits, scanned once
        return content, end
    if j > m.end():   # `\boxed 5`: up to the next space or `$`
        k = j
        while k < len(text) and not text[k].isspace() and text[k] != "$":
            k += 1
        return (text[j:k] or None), k
    return None, j


def last_boxed(text: str) -> str | None:
    """The last balanced \\boxed{}, joined with directly preceding boxes (`\\boxed{1}, \\boxed{2}`): only short
    connectors between them (`,`, `and`, `or`, `\\quad`, `\\text{and}`, math delimiters) and at most MAX_BOX_TAIL
    characters after the last one."""
    contents: list[str] = []
    next_start = last_end = None
    pos = len(text)
    for _ in range(50):
        i = max(text.rfind("\\boxed", 0, pos), text.rfind("\\fbox", 0, pos))
        if i < 0:
            break
        pos = i
        content, end = _box_content(text, i)
        if content is None or not content.strip():
            continue
        gap = text[end:next_start]
        if contents and (len(gap) > MAX_BOX_GAP or not _BOX_JOINER.fullmatch(_BOX_GAP_NOISE.sub(r" \1 ", gap))
                         or len(text) - last_end > MAX_BOX_TAIL):
            break
        if content.strip() not in (c.strip() for c in contents):
            contents.append(content)
        next_start = i
        last_end = end if last_end is None else last_end
    return ", ".join(reversed(contents)) if contents else None


_ANSWER_TAG = re.compile(r"(?is)<answer>(.*?)</answer>")


def answer_tag(text: str) -> str | None:
    """The content of the last `<answer>...</answer>` in the tail of an output, or None."""
    last = last_match(_ANSWER_TAG, text[-TAIL_CHARS:])
    if last is None or not last.group(1).strip() or "<answer>" in last.group(1).lower():
        return None
    return last.group(1).strip()


def after_hashes(text: str) -> str | None:
    i = text.rfind("####")
    if i < 0:
        return None
    line = text[i + 4:].lstrip().split("\n", 1)[0].strip()
    return line or None


_ANSWER_WORD = r"(?:\b(?:answer|r[ée]ponse|antwort|respuesta|resposta|risposta)|答案|الإجابة|الاجابة)"
ANSWER_PHRASE = re.compile(   # "the answer is", "la réponse est", "die Antwort ist", "la respuesta es", "答案是/为/："
    r"(?i)" + _ANSWER_WORD
    + r"\s*(?:\*\*|\\\]|\])?\s*(?:(?:ist|is|est|es|è|é|是|为|為|هي)\s*[:：]?|[:：=])\s*(?:\*\*)?\s*")
HOPE = re.compile(r"(?i)\s*I hope it is correct.*$", re.S)
_SENTENCE_END = re.compile(r"(?<!\d)\.(?:\s|$)|(?<=\d)\.(?:\s|$)|\n|[。！？]")


def _take_math(rest: str) -> str | None:
    """If rest opens with a math delimiter, the content up to its closer."""
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(left):
            j = rest.find(right, len(left))
            return rest[len(left):j] if j > 0 else None
    return None


def _squeeze(text: str) -> str:
    """The end of an output with whitespace runs shortened, so that regexes with several `\\s*` stay linear."""
    return _NEWLINE_RUN.sub("\n", _SPACE_RUN.sub(" ", text[-TAIL_CHARS:]))


_SPACE_RUN = re.compile(r"[^\S\n]+")
_NEWLINE_RUN = re.compile(r"\s*\n\s*")


MAX_PHRASE_ANSWER = 600   # characters after "the answer is" that hold the answer
_NUMBER_RUN = re.compile(r"[-+]?\d[\d,]*")
_RUN_END = re.compile(r"$|\s|[.,;:!?)\]}$*](?!\d)")   # what may follow a whole number
NO_ANSWER = "\x00"   # a stated answer that is not one (code): extraction stops, nothing is guessed


def _after_answer_phrase(text: str) -> str | None:
    tail = _squeeze(text)
    last = last_match(ANSWER_PHRASE, tail)
    if last is None:
        return None
    end = last.end() + MAX_PHRASE_ANSWER
    if (run := _NUMBER_RUN.match(tail, last.end())) and run.end() >= end:
        if _RUN_END.match(tail, run.end()):   # a number longer than the window: all of it, never its first digits
            return run.group().rstrip(",")
        return NO_ANSWER   # `<700 digits>/7`: not a whole number, and too long to read
    rest = tail[last.end():end]
    cut = len(tail) > end and HOPE.search(rest) is None   # the stated answer may run past the window
    rest = HOPE.sub("", rest)
    if looks_like_code(rest.split("\n", 1)[0]):
        return NO_ANSWER   # `The answer is __import__('os')...[0]`: no number out of code
    math = _take_math(rest)
    if math is None and rest.startswith("\\boxed"):
        math = last_boxed(rest[:300])
    if math is None:
        m = _SENTENCE_END.search(rest)
        sentence = rest[:m.start()] if m else rest
        math = _answer_in_sentence(sentence)
        if m is None and cut and not ((lead := _LEADING_NUMBER.match(sentence)) and lead.group(1).rstrip(",") == math):
            return NO_ANSWER   # `1+11+11+...` past the window: an answer is read whole or not at all
    math = math.strip().strip("*").strip()
    return math or None


# Cyrillic, Hebrew, Arabic, Indic, Thai, CJK, Hangul
_SCRIPTS = (r"\u0400-\u04FF\u0590-\u05FF\u0600-\u06FF\u0750-\u077F\u0900-\u0DFF\u0E00-\u0E7F\u1100-\u11FF"
            r"\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uAC00-\uD7AF")
_NON_LATIN = re.compile(f"[{_SCRIPTS}]")   # a letter of a non-Latin script (Greek is math: π)
_FOREIGN_RUN = re.compile(f"[{_SCRIPTS}\u3000-\u303F\uFF01-\uFF0F\uFF1A-\uFF20]+")


def _value_among_foreign(text: str) -> str | None:
    """`地块面积 = 72000 / 18 = 4000千克` -> `= 72000 / 18 = 4000`: in text with words of a non-Latin script, the last
    stretch between such words that holds a digit; None when there is no such word or no digit."""
    if not _NON_LATIN.search(text):
        return None
    for chunk in reversed(_FOREIGN_RUN.split(text)):
        if re.search(r"\d", chunk):
            chunk = chunk.strip().strip(",.;:").strip()
            return chunk or None
    return None


def _answer_in_sentence(sentence: str) -> str:
    """`The largest $n$ is 34` -> `34`: in a sentence of prose (two or more words besides units) with a number
    or a math span, the number it opens with, else its last math span or number; other text is kept whole
    (`Monday`, `12 square feet`)."""
    if (foreign := _value_among_foreign(sentence)) is not None:
        return foreign   # `答案：每份应该是 (\frac{2}{5}) 吨。`
    words = [w for w in prose_words(sentence) if w.lower() not in _UNIT_WORDS]
    if len(words) < 2 or not (re.search(r"\d", sentence) or _math_spans(sentence)):
        return sentence
    if m := _LEADING_NUMBER.match(sentence):
        return m.group(1).rstrip(",")
    if unbalanced(sentence):
        return sentence   # `((((( 1 and 2`: malformed, no number is picked out of it
    return _last_math_or_number(sentence) or sentence


_MATH_DELIM = re.compile(r"\\\$|\$\$|\$|\\\(|\\\)|\\\[|\\\]")
_CLOSER = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}
_PLAIN_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_TEXT_CMD_BODY = re.compile(r"\\(?:text|mathrm|textbf|mbox|textnormal|mathbf|textit)\s*\{[^{}]*\}")


def _math_spans(text: str) -> list[tuple[int, str]]:
    """(end position, content) of `$...$`, `$$...$$`, `\\(...\\)`, `\\[...\\]` in one linear pass."""
    spans, opener, open_end = [], None, 0
    for m in _MATH_DELIM.finditer(text):
        tok = m.group()
        if tok == "\\$":
            continue
        if opener is None:
            if tok in _CLOSER:
                opener, open_end = tok, m.end()
        elif tok == _CLOSER[opener]:
            spans.append((m.end(), text[open_end:m.start()]))
            opener = None
    return spans


_ENV = re.compile(r"\\(?:begin|end)\s*\{[a-zA-Z*]*\}")


def prose_words(s: str) -> list[str]:
    """Plain words outside LaTeX commands, `\\text{}` bodies and environment names."""
    return _PLAIN_WORD.findall(_ENV.sub(" ", _TEXT_CMD_BODY.sub(" ", s)))


def _few_words(s: str, limit: int) -> bool:
    return len(prose_words(s)) <= limit


_NUMBER_IN_TEXT = re.compile(r"(?<![A-Za-z_.\d^/])-?(?:\d{1,15} \d{1,15}/\d{1,15}(?![\d/]|\.\d)|"   # a mixed number
                             r"\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d{1,4}(?![\w.]))?(?:\s*/\s*\d+(?!\d|\.\d))?)")


_LEADING_NUMBER = re.compile(r"\s*(?:\*\*)?\s*(" + _NUMBER_IN_TEXT.pattern + r")(?![\w/^_])")


def _last_number(text: str) -> tuple[int, str] | None:
    last = last_match(_NUMBER_IN_TEXT, text)
    if last is None:
        return None
    return last.start(), last.group().rstrip(",")


_OPEN_RUN = re.compile(r"[(\[{]+\s*$")


def unbalanced(s: str) -> bool:
    """Round and square brackets (together, for half-open intervals) or braces that do not pair up."""
    return (s.count("(") + s.count("[") != s.count(")") + s.count("]")) or s.count("{") != s.count("}")


def _inside_unclosed(text: str, start: int, end: int) -> bool:
    """The number at text[start:end] directly follows opening brackets that are not closed after it."""
    m = _OPEN_RUN.search(text[max(0, start - 100):start])
    if m is None:
        return False
    after = text[end:end + 200]
    opened = len(m.group().strip())
    return sum(after.count(c) for c in ")]}") < opened


def _cut_at_tail(text: str) -> bool:
    """The last TAIL_CHARS characters of text begin inside a number."""
    return (len(text) > TAIL_CHARS and text[-TAIL_CHARS - 1] in "0123456789,."
            and text[-TAIL_CHARS] in "0123456789,.")


def _last_math_or_number(text: str) -> str | None:
    tail = _squeeze(text)
    spans = [(end, s.strip()) for end, s in _math_spans(tail) if s.strip()]
    spans = [(end, s) for end, s in spans if _few_words(s, 1) and len(s) <= MAX_ANSWER_CHARS]
    number = _last_number(tail)
    if number is not None and _inside_unclosed(tail, number[0], number[0] + len(number[1])):
        number = None   # `((((...(1`: a number inside brackets that never close is no answer
    if number is not None and _cut_at_tail(text) and set(tail[:number[0]]) <= set(",."):
        number = None   # a number that starts before the tail: its last digits are not its value
    if spans and (number is None or number[0] < spans[-1][0]):
        return spans[-1][1]
    return number[1] if number else None


_CODE_LIKE = re.compile(
    r"__\w+__|\bimport\s+\w|(?<!\\)\blambda\b|\b(?:exec|eval|compile|open|system|getattr|popen)\s*\("
    r"|(?<![\\\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\s*\("      # an attribute call: os.system(, a.b.c(
    r"|\[[^\[\]\n]{0,200}?\bfor\s+\w+\s+in\b"               # a list comprehension
    r"|\)\s*\[\s*-?\d+\s*\]"                                 # indexing a call's result: f()[0]
    r"|\b(?:rm\s+-[rf]+|sudo|curl|wget|chmod|bash\s+-c|sh\s+-c)\s|/bin/(?:ba)?sh\b")   # shell commands


def looks_like_code(text: str) -> bool:
    """Python or shell rather than math: dunders, imports, attribute calls, comprehensions, `()[0]`, commands."""
    return bool(_CODE_LIKE.search(text))
_PROSE = re.compile(r"(?i)\b(?:is|so|we|the|of|to|it|be|are|was|then|thus|hence|get|has|have|this|that|there)\b")
_UNIT_WORDS = {"percent", "pct", "percentage", "and", "or", "units", "unit", "degrees", "dollars", "cents",
               "inches", "feet", "square", "cubic", "meters", "miles", "hours", "minutes", "seconds", "days"}


_FUNCTION_WORDS = {"sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "exp", "abs", "arcsin", "arccos",
                   "arctan", "sinh", "cosh", "tanh"}   # `11*sqrt(2)`: plain-text math, not prose


def _bare_answer(text: str) -> str | None:
    """A short output that is itself the answer (`0.5`, `\\dfrac12`, `x = 3`, `Monday`, `$28$ percent`)."""
    s = text.strip()
    if not s or len(s) > 200 or "\n" in s:
        return None
    if (foreign := _value_among_foreign(s)) is not None:
        return foreign   # `地块面积 = 72000 / 18 = 4000千克`: the value, not the sentence as text
    words = [w for w in prose_words(s) if w.lower() not in _UNIT_WORDS and w not in _FUNCTION_WORDS]
    digits = re.search(r"\d", s)
    if digits and _PROSE.search(s):
        return None
    if len(words) > (1 if digits else 3) or (words and digits and not _TEXT_CMD_BODY.search(s)):
        return None   # prose like "So x is 5 apples" falls through to the last number
    return s


def extract_answer(text: str, kind: str = "math", stated: bool = False) -> str | None:
    """The final answer in a model output, or None when there is none.

    `stated=True` accepts only an answer the output states as final (boxed, `#### X`, "the answer is X",
    "Final Answer: X"; for choices the letter patterns): no bare-answer or last-number guess. That tells a
    model that finished its solution from one that stopped early, whose last number the fallback would find.
    """
    text = sanitize(text)
    if not text or not text.strip():
        return None
    if "</think>" in text:
        before, after = text.rsplit("</think>", 1)
        text = after if after.strip() else before   # a trace that stops at </think> answers inside it
    if (tagged := answer_tag(text)) is not None and tagged != text.strip():
        return extract_answer(tagged, kind)   # `<answer>1e6</answer>`: the tag's content is the whole answer
    if kind == "choice":
        return extract_choice(text, fallback=not stated)
    for find in (last_boxed, after_hashes, _after_answer_phrase):
        found = find(text)
        if found == NO_ANSWER:
            return None
        if found and found.strip():
            return found.strip()
    if stated:
        return None
    if _BOX_RE.search(text):
        return None   # only unbalanced or oversized boxes (a truncated output): no guessing
    if looks_like_code(text[-TAIL_CHARS:]):
        return None   # no guessing a number out of code-injection attempts
    bare = _bare_answer(text)
    if bare is not None and not _math_spans(bare):
        return bare
    return _last_math_or_number(text)


# ---------------------------------------------------------------------------------------------------
# Option letters
# ---------------------------------------------------------------------------------------------------
_L = f"[{CHOICE_LETTERS}]"
# a lowercase letter (`the answer is c`) only where nothing but punctuation, a closing bracket or the end follows:
# `the answer is a number` names no option
_LX = rf"(?:{_L}|[{CHOICE_LETTERS.lower()}](?=\s*(?:[,;:!?)\]）】*$}}]|\.(?!\w)|$)))"
# after the letter: no word character (`是` may follow: "答案：B是正确的"), no `/`, `|` or `-` of a placeholder
# that lists the options (`ANSWER: [A/B/C/D/E]`)
_LETTER_END = r"(?![A-Za-z0-9_'’/|\-])"
_LETTER_AFTER = (r"\s*(?:\*\*)?\s*(?i:ist|is|est|es|是|为)?\s*(?i:option|choice)?\s*[:：]?\s*"
                 rf"(?:\*\*)?\s*[(\[$（【「]*\s*(?:\\text(?:bf)?\{{)?\s*({_LX})" + _LETTER_END)
# a decision after hedging: "Or maybe C. Actually, let's finalize B" is B
_DECISION = (r"(?i:\b(?:finali[sz]e|go(?:ing)?\s+with|went\s+with|stick\s+with|settle\s+on|opt\s+for|choose|chose|"
             r"pick|select|(?:my\s+)?final\s+(?:choice|pick|decision|selection)))\b")
_CHOICE_PATTERNS = [   # highest priority first; the last match of the first group that matches wins
    # "ANSWER: B because option A is wrong": the stated answer beats the options its justification names
    [re.compile(r"(?i:answer|r[ée]ponse|antwort|respuesta|答案)" + _LETTER_AFTER),
     _DECISION_RE := re.compile(_DECISION + _LETTER_AFTER)],
    [re.compile(r"(?i:option|choice)" + _LETTER_AFTER)],
    [re.compile(rf"(?i:correct)\s+(?i:option|choice|answer)\s+(?i:is\s+)?:?\s*[(（]?({_LX})" + _LETTER_END)],
    [re.compile(rf"\*\*\s*\(?({_LX})\)?[.:]?\s*\*\*")],
    [re.compile(rf"\(({_L})\)")],
    [re.compile(rf"(?m)^\s*({_L})(?<!I)[).:]")],   # a line `I.` opens an outline (Roman one)
]
_NOT_DECIDED = re.compile(r"(?i:\b(?:not|never|cannot|can't|won't|shouldn't|wouldn't|don't)\b|n't)\s*(?:\w+\s+)?$")
_LETTER_ONLY = re.compile(rf"[\s(\[*$.:（【]*({_L}|[{CHOICE_LETTERS.lower()}])[\s)\]*$.:）】]*")
# `B) 42`, and a bracketed letter before anything (`(H) $2\pi$`)
_LETTER_LEAD = re.compile(rf"({_L})[).:）](?:\s.*)?|[(（]({_L}|[{CHOICE_LETTERS.lower()}])[)）].*", re.S)


def letter_of(answer: str) -> str | None:
    """The option letter of a short answer: `B`, `(B)`, `\\text{B}`, `B) 42`, `**B**`, `c`, `(H) $2\\pi$`."""
    s = _TEXT_CMD_BODY.sub(lambda m: m.group()[m.group().index("{") + 1:-1], answer).strip()
    m = _LETTER_ONLY.fullmatch(s) or _LETTER_LEAD.fullmatch(s)
    return next(g for g in m.groups() if g).upper() if m else None


_FREE_LETTER = re.compile(rf"(?<![A-Za-z0-9_\\$^'’{{/.\-°])({_L})(?![A-Za-z0-9_$^'’}}/\-])(?!\.\d)(?!\s*=)")
_LETTER_RANGE = re.compile(rf"\b{_L}\s*(?:-|–|(?i:through|thru|to))\s*{_L}\b")   # "among A through E"
_NEGATION = re.compile(   # "not A", "can't be A or B", "non A", "pas A", "nicht A", "no es A", "不是 A"
    rf"(?:(?i:\b(?:not|cannot|non|pas|nicht|never|neither|nor|no|kein)\b)|n't|n’t|不是|并非|不)\s*(?:(?i:be|is|es|est|ist|option|choice|choose|pick|select)\s+)?"
    rf"({_L}(?:\s*(?:,|/|(?i:or|nor|and|ou|et|oder|und|o|y|ni|或|和|、))\s*{_L})*)(?![A-Za-z0-9])")
_NAMED_THING = re.compile(   # `point A`, `matrix B`: a letter that names an object, not an option
    r"(?i:\b(?:points?|vert(?:ex|ices)|lines?|segments?|matri(?:x|ces)|sets?|vectors?|angles?|sides?|events?|"
    r"players?|persons?|city|town|box|group|team|company|machine|student|particles?|objects?|body|block|"
    r"charges?|site|planes?|regions?|graphs?|functions?|triangles?|circles?|type|vitamin|grade|blood|hepatitis))\s+$")
_LETTER_VERB = re.compile(r"\s+(?i:is|was|seems|appears|must|should|would|could|can|fits|matches|and|or)\b")
_I_VERB = re.compile(r"\s+(?:is|was|seems|appears|fits|matches)\b")
MAX_FREE_LINE = 300


def _free_letter(tail: str) -> str | None:
    """Last resort for `kind="choice"`: in the last line (at most 300 characters), the one option letter that no
    negation governs (`It's not A ..., therefore I think it's B` -> B; `it can't be A or B` drops both). A
    sentence-initial `A` followed by a word (`A ball rolls`) is the article, `I` before a word (`I think`) the
    pronoun, a letter after a number (`300 K`) a unit. None unless exactly one letter is left."""
    line = tail.strip().rsplit("\n", 1)[-1].strip()
    if not line or len(line) > MAX_FREE_LINE:
        return None
    negated = set()
    for m in _LETTER_RANGE.finditer(line):
        negated.update(range(m.start(), m.end()))
    for m in _NEGATION.finditer(line):
        negated.update(range(m.start(1), m.end(1)))
    letters = set()
    for m in _FREE_LETTER.finditer(line):
        if m.start() in negated:
            continue
        if _NAMED_THING.search(line[max(0, m.start() - 12):m.start()]):
            continue
        before = line[:m.start()].rstrip(" *\"'(")
        if (m.group(1) == "A" and (not before or before.endswith(tuple(".!?:;。")))
                and re.match(r"\s+[A-Za-z]", line[m.end():]) and not _LETTER_VERB.match(line[m.end():])):
            continue   # the article: "A ball rolls ...", "A quick check"
        if m.group(1) == "I" and re.match(r"\s+[a-z]", line[m.end():]) and not _I_VERB.match(line[m.end():]):
            continue   # the pronoun: "I think it's B"
        if re.search(r"\d\s$", line[max(0, m.start() - 2):m.start()]):
            continue   # a unit after a number: "300 K", "5 J"
        letters.add(m.group(1))
    return letters.pop() if len(letters) == 1 else None


def extract_choice(text: str, fallback: bool = True) -> str | None:
    boxed = last_boxed(text)
    if boxed is not None and (letter := letter_of(boxed)):
        return letter
    tail = _squeeze(text)
    if letter := letter_of(tail.strip()) if len(tail) < 40 else None:
        return letter
    for group in _CHOICE_PATTERNS:
        found = [m for pattern in group if (m := _last_letter(pattern, tail)) is not None]
        if found:
            return max(found, key=lambda m: m.start()).group(1).upper()
    return _free_letter(tail) if fallback else None


def _last_letter(pattern: re.Pattern, tail: str) -> re.Match | None:
    """The last match of a letter pattern; for a decision, the last one that no negation governs ("I won't pick
    A" decides nothing)."""
    if pattern is not _DECISION_RE:
        return last_match(pattern, tail)
    last = None
    for m in pattern.finditer(tail):
        if not _NOT_DECIDED.search(tail[max(0, m.start() - 30):m.start()]):
            last = m
    return last
