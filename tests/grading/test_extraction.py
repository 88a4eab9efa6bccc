"""Answer extraction and input hygiene (upft_bench/grading/extraction.py).

    HF_HUB_OFFLINE=1 python -m pytest -q tests/grading/test_extraction.py
"""
from __future__ import annotations

import pytest

from upft_bench.grading import TAIL_CHARS, extract_answer, is_correct
from upft_bench.grading.extraction import MAX_INTEGER_DIGITS


@pytest.mark.parametrize("text,expected", [
    ("so $\\boxed{\\frac{9}{4}\\pi}$.", "\\frac{9}{4}\\pi"),
    ("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("first \\boxed{1} then \\boxed{2}", "2"),
    ("roots \\boxed{1}, \\boxed{2}", "1, 2"),
    ("\\boxed{3} or \\boxed{3}", "3"),
    ("\\boxed 5 apples", "5"),
    ("\\fbox{x+1}", "x+1"),
    ("\\boxed{a{b}c}", "a{b}c"),
    ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),
    ("<think>\\boxed{1}</think>so \\boxed{2}", "2"),
    ("<think>long thoughts, the answer is 7</think>", "7"),
    ("<think>\\boxed{1}</think>", "1"),
    ("48+24 = 72 clips.\n#### 72", "72"),
    ("#### 1,000\nmore", "1,000"),
    ("The answer is 72.", "72"),
    ("The final answer is $\\frac{1}{2}$. Done", "\\frac{1}{2}"),
    ("Final Answer: The final answer is $28 \\%$. I hope it is correct.", "28 \\%"),
    ("Final Answer: 2.5", "2.5"),
    ("**Answer:** 12", "12"),
    ("Answer $ 9 $", "9"),
    ("Answer \\[ 9 \\]", "9"),
    ("we get $x=2$ and then 5 more, so 7", "7"),
    ("the pair is $(7, 6)$.", "(7, 6)"),
    ("She pays $5 and then $3 more, total 8 dollars", "8"),
    ("0.5", "0.5"),
    ("\\dfrac12", "\\dfrac12"),
    ("x = 3", "x = 3"),
    ("Monday", "Monday"),
    ("the circle", "the circle"),
    ("So x is 5", "5"),
    ("probability is 2/3.", "2/3"),
    ("", None),
    ("no numbers at all in this long sentence here", None),
    ("\\boxed{\\frac{1}{2", None),
    ("__import__('os').system('sleep 10')", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text,letter", [
    ("(B)", "B"), ("B)", "B"), ("B", "B"), ("answer: B", "B"), ("Answer: (C)", "C"), ("\\boxed{B}", "B"),
    ("\\boxed{\\text{B}}", "B"), ("\\boxed{(D)}", "D"), ("**B**", "B"), ("The correct option is B.", "B"),
    ("The answer is (A).", "A"), ("I think (A) is wrong; the answer is C.", "C"), ("B) 42 apples", "B"),
    ("Between (A) and (C) I pick (C)", "C"), ("the answer is a number", None), ("Nothing.", None),
    ("the answer is c", "C"), ("So the answer is (d).", "D"), ("the answer is a", "A"), ("answer: e.g. B", "B"),
    ("The answer is H.", "H"), ("ANSWER: K", "K"), ("\\boxed{(H) $2\\pi$}", "H"), ("\\boxed{(j)}", "J"),
    ("I think it's F", "F"),
    ("Let me outline it.\nI. The forces on the block\nII. The equations that follow from them", None),
    ("It cools to 300 K, so G", "G"),
    ("Or maybe C. Actually, let's finalize B", "B"), ("The answer is C. No wait, I'll go with D.", "D"),
    ("I'll go with D. Hmm, the answer is C.", "C"), ("I won't pick A. Final answer: B", "B"),
    ("We should not choose A", None),
])
def test_extract_choice(text, letter):
    assert extract_answer(text, kind="choice") == letter


def test_stated_answers_only():
    early = "Tom starts with 12 apples. He buys 5 more: 12 + 5 = 17."
    assert extract_answer(early) is not None   # the fallbacks find something to grade
    assert extract_answer(early, stated=True) is None
    assert extract_answer("So 17. The answer is \\boxed{17}.", stated=True) == "17"
    assert extract_answer("#### 42", stated=True) == "42"
    assert extract_answer("The final answer is 3/4.", stated=True) == "3/4"


def test_long_numbers_are_whole_or_nothing():
    digits = "7" * 100_000
    assert extract_answer(f"so \\boxed{{{digits}}}.") == digits   # beyond the 50,000-character box scan
    assert extract_answer("\\boxed{" + "7" * (MAX_INTEGER_DIGITS + 1) + "}") is None   # beyond the limit
    assert extract_answer("The answer is " + "5" * 700 + ".") == "5" * 700   # not its first 600 digits
    assert extract_answer("The answer is " + "5" * 700 + "/7") is None   # too long, and no whole number
    assert extract_answer("The answer is 1" + "+11" * 300) is None   # runs past the window: not its first part
    assert extract_answer("The answer is 5, since" + " the pieces fit" * 60) == "5"
    cut = "The total is 7777777777" + "42" + " and no number follows" * 909
    assert len(cut) - TAIL_CHARS == cut.index("42")
    assert extract_answer(cut) is None   # the tail window starts inside a number: `42` is not its value
    assert extract_answer("The total is 42" + " and no number follows" * 909) == "42"


def test_sanitises_odd_types():
    assert is_correct(b"\\boxed{5}", 5)
    assert not is_correct(None, "5")
    assert extract_answer("\ud800 \\boxed{7}\x00") == "7"
