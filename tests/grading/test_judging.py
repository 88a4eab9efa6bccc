"""Verdicts: the case table, the documented policies (upft_bench/grading/README.md) and the one per-case path.

    HF_HUB_OFFLINE=1 python -m pytest -q tests/grading/test_judging.py

The case table lives in tests/data/grading_cases.jsonl (pred, gold, expected, kind, tag).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from upft_bench import grading
from upft_bench.commands.grade import grade_cli
from upft_bench.grading import explain, grade_many, is_correct, is_equivalent, judging

DATA = Path(__file__).resolve().parent.parent / "data"
CASES = [json.loads(line) for line in (DATA / "grading_cases.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module", autouse=True)
def workers():
    grading.warm_up(2)
    yield
    grading.shutdown()


# ------------------------------------------------------------------------------------------------
# The case table
# ------------------------------------------------------------------------------------------------
def test_case_table_is_large_and_balanced():
    assert len(CASES) >= 300
    assert sum(c["expected"] for c in CASES) > 100 and sum(not c["expected"] for c in CASES) > 80
    tags = {c["tag"] for c in CASES}
    for tag in ("integers", "decimals-fractions", "percent", "sci-notation", "radicals-pi", "units", "expressions",
                "equations", "inequalities", "tuples-sets-lists", "intervals", "matrices", "plus-minus", "text",
                "bases", "extraction", "choice"):
        assert tag in tags


@pytest.mark.parametrize("case", CASES, ids=[f"{c['tag']}:{c['pred'][:30]}|{c['gold'][:20]}" for c in CASES])
def test_case(case):
    info = explain(case["pred"], case["gold"], case["kind"])
    assert info["verdict"] is case["expected"], info


def test_grade_many_matches_one_by_one():
    pairs = [(c["pred"], c["gold"], c["kind"]) for c in CASES]
    assert grade_many(pairs, workers=2) == [c["expected"] for c in CASES]



def test_gold_as_full_solution():
    assert is_correct("\\boxed{3}", "Janet eats 1, so 4 - 1 = 3 remain.\n#### 3")
    assert is_correct("The answer is 4", "... hence $x = \\boxed{4}$.")
    assert not is_correct("The answer is 5", "... hence $x = \\boxed{4}$.")
    assert is_correct("033", 33) and is_correct("\\boxed{B}", "B", kind="choice")



# ------------------------------------------------------------------------------------------------
# Policies (documented in upft_bench/grading/README.md)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pred,gold,expected", [
    ("3", "3.0001", False), ("3.00", "3", True), ("0.3333", "\\frac13", True), ("0.33", "\\frac13", False),
    ("2.67", "2.6667", True), ("12.345", "12.346", False), ("1.41421", "\\sqrt2", True), ("1.4142", "\\sqrt{2}", True),
    ("1.41", "\\sqrt2", False), ("1e999999999", "1", False), ("2^{100}+1", "2^{100}", False),
    ("1267650600228229401496703205377", "2^{100}", False), ("1267650600228229401496703205376", "2^{100}", True),
])
def test_tolerance_policy(pred, gold, expected):
    assert is_equivalent(pred, gold) is expected


@pytest.mark.parametrize("pred,gold,expected", [
    ("50", "50\\%", True), ("0.5", "50\\%", True), ("50\\%", "0.5", True), ("50\\%", "50", True),
    ("0.5", "50", False), ("5", "50\\%", False), ("50 percent", "50\\%", True),
])
def test_percent_policy(pred, gold, expected):
    assert is_equivalent(pred, gold) is expected


@pytest.mark.parametrize("pred,gold,expected", [
    ("x \\ge 5", "[5,\\infty)", True), ("x > 5", "[5,\\infty)", False), ("2 < x \\le 5", "(2,5]", True),
    ("x<2 \\text{ or } x>3", "(-\\infty,2)\\cup(3,\\infty)", True), ("\\mathbb{R}", "(-\\infty,\\infty)", True),
    ("0.\\overline{3}", "\\frac13", True), ("0.\\overline{3}", "0.3", False), ("\\sin 30^\\circ", "\\frac12", True),
    ("10,\\!080", "10080", True), ("32, 349", "32349", False), ("five", "5", True), ("seven", "5", False),
    ("180 + 24 = 204", "204", True), ("7 = 11a+c", "11a+c", False), ("f(x) = x^2", "x^2", True),
    ("a=2, b=3", "(2,3)", True), ("a=2, b=3", "(3,2)", False), ("\\cot x", "\\cotx", True),
    ("2.08*1e-9", "2.08*1e-6", False), ("110-130", "220-240", False), ("12*hbar/25", "-12*hbar/25", False),
    ("\\begin{cases} x=1 \\\\ y=2 \\end{cases}", "(1,2)", False),
])
def test_interval_number_and_equation_policies(pred, gold, expected):
    assert is_equivalent(pred, gold) is expected


@pytest.mark.parametrize("pred,gold,expected", [
    # a letter after a number is a unit only where it cannot be a variable of the answer, never on one side only
    ("\\frac12", "\\frac12 m", False), ("\\frac{m}{2}", "\\frac12 m", True), ("5", "5 m", False),
    ("5 m", "5\\text{ m}", True), ("5\\text{ m}", "5", True), ("\\frac12", "\\frac12 mg", False), ("5 x", "5", False),
    ("5 apples", "5", True), ("5 kg of flour", "5", True), ("5 xy", "5", False),
    # a comma inside a number: thousands before exactly three digits, else a list, unless the locale says otherwise
    ("-3", "-3,0", False), ("3.5", "3,5", False), ("3{,}5", "3.5", True), ("1.234,5", "1234.5", True),
    ("-3,000", "-3000", True), ("12{,}345", "12345", True),
    # sets with bare braces, Greek letters, markdown bold
    ("{-2}", "\\{-2\\}", True), ("{-2}", "-2", False), ("α", "\\alpha", True), ("\\vartheta", "θ", True),
    ("**131**", "131", True), ("2**10", "1024", True),
    # derivatives, bound variables and powers in equations
    ("x' = -kx", "\\frac{dx}{dt} = -kx", True), ("\\frac{dx}{dt}", "\\frac{x}{t}", False),
    ("m\\ddot{x} = -kx", "\\frac{d^2x}{dt^2} = -\\frac{k}{m}x", True), ("m\\ddot{x} = -kx", "\\ddot{x} = -kx", False),
    ("\\frac{d}{dt}(x) = x", "\\dot x = x", True), ("\\frac{d}{dt}(x^2) = x", "2xx' = x", False),
    ("f(z) = z", "f(x) = x", True), ("f(z) = z + x", "f(x) = 2x", False),
    ("x^{1000}-1=0", "x^{1000}=1", True), ("x^{1000}-2=0", "x^{1000}=1", False),
])
def test_third_round_policies(pred, gold, expected):
    assert is_equivalent(pred, gold) is expected


def test_huge_integers_compared_digit_by_digit():
    digits = "7" * 100_000
    boxed = f"so the count is \\boxed{{{digits}}}."
    assert is_correct(boxed, digits) and is_correct(boxed, "+" + digits)
    near = explain(boxed, digits[:-1] + "8")
    assert near["verdict"] is False and near["reason"] == "integers compared digit by digit"
    assert not is_correct(boxed, digits[:-1]) and not is_correct(f"\\boxed{{-{digits}}}", digits)
    assert not is_correct(boxed, "7")


def test_reason_names_the_side_that_is_not_math():
    assert explain("@@", "##")["reason"] == "neither side is math; compared as text"
    assert explain("@@", "x+1")["reason"] == "the prediction is not math; compared as text"
    assert explain("x+1", "##")["reason"] == "the gold answer is not math; compared as text"


def test_degrees_not_converted_and_bases_not_converted():
    assert is_equivalent("90^\\circ", "90")
    assert not is_equivalent("90^\\circ", "\\frac{\\pi}{2}")
    assert is_equivalent("1011_2", "1011") and not is_equivalent("1011_2", "11")


def test_long_answers_compared_as_strings():
    long = "1+" * 1500 + "1"
    assert is_equivalent(long, long)
    assert not is_equivalent(long, "3001")


# ------------------------------------------------------------------------------------------------
# One path: is_correct, explain, grade_many and the CLI all grade a case with judging.grade_case
# ------------------------------------------------------------------------------------------------
def test_every_case_takes_the_one_path(monkeypatch):
    real, graded = judging.grade_case, []

    def counting(prediction, gold, *args, **kwargs):
        result = real(prediction, gold, *args, **kwargs)
        graded.append((prediction, gold, result.correct))
        return result

    monkeypatch.setattr(judging, "grade_case", counting)
    assert is_correct("The answer is 0.5", "\\frac{1}{2}")
    assert explain("\\boxed{x^2+2x+1}", "(x+1)^2")["verdict"] is True
    pairs = [("\\boxed{3}", "3"), ("x = 4", "5"), ("\\boxed{x^2+2x+1}", "(x+1)^2"), ("(B)", "B", "choice")]
    assert grade_many(pairs, workers=2) == [True, False, True, True]
    assert grade_many(pairs, workers=1) == [True, False, True, True]
    assert CliRunner().invoke(grade_cli, ["0.5", "1/2"]).exit_code == 0
    assert len(graded) == 2 + 2 * len(pairs) + 1
    assert sorted(graded[2:6]) == sorted(graded[6:10]) == sorted((p[0], p[1], ok) for p, ok in
                                                                zip(pairs, [True, False, True, True]))
    assert graded[-1] == ("0.5", "1/2", True)
