"""Question sets: the paper's benchmarks (Hub or a local data directory) and the synthetic task.

    from upft_bench.data import load_questions
    qs = load_questions("gsm8k", "train", data_dir="../shared/data", limit=100)
    qs = load_questions("synth", "test")              # generated, no files needed

Training (`sft` solutions, RFT's gold answers) and evaluation (the lm-eval tasks in tasks/, whose
`custom_dataset` hook calls `load_questions`) read the same records, so they can never disagree.

Where the data comes from, per dataset:
- a data directory (argument `data_dir`, else env `UPFT_BENCH_DATA_DIR`) laid out like shared/data
  (gsm8k/{train,test}.jsonl, math500/test.jsonl, aime24/test.jsonl, gpqa/diamond.jsonl, math12k/train.jsonl)
  replaces the Hub for every dataset whose folder it holds;
- otherwise the Hugging Face Hub (names in `HUB`).
A malformed local row is an error naming the file, the line and the field.

Choices made here (tasks/README.md lists them too):
- gsm8k: `answer` is the number after `####` (commas removed). `solution` is the rationale with the
  `<<...>>` calculator annotations removed and the `#### N` line replaced by `The answer is \\boxed{N}.`,
  the format the checker reads first; the original text stays in `meta["solution_raw"]`.
- gpqa: the four options are shuffled with a seed derived from the question id (and `shuffle_seed`),
  so the order is the same on every run and machine; the question lists them as `A) ...` lines and
  the answer is the letter. gpqa_open shows no options; the answer is the correct option's text.
- math12k: MATH (EleutherAI/hendrycks_math, all seven subjects, train + test) minus the MATH-500 test
  problems, i.e. the 12,000-question PRM800K training split the paper fine-tunes on. Answer = last
  `\\boxed{}` of the solution. A local math12k/train.jsonl (problem, solution, optional answer and id)
  is taken as it is: it must already leave out the MATH-500 problems.
"""
from __future__ import annotations

import hashlib
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from upft_bench.errors import InputError
from upft_bench.jsonl import read_jsonl
from upft_bench.synthetic import SPLITS, generate_problems


@dataclass(frozen=True)
class Question:
    """One question as every part of upft-bench sees it."""

    id: str  # stable and unique within its dataset
    question: str  # the bare question: the user turn
    answer: str  # gold final answer, as the checker takes it (RFT filter, label filter, evaluation)
    solution: str | None = None  # reference solution (the `sft` method's response)
    kind: str = "math"  # "math" or "choice"
    meta: dict = field(default_factory=dict, compare=False, hash=False)


class DataError(InputError):
    """A dataset could not be loaded, or one of its rows is malformed (the message says where)."""


DATA_DIR_ENV = "UPFT_BENCH_DATA_DIR"
NAMES = ("gsm8k", "math500", "aime24", "gpqa", "gpqa_open", "synth", "math12k")

# name -> split -> file inside the data directory
LOCAL = {
    "gsm8k": {"train": "gsm8k/train.jsonl", "test": "gsm8k/test.jsonl"},
    "math500": {"test": "math500/test.jsonl"},
    "aime24": {"test": "aime24/test.jsonl"},
    "gpqa": {"test": "gpqa/diamond.jsonl"},
    "gpqa_open": {"test": "gpqa/diamond.jsonl"},
    "math12k": {"train": "math12k/train.jsonl"},
}
# name -> split -> (Hub dataset, config, Hub split)
HUB = {
    "gsm8k": {"train": ("openai/gsm8k", "main", "train"), "test": ("openai/gsm8k", "main", "test")},
    "math500": {"test": ("HuggingFaceH4/MATH-500", None, "test")},
    "aime24": {"test": ("HuggingFaceH4/aime_2024", None, "train")},
    "gpqa": {"test": ("Idavidrein/gpqa", "gpqa_diamond", "train")},
    "gpqa_open": {"test": ("Idavidrein/gpqa", "gpqa_diamond", "train")},
    "math12k": {"train": ("EleutherAI/hendrycks_math", None, "train+test")},
}
MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                 "number_theory", "prealgebra", "precalculus")
# Published sizes (rows per split), for listings and as a check of the local copies.
SIZES = {"gsm8k": {"train": 7473, "test": 1319}, "math500": {"test": 500}, "aime24": {"test": 30},
         "gpqa": {"test": 198}, "gpqa_open": {"test": 198}, "math12k": {"train": 12000}}
# synth: (problems, seed) per split when the caller does not say; prefix-stable, so `limit` just cuts.
SYNTH_DEFAULTS = {"train": (5000, 1234), "test": (300, 1234)}


def load_questions(name: str, split: str = "test", data_dir: str | Path | None = None, limit: int | None = None,
                   *, shuffle_seed: int = 0, synth_n: int | None = None, synth_seed: int | None = None
                   ) -> list[Question]:
    """The questions of one dataset split, in the source's order (first `limit` of them).

    `shuffle_seed` varies gpqa's option order (0: the published order). `synth_n` / `synth_seed` override
    the synthetic set's size and seed (defaults in `SYNTH_DEFAULTS`).
    """
    if name not in NAMES:
        raise DataError(f"unknown question set {name!r}; known: {', '.join(NAMES)}")
    if limit is not None and limit < 0:
        raise DataError(f"limit must be >= 0, got {limit}")
    if name == "synth":
        questions = _synth(split, synth_n if synth_n is not None else limit, synth_seed)
    else:
        if split not in LOCAL[name]:
            raise DataError(f"{name} has no split {split!r}; it has: {', '.join(LOCAL[name])}")
        rows, where = _rows(name, split, resolve_data_dir(data_dir))
        parse = PARSERS[name]
        questions = [parse(row, f"{where(i)}", split=split, index=i, shuffle_seed=shuffle_seed)
                     for i, row in enumerate(rows)]
        if name == "math12k" and rows and "_config" in rows[0]:  # composed from the Hub's MATH here
            questions = _without_math500(questions, data_dir)
        _check_unique(questions, name)
    return questions if limit is None else questions[:limit]


def resolve_data_dir(data_dir: str | Path | None = None) -> Path | None:
    """The local data directory in use: the argument, else $UPFT_BENCH_DATA_DIR, else None (the Hub)."""
    chosen = data_dir if data_dir not in (None, "") else os.environ.get(DATA_DIR_ENV) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        source = "data_dir" if data_dir not in (None, "") else f"${DATA_DIR_ENV}"
        raise DataError(f"data directory {str(path)!r} (from {source}) does not exist or is not a directory")
    return path


def source_of(name: str, split: str = "test", data_dir: str | Path | None = None) -> str:
    """Where `load_questions(name, split, data_dir)` reads from, in words (for listings and logs)."""
    if name == "synth":
        n, seed = SYNTH_DEFAULTS.get(split, SYNTH_DEFAULTS["test"])
        return f"upft_bench.synthetic (generated, seed {seed})"
    root = resolve_data_dir(data_dir)
    local = LOCAL[name][split]
    if root is not None and (root / local).parent.is_dir():
        return str(root / local)
    path, config, hub_split = HUB[name][split]
    return f"hub:{path}" + (f" ({config})" if config else "") + f" [{hub_split}]"


# ------------------------------------------------------------------------------------------ reading rows
def _rows(name: str, split: str, root: Path | None):
    """(rows, where) for a dataset split: rows as dicts, `where(i)` naming row i for error messages."""
    local = LOCAL[name][split]
    if root is not None and (root / local).parent.is_dir():
        rows = _read_jsonl(root / local)
        return rows, lambda i: f"{root / local} line {rows[i]['_line']}"
    return _hub_rows(name, split, root)


def _read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file; blank lines are allowed (and keep line numbers right in errors)."""
    if not path.is_file():
        raise DataError(f"{path} not found: the data directory has the folder {path.parent.name}/ but not "
                        f"{path.name} (expected layout: see tasks/README.md)")
    rows = []
    for number, row in read_jsonl(path, DataError):
        row["_line"] = number
        rows.append(row)
    return rows


def _hub_rows(name: str, split: str, root: Path | None):
    path, config, hub_split = HUB[name][split]
    try:
        # heavy (datasets): loaded on use
        import datasets

        if name == "math12k":
            rows = [dict(r, _config=subject, _split=s, _index=i)
                    for subject in MATH_SUBJECTS for s in ("train", "test")
                    for i, r in enumerate(datasets.load_dataset(path, subject, split=s))]
        else:
            rows = list(datasets.load_dataset(path, config, split=hub_split))
    except Exception as err:  # offline, gated, renamed: all end here with one actionable message
        local = LOCAL[name][split]
        where = (f"the data directory {root} has no {local.split('/')[0]}/ folder, so the Hub was tried"
                 if root is not None else f"no data directory is set (data_dir / ${DATA_DIR_ENV})")
        raise DataError(
            f"could not load {name} ({split}) from the Hugging Face Hub ({path}"
            f"{', ' + config if config else ''}): {type(err).__name__}: {str(err)[:300]}\n"
            f"{where}. To use local files, point --data-dir or ${DATA_DIR_ENV} at a folder holding {local} "
            f"(the layout of shared/data, see tasks/README.md)."
        ) from err
    label = f"hub:{path}" + (f"/{config}" if config else "") + f"[{hub_split}]"
    if name == "math12k":
        return rows, lambda i: f"{label} {rows[i]['_config']}/{rows[i]['_split']} row {rows[i]['_index']}"
    return rows, lambda i: f"{label} row {i}"


# ------------------------------------------------------------------------------------------ row parsers
def _field(row: dict, names: tuple[str, ...], where: str, allow_int: bool = False) -> str:
    """The first present field of `names` as a non-empty string, or an error naming row and field."""
    for key in names:
        if key in row and row[key] is not None:
            value = row[key]
            if allow_int and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"{where}: field {key!r} must be a non-empty string, got {str(value)[:60]!r}")
            return value
    raise DataError(f"{where}: missing field {' or '.join(repr(k) for k in names)}")


_CALC = re.compile(r"<<[^>]*>>")


def _gsm8k(row: dict, where: str, split: str, index: int, **_) -> Question:
    question = _field(row, ("question",), where)
    raw = _field(row, ("answer",), where)
    if "####" not in raw:
        raise DataError(f"{where}: field 'answer' has no '#### N' final line")
    rationale, _, final = raw.rpartition("####")
    answer = final.strip().replace(",", "")
    if not answer:
        raise DataError(f"{where}: field 'answer' has nothing after '####'")
    solution = _CALC.sub("", rationale).rstrip() + f"\nThe answer is \\boxed{{{answer}}}."
    return Question(f"gsm8k-{split}-{index}", question, answer, solution.lstrip(), "math",
                    {"solution_raw": raw})


def _math500(row: dict, where: str, **_) -> Question:
    return Question(
        _field(row, ("id", "unique_id"), where), _field(row, ("problem",), where),
        _field(row, ("expected_answer", "answer"), where), _field(row, ("solution",), where), "math",
        {"level": row.get("level"), "subject": row.get("type", row.get("subject"))},
    )


def _aime24(row: dict, where: str, **_) -> Question:
    return Question(
        _field(row, ("id", "ID"), where, allow_int=True), _field(row, ("question", "problem", "Problem"), where),
        _field(row, ("answer", "Answer"), where, allow_int=True).strip(),
        row.get("solution") or row.get("Solution") or None, "math", {"url": row.get("url")},
    )


def _gpqa_parts(row: dict, where: str) -> tuple[str, str, str, list[str]]:
    """(id, question, correct option, 3 incorrect options), from the local or the Hub spelling."""
    qid = _field(row, ("id", "Record ID"), where)
    question = _field(row, ("question", "Question"), where).strip()
    correct = _field(row, ("correct_answer", "Correct Answer"), where).strip()
    if "incorrect_answers" in row:
        wrong = row["incorrect_answers"]
        if not (isinstance(wrong, list) and len(wrong) == 3 and all(isinstance(w, str) and w.strip() for w in wrong)):
            raise DataError(f"{where}: field 'incorrect_answers' must be a list of 3 non-empty strings")
        wrong = [w.strip() for w in wrong]
    else:
        wrong = [_field(row, (f"Incorrect Answer {k}",), where).strip() for k in (1, 2, 3)]
    return qid, question, correct, wrong


LETTERS = "ABCD"


def shuffled_options(qid: str, correct: str, wrong: list[str], shuffle_seed: int = 0) -> tuple[list[str], str]:
    """The four options in a fixed per-question order, and the correct letter (stable across runs/machines)."""
    options = [correct, *wrong]
    digest = hashlib.sha256(f"{shuffle_seed}:{qid}".encode()).digest()
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(options)
    return options, LETTERS[options.index(correct)]


def _gpqa(row: dict, where: str, shuffle_seed: int = 0, **_) -> Question:
    qid, question, correct, wrong = _gpqa_parts(row, where)
    options, letter = shuffled_options(qid, correct, wrong, shuffle_seed)
    text = question + "\n\n" + "\n".join(f"{LETTERS[i]}) {opt}" for i, opt in enumerate(options))
    return Question(qid, text, letter, None, "choice",
                    {"options": options, "correct_text": correct, "domain": row.get("domain")})


def _gpqa_open(row: dict, where: str, **_) -> Question:
    qid, question, correct, _wrong = _gpqa_parts(row, where)
    return Question(qid, question, correct, None, "math", {"domain": row.get("domain")})


def _math12k(row: dict, where: str, index: int, **_) -> Question:
    problem = _field(row, ("problem",), where)
    solution = _field(row, ("solution",), where)
    answer = row.get("answer")
    if answer is None:
        answer = last_boxed(solution)
        if answer is None:
            raise DataError(f"{where}: no 'answer' field and field 'solution' has no \\boxed{{}} answer")
    elif not isinstance(answer, str) or not answer.strip():
        raise DataError(f"{where}: field 'answer' must be a non-empty string")
    qid = row.get("id") or row.get("unique_id") or (
        f"{row['_split']}/{row['_config']}/{row['_index']}" if "_config" in row else f"math12k-{index}")
    return Question(str(qid), problem, answer, solution, "math",
                    {"level": row.get("level"), "subject": row.get("type", row.get("_config"))})


PARSERS = {"gsm8k": _gsm8k, "math500": _math500, "aime24": _aime24, "gpqa": _gpqa, "gpqa_open": _gpqa_open,
           "math12k": _math12k}


def last_boxed(text: str) -> str | None:
    """Content of the last balanced `\\boxed{...}` in `text` (gold answers of MATH solutions)."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j].strip() or None
    return None


def _normal(text: str) -> str:
    return " ".join(text.split())


def _without_math500(questions: list[Question], data_dir) -> list[Question]:
    """math12k minus the MATH-500 test problems (matched on whitespace-normalised problem text)."""
    held_out = {_normal(q.question) for q in load_questions("math500", "test", data_dir)}
    return [q for q in questions if _normal(q.question) not in held_out]


def to_question(problem) -> Question:
    """The `Question` record of a `upft_bench.synthetic.Problem`."""
    return Question(id=problem.id, question=problem.question, answer=problem.answer, solution=problem.solution,
                    kind="math", meta={"steps": problem.steps, "tricks": [list(t) for t in problem.tricks]})


def _synth(split: str, n: int | None, seed: int | None) -> list[Question]:
    if split not in SPLITS:
        raise DataError(f"synth has no split {split!r}; it has: {', '.join(SPLITS)}")
    default_n, default_seed = SYNTH_DEFAULTS[split]
    problems = generate_problems(default_n if n is None else n, default_seed if seed is None else seed, split)
    return [to_question(p) for p in problems]


def _check_unique(questions: list[Question], name: str) -> None:
    seen: dict[str, int] = {}
    for i, q in enumerate(questions):
        if q.id in seen:
            raise DataError(f"{name}: question id {q.id!r} appears twice (rows {seen[q.id]} and {i})")
        seen[q.id] = i
