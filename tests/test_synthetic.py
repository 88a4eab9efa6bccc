"""The synthetic task: determinism, correct arithmetic, split disjointness, the pretraining corpus mix."""
from __future__ import annotations

import re
from collections import Counter

import pytest

from upft_bench.data import Question, to_question
from upft_bench.prompts import PREFIX_INSTRUCTION
from upft_bench.synthetic import generate_corpus, generate_problems, split_of

STEP = re.compile(r"(\d+) ([-+*]) (\d+) = (\d+)\.")
START = re.compile(r"starts with (\d+) ")
FINAL = re.compile(r"The answer is \\boxed\{(\d+)\}\.$")


def replay(solution: str) -> tuple[list[bool], int]:
    """Recompute a solution from its text: per step, is `a op b = c` right and does `a` carry the last value?"""
    value = int(START.search(solution).group(1))
    ok = []
    for a, op, b, c in STEP.findall(solution):
        a, b, c = int(a), int(b), int(c)
        truth = a + b if op == "+" else a - b if op == "-" else a * b
        ok.append(truth == c and a == value)
        value = c
    return ok, value


def test_same_seed_same_problems_and_prefix_stable():
    a = generate_problems(200, seed=3, split="test")
    assert a == generate_problems(200, seed=3, split="test")
    assert generate_problems(50, seed=3, split="test") == a[:50]
    b = generate_problems(200, seed=4, split="test")
    assert len({p.question for p in a} & {p.question for p in b}) < 20


def test_problems_are_distinct_ids_unique_and_steps_in_range():
    ps = generate_problems(1000, seed=0, split="train", min_steps=2, max_steps=6)
    assert len({p.question for p in ps}) == len(ps) == len({p.id for p in ps})
    assert all(p.id.startswith("synth-train-") for p in ps)
    counts = Counter(p.steps for p in ps)
    assert set(counts) == {2, 3, 4, 5, 6}
    assert min(counts.values()) > 120  # roughly uniform over the step counts


@pytest.mark.parametrize("ops", [("add", "sub"), ("add", "sub", "mul")])
def test_solutions_recompute_and_end_with_boxed_answer(ops):
    for p in generate_problems(500, seed=1, split="train", ops=ops):
        ok, value = replay(p.solution)
        assert len(ok) == p.steps and all(ok), p.solution
        m = FINAL.search(p.solution)
        assert m and m.group(1) == p.answer == str(value), p.solution
        assert 0 <= value <= 99


def test_small_numbers_by_default():
    for p in generate_problems(300, seed=2, split="test"):
        start = int(START.search(p.solution).group(1))
        assert 2 <= start <= 20
        for _a, op, b, c in STEP.findall(p.solution):
            assert op in "+-" and 1 <= int(b) <= 9 and 0 <= int(c) <= 99


def test_checker_extracts_the_answer():
    grading = pytest.importorskip("upft_bench.grading")
    for p in generate_problems(100, seed=0, split="test"):
        assert grading.extract_answer(p.solution) == p.answer
        assert grading.is_correct(p.solution, p.answer)


def test_train_and_test_never_share_a_problem():
    train = generate_problems(20_000, seed=0, split="train", min_steps=2, max_steps=3)
    test = generate_problems(3_000, seed=1, split="test", min_steps=2, max_steps=3)
    assert not {p.question for p in train} & {p.question for p in test}
    # Stronger: no arithmetic skeleton is shared either (no re-worded train problem in test).
    def skeleton(p):
        return tuple(STEP.findall(p.solution)) + (START.search(p.solution).group(1),)
    assert not {skeleton(p) for p in train} & {skeleton(p) for p in test}


def test_split_assignment_is_a_stable_hash():
    assert split_of("12|add5|sub3") == split_of("12|add5|sub3")
    share = sum(split_of(f"{i}|add1") == "test" for i in range(5000)) / 5000
    assert 0.17 < share < 0.23


def test_to_question():
    p = generate_problems(1, seed=0, split="test")[0]
    q = to_question(p)
    assert isinstance(q, Question)
    assert (q.id, q.question, q.answer, q.solution, q.kind, q.meta) == (
        p.id, p.question, p.answer, p.solution, "math", {"steps": p.steps})


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="split"):
        generate_problems(1, 0, split="dev")
    with pytest.raises(ValueError, match="min_steps"):
        generate_problems(1, 0, min_steps=4, max_steps=2)
    with pytest.raises(ValueError, match="operations"):
        generate_problems(1, 0, ops=("div",))
    with pytest.raises(ValueError, match="slip_rate"):
        generate_corpus(1, 0, slip_rate=1.5)


def test_corpus_slips_and_prefix_share():
    corpus = generate_corpus(6000, seed=0, slip_rate=0.25, prefix_share=0.15, prefix_tokens_range=(8, 32))
    assert corpus == generate_corpus(6000, seed=0, slip_rate=0.25, prefix_share=0.15, prefix_tokens_range=(8, 32))
    slipped = [c for c in corpus if c.slip_step is not None]
    assert 0.22 < len(slipped) / len(corpus) < 0.28
    for c in corpus[:2000]:
        ok, value = replay(c.solution)
        assert str(value) == c.answer and FINAL.search(c.solution).group(1) == c.answer
        if c.slip_step is None:
            assert all(ok) and c.answer == c.gold
        else:
            # Exactly one wrong step, at slip_step; later steps compute correctly from the wrong value.
            assert [i for i, good in enumerate(ok) if not good] == [c.slip_step]
            assert c.answer != c.gold
    # Slips sit late: the mean relative position is well past the middle, the last step slips most.
    rel = [c.slip_step / (c.steps - 1) for c in slipped]
    assert sum(rel) / len(rel) > 0.6
    by_pos = Counter(c.slip_step for c in slipped if c.steps == 4)
    assert by_pos[3] > by_pos[2] > by_pos[0]

    prefix = [c for c in corpus if c.prefix_tokens is not None]
    assert 0.13 < len(prefix) / len(corpus) < 0.17
    assert all(c.instruction == PREFIX_INSTRUCTION for c in prefix)
    assert all(c.instruction == "" for c in corpus if c.prefix_tokens is None)
    assert {c.prefix_tokens for c in prefix} == set(range(8, 33))


def test_corpus_uses_train_problems_only():
    test_questions = {p.question for p in generate_problems(3000, seed=0, split="test", max_steps=2)}
    corpus = generate_corpus(20_000, seed=0, max_steps=2)
    assert not test_questions & {c.question for c in corpus}
