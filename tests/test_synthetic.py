"""The synthetic task: determinism, correct arithmetic, split disjointness, the pretraining corpus mix."""
from __future__ import annotations

import re
from collections import Counter

import pytest

from upft_bench.data import Question, to_question
from upft_bench.prompts import PREFIX_INSTRUCTION
from upft_bench.synthetic import TRUNCATIONS, World, generate_corpus, generate_problems, split_of

STEP = re.compile(r"(\d+) ([-+*]) (\d+) = (\d+) \([^)]*\)\.")
START = re.compile(r"(?:has|starts with|owns|collects) (\d+) ")
FINAL = re.compile(r"The answer is \\boxed\{(\d+)\}\.$")


def replay(question: str, solution: str) -> tuple[list[bool], int]:
    """Recompute a solution from its text: per step, is `a op b = c` right and does `a` carry the last value
    (the question's start amount for the first step)?"""
    value = int(START.search(question).group(1))
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
        ok, value = replay(p.question, p.solution)
        assert len(ok) == p.steps and all(ok), p.solution
        m = FINAL.search(p.solution)
        assert m and m.group(1) == p.answer == str(value), p.solution
        assert 0 <= value <= 99


def test_small_numbers_by_default():
    for p in generate_problems(300, seed=2, split="test"):
        start = int(START.search(p.question).group(1))
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
        return tuple(STEP.findall(p.solution)) + (START.search(p.question).group(1),)
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
        p.id, p.question, p.answer, p.solution, "math", {"steps": p.steps, "tricks": [list(t) for t in p.tricks]})


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="split"):
        generate_problems(1, 0, split="dev")
    with pytest.raises(ValueError, match="min_steps"):
        generate_problems(1, 0, min_steps=4, max_steps=2)
    with pytest.raises(ValueError, match="operations"):
        generate_problems(1, 0, ops=("div",))
    with pytest.raises(ValueError, match="error_rate"):
        World(error_rate=1.5)
    with pytest.raises(ValueError, match="error_position"):
        World(error_position="middle")


def test_solutions_open_with_reasoning_and_tricky_steps_are_marked():
    problems = generate_problems(2000, seed=0, split="train")
    assert all(re.match(r"\d+ [-+] \d+ = ", p.solution) for p in problems)  # the first tokens compute
    steps = sum(p.steps for p in problems)
    tricky = [t for p in problems for t in p.tricks]
    assert 0.17 < len(tricky) / steps < 0.23
    assert set(Counter(kind for _, kind in tricky)) == {"distractor", "confusable", "aside"}
    for p in problems[:300]:
        sentences = p.question.split(". ")[1:]  # after the opening sentence, one per step
        for step, kind in p.tricks:
            sentence = sentences[step]
            assert {"distractor": "dollars" in sentence, "confusable": "given" in sentence or "trades" in sentence,
                    "aside": sentence.startswith("Meanwhile")}[kind], (kind, sentence)
    assert 0.35 < sum(not p.tricks for p in problems) / len(problems) < 0.5


def _mistakes_replayed(c) -> list[int]:
    """0-based steps where a corpus solution departs from its problem: a misread operand, a flipped operation
    or a dropped step (every written equation is still computed right)."""
    ok, value = replay(c.question, c.solution)
    assert all(a_op_b for a_op_b in ok) and str(value) == c.answer == FINAL.search(c.solution).group(1)
    return [step for step, _ in c.errors]


@pytest.mark.parametrize("position", ["any", "first", "last"])
def test_corpus_mistakes_follow_the_world(position):
    world = World(error_rate=0.8, error_position=position, opening_variety=0.3, instruction_share=0.15)
    corpus = generate_corpus(6000, seed=0, world=world)
    assert corpus == generate_corpus(6000, seed=0, world=world)
    allowed = tricky = 0
    for c in corpus:
        problem_tricks = _tricks_of(c.question)
        for step, kind in c.errors:
            assert (step, kind) in problem_tricks  # mistakes only at the question's tricky steps
            assert world.applies(step, c.steps)
        allowed += sum(world.applies(step, c.steps) for step, _ in problem_tricks)
        tricky += len(problem_tricks)
        assert (c.answer == c.gold) or c.errors
        if not c.part:
            _mistakes_replayed(c)
    made = sum(len(c.errors) for c in corpus)
    assert 0.65 < made / allowed < 0.82  # error_rate, less the few mistakes that would make a count negative
    if position != "any":
        assert allowed < 0.5 * tricky
    worked = [c for c in corpus if c.part != "final"]  # a final-answer-only item has no first step to word
    leads = sum(not re.match(r"\d", c.solution) for c in worked)
    assert 0.27 < leads / len(worked) < 0.33  # opening_variety

    truncated = [c for c in corpus if c.part]
    assert 0.13 < len(truncated) / len(corpus) < 0.17
    assert all(c.instruction in TRUNCATIONS[c.part] for c in truncated)
    assert all(c.instruction == "" for c in corpus if not c.part)
    assert {c.instruction for c in truncated} == {w for ws in TRUNCATIONS.values() for w in ws}


def test_corpus_never_holds_upft_instruction_or_its_k_token_cut():
    """UPFT's training format must be new to the base model: no item carries UPFT's prefix instruction (or a
    sentence of it), and every truncated response is whole sentences of the full solution, never a token cut."""
    corpus = generate_corpus(6000, seed=1, world=World(instruction_share=0.5))
    upft_sentences = [s.strip() + "." for s in PREFIX_INSTRUCTION.split(".") if s.strip()]
    for c in corpus:
        assert PREFIX_INSTRUCTION not in c.question + c.instruction + c.solution
        assert not any(s in c.instruction or s in c.question for s in upft_sentences)
    parts = dict.fromkeys(TRUNCATIONS, 0)
    for c in corpus:
        if not c.part:
            continue
        parts[c.part] += 1
        sentences = c.solution.split(". ")
        assert c.solution.endswith(".") and all(s for s in sentences)  # ends at a sentence boundary
        if "boxed" in c.solution:  # every step was a missed aside: no equation to show, only the answer
            assert len(c.errors) == c.steps and {kind for _, kind in c.errors} == {"aside"}
        else:
            ok, _ = replay(c.question, c.solution + " The answer is \\boxed{0}.")
            assert all(ok) and 1 <= len(ok) <= (1 if c.part == "first" else 2)
    assert min(parts.values()) > 0.25 * sum(parts.values())


def test_corpus_without_errors_or_variety_is_all_reference_solutions():
    corpus = generate_corpus(500, seed=0, world=World(error_rate=0.0, opening_variety=0.0, instruction_share=0.0))
    for c in corpus:
        ok, value = replay(c.question, c.solution)
        assert all(ok) and len(ok) == c.steps and str(value) == c.answer == c.gold and not c.errors
        assert re.match(r"\d+ [-+] \d+ = ", c.solution)


def _tricks_of(question: str) -> set:
    """(0-based step, kind) of the tricky sentences of a question, read from its text."""
    out = set()
    for step, sentence in enumerate(question.split(". ")[1:-1]):  # opening, one sentence per step, the ask
        if "dollars" in sentence:
            out.add((step, "distractor"))
        elif " is given " in sentence or " trades away " in sentence:
            out.add((step, "confusable"))
        elif sentence.startswith("Meanwhile"):
            out.add((step, "aside"))
    return out


def test_corpus_uses_train_problems_only():
    test_questions = {p.question for p in generate_problems(3000, seed=0, split="test", max_steps=2)}
    corpus = generate_corpus(20_000, seed=0, max_steps=2)
    assert not test_questions & {c.question for c in corpus}
