"""The prefix-analysis statistics, on constructed data and real synthetic problems with hand-computed answers."""
from __future__ import annotations

import random

import pytest

from upft_bench.prefixes import (
    Step,
    chain_summary,
    first_error,
    holds_reasoning,
    other_prefix,
    parse_synthetic,
    prefix_consistency,
    summarize,
)
from upft_bench.synthetic import generate_problems

# --- prefix_consistency / summarize / other_prefix --------------------------------------------------------------


def test_consistency_all_equal():
    stats = prefix_consistency([[7, 8, 9]] * 4)
    assert stats == {"samples": 4, "distinct": 1, "top_share": 1.0, "entropy_bits": 0.0, "top": (7, 8, 9)}


def test_consistency_mixed_entropy_exact():
    stats = prefix_consistency([(1, 2), (1, 2), (1, 3), (4, 5)])
    # -(1/2 log2 1/2 + 1/4 log2 1/4 + 1/4 log2 1/4) = 1/2 + 1/2 + 1/2
    assert stats["samples"] == 4
    assert stats["distinct"] == 3
    assert stats["top_share"] == 0.5
    assert stats["entropy_bits"] == 1.5
    assert stats["top"] == (1, 2)


def test_consistency_uniform_entropy_and_ties_pick_first():
    stats = prefix_consistency([[3], [1], [1], [3], [2], [2]])
    assert stats["top"] == (3,)  # 3, 1 and 2 all appear twice; 3 appears first
    assert stats["top_share"] == pytest.approx(1 / 3)
    assert stats["entropy_bits"] == pytest.approx(1.584962500721156)  # log2(3)
    assert prefix_consistency([[5], [6]])["top"] == (5,)


def test_consistency_empty_raises():
    with pytest.raises(ValueError):
        prefix_consistency([])


def test_summarize_linear_quartiles():
    assert summarize([4, 1, 3, 2]) == {"mean": 2.5, "q1": 1.75, "median": 2.5, "q3": 3.25, "min": 1.0, "max": 4.0,
                                       "n": 4}
    assert summarize([5])["q1"] == 5.0
    assert summarize([])["n"] == 0 and summarize([])["mean"] is None


def test_other_prefix_none_when_all_equal():
    assert other_prefix([(1, 2)] * 5, (1, 2), random.Random(0)) is None
    assert other_prefix([[1, 2], [1, 2]], [1, 2], random.Random(0)) is None


def test_other_prefix_never_top_and_deterministic():
    prefixes = [(1,), (1,), (2,), (3,), (1,)]
    draws = [other_prefix(prefixes, (1,), random.Random(42)) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]
    rng = random.Random(1)
    seq = [other_prefix(prefixes, (1,), rng) for _ in range(200)]
    rng = random.Random(1)
    assert seq == [other_prefix(prefixes, (1,), rng) for _ in range(200)]
    assert set(seq) == {(2,), (3,)}
    assert all(isinstance(p, tuple) for p in seq)


def test_other_prefix_frequency_weighted():
    prefixes = [(0,)] * 5 + [(1,)] * 3 + [(2,)]
    rng = random.Random(7)
    draws = [other_prefix(prefixes, (0,), rng) for _ in range(4000)]
    ones, twos = draws.count((1,)), draws.count((2,))
    assert ones + twos == 4000
    assert 2.5 < ones / twos < 3.6  # expected 3000 : 1000 (a distinct-prefix draw would give ~1)



# --- parse_synthetic / first_error ------------------------------------------------------------------------------
# The reference format (upft_bench.synthetic): one equation per step, tagged with the question's wording,
#     "12 + 5 = 17 (buys 5 more). 17 - 3 = 14 (sells 3). The answer is \\boxed{14}."
# so step i (1-based) is sentence i - 1, and the start amount is stated only in the question.


def _problem(min_steps: int = 3, ops: tuple = ("add", "sub"), need: str | None = None):
    for p in generate_problems(60, seed=0, split="test", ops=ops):
        if p.steps >= min_steps and (need is None or need in p.solution):
            return p
    raise AssertionError("no suitable synthetic problem")


def _sentences(solution: str) -> list[str]:
    """The solution's sentences without their final "." (the synthetic format joins them with ". ").

    Sentence i - 1 is step i ("a OP b = c (tag)"); the last one is "The answer is \\boxed{N}".
    """
    assert solution.endswith(".")
    return solution[:-1].split(". ")


def _offset(sentences: list[str], index: int) -> int:
    """Character offset of sentence `index` in ". ".join(sentences) + "."."""
    return sum(len(s) + 2 for s in sentences[:index])


def _join(sentences: list[str]) -> str:
    return ". ".join(sentences) + "."


def _split_step(sentence: str) -> tuple[str, str]:
    """("a OP b = c", "(tag)") of one step sentence."""
    eq, tag = sentence.split(" (", 1)
    return eq, "(" + tag


def _apply(op: str, a: int, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def _question_start(question: str) -> int:
    """The start amount of a synthetic question: "<Name> has/starts with/owns/collects N <items>. ..."."""
    words = question.split(". ")[0].split()
    return int(words[3] if words[1] == "starts" else words[2])


def test_parse_reference_solution():
    p = _problem()
    sentences = _sentences(p.solution)
    assert len(sentences) == p.steps + 1 and sentences[-1] == f"The answer is \\boxed{{{p.answer}}}"
    start, steps = parse_synthetic(p.solution)
    assert start is None  # the reference solution states no start amount
    assert len(steps) == p.steps
    for i, step in enumerate(steps, start=1):
        eq, tag = _split_step(sentences[i - 1])
        assert eq == f"{step.a} {step.op} {step.b} = {step.c}"
        assert tag.startswith("(") and tag.endswith(")")
        assert step.start == _offset(sentences, i - 1)
        assert step.end == step.start + len(eq)  # the equation; the tag follows it
        assert p.solution[step.start:step.end] == eq
        assert step.correct() and step.c == _apply(step.op, step.a, step.b)
    assert steps[0].start == 0  # reasoning from the first character
    for prev, step in zip(steps, steps[1:]):
        assert step.a == prev.c
    assert steps[0].a == _question_start(p.question)
    assert parse_synthetic(p.question) == (steps[0].a, [])  # the question holds the start and no equation
    assert str(steps[-1].c) == p.answer


def test_parse_known_new_format_text():
    text = "12 + 5 = 17 (buys 5 more). 17 - 3 = 14 (sells 3). The answer is \\boxed{14}."
    start, steps = parse_synthetic(text)
    assert start is None
    assert steps == [Step(12, "+", 5, 17, 0, 11), Step(17, "-", 3, 14, 27, 38)]
    assert text[0:11] == "12 + 5 = 17" and text[27:38] == "17 - 3 = 14"


def test_parse_known_text():
    text = "Tom starts with 12 apples. He buys 5 more: 12 + 5 = 17. He doubles them: 17 * 2 = 34. " \
           "The answer is \\boxed{34}."
    start, steps = parse_synthetic(text)
    assert start == 12
    assert steps == [Step(12, "+", 5, 17, 27, 55), Step(17, "*", 2, 34, 56, 85)]


def test_parse_tolerates_garbage():
    for text in ["", "asdf qwerty", "....", "= = + 3", "12 + = 4", "Tom starts with apples.", "::: 1 + 2 =", None]:
        start, steps = parse_synthetic(text)
        assert steps == [] and (start is None or isinstance(start, int))


@pytest.mark.parametrize("ops", [("add", "sub"), ("add", "sub", "mul")])
def test_gold_against_itself(ops):
    for p in generate_problems(40, seed=0, split="test", ops=ops):
        assert parse_synthetic(p.solution)[0] is None
        err = first_error(p.solution, p.solution)
        assert err == {"first_wrong_step": None, "char_offset": None, "steps": p.steps, "kind": None}


def test_problems_have_tricks_field():
    problems = generate_problems(60, seed=0, split="test")
    for p in problems:
        assert isinstance(p.tricks, tuple)
        for step, kind in p.tricks:
            assert 0 <= step < p.steps and kind in ("distractor", "confusable", "aside")
        assert first_error(p.solution, p.solution)["first_wrong_step"] is None
    assert any(p.tricks for p in problems)


def test_wrong_arithmetic_in_step_2():
    p = _problem()
    sentences = _sentences(p.solution)
    eq, tag = _split_step(sentences[1])
    lhs, c = eq.split(" = ")
    sentences[1] = f"{lhs} = {int(c) + 1} {tag}"
    sample = _join(sentences)
    err = first_error(sample, p.solution)
    assert err == {"first_wrong_step": 2, "char_offset": _offset(sentences, 1), "steps": p.steps,
                   "kind": "arithmetic"}
    assert sample[err["char_offset"]:].startswith(lhs + " = ")


def test_misread_start():
    p = _problem()
    _, steps = parse_synthetic(p.solution)
    s1 = steps[0]
    a = s1.a + 1  # the question's start amount, misread
    sentences = _sentences(p.solution)
    _, tag = _split_step(sentences[0])
    sentences[0] = f"{a} {s1.op} {s1.b} = {_apply(s1.op, a, s1.b)} {tag}"  # consistent arithmetic
    err = first_error(_join(sentences), p.solution)
    # no start amount in gold, so no step 0: the misread shows at step 1 as a wrong operand
    assert err == {"first_wrong_step": 1, "char_offset": 0, "steps": p.steps, "kind": "operand"}
    # the whole chain carried on from the misread start: still step 1
    value, parts = a, []
    for s, sentence in zip(steps, _sentences(p.solution)):
        parts.append(f"{value} {s.op} {s.b} = {_apply(s.op, value, s.b)} {_split_step(sentence)[1]}")
        value = _apply(s.op, value, s.b)
    parts.append(f"The answer is \\boxed{{{value}}}")
    err = first_error(_join(parts), p.solution)
    assert (err["first_wrong_step"], err["kind"], err["char_offset"]) == (1, "operand", 0)


def test_restated_start_against_new_gold():
    """A sample that restates the start (old style) against a gold that does not: no step-0 check."""
    p = _problem()
    start = _question_start(p.question)
    opening = p.question.split(". ")[0] + ". "  # "<Name> has N <items>. "
    assert parse_synthetic(opening + p.solution)[0] == start
    err = first_error(opening + p.solution, p.solution)
    assert err == {"first_wrong_step": None, "char_offset": None, "steps": p.steps, "kind": None}
    # a wrong restated start that the equations do not use is not checked
    wrong_opening = opening.replace(f" {start} ", f" {start + 1} ")
    assert parse_synthetic(wrong_opening + p.solution)[0] == start + 1
    assert first_error(wrong_opening + p.solution, p.solution)["first_wrong_step"] is None
    # a wrong restated start carried into step 1 is an operand error there, located after the restatement
    _, steps = parse_synthetic(p.solution)
    s1 = steps[0]
    sentences = _sentences(p.solution)
    sentences[0] = f"{start + 1} {s1.op} {s1.b} = {_apply(s1.op, start + 1, s1.b)} {_split_step(sentences[0])[1]}"
    err = first_error(wrong_opening + _join(sentences), p.solution)
    assert (err["first_wrong_step"], err["kind"], err["char_offset"]) == (1, "operand", len(wrong_opening))


@pytest.mark.parametrize("step", [1, 3])
def test_wrong_operand_at_a_step(step):
    """A misread operand with consistent arithmetic: an operand error at that step, located at its equation."""
    p = _problem()
    _, steps = parse_synthetic(p.solution)
    s = steps[step - 1]
    sentences = _sentences(p.solution)
    b = s.b + 1
    sentences[step - 1] = f"{s.a} {s.op} {b} = {_apply(s.op, s.a, b)} {_split_step(sentences[step - 1])[1]}"
    sample = _join(sentences)
    err = first_error(sample, p.solution)
    assert err == {"first_wrong_step": step, "char_offset": _offset(sentences, step - 1), "steps": p.steps,
                   "kind": "operand"}
    assert _offset(sentences, 0) == 0
    assert sample[err["char_offset"]:].startswith(f"{s.a} {s.op} {b} = ")


def test_wrong_operation_is_operand():
    p = _problem()
    _, steps = parse_synthetic(p.solution)
    s1 = steps[0]
    op = "-" if s1.op == "+" else "+"
    sentences = _sentences(p.solution)
    sentences[0] = f"{s1.a} {op} {s1.b} = {_apply(op, s1.a, s1.b)} {_split_step(sentences[0])[1]}"
    err = first_error(_join(sentences), p.solution)
    assert (err["first_wrong_step"], err["kind"], err["char_offset"]) == (1, "operand", 0)


def test_broken_chain():
    p = _problem()
    _, steps = parse_synthetic(p.solution)
    s2 = steps[1]
    a = s2.a + 1  # not the previous step's result
    sentences = _sentences(p.solution)
    sentences[1] = f"{a} {s2.op} {s2.b} = {_apply(s2.op, a, s2.b)} {_split_step(sentences[1])[1]}"
    err = first_error(_join(sentences), p.solution)
    assert (err["first_wrong_step"], err["kind"], err["char_offset"]) == (2, "chain", _offset(sentences, 1))


def test_truncated_sample_is_missing():
    p = _problem()
    sentences = _sentences(p.solution)
    sample = _join(sentences[:2])  # 2 steps
    err = first_error(sample, p.solution)
    assert err == {"first_wrong_step": 3, "char_offset": len(sample), "steps": p.steps, "kind": "missing"}
    cut = p.solution[:_offset(sentences, 1) + sentences[1].index(" =")]  # stops before step 2's "="
    err = first_error(cut, p.solution)
    assert err == {"first_wrong_step": 2, "char_offset": len(cut), "steps": p.steps, "kind": "missing"}
    cut = p.solution[:_offset(sentences, 1) + sentences[1].index("(") + 2]  # inside step 2's tag
    err = first_error(cut, p.solution)
    assert err == {"first_wrong_step": 3, "char_offset": len(cut), "steps": p.steps, "kind": "missing"}
    # everything but the answer sentence: the chain is whole
    err = first_error(_join(sentences[:-1]), p.solution)
    assert err["first_wrong_step"] is None and err["kind"] is None


def test_extra_step():
    p = _problem()
    _, steps = parse_synthetic(p.solution)
    last = steps[-1].c
    sentences = _sentences(p.solution)
    extra = f"{last} + 2 = {last + 2} (finds 2)"
    sentences.insert(p.steps, extra)  # before "The answer is ..."
    sample = _join(sentences)
    err = first_error(sample, p.solution)
    assert err == {"first_wrong_step": p.steps + 1, "char_offset": _offset(sentences, p.steps),
                   "steps": p.steps, "kind": "extra"}
    assert sample[err["char_offset"]:].startswith(extra)


def test_garbage_sample_does_not_raise():
    p = _problem()
    for text in ["", "asdf qwerty", "The answer is \\boxed{3}.", "1 + + = =", "\n\n", "Tom has 12 apples.", None]:
        err = first_error(text, p.solution)
        # no equation: step 1 (there is no step 0 against a gold that states no start) is missing
        assert err == {"first_wrong_step": 1, "char_offset": len(text or ""), "steps": p.steps, "kind": "missing"}
    err = first_error("asdf qwerty", p.solution)
    assert err == {"first_wrong_step": 1, "char_offset": len("asdf qwerty"), "steps": p.steps, "kind": "missing"}
    # an equation that is not gold's step 1 (the start amounts are at most 20): operand, from the sentence start
    err = first_error("asdf 99 + 99 = 198", p.solution)
    assert err == {"first_wrong_step": 1, "char_offset": 0, "steps": p.steps, "kind": "operand"}


def test_mul_problem():
    p = _problem(min_steps=2, ops=("add", "sub", "mul"), need=" * ")
    start, steps = parse_synthetic(p.solution)
    assert start is None and len(steps) == p.steps
    k = next(i for i, s in enumerate(steps) if s.op == "*")
    mul = steps[k]
    assert mul.b in (2, 3) and mul.c == mul.a * mul.b
    assert _split_step(_sentences(p.solution)[k])[1] == ("(doubles)" if mul.b == 2 else "(triples)")
    assert first_error(p.solution, p.solution)["first_wrong_step"] is None
    # doubling/tripling read as adding the factor: a wrong operation at that step (step k + 1, sentence k)
    sentences = _sentences(p.solution)
    tag = _split_step(sentences[k])[1]
    sentences[k] = f"{mul.a} + {mul.b} = {mul.a + mul.b} {tag}"
    err = first_error(_join(sentences), p.solution)
    assert (err["first_wrong_step"], err["kind"], err["char_offset"]) == (k + 1, "operand", _offset(sentences, k))
    # a multiplication slip
    sentences = _sentences(p.solution)
    sentences[k] = f"{mul.a} * {mul.b} = {mul.c + 1} {tag}"
    err = first_error(_join(sentences), p.solution)
    assert (err["first_wrong_step"], err["kind"], err["char_offset"]) == (k + 1, "arithmetic", _offset(sentences, k))
    # "×" and "x" read as "*"
    for sign in ("×", "x"):
        sentences = _sentences(p.solution)
        sentences[k] = f"{mul.a} {sign} {mul.b} = {mul.c} {tag}"
        assert first_error(_join(sentences), p.solution)["first_wrong_step"] is None


# --- first_error against an old-format gold that restates the start amount (step 0) ---------------------------

OLD_GOLD = "Tom starts with 12 apples. He buys 5 more: 12 + 5 = 17. He doubles them: 17 * 2 = 34. " \
           "The answer is \\boxed{34}."


def test_old_format_gold_keeps_step_0():
    assert parse_synthetic(OLD_GOLD)[0] == 12

    def err(text):
        e = first_error(text, OLD_GOLD)
        assert e["steps"] == 2
        return e["first_wrong_step"], e["kind"], e["char_offset"]

    assert err(OLD_GOLD) == (None, None, None)
    # a misread start amount is step 0, "start", at the first non-space character
    assert err(OLD_GOLD.replace("with 12", "with 13")) == (0, "start", 0)
    assert err("  " + OLD_GOLD.replace("with 12", "with 13")) == (0, "start", 2)
    assert err("Tom has 11 apples. He buys 5 more: 11 + 5 = 16.") == (0, "start", 0)
    # no start amount stated: step 0 is missing
    assert err("") == (0, "missing", 0)
    assert err("asdf qwerty") == (0, "missing", 11)
    new_style = "12 + 5 = 17 (buys 5 more). 17 * 2 = 34 (doubles). The answer is \\boxed{34}."
    assert err(new_style) == (0, "missing", len(new_style))
    # step 1 is chained to the stated start
    assert err("Tom starts with 12 apples. He buys 5 more: 13 + 5 = 18. He doubles them: 18 * 2 = 36.") \
        == (1, "chain", 27)
    assert err("Tom starts with 12 apples. He buys 5 more: 12 + 5 = 18. He doubles them: 18 * 2 = 36.") \
        == (1, "arithmetic", 27)
    assert err("Tom starts with 12 apples. He buys 6 more: 12 + 6 = 18. He doubles them: 18 * 2 = 36.") \
        == (1, "operand", 27)
    truncated = "Tom starts with 12 apples. He buys 5 more: 12 + 5 = 17."
    assert err(truncated) == (2, "missing", len(truncated))
    assert err("Tom starts with 12 apples.") == (1, "missing", 26)
    assert err(OLD_GOLD.replace(" The answer", " She finds 2: 34 + 2 = 36. The answer")) == (3, "extra", 86)


# --- chain_summary ----------------------------------------------------------------------------------------------


def test_chain_summary_constructed():
    records = [
        {"correct": False, "first_wrong_step": 3, "steps": 3},  # wrong at the last step
        {"correct": False, "first_wrong_step": 2, "steps": 3},
        {"correct": False, "first_wrong_step": None, "steps": 3},  # no located error
        {"correct": False, "first_wrong_step": 4, "steps": 4},  # wrong at the last step
        {"correct": False, "first_wrong_step": 3, "steps": 5},
        {"correct": True, "first_wrong_step": None, "steps": 3},
        {"correct": True, "first_wrong_step": 1, "steps": 3},  # right answer despite an error
        {"correct": True, "first_wrong_step": None, "steps": 2},
        {"correct": True, "first_wrong_step": None, "steps": 4},
    ]
    out = chain_summary(records)
    assert out["wrong_samples"] == 5
    assert out["right_samples"] == 4
    assert out["wrong_right_until_last"] == pytest.approx(2 / 5)
    assert out["right_with_error"] == pytest.approx(1 / 4)
    assert out["median_first_wrong_step"] == 3.0  # median of [3, 2, 4, 3]
    assert out["first_wrong_step_share_by_index"] == {2: pytest.approx(0.2), 3: pytest.approx(0.4),
                                                      4: pytest.approx(0.2)}


def test_chain_summary_even_median_and_empty():
    out = chain_summary([{"correct": False, "first_wrong_step": 1, "steps": 2},
                         {"correct": False, "first_wrong_step": 2, "steps": 2}])
    assert out["median_first_wrong_step"] == 1.5
    assert out["wrong_right_until_last"] == 0.5
    assert out["right_with_error"] is None and out["right_samples"] == 0
    empty = chain_summary([])
    assert empty == {"wrong_samples": 0, "right_samples": 0, "wrong_right_until_last": None,
                     "right_with_error": None, "median_first_wrong_step": None,
                     "first_wrong_step_share_by_index": {}}
    only_right = chain_summary([{"correct": True, "first_wrong_step": None, "steps": 2}])
    assert only_right["median_first_wrong_step"] is None and only_right["wrong_right_until_last"] is None
    assert only_right["right_with_error"] == 0.0


# --- holds_reasoning --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["12 +", "First, 12 - 3", "12 + 5 = 17 (buys 5 more).", "12+5", "12 * 2",
                                  "12 × 2", "12 − 3", "We get 7 - ", "Tom has 12 apples. 12 + 5",
                                  "-3 + 4", "12 +\n"])
def test_holds_reasoning_true(text):
    assert holds_reasoning(text)


@pytest.mark.parametrize("text", ["Tom starts with 12 apples.", "12", "12 ", "a 12-year", "a 12-year-old",
                                  "", "   ", "Tom has 12 apples. He buys 5 more apples.", "First, ",
                                  "The answer is \\boxed{14}.", "+ 5 = 17", None])
def test_holds_reasoning_false(text):
    assert not holds_reasoning(text)


def test_holds_reasoning_on_cut_solutions():
    # "", "1", "12", "12 " hold none; "12 +", "12 + " hold one
    assert [holds_reasoning("12 + 5 = 17 (buys 5 more)."[:n]) for n in range(6)] == [False] * 4 + [True] * 2
    for p in generate_problems(40, seed=0, split="test", ops=("add", "sub", "mul")):
        sol = p.solution
        op = sol.index(" ") + 1  # "a OP ...": the operator follows the first number and a space
        assert sol[op] in "+-*"
        assert [holds_reasoning(sol[:n]) for n in range(len(sol) + 1)] == \
            [False] * (op + 1) + [True] * (len(sol) - op)  # through the operator: reasoning
        assert not holds_reasoning(p.question)  # the question only states amounts
        assert not holds_reasoning(p.question.split(". ")[0] + ".")  # a restated start amount


@pytest.mark.slow
def test_analyze_runs_on_the_smoke_config_in_seconds(tmp_path, monkeypatch):
    """`upft-bench analyze baselines/smoke.yaml`: every analysis section and number, from a real tiny model."""
    import json

    from click.testing import CliRunner

    from upft_bench import baselines_dir
    from upft_bench.cli import main

    monkeypatch.setenv("UPFT_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "analysis"
    result = CliRunner().invoke(main, ["analyze", str(baselines_dir() / "smoke.yaml"), "--questions", "6",
                                       "--samples", "4", "--rollouts", "2", "--k", "4,8", "--output", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    data = json.loads((out / "analysis.json").read_text())
    assert set(data["ks"]) == {"4", "8"} and data["questions"] == 6 and data["samples_per_question"] == 4
    for r in data["ks"].values():
        assert 1 <= r["distinct"]["mean"] <= 4 and 0.25 <= r["top_share"]["mean"] <= 1
        assert r["top_continuation_accuracy"] is not None and 0 <= r["reasoning_share"] <= 1
        assert "restatement_share" not in r
    assert isinstance(data["greedy_accuracy"], float) and 0 <= data["greedy_accuracy"] <= 100
    assert isinstance(data["full_accuracy"], float) and 0 <= data["full_accuracy"] <= 100
    assert data["errors"]["wrong_samples"] + data["errors"]["right_samples"] == 24
    # the full pool (24), the greedy pool (1 per question), then per k continuations from the top prefix and
    # from another prefix (2 each)
    assert data["cost"]["samples"] == 24 + 6 + sum(2 * 6 + 2 * r["questions_with_other_prefix"]
                                                   for r in data["ks"].values())
    assert "UPFT's premise" in data["reading"] and data["reading"] in (out / "analysis.md").read_text()
    assert (out / "analysis.png").stat().st_size > 1000
