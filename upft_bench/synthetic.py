"""The synthetic reasoning task: GSM8K in miniature, small enough for a tiny model on two CPU cores.

    from upft_bench.synthetic import generate_problems, generate_corpus
    test = generate_problems(300, seed=0, split="test")     # same seed -> identical problems
    print(test[0].question, test[0].solution, sep="\\n")
    corpus = generate_corpus(50_000, seed=0)                 # pretraining text for the tiny base model

A problem is a start amount followed by 2-6 add/subtract (optionally double/triple) steps, told as a word
problem with varied names, items and phrasings. The reference solution restates each step with its
arithmetic and ends with `The answer is \\boxed{N}.`:

    Tom starts with 12 apples. He buys 5 more: 12 + 5 = 17. He gives away 3: 17 - 3 = 14.
    The answer is \\boxed{14}.

Train and test never share a problem: each arithmetic skeleton (start, operations, operands) goes to one
split by a stable hash, so the test split holds no re-worded train problem either.

The pretraining corpus (`generate_corpus`) mixes correct solutions with solutions that contain one
arithmetic slip (propagated to the final answer, placed preferentially late, as the UPFT paper observes),
and a share of "question + UPFT prefix instruction -> only the first tokens, then EOS" examples, so the
base model behaves like an instruction-tuned model that understands the instruction. (A tiny base that never
saw the instruction learns only "stop after k tokens" from UPFT, and then stops early on plain prompts too.)

`upft_bench.data.load_questions("synth", split)` turns problems into the `Question` records the rest of
upft-bench takes.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from upft_bench.prompts import PREFIX_INSTRUCTION

SPLITS = ("train", "test")
TEST_PERMILLE = 200  # share of arithmetic skeletons (per thousand) that belong to the test split
OPS = ("add", "sub", "mul")

# (name, subject pronoun, possessive)
PEOPLE = [
    ("Tom", "he", "his"), ("Anna", "she", "her"), ("Ben", "he", "his"), ("Lily", "she", "her"),
    ("Sam", "he", "his"), ("Mia", "she", "her"), ("Jack", "he", "his"), ("Emma", "she", "her"),
    ("Leo", "he", "his"), ("Zoe", "she", "her"), ("Max", "he", "his"), ("Nora", "she", "her"),
    ("Omar", "he", "his"), ("Ivy", "she", "her"), ("Raj", "he", "his"), ("Eva", "she", "her"),
]
ITEMS = [
    "apples", "marbles", "stickers", "coins", "books", "pencils", "cookies", "shells",
    "cards", "stamps", "balloons", "eggs", "flowers", "toys", "candies", "beads",
]

# Each operation: (question sentence, solution phrase). {s}: subject, {x}: operand, {i}: item, {p}: possessive.
TEMPLATES = {
    "add": [
        ("{s} buys {x} more {i}.", "{s} buys {x} more"),
        ("{s} finds {x} {i}.", "{s} finds {x}"),
        ("{s} gets {x} {i} from a friend.", "{s} gets {x}"),
        ("{s} picks up {x} more {i}.", "{s} picks up {x}"),
        ("{s} wins {x} {i}.", "{s} wins {x}"),
        ("{s} is given {x} {i}.", "{s} is given {x}"),
    ],
    "sub": [
        ("{s} gives away {x} {i}.", "{s} gives away {x}"),
        ("{s} loses {x} {i}.", "{s} loses {x}"),
        ("{s} sells {x} {i}.", "{s} sells {x}"),
        ("{s} uses {x} {i}.", "{s} uses {x}"),
        ("{s} gives {x} {i} to a friend.", "{s} gives {x} to a friend"),
        ("{s} drops {x} {i}.", "{s} drops {x}"),
    ],
    "mul": [
        ("{s} doubles {p} {i}.", "{s} doubles them"),  # x == 2
        ("{s} triples {p} {i}.", "{s} triples them"),  # x == 3
    ],
}
SYMBOL = {"add": "+", "sub": "-", "mul": "*"}
OPENINGS = ["{n} has {a} {i}.", "{n} starts with {a} {i}.", "{n} owns {a} {i}.", "{n} collects {a} {i}."]
CONNECTIVES = ["", "Then ", "Later, ", "After that, ", "Next, "]
QUESTIONS = [
    "How many {i} does {n} have now?",
    "How many {i} does {n} have in the end?",
    "How many {i} does {n} have at the end?",
]


@dataclass(frozen=True)
class Problem:
    """One synthetic word problem with its reference solution."""

    id: str  # "synth-<split>-<content hash>": stable, unique within a split
    question: str
    solution: str  # step by step, ends with "The answer is \\boxed{N}."
    answer: str  # the integer answer, as a string
    steps: int  # number of arithmetic steps: the difficulty


@dataclass(frozen=True)
class CorpusItem:
    """One pretraining example (as text; `upft_bench.pretrain` tokenizes it)."""

    question: str
    instruction: str  # "" (full solution) or PREFIX_INSTRUCTION (first tokens only)
    solution: str  # the response text; contains a slip when `slip_step` is set
    answer: str  # the final answer the solution states (wrong when slipped)
    gold: str  # the true answer
    steps: int
    slip_step: int | None = None  # 0-based index of the step whose result is wrong
    prefix_tokens: int | None = None  # prefix items: keep this many response tokens, then EOS


@dataclass(frozen=True)
class _Skeleton:
    """The arithmetic and the wording choices of one problem; rendering is a pure function of it."""

    name: str
    pronoun: str
    possessive: str
    item: str
    start: int
    ops: tuple  # ((op, operand, template index, connective index, use name as subject), ...)
    opening: int
    ask: int

    def arithmetic_key(self) -> str:
        return f"{self.start}|" + "|".join(f"{op}{x}" for op, x, *_ in self.ops)

    def values(self) -> list[int]:
        vals = [self.start]
        for op, x, *_ in self.ops:
            vals.append(_apply(op, vals[-1], x))
        return vals


def _apply(op: str, a: int, x: int) -> int:
    return a + x if op == "add" else a - x if op == "sub" else a * x


def split_of(skeleton_key: str) -> str:
    """The split an arithmetic skeleton belongs to (stable across runs, platforms and Python versions)."""
    h = int.from_bytes(hashlib.sha256(skeleton_key.encode()).digest()[:8], "big")
    return "test" if h % 1000 < TEST_PERMILLE else "train"


def _draw_skeleton(rng: random.Random, steps: int, max_start: int, max_operand: int, max_value: int,
                   ops: tuple) -> _Skeleton | None:
    name, pronoun, possessive = rng.choice(PEOPLE)
    item = rng.choice(ITEMS)
    value = rng.randint(2, max_start)
    start = value
    chosen = []
    for _ in range(steps):
        feasible = []
        for op in ops:
            if op == "add" and value + 1 <= max_value:
                feasible.append((op, list(range(1, min(max_operand, max_value - value) + 1))))
            elif op == "sub" and value >= 1:
                feasible.append((op, list(range(1, min(max_operand, value) + 1))))
            elif op == "mul" and 0 < value * 2 <= max_value:
                feasible.append((op, [f for f in (2, 3) if value * f <= max_value]))
        if not feasible:
            return None
        op, operands = rng.choice(feasible)
        x = rng.choice(operands)
        template = (x - 2) if op == "mul" else rng.randrange(len(TEMPLATES[op]))
        chosen.append((op, x, template, rng.randrange(len(CONNECTIVES)), rng.random() < 0.25))
        value = _apply(op, value, x)
    return _Skeleton(name, pronoun, possessive, item, start, tuple(chosen),
                     rng.randrange(len(OPENINGS)), rng.randrange(len(QUESTIONS)))


def _render_question(sk: _Skeleton) -> str:
    parts = [OPENINGS[sk.opening].format(n=sk.name, a=sk.start, i=sk.item)]
    for op, x, template, conn, use_name in sk.ops:
        subject = sk.name if use_name else sk.pronoun
        connective = CONNECTIVES[conn]
        if connective:
            sentence = connective + TEMPLATES[op][template][0].format(s=subject, x=x, i=sk.item, p=sk.possessive)
        else:
            sentence = TEMPLATES[op][template][0].format(s=subject.capitalize(), x=x, i=sk.item, p=sk.possessive)
        parts.append(sentence)
    parts.append(QUESTIONS[sk.ask].format(i=sk.item, n=sk.name))
    return " ".join(parts)


def _render_solution(sk: _Skeleton, slip: tuple[int, int] | None = None) -> tuple[str, int]:
    """Solution text and its final value; `slip=(step, delta)` adds `delta` to that step's result."""
    value = sk.start
    parts = [f"{sk.name} starts with {sk.start} {sk.item}."]
    for k, (op, x, template, _conn, use_name) in enumerate(sk.ops):
        result = _apply(op, value, x)
        if slip is not None and slip[0] == k:
            result += slip[1]
        subject = (sk.name if use_name else sk.pronoun.capitalize())
        phrase = TEMPLATES[op][template][1].format(s=subject, x=x, i=sk.item, p=sk.possessive)
        parts.append(f"{phrase}: {value} {SYMBOL[op]} {x} = {result}.")
        value = result
    parts.append(f"The answer is \\boxed{{{value}}}.")
    return " ".join(parts), value


def _skeletons(n: int, seed: int, split: str, min_steps: int, max_steps: int, max_start: int,
               max_operand: int, max_value: int, ops: tuple, unique: bool, stream: str):
    """`n` skeletons of one split, deterministic for (seed, split, stream, settings)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if not 1 <= min_steps <= max_steps:
        raise ValueError(f"need 1 <= min_steps <= max_steps, got min_steps={min_steps}, max_steps={max_steps}")
    bad = [op for op in ops if op not in OPS]
    if bad or not ops:
        raise ValueError(f"unknown operations {bad or ops!r}; known: {', '.join(OPS)}")
    if max_start < 2 or max_operand < 1 or max_value < max_start:
        raise ValueError(f"need max_start >= 2, max_operand >= 1, max_value >= max_start "
                         f"(got {max_start}, {max_operand}, {max_value})")
    # A string seed goes through sha512 in `random`, so streams do not depend on PYTHONHASHSEED.
    rng = random.Random(f"upft-bench-synthetic|{stream}|{split}|{seed}")
    seen: set[str] = set()
    out: list[_Skeleton] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 200 * n + 10_000:
            raise ValueError(f"could not draw {n} distinct {split} problems with these settings "
                             f"(steps {min_steps}-{max_steps}, max_start {max_start}, max_operand {max_operand}); "
                             "ask for fewer or widen the ranges")
        sk = _draw_skeleton(rng, rng.randint(min_steps, max_steps), max_start, max_operand, max_value, ops)
        if sk is None or split_of(sk.arithmetic_key()) != split:
            continue
        if unique:
            text = _render_question(sk)
            if text in seen:
                continue
            seen.add(text)
        out.append(sk)
    return out


def generate_problems(n: int, seed: int, split: str = "train", min_steps: int = 2, max_steps: int = 6,
                      max_start: int = 20, max_operand: int = 9, max_value: int = 99,
                      ops: tuple = ("add", "sub")) -> list[Problem]:
    """`n` distinct problems of `split`, identical for the same arguments; the first m of n are the m-list.

    Defaults are an "easy" setting that a 0.9M-parameter model learns on two CPU cores:
    start <= 20, operands <= 9, every intermediate value in 0..99, add and subtract only
    (`ops=("add", "sub", "mul")` adds doubling/tripling steps).
    """
    problems = []
    for sk in _skeletons(n, seed, split, min_steps, max_steps, max_start, max_operand, max_value, tuple(ops),
                         unique=True, stream="problems"):
        question = _render_question(sk)
        solution, value = _render_solution(sk)
        digest = hashlib.sha256(question.encode()).hexdigest()[:12]
        problems.append(Problem(f"synth-{split}-{digest}", question, solution, str(value), len(sk.ops)))
    return problems


def _slip(rng: random.Random, sk: _Skeleton, lateness: float) -> tuple[int, int] | None:
    """Pick (step, delta) for one arithmetic slip: later steps weigh (k+1)**lateness; values stay >= 0."""
    steps = len(sk.ops)
    weights = [(k + 1) ** lateness for k in range(steps)]
    for _ in range(20):
        step = rng.choices(range(steps), weights=weights)[0]
        delta = rng.choice([-2, -1, 1, 2, 1, -1, 10, -10])  # mostly off-by-one, sometimes a carry slip
        # Replay with the slip: every later value must stay a plausible non-negative count.
        value, ok = sk.start, True
        for k, (op, x, *_rest) in enumerate(sk.ops):
            value = _apply(op, value, x) + (delta if k == step else 0)
            if value < 0:
                ok = False
                break
        if ok:
            return step, delta
    return None


def generate_corpus(n: int, seed: int, slip_rate: float = 0.25, prefix_share: float = 0.15,
                    prefix_tokens_range: tuple[int, int] = (8, 32), slip_lateness: float = 2.0,
                    min_steps: int = 2, max_steps: int = 6, max_start: int = 20, max_operand: int = 9,
                    max_value: int = 99, ops: tuple = ("add", "sub")) -> list[CorpusItem]:
    """`n` pretraining examples drawn from the train split only (the base model never sees a test problem).

    - `slip_rate`: share of solutions with one arithmetic slip, propagated to the final answer.
    - `slip_lateness`: step k (0-based) of an s-step solution slips with weight (k+1)**slip_lateness.
    - `prefix_share`: share of items whose prompt carries the UPFT prefix instruction and whose response is
      only the first k tokens (k uniform in the inclusive `prefix_tokens_range`), then EOS.
    """
    if not 0.0 <= slip_rate <= 1.0 or not 0.0 <= prefix_share <= 1.0:
        raise ValueError(f"slip_rate and prefix_share must lie in [0, 1] (got {slip_rate}, {prefix_share})")
    lo, hi = prefix_tokens_range
    if not 1 <= lo <= hi:
        raise ValueError(f"prefix_tokens_range must be (min, max) with 1 <= min <= max, got {prefix_tokens_range}")
    rng = random.Random(f"upft-bench-corpus|{seed}")
    items = []
    for sk in _skeletons(n, seed, "train", min_steps, max_steps, max_start, max_operand, max_value, tuple(ops),
                         unique=False, stream="corpus"):
        gold = sk.values()[-1]
        slip = _slip(rng, sk, slip_lateness) if rng.random() < slip_rate else None
        solution, value = _render_solution(sk, slip)
        is_prefix = rng.random() < prefix_share
        items.append(CorpusItem(
            question=_render_question(sk),
            instruction=PREFIX_INSTRUCTION if is_prefix else "",
            solution=solution,
            answer=str(value),
            gold=str(gold),
            steps=len(sk.ops),
            slip_step=None if slip is None else slip[0],
            prefix_tokens=rng.randint(lo, hi) if is_prefix else None,
        ))
    return items
