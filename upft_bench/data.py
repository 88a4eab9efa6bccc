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
from upft_bench.hub import HubTimeout, within_timeout
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
                   *, shuffle_seed: int = 0, synth_n: int | None = None, synth_seed: int | None = None,
                   fields: dict | None = None) -> list[Question]:
    """The questions of one dataset split, in the source's order (first `limit` of them).

    `name` is one of `NAMES`, or your own questions: a file (.jsonl, .csv, .parquet) or a Hub dataset
    `hub:OWNER/NAME[:CONFIG][@SPLIT]` (`own_questions`; `fields` maps question/answer/solution/id to its columns).

    `shuffle_seed` varies gpqa's option order (0: the published order). `synth_n` / `synth_seed` override
    the synthetic set's size and seed (defaults in `SYNTH_DEFAULTS`).
    """
    if limit is not None and limit < 0:
        raise DataError(f"limit must be >= 0, got {limit}")
    if is_own(name):
        questions = own_questions(name, split, fields)
        return questions if limit is None else questions[:limit]
    if name not in NAMES:
        raise DataError(f"unknown question set {name!r}; known: {', '.join(NAMES)}, or a file of your own "
                        f"({', '.join(OWN_SUFFIXES)}) or a Hub dataset as hub:OWNER/NAME")
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
    if is_own(name):
        return name if name.startswith(HUB_PREFIX) else str(Path(name).expanduser())
    if name == "synth":
        n, seed = SYNTH_DEFAULTS.get(split, SYNTH_DEFAULTS["test"])
        return f"upft_bench.synthetic (generated, seed {seed})"
    root = resolve_data_dir(data_dir)
    local = LOCAL[name][split]
    if root is not None and (root / local).parent.is_dir():
        return str(root / local)
    path, config, hub_split = HUB[name][split]
    return f"hub:{path}" + (f" ({config})" if config else "") + f" [{hub_split}]"


def source_path(name: str, split: str = "test", data_dir: str | Path | None = None) -> Path | None:
    """The local file `load_questions(name, split, data_dir)` reads, or None (generated, or from the Hub)."""
    if is_own(name):
        return None if name.startswith(HUB_PREFIX) else Path(name).expanduser()
    if name == "synth" or name not in LOCAL or split not in LOCAL[name]:
        return None
    root = resolve_data_dir(data_dir)
    local = LOCAL[name][split]
    if root is not None and (root / local).parent.is_dir():
        return root / local
    return None


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
    def load():
        # heavy (datasets): loaded on use
        import datasets

        if name == "math12k":
            return [dict(r, _config=subject, _split=s, _index=i)
                    for subject in MATH_SUBJECTS for s in ("train", "test")
                    for i, r in enumerate(datasets.load_dataset(path, subject, split=s))]
        return list(datasets.load_dataset(path, config, split=hub_split))

    try:
        rows = within_timeout(load, f"{name} ({split}) from {path}")
    except HubTimeout as err:
        raise DataError(f"{err}. To use local files, point --data-dir or ${DATA_DIR_ENV} at a folder holding "
                        f"{LOCAL[name][split]}") from None
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


# ------------------------------------------------------------------------------------------ your own questions
OWN_SUFFIXES = (".jsonl", ".csv", ".parquet")
HUB_PREFIX = "hub:"
# Column names tried for each field when `data.fields` does not name one (the first present wins).
OWN_FIELDS = {"question": ("question", "problem", "Question", "Problem"),
              "answer": ("answer", "expected_answer", "final_answer", "Answer"),
              "solution": ("solution", "rationale", "Solution"),
              "id": ("id", "unique_id", "ID")}


def is_own(name: str) -> bool:
    """True for a question set of the user's own: a file path (.jsonl, .csv, .parquet) or `hub:OWNER/NAME...`."""
    name = str(name)
    return name.startswith(HUB_PREFIX) or name.lower().endswith(OWN_SUFFIXES)


def own_label(name: str) -> str:
    """A short name for an own question set: the file's stem (`data/my_test.jsonl` -> my_test), or the Hub
    dataset's name and split (`hub:me/probs@test` -> probs_test); letters, digits and `_` only."""
    if name.startswith(HUB_PREFIX):
        repo, _, split = name[len(HUB_PREFIX):].partition("@")
        stem = repo.split("/")[-1].replace(":", "_") + (f"_{split}" if split else "")
    else:
        stem = Path(name).stem
    return re.sub(r"[^A-Za-z0-9]+", "_", stem).strip("_").lower() or "data"


def own_questions(name: str, split: str = "test", fields: dict | None = None) -> list[Question]:
    """Questions from a file of the user's own or a Hub dataset (`hub:OWNER/NAME[:CONFIG][@SPLIT]`; without
    `@SPLIT`, `split`).

    Each row needs a question and a gold answer; a solution is optional (the `sft` method needs it). `fields` maps
    `question`, `answer`, `solution` and `id` to column names (default: the names in `OWN_FIELDS`). An answer
    written GSM8K-style (`... #### 42`) gives the number after `####`, and its text becomes the solution; with
    no answer column the last `\\boxed{}` of the solution is the answer. Errors name the file, row and field.
    """
    fields = dict(fields or {})
    unknown = sorted(set(fields) - set(OWN_FIELDS))
    if unknown:
        raise DataError(f"data.fields: unknown field(s) {', '.join(unknown)}; it maps {', '.join(OWN_FIELDS)} "
                        "to column names")
    if name.startswith(HUB_PREFIX):
        rows, where = _own_hub_rows(name, split)
    else:
        rows, where = _own_file_rows(Path(name).expanduser())
    label = own_label(name)
    questions = [_own_row(row, where(i), i, label, fields) for i, row in enumerate(rows)]
    _check_unique(questions, name)
    return questions


def _columns(key: str, fields: dict) -> tuple[str, ...]:
    return (fields[key],) if key in fields else OWN_FIELDS[key]


def _own_row(row: dict, where: str, index: int, label: str, fields: dict) -> Question:
    question = _field(row, _columns("question", fields), where)
    solution = _optional(row, _columns("solution", fields), where)
    answer = _optional(row, _columns("answer", fields), where)
    if answer is not None and "####" in answer:  # GSM8K-style: rationale, then "#### N"
        rationale, _, final = answer.rpartition("####")
        final = final.strip().replace(",", "")
        if not final:
            raise DataError(f"{where}: field {fields.get('answer', 'answer')!r} has nothing after '####'")
        if solution is None and rationale.strip():
            solution = (_CALC.sub("", rationale).rstrip() + f"\nThe answer is \\boxed{{{final}}}.").lstrip()
        answer = final
    if answer is None:
        answer = last_boxed(solution) if solution else None
        if answer is None:
            names = " or ".join(repr(c) for c in _columns("answer", fields))
            raise DataError(f"{where}: missing field {names} (the gold answer; or a solution ending in \\boxed{{}})")
    qid = _optional(row, _columns("id", fields), where) or f"{label}-{index}"
    return Question(qid, question, answer.strip(), solution, "math", {"source_row": index})


def _optional(row: dict, names: tuple[str, ...], where: str) -> str | None:
    """Like `_field`, but None when no column of `names` is present (numbers are taken as text)."""
    for key in names:
        value = row.get(key)
        if value is None or (isinstance(value, float) and value != value):  # absent, or an empty CSV/Parquet cell
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):  # CSV/Parquet numbers: answers, ids
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where}: field {key!r} must be a non-empty string, got {str(value)[:60]!r}")
        return value
    return None


def _own_file_rows(path: Path):
    """(rows, where) of a .jsonl, .csv or .parquet file; `where(i)` names row i by its line (JSONL, CSV) or row."""
    if not path.is_file():
        raise DataError(f"{path}: no such file (data.train and eval.tasks take a .jsonl, .csv or .parquet file, or "
                        "hub:OWNER/NAME)")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = _read_jsonl(path)
        return rows, lambda i: f"{path} line {rows[i]['_line']}"
    if suffix == ".csv":
        rows = _read_csv(path)
        return rows, lambda i: f"{path} line {rows[i]['_line']}"
    try:
        # heavy (pyarrow, installed with datasets): loaded on use
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError on a damaged file
        raise DataError(f"{path}: cannot read as Parquet: {' '.join(str(err).split())[:200]}") from None
    return rows, lambda i: f"{path} row {i}"


def _read_csv(path: Path) -> list[dict]:
    """Rows of a CSV file with a header line; each row remembers the line it starts on (for errors)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:  # reads the header line
                raise DataError(f"{path}: empty CSV (a header line naming the columns comes first)")
            rows = []
            line = reader.line_num + 1
            for row in reader:
                if None in row:
                    raise DataError(f"{path} line {line}: more cells than the header has columns")
                rows.append({**{k: (v if v != "" else None) for k, v in row.items()}, "_line": line})
                line = reader.line_num + 1
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    except csv.Error as err:
        raise DataError(f"{path}: not valid CSV ({err})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err.strerror or err}") from None
    return rows


def _own_hub_rows(name: str, split: str):
    """(rows, where) of a Hub dataset `hub:OWNER/NAME[:CONFIG][@SPLIT]`, resolved within the Hub timeout."""
    spec, _, at_split = name[len(HUB_PREFIX):].partition("@")
    path, _, config = spec.partition(":")
    split = at_split or split
    if path.count("/") != 1:
        raise DataError(f"{name}: a Hub dataset is hub:OWNER/NAME, optionally :CONFIG and @SPLIT")
    try:
        # heavy (datasets): loaded on use
        import datasets

        rows = within_timeout(lambda: list(datasets.load_dataset(path, config or None, split=split)), name)
    except HubTimeout as err:
        raise DataError(str(err)) from None
    except Exception as err:  # offline, gated, renamed, no such split
        raise DataError(f"{name}: could not load from the Hugging Face Hub: {type(err).__name__}: "
                        f"{' '.join(str(err).split())[:300]}") from None
    return rows, lambda i: f"{name} row {i}"


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


def normal_text(text: str, fold_case: bool = False) -> str:
    """A question's text for matching: whitespace collapsed (and case folded with `fold_case`)."""
    return " ".join((text.casefold() if fold_case else text).split())


def _without_math500(questions: list[Question], data_dir) -> list[Question]:
    """math12k minus the MATH-500 test problems (matched on whitespace-normalised problem text)."""
    held_out = {normal_text(q.question) for q in load_questions("math500", "test", data_dir)}
    return [q for q in questions if normal_text(q.question) not in held_out]


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
