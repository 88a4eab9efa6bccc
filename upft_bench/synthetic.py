"""The synthetic reasoning task: GSM8K in miniature, small enough for a tiny model on two CPU cores.

    from upft_bench.synthetic import World, generate_problems, generate_corpus
    test = generate_problems(300, seed=0, split="test")     # same seed -> identical problems
    print(test[0].question, test[0].solution, sep="\\n")
    corpus = generate_corpus(32_000, seed=0, world=World(error_position="last"))  # the base model's text

A problem is a start amount followed by 2-6 add/subtract (optionally double/triple) steps, told as a word
problem with varied names, items and phrasings. The reference solution is reasoning from its first token: one
equation per step, tagged with the question's wording, then `The answer is \\boxed{N}.`:

    Tom starts with 12 apples. He buys 5 more apples. Then he sells 3 apples for 8 dollars. How many ...?
    12 + 5 = 17 (buys 5 more). 17 - 3 = 14 (sells 3). The answer is \\boxed{14}.

**Tricky steps.** About one step in five (`TRICK_SHARE`) is phrased in one of three ways that real solvers get
wrong, each a property of the question, so a model that learned the mistake makes it under greedy decoding too:
  * `distractor`: a second number in the sentence ("sells 3 apples for 8 dollars"); misread, it becomes the operand;
  * `confusable`: a phrasing whose operation is easy to invert ("is given 4" read as giving, "trades away 4" as
    getting);
  * `aside`: a step told in passing ("Meanwhile, she also finds 4 apples."); missed, the step is dropped.

**The world** (`World`, the `pretrain` section of a config) says how the base model's pretraining text treats
them, and so how the base model errs, with known ground truth:
  * `error_rate`: the chance that a pretraining solution makes the mistake at a tricky step it applies to (above
    0.5, the mistake is the model's most likely continuation: greedy decoding makes it, sampling rarely avoids it);
  * `error_position`: where mistakes happen: `any` step, only the `first` step (errors start early) or only the
    `last` step (errors appear late, as the UPFT paper observes); tricky steps elsewhere are solved correctly;
  * `opening_variety`: the chance that a pretraining solution opens with another wording of its first step
    ("First, 12 + 5 = ..."), which lowers how much sampled solutions agree on their first tokens;
  * `instruction_share`: the share of "question + an instruction that asks for part of the solution -> that
    part, then EOS" items (only the first equation or only the first two; `TRUNCATIONS`), so
    the base model knows, as an instruction-tuned model does, that an instruction can ask for less than a whole
    solution. None of them is UPFT's prefix instruction or UPFT's cut after k tokens: every part ends at a step
    boundary, so UPFT's training format is new to the base model, as it is to a real one.
Every other step, and every arithmetic result, is written correctly: the pretraining text has no random noise, so
sampling at a moderate temperature adds few errors that greedy decoding removes.

Train and test never share a problem: each arithmetic skeleton (start, operations, operands) goes to one
split by a stable hash, so the test split holds no re-worded train problem either.

`upft_bench.data.load_questions("synth", split)` turns problems into the `Question` records the rest of
upft-bench takes.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

SPLITS = ("train", "test")
TEST_PERMILLE = 200  # share of arithmetic skeletons (per thousand) that belong to the test split
OPS = ("add", "sub", "mul")
TRICKS = ("distractor", "confusable", "aside")
TRICK_SHARE = 0.2  # chance that an add/subtract step is phrased as one of TRICKS (a property of the question)
POSITIONS = ("any", "first", "last")

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

# Each plain operation: (question sentence, solution tag). {s}: subject, {x}: operand, {i}: item, {p}: possessive.
TEMPLATES = {
    "add": [
        ("{s} buys {x} more {i}.", "buys {x} more"),
        ("{s} finds {x} {i}.", "finds {x}"),
        ("{s} gets {x} {i} from a friend.", "gets {x}"),
        ("{s} picks up {x} more {i}.", "picks up {x}"),
        ("{s} wins {x} {i}.", "wins {x}"),
    ],
    "sub": [
        ("{s} gives away {x} {i}.", "gives away {x}"),
        ("{s} loses {x} {i}.", "loses {x}"),
        ("{s} uses {x} {i}.", "uses {x}"),
        ("{s} gives {x} {i} to a friend.", "gives {x} away"),
        ("{s} drops {x} {i}.", "drops {x}"),
    ],
    "mul": [
        ("{s} doubles {p} {i}.", "doubles"),  # x == 2
        ("{s} triples {p} {i}.", "triples"),  # x == 3
    ],
}
# Tricky phrasings, (question sentence, solution tag); {y} is the distractor number. Only add and subtract.
TRICK_TEMPLATES = {
    ("distractor", "add"): ("{s} buys {x} more {i} for {y} dollars.", "buys {x} more"),
    ("distractor", "sub"): ("{s} sells {x} {i} for {y} dollars.", "sells {x}"),
    ("confusable", "add"): ("{s} is given {x} {i}.", "is given {x}"),
    ("confusable", "sub"): ("{s} trades away {x} {i}.", "trades away {x}"),
    ("aside", "add"): ("Meanwhile, {s} also finds {x} {i}.", "also finds {x}"),
    ("aside", "sub"): ("Meanwhile, {s} also loses {x} {i}.", "also loses {x}"),
}
INVERSE = {"add": "sub", "sub": "add"}
SYMBOL = {"add": "+", "sub": "-", "mul": "*"}
OPENINGS = ["{n} has {a} {i}.", "{n} starts with {a} {i}.", "{n} owns {a} {i}.", "{n} collects {a} {i}."]
CONNECTIVES = ["", "Then ", "Later, ", "After that, ", "Next, "]
QUESTIONS = [
    "How many {i} does {n} have now?",
    "How many {i} does {n} have in the end?",
    "How many {i} does {n} have at the end?",
]
# Other wordings of a solution's first step ("" is the reference wording), drawn with `World.opening_variety`.
LEADS = ["", "First, ", "We get ", "Start: "]
# Instructions that ask for part of a solution, each ending at a step boundary, in words other than UPFT's
# prefix instruction (upft_bench.prompts.PREFIX_INSTRUCTION, which the corpus never holds): part -> wordings.
TRUNCATIONS = {
    "first": [" Only write the first equation.", " Show just your first calculation and stop there."],
    "two": [" Write out the first two equations only.", " Give me only the opening two calculations."],
}


@dataclass(frozen=True)
class World:
    """How the base model's pretraining text treats tricky steps: the ground truth of the base model's errors."""

    error_rate: float = 0.8  # chance of the mistake at a tricky step where `error_position` allows one
    error_position: str = "any"  # "any" step, only the "first" step, or only the "last" step
    opening_variety: float = 0.3  # chance of another wording of the first step (lower prefix agreement)
    instruction_share: float = 0.15  # share of "question + TRUNCATIONS instruction -> that part + EOS" items

    def __post_init__(self):
        for name in ("error_rate", "opening_variety", "instruction_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        if self.error_position not in POSITIONS:
            raise ValueError(f"error_position must be one of {', '.join(POSITIONS)}, got {self.error_position!r}")

    def applies(self, step: int, steps: int) -> bool:
        """Whether a tricky step at 0-based `step` of `steps` may be got wrong in this world."""
        return (self.error_position == "any" or (self.error_position == "first" and step == 0)
                or (self.error_position == "last" and step == steps - 1))


@dataclass(frozen=True)
class Problem:
    """One synthetic word problem with its reference solution."""

    id: str  # "synth-<split>-<content hash>": stable, unique within a split
    question: str
    solution: str  # one equation per step, ends with "The answer is \\boxed{N}."
    answer: str  # the integer answer, as a string
    steps: int  # number of arithmetic steps: the difficulty
    tricks: tuple = ()  # (0-based step, trick kind) of each tricky step


@dataclass(frozen=True)
class CorpusItem:
    """One pretraining example (as text; `upft_bench.pretrain` tokenizes it)."""

    question: str
    instruction: str  # "" (full solution) or one wording of TRUNCATIONS[part]
    solution: str  # the response text (the asked-for part only, for a truncation); carries the mistakes in `errors`
    answer: str  # the final answer the whole solution states (wrong when a mistake changed it)
    gold: str  # the true answer
    steps: int
    errors: tuple = ()  # (0-based step, trick kind) of each mistake the whole solution makes
    part: str | None = None  # truncation items: the TRUNCATIONS key the instruction asks for


@dataclass(frozen=True)
class _Step:
    op: str
    x: int
    template: int  # index into TEMPLATES[op] (plain steps)
    connective: int  # index into CONNECTIVES
    use_name: bool  # the name, not the pronoun, is the subject
    trick: str | None = None  # one of TRICKS
    y: int = 0  # the distractor number


@dataclass(frozen=True)
class _Skeleton:
    """The arithmetic and the wording choices of one problem; rendering is a pure function of it."""

    name: str
    pronoun: str
    possessive: str
    item: str
    start: int
    ops: tuple  # of _Step
    opening: int
    ask: int

    def arithmetic_key(self) -> str:
        return f"{self.start}|" + "|".join(f"{s.op}{s.x}" for s in self.ops)

    def values(self) -> list[int]:
        vals = [self.start]
        for s in self.ops:
            vals.append(_apply(s.op, vals[-1], s.x))
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
        step = _Step(op, x, template, rng.randrange(len(CONNECTIVES)), rng.random() < 0.25)
        if op != "mul" and rng.random() < TRICK_SHARE:
            trick = rng.choice(TRICKS)
            y = rng.choice([v for v in range(2, 10) if v != x])
            step = _Step(op, x, template, step.connective, step.use_name, trick, y)
        chosen.append(step)
        value = _apply(op, value, x)
    return _Skeleton(name, pronoun, possessive, item, start, tuple(chosen),
                     rng.randrange(len(OPENINGS)), rng.randrange(len(QUESTIONS)))


def _sentence_and_tag(s: _Step) -> tuple[str, str]:
    return TRICK_TEMPLATES[(s.trick, s.op)] if s.trick else TEMPLATES[s.op][s.template]


def _render_question(sk: _Skeleton) -> str:
    parts = [OPENINGS[sk.opening].format(n=sk.name, a=sk.start, i=sk.item)]
    for s in sk.ops:
        subject = sk.name if s.use_name else sk.pronoun
        sentence = _sentence_and_tag(s)[0]
        connective = "" if s.trick == "aside" else CONNECTIVES[s.connective]
        if not connective and sentence.startswith("{s}"):
            subject = subject[0].upper() + subject[1:]
        parts.append(connective + sentence.format(s=subject, x=s.x, y=s.y, i=sk.item, p=sk.possessive))
    parts.append(QUESTIONS[sk.ask].format(i=sk.item, n=sk.name))
    return " ".join(parts)


def _render_steps(sk: _Skeleton, errors: dict | None = None, lead: str = "") -> tuple[list[str], int]:
    """A solution's sentences (each equation, then the answer) and its final value; `errors` maps a 0-based step
    to the mistake made there (its trick)."""
    errors = errors or {}
    value = sk.start
    parts = []
    for k, s in enumerate(sk.ops):
        op, x = s.op, s.x
        mistake = errors.get(k)
        if mistake == "aside":
            continue  # missed: the step is dropped and the value carries over
        if mistake == "distractor":
            x = s.y
        elif mistake == "confusable":
            op = INVERSE[op]
        result = _apply(op, value, x)
        tag = _sentence_and_tag(s)[1].format(x=x)
        parts.append(f"{value} {SYMBOL[op]} {x} = {result} ({tag}).")
        value = result
    parts.append(f"The answer is \\boxed{{{value}}}.")
    if lead:
        parts[0] = lead + parts[0]
    return parts, value


def _render_solution(sk: _Skeleton, errors: dict | None = None, lead: str = "") -> tuple[str, int]:
    """Solution text and its final value (see `_render_steps`)."""
    parts, value = _render_steps(sk, errors, lead)
    return " ".join(parts), value


def _part(sentences: list[str], part: str) -> str:
    """The part of a solution a truncation instruction asks for, ending at a step boundary."""
    equations = sentences[:-1]
    if part == "final" or not equations:
        return sentences[-1]
    return " ".join(equations[: 1 if part == "first" else 2])


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


def _tricks(sk: _Skeleton) -> tuple:
    return tuple((k, s.trick) for k, s in enumerate(sk.ops) if s.trick)


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
        problems.append(Problem(f"synth-{split}-{digest}", question, solution, str(value), len(sk.ops), _tricks(sk)))
    return problems


def _mistakes(rng: random.Random, sk: _Skeleton, world: World) -> dict:
    """The mistakes one pretraining solution makes: each tricky step the world allows, with `error_rate`.

    A mistake that would make a running value negative is not made (the solution stays a plausible count).
    """
    errors: dict = {}
    for k, s in enumerate(sk.ops):
        if not s.trick or not world.applies(k, len(sk.ops)) or rng.random() >= world.error_rate:
            continue
        trial = {**errors, k: s.trick}
        value, ok = sk.start, True
        for j, t in enumerate(sk.ops):
            mistake = trial.get(j)
            if mistake == "aside":
                continue
            value = _apply(INVERSE[t.op] if mistake == "confusable" else t.op, value,
                           t.y if mistake == "distractor" else t.x)
            ok = ok and value >= 0
        if ok:
            errors = trial
    return errors


def generate_corpus(n: int, seed: int, world: World | None = None, min_steps: int = 2, max_steps: int = 6,
                    max_start: int = 20, max_operand: int = 9, max_value: int = 99,
                    ops: tuple = ("add", "sub")) -> list[CorpusItem]:
    """`n` pretraining examples drawn from the train split only (the base model never sees a test problem).

    `world` (default `World()`) sets the mistakes, the first-step wordings and the share of truncation items,
    whose instruction (one of `TRUNCATIONS`, parts and wordings equally likely) asks for part of the solution and
    whose response is that part.
    """
    world = world or World()
    parts = sorted(TRUNCATIONS)
    rng = random.Random(f"upft-bench-corpus|{seed}")
    items = []
    for sk in _skeletons(n, seed, "train", min_steps, max_steps, max_start, max_operand, max_value, tuple(ops),
                         unique=False, stream="corpus"):
        errors = _mistakes(rng, sk, world)
        lead = rng.choice(LEADS[1:]) if rng.random() < world.opening_variety else ""
        sentences, value = _render_steps(sk, errors, lead)
        part = rng.choice(parts) if rng.random() < world.instruction_share else None
        items.append(CorpusItem(
            question=_render_question(sk),
            instruction=rng.choice(TRUNCATIONS[part]) if part else "",
            solution=_part(sentences, part) if part else " ".join(sentences),
            answer=str(value),
            gold=str(sk.values()[-1]),
            steps=len(sk.ops),
            errors=tuple(sorted(errors.items())),
            part=part,
        ))
    return items
