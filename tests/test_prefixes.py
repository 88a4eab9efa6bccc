"""The prefix-analysis statistics, on constructed data and real synthetic problems with hand-computed answers."""
from __future__ import annotations

import random

import pytest

from upft_bench.prefixes import (
    Step,
    chain_summary,
    first_error,
    is_restatement,
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


def _problem(min_steps: int = 3, ops: tuple = ("add", "sub"), need: str | None = None):
    for p in generate_problems(60, seed=0, split="test", ops=ops):
        if p.steps >= min_steps and (need is None or need in p.solution):
            return p
    raise AssertionError("no suitable synthetic problem")


def _sentences(solution: str) -> list[str]:
    """The solution's sentences without their final "." (the synthetic format joins them with ". ")."""
    assert solution.endswith(".")
    return solution[:-1].split(". ")


def _offset(sentences: list[str], index: int) -> int:
    """Character offset of sentence `index` in ". ".join(sentences) + "."."""
    return sum(len(s) + 2 for s in sentences[:index])


def _join(sentences: list[str]) -> str:
    return ". ".join(sentences) + "."


def test_parse_reference_solution():
    p = _problem()
    sentences = _sentences(p.solution)
    start, steps = parse_synthetic(p.solution)
    assert start == int(sentences[0].split()[3])  # "<Name> starts with N <items>"
    assert len(steps) == p.steps
    for i, step in enumerate(steps, start=1):
        assert p.solution[step.start:step.end] == sentences[i] + "."
        assert step.start == _offset(sentences, i)
        assert step.c == (step.a + step.b if step.op == "+" else step.a - step.b)
    for prev, step in zip(steps, steps[1:]):
        assert step.a == prev.c
    assert steps[0].a == start
    assert str(steps[-1].c) == p.answer


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
        err = first_error(p.solution, p.solution)
        assert err == {"first_wrong_step": None, "char_offset": None, "steps": p.steps, "kind": None}


def test_wrong_arithmetic_in_step_2():
    p = _problem()
    sentences = _sentences(p.solution)
    phrase, eq = sentences[2].split(": ")
    lhs, c = eq.split(" = ")
    sentences[2] = f"{phrase}: {lhs} = {int(c) + 1}"
    sample = _join(sentences)
    err = first_error(sample, p.solution)
    assert err == {"first_wrong_step": 2, "char_offset": _offset(sentences, 2), "steps": p.steps,
                   "kind": "arithmetic"}
    assert sample[err["char_offset"]:].startswith(phrase + ":")


def test_misread_start():
    p = _problem()
    sentences = _sentences(p.solution)
    words = sentences[0].split()
    words[3] = str(int(words[3]) + 1)
    sentences[0] = " ".join(words)
    err = first_error(_join(sentences), p.solution)
    assert (err["first_wrong_step"], err["kind"], err["char_offset"]) == (0, "start", 0)


def test_wrong_operand_in_step_1():
    p = _problem()
    start, steps = parse_synthetic(p.solution)
    s1 = steps[0]
    sentences = _sentences(p.solution)
    b = s1.b + 1
    c = s1.a + b if s1.op == "+" else s1.a - b
    sentences[1] = f"{sentences[1].split(': ')[0]}: {s1.a} {s1.op} {b} = {c}"  # consistent arithmetic, misread b
    err = first_error(_join(sentences), p.solution)
    assert (err["first_wrong_step"], err["kind"], err["char_offset"]) == (1, "operand", _offset(sentences, 1))


def test_wrong_operation_is_operand():
    p = _problem()
    _, steps = parse_synthetic(p.solution)
    s1 = steps[0]
    op = "-" if s1.op == "+" else "+"
    sentences = _sentences(p.solution)
    sentences[1] = f"{sentences[1].split(': ')[0]}: {s1.a} {op} {s1.b} = {s1.a + s1.b if op == '+' else s1.a - s1.b}"
    err = first_error(_join(sentences), p.solution)
    assert (err["first_wrong_step"], err["kind"]) == (1, "operand")


def test_broken_chain():
    p = _problem()
    _, steps = parse_synthetic(p.solution)
    s2 = steps[1]
    a = s2.a + 1  # not the previous step's result
    sentences = _sentences(p.solution)
    sentences[2] = f"{sentences[2].split(': ')[0]}: {a} {s2.op} {s2.b} = {a + s2.b if s2.op == '+' else a - s2.b}"
    err = first_error(_join(sentences), p.solution)
    assert (err["first_wrong_step"], err["kind"], err["char_offset"]) == (2, "chain", _offset(sentences, 2))


def test_truncated_sample_is_missing():
    p = _problem()
    sentences = _sentences(p.solution)
    sample = _join(sentences[:3])  # start + 2 steps
    err = first_error(sample, p.solution)
    assert err == {"first_wrong_step": 3, "char_offset": len(sample), "steps": p.steps, "kind": "missing"}
    cut = p.solution[:_offset(sentences, 2) + 6]  # stops inside the phrase of step 2
    err = first_error(cut, p.solution)
    assert (err["first_wrong_step"], err["kind"], err["char_offset"]) == (2, "missing", len(cut))


def test_extra_step():
    p = _problem()
    _, steps = parse_synthetic(p.solution)
    last = steps[-1].c
    sentences = _sentences(p.solution)
    extra = f"She finds 2: {last} + 2 = {last + 2}"
    sentences.insert(p.steps + 1, extra)  # before "The answer is ..."
    sample = _join(sentences)
    err = first_error(sample, p.solution)
    assert err == {"first_wrong_step": p.steps + 1, "char_offset": _offset(sentences, p.steps + 1),
                   "steps": p.steps, "kind": "extra"}
    assert sample[err["char_offset"]:].startswith(extra)


def test_garbage_sample_does_not_raise():
    p = _problem()
    for text in ["", "asdf qwerty", "The answer is \\boxed{3}.", "1 + + = =", "\n\n", None]:
        err = first_error(text, p.solution)
        assert err["first_wrong_step"] == 0 or err["kind"] == "missing"
        assert err["steps"] == p.steps
    err = first_error("asdf qwerty", p.solution)
    assert err == {"first_wrong_step": 0, "char_offset": len("asdf qwerty"), "steps": p.steps, "kind": "missing"}


def test_mul_problem():
    p = _problem(min_steps=2, ops=("add", "sub", "mul"), need=" * ")
    start, steps = parse_synthetic(p.solution)
    assert len(steps) == p.steps
    k = next(i for i, s in enumerate(steps) if s.op == "*")
    mul = steps[k]
    assert mul.b in (2, 3) and mul.c == mul.a * mul.b
    assert first_error(p.solution, p.solution)["first_wrong_step"] is None
    # doubling/tripling read as adding the factor: a wrong operation at that step
    sentences = _sentences(p.solution)
    sentences[k + 1] = f"{sentences[k + 1].split(': ')[0]}: {mul.a} + {mul.b} = {mul.a + mul.b}"
    err = first_error(_join(sentences), p.solution)
    assert (err["first_wrong_step"], err["kind"], err["char_offset"]) == (k + 1, "operand", _offset(sentences, k + 1))
    # a multiplication slip
    sentences = _sentences(p.solution)
    sentences[k + 1] = f"{sentences[k + 1].split(': ')[0]}: {mul.a} * {mul.b} = {mul.c + 1}"
    err = first_error(_join(sentences), p.solution)
    assert (err["first_wrong_step"], err["kind"]) == (k + 1, "arithmetic")


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


# --- is_restatement ---------------------------------------------------------------------------------------------


def test_is_restatement():
    p = _problem()
    first = _sentences(p.solution)[0] + "."
    second = _sentences(p.solution)[1]
    assert is_restatement(first, p.solution)
    assert is_restatement(first[:-1], p.solution)  # without the "."
    assert is_restatement(first[: len(first) // 2], p.solution)
    cut = first.index(" ", first.index("starts with") + 12) + 3  # mid-way into the item word
    assert is_restatement(first[:cut], p.solution)
    assert is_restatement("  \n" + first + " ", p.solution)  # surrounding whitespace tolerated
    assert not is_restatement(first + " " + second[:5], p.solution)
    assert not is_restatement(first + " " + second, p.solution)
    assert not is_restatement(first.replace("starts", "begins"), p.solution)


def test_is_restatement_known_text():
    gold = "Tom starts with 12 apples. He buys 5 more: 12 + 5 = 17. The answer is \\boxed{17}."
    assert is_restatement("Tom starts with 12 apples.", gold)
    assert is_restatement("Tom starts with 12 ap", gold)
    assert is_restatement(" Tom starts", gold)
    assert not is_restatement("Tom starts with 12 apples. He", gold)
    assert not is_restatement("Tom starts with 13", gold)


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
        assert r["top_continuation_accuracy"] is not None and 0 <= r["restatement_share"] <= 1
    assert data["errors"]["wrong_samples"] + data["errors"]["right_samples"] == 24
    # the full pool, then per k continuations from the top prefix and from another prefix (2 each)
    assert data["cost"]["samples"] == 24 + sum(2 * 6 + 2 * r["questions_with_other_prefix"]
                                               for r in data["ks"].values())
    assert "UPFT's premise" in data["reading"] and data["reading"] in (out / "analysis.md").read_text()
    assert (out / "analysis.png").stat().st_size > 1000
